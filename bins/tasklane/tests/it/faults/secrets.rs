//! A provider that echoes the request's `Authorization` header in its error body, as a careless
//! proxy or provider does: the binary's API key must appear nowhere a user or an operator looks:
//! the task's error over HTTP, the listings, the SSE stream, and the process's own logs (at
//! `debug`, the most an operator would turn on).

use serde_json::{json, Value};
use test_support::{FakeProvider, ProviderKind, Scripted};

use super::{add_user, get_json, Server};
use crate::cluster::{client, Endpoint, EventStream};
use crate::process::WAIT;

/// Long and distinctive, so any copy of it (or of its tail) is found.
const KEY: &str = "sk-echoed-4f1c9a7e2b6d8e0f3a5c7b9d1e2f4a6c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_echoing_the_api_key_never_gets_it_into_errors_streams_or_logs() {
    // 401 is final (no retry); 500 is retried, so the echo passes through the retry path too.
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![
            Scripted::EchoCredentials(500),
            Scripted::EchoCredentials(401),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = add_user(dir.path(), "anna@example.com");
    let base_url = fake.base_url();
    let server = Server::start_with_env(
        dir.path(),
        &[],
        &[
            ("OPENAI_API_KEY", KEY),
            ("OPENAI_BASE_URL", &base_url),
            ("RUST_LOG", "debug"),
        ],
    );
    let client = client();
    let answer: Value = client
        .post(server.url("/api/generateAIQuestions"))
        .bearer_auth(&token)
        .json(&json!({
            "amount": 5, "category": "Matematik", "ageGroup": "adults",
            "difficulty": "medium", "provider": "openai"
        }))
        .timeout(WAIT)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("a JSON answer");
    let id = answer["taskId"].as_str().expect("a task id").to_owned();

    // Every event of the task's stream until it fails.
    let path = format!("/api/subscribeToTask?taskId={id}");
    let mut stream = EventStream::open(&client, &server, &token, &path).await;
    let mut events = Vec::new();
    while let Some(event) = stream.next_within(WAIT).await {
        let failed = event["type"] == "error";
        events.push(event);
        if failed {
            break;
        }
    }
    let last = events.last().expect("events");
    assert_eq!(last["type"], "error", "{events:#?}");
    let error = last["error"].as_str().expect("an error message");
    // The provider's message is shown, with the credential cut out.
    assert!(error.contains("[redacted]"), "{error}");

    let (status, task) = get_json(&server, &token, &format!("/api/tasks/{id}")).await;
    assert_eq!((status, &task["status"]), (200, &json!("failed")), "{task}");
    assert_eq!(task["error"], error);
    let (_, listed) = get_json(&server, &token, "/api/tasks").await;
    let (_, contract) = get_json(&server, &token, "/api/getBackgroundTasks").await;
    assert_eq!(
        fake.requests().len(),
        2,
        "the 500 was retried, the 401 was not"
    );
    let sent = format!("Bearer {KEY}");
    assert!(
        fake.requests()
            .iter()
            .all(|request| request.header("authorization") == Some(sent.as_str())),
        "the key was sent to the provider"
    );

    let logs = server.stop_and_collect_output();
    assert!(
        logs.iter().any(|line| line.contains("[redacted]")),
        "the provider's error was logged (redacted): {logs:#?}"
    );
    let seen = [
        ("the stream", serde_json::to_string(&events).unwrap()),
        ("the task", task.to_string()),
        ("the task list", listed.to_string()),
        ("the contract list", contract.to_string()),
        ("the logs", logs.join("\n")),
    ];
    // Any 12-character run of the key would be a leak, not only the whole of it.
    let fragments: Vec<&str> = (0..=KEY.len() - 12).map(|at| &KEY[at..at + 12]).collect();
    for (place, text) in seen {
        for fragment in &fragments {
            assert!(
                !text.contains(fragment),
                "{place} holds {fragment:?} of the key: {text}"
            );
        }
    }
}
