//! Leases: a zombie worker's late writes are fenced, a lost lease stops the handler, and a
//! healthy task that runs for several lease lengths is never rescued.

use std::time::Duration;

use serde_json::json;
use task_core::{Task, TaskStatus};
use task_runtime::{
    handler_fn, ProgressError, Registry, RescuerConfig, Runtime, RuntimeConfig, TaskContext,
};
use task_store::{ClaimRequest, TaskStore};

use crate::support::{
    config, create, now_millis, on_both_stores, signal, wait_status, Counter, Gate, Harness,
    History,
};

on_both_stores!(
    zombie_writes_after_takeover_change_nothing,
    heartbeat_that_finds_the_lease_gone_stops_the_handler,
    healthy_task_longer_than_its_lease_is_never_rescued,
);

/// What worker B does once A's lease has expired: the rescuer returns the task, B claims it.
async fn take_over(store: &dyn TaskStore, task: &Task, rescue_at: i64) -> Task {
    let rescued = store.rescue_expired(rescue_at).await.unwrap();
    assert!(
        rescued
            .iter()
            .any(|t| t.id == task.id && t.status == TaskStatus::Pending),
        "{rescued:?}"
    );
    let mut claimed = store
        .claim(&ClaimRequest {
            worker_id: "worker-b".into(),
            limit: 1,
            task_types: vec![task.task_type.clone()],
            lease_for: Duration::from_secs(600),
            max_running_per_user: None,
            // The rescue made the task due at `rescue_at`; B's clock has reached it.
            now: rescue_at,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "B claims the rescued task");
    claimed.remove(0)
}

async fn zombie_writes_after_takeover_change_nothing(h: Harness) {
    // A single slot, so worker A cannot claim the task back itself; no heartbeat during the
    // test, as if A were paused.
    let settings = RuntimeConfig {
        concurrency: 1,
        lease_duration: Duration::from_secs(120),
        heartbeat_interval: Duration::from_secs(60),
        ..config()
    };
    let gate = Gate::new();
    let (started, mut start) = signal();
    let (late, mut late_report) = signal();
    let handler_gate = gate.clone();
    let registry = Registry::new().register(
        "zombie",
        handler_fn(move |ctx: TaskContext| {
            let (gate, started, late) = (handler_gate.clone(), started.clone(), late.clone());
            async move {
                started.send(ctx.task().clone()).unwrap();
                gate.passed().await;
                late.send(ctx.progress(50, "A is still working").await)
                    .unwrap();
                Ok(json!("from A"))
            }
        }),
    );
    let runtime_a = Runtime::start(h.store.clone(), registry, settings).unwrap();
    let task = create(h.store.as_ref(), "zombie", json!({})).await;
    let claimed_by_a = start.next("A to start").await;
    let expired = claimed_by_a.lease_expires_at.unwrap() + 1;
    let claimed_by_b = take_over(h.store.as_ref(), &task, expired).await;
    assert_eq!(claimed_by_b.attempt, 2);

    gate.open();
    assert_eq!(
        late_report.next("A's late progress").await,
        Err(ProgressError::LeaseLost)
    );
    // Shutdown returns once A's supervisor has tried (and failed) to complete the task.
    runtime_a.shutdown().await;
    let after = h.store.get(&task.id).await.unwrap();
    assert_eq!(
        after, claimed_by_b,
        "A's late progress and result changed nothing"
    );
}

async fn heartbeat_that_finds_the_lease_gone_stops_the_handler(h: Harness) {
    let settings = RuntimeConfig {
        concurrency: 1,
        lease_duration: Duration::from_secs(2),
        heartbeat_interval: Duration::from_millis(100),
        ..config()
    };
    let (started, mut start) = signal();
    let (stopped, mut stop) = signal();
    let registry = Registry::new().register(
        "watched",
        handler_fn(move |ctx: TaskContext| {
            let (started, stopped) = (started.clone(), stopped.clone());
            async move {
                started.send(()).unwrap();
                ctx.cancellation().cancelled().await;
                stopped.send(()).unwrap();
                // A handler that carries on regardless: its result must not be written.
                Ok(json!("late result"))
            }
        }),
    );
    let runtime_a = Runtime::start(h.store.clone(), registry, settings).unwrap();
    let task = create(h.store.as_ref(), "watched", json!({})).await;
    start.next("A to start").await;
    // Rescue as if the lease had run out, while A still believes it holds the task.
    let claimed_by_b = take_over(h.store.as_ref(), &task, now_millis() + 3_600_000).await;
    stop.next("A's next heartbeat to stop the handler").await;
    runtime_a.shutdown().await;
    assert_eq!(h.store.get(&task.id).await.unwrap(), claimed_by_b);
}

async fn healthy_task_longer_than_its_lease_is_never_rescued(h: Harness) {
    let lease = Duration::from_millis(300);
    let settings = RuntimeConfig {
        lease_duration: lease,
        heartbeat_interval: Duration::from_millis(100),
        rescuer: RescuerConfig {
            interval: Duration::from_millis(50),
        },
        ..config()
    };
    let runs = Counter::default();
    let counted = runs.clone();
    let registry = Registry::new().register(
        "long",
        handler_fn(move |ctx: TaskContext| {
            counted.bump();
            async move {
                // Simulated work lasting three lease lengths, reporting progress on the way.
                for step in 1..=3 {
                    tokio::time::sleep(lease).await;
                    ctx.progress(step * 30, format!("step {step}")).await?;
                }
                Ok(json!("finished"))
            }
        }),
    );
    let history = History::record(h.store.as_ref());
    let runtime = Runtime::start(h.store.clone(), registry, settings).unwrap();
    let task = create(h.store.as_ref(), "long", json!({})).await;
    let done = wait_status(h.store.as_ref(), &task.id, TaskStatus::Completed).await;
    runtime.shutdown().await;
    assert_eq!(runs.get(), 1);
    assert_eq!(done.attempt, 1);
    assert_eq!(done.result, Some(json!("finished")));
    let states: Vec<(TaskStatus, i64)> = history
        .of(&task.id)
        .await
        .iter()
        .map(|t| (t.status, t.attempt))
        .collect();
    assert!(
        !states
            .iter()
            .skip(1)
            .any(|(status, _)| *status == TaskStatus::Pending),
        "never went back to pending: {states:?}"
    );
}
