//! Waiting for a task to reach a state, for every crate's tests: watches the change feed
//! (subscribed before the first read, so no change slips between them) with a bounded wait,
//! never a sleep-and-poll.

use std::future::Future;
use std::time::Duration;

use task_core::{Task, TaskId};
use tokio::sync::broadcast::error::RecvError;

use crate::{TaskChange, TaskStore};

/// Runs `future`, failing the test (naming `what`) if it takes longer than `wait`.
pub async fn within<T>(wait: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(wait, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {wait:?} waiting for {what}"))
}

/// Waits at most `wait` until task `id` satisfies `done`, and returns it in that state; `what`
/// names the wait in the failure. A lagging feed is caught up by reading the task.
pub async fn wait_for_task(
    store: &dyn TaskStore,
    id: &TaskId,
    wait: Duration,
    what: &str,
    done: impl Fn(&Task) -> bool,
) -> Task {
    let mut feed = store.subscribe();
    within(wait, what, async {
        let task = store.get(id).await.expect("get task");
        if done(&task) {
            return task;
        }
        loop {
            match feed.recv().await {
                Ok(TaskChange::Upserted(task)) if &task.id == id && done(&task) => {
                    return (*task).clone()
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    let task = store.get(id).await.expect("get task");
                    if done(&task) {
                        return task;
                    }
                }
                Err(RecvError::Closed) => panic!("change feed closed"),
            }
        }
    })
    .await
}
