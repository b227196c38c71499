//! The per-task event log: partial outputs a worker stores while its task runs (each question a
//! model has finished writing), numbered 1, 2, 3, … per task, so a live stream that reconnects —
//! after a network blip, a server restart, or on another instance sharing the database — can
//! replay exactly the events it missed and then continue live.
//!
//! It is a trait of its own beside [`crate::TaskStore`], with a feed of its own, so that stores
//! and wrappers that do not keep partial outputs need not change, and so that the task change
//! feed (which several crates match exhaustively) keeps its two kinds of change.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use task_core::{TaskId, UnixMillis};
use tokio::sync::broadcast;

use crate::{Lease, Result};

/// Appended events buffered per subscriber before it is told it lagged; a lagging subscriber
/// re-reads the log with [`TaskEventLog::events_after`].
pub const DEFAULT_EVENT_FEED_CAPACITY: usize = 4096;

/// One stored event of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEvent {
    /// The task.
    pub task_id: TaskId,
    /// Its owner, so per-user streams can route the event.
    pub user_id: String,
    /// Position in the task's log, from 1, without gaps.
    pub seq: i64,
    /// The attempt that wrote it.
    pub attempt: i64,
    /// What was produced (for a generation, one checked question).
    pub item: Value,
    /// When it was stored (unix milliseconds).
    pub created_at: UnixMillis,
}

/// A subscription to appended events.
pub type EventReceiver = broadcast::Receiver<Arc<TaskEvent>>;

/// The publishing side of the event feed, shared by backends. Publishing never blocks.
#[derive(Debug, Clone)]
pub struct EventFeed {
    sender: broadcast::Sender<Arc<TaskEvent>>,
}

impl EventFeed {
    /// A feed that buffers `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// Publishes an event; backends call this after the commit.
    pub fn publish(&self, event: TaskEvent) {
        // An error only means nobody is listening right now.
        let _ = self.sender.send(Arc::new(event));
    }

    /// A subscription that sees every event published from now on.
    pub fn subscribe(&self) -> EventReceiver {
        self.sender.subscribe()
    }
}

impl Default for EventFeed {
    fn default() -> Self {
        Self::new(DEFAULT_EVENT_FEED_CAPACITY)
    }
}

/// Durable per-task event logs. Object-safe: use it as `Arc<dyn TaskEventLog>`.
///
/// Rules every implementation keeps (`task_store::testkit::events`, run with
/// `event_log_conformance_suite!`, with the `testkit` feature):
/// - [`TaskEventLog::append_event`] is fenced like every worker write: only the holder of the
///   task's current lease appends; a stale token writes nothing and yields
///   [`crate::StoreError::LeaseLost`].
/// - Sequence numbers start at 1 and have no gaps; events come back in that order.
/// - An appended event is published on [`TaskEventLog::subscribe_events`] after its commit.
/// - A task's events are deleted with the task (a delete, or the cleaner's purge).
#[async_trait]
pub trait TaskEventLog: Send + Sync + std::fmt::Debug + 'static {
    /// Appends `item` as the next event of the lease's task and returns it.
    async fn append_event(&self, lease: &Lease, item: Value) -> Result<TaskEvent>;

    /// The events of task `id` with `seq > after`, in order (all of them for `after = 0`). An
    /// unknown task has none.
    async fn events_after(&self, id: &TaskId, after: i64) -> Result<Vec<TaskEvent>>;

    /// A subscription to every event appended from now on, in commit order per task.
    fn subscribe_events(&self) -> EventReceiver;
}
