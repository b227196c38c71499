//! Reading a streamed Chat Completions answer (`stream: true` with
//! `stream_options.include_usage`): `data:` chunks whose `choices[0].delta.content` pieces make
//! up the answer's text, a last chunk with empty `choices` and the usage, then `data: [DONE]`.

use serde_json::Value;

use crate::error::truncate;
use crate::events::{ended_early, json_data, ProviderEvents};
use crate::output::parse_answer;
use crate::stream::count;
use crate::{JsonRequest, ProviderError, Streamed, TextSink, TokenUsage};

/// Reads the events to the end, handing each content piece to `on_text`.
pub(crate) async fn read(
    provider: &str,
    request: &JsonRequest,
    mut events: ProviderEvents,
    on_text: &mut TextSink<'_>,
) -> Result<Streamed, ProviderError> {
    let mut text = String::new();
    let mut refusal = String::new();
    let mut finish_reason: Option<String> = None;
    let mut usage = None;
    let mut done = false;
    while let Some(event) = events.next().await? {
        if event.data.trim() == "[DONE]" {
            done = true;
            break;
        }
        let chunk = json_data(provider, &event)?;
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            // An error after the 200 head: the model stopped mid-answer, which a retry can pass.
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(ProviderError::transient(
                provider,
                format!("the stream reported an error: {}", truncate(message)),
            ));
        }
        if let Some(report) = chunk.get("usage").filter(|u| !u.is_null()) {
            usage = Some(TokenUsage {
                input_tokens: count(report, "/prompt_tokens"),
                output_tokens: count(report, "/completion_tokens"),
            });
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            continue;
        };
        if let Some(piece) = choice.pointer("/delta/refusal").and_then(Value::as_str) {
            refusal.push_str(piece);
        }
        if let Some(piece) = choice.pointer("/delta/content").and_then(Value::as_str) {
            if !piece.is_empty() {
                text.push_str(piece);
                on_text(piece);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            finish_reason = Some(reason.to_owned());
        }
    }
    // Some compatible servers omit `[DONE]`; a finish reason says the answer is whole too.
    let Some(finish_reason) = finish_reason.or(done.then(|| "unknown".to_owned())) else {
        return Err(ended_early(provider, text.len()));
    };
    if !refusal.is_empty() {
        return Err(ProviderError::invalid_output(
            provider,
            format!("the model refused: {}", truncate(&refusal)),
        ));
    }
    if finish_reason == "length" {
        return Err(ProviderError::invalid_output(
            provider,
            "the answer was cut off at the output token limit",
        ));
    }
    if text.is_empty() {
        return Err(ProviderError::invalid_output(
            provider,
            format!("the message has no content (finish_reason {finish_reason})"),
        ));
    }
    let answer = parse_answer(provider, request, &text)?;
    Ok(Streamed { answer, usage })
}
