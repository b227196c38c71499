//! The fake's request checks and scripted answers, driven by a plain HTTP client.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use test_support::{Expectations, ExpectedKey, FakeProvider, ProviderKind, Scripted, StreamPlan};

const WAIT: Duration = Duration::from_secs(5);

fn openai_body(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
    })
}

async fn post(
    fake: &FakeProvider,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", fake.base_url()))
        .json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("the fake answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_valid_request_gets_the_scripted_answer_wrapped_in_the_envelope() {
    let answer = json!({"ok": true});
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![Scripted::Success(answer.clone())],
    )
    .await;
    let (status, body) = post(&fake, "/chat/completions", Some("k"), &openai_body("m")).await;
    assert_eq!(status, StatusCode::OK);
    let content = body
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(content).unwrap(), answer);
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.requests()[0].path, "/v1/chat/completions");
    assert!(
        fake.schema_violations().is_empty(),
        "{:?}",
        fake.schema_violations()
    );
    assert!(
        fake.protocol_violations().is_empty(),
        "{:?}",
        fake.protocol_violations()
    );
    assert_eq!(fake.remaining_script(), 0);
}

#[tokio::test]
async fn a_streamed_answer_notes_when_each_items_last_byte_went_out() {
    const PACE: Duration = Duration::from_millis(40);
    let items: Vec<Value> = (0..3).map(|n| json!({"n": n})).collect();
    let plan = StreamPlan::new(json!({"items": items})).pace(PACE);
    let fake = FakeProvider::start(ProviderKind::OpenAi, vec![Scripted::Stream(plan)]).await;
    let mut body = openai_body("m");
    body["stream"] = json!(true);
    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url()))
        .bearer_auth("k")
        .json(&body)
        .send()
        .await
        .expect("the fake answers");
    let text = response.text().await.expect("the whole stream");
    let received = std::time::Instant::now();
    assert!(text.contains("[DONE]"), "{text}");
    let written = fake.items_written();
    assert_eq!(written.len(), 3, "one mark per item");
    // Each item is written after its pause, in order, before the client had the whole body.
    assert!(written[0] >= started + PACE);
    assert!(written.windows(2).all(|pair| pair[1] >= pair[0] + PACE));
    assert!(written[2] <= received);
}

#[tokio::test]
async fn bad_requests_are_refused_recorded_and_use_no_script() {
    let expect = Expectations {
        api_key: ExpectedKey::Exactly("right".to_owned()),
        model: Some("m".to_owned()),
    };
    let fake =
        FakeProvider::start_with(ProviderKind::OpenAi, expect, vec![Scripted::Status(500)]).await;
    let cases: [(&str, Option<&str>, Value, StatusCode); 5] = [
        (
            "/completions",
            Some("right"),
            openai_body("m"),
            StatusCode::NOT_FOUND,
        ),
        (
            "/chat/completions",
            None,
            openai_body("m"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/chat/completions",
            Some("wrong"),
            openai_body("m"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/chat/completions",
            Some("right"),
            openai_body("other"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/chat/completions",
            Some("right"),
            json!({"model": "m", "messages": []}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (path, key, body, expected) in cases {
        let (status, answer) = post(&fake, path, key, &body).await;
        assert_eq!(status, expected, "{path} {key:?} {body}");
        assert!(
            answer.pointer("/error/message").is_some(),
            "error envelope: {answer}"
        );
    }
    assert_eq!(
        fake.protocol_violations().len(),
        4,
        "{:#?}",
        fake.protocol_violations()
    );
    assert_eq!(
        fake.schema_violations().len(),
        1,
        "{:#?}",
        fake.schema_violations()
    );
    assert_eq!(
        fake.remaining_script(),
        1,
        "refused requests must not consume the script"
    );
}

#[tokio::test]
async fn requests_beyond_the_script_are_violations() {
    let fake = FakeProvider::start(ProviderKind::OpenAi, vec![]).await;
    let (status, _) = post(&fake, "/chat/completions", Some("k"), &openai_body("m")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fake.protocol_violations().len(), 1);
}

#[tokio::test]
async fn rate_limits_say_how_long_to_wait() {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![Scripted::RateLimited {
            retry_after_secs: 9,
        }],
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url()))
        .bearer_auth("k")
        .json(&openai_body("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "9");
}

#[tokio::test]
async fn a_hanging_answer_ends_when_the_client_goes_away() {
    let fake = FakeProvider::start(ProviderKind::OpenAi, vec![Scripted::Hang]).await;
    let url = format!("{}/chat/completions", fake.base_url());
    let client = reqwest::Client::new();
    let call = tokio::spawn(async move {
        client
            .post(url)
            .bearer_auth("k")
            .json(&openai_body("m"))
            .send()
            .await
    });
    fake.wait_for_requests(1, WAIT).await.unwrap();
    assert_eq!(fake.connections_closed(), 0);
    call.abort();
    fake.wait_for_closed_connections(1, WAIT).await.unwrap();
}

#[tokio::test]
async fn the_fake_reads_the_model_from_the_gemini_path() {
    let fake = FakeProvider::start_with(
        ProviderKind::Gemini,
        Expectations {
            api_key: ExpectedKey::Present,
            model: Some("gemini-x".to_owned()),
        },
        vec![Scripted::Success(json!({"a": 1}))],
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1beta/models/gemini-x:generateContent",
            fake.base_url()
        ))
        .header("x-goog-api-key", "k")
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["modelVersion"], "gemini-x");
    assert!(
        fake.protocol_violations().is_empty(),
        "{:?}",
        fake.protocol_violations()
    );
}
