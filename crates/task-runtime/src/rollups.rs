//! The rollup loop: a maintenance component, like the cleaner, that folds finished tasks into
//! the analytics rollups ([`task_store::AnalyticsStore`]) a little behind real time, and prunes
//! minute rollups past their retention.
//!
//! Folding follows a watermark ordered by `(completed_at, id)`, so a task must be committed
//! before folding passes its `completed_at`. Commits land a few milliseconds after the
//! timestamp they carry (the clock is read before the write); folding only up to `now −
//! settle` leaves them that long, with a wide margin. A task whose commit came later than
//! `settle` after its timestamp would be missed (never counted twice); the default, 10 s, is
//! longer than any store's busy timeout.

use std::sync::Arc;
use std::time::Duration;

use task_store::analytics::{FoldedTask, Resolution};
use task_store::AnalyticsStore;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::{before, now_millis};
use crate::config::{check_batch_size, check_not_too_long, check_positive};
use crate::ticks::Ticks;
use crate::RuntimeError;

/// How often the loop folds unless configured otherwise.
pub const DEFAULT_ROLLUP_INTERVAL: Duration = Duration::from_secs(5);
/// How far behind real time folding stays unless configured otherwise.
pub const DEFAULT_ROLLUP_SETTLE: Duration = Duration::from_secs(10);
/// How many tasks one fold transaction takes unless configured otherwise.
pub const DEFAULT_ROLLUP_BATCH_SIZE: usize = 500;
/// How long minute rollups are kept unless configured otherwise.
pub const DEFAULT_MINUTE_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How often minute rollups past retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// The rollup loop's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupConfig {
    /// Time between folds; the first runs at start. Defaults to 5 s.
    pub interval: Duration,
    /// Tasks are folded once they finished this long ago, so their commits have landed.
    /// Defaults to 10 s.
    pub settle: Duration,
    /// Tasks folded per transaction. Defaults to 500.
    pub batch_size: usize,
    /// Minute rollups older than this are deleted (hour and day rollups are kept). Defaults
    /// to 7 days.
    pub minute_retention: Duration,
}

impl Default for RollupConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_ROLLUP_INTERVAL,
            settle: DEFAULT_ROLLUP_SETTLE,
            batch_size: DEFAULT_ROLLUP_BATCH_SIZE,
            minute_retention: DEFAULT_MINUTE_RETENTION,
        }
    }
}

impl RollupConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] for a zero interval or batch size, a minute retention
    /// under an hour, or a duration over 365 days.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        check_positive("rollups.interval", self.interval)?;
        check_batch_size("rollups.batch_size", self.batch_size)?;
        if self.minute_retention < Duration::from_secs(60 * 60) {
            return Err(RuntimeError::config(
                "rollups.minute_retention",
                "must be at least one hour",
            ));
        }
        check_not_too_long("rollups.interval", self.interval)?;
        check_not_too_long("rollups.settle", self.settle)?;
        check_not_too_long("rollups.minute_retention", self.minute_retention)?;
        Ok(())
    }
}

/// Told about every task the loop folded, once (for metrics: across instances sharing a
/// database, each task is folded by exactly one of them).
pub trait FoldObserver: Send + Sync + 'static {
    /// `tasks` were just folded, in fold order.
    fn folded(&self, tasks: &[FoldedTask]);
}

/// The rollup loop, ready to start.
pub struct Rollups {
    store: Arc<dyn AnalyticsStore>,
    config: RollupConfig,
    observer: Option<Arc<dyn FoldObserver>>,
}

impl std::fmt::Debug for Rollups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rollups")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Rollups {
    /// A loop folding into `store`, telling `observer` what it folded.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] for bad settings.
    pub fn new(
        store: Arc<dyn AnalyticsStore>,
        config: RollupConfig,
        observer: Option<Arc<dyn FoldObserver>>,
    ) -> Result<Self, RuntimeError> {
        config.validate()?;
        Ok(Self {
            store,
            config,
            observer,
        })
    }

    /// Folds everything due now (finished before `now − settle`), batch by batch. Returns how
    /// many tasks were folded.
    ///
    /// # Errors
    /// The store's error; what earlier batches folded stays folded.
    pub async fn fold_due(&self) -> Result<usize, task_store::StoreError> {
        let until = before(now_millis(), self.config.settle);
        let mut total = 0;
        loop {
            let folded = self
                .store
                .fold_finished(until, self.config.batch_size)
                .await?;
            total += folded.len();
            if let Some(observer) = &self.observer {
                if !folded.is_empty() {
                    observer.folded(&folded);
                }
            }
            if folded.len() < self.config.batch_size {
                return Ok(total);
            }
        }
    }

    /// Starts folding every `interval` on the current tokio runtime until `stop` fires.
    pub fn start(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = Ticks::every(self.config.interval, stop);
            let mut pruned_at: Option<Instant> = None;
            while ticks.tick().await {
                let Some(result) = ticks.unless_stopped(self.fold_due()).await else {
                    return;
                };
                match result {
                    Ok(0) => {}
                    Ok(folded) => tracing::debug!(folded, "rollups folded finished tasks"),
                    Err(error) => tracing::warn!(%error, "rollup fold failed; retrying next tick"),
                }
                if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    pruned_at = Some(Instant::now());
                    let cutoff = before(now_millis(), self.config.minute_retention);
                    match self.store.prune_rollups(Resolution::Minute, cutoff).await {
                        Ok(0) => {}
                        Ok(pruned) => {
                            tracing::info!(pruned, "pruned minute rollups past retention")
                        }
                        Err(error) => tracing::warn!(%error, "pruning minute rollups failed"),
                    }
                }
            }
        })
    }
}
