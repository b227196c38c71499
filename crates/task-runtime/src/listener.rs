//! The change-feed listener: turns committed changes into wake-ups, so work created in this
//! process starts at once and cancels reach running handlers without waiting for a heartbeat.

use std::sync::Arc;

use task_core::{Task, TaskStatus};
use task_store::{ChangeReceiver, StoreError, TaskChange};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::clock::now_millis;
use crate::shared::Shared;

/// Follows `feed` until `stop` fires or the store closes its feed (polling and heartbeats
/// still cover everything the feed would have told).
pub(crate) async fn run(shared: Arc<Shared>, mut feed: ChangeReceiver, stop: CancellationToken) {
    loop {
        let change = tokio::select! {
            _ = stop.cancelled() => return,
            change = feed.recv() => change,
        };
        match change {
            Ok(TaskChange::Upserted(task)) => observe(&shared, &task),
            Ok(TaskChange::Deleted { .. }) => {}
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "change feed lagged; re-reading running tasks");
                shared.wake.notify_one();
                recheck_running(&shared).await;
            }
            Err(RecvError::Closed) => {
                tracing::warn!("change feed closed; relying on polling and heartbeats");
                return;
            }
        }
    }
}

fn observe(shared: &Shared, task: &Task) {
    match task.status {
        TaskStatus::Pending if shared.types.contains_key(&task.task_type) => {
            if task.run_at <= now_millis() {
                shared.wake.notify_one();
            } else if shared.remember_due(task.run_at) {
                // The worker may be asleep until a later due time; it must recompute.
                shared.due_changed.notify_one();
            }
        }
        TaskStatus::Processing
            if task.cancel_requested
                && task.lease_owner.as_deref() == Some(shared.config.worker_id.as_str()) =>
        {
            shared.request_cancel(&task.id, task.lease_token.as_deref());
        }
        _ => {}
    }
}

/// After missing changes, asks the store whether any running task was cancelled meanwhile.
async fn recheck_running(shared: &Shared) {
    for attempt in shared.running_attempts() {
        match shared.store.get(&attempt.task.id).await {
            Ok(task) if task.cancel_requested => {
                shared.request_cancel(&task.id, task.lease_token.as_deref());
            }
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(error) => {
                tracing::debug!(task_id = %attempt.task.id, %error, "re-read after lag failed; the heartbeat will catch up");
            }
        }
    }
}
