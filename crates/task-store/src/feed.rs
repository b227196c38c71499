//! The change feed: every committed change to a task, published in commit order, without any
//! database polling by subscribers.

use std::sync::Arc;

use task_core::{Task, TaskId};
use tokio::sync::broadcast;

/// Changes buffered per subscriber before it is told it lagged. A lagging subscriber re-reads
/// the tasks it cares about instead of slowing writers down.
pub const DEFAULT_FEED_CAPACITY: usize = 4096;

/// One committed change.
#[derive(Debug, Clone)]
pub enum TaskChange {
    /// The task was created or changed; this is its state after the commit (with its new
    /// `version`).
    Upserted(Arc<Task>),
    /// The task was deleted (bulk delete or the cleaner).
    Deleted {
        /// The deleted task's id.
        id: TaskId,
        /// Its owner, so per-user streams can route the deletion.
        user_id: String,
    },
}

impl TaskChange {
    /// The id of the task that changed.
    pub fn task_id(&self) -> &TaskId {
        match self {
            TaskChange::Upserted(task) => &task.id,
            TaskChange::Deleted { id, .. } => id,
        }
    }

    /// The owner of the task that changed.
    pub fn user_id(&self) -> &str {
        match self {
            TaskChange::Upserted(task) => &task.user_id,
            TaskChange::Deleted { user_id, .. } => user_id,
        }
    }
}

/// A subscription to the feed. `recv` returns `Err(RecvError::Lagged(n))` when this subscriber
/// fell more than the capacity behind; it should then re-read the state it shows.
pub type ChangeReceiver = broadcast::Receiver<TaskChange>;

/// The publishing side, shared by backends. Publishing never blocks and never fails: with no
/// subscribers the change is simply dropped.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    sender: broadcast::Sender<TaskChange>,
}

impl ChangeFeed {
    /// A feed that buffers `capacity` changes per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// Publishes a change. Backends call this after the commit, in commit order.
    pub fn publish(&self, change: TaskChange) {
        // An error only means nobody is listening right now, which is fine.
        let _ = self.sender.send(change);
    }

    /// A new subscription that sees every change published from now on.
    pub fn subscribe(&self) -> ChangeReceiver {
        self.sender.subscribe()
    }

    /// How many subscriptions are open.
    pub fn subscriber_count(&self) -> usize {
        self.sender.receiver_count()
    }
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self::new(DEFAULT_FEED_CAPACITY)
    }
}
