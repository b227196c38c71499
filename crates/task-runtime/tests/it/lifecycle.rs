//! An attempt's life: result stored, typed failure stored, progress monotonic and fenced,
//! timeouts, and how quickly an idle worker starts new and delayed work.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use task_core::{CoreError, TaskStatus};
use task_runtime::{
    handler_fn, HandlerError, ProgressError, Registry, Runtime, RuntimeConfig, RuntimeError,
    TaskContext, TaskTypeConfig,
};
use task_store::MemoryStore;

use crate::support::{
    config, create, now_millis, on_both_stores, signal, wait_status, Counter, DropSignal, Harness,
    History, WrappedStore,
};

on_both_stores!(
    result_is_stored_on_completion,
    permanent_failure_is_stored,
    progress_is_monotonic_and_fenced,
    slow_handler_times_out,
    same_process_task_wakes_an_idle_worker,
    freed_slot_starts_the_next_task,
    delayed_task_starts_when_due,
);

async fn result_is_stored_on_completion(h: Harness) {
    let registry = Registry::new().register(
        "sum",
        handler_fn(|ctx| async move {
            let a = ctx.params()["a"].as_i64().unwrap_or_default();
            let b = ctx.params()["b"].as_i64().unwrap_or_default();
            Ok(json!({ "sum": a + b, "attempt": ctx.attempt() }))
        }),
    );
    let runtime = Runtime::start(h.store.clone(), registry, config()).unwrap();
    let task = create(h.store.as_ref(), "sum", json!({"a": 2, "b": 3})).await;
    let done = wait_status(h.store.as_ref(), &task.id, TaskStatus::Completed).await;
    assert_eq!(done.result, Some(json!({"sum": 5, "attempt": 1})));
    assert_eq!(done.progress, done.total);
    assert_eq!(done.attempt, 1);
    assert_eq!(done.error, None);
    assert_eq!(done.lease_token, None);
    assert!(done.completed_at.is_some());
    runtime.shutdown().await;
}

async fn permanent_failure_is_stored(h: Harness) {
    let runs = Counter::default();
    let counted = runs.clone();
    let registry = Registry::new().register(
        "quiz",
        handler_fn(move |_| {
            counted.bump();
            async { Err(HandlerError::permanent("quiz topic is empty")) }
        }),
    );
    let runtime = Runtime::start(h.store.clone(), registry, config()).unwrap();
    let task = create(h.store.as_ref(), "quiz", json!({})).await;
    let failed = wait_status(h.store.as_ref(), &task.id, TaskStatus::Failed).await;
    runtime.shutdown().await;
    assert_eq!(failed.error.as_deref(), Some("quiz topic is empty"));
    assert_eq!(failed.attempt, 1);
    assert!(failed.completed_at.is_some());
    assert_eq!(runs.get(), 1, "a permanent error is not retried");
}

async fn progress_is_monotonic_and_fenced(h: Harness) {
    let (reports, mut report) = signal();
    let (contexts, mut context) = signal::<TaskContext>();
    let registry = Registry::new().register(
        "steps",
        handler_fn(move |ctx: TaskContext| {
            let reports = reports.clone();
            let contexts = contexts.clone();
            async move {
                reports
                    .send(ctx.progress(10, "Preparing AI request...").await)
                    .unwrap();
                reports
                    .send(ctx.progress(50, "Generating...").await)
                    .unwrap();
                reports.send(ctx.progress(30, "").await).unwrap();
                reports.send(ctx.progress(101, "").await).unwrap();
                reports
                    .send(ctx.progress(50, "Still generating...").await)
                    .unwrap();
                contexts.send(ctx.clone()).unwrap();
                Ok(json!("done"))
            }
        }),
    );
    let history = History::record(h.store.as_ref());
    let runtime = Runtime::start(h.store.clone(), registry, config()).unwrap();
    let task = create(h.store.as_ref(), "steps", json!({})).await;
    let done = wait_status(h.store.as_ref(), &task.id, TaskStatus::Completed).await;

    let mut results = Vec::new();
    for _ in 0..5 {
        results.push(report.next("progress report").await);
    }
    assert_eq!(
        results,
        vec![
            Ok(()),
            Ok(()),
            Err(ProgressError::Invalid(CoreError::ProgressRegressed {
                current: 50,
                requested: 30
            })),
            Err(ProgressError::Invalid(CoreError::ProgressOutOfRange {
                progress: 101,
                total: 100
            })),
            Ok(()),
        ]
    );
    let seen: Vec<(i64, Option<String>)> = history
        .of(&task.id)
        .await
        .iter()
        .filter(|t| t.status == TaskStatus::Processing)
        .map(|t| (t.progress, t.description.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (0, None),
            (10, Some("Preparing AI request...".into())),
            (50, Some("Generating...".into())),
            (50, Some("Still generating...".into())),
        ],
        "the feed carries every accepted report, in order"
    );

    // A context kept past the end of its attempt writes nothing.
    let late = context.next("the handler's context").await;
    assert_eq!(
        late.progress(60, "late").await,
        Err(ProgressError::LeaseLost)
    );
    assert_eq!(h.store.get(&task.id).await.unwrap(), done);
    runtime.shutdown().await;
}

