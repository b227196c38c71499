//! `POST /api/tasks/bulk`: one outcome per distinct id, failures beside successes.

use serde_json::{json, Value};

use crate::support::{Options, TestServer};

fn outcome<'a>(answer: &'a Value, id: &str) -> &'a Value {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|result| result["taskId"] == id)
        .unwrap_or_else(|| panic!("no outcome for {id} in {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reports_each_id() {
    let server = TestServer::start().await;
    let pending = server.pending_task(&server.alice).await;
    let done = server.completed_task(&server.alice).await;
    let bobs = server.pending_task(&server.bob).await;
    let ids = json!([
        pending.id,
        done.id,
        bobs.id,
        "task_1_abcdef",
        "garbage",
        pending.id
    ]);
    let answer = server
        .post("/api/tasks/bulk")
        .bearer(&server.alice)
        .json(&json!({"action": "cancel", "taskIds": ids}))
        .send()
        .await;
    answer.expect(200);
    let body = answer.json();
    assert_eq!(body["action"], "cancel");
    assert_eq!(
        body["results"].as_array().unwrap().len(),
        5,
        "duplicates are merged"
    );
    let ok = outcome(&body, pending.id.as_str());
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["task"]["status"], "cancelled");
    let conflict = outcome(&body, done.id.as_str());
    assert_eq!(
        (conflict["ok"].clone(), conflict["status"].clone()),
        (json!(false), json!(409))
    );
    for hidden in [bobs.id.as_str(), "task_1_abcdef", "garbage"] {
        let result = outcome(&body, hidden);
        assert_eq!(result["status"], 404, "{hidden}");
        assert_eq!(result["error"], "task not found");
    }
    let bobs_now = server
        .get(&format!("/api/tasks/{}", bobs.id))
        .bearer(&server.bob)
        .send()
        .await;
    assert_eq!(
        bobs_now.json()["status"],
        "pending",
        "someone else's task is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_and_delete() {
    let server = TestServer::start().await;
    let cancelled = server.cancelled_task(&server.alice).await;
    let running = server.running_task(&server.alice).await;
    let done = server.completed_task(&server.alice).await;
    let retry = server
        .post("/api/tasks/bulk")
        .bearer(&server.alice)
        .json(&json!({"action": "retry", "taskIds": [cancelled.id, done.id]}))
        .send()
        .await
        .json();
    assert_eq!(outcome(&retry, cancelled.id.as_str())["ok"], true);
    assert_eq!(outcome(&retry, done.id.as_str())["status"], 409);

    let delete = server
        .post("/api/tasks/bulk")
        .bearer(&server.alice)
        .json(&json!({"action": "delete", "taskIds": [done.id, running.id]}))
        .send()
        .await
        .json();
    let deleted = outcome(&delete, done.id.as_str());
    assert_eq!(deleted["ok"], true);
    assert!(deleted.get("task").is_none());
    assert_eq!(
        outcome(&delete, running.id.as_str())["status"],
        409,
        "a running task is not deleted"
    );
    server
        .get(&format!("/api/tasks/{}", done.id))
        .bearer(&server.alice)
        .send()
        .await
        .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_list_is_bounded() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let ids: Vec<String> = (0..1001).map(|i| format!("task_1_abcdef{i}")).collect();
    let answer = server
        .post("/api/tasks/bulk")
        .bearer(&server.alice)
        .json(&json!({"action": "delete", "taskIds": ids}))
        .send()
        .await;
    answer.expect(400);
    assert_eq!(answer.json()["field"], "taskIds");
}
