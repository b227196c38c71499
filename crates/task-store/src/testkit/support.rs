//! Helpers the suite's cases share: building tasks, driving them into a status, reading the
//! feed with a bounded wait.

use std::sync::Arc;
use std::time::Duration;

use task_core::{NewTask, Task, TaskId, TaskStatus};
use tokio::sync::broadcast::error::TryRecvError;

use crate::{ChangeReceiver, ClaimRequest, Failure, Lease, StoreError, TaskChange, TaskStore};

/// The longest the suite waits for anything; reaching it fails the test.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// The lease length the suite's claims use.
pub(crate) const LEASE_MS: i64 = 30_000;

pub(crate) type Store = Arc<dyn TaskStore>;

/// The wall clock in milliseconds, as stores stamp tasks.
pub(crate) use task_core::now_millis as now_ms;

/// A valid new task of `task_type` for `user`.
pub(crate) fn new_task(user: &str, task_type: &str) -> NewTask {
    NewTask::new(user, task_type)
}

/// Creates a task of `task_type` for `user`.
pub(crate) async fn create(store: &Store, user: &str, task_type: &str) -> Task {
    store
        .create(new_task(user, task_type))
        .await
        .expect("create")
}

/// A claim by `worker` for up to `limit` tasks of `task_type` (any type when empty), due now,
/// without fairness.
pub(crate) fn claim_request(worker: &str, limit: usize, task_type: &str) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.to_owned(),
        limit,
        task_types: if task_type.is_empty() {
            Vec::new()
        } else {
            vec![task_type.to_owned()]
        },
        lease_for: Duration::from_millis(LEASE_MS as u64),
        max_running_per_user: None,
        now: now_ms(),
    }
}

/// Claims the one due task of `task_type`; the suite gives each task it drives its own type.
pub(crate) async fn claim_only(store: &Store, task_type: &str) -> (Task, Lease) {
    let mut claimed = store
        .claim(&claim_request("worker-1", 10, task_type))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "exactly one {task_type} task is due");
    let task = claimed.remove(0);
    let lease = Lease::of(&task).expect("a claimed task carries a lease");
    (task, lease)
}

/// Where [`drive`] leaves a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Pending,
    Processing,
    /// Processing, with a cancel requested.
    CancelRequested,
    Completed,
    Failed,
    Cancelled,
}

impl Start {
    pub(crate) const ALL: [Start; 6] = [
        Start::Pending,
        Start::Processing,
        Start::CancelRequested,
        Start::Completed,
        Start::Failed,
        Start::Cancelled,
    ];
}

/// Creates a task of `task_type` and drives it into `start`. Returns the task and the last
/// lease it had (a stale one once it left `processing`; a made-up one if it never ran).
pub(crate) async fn drive(store: &Store, task_type: &str, start: Start) -> (Task, Lease) {
    let created = create(store, "driver@example.com", task_type).await;
    if start == Start::Pending {
        let lease = Lease {
            task_id: created.id.clone(),
            token: "0".repeat(32),
        };
        return (created, lease);
    }
    let (running, lease) = claim_only(store, task_type).await;
    let task = match start {
        Start::Pending | Start::Processing => running,
        Start::CancelRequested => store.request_cancel(&running.id).await.expect("request"),
        Start::Completed => store
            .complete(&lease, serde_json::json!({"ok": true}))
            .await
            .expect("complete"),
        Start::Failed => store
            .fail(&lease, Failure::permanent("boom"))
            .await
            .expect("fail"),
        Start::Cancelled => store
            .cancel(&running.id, Some(&lease))
            .await
            .expect("cancel"),
    };
    (task, lease)
}

/// The next change on `feed`, waiting at most [`WAIT`].
pub(crate) async fn next_change(feed: &mut ChangeReceiver) -> TaskChange {
    tokio::time::timeout(WAIT, feed.recv())
        .await
        .expect("a change within the wait")
        .expect("no lag and an open feed")
}

/// Asserts nothing more was published. Stores publish before an operation returns, so this
/// needs no waiting.
pub(crate) fn assert_quiet(feed: &mut ChangeReceiver) {
    match feed.try_recv() {
        Err(TryRecvError::Empty) => {}
        other => panic!("expected no more changes, got {other:?}"),
    }
}

/// Asserts `result` failed with an error `check` accepts.
#[track_caller]
pub(crate) fn expect_err<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    what: &str,
    check: impl FnOnce(&StoreError) -> bool,
) {
    match result {
        Err(error) if check(&error) => {}
        other => panic!("{what}: unexpected outcome {other:?}"),
    }
}

/// The status a [`Start`] leaves a task in.
pub(crate) fn status_of(start: Start) -> TaskStatus {
    match start {
        Start::Pending => TaskStatus::Pending,
        Start::Processing | Start::CancelRequested => TaskStatus::Processing,
        Start::Completed => TaskStatus::Completed,
        Start::Failed => TaskStatus::Failed,
        Start::Cancelled => TaskStatus::Cancelled,
    }
}

/// The ids of `tasks`, in order.
pub(crate) fn ids(tasks: &[Task]) -> Vec<TaskId> {
    tasks.iter().map(|t| t.id.clone()).collect()
}

/// The ids of `tasks`, as a set.
pub(crate) fn id_set(tasks: &[Task]) -> std::collections::HashSet<TaskId> {
    tasks.iter().map(|t| t.id.clone()).collect()
}
