//! The state the worker loop, the feed listener and the task supervisors share: the claimed
//! attempts (running or queued), the handler slots, the wake-up signal and the known future
//! due times.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

// A panic while holding these locks cannot leave them half-updated (each critical section is a
// single map operation), so a poisoned lock is still consistent.
use task_core::sync::lock;

use task_core::{TaskId, UnixMillis};
use task_store::{ClaimRequest, TaskStore};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::Attempt;
use crate::registry::TaskType;
use crate::slots::Slots;
use crate::RuntimeConfig;

/// Future due times remembered at most; beyond this the poll tick finds the rest, so a burst of
/// delayed tasks cannot grow the worker's memory without bound.
const MAX_KNOWN_DUE_TIMES: usize = 4096;

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn TaskStore>,
    pub(crate) config: RuntimeConfig,
    pub(crate) types: HashMap<String, TaskType>,
    /// Wakes the worker loop: a due task appeared, or a slot freed. `Notify` keeps one permit,
    /// so a burst of wake-ups costs one claim.
    pub(crate) wake: Notify,
    /// Tells the sleeping worker that a sooner due time is known, without asking for a claim.
    pub(crate) due_changed: Notify,
    /// Stops claiming (shutdown began); rescuer and cleaner stop too.
    pub(crate) stop: CancellationToken,
    /// The shutdown grace period ran out: running handlers are stopped and released.
    pub(crate) hard_stop: CancellationToken,
    /// Every supervisor, so shutdown can wait for them.
    pub(crate) tracker: TaskTracker,
    /// One slot per handler that may run at once (`concurrency`); attempts claimed ahead wait
    /// here for one, in claim order.
    pub(crate) slots: Slots,
    running: Mutex<Running>,
    /// `run_at` of pending tasks seen on the feed that were not yet due, soonest first.
    due: Mutex<BTreeSet<UnixMillis>>,
}

#[derive(Default)]
struct Running {
    /// Every claimed attempt not yet finished: running, queued for a slot, or writing its
    /// outcome.
    attempts: HashMap<TaskId, Arc<Attempt>>,
    /// Cancel requests seen on the feed for tasks this worker claimed but whose claim it has
    /// not finished registering; the claim checks here. Entries older than a heartbeat
    /// interval are dropped: by then a heartbeat would have reported the request anyway.
    early_cancels: HashMap<TaskId, Instant>,
}

impl Shared {
    pub(crate) fn new(
        store: Arc<dyn TaskStore>,
        config: RuntimeConfig,
        types: HashMap<String, TaskType>,
    ) -> Self {
        Self {
            slots: Slots::new(config.concurrency),
            store,
            config,
            types,
            wake: Notify::new(),
            due_changed: Notify::new(),
            stop: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            running: Mutex::default(),
            due: Mutex::default(),
        }
    }

    /// The claim request for `limit` tasks at `now`.
    pub(crate) fn claim_request(&self, limit: usize, now: UnixMillis) -> ClaimRequest {
        ClaimRequest {
            worker_id: self.config.worker_id.clone(),
            limit,
            task_types: self.types.keys().cloned().collect(),
            lease_for: self.config.lease_duration,
            max_running_per_user: self.config.max_running_per_user,
            now,
        }
    }

    /// How many more tasks this worker may claim now: its slots plus its claim-ahead queue,
    /// less the attempts it holds.
    pub(crate) fn free_capacity(&self) -> usize {
        self.config
            .concurrency
            .saturating_add(self.config.claim_ahead)
            .saturating_sub(lock(&self.running).attempts.len())
    }

    /// Whether a claim of `free` tasks is worth its query now: always when a handler slot is
    /// idle (the task would start at once), else only once half of the claim-ahead queue is
    /// free, so a busy worker refills it in a few large claims instead of one per finished
    /// task. Without a queue this is `free > 0`: every claimed attempt takes a slot, so free
    /// capacity means an idle slot.
    ///
    /// While a claim is in flight, idle slots are that claim's to fill: another claim is worth
    /// it only for half a queue.
    pub(crate) fn worth_claiming(&self, free: usize, claims_in_flight: usize) -> bool {
        let idle_slot = claims_in_flight == 0 && self.slots.any_free();
        free > 0 && (idle_slot || free >= self.config.claim_ahead.div_ceil(2))
    }

    pub(crate) fn running_count(&self) -> usize {
        lock(&self.running).attempts.len()
    }

    /// The attempts running now.
    pub(crate) fn running_attempts(&self) -> Vec<Arc<Attempt>> {
        lock(&self.running).attempts.values().cloned().collect()
    }

    /// Takes a slot for a claimed task, honouring a cancel request that arrived first.
    pub(crate) fn register(&self, attempt: Arc<Attempt>) {
        let mut running = lock(&self.running);
        if running.early_cancels.remove(&attempt.task.id).is_some() {
            attempt.cancel_requested.cancel();
        }
        running.attempts.insert(attempt.task.id.clone(), attempt);
    }

    /// Frees the slot of a finished attempt and lets the worker claim again.
    pub(crate) fn unregister(&self, id: &TaskId) {
        lock(&self.running).attempts.remove(id);
        self.wake.notify_one();
    }

    /// Signals the attempt holding `lease_token` on task `id` that a cancel was requested. A
    /// task this worker just claimed but has not registered yet is remembered for
    /// [`Shared::register`].
    pub(crate) fn request_cancel(&self, id: &TaskId, lease_token: Option<&str>) {
        let mut running = lock(&self.running);
        match running.attempts.get(id) {
            Some(attempt) => {
                if lease_token == Some(attempt.lease.token.as_str()) {
                    attempt.cancel_requested.cancel();
                }
            }
            None => {
                let horizon = self.config.heartbeat_interval;
                running
                    .early_cancels
                    .retain(|_, seen| seen.elapsed() < horizon);
                running.early_cancels.insert(id.clone(), Instant::now());
            }
        }
    }

    /// Remembers that a pending task becomes due at `run_at`; true when it is now the soonest
    /// known due time.
    pub(crate) fn remember_due(&self, run_at: UnixMillis) -> bool {
        let mut due = lock(&self.due);
        due.insert(run_at);
        if due.len() > MAX_KNOWN_DUE_TIMES {
            due.pop_last();
        }
        due.first() == Some(&run_at)
    }

    /// Forgets due times up to `now`: the claim about to run looks for those tasks, and if
    /// it has no free slot, the claim after the next finished task will.
    pub(crate) fn forget_due_until(&self, now: UnixMillis) {
        let mut due = lock(&self.due);
        let later = due.split_off(&now.saturating_add(1));
        *due = later;
    }

    /// The soonest known due time.
    pub(crate) fn next_due(&self) -> Option<UnixMillis> {
        lock(&self.due).first().copied()
    }
}
