//! Reading a streamed Gemini answer (`:streamGenerateContent?alt=sse`): every event is a whole
//! `GenerateContentResponse` carrying the next text parts of the first candidate; the last one
//! has the `finishReason`, and `usageMetadata` is cumulative, so the last report wins. The
//! stream has no end marker: a stream that closes without a finish reason was cut off.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

use crate::events::{ended_early, json_data, ProviderEvents};
use crate::gemini::GEMINI;
use crate::http::status_error;
use crate::output::parse_answer;
use crate::stream::count;
use crate::{JsonRequest, ProviderError, Streamed, TextSink, TokenUsage};

/// Reads the events to the end, handing each text part to `on_text`.
pub(crate) async fn read(
    request: &JsonRequest,
    mut events: ProviderEvents,
    on_text: &mut TextSink<'_>,
) -> Result<Streamed, ProviderError> {
    let mut text = String::new();
    let mut finish_reason: Option<String> = None;
    let mut usage = None;
    while let Some(event) = events.next().await? {
        let chunk = json_data(GEMINI, &event)?;
        if let Some(error) = chunk.get("error") {
            let code = error.get("code").and_then(Value::as_u64).unwrap_or(500);
            let status = u16::try_from(code)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Err(status_error(
                GEMINI,
                status,
                &HeaderMap::new(),
                &chunk,
                event.data.as_bytes(),
            ));
        }
        if let Some(report) = chunk.get("usageMetadata") {
            usage = Some(TokenUsage {
                input_tokens: count(report, "/promptTokenCount"),
                output_tokens: count(report, "/candidatesTokenCount"),
            });
        }
        let Some(candidate) = chunk.pointer("/candidates/0") else {
            if let Some(reason) = chunk
                .pointer("/promptFeedback/blockReason")
                .and_then(Value::as_str)
            {
                return Err(ProviderError::invalid_output(
                    GEMINI,
                    format!("the response has no candidates (prompt blocked: {reason})"),
                ));
            }
            continue;
        };
        let parts = candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|part| part.get("thought").and_then(Value::as_bool) != Some(true))
            .filter_map(|part| part.get("text").and_then(Value::as_str));
        for piece in parts.filter(|piece| !piece.is_empty()) {
            text.push_str(piece);
            on_text(piece);
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            finish_reason = Some(reason.to_owned());
        }
    }
    let Some(finish_reason) = finish_reason else {
        return Err(ended_early(GEMINI, text.len()));
    };
    if finish_reason == "MAX_TOKENS" {
        return Err(ProviderError::invalid_output(
            GEMINI,
            "the answer was cut off at the output token limit",
        ));
    }
    if text.is_empty() {
        return Err(ProviderError::invalid_output(
            GEMINI,
            format!("the candidate has no text (finishReason {finish_reason})"),
        ));
    }
    let answer = parse_answer(GEMINI, request, &text)?;
    Ok(Streamed { answer, usage })
}
