//! Publishing on the local change feed from two sources without duplicates or reordering.
//!
//! A store publishes its own writes right after they commit (so a local subscriber sees every
//! version it wrote, at once), and its listener publishes what notifications report, which
//! includes those same writes and every other instance's. [`Publisher`] remembers the last
//! version published per task and publishes a change only when it is newer, under one lock, so
//! each task's changes reach subscribers once and in version order whichever source is first.
//!
//! Appended task events (partial outputs) take the same two paths — the appending store at
//! once, every store's listener from the events channel — and are deduplicated the same way, by
//! their sequence number per task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use task_core::{Task, TaskId};
use task_store::{ChangeFeed, ChangeReceiver, EventFeed, EventReceiver, TaskChange, TaskEvent};

/// Tasks remembered per generation. The memory only has to outlive the race between a local
/// publish and the listener's read of the same row (milliseconds); two generations of this
/// size keep every task seen in the last 65,536 changes at least.
const GENERATION_SIZE: usize = 65_536;

/// The local change feed plus what has been published on it.
#[derive(Debug)]
pub(crate) struct Publisher {
    feed: ChangeFeed,
    published: Mutex<Published>,
    events: EventFeed,
    /// The highest event `seq` published per task.
    published_events: Mutex<Published>,
}

/// The last published rank per task, in two generations so the memory stays bounded.
#[derive(Debug, Default)]
struct Published {
    current: HashMap<TaskId, i64>,
    previous: HashMap<TaskId, i64>,
}

impl Published {
    fn last(&self, id: &TaskId) -> Option<i64> {
        self.current
            .get(id)
            .or_else(|| self.previous.get(id))
            .copied()
    }

    fn record(&mut self, id: TaskId, rank: i64) {
        if self.current.len() >= GENERATION_SIZE && !self.current.contains_key(&id) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(id, rank);
    }
}

/// Orders the changes of one task: a deletion at version `v` comes after the upsert of `v`.
fn rank(version: i64, deleted: bool) -> i64 {
    version.saturating_mul(2).saturating_add(i64::from(deleted))
}

impl Publisher {
    /// A publisher on a new feed buffering `capacity` changes per subscriber.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            feed: ChangeFeed::new(capacity),
            published: Mutex::new(Published::default()),
            events: EventFeed::default(),
            published_events: Mutex::new(Published::default()),
        }
    }

    /// A new subscription to the task event feed.
    pub(crate) fn subscribe_events(&self) -> EventReceiver {
        self.events.subscribe()
    }

    /// Whether the event `seq` of `id` would still be published (no later one was).
    pub(crate) fn event_is_new(&self, id: &TaskId, seq: i64) -> bool {
        lock(&self.published_events)
            .last(id)
            .is_none_or(|last| seq > last)
    }

    /// Publishes `event` unless it or a later event of its task was published. Returns whether
    /// it was. Subscribers that see a gap (an event missed while a listener reconnected, say)
    /// re-read the task's log.
    pub(crate) fn event_appended(&self, event: TaskEvent) -> bool {
        // The lock is held while sending so two sources cannot interleave out of order.
        let mut published = lock(&self.published_events);
        if published
            .last(&event.task_id)
            .is_some_and(|last| event.seq <= last)
        {
            return false;
        }
        published.record(event.task_id.clone(), event.seq);
        self.events.publish(event);
        true
    }

    /// A new subscription to the feed.
    pub(crate) fn subscribe(&self) -> ChangeReceiver {
        self.feed.subscribe()
    }

    /// Whether a change of `id` at `version` would still be published (nothing newer was).
    pub(crate) fn is_new(&self, id: &TaskId, version: i64, deleted: bool) -> bool {
        let published = self.lock();
        published
            .last(id)
            .is_none_or(|last| rank(version, deleted) > last)
    }

    /// Publishes `task` unless this or a newer version of it was published. Returns whether it
    /// was.
    pub(crate) fn upserted(&self, task: &Task) -> bool {
        self.publish(&task.id, rank(task.version, false), || {
            TaskChange::Upserted(Arc::new(task.clone()))
        })
    }

    /// Publishes the deletion of `id` (last at `version`) unless it was published.
    pub(crate) fn deleted(&self, id: &TaskId, user_id: &str, version: i64) -> bool {
        self.publish(id, rank(version, true), || TaskChange::Deleted {
            id: id.clone(),
            user_id: user_id.to_owned(),
        })
    }

    fn publish(&self, id: &TaskId, rank: i64, change: impl FnOnce() -> TaskChange) -> bool {
        // The lock is held while sending so two sources cannot interleave out of order.
        let mut published = self.lock();
        if published.last(id).is_some_and(|last| rank <= last) {
            return false;
        }
        published.record(id.clone(), rank);
        self.feed.publish(change());
        true
    }

    /// The record, even if a panic elsewhere poisoned the lock: it is only a cache of what
    /// was sent, and every update to it is a single insert.
    fn lock(&self) -> std::sync::MutexGuard<'_, Published> {
        lock(&self.published)
    }
}

