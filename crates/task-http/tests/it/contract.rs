//! The existing front end's contract: names, shapes and behaviour it relies on.

use std::time::Duration;

use serde_json::json;

use crate::support::sse::Item;
use crate::support::{newest_first, Options, TestServer, ALICE, BOB, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_ai_questions_answers_at_once_with_a_task_id() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let answer = server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .json(&json!({"amount":10,"category":"Historia","ageGroup":"adults","difficulty":"medium","provider":"openai"}))
        .send()
        .await;
    answer.expect(200);
    let body = answer.json();
    assert_eq!(body["success"], true);
    let id = body["taskId"].as_str().unwrap();
    assert!(id.starts_with("task_"), "{id}");
    assert_eq!(body.as_object().unwrap().len(), 2);
    let task = server
        .get(&format!("/api/tasks/{id}"))
        .bearer(&server.alice)
        .send()
        .await
        .json();
    assert_eq!(task["task_type"], "generation");
    assert_eq!(task["status"], "pending");
    assert_eq!(task["user_id"], ALICE);
    assert_eq!(task["label"], "10 frågor om Historia");
    assert_eq!(
        task["params"],
        json!({"amount":10,"category":"Historia","ageGroup":"adults","difficulty":"medium","provider":"openai","language":"sv"}),
        "the checked parameters, language defaulted"
    );
    assert_eq!(task["description"], "Genererar 10 frågor om Historia");
    for field in [
        "id",
        "user_id",
        "task_type",
        "status",
        "label",
        "description",
        "progress",
        "total",
        "result",
        "created_at",
        "updated_at",
        "completed_at",
        "error",
        "attempt",
    ] {
        assert!(task.get(field).is_some(), "task JSON lacks {field}");
    }
    assert!(task.get("lease_token").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_background_tasks_lists_newest_first() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let mut alices = Vec::new();
    for _ in 0..3 {
        alices.push(server.pending_task(&server.alice).await);
    }
    let bobs = server.pending_task(&server.bob).await;
    let ids = |value: serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|task| task["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let own = server
        .get("/api/getBackgroundTasks")
        .bearer(&server.alice)
        .send()
        .await
        .json();
    let alices_newest_first = newest_first(&alices);
    assert_eq!(ids(own), alices_newest_first);
    let limited = server
        .get("/api/getBackgroundTasks?limit=2")
        .bearer(&server.alice)
        .send()
        .await
        .json();
    assert_eq!(ids(limited), alices_newest_first[..2].to_vec());
    let own_by_name = server
        .get("/api/getBackgroundTasks?userId=alice%40example.com")
        .bearer(&server.alice)
        .send()
        .await
        .json();
    assert_eq!(ids(own_by_name).len(), 3);
    let everyone = server
        .get("/api/getBackgroundTasks")
        .bearer(&server.root)
        .send()
        .await
        .json();
    let mut all = alices.clone();
    all.push(bobs.clone());
    assert_eq!(ids(everyone), newest_first(&all));
    let just_bob = server
        .get(&format!("/api/getBackgroundTasks?userId={BOB}"))
        .bearer(&server.root)
        .send()
        .await
        .json();
    assert_eq!(ids(just_bob), vec![bobs.id.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_to_task_streams_progress_to_completion() {
    let server = TestServer::start().await;
    let task = server
        .create(
            &server.alice,
            json!({"task_type":"sleep","params":{"ms":300,"steps":3}}),
        )
        .await;
    let mut stream = server
        .get(&format!("/api/subscribeToTask?taskId={}", task.id))
        .bearer(&server.alice)
        .open_stream()
        .await;
    assert_eq!(stream.status, 200);
    assert!(stream.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(stream.next_within(WAIT).await, Some(Item::Retry(3000)));
    let events = stream.collect_events(WAIT).await;
    let first = events.first().unwrap().json();
    assert_eq!(first["type"], "update", "the current state comes first");
    let last = events.last().unwrap().json();
    assert_eq!(last["type"], "complete");
    assert_eq!(last["task"]["status"], "completed");
    assert_eq!(last["task"]["result"], json!({"slept_ms": 300, "steps": 3}));
    let ids: Vec<i64> = events
        .iter()
        .map(|event| match event {
            Item::Event { id: Some(id), .. } => id.parse().unwrap(),
            other => panic!("event without id: {other:?}"),
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let progress: Vec<i64> = events
        .iter()
        .map(|e| e.json()["task"]["progress"].as_i64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(*progress.last().unwrap(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_to_task_reports_cancellation_and_finished_tasks() {
    let server = TestServer::start().await;
    let running = server.running_task(&server.alice).await;
    let mut stream = server
        .get(&format!("/api/subscribeToTask?taskId={}", running.id))
        .bearer(&server.alice)
        .open_stream()
        .await;
    let first = stream.next_event(WAIT).await.unwrap().json();
    assert_eq!(first["task"]["status"], "processing");
    server
        .post(&format!("/api/tasks/{}/cancel", running.id))
        .bearer(&server.alice)
        .send()
        .await
        .expect(200);
    let events = stream.collect_events(WAIT).await;
    let last = events.last().unwrap().json();
    assert_eq!(
        last,
        json!({"type": "error", "error": "Task was cancelled"})
    );

    // A finished task: its snapshot and terminal event at once, then the end.
    let done = server.completed_task(&server.alice).await;
    let mut stream = server
        .get(&format!("/api/subscribeToTask?taskId={}", done.id))
        .bearer(&server.alice)
        .open_stream()
        .await;
    let events = stream.collect_events(Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].json()["type"], "complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_without_duplicates() {
    let server = TestServer::start().await;
    let task = server
        .create(
            &server.alice,
            json!({"task_type":"sleep","params":{"ms":400,"steps":4}}),
        )
        .await;
    let done = server.wait_for(&task.id, |t| t.status.is_terminal()).await;
    let mut stream = server
        .get(&format!("/api/subscribeToTask?taskId={}", task.id))
        .bearer(&server.alice)
        .header("last-event-id", &(done.version - 1).to_string())
        .open_stream()
        .await;
    let events = stream.collect_events(WAIT).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        matches!(&events[0], Item::Event { id: Some(id), .. } if *id == done.version.to_string())
    );
    let bad = server
        .get(&format!("/api/subscribeToTask?taskId={}", task.id))
        .bearer(&server.alice)
        .header("last-event-id", "yesterday")
        .send()
        .await;
    bad.expect(400);
    assert_eq!(bad.json()["field"], "Last-Event-ID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_to_tasks_carries_only_visible_tasks() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let mut alices = server
        .get("/api/subscribeToTasks")
        .bearer(&server.alice)
        .open_stream()
        .await;
    let mut roots = server
        .get("/api/subscribeToTasks")
        .bearer(&server.root)
        .open_stream()
        .await;
    assert_eq!(alices.status, 200);
    // Make sure both streams are registered before the changes happen: the first thing each
    // sends is its retry line.
    assert_eq!(alices.next_within(WAIT).await, Some(Item::Retry(3000)));
    assert_eq!(roots.next_within(WAIT).await, Some(Item::Retry(3000)));
    let bobs = server.pending_task(&server.bob).await;
    let own = server.pending_task(&server.alice).await;
    let seen_by_alice = alices.next_event(WAIT).await.unwrap().json();
    assert_eq!(
        seen_by_alice["task"]["id"],
        own.id.as_str(),
        "Bob's task is not shown to Alice"
    );
    let first_for_root = roots.next_event(WAIT).await.unwrap().json();
    assert_eq!(first_for_root["task"]["id"], bobs.id.as_str());
}
