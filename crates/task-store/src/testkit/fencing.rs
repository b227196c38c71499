//! Cases: writes fenced by lease token, and the lease renewal that is not a visible change.

use serde_json::json;
use task_core::Task;

use super::support::{
    assert_quiet, claim_only, claim_request, drive, expect_err, next_change, now_ms, Start, Store,
    LEASE_MS,
};
use crate::{ClaimRequest, Failure, Lease, StoreError, TaskChange};

/// Every write that carries a lease, tried with `lease`; each must fail with `LeaseLost` and
/// leave `current` exactly as it was.
async fn assert_fenced(store: &Store, lease: &Lease, current: &Task, why: &str) {
    let id = &current.id;
    let attempts: Vec<(&str, Result<(), StoreError>)> = vec![
        (
            "heartbeat",
            store.heartbeat(lease, now_ms() + 60_000).await.map(drop),
        ),
        (
            "update_progress",
            store
                .update_progress(lease, 90, Some("stale".into()))
                .await
                .map(drop),
        ),
        (
            "complete",
            store.complete(lease, json!("stale")).await.map(drop),
        ),
        (
            "fail",
            store
                .fail(lease, Failure::permanent("stale"))
                .await
                .map(drop),
        ),
        (
            "fail with retry",
            store
                .fail(
                    lease,
                    Failure {
                        error: "stale".into(),
                        retry_at: Some(0),
                        retry_description: None,
                    },
                )
                .await
                .map(drop),
        ),
        ("release", store.release(lease).await.map(drop)),
        ("cancel", store.cancel(id, Some(lease)).await.map(drop)),
    ];
    for (operation, outcome) in attempts {
        expect_err(outcome, &format!("{operation} with {why}"), |e| {
            *e == StoreError::LeaseLost
        });
    }
    let after = store.get(id).await.expect("get");
    assert_eq!(after, *current, "{why}: nothing was written");
}

