//! Claim-ahead (`RuntimeConfig::claim_ahead`): tasks claimed beyond the free slots wait in a
//! local queue and start as slots free; while queued they keep their lease, a cancel finishes
//! them as cancelled without running them, shutdown releases them at once, and per-user
//! fairness counts them as running.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use task_core::{NewTask, Task, TaskStatus};
use task_runtime::{handler_fn, Registry, RescuerConfig, Runtime, RuntimeConfig, TaskContext};
use task_store::MAX_CLAIM_LIMIT;

use crate::support::{
    config, create, in_status, on_both_stores, signal, wait_for, wait_status, within, Counter,
    Gate, Harness, History, WrappedStore,
};

on_both_stores!(
    queued_tasks_are_claimed_together_and_run_in_order,
    cancel_of_a_queued_task_never_runs_it,
    shutdown_releases_queued_tasks_at_once,
    queued_task_keeps_its_lease_past_the_lease_duration,
    per_user_cap_counts_queued_tasks,
    claims_overlap_and_their_tasks_start_in_the_order_the_claims_were_sent,
    a_queue_longer_than_one_claim_fills_over_several_claims,
);

/// One slot, `ahead` more claimed ahead, fairness off (every task has the same owner).
fn one_slot(ahead: usize) -> RuntimeConfig {
    RuntimeConfig {
        concurrency: 1,
        claim_ahead: ahead,
        max_running_per_user: None,
        ..config()
    }
}

/// A handler that reports its task and then waits at `gate`.
fn gated(gate: &Gate, started: tokio::sync::mpsc::UnboundedSender<Task>) -> Registry {
    let gate = gate.clone();
    Registry::new().register(
        "work",
        handler_fn(move |ctx: TaskContext| {
            let (gate, started) = (gate.clone(), started.clone());
            async move {
                started.send(ctx.task().clone()).unwrap();
                gate.passed().await;
                Ok(json!(null))
            }
        }),
    )
}

async fn queued_tasks_are_claimed_together_and_run_in_order(h: Harness) {
    let store = h.store.as_ref();
    let mut created = Vec::new();
    for n in 0..4 {
        created.push(create(store, "work", json!({ "n": n })).await);
    }
    let gate = Gate::new();
    let (started, mut starts) = signal();
    let runtime = Runtime::start(h.store.clone(), gated(&gate, started), one_slot(3)).unwrap();
    let first = starts.next("the first task to start").await;
    assert_eq!(first.id, created[0].id);
    // One slot, yet all four are held: the other three wait in the queue, leased.
    let held = in_status(store, TaskStatus::Processing).await;
    assert_eq!(held.len(), 4, "{held:?}");
    assert_eq!(runtime.running(), 4);
    gate.open();
    for task in &created[1..] {
        let next = starts.next("a queued task to start").await;
        assert_eq!(next.id, task.id, "queued tasks start in claim order");
        assert_eq!(next.attempt, 1);
    }
    for task in &created {
        wait_status(store, &task.id, TaskStatus::Completed).await;
    }
    runtime.shutdown().await;
}

async fn cancel_of_a_queued_task_never_runs_it(h: Harness) {
    let store = h.store.as_ref();
    let blocker = create(store, "work", json!({})).await;
    let queued = create(store, "work", json!({})).await;
    let gate = Gate::new();
    let (started, mut starts) = signal();
    let runtime = Runtime::start(h.store.clone(), gated(&gate, started), one_slot(1)).unwrap();
    assert_eq!(starts.next("the blocker to start").await.id, blocker.id);
    wait_for(
        store,
        &queued.id,
        "the second task to be claimed ahead",
        |task| task.status == TaskStatus::Processing,
    )
    .await;

    store.request_cancel(&queued.id).await.unwrap();
    // While the only slot is still busy: the queued task ends without waiting for it.
    let cancelled = wait_status(store, &queued.id, TaskStatus::Cancelled).await;
    assert_eq!(cancelled.attempt, 1);

    gate.open();
    wait_status(store, &blocker.id, TaskStatus::Completed).await;
    runtime.shutdown().await;
    let starts_after: Vec<_> = starts.drain().into_iter().map(|task| task.id).collect();
    assert!(
        starts_after.is_empty(),
        "a cancelled queued task ran: {starts_after:?}"
    );
}

