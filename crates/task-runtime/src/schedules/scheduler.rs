//! The scheduler: a component that fires every due schedule and then sleeps until the next
//! fire time of any schedule, or until an edit wakes it. It never busy-polls; the longest it
//! sleeps is `max_sleep`, which bounds how late it notices edits made by *other* instances
//! (edits through this process's [`Schedules`] wake it at once).
//!
//! Several instances may run it against one database: each computes the same fire times,
//! and the store's unique key per (schedule, fire time) lets exactly one of them create the
//! task; the others' attempts write nothing. There is no leader to elect or lose.

use std::time::Duration;

use task_core::{TaskStatus, UnixMillis};
use task_store::{Fired, Firing, RunKind, Schedule, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::plan::{overlap_action, plan, OverlapAction};
use super::{Cadence, RunCleanerConfig, Schedules};
use crate::clock::after;
use crate::config::check_not_too_long;
use crate::RuntimeError;

/// The longest the scheduler sleeps unless configured otherwise.
pub const DEFAULT_SCHEDULER_MAX_SLEEP: Duration = Duration::from_secs(30);
/// How late a fire time may be handled and still count as on time unless configured otherwise.
pub const DEFAULT_SCHEDULER_ON_TIME: Duration = Duration::from_secs(60);
/// How soon the scheduler tries again after a store error.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);
/// How many recent runs that created a task the overlap policy looks at for unfinished tasks
/// (skipped runs do not count, however many a long task caused). The run cleaner never
/// deletes a run whose task is unfinished, so these are never lost to it.
const OVERLAP_LOOKBACK: usize = 20;

/// The scheduler's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// The longest sleep between passes, however far the next fire time is: the bound on how
    /// late an edit made by another instance is noticed. Defaults to 30 s.
    pub max_sleep: Duration,
    /// Every due fire time at most this old is on time and fires, in order, under either
    /// catch-up policy; older ones are missed (downtime), of which only catch-up `latest` fires
    /// the most recent. Defaults to 60 s.
    pub on_time: Duration,
    /// The sweep that deletes old run records ([`Schedules::start_run_cleaner`]). Defaults to
    /// [`RunCleanerConfig::default`] (every 10 min, 7 days retention, 500 per batch).
    pub run_cleaner: RunCleanerConfig,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            max_sleep: DEFAULT_SCHEDULER_MAX_SLEEP,
            on_time: DEFAULT_SCHEDULER_ON_TIME,
            run_cleaner: RunCleanerConfig::default(),
        }
    }
}

impl SchedulerConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] for a zero `max_sleep` or `on_time`, or one over 365 days,
    /// or a bad `run_cleaner`.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        for (field, value) in [
            ("scheduler.max_sleep", self.max_sleep),
            ("scheduler.on_time", self.on_time),
        ] {
            if value.is_zero() {
                return Err(RuntimeError::config(field, "must be longer than zero"));
            }
            check_not_too_long(field, value)?;
        }
        self.run_cleaner.validate()
    }
}

impl Schedules {
    /// Handles everything due at the clock's now: fires due times in order (applying the
    /// overlap policy), passes by missed ones (catch-up `none`). Returns the earliest time anything is
    /// due next. A schedule whose store write failed is retried one second later; one whose
    /// expression no longer parses is logged and left alone.
    ///
    /// # Errors
    /// The store's error when the schedules cannot be listed.
    pub async fn tick(&self) -> Result<Option<UnixMillis>, StoreError> {
        let now = self.now();
        let mut earliest: Option<UnixMillis> = None;
        let mut wake_at = |at: UnixMillis| {
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        };
        for schedule in self.store().list_schedules(None).await? {
            let cadence = match Cadence::parse(
                &schedule.spec.expression,
                &schedule.spec.timezone,
                schedule.created_at,
            ) {
                Ok(cadence) => cadence,
                Err(error) => {
                    tracing::warn!(schedule = %schedule.id, %error, "schedule cannot be evaluated");
                    continue;
                }
            };
            let plan = plan(&schedule, &cadence, now, self.config().on_time);
            let handled = self.handle(&schedule, &plan.fire, plan.pass_through).await;
            if let Err(error) = handled {
                tracing::warn!(schedule = %schedule.id, %error, "schedule firing failed; retrying");
                wake_at(after(now, RETRY_AFTER_ERROR));
            }
            if let Some(next) = plan.next {
                wake_at(next);
            }
        }
        Ok(earliest)
    }

