//! The [`ScheduleStore`] trait and the records it keeps: schedules (a recurring task spec and
//! its policies) and their runs (one row per fire time, the exactly-once key).
//!
//! The store keeps expressions and time zones as text: parsing them and computing fire times
//! is the runtime's job (`task_runtime::scheduler`), so this crate needs no cron or time-zone
//! dependency. What the store guarantees is the part only a database can: **a fire time of a
//! schedule is recorded at most once, in the same transaction as the task it creates**
//! ([`ScheduleStore::fire_schedule`]), so two instances, or a restart halfway, never create
//! it twice.

mod types;

use async_trait::async_trait;
use task_core::UnixMillis;

pub use types::{
    CatchUpPolicy, Fired, Firing, OverlapPolicy, RunKind, Schedule, ScheduleRun, ScheduleSpec,
    MAX_SCHEDULE_NAME_LEN,
};

use crate::Result;

/// Durable schedules. Object-safe: use it as `Arc<dyn ScheduleStore>`.
///
/// Rules every implementation keeps (the schedule cases of the conformance suite check them):
/// - A new schedule has `version` 1 and `fired_through` = its creation time: times before it
///   are never due.
/// - Every update bumps `version` by one and moves `fired_through` to at least now, so an
///   edit or a resume never fires times from before it.
/// - [`ScheduleStore::fire_schedule`] records a non-manual `(schedule, scheduled_at)` once; a
///   second attempt (from any instance, at any time) writes nothing and answers
///   [`Fired::AlreadyFired`]. The run row, the task and the `fired_through` move commit
///   together or not at all.
#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    /// Stores a new schedule owned by `user_id`.
    async fn create_schedule(&self, user_id: &str, spec: ScheduleSpec) -> Result<Schedule>;

    /// One schedule by id; [`crate::StoreError::NotFound`] when there is none.
    async fn get_schedule(&self, id: &str) -> Result<Schedule>;

    /// The schedules of `user_id` (everyone's with `None`), oldest first (ties by id).
    async fn list_schedules(&self, user_id: Option<&str>) -> Result<Vec<Schedule>>;

    /// Replaces a schedule's spec (pausing and resuming are updates of `paused`).
    async fn update_schedule(&self, id: &str, spec: ScheduleSpec) -> Result<Schedule>;

    /// Deletes a schedule and its run records; the tasks it created stay.
    async fn delete_schedule(&self, id: &str) -> Result<()>;

    /// Records one firing and, with a task, creates it, in one transaction; see
    /// [`Firing`] and the trait's rules.
    async fn fire_schedule(&self, firing: Firing) -> Result<Fired>;

    /// The newest `limit` runs of a schedule (by `scheduled_at`), each with its task's current
    /// status (`None` once the task was deleted).
    async fn schedule_runs(&self, id: &str, limit: usize) -> Result<Vec<ScheduleRun>>;

    /// As [`ScheduleStore::schedule_runs`], counting only runs that created a task: the
    /// overlap policy looks for unfinished tasks there, and a long task's many skipped runs
    /// must not push its own run out of sight.
    async fn schedule_task_runs(&self, id: &str, limit: usize) -> Result<Vec<ScheduleRun>>;

    /// Deletes at most `limit` run records whose `scheduled_at` is before `before` and whose
    /// task is finished or gone (a skipped run has none); returns how many. A run whose task is
    /// still `waiting`, `pending` or `processing` is kept however old it is: the overlap policy
    /// reads the unfinished tasks of a schedule's recent runs. `fired_through`, not the run
    /// rows, keeps a purged time from firing again. A `limit` of 0 deletes nothing.
    async fn purge_schedule_runs(&self, before: UnixMillis, limit: usize) -> Result<usize>;
}
