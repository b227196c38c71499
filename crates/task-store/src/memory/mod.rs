//! [`MemoryStore`]: the whole store in one process's memory, with exactly the behaviour of the
//! SQLite backend (the conformance suite runs against both). For tests, demos and embedding;
//! nothing survives a restart.

mod analytics;
mod events;
mod graph;
mod providers;
mod schedules;
mod tasks;
mod users;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use task_core::{Task, TaskId, Workflow};

use crate::guard::StoredIdempotency;
use crate::schedules::{RunKind, Schedule};
use crate::users::{TokenRecord, User};
use crate::UserLimits;
use crate::{ChangeFeed, EventFeed, TaskEvent, DEFAULT_FEED_CAPACITY};

/// An in-memory [`crate::TaskStore`] and [`crate::UserStore`]. Cloning is cheap and shares the
/// data. Every change is published on the change feed while the state lock is held, so the feed
/// order is the order of the changes.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    feed: ChangeFeed,
    events: EventFeed,
}

#[derive(Debug, Default)]
struct State {
    tasks: HashMap<TaskId, StoredTask>,
    /// Gives each stored row an insertion number, the tie-breaker SQLite's rowid provides.
    next_seq: u64,
    users: BTreeMap<String, (u64, User)>,
    tokens: HashMap<String, StoredToken>,
    /// Each task's parents and whether each edge runs on failure, oldest first.
    parents: HashMap<TaskId, Vec<(TaskId, bool)>>,
    /// Each task's children, the reverse of `parents`.
    children: HashMap<TaskId, Vec<(TaskId, bool)>>,
    workflows: HashMap<String, Workflow>,
    schedules: HashMap<String, Schedule>,
    /// Each schedule's runs, in the order they were recorded.
    schedule_runs: HashMap<String, Vec<StoredRun>>,
    /// Idempotency records by (user, key).
    idempotency: HashMap<(String, String), StoredIdempotency>,
    /// The task each (user, unique key) last created.
    unique_keys: HashMap<(String, String), TaskId>,
    /// Users' own limits by email.
    limits: HashMap<String, UserLimits>,
    /// Rollup rows, failure counts and the fold watermark.
    analytics: analytics::Rollups,
    /// Provider limits: each provider and model's hold, minute counts and leases.
    providers: providers::Gates,
}

#[derive(Debug, Clone)]
struct StoredRun {
    scheduled_at: task_core::UnixMillis,
    kind: RunKind,
    task_id: Option<TaskId>,
    recorded_at: task_core::UnixMillis,
}

#[derive(Debug, Clone)]
struct StoredTask {
    seq: u64,
    task: Task,
    /// The task's event log: removed with the task.
    events: Vec<TaskEvent>,
}

#[derive(Debug, Clone)]
struct StoredToken {
    seq: u64,
    hash: String,
    record: TokenRecord,
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

impl MemoryStore {
    /// An empty store whose change feed buffers [`DEFAULT_FEED_CAPACITY`] changes per
    /// subscriber.
    pub fn new() -> Self {
        Self::with_feed_capacity(DEFAULT_FEED_CAPACITY)
    }

    /// An empty store whose change feed buffers `capacity` changes per subscriber.
    pub fn with_feed_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                feed: ChangeFeed::new(capacity),
                events: EventFeed::default(),
            }),
        }
    }

    /// The state, even if a panic elsewhere poisoned the lock: every operation checks before
    /// it mutates, so a panic cannot leave a half-applied change behind.
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}