/// A lease that is no longer current (the task was released, rescued, re-claimed, finished,
/// or the token is forged) cannot write anything.
pub async fn stale_leases_are_fenced(store: Store) {
    // Released and claimed again: the first lease is stale, the second current.
    let (_, first) = drive(&store, "fenced", Start::Processing).await;
    store.release(&first).await.expect("release");
    let (current, second) = claim_only(&store, "fenced").await;
    assert_ne!(first.token, second.token);
    let mut feed = store.subscribe();
    assert_fenced(&store, &first, &current, "a released lease").await;

    // Rescued after expiry, then re-claimed by another worker.
    let rescued_at = now_ms() + LEASE_MS + 1;
    store.rescue_expired(rescued_at).await.expect("rescue");
    let request = ClaimRequest {
        now: rescued_at,
        ..claim_request("worker-2", 1, "fenced")
    };
    let reclaimed = store.claim(&request).await.expect("claim").remove(0);
    assert_eq!(reclaimed.id, current.id);
    assert_fenced(&store, &second, &reclaimed, "a rescued lease").await;

    // A forged token and a lease for a task that does not exist.
    let forged = Lease {
        task_id: reclaimed.id.clone(),
        token: "f".repeat(32),
    };
    assert_fenced(&store, &forged, &reclaimed, "a forged token").await;
    let missing = Lease {
        task_id: "task_1_nosuchtask".parse().expect("id"),
        token: "0".repeat(32),
    };
    expect_err(
        store.update_progress(&missing, 1, None).await,
        "a lease on a missing task",
        |e| *e == StoreError::LeaseLost,
    );

    // Finished tasks: every old lease is stale.
    for start in [Start::Completed, Start::Failed, Start::Cancelled] {
        let (finished, lease) =
            drive(&store, &format!("fenced-{start:?}").to_lowercase(), start).await;
        assert_fenced(
            &store,
            &lease,
            &finished,
            &format!("a lease of a {start:?} task"),
        )
        .await;
    }

    let changes = feed.len();
    let mut unexpected = Vec::new();
    for _ in 0..changes {
        let change = next_change(&mut feed).await;
        if let TaskChange::Upserted(task) = &change {
            if task.id == reclaimed.id && task.version > reclaimed.version {
                unexpected.push(change);
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "fenced writes published {unexpected:?}"
    );
}

/// A heartbeat extends the lease and reports a cancel request, but is not a change: same
/// version, same `updated_at`, nothing published.
pub async fn heartbeat_is_not_a_visible_change(store: Store) {
    let (running, lease) = drive(&store, "heartbeat", Start::Processing).await;
    let mut feed = store.subscribe();
    let until = now_ms() + 120_000;
    let renewed = store.heartbeat(&lease, until).await.expect("heartbeat");
    assert_eq!(renewed.lease_expires_at, Some(until));
    assert_eq!(renewed.version, running.version);
    assert_eq!(renewed.updated_at, running.updated_at);
    assert_eq!(store.get(&running.id).await.expect("get"), renewed);
    assert_quiet(&mut feed);

    // Renewed leases are not rescued until they run out.
    let rescued = store.rescue_expired(until - 1).await.expect("rescue");
    assert!(rescued.is_empty(), "the renewed lease has not expired");

    store.request_cancel(&running.id).await.expect("request");
    let seen = store.heartbeat(&lease, until + 1).await.expect("heartbeat");
    assert!(seen.cancel_requested, "the worker learns of the cancel");
    match next_change(&mut feed).await {
        TaskChange::Upserted(task) => {
            assert!(task.cancel_requested);
            assert_eq!(task.version, running.version + 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_quiet(&mut feed);
}

/// Worker writes from many tasks at once, half of them refused (stale token, progress out of
/// range): the refused ones change nothing, the others all land. On SQLite they share commits,
/// so this is where one refused write must not undo its neighbours.
pub async fn concurrent_worker_writes_are_refused_alone(store: Store) {
    let batch: Vec<_> = (0..60)
        .map(|_| super::support::new_task("u", "mixed"))
        .collect();
    store.create_many(batch).await.expect("create_many");
    let mut claimed = Vec::new();
    while claimed.len() < 60 {
        let more = store
            .claim(&claim_request("w", 25, "mixed"))
            .await
            .expect("claim");
        assert!(!more.is_empty(), "all 60 tasks are due");
        claimed.extend(more);
    }
    let mut writes = Vec::new();
    for (n, task) in claimed.iter().enumerate() {
        let store = std::sync::Arc::clone(&store);
        let lease = Lease::of(task).expect("a lease");
        writes.push(tokio::spawn(async move {
            let outcome = match n % 4 {
                0 => store.complete(&lease, json!({ "n": n })).await,
                1 => {
                    let stale = Lease {
                        token: "0".repeat(32),
                        ..lease
                    };
                    store.complete(&stale, json!("stale")).await
                }
                2 => store.update_progress(&lease, 40, None).await,
                _ => store.update_progress(&lease, 1_000_000, None).await,
            };
            (n, outcome)
        }));
    }
    for write in writes {
        let (n, outcome) = tokio::time::timeout(super::support::WAIT, write)
            .await
            .expect("writes finish")
            .expect("no panic");
        match n % 4 {
            0 | 2 => assert!(outcome.is_ok(), "write {n}: {outcome:?}"),
            _ => assert!(outcome.is_err(), "write {n} must be refused"),
        }
    }
    for (n, task) in claimed.iter().enumerate() {
        let stored = store.get(&task.id).await.expect("get");
        let expected = match n % 4 {
            0 => (task_core::TaskStatus::Completed, Some(json!({ "n": n }))),
            _ => (task_core::TaskStatus::Processing, None),
        };
        assert_eq!((stored.status, stored.result.clone()), expected, "task {n}");
        let progress = if n % 4 == 2 {
            40
        } else if n % 4 == 0 {
            stored.total
        } else {
            0
        };
        assert_eq!(stored.progress, progress, "task {n}");
    }
}