    async fn handle(
        &self,
        schedule: &Schedule,
        fire: &[UnixMillis],
        pass_through: Option<UnixMillis>,
    ) -> Result<(), StoreError> {
        if let Some(at) = pass_through {
            self.record(schedule, at, RunKind::Skipped).await?;
        }
        for &at in fire {
            self.fire(schedule, at).await?;
        }
        Ok(())
    }

    /// Fires one due time, applying the overlap policy.
    async fn fire(&self, schedule: &Schedule, at: UnixMillis) -> Result<(), StoreError> {
        let unfinished = self
            .store()
            .schedule_task_runs(&schedule.id, OVERLAP_LOOKBACK)
            .await?
            .into_iter()
            .filter(|run| {
                matches!(
                    run.task_status,
                    Some(TaskStatus::Pending | TaskStatus::Processing)
                )
            })
            .filter_map(|run| run.task_id)
            .collect();
        match overlap_action(schedule.spec.overlap, unfinished) {
            OverlapAction::Fire => self.record(schedule, at, RunKind::Scheduled).await,
            OverlapAction::Skip => self.record(schedule, at, RunKind::Skipped).await,
            OverlapAction::CancelThenFire(previous) => {
                for id in previous {
                    match self.tasks().request_cancel(&id).await {
                        // It may have finished meanwhile or been deleted: nothing to stop.
                        Ok(_)
                        | Err(StoreError::IllegalTransition { .. } | StoreError::NotFound) => {}
                        Err(error) => return Err(error),
                    }
                }
                self.record(schedule, at, RunKind::Scheduled).await
            }
        }
    }

    async fn record(
        &self,
        schedule: &Schedule,
        at: UnixMillis,
        kind: RunKind,
    ) -> Result<(), StoreError> {
        let task = (kind != RunKind::Skipped).then(|| schedule.spec.new_task(&schedule.user_id));
        let fired = self
            .store()
            .fire_schedule(Firing {
                schedule_id: schedule.id.clone(),
                scheduled_at: at,
                kind,
                task,
            })
            .await?;
        match fired {
            Fired::Created(task) => {
                tracing::info!(schedule = %schedule.id, scheduled_at = at, task = %task.id, "schedule fired");
            }
            Fired::Recorded => {
                tracing::info!(schedule = %schedule.id, scheduled_at = at, "schedule time skipped");
            }
            // Another instance handled it first: the unique key at work.
            Fired::AlreadyFired => {}
        }
        Ok(())
    }

    /// Starts the scheduler loop on the current tokio runtime; it stops when `stop` fires.
    /// Each pass runs [`Schedules::tick`], then sleeps until the next due time (at most
    /// `max_sleep`) or until an edit through these `Schedules` wakes it.
    pub fn start(&self, stop: CancellationToken) -> JoinHandle<()> {
        let schedules = self.clone();
        tokio::spawn(async move {
            tracing::info!("scheduler started");
            loop {
                let next = match schedules.tick().await {
                    Ok(next) => next,
                    Err(error) => {
                        tracing::warn!(%error, "scheduler could not list schedules; retrying");
                        Some(after(schedules.now(), RETRY_AFTER_ERROR))
                    }
                };
                let max_sleep = schedules.config().max_sleep;
                let sleep = next.map_or(max_sleep, |at| {
                    let wait = u64::try_from(at.saturating_sub(schedules.now())).unwrap_or(0);
                    Duration::from_millis(wait).min(max_sleep)
                });
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = schedules.edited() => {}
                    _ = tokio::time::sleep(sleep) => {}
                }
            }
        })
    }
}
