//! The per-user queue limit without a database count per request: the ledger remembers each
//! user's last counted number of unfinished tasks, what it has created since, and what is
//! being created right now, and asks the database again only when that estimate is stale or
//! would reach the limit.
//!
//! A creation reserves its place before it writes ([`QueueLedger::reserve`]) and settles it
//! after ([`QueueLedger::settle`]), so concurrent requests of one process cannot race past the
//! limit. The estimate can be too high (tasks that finished since the count; a creation that
//! committed but has not settled yet), and a too-high estimate triggers a recount before
//! anyone is refused; only the unsettled creations survive a recount, so near the limit a
//! request racing a commit may be refused although the commit leaves room. Tasks added by
//! other paths (a retry, another server process) are seen at the next recount, at most
//! [`RECOUNT_AFTER`] later.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use task_store::{StoreError, TaskStore};

/// How long a count is trusted.
pub const RECOUNT_AFTER: Duration = Duration::from_secs(1);
/// Users remembered at most; beyond it, stale entries without creations in flight are dropped.
const MAX_USERS: usize = 10_000;

/// Unfinished-task estimates per user.
#[derive(Debug, Default)]
pub struct QueueLedger {
    users: HashMap<String, Tally>,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    /// Unfinished tasks at the last count.
    counted: u64,
    /// Tasks created (and settled) since.
    added: u64,
    /// Reserved creations not settled yet; not reset by a recount, which cannot see them.
    in_flight: u64,
    at: Instant,
}

impl Tally {
    fn estimate(&self) -> u64 {
        self.counted
            .saturating_add(self.added)
            .saturating_add(self.in_flight)
    }
}

impl QueueLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves a place for one new task of `user`, whose queue holds at most `max`
    /// unfinished tasks (their own limit or the server's); `false` when it is full. A `true`
    /// must be followed by [`QueueLedger::settle`].
    ///
    /// # Errors
    /// The store's error when a recount fails (nothing is reserved then).
    pub async fn reserve(
        &mut self,
        store: &dyn TaskStore,
        user: &str,
        max: u64,
    ) -> Result<bool, StoreError> {
        if let Some(tally) = self.users.get_mut(user) {
            if tally.at.elapsed() < RECOUNT_AFTER && tally.estimate() < max {
                tally.in_flight += 1;
                return Ok(true);
            }
        }
        let counted = store.count_unfinished(user).await?;
        if self.users.len() >= MAX_USERS {
            self.users
                .retain(|_, tally| tally.in_flight > 0 || tally.at.elapsed() < RECOUNT_AFTER);
        }
        let in_flight = self.users.get(user).map_or(0, |tally| tally.in_flight);
        let mut tally = Tally {
            counted,
            added: 0,
            in_flight,
            at: Instant::now(),
        };
        let room = tally.estimate() < max;
        if room {
            tally.in_flight += 1;
        }
        self.users.insert(user.to_owned(), tally);
        Ok(room)
    }

    /// Settles a reservation of `user`: the task was `created`, or its creation failed.
    pub fn settle(&mut self, user: &str, created: bool) {
        if let Some(tally) = self.users.get_mut(user) {
            tally.in_flight = tally.in_flight.saturating_sub(1);
            if created {
                tally.added = tally.added.saturating_add(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use task_core::NewTask;
    use task_store::MemoryStore;

    #[tokio::test]
    async fn counts_once_then_estimates_until_near_the_limit() {
        let store = Arc::new(MemoryStore::new());
        for _ in 0..3 {
            store.create(NewTask::new("a", "noop")).await.unwrap();
        }
        let mut ledger = QueueLedger::new();
        assert!(ledger.reserve(store.as_ref(), "a", 5).await.unwrap());
        store.create(NewTask::new("a", "noop")).await.unwrap();
        ledger.settle("a", true);
        // The estimate (3 + 1) leaves room for one more without asking the store.
        assert!(ledger.reserve(store.as_ref(), "a", 5).await.unwrap());
        store.create(NewTask::new("a", "noop")).await.unwrap();
        ledger.settle("a", true);
        // At the limit the ledger recounts (5 unfinished) and refuses.
        assert!(!ledger.reserve(store.as_ref(), "a", 5).await.unwrap());
        assert!(ledger.reserve(store.as_ref(), "b", 5).await.unwrap());
    }

    #[tokio::test]
    async fn creations_in_flight_count_against_the_limit_and_survive_a_recount() {
        let store = Arc::new(MemoryStore::new());
        let mut ledger = QueueLedger::new();
        assert!(ledger.reserve(store.as_ref(), "a", 2).await.unwrap());
        assert!(ledger.reserve(store.as_ref(), "a", 2).await.unwrap());
        // Two reservations, nothing written yet: the recount sees 0 tasks, but both
        // reservations still hold their places.
        assert!(!ledger.reserve(store.as_ref(), "a", 2).await.unwrap());
        // A failed creation gives its place back.
        ledger.settle("a", false);
        assert!(ledger.reserve(store.as_ref(), "a", 2).await.unwrap());
    }

    #[tokio::test]
    async fn a_high_estimate_is_corrected_before_refusing() {
        let store = Arc::new(MemoryStore::new());
        let task = store.create(NewTask::new("a", "noop")).await.unwrap();
        let mut ledger = QueueLedger::new();
        assert!(!ledger.reserve(store.as_ref(), "a", 1).await.unwrap());
        store.request_cancel(&task.id).await.unwrap();
        // The remembered count (1) is stale: the task was cancelled, so there is room.
        assert!(ledger.reserve(store.as_ref(), "a", 1).await.unwrap());
    }
}
