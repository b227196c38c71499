//! The task endpoints beyond the contract: read, list with filters and paging, create,
//! cancel, retry.

use serde_json::{json, Value};

use crate::support::{newest_first, now_millis, Options, TestServer, ALICE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_answers_201_with_location_and_the_task_runs() {
    let server = TestServer::start().await;
    let run_at = now_millis() + 3_600_000;
    let answer = server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&json!({
            "task_type": "noop",
            "params": {"x": 1},
            "label": "Try",
            "description": "Waiting",
            "run_at": run_at,
            "max_attempts": 2
        }))
        .send()
        .await;
    answer.expect(201);
    let task = answer.json();
    assert_eq!(
        answer.header("location").unwrap(),
        format!("/api/tasks/{}", task["id"].as_str().unwrap())
    );
    assert_eq!(task["user_id"], ALICE);
    assert_eq!(task["params"], json!({"x": 1}));
    assert_eq!(task["label"], "Try");
    assert_eq!(task["description"], "Waiting");
    assert_eq!(task["run_at"], run_at);
    assert_eq!(task["max_attempts"], 2);
    assert_eq!(task["status"], "pending");

    let now = server
        .create(&server.alice, json!({"task_type": "noop"}))
        .await;
    let done = server.wait_for(&now.id, |t| t.status.is_terminal()).await;
    assert_eq!(done.status.as_str(), "completed");
    let fetched = server
        .get(&format!("/api/tasks/{}", now.id))
        .bearer(&server.alice)
        .send()
        .await;
    assert_eq!(fetched.json()["result"], json!({"ok": true}));
}

fn ids(page: &Value) -> Vec<String> {
    page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_pages() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let mut created = Vec::new();
    for label in ["alpha one", "beta two", "alpha three"] {
        let task = server
            .create(
                &server.alice,
                json!({"task_type": "noop", "label": label, "run_at": now_millis() + 3_600_000}),
            )
            .await;
        created.push(task);
    }
    let sleeper = server
        .create(
            &server.alice,
            json!({"task_type": "sleep", "run_at": now_millis() + 3_600_000}),
        )
        .await;
    let cancelled = server.cancelled_task(&server.alice).await;
    server.pending_task(&server.bob).await;

    let get = |path: String| {
        let server = &server;
        async move { server.get(&path).bearer(&server.alice).send().await.json() }
    };
    let all = get("/api/tasks".into()).await;
    assert_eq!(ids(&all).len(), 5, "Alice's tasks only");
    assert_eq!(all["nextCursor"], Value::Null);
    let searched = get("/api/tasks?q=ALPHA".into()).await;
    assert_eq!(
        ids(&searched),
        newest_first(&[created[0].clone(), created[2].clone()])
    );
    let by_type = get("/api/tasks?type=sleep".into()).await;
    assert_eq!(ids(&by_type), vec![sleeper.id.to_string()]);
    let by_status = get("/api/tasks?status=cancelled".into()).await;
    assert_eq!(ids(&by_status), vec![cancelled.id.to_string()]);
    let either = get("/api/tasks?status=cancelled,pending".into()).await;
    assert_eq!(ids(&either).len(), 5);

    let first = get("/api/tasks?limit=2".into()).await;
    assert_eq!(ids(&first).len(), 2);
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let second = get(format!("/api/tasks?limit=2&cursor={cursor}")).await;
    let third = get(format!(
        "/api/tasks?limit=2&cursor={}",
        second["nextCursor"].as_str().unwrap()
    ))
    .await;
    let mut paged = ids(&first);
    paged.extend(ids(&second));
    paged.extend(ids(&third));
    assert_eq!(
        paged,
        ids(&all),
        "pages join up to the full list, newest first"
    );

    let everyone = server
        .get("/api/tasks")
        .bearer(&server.root)
        .send()
        .await
        .json();
    assert_eq!(ids(&everyone).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_retry() {
    let server = TestServer::start().await;
    let pending = server.pending_task(&server.alice).await;
    let cancelled = server
        .post(&format!("/api/tasks/{}/cancel", pending.id))
        .bearer(&server.alice)
        .send()
        .await;
    assert_eq!(cancelled.json()["status"], "cancelled");

    let running = server.running_task(&server.alice).await;
    let asked = server
        .post(&format!("/api/tasks/{}/cancel", running.id))
        .bearer(&server.alice)
        .send()
        .await
        .json();
    assert_eq!(asked["cancel_requested"], true);
    let stopped = server
        .wait_for(&running.id, |t| t.status.is_terminal())
        .await;
    assert_eq!(stopped.status.as_str(), "cancelled");

    let retried = server
        .post(&format!("/api/tasks/{}/retry", pending.id))
        .bearer(&server.alice)
        .send()
        .await
        .json();
    assert_eq!(retried["status"], "pending");
    assert_eq!(retried["attempt"], 0);
}
