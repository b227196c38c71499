//! Analytics: finished tasks folded into rollup rows as they finish, so questions over long
//! histories ("how long did users wait today", "what did generation cost this week") are
//! answered from a few thousand rows instead of a scan of the tasks table.
//!
//! [`AnalyticsStore`] is a trait of its own beside [`crate::TaskStore`] (as
//! [`crate::ScheduleStore`] is): the rollup loop calls [`AnalyticsStore::fold_finished`], which
//! reads the next finished tasks after the persisted [`Watermark`] (ordered by `(completed_at,
//! id)`), adds them to the rollup rows of every [`Resolution`] and advances the watermark **in
//! the same transaction**, so a crash loses nothing and counts nothing twice. Once folding has
//! begun, `purge_finished` never deletes a task the watermark has not passed, so rollups
//! outlive the tasks they count. Durations are kept as [`LogHistogram`]s, whose percentiles are
//! within [`RELATIVE_ERROR`] of the exact ones.

mod fold;
mod histogram;
mod report;

use async_trait::async_trait;
use task_core::UnixMillis;

pub use fold::{
    failure_reason, Deltas, FoldedTask, Resolution, RollupCounts, RollupKey, RollupValues,
    Watermark, ALL_USERS,
};
pub use histogram::{
    bucket_of, bucket_value, for_each_encoded, DenseHistogram, LogHistogram, RELATIVE_ERROR,
};
pub use report::{report, FailureCount, GroupBy, Percentiles, Price, Prices, Report, Summary};

use crate::Result;

/// Whose rows a rollup query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserScope {
    /// Everyone's tasks, summed (the [`ALL_USERS`] rows).
    AllUsers,
    /// One user's tasks.
    User(String),
    /// Every user's own rows, for grouping by user.
    EachUser,
}

/// Which rollup rows to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupQuery {
    /// The bucket length.
    pub resolution: Resolution,
    /// First bucket start included.
    pub from: UnixMillis,
    /// Buckets starting at or after this are left out.
    pub to: UnixMillis,
    /// Whose rows.
    pub users: UserScope,
}

impl RollupQuery {
    /// Whether a row with this key answers the query.
    pub fn matches(&self, key: &RollupKey) -> bool {
        key.resolution == self.resolution
            && key.bucket_start >= self.from
            && key.bucket_start < self.to
            && match &self.users {
                UserScope::AllUsers => key.user_id == ALL_USERS,
                UserScope::User(user) => key.user_id == *user,
                UserScope::EachUser => key.user_id != ALL_USERS,
            }
    }
}

/// A stored rollup row, its histograms still encoded ([`LogHistogram::encode`]), so a query
/// sums them without building maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    /// The bucket and group.
    pub key: RollupKey,
    /// The sums.
    pub counts: RollupCounts,
    /// Queue waits, encoded.
    pub wait: Vec<u8>,
    /// Run times, encoded.
    pub run: Vec<u8>,
}

/// A stored failure-reason count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRow {
    /// The bucket and group.
    pub key: RollupKey,
    /// The reason ([`failure_reason`]).
    pub reason: String,
    /// Failed tasks with it.
    pub count: i64,
}

/// What a rollup query read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollups {
    /// Rows in key order.
    pub rows: Vec<RollupRow>,
    /// Failure counts in key order.
    pub failures: Vec<FailureRow>,
    /// How far folding has come (`None` before the first fold).
    pub watermark: Option<Watermark>,
}

/// Rollup storage. Object-safe: use it as `Arc<dyn AnalyticsStore>`.
///
/// Rules every implementation keeps (checked by the analytics cases of `task_store::testkit`):
/// - A fold reads finished tasks strictly after the watermark in `(completed_at, id)` order, at
///   most `limit`, none with `completed_at > until`; adds [`Deltas::of`] them to the stored
///   rows; and moves the watermark to the last one, all in one transaction. Concurrent folds
///   (several instances) never fold a task twice.
/// - Once a watermark exists, `TaskStore::purge_finished` deletes only tasks finished before
///   the watermark's `completed_at`.
/// - Rows are never deleted with tasks; only [`AnalyticsStore::prune_rollups`] removes them.
#[async_trait]
pub trait AnalyticsStore: Send + Sync + 'static {
    /// Folds the next finished tasks (see the trait rules) and returns them in fold order
    /// (empty when none is due).
    async fn fold_finished(&self, until: UnixMillis, limit: usize) -> Result<Vec<FoldedTask>>;

    /// The watermark, `None` before the first fold.
    async fn watermark(&self) -> Result<Option<Watermark>>;

    /// The rows and failure counts `query` selects, with the watermark.
    async fn rollups(&self, query: &RollupQuery) -> Result<Rollups>;

    /// Deletes rows (and failure counts) of `resolution` whose bucket started before `before`.
    /// Returns how many rows went.
    async fn prune_rollups(&self, resolution: Resolution, before: UnixMillis) -> Result<u64>;
}
