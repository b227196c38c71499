//! Reading a streamed Messages answer (`stream: true`): `message_start` (input tokens),
//! `content_block_start` naming the forced tool, its input as `input_json_delta.partial_json`
//! pieces, `message_delta` (stop reason, output tokens) and `message_stop`. `ping` and unknown
//! events are skipped, as Anthropic's versioning policy asks of clients; an `error` event is
//! mapped like the HTTP status it stands for.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

use crate::anthropic::ANTHROPIC;
use crate::error::truncate;
use crate::events::{ended_early, json_data, ProviderEvents};
use crate::http::status_error;
use crate::output::parse_answer;
use crate::stream::count;
use crate::{JsonRequest, ProviderError, Streamed, TextSink, TokenUsage};

/// Reads the events to `message_stop`, handing each piece of the tool input to `on_text`.
pub(crate) async fn read(
    request: &JsonRequest,
    mut events: ProviderEvents,
    on_text: &mut TextSink<'_>,
) -> Result<Streamed, ProviderError> {
    let mut tool_block: Option<u64> = None;
    let mut input = String::new();
    let mut text = String::new();
    let mut stop_reason: Option<String> = None;
    let mut usage = TokenUsage::default();
    let mut stopped = false;
    while let Some(event) = events.next().await? {
        if event.event == "ping" {
            continue;
        }
        let data = json_data(ANTHROPIC, &event)?;
        match data.get("type").and_then(Value::as_str).unwrap_or_default() {
            "message_start" => {
                usage.input_tokens = count(&data, "/message/usage/input_tokens");
                usage.output_tokens = count(&data, "/message/usage/output_tokens");
            }
            "content_block_start" => {
                let block = data.get("content_block").unwrap_or(&Value::Null);
                let is_ours = block.get("type").and_then(Value::as_str) == Some("tool_use")
                    && block.get("name").and_then(Value::as_str)
                        == Some(request.schema_name.as_str());
                if is_ours && tool_block.is_none() {
                    tool_block = data.get("index").and_then(Value::as_u64);
                }
            }
            "content_block_delta" => {
                let index = data.get("index").and_then(Value::as_u64);
                let delta = data.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("input_json_delta") if index.is_some() && index == tool_block => {
                        let piece = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        // The first piece is often empty.
                        if !piece.is_empty() {
                            input.push_str(piece);
                            on_text(piece);
                        }
                    }
                    Some("text_delta") => {
                        text.push_str(delta.get("text").and_then(Value::as_str).unwrap_or(""));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    stop_reason = Some(reason.to_owned());
                }
                // The count in `message_delta` is cumulative for the whole message.
                if let Some(output) = count(&data, "/usage/output_tokens") {
                    usage.output_tokens = Some(output);
                }
                if let Some(input) = count(&data, "/usage/input_tokens") {
                    usage.input_tokens = Some(input);
                }
            }
            "message_stop" => {
                stopped = true;
                break;
            }
            "error" => return Err(stream_error(&data, &event.data)),
            _ => {}
        }
    }
    if !stopped {
        return Err(ended_early(ANTHROPIC, input.len()));
    }
    let stop_reason = stop_reason.unwrap_or_else(|| "unknown".to_owned());
    if stop_reason == "max_tokens" {
        return Err(ProviderError::invalid_output(
            ANTHROPIC,
            "the answer was cut off at the output token limit",
        ));
    }
    if tool_block.is_none() {
        return Err(ProviderError::invalid_output(
            ANTHROPIC,
            format!(
                "no {} tool call in the answer (stop_reason {stop_reason}){}",
                request.schema_name,
                if text.is_empty() {
                    String::new()
                } else {
                    format!(": {}", truncate(&text))
                }
            ),
        ));
    }
    // A tool called with no arguments streams no pieces at all.
    let input = if input.trim().is_empty() {
        "{}"
    } else {
        &input
    };
    let answer = parse_answer(ANTHROPIC, request, input)?;
    Ok(Streamed {
        answer,
        usage: Some(usage),
    })
}

/// An `error` event mapped as the HTTP status Anthropic documents for its type.
fn stream_error(data: &Value, raw: &str) -> ProviderError {
    let status = match data.pointer("/error/type").and_then(Value::as_str) {
        Some("overloaded_error") => 529,
        Some("rate_limit_error") => 429,
        Some("timeout_error") => 504,
        Some("authentication_error") => 401,
        Some("permission_error") => 403,
        Some("not_found_error") => 404,
        Some("invalid_request_error") => 400,
        _ => 500,
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    status_error(ANTHROPIC, status, &HeaderMap::new(), data, raw.as_bytes())
}
