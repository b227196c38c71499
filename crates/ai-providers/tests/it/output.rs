//! Provider-specific answers that look like success but are not usable, and error bodies that
//! need more than the status to classify.

use ai_providers::{JsonRequest, ProviderError};
use serde_json::{json, Value};
use test_support::Scripted;

use crate::support::{quiz_answer, quiz_request, quiz_schema, start, Case, CASES};

fn case(name: &str) -> Case {
    CASES.into_iter().find(|c| c.name == name).unwrap()
}

/// Sends `body` as the raw answer of provider `name` and returns the error it maps to.
async fn check(name: &str, status: u16, body: Value) -> ProviderError {
    let (_fake, provider) = start(case(name), vec![Scripted::Raw(status, body.to_string())]).await;
    provider.generate_json(&quiz_request()).await.unwrap_err()
}

fn assert_invalid_output(error: &ProviderError, needle: &str) {
    match error {
        ProviderError::InvalidOutput { message, .. } => {
            assert!(message.contains(needle), "{needle:?} not in {message:?}")
        }
        other => panic!("expected InvalidOutput containing {needle:?}, got {other:?}"),
    }
}

fn openai_choice(message: Value, finish_reason: &str) -> Value {
    json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
           "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": null}]})
}

#[tokio::test]
async fn openai_refusals_and_truncation_are_invalid_output() {
    let refusal = openai_choice(
        json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
        "stop",
    );
    assert_invalid_output(
        &check("openai", 200, refusal).await,
        "refused: I can't help",
    );
    let truncated = openai_choice(
        json!({"role": "assistant", "content": "{\"questions\": [", "refusal": null}),
        "length",
    );
    assert_invalid_output(&check("openai", 200, truncated).await, "cut off");
    assert_invalid_output(
        &check("openai", 200, json!({"choices": []})).await,
        "no choices",
    );
}

#[tokio::test]
async fn openai_exhausted_quota_is_permanent_not_a_rate_limit() {
    let body = json!({"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota",
                                "param": null, "code": "insufficient_quota"}});
    let error = check("openai", 429, body).await;
    assert!(
        matches!(&error, ProviderError::Permanent { message, .. } if message.contains("exceeded your current quota")),
        "{error:?}"
    );
}

#[tokio::test]
async fn anthropic_needs_the_forced_tool_call() {
    let other_tool = json!({"id": "m", "type": "message", "role": "assistant", "model": "c",
        "content": [{"type": "text", "text": "Let me think."},
                    {"type": "tool_use", "id": "t", "name": "something_else", "input": quiz_answer()}],
        "stop_reason": "tool_use", "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}});
    assert_invalid_output(&check("anthropic", 200, other_tool).await, "Let me think.");
    let cut = json!({"id": "m", "type": "message", "role": "assistant", "model": "c", "content": [],
        "stop_reason": "max_tokens", "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}});
    assert_invalid_output(
        &check("anthropic", 200, cut).await,
        "stop_reason max_tokens",
    );
}

#[tokio::test]
async fn gemini_blocks_truncation_and_thoughts() {
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
    assert_invalid_output(
        &check("gemini", 200, blocked).await,
        "prompt blocked: SAFETY",
    );
    let cut = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "{\"q"}]},
                                     "finishReason": "MAX_TOKENS"}]});
    assert_invalid_output(&check("gemini", 200, cut).await, "cut off");

    // A thought summary part is not part of the answer; the real text may also come in pieces.
    let answer = quiz_answer().to_string();
    let (first, second) = answer.split_at(answer.len() / 2);
    let with_thought = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Thinking about arithmetic...", "thought": true},
        {"text": first}, {"text": second}]}, "finishReason": "STOP"}]});
    let (_fake, provider) = start(
        case("gemini"),
        vec![Scripted::Raw(200, with_thought.to_string())],
    )
    .await;
    assert_eq!(
        provider.generate_json(&quiz_request()).await.unwrap(),
        quiz_answer()
    );
}

#[tokio::test]
async fn long_provider_messages_are_cut() {
    let long = "x".repeat(5000);
    let error = check(
        "openai",
        400,
        json!({"error": {"message": long, "type": "invalid_request_error",
                                                       "param": null, "code": null}}),
    )
    .await;
    let text = error.to_string();
    assert!(text.len() < 500, "{} chars", text.len());
    assert!(text.ends_with('…'), "{text}");
}

#[tokio::test]
async fn non_json_error_bodies_are_quoted_raw() {
    let (_fake, provider) = start(
        case("anthropic"),
        vec![Scripted::Raw(502, "<html>Bad Gateway</html>".to_owned())],
    )
    .await;
    let error = provider.generate_json(&quiz_request()).await.unwrap_err();
    assert!(
        matches!(&error, ProviderError::Transient { message, .. } if message == "HTTP 502: <html>Bad Gateway</html>"),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_requests_fail_before_any_network_call() {
    let bad_requests = [
        JsonRequest::new("s", "p", "has space", quiz_schema()),
        JsonRequest::new("s", "p", "x".repeat(65), quiz_schema()),
        JsonRequest::new("s", "p", "ok", json!({"type": "array"})),
        JsonRequest::new("s", "  ", "ok", quiz_schema()),
        JsonRequest::new("s", "p", "ok", quiz_schema()).with_max_output_tokens(0),
    ];
    for case in CASES {
        let (fake, provider) = start(case, vec![]).await;
        for request in &bad_requests {
            let error = provider.generate_json(request).await.unwrap_err();
            assert!(
                matches!(&error, ProviderError::Permanent { message, .. } if message.starts_with("invalid request")),
                "{}: {error:?}",
                case.name
            );
        }
        assert!(fake.requests().is_empty(), "{}", case.name);
    }
}
