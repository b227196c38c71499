//! The rules of schedule operations every backend shares: new and updated records, ids, and the
//! checks on a firing, so that no backend states them again.

use task_core::{TaskStatus, UnixMillis};

use crate::schedules::{Firing, Schedule, ScheduleSpec};
use crate::{Result, StoreError};

/// 64 random bits: ids are not secrets, they only must not collide.
const ID_RANDOM_BYTES: usize = 8;

/// A fresh schedule id, `sched_<unix-ms>_<16 hex digits>`.
///
/// # Errors
/// [`StoreError::Backend`] when the OS random number generator is unavailable.
pub fn new_schedule_id(now: UnixMillis) -> Result<String> {
    let mut bytes = [0u8; ID_RANDOM_BYTES];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| StoreError::Backend(format!("OS random number generator unavailable: {e}")))?;
    Ok(format!("sched_{now}_{}", hex::encode(bytes)))
}

/// A new schedule for `user_id`: version 1, nothing before `now` due.
///
/// # Errors
/// [`StoreError::Invalid`] for a bad spec.
pub fn new_schedule(user_id: &str, spec: ScheduleSpec, now: UnixMillis) -> Result<Schedule> {
    spec.validate(user_id)?;
    Ok(Schedule {
        id: new_schedule_id(now)?,
        user_id: user_id.to_owned(),
        spec,
        fired_through: now,
        version: 1,
        created_at: now,
        updated_at: now,
    })
}

/// `schedule` with a new spec: one version later, nothing before `now` due.
///
/// # Errors
/// [`StoreError::Invalid`] for a bad spec.
pub fn updated_schedule(
    schedule: &Schedule,
    spec: ScheduleSpec,
    now: UnixMillis,
) -> Result<Schedule> {
    spec.validate(&schedule.user_id)?;
    Ok(Schedule {
        spec,
        fired_through: schedule.fired_through.max(now),
        version: schedule.version + 1,
        updated_at: now,
        ..schedule.clone()
    })
}

/// Checks a firing against its schedule.
///
/// # Errors
/// [`StoreError::Invalid`] when the kind and the task disagree or the task is someone else's.
pub fn check_firing(schedule: &Schedule, firing: &Firing) -> Result<()> {
    firing.check(schedule).map_err(StoreError::from)?;
    if let Some(task) = &firing.task {
        task.validate()?;
    }
    Ok(())
}

/// Whether [`crate::ScheduleStore::purge_schedule_runs`] deletes a run fired at `scheduled_at`
/// whose task now has `task_status` (`None`: no task, or deleted): old enough, and its task
/// finished or gone. The SQL backends state the same condition in their `WHERE`.
pub fn run_is_purgeable(
    scheduled_at: UnixMillis,
    task_status: Option<TaskStatus>,
    before: UnixMillis,
) -> bool {
    scheduled_at < before && task_status.is_none_or(TaskStatus::is_terminal)
}

/// The most runs [`crate::ScheduleStore::schedule_runs`] returns at once.
pub const MAX_RUNS_LIMIT: usize = 1000;

/// Checks a runs limit.
///
/// # Errors
/// [`StoreError::Invalid`] for 0 or more than [`MAX_RUNS_LIMIT`].
pub fn check_runs_limit(limit: usize) -> Result<()> {
    if limit == 0 || limit > MAX_RUNS_LIMIT {
        return Err(StoreError::Invalid(task_core::CoreError::InvalidField {
            field: "limit",
            reason: format!("must be between 1 and {MAX_RUNS_LIMIT}"),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_never_move_the_cursor_back() {
        let spec = ScheduleSpec::new("n", "@daily", "quiz");
        let schedule = new_schedule("ada", spec.clone(), 1_000).unwrap();
        assert!(schedule.id.starts_with("sched_1000_"));
        assert_eq!(schedule.id.len(), "sched_1000_".len() + 16);
        let later = updated_schedule(&schedule, spec.clone(), 5_000).unwrap();
        assert_eq!((later.version, later.fired_through), (2, 5_000));
        let moved = Schedule {
            fired_through: 9_000,
            ..later
        };
        let again = updated_schedule(&moved, spec, 6_000).unwrap();
        assert_eq!(
            (again.version, again.fired_through, again.updated_at),
            (3, 9_000, 6_000)
        );
    }
}
