//! Cancellation: a pending task is cancelled at once; a running one through the change feed
//! (same process) or a heartbeat (another process); a handler that ignores its token is still
//! marked cancelled after the grace period, dropped, and fenced.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use task_core::{NewTask, TaskStatus};
use task_runtime::{
    handler_fn, HandlerError, ProgressError, Registry, Runtime, RuntimeConfig, TaskContext,
};
use tokio::time::Instant;

use crate::support::{
    config, create, now_millis, on_both_stores, signal, wait_status, Counter, DropSignal, Harness,
    WrappedStore,
};

on_both_stores!(
    pending_task_is_cancelled_at_once,
    running_task_is_cancelled_through_the_feed,
    running_task_is_cancelled_through_a_heartbeat,
    handler_ignoring_cancel_is_cancelled_after_grace,
);

/// A handler that reports its start and returns `Cancelled` when its token fires.
fn cooperative(started: tokio::sync::mpsc::UnboundedSender<()>) -> Arc<dyn task_runtime::Handler> {
    handler_fn(move |ctx: TaskContext| {
        let started = started.clone();
        async move {
            started.send(()).unwrap();
            ctx.cancellation().cancelled().await;
            Err(HandlerError::Cancelled)
        }
    })
}

async fn pending_task_is_cancelled_at_once(h: Harness) {
    let runs = Counter::default();
    let counted = runs.clone();
    let registry = Registry::new().register(
        "later",
        handler_fn(move |_| {
            counted.bump();
            async { Ok(json!(null)) }
        }),
    );
    let runtime = Runtime::start(h.store.clone(), registry, config()).unwrap();
    let task = h
        .store
        .create(NewTask::new("ada@example.com", "later").with_run_at(now_millis() + 3_600_000))
        .await
        .unwrap();
    let cancelled = h.store.request_cancel(&task.id).await.unwrap();
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    runtime.shutdown().await;
    assert_eq!(runs.get(), 0);
    assert_eq!(
        h.store.get(&task.id).await.unwrap().status,
        TaskStatus::Cancelled
    );
}

async fn running_task_is_cancelled_through_the_feed(h: Harness) {
    // Heartbeats far apart: only the change feed can deliver the cancel within the wait.
    let settings = RuntimeConfig {
        lease_duration: Duration::from_secs(120),
        heartbeat_interval: Duration::from_secs(60),
        ..config()
    };
    let (started, mut start) = signal();
    let registry = Registry::new().register("long", cooperative(started));
    let runtime = Runtime::start(h.store.clone(), registry, settings).unwrap();
    let task = create(h.store.as_ref(), "long", json!({})).await;
    start.next("the handler to start").await;
    let requested = h.store.request_cancel(&task.id).await.unwrap();
    assert!(requested.cancel_requested);
    let cancelled = wait_status(h.store.as_ref(), &task.id, TaskStatus::Cancelled).await;
    assert_eq!(cancelled.failure_message(), "Task was cancelled");
    assert_eq!(cancelled.lease_token, None);
    runtime.shutdown().await;
}

async fn running_task_is_cancelled_through_a_heartbeat(h: Harness) {
    let settings = RuntimeConfig {
        lease_duration: Duration::from_secs(2),
        heartbeat_interval: Duration::from_millis(100),
        ..config()
    };
    let quiet = Arc::new(WrappedStore::quiet(h.store.clone()));
    let (started, mut start) = signal();
    let registry = Registry::new().register("long", cooperative(started));
    let runtime = Runtime::start(quiet, registry, settings).unwrap();
    let task = create(h.store.as_ref(), "long", json!({})).await;
    start.next("the handler to start (found by polling)").await;
    h.store.request_cancel(&task.id).await.unwrap();
    wait_status(h.store.as_ref(), &task.id, TaskStatus::Cancelled).await;
    runtime.shutdown().await;
}

async fn handler_ignoring_cancel_is_cancelled_after_grace(h: Harness) {
    let grace = Duration::from_millis(300);
    let settings = RuntimeConfig {
        cancel_grace: grace,
        ..config()
    };
    let (contexts, mut context) = signal::<TaskContext>();
    let (dropped, mut drop_seen) = signal();
    let registry = Registry::new().register(
        "stubborn",
        handler_fn(move |ctx: TaskContext| {
            contexts.send(ctx).unwrap();
            let guard = DropSignal(Some(dropped.clone()));
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(json!("never"))
            }
        }),
    );
    let runtime = Runtime::start(h.store.clone(), registry, settings).unwrap();
    let task = create(h.store.as_ref(), "stubborn", json!({})).await;
    let ctx = context.next("the handler to start").await;
    let asked = Instant::now();
    h.store.request_cancel(&task.id).await.unwrap();
    let cancelled = wait_status(h.store.as_ref(), &task.id, TaskStatus::Cancelled).await;
    assert!(
        asked.elapsed() >= grace,
        "cancelled before the grace period ended"
    );
    drop_seen.next("the stubborn handler to be dropped").await;
    assert!(ctx.is_cancelled(), "its token fired");
    assert_eq!(
        ctx.progress(5, "still here").await,
        Err(ProgressError::LeaseLost)
    );
    assert_eq!(h.store.get(&task.id).await.unwrap(), cancelled);
    runtime.shutdown().await;
}