async fn shutdown_releases_queued_tasks_at_once(h: Harness) {
    let store = h.store.as_ref();
    let blocker = create(store, "work", json!({})).await;
    let queued = [
        create(store, "work", json!({})).await,
        create(store, "work", json!({})).await,
    ];
    let gate = Gate::new();
    let (started, mut starts) = signal();
    let settings = RuntimeConfig {
        // Longer than the test waits: the queued tasks must not wait for it.
        shutdown_grace: Duration::from_secs(60),
        ..one_slot(2)
    };
    let first = Runtime::start(h.store.clone(), gated(&gate, started), settings).unwrap();
    assert_eq!(starts.next("the blocker to start").await.id, blocker.id);
    for task in &queued {
        wait_for(store, &task.id, "a task to be claimed ahead", |task| {
            task.status == TaskStatus::Processing
        })
        .await;
    }

    let stopping = tokio::spawn(first.shutdown());
    for task in &queued {
        let released = wait_status(store, &task.id, TaskStatus::Pending).await;
        assert_eq!(
            released.attempt, 0,
            "a released task's attempt does not count"
        );
        assert_eq!(released.lease_owner, None);
    }
    // Another worker takes them while the first still finishes its running task.
    let runs = Counter::default();
    let counted = runs.clone();
    let registry = Registry::new().register(
        "work",
        handler_fn(move |_| {
            counted.bump();
            async { Ok(json!("second worker")) }
        }),
    );
    let second = Runtime::start(h.store.clone(), registry, config()).unwrap();
    for task in &queued {
        let done = wait_status(store, &task.id, TaskStatus::Completed).await;
        assert_eq!(done.result, Some(json!("second worker")));
    }
    assert_eq!(runs.get(), 2);
    assert_eq!(
        store.get(&blocker.id).await.unwrap().status,
        TaskStatus::Processing,
        "the running task is still in its grace period"
    );

    gate.open();
    within("the first runtime to stop", stopping).await.unwrap();
    wait_status(store, &blocker.id, TaskStatus::Completed).await;
    second.shutdown().await;
}

async fn queued_task_keeps_its_lease_past_the_lease_duration(h: Harness) {
    let store = h.store.as_ref();
    let blocker = create(store, "work", json!({})).await;
    let queued = create(store, "work", json!({})).await;
    let history = History::record(store);
    let gate = Gate::new();
    let (started, mut starts) = signal();
    let lease = Duration::from_millis(800);
    let settings = RuntimeConfig {
        lease_duration: lease,
        heartbeat_interval: Duration::from_millis(150),
        rescuer: RescuerConfig {
            interval: Duration::from_millis(50),
        },
        ..one_slot(1)
    };
    let runtime = Runtime::start(h.store.clone(), gated(&gate, started), settings).unwrap();
    assert_eq!(starts.next("the blocker to start").await.id, blocker.id);
    // The queued task waits three lease durations; the rescuer sweeps all along.
    tokio::time::sleep(lease * 3).await;
    gate.open();
    let next = starts.next("the queued task to start").await;
    assert_eq!(next.id, queued.id);
    let done = wait_status(store, &queued.id, TaskStatus::Completed).await;
    assert_eq!(done.attempt, 1, "the queued task lost its lease: {done:?}");
    let states = history.of(&queued.id).await;
    assert!(
        states.iter().all(|task| task.status != TaskStatus::Pending),
        "the queued task went back to pending: {states:?}"
    );
    runtime.shutdown().await;
}

async fn per_user_cap_counts_queued_tasks(h: Harness) {
    let store = h.store.as_ref();
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(
            store
                .create(NewTask::new("ada@example.com", "work"))
                .await
                .unwrap(),
        );
    }
    created.push(
        store
            .create(NewTask::new("bob@example.com", "work"))
            .await
            .unwrap(),
    );
    let gate = Gate::new();
    let (started, mut starts) = signal();
    let wrapped = Arc::new(WrappedStore::observed(h.store.clone()));
    let settings = RuntimeConfig {
        concurrency: 2,
        claim_ahead: 4,
        max_running_per_user: Some(1),
        ..config()
    };
    let runtime = Runtime::start(wrapped.clone(), gated(&gate, started), settings).unwrap();
    let mut users = vec![
        starts.next("a first task to start").await.user_id,
        starts.next("a second task to start").await.user_id,
    ];
    users.sort();
    assert_eq!(users, ["ada@example.com", "bob@example.com"]);
    // Poll ticks keep claiming with room in the queue; none may take a second task of ada's.
    wrapped.claims_returned(4).await;
    let held = in_status(store, TaskStatus::Processing).await;
    let per_user = |user: &str| held.iter().filter(|task| task.user_id == user).count();
    assert_eq!(per_user("ada@example.com"), 1, "{held:?}");
    assert_eq!(per_user("bob@example.com"), 1, "{held:?}");

    gate.open();
    for _ in 0..2 {
        let next = starts.next("ada's other tasks to start").await;
        assert_eq!(next.user_id, "ada@example.com");
    }
    for task in &created {
        wait_status(store, &task.id, TaskStatus::Completed).await;
    }
    runtime.shutdown().await;
}

