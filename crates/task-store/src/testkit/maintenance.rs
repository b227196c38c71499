//! Cases: the rescuer, the cleaner, deletes and counts.

use std::collections::HashMap;

use task_core::{TaskId, TaskStatus};

use super::support::{
    claim_only, claim_request, create, drive, expect_err, new_task, next_change, now_ms, Start,
    Store, LEASE_MS,
};
use crate::{ClaimRequest, StoreError, TaskChange};

/// An expired lease sends the task back to `pending` while attempts are left, and to `failed`
/// on the last attempt, both with "worker lost: lease expired".
pub async fn rescue_expired_requeues_or_fails(store: Store) {
    store
        .create(new_task("u", "lost").with_max_attempts(2))
        .await
        .expect("create");
    let (running, _) = claim_only(&store, "lost").await;
    let expires = running.lease_expires_at.expect("expiry");
    assert!(
        store
            .rescue_expired(expires)
            .await
            .expect("rescue")
            .is_empty(),
        "not yet expired"
    );

    let mut feed = store.subscribe();
    let rescued = store.rescue_expired(expires + 1).await.expect("rescue");
    assert_eq!(rescued.len(), 1);
    let task = &rescued[0];
    assert_eq!(task.id, running.id);
    assert_eq!(task.status, TaskStatus::Pending);
    assert_eq!(task.error.as_deref(), Some("worker lost: lease expired"));
    assert_eq!(
        (task.run_at, task.attempt, task.progress),
        (expires + 1, 1, 0)
    );
    assert!(task.lease_token.is_none() && task.lease_owner.is_none());
    assert_eq!(task.version, running.version + 1);
    assert_eq!(store.get(&task.id).await.expect("get"), *task);
    match next_change(&mut feed).await {
        TaskChange::Upserted(published) => assert_eq!(*published, *task),
        other => panic!("unexpected {other:?}"),
    }

    let request = ClaimRequest {
        now: expires + 1,
        ..claim_request("w2", 1, "lost")
    };
    let last = store.claim(&request).await.expect("claim").remove(0);
    assert_eq!(last.attempt, 2);
    let expires = last.lease_expires_at.expect("expiry");
    let rescued = store.rescue_expired(expires + 1).await.expect("rescue");
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].status, TaskStatus::Failed);
    assert_eq!(
        rescued[0].error.as_deref(),
        Some("worker lost: lease expired")
    );
    assert_eq!(rescued[0].completed_at, Some(expires + 1));
    assert!(store
        .rescue_expired(expires + LEASE_MS)
        .await
        .expect("rescue")
        .is_empty());
}

/// The cleaner deletes terminal tasks finished before the cut-off, oldest first, at most
/// `limit` per call, and publishes each deletion.
pub async fn purge_deletes_only_old_finished_tasks(store: Store) {
    let mut finished = Vec::new();
    for (i, start) in [Start::Completed, Start::Failed, Start::Cancelled]
        .into_iter()
        .enumerate()
    {
        finished.push(drive(&store, &format!("purge-{i}"), start).await.0);
    }
    let (running, _) = drive(&store, "purge-running", Start::Processing).await;
    let pending = create(&store, "u", "purge-pending").await;
    let oldest = finished
        .iter()
        .map(|t| t.completed_at.expect("finished"))
        .min()
        .expect("some");
    assert_eq!(
        store.purge_finished(oldest, 100).await.expect("purge"),
        0,
        "cut-off is exclusive"
    );
    assert_eq!(store.purge_finished(i64::MAX, 0).await.expect("purge"), 0);

    let mut feed = store.subscribe();
    let cutoff = now_ms() + 1;
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 2);
    let mut deleted = Vec::new();
    for _ in 0..2 {
        match next_change(&mut feed).await {
            TaskChange::Deleted { id, user_id } => {
                assert_eq!(user_id, "driver@example.com");
                deleted.push(id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let kept = finished
        .iter()
        .find(|t| !deleted.contains(&t.id))
        .expect("one finished task is left");
    for task in finished.iter().filter(|t| deleted.contains(&t.id)) {
        assert!(task.completed_at <= kept.completed_at, "oldest first");
    }
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 1);
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 0);
    for task in &finished {
        assert_eq!(store.get(&task.id).await, Err(StoreError::NotFound));
    }
    assert_eq!(
        store.get(&running.id).await.expect("kept").status,
        TaskStatus::Processing
    );
    assert_eq!(
        store.get(&pending.id).await.expect("kept").status,
        TaskStatus::Pending
    );
}

/// `delete` removes a task that is not running and publishes it; a running task is a
/// `Conflict`; an unknown one `NotFound`.
pub async fn delete_rules(store: Store) {
    let pending = create(&store, "owner@example.com", "delete").await;
    let mut feed = store.subscribe();
    store.delete(&pending.id).await.expect("delete");
    assert_eq!(store.get(&pending.id).await, Err(StoreError::NotFound));
    match next_change(&mut feed).await {
        TaskChange::Deleted { id, user_id } => {
            assert_eq!(
                (id, user_id.as_str()),
                (pending.id.clone(), "owner@example.com")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(store.delete(&pending.id).await, Err(StoreError::NotFound));

    let (running, _) = drive(&store, "delete-running", Start::Processing).await;
    expect_err(store.delete(&running.id).await, "delete running", |e| {
        matches!(e, StoreError::Conflict(_))
    });
    assert_eq!(store.get(&running.id).await.expect("kept"), running);
    let unknown: TaskId = "task_2_abcdef".parse().expect("id");
    assert_eq!(store.delete(&unknown).await, Err(StoreError::NotFound));
}

/// Only unfinished tasks of that user count (`waiting` ones too: see
/// `count_unfinished_counts_waiting_tasks`).
pub async fn count_unfinished_counts_pending_and_processing(store: Store) {
    assert_eq!(
        store
            .count_unfinished("driver@example.com")
            .await
            .expect("count"),
        0
    );
    for (i, start) in Start::ALL.into_iter().enumerate() {
        drive(&store, &format!("unfinished-{i}"), start).await;
    }
    create(&store, "someone-else@example.com", "unfinished").await;
    // Pending, Processing and CancelRequested (still processing) are unfinished.
    assert_eq!(
        store
            .count_unfinished("driver@example.com")
            .await
            .expect("count"),
        3
    );
    assert_eq!(
        store
            .count_unfinished("someone-else@example.com")
            .await
            .expect("count"),
        1
    );
    assert_eq!(store.count_unfinished("nobody").await.expect("count"), 0);
}

/// `counts` has one row per (type, status) present, with the right numbers.
pub async fn counts_by_type_and_status(store: Store) {
    assert!(store.counts().await.expect("counts").is_empty());
    for _ in 0..3 {
        create(&store, "u", "alpha").await;
    }
    create(&store, "u", "beta").await;
    drive(&store, "beta-run", Start::Processing).await;
    drive(&store, "beta-done", Start::Completed).await;
    drive(&store, "beta-done", Start::Completed).await;
    let counts: HashMap<(String, TaskStatus), u64> = store
        .counts()
        .await
        .expect("counts")
        .into_iter()
        .map(|row| ((row.task_type, row.status), row.count))
        .collect();
    let expected: HashMap<(String, TaskStatus), u64> = [
        (("alpha", TaskStatus::Pending), 3),
        (("beta", TaskStatus::Pending), 1),
        (("beta-run", TaskStatus::Processing), 1),
        (("beta-done", TaskStatus::Completed), 2),
    ]
    .into_iter()
    .map(|((t, s), n)| ((t.to_owned(), s), n))
    .collect();
    assert_eq!(counts, expected);
}
