//! Zombie fencing: a worker process paused (SIGSTOP) past its lease loses its task to another
//! instance, and when it wakes up its writes change nothing: the task completes once, from the
//! run that owns it. On PostgreSQL (several instances share a database there); skipped with a
//! printed reason without `TASKLANE_TEST_POSTGRES`.

use serde_json::json;

use super::{signal, until_completed, until_task, QUICK_RESCUE};
use crate::cluster::{client, create_task, TestSchema};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_past_its_lease_is_fenced_when_it_wakes() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let a = schema.start(&QUICK_RESCUE);
    let token = a.first_admin_token();
    let sleep_ms = 3000;
    let task = create_task(
        &client(),
        &a,
        &token,
        &json!({"task_type": "sleep", "params": {"ms": sleep_ms, "steps": 30}}),
    )
    .await;
    let id = task["id"].as_str().unwrap().to_owned();
    until_task(&a, &token, &id, |task| {
        a.owns(&task["lease_owner"]) && task["progress"].as_i64() > Some(0)
    })
    .await;

    signal(a.pid(), "STOP");
    let b = schema.start(&QUICK_RESCUE);
    let taken = until_task(&b, &token, &id, |task| b.owns(&task["lease_owner"])).await;
    assert_eq!(taken["attempt"], 2, "{taken}");
    // A wakes while B runs the task, with far less of the sleep left than B has: unfenced, it
    // would finish the task first.
    signal(a.pid(), "CONT");

    let events = until_completed(&b, &token, &id).await;
    let done = &events.last().unwrap()["task"];
    assert_eq!(done["attempt"], 2, "{done}");
    let ran_for = done["completed_at"].as_i64().unwrap() - done["started_at"].as_i64().unwrap();
    assert!(
        ran_for >= sleep_ms,
        "completed {ran_for} ms after B's start: by the zombie"
    );
    // Every event after B's claim is B's run: progress only grows.
    let progress: Vec<i64> = events
        .iter()
        .map(|event| event["task"]["progress"].as_i64().unwrap())
        .collect();
    assert!(
        progress.windows(2).all(|pair| pair[0] <= pair[1]),
        "{progress:?}"
    );
}