/// A handler that reports each task it starts and returns at once.
fn reporting(started: tokio::sync::mpsc::UnboundedSender<Task>) -> Registry {
    Registry::new().register(
        "work",
        handler_fn(move |ctx: TaskContext| {
            let started = started.clone();
            async move {
                started.send(ctx.task().clone()).unwrap();
                Ok(json!(null))
            }
        }),
    )
}

/// A handler that reports each task it starts and returns once the test lets one more pass.
fn one_at_a_time(
    passes: &Arc<tokio::sync::Semaphore>,
    started: tokio::sync::mpsc::UnboundedSender<Task>,
) -> Registry {
    let passes = Arc::clone(passes);
    Registry::new().register(
        "work",
        handler_fn(move |ctx: TaskContext| {
            let (passes, started) = (Arc::clone(&passes), started.clone());
            async move {
                started.send(ctx.task().clone()).unwrap();
                passes.acquire().await.unwrap().forget();
                Ok(json!(null))
            }
        }),
    )
}

async fn claims_overlap_and_their_tasks_start_in_the_order_the_claims_were_sent(h: Harness) {
    let store = h.store.as_ref();
    let mut created = Vec::new();
    for n in 0..11 {
        created.push(create(store, "work", json!({ "n": n })).await);
    }
    let answers = Gate::new();
    let wrapped = Arc::new(WrappedStore::holding_answers(
        h.store.clone(),
        answers.clone(),
    ));
    let passes = Arc::new(tokio::sync::Semaphore::new(0));
    let (started, mut starts) = signal();
    // One slot and a queue of four: the first claim takes five tasks (answered at once).
    let runtime = Runtime::start(
        wrapped.clone(),
        one_at_a_time(&passes, started),
        one_slot(4),
    )
    .unwrap();
    // The first claim is answered before anything finishes, so the claims counted in flight
    // below are the later ones.
    wrapped.claims_returned(1).await;
    // Two finish: half the queue is free while tasks still wait in it, so a second claim goes
    // out (its answer held back) …
    passes.add_permits(2);
    wrapped.claims_in_flight(1).await;
    // … and two more: another half queue is free beyond what that claim reserved, so a third
    // goes out beside it.
    passes.add_permits(2);
    wrapped.claims_in_flight(2).await;
    answers.open();
    passes.add_permits(created.len());
    for task in &created {
        let next = starts.next("the next task to start").await;
        assert_eq!(next.id, task.id, "tasks start claim by claim, oldest first");
    }
    for task in &created {
        wait_status(store, &task.id, TaskStatus::Completed).await;
    }
    assert!(
        wrapped.most_in_flight() >= 2,
        "{}",
        wrapped.most_in_flight()
    );
    runtime.shutdown().await;
}

async fn a_queue_longer_than_one_claim_fills_over_several_claims(h: Harness) {
    let store = h.store.as_ref();
    let mut created = Vec::new();
    for n in 0..3 {
        created.push(create(store, "work", json!({ "n": n })).await);
    }
    let wrapped = Arc::new(WrappedStore::observed(h.store.clone()));
    let (started, _starts) = signal();
    // Room for 1,501 tasks; a store takes at most MAX_CLAIM_LIMIT in one claim and refuses
    // more, so a worker asking for all its room at once would never claim anything.
    let runtime = Runtime::start(wrapped.clone(), reporting(started), one_slot(1500)).unwrap();
    for task in &created {
        wait_status(store, &task.id, TaskStatus::Completed).await;
    }
    let limits = wrapped.claim_limits();
    assert!(
        limits.iter().all(|limit| *limit <= MAX_CLAIM_LIMIT),
        "{limits:?}"
    );
    runtime.shutdown().await;
}
