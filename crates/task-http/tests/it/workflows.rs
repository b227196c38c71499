//! Workflows and dependencies over HTTP: `POST /api/workflows` (atomic, with the graph's
//! errors named), `GET /api/workflows/{id}`, `POST /api/workflows/{id}/cancel`, and
//! `depends_on` on `POST /api/tasks`.

use serde_json::{json, Value};
use task_core::TaskId;
use task_store::TaskStore;

use crate::support::quiz_server::{providers, QuizServer};
use crate::support::{now_millis, Options, TestServer, ALICE};

fn id(value: &Value) -> TaskId {
    value.as_str().unwrap().parse().unwrap()
}

async fn error_of(server: &TestServer, token: &str, body: Value) -> (u16, String) {
    let answer = server
        .post("/api/workflows")
        .bearer(token)
        .json(&body)
        .send()
        .await;
    let status = answer.status.as_u16();
    (
        status,
        answer.json()["error"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_parents_first_and_is_readable() {
    let server = TestServer::start().await;
    let answer = server
        .post("/api/workflows")
        .bearer(&server.alice)
        .json(&json!({
            "nodes": [
                {"key": "root", "task_type": "noop", "label": "first"},
                {"key": "left", "task_type": "noop"},
                {"key": "right", "task_type": "noop"},
                {"key": "sink", "task_type": "noop"}
            ],
            "edges": [
                {"parent": "root", "child": "left"},
                {"parent": "root", "child": "right"},
                {"parent": "left", "child": "sink"},
                {"parent": "right", "child": "sink"}
            ]
        }))
        .send()
        .await;
    answer.expect(201);
    let created = answer.json();
    let workflow_id = created["workflowId"].as_str().unwrap().to_owned();
    assert_eq!(
        answer.header("location").unwrap(),
        format!("/api/workflows/{workflow_id}")
    );
    let sink = id(&created["tasks"]["sink"]);
    let root = id(&created["tasks"]["root"]);
    let done = server.wait_for(&sink, |t| t.status.is_terminal()).await;
    assert_eq!(done.status.as_str(), "completed");
    let root_task = server.store.get(&root).await.unwrap();
    assert!(
        root_task.completed_at <= done.started_at,
        "the root ran first"
    );

    let view = server
        .get(&format!("/api/workflows/{workflow_id}"))
        .bearer(&server.alice)
        .send()
        .await;
    view.expect(200);
    let view = view.json();
    assert_eq!(view["userId"], ALICE);
    let keys: Vec<&str> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["root", "left", "right", "sink"]);
    assert_eq!(view["nodes"][0]["task"]["label"], "first");
    assert_eq!(
        view["nodes"][3]["task"]["workflow_id"],
        workflow_id.as_str()
    );
    assert_eq!(view["edges"].as_array().unwrap().len(), 4);

    // Another user gets 404, the superuser sees it.
    for (token, status) in [(&server.bob, 404), (&server.root, 200)] {
        server
            .get(&format!("/api/workflows/{workflow_id}"))
            .bearer(token)
            .send()
            .await
            .expect(status);
    }
    server
        .get("/api/workflows/wf_1_nothing")
        .bearer(&server.alice)
        .send()
        .await
        .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_graphs_are_refused_by_name_and_write_nothing() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let two = |edges: Value| {
        json!({
            "nodes": [{"key": "a", "task_type": "noop"}, {"key": "b", "task_type": "noop"}],
            "edges": edges
        })
    };
    let too_many: Vec<Value> = (0..1001)
        .map(|n| json!({"key": format!("n{n}"), "task_type": "noop"}))
        .collect();
    let cases = [
        (
            two(json!([{"parent": "a", "child": "b"}, {"parent": "b", "child": "a"}])),
            "cycle",
        ),
        (
            two(json!([{"parent": "a", "child": "zz"}])),
            "unknown node key \\\"zz\\\"",
        ),
        (
            two(json!([{"parent": "a", "child": "a"}])),
            "self-edge on node \\\"a\\\"",
        ),
        (json!({"nodes": too_many}), "at most 1000 nodes"),
        (
            json!({"nodes": [{"key": "a", "task_type": "no-such-type"}]}),
            "node \"a\": invalid task_type",
        ),
        (json!({"nodes": []}), "at least one node"),
        (
            json!({"nodes": [{"task_type": "noop"}]}),
            "node 0: invalid key",
        ),
    ];
    for (body, expected) in cases {
        let (status, error) = error_of(&server, &server.alice, body).await;
        assert_eq!(status, 400, "{expected}: {error}");
        let expected = expected.replace("\\\"", "\"");
        assert!(
            error.contains(&expected),
            "{error:?} should name {expected:?}"
        );
    }
    let page = server.get("/api/tasks").bearer(&server.alice).send().await;
    assert_eq!(page.json()["tasks"], json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_of_other_users_are_not_found() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let bobs = server.pending_task(&server.bob).await;
    let (status, error) = error_of(
        &server,
        &server.alice,
        json!({"nodes": [{"key": "a", "task_type": "noop", "depends_on": [bobs.id.as_str()]}]}),
    )
    .await;
    assert_eq!((status, error.as_str()), (404, "task not found"));
    let answer = server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&json!({"task_type": "noop", "depends_on": [bobs.id.as_str()]}))
        .send()
        .await;
    answer.expect(404);
    let page = server.get("/api/tasks").bearer(&server.alice).send().await;
    assert_eq!(page.json()["tasks"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depends_on_waits_and_failure_cancels_unless_run_anyway() {
    let server = TestServer::start().await;
    let parent = server.pending_task(&server.alice).await;
    let strict = server
        .create(
            &server.alice,
            json!({"task_type": "noop", "depends_on": [parent.id.as_str()]}),
        )
        .await;
    assert_eq!(strict.status.as_str(), "waiting");
    assert_eq!(strict.waiting_for, 1);
    let lenient = server
        .create(
            &server.alice,
            json!({"task_type": "noop", "depends_on": [{"task_id": parent.id.as_str(), "run_on_failure": true}]}),
        )
        .await;
    let listed = server
        .get("/api/tasks?status=waiting")
        .bearer(&server.alice)
        .send()
        .await;
    assert_eq!(listed.json()["tasks"].as_array().unwrap().len(), 2);

    server
        .post(&format!("/api/tasks/{}/cancel", parent.id))
        .bearer(&server.alice)
        .send()
        .await
        .expect(200);
    let strict = server
        .wait_for(&strict.id, |t| t.status.is_terminal())
        .await;
    assert_eq!(strict.status.as_str(), "cancelled");
    assert_eq!(
        strict.error,
        Some(format!("dependency {} was cancelled", parent.id))
    );
    let lenient = server
        .wait_for(&lenient.id, |t| t.status.is_terminal())
        .await;
    assert_eq!(lenient.status.as_str(), "completed");

    // Retrying the parent re-arms the cancelled child, which then runs after it.
    let retried = server
        .post(&format!("/api/tasks/{}/retry", parent.id))
        .bearer(&server.alice)
        .send()
        .await;
    retried.expect(200);
    let strict = server
        .wait_for(&strict.id, |t| t.status.is_terminal())
        .await;
    assert_eq!(strict.status.as_str(), "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_workflow_cancels_its_unfinished_nodes() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let later = now_millis() + 3_600_000;
    let answer = server
        .post("/api/workflows")
        .bearer(&server.alice)
        .json(&json!({
            "nodes": [
                {"key": "a", "task_type": "noop", "run_at": later},
                {"key": "b", "task_type": "noop"}
            ],
            "edges": [{"parent": "a", "child": "b"}]
        }))
        .send()
        .await;
    answer.expect(201);
    let workflow_id = answer.json()["workflowId"].as_str().unwrap().to_owned();
    server
        .post(&format!("/api/workflows/{workflow_id}/cancel"))
        .bearer(&server.bob)
        .send()
        .await
        .expect(404);
    let cancelled = server
        .post(&format!("/api/workflows/{workflow_id}/cancel"))
        .bearer(&server.alice)
        .send()
        .await;
    cancelled.expect(200);
    let statuses: Vec<Value> = cancelled.json()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["task"]["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("cancelled"), json!("cancelled")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_then_validation_and_emojis_runs_as_one_workflow() {
    let quiz = QuizServer::start(providers(None)).await;
    let server = &quiz.server;
    let request = |then: Value| {
        json!({
            "amount": 3, "category": "Matematik", "ageGroup": "adults",
            "difficulty": "medium", "provider": "offline", "then": then
        })
    };
    let answer = server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .json(&request(json!(["validation", "emoji-regeneration"])))
        .send()
        .await;
    answer.expect(200);
    let body = answer.json();
    assert_eq!(body["success"], true);
    let generation = id(&body["taskId"]);
    let workflow_id = body["workflowId"].as_str().unwrap().to_owned();
    let view = server
        .get(&format!("/api/workflows/{workflow_id}"))
        .bearer(&server.alice)
        .send()
        .await;
    let view = view.json();
    let nodes = view["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["task"]["id"], generation.as_str());
    // The offline generation may already be done, so validation can be past `waiting` here; the
    // waiting itself is covered by the dependency tests.
    let status = nodes[1]["task"]["status"].as_str().unwrap();
    assert!(
        ["waiting", "pending", "processing", "completed"].contains(&status),
        "{status}"
    );
    let validation = id(&nodes[1]["task"]["id"]);
    let emojis = id(&nodes[2]["task"]["id"]);

    let emojis = server.wait_for(&emojis, |t| t.status.is_terminal()).await;
    assert_eq!(emojis.status.as_str(), "completed", "{:?}", emojis.error);
    let generated = server.store.get(&generation).await.unwrap().result.unwrap();
    let validated = server.store.get(&validation).await.unwrap().result.unwrap();
    let count = generated["questionsGenerated"].as_u64().unwrap();
    assert!(count > 0);
    assert_eq!(validated["validated"].as_u64(), Some(count), "{validated}");
    assert_eq!(emojis.result.unwrap()["updated"].as_u64(), Some(count));

    // Without `then` the answer is as before; a bad `then` is a 400 naming it.
    let plain = server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .json(&request(Value::Null))
        .send()
        .await;
    plain.expect(200);
    assert!(plain.json().get("workflowId").is_none());
    let bad = server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .json(&request(json!(["deploy"])))
        .send()
        .await;
    bad.expect(400);
    assert!(bad.error().starts_with("invalid then:"), "{}", bad.error());
    quiz.server.shutdown().await;
}

/// The queue limit counts `waiting` tasks: a workflow's waiting steps occupy the queue, so the
/// next creation (of any kind) is refused until one of them finishes or is cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_limit_counts_waiting_tasks() {
    let server = TestServer::start_with(Options {
        config: task_http::HttpConfig {
            max_queued_per_user: 3,
            ..task_http::HttpConfig::default()
        },
        runtime: false,
    })
    .await;
    let answer = server
        .post("/api/workflows")
        .bearer(&server.alice)
        .json(&json!({
            "nodes": [
                {"key": "root", "task_type": "noop"},
                {"key": "a", "task_type": "noop"},
                {"key": "b", "task_type": "noop"}
            ],
            "edges": [{"parent": "root", "child": "a"}, {"parent": "a", "child": "b"}]
        }))
        .send()
        .await;
    answer.expect(201);
    let waiting = id(&answer.json()["tasks"]["b"]);
    assert_eq!(
        server.store.get(&waiting).await.unwrap().status.as_str(),
        "waiting"
    );
    let create = || {
        server
            .post("/api/tasks")
            .bearer(&server.alice)
            .json(&json!({"task_type": "noop"}))
            .send()
    };
    let refused = create().await;
    refused.expect(429);
    assert!(refused.header("retry-after").is_some());
    // Cancelling a waiting step frees its place.
    server
        .post(&format!("/api/tasks/{waiting}/cancel"))
        .bearer(&server.alice)
        .send()
        .await
        .expect(200);
    // A full estimate makes the ledger count again, so the freed place is seen at once.
    create().await.expect(201);
}
