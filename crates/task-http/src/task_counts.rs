//! Task counts for the dashboard (`GET /api/tasks/counts`): every task of the database by status
//! and by type, counted by the store, remembered, and counted again only when the change feed
//! reported a change and the last count is older than [`COUNTS_REFRESH_INTERVAL`].
//!
//! A count reads every task (or, with an index that leads with `status`, every index entry), so
//! it must not run per page load or per live update: with a busy queue and any number of open
//! dashboards the store counts at most once per interval, and never while nothing changes.
//! Concurrent requests share one count in flight.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use task_core::{now_millis, TaskStatus, UnixMillis};
use task_store::{ChangeReceiver, StoreError, TaskStore};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// The shortest time between two counts while tasks change.
pub const COUNTS_REFRESH_INTERVAL: Duration = Duration::from_secs(2);

/// The answer of `GET /api/tasks/counts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CountsView {
    /// Every task in the database.
    pub total: u64,
    /// Tasks per status; every status is present, with 0 when there are none.
    pub by_status: BTreeMap<&'static str, u64>,
    /// Tasks per type, for the types that have any.
    pub by_type: BTreeMap<String, u64>,
    /// When the store counted (Unix ms): the numbers are at most this old plus the time
    /// since the last change.
    pub counted_at: UnixMillis,
}

impl CountsView {
    fn of(rows: &[task_store::StatusCount], counted_at: UnixMillis) -> Self {
        let mut by_status: BTreeMap<&'static str, u64> = TaskStatus::ALL
            .iter()
            .map(|status| (status.as_str(), 0))
            .collect();
        let mut by_type = BTreeMap::new();
        let mut total = 0;
        for row in rows {
            *by_status.entry(row.status.as_str()).or_default() += row.count;
            *by_type.entry(row.task_type.clone()).or_default() += row.count;
            total += row.count;
        }
        Self {
            total,
            by_status,
            by_type,
            counted_at,
        }
    }
}

/// The remembered counts and the change-feed position they reflect.
struct Counted {
    view: CountsView,
    /// The number of changes seen on the feed before the count started.
    changes: u64,
    at: Instant,
}

/// Counts tasks through the store, remembering the answer until the change feed says it is stale.
pub struct TaskCounts {
    store: Arc<dyn TaskStore>,
    /// Changes seen on the feed (a lagging feed counts as a change).
    changes: Arc<AtomicU64>,
    counted: Mutex<Option<Counted>>,
    refresh: Duration,
}

impl std::fmt::Debug for TaskCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCounts")
            .field("changes", &self.changes.load(Ordering::Relaxed))
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl TaskCounts {
    /// Starts following `store`'s change feed on the current Tokio runtime until `shutdown`.
    ///
    /// # Panics
    /// When called outside a Tokio runtime (like `tokio::spawn`).
    pub fn start(
        store: Arc<dyn TaskStore>,
        refresh: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        // Subscribed before anything is counted, so no change after `start` goes unseen.
        let feed = store.subscribe();
        let counts = Arc::new(Self {
            changes: Arc::new(AtomicU64::new(0)),
            counted: Mutex::new(None),
            refresh,
            store,
        });
        tokio::spawn(follow_changes(
            Arc::downgrade(&counts),
            feed,
            counts.changes.clone(),
            shutdown,
        ));
        counts
    }

    /// The counts: the remembered ones while nothing changed or they are younger than the
    /// refresh interval, else a new count.
    ///
    /// # Errors
    /// The store's error when it cannot count.
    pub async fn get(&self) -> Result<CountsView, StoreError> {
        let mut counted = self.counted.lock().await;
        let changes = self.changes.load(Ordering::Acquire);
        if let Some(known) = counted.as_ref() {
            if known.changes == changes || known.at.elapsed() < self.refresh {
                return Ok(known.view.clone());
            }
        }
        // Read before counting: a change committed while the store counts makes the next
        // request count again, so nothing is missed for longer than one interval.
        let rows = self.store.counts().await?;
        let view = CountsView::of(&rows, now_millis());
        *counted = Some(Counted {
            view: view.clone(),
            changes,
            at: Instant::now(),
        });
        Ok(view)
    }
}

/// Counts every change on the feed; ends with the counts or on shutdown.
async fn follow_changes(
    counts: Weak<TaskCounts>,
    mut feed: ChangeReceiver,
    changes: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            received = feed.recv() => received,
        };
        if counts.strong_count() == 0 {
            break;
        }
        match received {
            Ok(_) | Err(RecvError::Lagged(_)) => {
                changes.fetch_add(1, Ordering::Release);
            }
            Err(RecvError::Closed) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use task_core::TaskStatus::*;

    use super::*;
    use crate::live::testing::{task, FakeStore};

    /// Waits until the feed follower has seen `n` changes.
    async fn seen(counts: &TaskCounts, n: u64) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while counts.changes.load(Ordering::Acquire) < n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the follower sees the change");
    }

    #[tokio::test]
    async fn counts_once_until_something_changes() {
        let store = FakeStore::new(64);
        store.put_silently(task(1, "ann", 1, Completed));
        store.put_silently(task(2, "bob", 1, Pending));
        let counts = TaskCounts::start(store.clone(), Duration::ZERO, CancellationToken::new());
        let first = counts.get().await.unwrap();
        assert_eq!(first.total, 2);
        assert_eq!(first.by_status["completed"], 1);
        assert_eq!(first.by_status["pending"], 1);
        assert_eq!(first.by_status["waiting"], 0, "every status is present");
        for _ in 0..5 {
            assert_eq!(counts.get().await.unwrap(), first);
        }
        assert_eq!(store.counts_calls(), 1, "nothing changed: no new count");
        store.commit(task(2, "bob", 2, Processing));
        seen(&counts, 1).await;
        let second = counts.get().await.unwrap();
        assert_eq!(second.by_status["pending"], 0);
        assert_eq!(second.by_status["processing"], 1);
        assert_eq!(store.counts_calls(), 2);
    }

    #[tokio::test]
    async fn changes_within_the_interval_share_one_count() {
        let store = FakeStore::new(64);
        let counts = TaskCounts::start(
            store.clone(),
            Duration::from_secs(3600),
            CancellationToken::new(),
        );
        assert_eq!(counts.get().await.unwrap().total, 0);
        store.commit(task(1, "ann", 1, Pending));
        seen(&counts, 1).await;
        assert_eq!(
            counts.get().await.unwrap().total,
            0,
            "still within the interval"
        );
        assert_eq!(store.counts_calls(), 1);
    }
}
