//! The cleaner: a periodic sweep that deletes finished tasks older than the retention period,
//! in small batches so it never holds the database's write lock for long.

use std::sync::Arc;
use std::time::Duration;

use task_store::TaskStore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::{before, now_millis};
use crate::config::{check_batch_size, check_interval, check_positive};
use crate::ticks::Ticks;
use crate::RuntimeError;

/// How often the cleaner sweeps unless configured otherwise.
pub const DEFAULT_CLEAN_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// How long finished tasks are kept unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How many tasks one delete transaction removes unless configured otherwise.
pub const DEFAULT_CLEAN_BATCH_SIZE: usize = 500;

/// The cleaner's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerConfig {
    /// Time between sweeps; the first runs one interval after start. Defaults to 10 min.
    pub interval: Duration,
    /// Completed, failed and cancelled tasks whose `completed_at` is older than this are
    /// deleted. Defaults to 7 days.
    pub retention: Duration,
    /// Tasks deleted per transaction. Defaults to 500.
    pub batch_size: usize,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_CLEAN_INTERVAL,
            retention: DEFAULT_RETENTION,
            batch_size: DEFAULT_CLEAN_BATCH_SIZE,
        }
    }
}

impl CleanerConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] for a zero interval, retention or batch size, or an
    /// interval over 365 days.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        check_positive("cleaner.interval", self.interval)?;
        check_positive("cleaner.retention", self.retention)?;
        check_interval("cleaner.interval", self.interval)?;
        check_batch_size("cleaner.batch_size", self.batch_size)
    }
}

/// Sweeps every `config.interval` until `stop` fires.
pub(crate) async fn run(store: Arc<dyn TaskStore>, config: CleanerConfig, stop: CancellationToken) {
    let mut ticks = Ticks::every_after_one(config.interval, stop);
    while ticks.tick().await {
        let cutoff = before(now_millis(), config.retention);
        let mut purged = 0;
        loop {
            let started = Instant::now();
            let purge = store.purge_finished(cutoff, config.batch_size);
            let Some(deleted) = ticks.unless_stopped(purge).await else {
                return;
            };
            let count = match deleted {
                Ok(count) => count,
                Err(error) => {
                    tracing::warn!(%error, "cleaner batch failed; retrying next sweep");
                    break;
                }
            };
            purged += count;
            if count < config.batch_size {
                break;
            }
            // Resting as long as the batch took keeps the cleaner to at most half of the
            // database's write time, so request handlers and workers are never queued behind
            // a long purge.
            let rest = tokio::time::sleep(started.elapsed());
            if ticks.unless_stopped(rest).await.is_none() {
                return;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "cleaner deleted finished tasks past retention");
        }
    }
}
