//! [`AnalyticsStore`] for [`MemoryStore`]: rollups in maps beside the tasks, folded under the
//! same lock as every task change, so a fold sees a consistent set of finished tasks.

use std::collections::BTreeMap;

use async_trait::async_trait;
use task_core::UnixMillis;

use super::MemoryStore;
use crate::analytics::{
    AnalyticsStore, Deltas, FailureRow, FoldedTask, Resolution, RollupKey, RollupQuery, RollupRow,
    RollupValues, Rollups as Answer, Watermark,
};
use crate::Result;

/// The rollup state kept in [`super::State`].
#[derive(Debug, Default)]
pub(super) struct Rollups {
    rows: BTreeMap<RollupKey, RollupValues>,
    failures: BTreeMap<(RollupKey, String), i64>,
    watermark: Option<Watermark>,
}

impl Rollups {
    /// `before`, lowered so that no task the watermark has not passed is purged.
    pub(super) fn purge_horizon(&self, before: UnixMillis) -> UnixMillis {
        match &self.watermark {
            Some(mark) => before.min(mark.completed_at),
            None => before,
        }
    }
}

#[async_trait]
impl AnalyticsStore for MemoryStore {
    async fn fold_finished(&self, until: UnixMillis, limit: usize) -> Result<Vec<FoldedTask>> {
        let mut state = self.state();
        let mark = state
            .analytics
            .watermark
            .clone()
            .unwrap_or_else(Watermark::start);
        let mut due: Vec<FoldedTask> = state
            .tasks
            .values()
            .filter_map(|stored| FoldedTask::of(&stored.task))
            .filter(|t| t.completed_at <= until && mark.is_before(t.completed_at, t.id.as_str()))
            .collect();
        due.sort_by(|a, b| (a.completed_at, a.id.as_str()).cmp(&(b.completed_at, b.id.as_str())));
        due.truncate(limit);
        let deltas = Deltas::of(&due);
        let analytics = &mut state.analytics;
        for (key, values) in deltas.rows {
            analytics.rows.entry(key).or_default().merge(&values);
        }
        for (key, count) in deltas.failures {
            *analytics.failures.entry(key).or_default() += count;
        }
        analytics.watermark = Some(mark.advanced(&due));
        Ok(due)
    }

    async fn watermark(&self) -> Result<Option<Watermark>> {
        Ok(self.state().analytics.watermark.clone())
    }

    async fn rollups(&self, query: &RollupQuery) -> Result<Answer> {
        let state = self.state();
        let analytics = &state.analytics;
        Ok(Answer {
            rows: analytics
                .rows
                .iter()
                .filter(|(key, _)| query.matches(key))
                .map(|(key, values)| RollupRow {
                    key: key.clone(),
                    counts: values.counts,
                    wait: values.wait.encode(),
                    run: values.run.encode(),
                })
                .collect(),
            failures: analytics
                .failures
                .iter()
                .filter(|((key, _), _)| query.matches(key))
                .map(|((key, reason), count)| FailureRow {
                    key: key.clone(),
                    reason: reason.clone(),
                    count: *count,
                })
                .collect(),
            watermark: analytics.watermark.clone(),
        })
    }

    async fn prune_rollups(&self, resolution: Resolution, before: UnixMillis) -> Result<u64> {
        let mut state = self.state();
        let analytics = &mut state.analytics;
        let old = |key: &RollupKey| key.resolution == resolution && key.bucket_start < before;
        let rows = analytics.rows.len();
        analytics.rows.retain(|key, _| !old(key));
        analytics.failures.retain(|(key, _), _| !old(key));
        Ok((rows - analytics.rows.len()) as u64)
    }
}