async fn slow_handler_times_out(h: Harness) {
    let (dropped, mut drop_seen) = signal();
    let runs = Counter::default();
    let counted = runs.clone();
    let registry = Registry::new().register_with(
        "slow",
        handler_fn(move |_| {
            counted.bump();
            let guard = DropSignal(Some(dropped.clone()));
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(json!(null))
            }
        }),
        TaskTypeConfig {
            timeout: Duration::from_millis(200),
            ..TaskTypeConfig::default()
        },
    );
    let runtime = Runtime::start(h.store.clone(), registry, config()).unwrap();
    let task = create(h.store.as_ref(), "slow", json!({})).await;
    let failed = wait_status(h.store.as_ref(), &task.id, TaskStatus::Failed).await;
    assert_eq!(failed.error.as_deref(), Some("timed out after 200ms"));
    assert_eq!(failed.attempt, 1);
    drop_seen.next("the timed-out handler to be dropped").await;
    runtime.shutdown().await;
    assert_eq!(runs.get(), 1, "a timeout is final");
}

async fn same_process_task_wakes_an_idle_worker(h: Harness) {
    // With an hour between polls, only the change feed can start the task in time.
    let slow_poll = RuntimeConfig {
        poll_interval: Duration::from_secs(3600),
        ..config()
    };
    let store = Arc::new(WrappedStore::observed(h.store.clone()));
    let registry = Registry::new().register("echo", handler_fn(|_| async { Ok(json!(1)) }));
    let runtime = Runtime::start(store.clone(), registry, slow_poll).unwrap();
    // The start-up claim found nothing: the worker is idle from here on.
    store.claims_returned(1).await;
    let task = create(h.store.as_ref(), "echo", json!({})).await;
    wait_status(h.store.as_ref(), &task.id, TaskStatus::Completed).await;
    runtime.shutdown().await;
}

async fn freed_slot_starts_the_next_task(h: Harness) {
    // One slot and no polling: each task after the first starts because a slot freed.
    let one_slot = RuntimeConfig {
        concurrency: 1,
        poll_interval: Duration::from_secs(3600),
        ..config()
    };
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(create(h.store.as_ref(), "echo", json!({})).await);
    }
    let registry = Registry::new().register("echo", handler_fn(|_| async { Ok(json!(1)) }));
    let runtime = Runtime::start(h.store.clone(), registry, one_slot).unwrap();
    for task in &tasks {
        wait_status(h.store.as_ref(), &task.id, TaskStatus::Completed).await;
    }
    runtime.shutdown().await;
}

async fn delayed_task_starts_when_due(h: Harness) {
    let slow_poll = RuntimeConfig {
        poll_interval: Duration::from_secs(3600),
        ..config()
    };
    let (started, mut start) = signal();
    let registry = Registry::new().register(
        "later",
        handler_fn(move |_| {
            started.send(now_millis()).unwrap();
            async { Ok(json!(null)) }
        }),
    );
    let runtime = Runtime::start(h.store.clone(), registry, slow_poll).unwrap();
    let run_at = now_millis() + 300;
    let task = h
        .store
        .create(task_core::NewTask::new("ada@example.com", "later").with_run_at(run_at))
        .await
        .unwrap();
    let started_at = start.next("the delayed task to start").await;
    assert!(
        started_at >= run_at,
        "started {} ms early",
        run_at - started_at
    );
    wait_status(h.store.as_ref(), &task.id, TaskStatus::Completed).await;
    runtime.shutdown().await;
}

#[tokio::test]
async fn start_rejects_bad_settings() {
    let store = Arc::new(MemoryStore::new());
    let noop = || handler_fn(|_| async { Ok(json!(null)) });
    let bad_heartbeat = RuntimeConfig {
        heartbeat_interval: Duration::from_secs(30),
        lease_duration: Duration::from_secs(30),
        ..RuntimeConfig::default()
    };
    let error = Runtime::start(
        store.clone(),
        Registry::new().register("a", noop()),
        bad_heartbeat,
    )
    .unwrap_err();
    assert!(
        matches!(&error, RuntimeError::InvalidConfig { field, .. } if field == "heartbeat_interval"),
        "{error:?}"
    );
    let error = Runtime::start(store, Registry::new(), RuntimeConfig::default()).unwrap_err();
    assert_eq!(error, RuntimeError::NoHandlers);
}

#[test]
fn start_outside_tokio_is_an_error() {
    let error = Runtime::start(
        Arc::new(MemoryStore::new()),
        Registry::new().register("a", handler_fn(|_| async { Ok(json!(null)) })),
        RuntimeConfig::default(),
    )
    .unwrap_err();
    assert_eq!(error, RuntimeError::NoAsyncRuntime);
}
