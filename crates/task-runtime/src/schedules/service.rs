//! [`Schedules`]: the one way to change schedules, for embedders (in code) and the HTTP edge
//! alike. It checks what the store cannot (the expression, the zone, the task type), writes
//! through [`ScheduleStore`], and wakes the scheduler on every edit.

use std::collections::BTreeSet;
use std::sync::Arc;

use task_core::{CoreError, Task, UnixMillis};
use task_store::{
    Fired, Firing, RunKind, Schedule, ScheduleRun, ScheduleSpec, ScheduleStore, StoreError,
    TaskStore,
};
use tokio::sync::Notify;

use super::{Cadence, SchedulerConfig};
use crate::clock::now_millis;
use crate::{RuntimeError, ScheduleError};

/// Where the scheduler reads the time. Tests inject a clock they move by hand.
pub trait Clock: Send + Sync + 'static {
    /// Unix milliseconds now.
    fn now(&self) -> UnixMillis;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        now_millis()
    }
}

/// Schedules: create, edit, pause, resume, delete, run now, and the scheduler loop
/// ([`Schedules::start`]). Cloning is cheap and shares the stores and the wake-up signal.
///
/// ```no_run
/// # async fn demo(tasks: std::sync::Arc<dyn task_store::TaskStore>, store: std::sync::Arc<dyn task_store::ScheduleStore>) -> Result<(), Box<dyn std::error::Error>> {
/// use task_runtime::{Schedules, SchedulerConfig, SystemClock};
/// use task_store::ScheduleSpec;
///
/// let schedules = Schedules::new(
///     tasks,
///     store,
///     Some(vec!["generation".to_owned()]),
///     SchedulerConfig::default(),
///     std::sync::Arc::new(SystemClock),
/// )?;
/// let spec = ScheduleSpec {
///     timezone: "Europe/Stockholm".into(),
///     ..ScheduleSpec::new("daily quiz", "0 6 * * *", "generation")
/// };
/// schedules.create("admin@example.com", spec).await?;
/// let _scheduler = schedules.start(tokio_util::sync::CancellationToken::new());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Schedules {
    inner: Arc<Inner>,
}

struct Inner {
    tasks: Arc<dyn TaskStore>,
    store: Arc<dyn ScheduleStore>,
    task_types: Option<BTreeSet<String>>,
    config: SchedulerConfig,
    clock: Arc<dyn Clock>,
    edits: Notify,
}

impl std::fmt::Debug for Schedules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedules")
            .field("task_types", &self.inner.task_types)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A store error about a field becomes a schedule error naming it.
fn field_error(error: StoreError) -> ScheduleError {
    match error {
        StoreError::Invalid(CoreError::InvalidField { field, reason }) => {
            ScheduleError::invalid(field, reason)
        }
        other => ScheduleError::Store(other),
    }
}

