//! Retries: a poison task ends failed after its attempts, a handler's `after` is honoured, a
//! task type's attempt limit applies, and a panic counts as a retryable failure.

use std::time::Duration;

use serde_json::json;
use task_core::TaskStatus;
use task_runtime::{handler_fn, HandlerError, Registry, Runtime, TaskContext, TaskTypeConfig};

use crate::support::{
    config, create, fast_retries, now_millis, on_both_stores, signal, wait_status, Counter,
    Harness, History,
};

on_both_stores!(
    poison_task_fails_after_its_attempts,
    retry_after_is_honoured,
    task_type_attempt_limit_applies,
    panicking_handler_is_retried,
);

async fn poison_task_fails_after_its_attempts(h: Harness) {
    let runs = Counter::default();
    let counted = runs.clone();
    let registry = Registry::new().register(
        "poison",
        handler_fn(move |_| {
            counted.bump();
            async { Err(HandlerError::retryable("provider exploded")) }
        }),
    );
    let history = History::record(h.store.as_ref());
    let runtime = Runtime::start(h.store.clone(), registry, config()).unwrap();
    let task = create(h.store.as_ref(), "poison", json!({})).await;
    let failed = wait_status(h.store.as_ref(), &task.id, TaskStatus::Failed).await;
    // Shutdown waits for every attempt, so a runaway retry loop would show in the count.
    runtime.shutdown().await;
    assert_eq!(failed.error.as_deref(), Some("provider exploded"));
    assert_eq!(failed.attempt, 3);
    assert_eq!(runs.get(), 3);
    let waits: Vec<String> = history
        .of(&task.id)
        .await
        .iter()
        .filter(|t| t.status == TaskStatus::Pending && t.attempt > 0)
        .map(|t| t.description.clone().unwrap_or_default())
        .collect();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(waits[0].starts_with("Retrying in ") && waits[0].ends_with("(attempt 2/3)"));
    assert!(waits[1].starts_with("Retrying in ") && waits[1].ends_with("(attempt 3/3)"));
}

async fn retry_after_is_honoured(h: Harness) {
    let (starts, mut start) = signal();
    let (failures, mut failure) = signal();
    let registry = Registry::new().register(
        "limited",
        handler_fn(move |ctx: TaskContext| {
            starts.send(now_millis()).unwrap();
            let failures = failures.clone();
            async move {
                if ctx.attempt() == 1 {
                    failures.send(now_millis()).unwrap();
                    Err(HandlerError::retry_after(
                        "rate limited",
                        Duration::from_millis(400),
                    ))
                } else {
                    Ok(json!({"attempt": ctx.attempt()}))
                }
            }
        }),
    );
    let history = History::record(h.store.as_ref());
    let runtime = Runtime::start(h.store.clone(), registry, config()).unwrap();
    let task = create(h.store.as_ref(), "limited", json!({})).await;
    let done = wait_status(h.store.as_ref(), &task.id, TaskStatus::Completed).await;
    runtime.shutdown().await;
    start.next("first start").await;
    let failed_at = failure.next("first failure").await;
    let second_start = start.next("second start").await;
    assert!(
        second_start - failed_at >= 400,
        "retried after {} ms",
        second_start - failed_at
    );
    assert_eq!(done.result, Some(json!({"attempt": 2})));
    let waiting = history
        .of(&task.id)
        .await
        .into_iter()
        .find(|t| t.status == TaskStatus::Pending && t.attempt == 1)
        .expect("the task waited for its retry");
    assert_eq!(
        waiting.description.as_deref(),
        Some("Retrying in 400ms (attempt 2/3)")
    );
    assert_eq!(waiting.error.as_deref(), Some("rate limited"));
    assert!(waiting.run_at >= failed_at + 400);
}

async fn task_type_attempt_limit_applies(h: Harness) {
    let runs = Counter::default();
    let counted = runs.clone();
    let registry = Registry::new().register_with(
        "once",
        handler_fn(move |_| {
            counted.bump();
            async { Err(HandlerError::retryable("flaky")) }
        }),
        TaskTypeConfig {
            max_attempts: 1,
            ..fast_retries()
        },
    );
    let runtime = Runtime::start(h.store.clone(), registry, config()).unwrap();
    let task = create(h.store.as_ref(), "once", json!({})).await;
    assert_eq!(task.max_attempts, 3, "the task itself would allow three");
    let failed = wait_status(h.store.as_ref(), &task.id, TaskStatus::Failed).await;
    runtime.shutdown().await;
    assert_eq!(failed.error.as_deref(), Some("flaky"));
    assert_eq!(runs.get(), 1);
}

async fn panicking_handler_is_retried(h: Harness) {
    let registry = Registry::new().register(
        "fragile",
        handler_fn(|ctx: TaskContext| async move {
            if ctx.attempt() == 1 {
                panic!("boom");
            }
            Ok(json!("recovered"))
        }),
    );
    let history = History::record(h.store.as_ref());
    let runtime = Runtime::start(h.store.clone(), registry, config()).unwrap();
    let task = create(h.store.as_ref(), "fragile", json!({})).await;
    let done = wait_status(h.store.as_ref(), &task.id, TaskStatus::Completed).await;
    runtime.shutdown().await;
    assert_eq!(done.attempt, 2);
    assert_eq!(done.result, Some(json!("recovered")));
    assert!(history
        .of(&task.id)
        .await
        .iter()
        .any(|t| t.error.as_deref() == Some("handler panicked: boom")));
}
