//! Graceful shutdown: claiming stops at once, running handlers get the grace period, the rest
//! are cancelled and released for another worker, and nothing is left processing.

use std::time::Duration;

use serde_json::json;
use task_core::TaskStatus;
use task_runtime::{handler_fn, Registry, Runtime, RuntimeConfig};

use crate::support::{
    config, create, in_status, on_both_stores, signal, wait_status, DropSignal, Gate, Harness,
};

on_both_stores!(shutdown_finishes_or_releases_tasks_in_flight);

async fn shutdown_finishes_or_releases_tasks_in_flight(h: Harness) {
    let settings = RuntimeConfig {
        concurrency: 4,
        shutdown_grace: Duration::from_millis(500),
        // All four tasks belong to one user and must run at once.
        max_running_per_user: None,
        ..config()
    };
    let gate = Gate::new();
    let finisher_gate = gate.clone();
    let (started, mut start) = signal();
    let stubborn_started = started.clone();
    let (dropped, mut drop_seen) = signal();
    let registry = Registry::new()
        .register(
            "finisher",
            handler_fn(move |_| {
                let (gate, started) = (finisher_gate.clone(), started.clone());
                async move {
                    started.send(()).unwrap();
                    gate.passed().await;
                    Ok(json!("finished in the grace period"))
                }
            }),
        )
        .register(
            "stubborn",
            handler_fn(move |_| {
                stubborn_started.send(()).unwrap();
                let guard = DropSignal(Some(dropped.clone()));
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                    Ok(json!("never"))
                }
            }),
        );
    let runtime = Runtime::start(h.store.clone(), registry, settings).unwrap();
    let store = h.store.as_ref();
    let finishers = [
        create(store, "finisher", json!({})).await,
        create(store, "finisher", json!({})).await,
    ];
    let stubborn = [
        create(store, "stubborn", json!({})).await,
        create(store, "stubborn", json!({})).await,
    ];
    for _ in 0..4 {
        start.next("all four handlers to start").await;
    }
    // Every slot is busy, so this one waits; once shutdown begins it must never be claimed,
    // even when the finishers free their slots.
    let queued = create(store, "finisher", json!({})).await;

    // `biased` polls the shutdown first, so claiming has stopped before the finishers return.
    tokio::join!(biased; runtime.shutdown(), async { gate.open() });

    for task in &finishers {
        let done = store.get(&task.id).await.unwrap();
        assert_eq!(done.status, TaskStatus::Completed, "{done:?}");
    }
    for task in &stubborn {
        let released = store.get(&task.id).await.unwrap();
        assert_eq!(released.status, TaskStatus::Pending, "{released:?}");
        assert_eq!(released.attempt, 0, "a released attempt does not count");
        assert_eq!(released.lease_token, None);
    }
    drop_seen.next("first stubborn handler dropped").await;
    drop_seen.next("second stubborn handler dropped").await;
    let queued = store.get(&queued.id).await.unwrap();
    assert_eq!((queued.status, queued.attempt), (TaskStatus::Pending, 0));
    assert!(in_status(store, TaskStatus::Processing).await.is_empty());

    // Released tasks are due at once: the next worker takes them straight away.
    let next = Runtime::start(
        h.store.clone(),
        Registry::new().register(
            "stubborn",
            handler_fn(|_| async { Ok(json!("second worker")) }),
        ),
        config(),
    )
    .unwrap();
    for task in &stubborn {
        wait_status(store, &task.id, TaskStatus::Completed).await;
    }
    next.shutdown().await;
}