/// `mutex`'s guard, even if a panic elsewhere poisoned it (see [`Publisher::lock`]).
fn lock(mutex: &Mutex<Published>) -> std::sync::MutexGuard<'_, Published> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use task_core::{NewTask, TaskStatus};

    fn task(id: &str, version: i64) -> Task {
        let new = NewTask::new("u", "t");
        Task {
            id: id.parse().unwrap(),
            user_id: new.user_id,
            task_type: new.task_type,
            status: TaskStatus::Pending,
            label: None,
            description: None,
            progress: 0,
            total: 100,
            result: None,
            error: None,
            params: new.params,
            attempt: 0,
            max_attempts: 3,
            run_at: 0,
            lease_owner: None,
            lease_token: None,
            lease_expires_at: None,
            cancel_requested: false,
            version,
            created_at: 0,
            updated_at: 0,
            started_at: None,
            completed_at: None,
            waiting_for: 0,
            workflow_id: None,
            priority: task_core::Priority::Normal,
        }
    }

    fn versions(receiver: &mut ChangeReceiver) -> Vec<(String, i64)> {
        let mut seen = Vec::new();
        while let Ok(change) = receiver.try_recv() {
            match change {
                TaskChange::Upserted(task) => seen.push((task.id.to_string(), task.version)),
                TaskChange::Deleted { id, .. } => seen.push((id.to_string(), -1)),
            }
        }
        seen
    }

    #[test]
    fn each_version_is_published_once_and_never_out_of_order() {
        let publisher = Publisher::new(64);
        let mut receiver = publisher.subscribe();
        assert!(publisher.upserted(&task("task_1_aaaaaa", 1)));
        assert!(!publisher.upserted(&task("task_1_aaaaaa", 1)), "duplicate");
        assert!(publisher.upserted(&task("task_1_aaaaaa", 3)));
        assert!(!publisher.upserted(&task("task_1_aaaaaa", 2)), "older");
        assert!(publisher.upserted(&task("task_1_bbbbbb", 1)));
        assert!(!publisher.is_new(&"task_1_aaaaaa".parse().unwrap(), 3, false));
        assert!(publisher.is_new(&"task_1_aaaaaa".parse().unwrap(), 3, true));
        let id = "task_1_aaaaaa".parse().unwrap();
        assert!(publisher.deleted(&id, "u", 3));
        assert!(!publisher.deleted(&id, "u", 3), "deletion published once");
        assert_eq!(
            versions(&mut receiver),
            [
                ("task_1_aaaaaa".to_owned(), 1),
                ("task_1_aaaaaa".to_owned(), 3),
                ("task_1_bbbbbb".to_owned(), 1),
                ("task_1_aaaaaa".to_owned(), -1),
            ]
        );
    }

    #[test]
    fn each_event_is_published_once_and_never_out_of_order() {
        let publisher = Publisher::new(64);
        let mut receiver = publisher.subscribe_events();
        let id: TaskId = "task_1_aaaaaa".parse().unwrap();
        let event = |seq| TaskEvent {
            task_id: id.clone(),
            user_id: "u".into(),
            seq,
            attempt: 1,
            item: serde_json::json!(seq),
            created_at: 0,
        };
        assert!(publisher.event_appended(event(1)));
        assert!(!publisher.event_appended(event(1)), "the listener's copy");
        assert!(!publisher.event_is_new(&id, 1));
        assert!(publisher.event_is_new(&id, 2));
        assert!(publisher.event_appended(event(3)), "a gap is published");
        assert!(!publisher.event_appended(event(2)), "an older one is not");
        let mut seqs = Vec::new();
        while let Ok(event) = receiver.try_recv() {
            seqs.push(event.seq);
        }
        assert_eq!(seqs, [1, 3]);
    }

    #[test]
    fn memory_is_bounded_but_recent_tasks_are_remembered() {
        let mut published = Published::default();
        for n in 0..(GENERATION_SIZE * 2 + 10) {
            published.record(format!("task_1_{n:06}").parse().unwrap(), 1);
        }
        assert!(published.current.len() + published.previous.len() <= GENERATION_SIZE * 2);
        let recent: TaskId = format!("task_1_{:06}", GENERATION_SIZE * 2 + 9)
            .parse()
            .unwrap();
        assert_eq!(published.last(&recent), Some(1));
    }
}
