//! The run cleaner: a periodic sweep that deletes `schedule_runs` records older than the run
//! retention, in small batches, as the task cleaner does for tasks. Runs whose task is still
//! unfinished are kept (the store's rule), because the overlap policy looks at the unfinished
//! tasks of a schedule's recent runs; a purged fire time never fires again because the
//! schedule's `fired_through` is past it.

use std::time::Duration;

use task_store::StoreError;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::Schedules;
use crate::clock::before;
use crate::config::{check_batch_size, check_interval, check_positive};
use crate::RuntimeError;

/// How often the run cleaner sweeps unless configured otherwise.
pub const DEFAULT_RUN_CLEAN_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// How long run records are kept unless configured otherwise: as long as finished tasks
/// ([`crate::DEFAULT_RETENTION`]), so a run's task is normally purged before its record.
pub const DEFAULT_RUN_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How many run records one delete removes unless configured otherwise.
pub const DEFAULT_RUN_CLEAN_BATCH_SIZE: usize = 500;

/// The run cleaner's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCleanerConfig {
    /// Time between sweeps; the first runs one interval after start. Defaults to 10 min.
    pub interval: Duration,
    /// Runs fired longer ago than this are deleted, unless their task is unfinished.
    /// Defaults to 7 days.
    pub retention: Duration,
    /// Runs deleted per statement. Defaults to 500.
    pub batch_size: usize,
}

impl Default for RunCleanerConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_RUN_CLEAN_INTERVAL,
            retention: DEFAULT_RUN_RETENTION,
            batch_size: DEFAULT_RUN_CLEAN_BATCH_SIZE,
        }
    }
}

impl RunCleanerConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] for a zero interval, retention or batch size, or an
    /// interval over 365 days.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        check_positive("scheduler.run_cleaner.interval", self.interval)?;
        check_positive("scheduler.run_cleaner.retention", self.retention)?;
        check_interval("scheduler.run_cleaner.interval", self.interval)?;
        check_batch_size("scheduler.run_cleaner.batch_size", self.batch_size)
    }
}

impl Schedules {
    /// One sweep: deletes run records past the retention (by the schedules' clock) batch after
    /// batch until a batch comes back short; returns how many. Runs of unfinished tasks stay.
    ///
    /// # Errors
    /// The store's error; what was deleted before it stays deleted.
    pub async fn purge_old_runs(&self) -> Result<usize, StoreError> {
        let config = self.config().run_cleaner;
        let cutoff = before(self.now(), config.retention);
        let mut purged = 0;
        loop {
            let started = Instant::now();
            let count = self
                .store()
                .purge_schedule_runs(cutoff, config.batch_size)
                .await?;
            purged += count;
            if count < config.batch_size {
                return Ok(purged);
            }
            // Resting as long as the batch took keeps the sweep to at most half of the
            // database's write time, as the task cleaner does.
            tokio::time::sleep(started.elapsed()).await;
        }
    }

    /// Starts the run cleaner on the current tokio runtime: [`Schedules::purge_old_runs`]
    /// every `run_cleaner.interval` until `stop` fires. Like the task cleaner, it is
    /// maintenance: one instance running it is enough, more do no harm.
    pub fn start_run_cleaner(&self, stop: CancellationToken) -> JoinHandle<()> {
        let schedules = self.clone();
        let interval = self.config().run_cleaner.interval;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let swept = tokio::select! {
                    _ = stop.cancelled() => return,
                    swept = schedules.purge_old_runs() => swept,
                };
                match swept {
                    Ok(0) => {}
                    Ok(purged) => {
                        tracing::info!(purged, "run cleaner deleted schedule runs past retention");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "run cleaner failed; retrying next sweep");
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SchedulerConfig;

    fn check(change: impl FnOnce(&mut RunCleanerConfig), bad_field: Option<&str>) {
        let mut config = SchedulerConfig::default();
        change(&mut config.run_cleaner);
        match (config.validate(), bad_field) {
            (Ok(()), None) => {}
            (Err(RuntimeError::InvalidConfig { field, .. }), Some(expected)) => {
                assert_eq!(field, expected)
            }
            (other, expected) => panic!("{other:?}, expected bad field {expected:?}"),
        }
    }

    #[test]
    fn defaults_are_documented_and_validation_names_the_field() {
        let config = RunCleanerConfig::default();
        assert_eq!(config.interval, Duration::from_secs(600));
        assert_eq!(config.retention, Duration::from_secs(7 * 86_400));
        assert_eq!(config.batch_size, 500);
        check(|_| {}, None);
        check(
            |c| c.interval = Duration::ZERO,
            Some("scheduler.run_cleaner.interval"),
        );
        check(
            |c| c.interval = Duration::MAX,
            Some("scheduler.run_cleaner.interval"),
        );
        check(
            |c| c.retention = Duration::ZERO,
            Some("scheduler.run_cleaner.retention"),
        );
        check(
            |c| c.batch_size = 0,
            Some("scheduler.run_cleaner.batch_size"),
        );
    }
}