impl Schedules {
    /// Schedules over `tasks` and `store` (normally the same backend). `task_types` are the
    /// types a schedule may create (those with a handler); `None` accepts any valid name.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] for a bad `config`.
    pub fn new(
        tasks: Arc<dyn TaskStore>,
        store: Arc<dyn ScheduleStore>,
        task_types: Option<Vec<String>>,
        config: SchedulerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RuntimeError> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                tasks,
                store,
                task_types: task_types.map(|types| types.into_iter().collect()),
                config,
                clock,
                edits: Notify::new(),
            }),
        })
    }

    pub(crate) fn now(&self) -> UnixMillis {
        self.inner.clock.now()
    }

    pub(crate) fn store(&self) -> &dyn ScheduleStore {
        self.inner.store.as_ref()
    }

    pub(crate) fn tasks(&self) -> &dyn TaskStore {
        self.inner.tasks.as_ref()
    }

    pub(crate) fn config(&self) -> &SchedulerConfig {
        &self.inner.config
    }

    /// Resolves when an edit was made since the last call (a permit is kept, so an edit during
    /// a pass is not lost).
    pub(crate) async fn edited(&self) {
        self.inner.edits.notified().await;
    }

    fn wake(&self) {
        self.inner.edits.notify_one();
    }

    /// Checks everything about `spec` for `user_id`: the store's field rules, the task type
    /// against the known ones, the expression and zone. Returns the parsed cadence.
    ///
    /// # Errors
    /// [`ScheduleError::Invalid`] naming the first bad field.
    pub fn check(&self, user_id: &str, spec: &ScheduleSpec) -> Result<Cadence, ScheduleError> {
        spec.validate(user_id)
            .map_err(|e| field_error(StoreError::from(e)))?;
        if let Some(known) = &self.inner.task_types {
            if !known.contains(&spec.task_type) {
                let known: Vec<&str> = known.iter().map(String::as_str).collect();
                return Err(ScheduleError::invalid(
                    "task_type",
                    format!(
                        "unknown task type {:?}; known types: {}",
                        spec.task_type,
                        known.join(", ")
                    ),
                ));
            }
        }
        Cadence::parse(&spec.expression, &spec.timezone, self.now())
    }

    /// Creates a schedule owned by `user_id`; nothing before now is due.
    ///
    /// # Errors
    /// [`ScheduleError::Invalid`] for a bad spec; the store's errors.
    pub async fn create(
        &self,
        user_id: &str,
        spec: ScheduleSpec,
    ) -> Result<Schedule, ScheduleError> {
        self.check(user_id, &spec)?;
        let schedule = self
            .inner
            .store
            .create_schedule(user_id, spec)
            .await
            .map_err(field_error)?;
        self.wake();
        Ok(schedule)
    }

    /// One schedule.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (as [`ScheduleError::Store`]) for an unknown id.
    pub async fn get(&self, id: &str) -> Result<Schedule, ScheduleError> {
        Ok(self.inner.store.get_schedule(id).await?)
    }

    /// The schedules of `user_id`, or everyone's, oldest first.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn list(&self, user_id: Option<&str>) -> Result<Vec<Schedule>, ScheduleError> {
        Ok(self.inner.store.list_schedules(user_id).await?)
    }

    /// Replaces a schedule's spec; times before now are never fired for the new spec.
    ///
    /// # Errors
    /// As [`Schedules::create`], and `NotFound`.
    pub async fn update(&self, id: &str, spec: ScheduleSpec) -> Result<Schedule, ScheduleError> {
        let current = self.get(id).await?;
        self.check(&current.user_id, &spec)?;
        let schedule = self
            .inner
            .store
            .update_schedule(id, spec)
            .await
            .map_err(field_error)?;
        self.wake();
        Ok(schedule)
    }

    /// Pauses or resumes a schedule. A resumed schedule fires nothing from its pause.
    ///
    /// # Errors
    /// `NotFound`; the store's errors.
    pub async fn set_paused(&self, id: &str, paused: bool) -> Result<Schedule, ScheduleError> {
        let current = self.get(id).await?;
        let spec = ScheduleSpec {
            paused,
            ..current.spec
        };
        self.update(id, spec).await
    }

    /// Deletes a schedule (its tasks stay).
    ///
    /// # Errors
    /// `NotFound`; the store's errors.
    pub async fn delete(&self, id: &str) -> Result<(), ScheduleError> {
        self.inner.store.delete_schedule(id).await?;
        self.wake();
        Ok(())
    }

    /// Creates the schedule's task now (paused or not), recorded as a manual run.
    ///
    /// # Errors
    /// `NotFound`; [`StoreError::Conflict`] when a manual run was recorded in the same
    /// millisecond; the store's errors.
    pub async fn run_now(&self, id: &str) -> Result<Task, ScheduleError> {
        let schedule = self.get(id).await?;
        let fired = self
            .inner
            .store
            .fire_schedule(Firing {
                schedule_id: schedule.id.clone(),
                scheduled_at: self.now(),
                kind: RunKind::Manual,
                task: Some(schedule.spec.new_task(&schedule.user_id)),
            })
            .await
            .map_err(field_error)?;
        match fired {
            Fired::Created(task) => Ok(*task),
            Fired::Recorded | Fired::AlreadyFired => Err(ScheduleError::Store(
                StoreError::Conflict("a manual run was just recorded".to_owned()),
            )),
        }
    }

    /// The schedule's next `count` fire times from now (none while paused), or the cadence
    /// error of a schedule that no longer parses.
    ///
    /// # Errors
    /// [`ScheduleError::Invalid`] when its expression or zone does not parse.
    pub fn next_fire_times(
        &self,
        schedule: &Schedule,
        count: usize,
    ) -> Result<Vec<UnixMillis>, ScheduleError> {
        if schedule.spec.paused {
            return Ok(Vec::new());
        }
        let cadence = Cadence::parse(
            &schedule.spec.expression,
            &schedule.spec.timezone,
            schedule.created_at,
        )?;
        let from = schedule.fired_through.max(self.now());
        Ok(cadence.upcoming(from, count, schedule.spec.end_at))
    }

    /// The schedule's newest `limit` runs with their tasks' statuses.
    ///
    /// # Errors
    /// `NotFound`; the store's errors.
    pub async fn runs(&self, id: &str, limit: usize) -> Result<Vec<ScheduleRun>, ScheduleError> {
        Ok(self.inner.store.schedule_runs(id, limit).await?)
    }
}
