//! `Idempotency-Key` on the creating endpoints and the `unique_key` option (issue #19).

use serde_json::{json, Value};

use crate::support::client::Answer;
use crate::support::quiz_server::{providers, QuizServer};
use crate::support::{Options, TestServer};

fn quiet() -> Options {
    Options {
        runtime: false,
        ..Options::default()
    }
}

fn generation() -> Value {
    json!({"amount":10,"category":"Historia","ageGroup":"adults","difficulty":"medium","provider":"openai"})
}

async fn post(
    server: &TestServer,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> Answer {
    let mut call = server.post(path).bearer(token).json(body);
    if let Some(key) = key {
        call = call.header("Idempotency-Key", key);
    }
    call.send().await
}

async fn task_count(server: &TestServer, token: &str) -> usize {
    let answer = server.get("/api/tasks").bearer(token).send().await;
    answer.expect(200);
    answer.json()["tasks"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_key_replays_the_first_answer_without_a_second_task() {
    let server = TestServer::start_with(quiet()).await;
    let body = json!({"task_type":"noop","label":"once"});
    let first = post(&server, "/api/tasks", &server.alice, Some("order-1"), &body).await;
    first.expect(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let id = first.json()["id"].as_str().unwrap().to_owned();
    // The task changes meanwhile; the replay is still the first answer, byte for byte.
    server
        .post(&format!("/api/tasks/{id}/cancel"))
        .bearer(&server.alice)
        .send()
        .await
        .expect(200);
    let again = post(&server, "/api/tasks", &server.alice, Some("order-1"), &body).await;
    again.expect(201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(task_count(&server, &server.alice).await, 1);

    // Another user's identical key is theirs alone.
    let bob = post(&server, "/api/tasks", &server.bob, Some("order-1"), &body).await;
    bob.expect(201);
    assert_ne!(bob.json()["id"], first.json()["id"]);
    // Without a key every request creates.
    post(&server, "/api/tasks", &server.alice, None, &body)
        .await
        .expect(201);
    post(&server, "/api/tasks", &server.alice, None, &body)
        .await
        .expect(201);
    assert_eq!(task_count(&server, &server.alice).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_endpoint_replays_its_answer() {
    let server = TestServer::start_with(quiet()).await;
    let first = post(
        &server,
        "/api/generateAIQuestions",
        &server.alice,
        Some("g-1"),
        &generation(),
    )
    .await;
    first.expect(200);
    let again = post(
        &server,
        "/api/generateAIQuestions",
        &server.alice,
        Some("g-1"),
        &generation(),
    )
    .await;
    again.expect(200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(task_count(&server, &server.alice).await, 1);
    // The same key on the other endpoint is a different request.
    let elsewhere = post(
        &server,
        "/api/tasks",
        &server.alice,
        Some("g-1"),
        &json!({"task_type":"noop"}),
    )
    .await;
    elsewhere.expect(422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_with_another_body_is_422_and_creates_nothing() {
    let server = TestServer::start_with(quiet()).await;
    post(
        &server,
        "/api/tasks",
        &server.alice,
        Some("k"),
        &json!({"task_type":"noop","label":"a"}),
    )
    .await
    .expect(201);
    let reused = post(
        &server,
        "/api/tasks",
        &server.alice,
        Some("k"),
        &json!({"task_type":"noop","label":"b"}),
    )
    .await;
    reused.expect(422);
    assert!(
        reused.error().contains("Idempotency-Key"),
        "{}",
        reused.error()
    );
    let mut changed = generation();
    post(
        &server,
        "/api/generateAIQuestions",
        &server.alice,
        Some("g"),
        &generation(),
    )
    .await
    .expect(200);
    changed["amount"] = json!(5);
    post(
        &server,
        "/api/generateAIQuestions",
        &server.alice,
        Some("g"),
        &changed,
    )
    .await
    .expect(422);
    assert_eq!(task_count(&server, &server.alice).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_400() {
    let server = TestServer::start_with(quiet()).await;
    let long = "k".repeat(256);
    for path in ["/api/tasks", "/api/generateAIQuestions"] {
        let body = if path == "/api/tasks" {
            json!({"task_type":"noop"})
        } else {
            generation()
        };
        let answer = post(&server, path, &server.alice, Some(&long), &body).await;
        answer.expect(400);
        assert!(answer.error().contains("255 bytes"), "{}", answer.error());
        post(&server, path, &server.alice, Some(""), &body)
            .await
            .expect(400);
    }
    let fits = "k".repeat(255);
    post(
        &server,
        "/api/tasks",
        &server.alice,
        Some(&fits),
        &json!({"task_type":"noop"}),
    )
    .await
    .expect(201);
    let long_unique = post(
        &server,
        "/api/tasks",
        &server.alice,
        None,
        &json!({"task_type":"noop","unique_key": long}),
    )
    .await;
    long_unique.expect(400);
    assert_eq!(long_unique.json()["field"], "unique_key");
    assert_eq!(task_count(&server, &server.alice).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_with_one_key_make_one_task() {
    let server = std::sync::Arc::new(TestServer::start_with(quiet()).await);
    let mut calls = Vec::new();
    for _ in 0..8 {
        let server = server.clone();
        calls.push(tokio::spawn(async move {
            post(
                &server,
                "/api/tasks",
                &server.alice,
                Some("burst"),
                &json!({"task_type":"noop"}),
            )
            .await
        }));
    }
    let mut bodies = Vec::new();
    for call in calls {
        let answer = call.await.unwrap();
        answer.expect(201);
        bodies.push(answer.body);
    }
    assert!(bodies.iter().all(|body| *body == bodies[0]));
    assert_eq!(task_count(&server, &server.alice).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_key_returns_the_unfinished_task() {
    let server = TestServer::start_with(quiet()).await;
    let body = json!({"task_type":"noop","unique_key":"nightly-report"});
    let first = post(&server, "/api/tasks", &server.alice, None, &body).await;
    first.expect(201);
    let id = first.json()["id"].clone();
    let again = post(&server, "/api/tasks", &server.alice, None, &body).await;
    again.expect(200);
    assert_eq!(again.json()["id"], id);
    // Another user's key of the same name is theirs.
    post(&server, "/api/tasks", &server.bob, None, &body)
        .await
        .expect(201);
    // Once the task is finished, the key creates again.
    server
        .post(&format!("/api/tasks/{}/cancel", id.as_str().unwrap()))
        .bearer(&server.alice)
        .send()
        .await
        .expect(200);
    let fresh = post(&server, "/api/tasks", &server.alice, None, &body).await;
    fresh.expect(201);
    assert_ne!(fresh.json()["id"], id);
    assert_eq!(task_count(&server, &server.alice).await, 2);
}

fn workflow_body(label: &str) -> Value {
    json!({
        "nodes": [
            {"key": "a", "task_type": "noop", "label": label},
            {"key": "b", "task_type": "noop"}
        ],
        "edges": [{"parent": "a", "child": "b"}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_replay_the_first_answer_and_refuse_another_body() {
    let server = TestServer::start_with(quiet()).await;
    let first = post(
        &server,
        "/api/workflows",
        &server.alice,
        Some("wf-1"),
        &workflow_body("x"),
    )
    .await;
    first.expect(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = post(
        &server,
        "/api/workflows",
        &server.alice,
        Some("wf-1"),
        &workflow_body("x"),
    )
    .await;
    again.expect(201);
    assert_eq!(again.json(), first.json());
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(task_count(&server, &server.alice).await, 2);

    let other_body = post(
        &server,
        "/api/workflows",
        &server.alice,
        Some("wf-1"),
        &workflow_body("y"),
    )
    .await;
    other_body.expect(422);
    assert!(other_body.json()["error"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    // The same key on the single-task endpoint is another request too.
    post(
        &server,
        "/api/tasks",
        &server.alice,
        Some("wf-1"),
        &json!({"task_type":"noop"}),
    )
    .await
    .expect(422);
    assert_eq!(task_count(&server, &server.alice).await, 2);
    let long = "k".repeat(256);
    post(
        &server,
        "/api/workflows",
        &server.alice,
        Some(&long),
        &workflow_body("x"),
    )
    .await
    .expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_chain_replays_its_workflow() {
    let quiz = QuizServer::start(providers(None)).await;
    let server = &quiz.server;
    let body = json!({
        "amount": 3, "category": "Matematik", "ageGroup": "adults",
        "difficulty": "medium", "provider": "offline", "then": ["validation"]
    });
    let first = post(
        server,
        "/api/generateAIQuestions",
        &server.alice,
        Some("chain"),
        &body,
    )
    .await;
    first.expect(200);
    assert!(first.json()["workflowId"].is_string());
    let again = post(
        server,
        "/api/generateAIQuestions",
        &server.alice,
        Some("chain"),
        &body,
    )
    .await;
    again.expect(200);
    assert_eq!(again.json(), first.json());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(task_count(server, &server.alice).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_with_parents_is_guarded_too() {
    let server = TestServer::start_with(quiet()).await;
    let parent = post(
        &server,
        "/api/tasks",
        &server.alice,
        None,
        &json!({"task_type":"noop"}),
    )
    .await;
    parent.expect(201);
    let parent_id = parent.json()["id"].as_str().unwrap().to_owned();
    let body = json!({"task_type":"noop","depends_on":[parent_id],"unique_key":"after"});
    let first = post(&server, "/api/tasks", &server.alice, Some("dep"), &body).await;
    first.expect(201);
    assert_eq!(first.json()["status"], "waiting");
    let replay = post(&server, "/api/tasks", &server.alice, Some("dep"), &body).await;
    replay.expect(201);
    assert_eq!(replay.body, first.body);
    // Without the key, the unique key finds the waiting twin.
    let twin = post(&server, "/api/tasks", &server.alice, None, &body).await;
    twin.expect(200);
    assert_eq!(twin.json()["id"], first.json()["id"]);
    assert_eq!(task_count(&server, &server.alice).await, 2);
}
