//! Per-user fairness: one user's backlog does not starve another user's task.

use std::sync::{Arc, Mutex};

use serde_json::json;
use task_core::{NewTask, TaskStatus};
use task_runtime::{handler_fn, Registry, Runtime, TaskContext};

use crate::support::{config, on_both_stores, wait_status, Harness};

on_both_stores!(late_user_starts_before_the_busy_users_tenth_task);

async fn late_user_starts_before_the_busy_users_tenth_task(h: Harness) {
    let backlog: Vec<NewTask> = (0..200)
        .map(|_| NewTask::new("a@example.com", "work"))
        .collect();
    h.store.create_many(backlog).await.unwrap();
    let late = h
        .store
        .create(NewTask::new("b@example.com", "work"))
        .await
        .unwrap();

    let starts = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&starts);
    let registry = Registry::new().register(
        "work",
        handler_fn(move |ctx: TaskContext| {
            recorded.lock().unwrap().push(ctx.user_id().to_owned());
            async { Ok(json!(null)) }
        }),
    );
    let runtime = Runtime::start(h.store.clone(), registry, config()).unwrap();
    wait_status(h.store.as_ref(), &late.id, TaskStatus::Completed).await;
    runtime.shutdown().await;

    let starts = starts.lock().unwrap();
    let b_index = starts
        .iter()
        .position(|user| user == "b@example.com")
        .expect("B's task started");
    let a_before_b = starts[..b_index]
        .iter()
        .filter(|user| *user == "a@example.com")
        .count();
    assert!(
        a_before_b < 10,
        "B waited for {a_before_b} of A's tasks: {:?}",
        &starts[..b_index]
    );
}
