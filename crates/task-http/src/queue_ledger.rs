//! The per-user queue limit without a database count per batch: the ledger remembers each
//! user's last counted number of unfinished tasks plus what it has created since, and asks the
//! database again only when that estimate is stale or would reach the limit.
//!
//! The estimate can only be too high while it is fresh (tasks that finished since the count are
//! still in it), and a too-high estimate triggers a recount before anyone is refused, so nobody
//! is refused wrongly. Tasks added by other paths (a retry, another server process) are seen at
//! the next recount, at most [`RECOUNT_AFTER`] later.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use task_store::{StoreError, TaskStore};

/// How long a count is trusted.
pub const RECOUNT_AFTER: Duration = Duration::from_secs(1);
/// Users remembered at most; beyond it, stale entries are dropped.
const MAX_USERS: usize = 10_000;

/// Unfinished-task estimates per user.
#[derive(Debug)]
pub struct QueueLedger {
    max_per_user: u64,
    users: HashMap<String, Tally>,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    counted: u64,
    added: u64,
    at: Instant,
}

impl QueueLedger {
    /// A ledger for a limit of `max_per_user` unfinished tasks.
    pub fn new(max_per_user: u64) -> Self {
        Self {
            max_per_user,
            users: HashMap::new(),
        }
    }

    /// How many of `wanted` new tasks `user` may still queue (0 to `wanted`).
    ///
    /// # Errors
    /// The store's error when a recount fails.
    pub async fn room(
        &mut self,
        store: &dyn TaskStore,
        user: &str,
        wanted: u64,
    ) -> Result<u64, StoreError> {
        if let Some(tally) = self.users.get(user) {
            let estimate = tally.counted.saturating_add(tally.added);
            if tally.at.elapsed() < RECOUNT_AFTER
                && estimate.saturating_add(wanted) <= self.max_per_user
            {
                return Ok(wanted);
            }
        }
        let counted = store.count_unfinished(user).await?;
        if self.users.len() >= MAX_USERS {
            self.users
                .retain(|_, tally| tally.at.elapsed() < RECOUNT_AFTER);
        }
        self.users.insert(
            user.to_owned(),
            Tally {
                counted,
                added: 0,
                at: Instant::now(),
            },
        );
        Ok(wanted.min(self.max_per_user.saturating_sub(counted)))
    }

    /// Records `created` new unfinished tasks of `user`.
    pub fn record(&mut self, user: &str, created: u64) {
        if let Some(tally) = self.users.get_mut(user) {
            tally.added = tally.added.saturating_add(created);
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
        let mut ledger = QueueLedger::new(5);
        assert_eq!(ledger.room(store.as_ref(), "a", 1).await.unwrap(), 1);
        ledger.record("a", 1);
        store.create(NewTask::new("a", "noop")).await.unwrap();
        // The estimate (3 + 1) leaves room for one more without asking the store.
        assert_eq!(ledger.room(store.as_ref(), "a", 1).await.unwrap(), 1);
        ledger.record("a", 1);
        store.create(NewTask::new("a", "noop")).await.unwrap();
        // At the limit the ledger recounts (5 unfinished) and refuses.
        assert_eq!(ledger.room(store.as_ref(), "a", 3).await.unwrap(), 0);
        assert_eq!(ledger.room(store.as_ref(), "b", 9).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn a_high_estimate_is_corrected_before_refusing() {
        let store = Arc::new(MemoryStore::new());
        let task = store.create(NewTask::new("a", "noop")).await.unwrap();
        let mut ledger = QueueLedger::new(1);
        assert_eq!(ledger.room(store.as_ref(), "a", 1).await.unwrap(), 0);
        store.request_cancel(&task.id).await.unwrap();
        // The remembered count (1) is stale: the task was cancelled, so there is room.
        assert_eq!(ledger.room(store.as_ref(), "a", 1).await.unwrap(), 1);
    }
}
