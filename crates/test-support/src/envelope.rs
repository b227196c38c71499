//! The bodies a real provider answers with, built the way each service builds them, so the client
//! under test parses the same shapes it will meet in production.

use serde_json::{json, Value};

use crate::ProviderKind;

/// Token counts in fake usage blocks; clients must not depend on them.
const FAKE_INPUT_TOKENS: u64 = 42;
const FAKE_OUTPUT_TOKENS: u64 = 17;
/// A fixed creation time keeps fake answers reproducible.
const FAKE_CREATED_UNIX: u64 = 1_767_225_600;

/// A successful answer in which the model returned `answer` as its structured output: as the
/// message content (OpenAI, Gemini) or as the input of the forced tool `tool_name` (Anthropic).
pub fn success_body(kind: ProviderKind, model: &str, tool_name: &str, answer: &Value) -> Value {
    match kind {
        ProviderKind::OpenAi => openai_message(model, &answer.to_string()),
        ProviderKind::Anthropic => anthropic_message(
            model,
            json!([{
                "type": "tool_use",
                "id": "toolu_fake_0001",
                "name": tool_name,
                "input": answer,
            }]),
            "tool_use",
        ),
        ProviderKind::Gemini => gemini_response(model, &answer.to_string()),
    }
}

/// A successful answer in which the model wrote plain `text` instead of the requested structure.
pub fn text_body(kind: ProviderKind, model: &str, text: &str) -> Value {
    match kind {
        ProviderKind::OpenAi => openai_message(model, text),
        ProviderKind::Anthropic => {
            anthropic_message(model, json!([{"type": "text", "text": text}]), "end_turn")
        }
        ProviderKind::Gemini => gemini_response(model, text),
    }
}

/// The error envelope the provider sends with HTTP `status`.
pub fn error_body(kind: ProviderKind, status: u16, message: &str) -> Value {
    match kind {
        ProviderKind::OpenAi => json!({
            "error": {
                "message": message,
                "type": openai_error_type(status),
                "param": null,
                "code": null,
            }
        }),
        ProviderKind::Anthropic => json!({
            "type": "error",
            "error": {"type": anthropic_error_type(status), "message": message},
            "request_id": "req_fake_0001",
        }),
        ProviderKind::Gemini => json!({
            "error": {"code": status, "message": message, "status": google_status(status)}
        }),
    }
}

/// The 429 body. Gemini states the wait in a `google.rpc.RetryInfo` detail rather than a header.
pub fn rate_limited_body(kind: ProviderKind, retry_after_secs: u64) -> Value {
    let message = "fake provider: rate limit reached, slow down";
    match kind {
        ProviderKind::OpenAi | ProviderKind::Anthropic => error_body(kind, 429, message),
        ProviderKind::Gemini => json!({
            "error": {
                "code": 429,
                "message": message,
                "status": "RESOURCE_EXHAUSTED",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": format!("{retry_after_secs}s"),
                }],
            }
        }),
    }
}

fn openai_message(model: &str, content: &str) -> Value {
    json!({
        "id": "chatcmpl-fake0001",
        "object": "chat.completion",
        "created": FAKE_CREATED_UNIX,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": content,
                "refusal": null,
                "annotations": [],
            },
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": FAKE_INPUT_TOKENS,
            "completion_tokens": FAKE_OUTPUT_TOKENS,
            "total_tokens": FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS,
        },
        "service_tier": "default",
    })
}

fn anthropic_message(model: &str, content: Value, stop_reason: &str) -> Value {
    json!({
        "id": "msg_fake0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": FAKE_INPUT_TOKENS, "output_tokens": FAKE_OUTPUT_TOKENS},
    })
}

fn gemini_response(model: &str, text: &str) -> Value {
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": [{"text": text}]},
            "finishReason": "STOP",
            "index": 0,
        }],
        "usageMetadata": {
            "promptTokenCount": FAKE_INPUT_TOKENS,
            "candidatesTokenCount": FAKE_OUTPUT_TOKENS,
            "totalTokenCount": FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS,
        },
        "modelVersion": model,
        "responseId": "fake-response-0001",
    })
}

fn openai_error_type(status: u16) -> &'static str {
    match status {
        401 | 403 => "invalid_request_error",
        429 => "rate_limit_exceeded",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn google_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}
