//! The records of [`super::ScheduleStore`]: what a user defines ([`ScheduleSpec`]), what is
//! stored ([`Schedule`]), one fire time's record ([`ScheduleRun`]) and a firing request
//! ([`Firing`]).

use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use task_core::{CoreError, NewTask, Task, TaskId, TaskStatus, UnixMillis};

/// The longest schedule name, in characters.
pub const MAX_SCHEDULE_NAME_LEN: usize = 200;

/// What a schedule does when a fire time comes while a task it created earlier is unfinished
/// (`pending` or `processing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OverlapPolicy {
    /// Do not fire; the time is recorded as a skipped run. The default.
    #[default]
    Skip,
    /// Fire anyway; runs may overlap.
    Allow,
    /// Ask the unfinished tasks to stop, then fire.
    CancelPrevious,
}

/// What a schedule does with fire times that passed while no scheduler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CatchUpPolicy {
    /// Fire once, for the most recent missed time. The default.
    #[default]
    Latest,
    /// Fire none of them; wait for the next time.
    None,
}

/// How a fire time was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// The scheduler fired it and created a task.
    Scheduled,
    /// The scheduler passed it by (the overlap policy said skip); no task.
    Skipped,
    /// Someone asked for a run now ("run now"); keyed by the time of the request and exempt
    /// from the once-per-time rule.
    Manual,
}

macro_rules! text_enum {
    ($type:ident, $what:literal, $($variant:ident => $text:literal),+ $(,)?) => {
        impl $type {
            /// The stable name used in the database and the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($type::$variant => $text),+
                }
            }
        }

        impl FromStr for $type {
            type Err = CoreError;

            fn from_str(text: &str) -> Result<Self, CoreError> {
                match text {
                    $($text => Ok($type::$variant),)+
                    other => Err(CoreError::InvalidField {
                        field: $what,
                        reason: format!(
                            "{other:?} is not one of {}",
                            [$($text),+].join(", ")
                        ),
                    }),
                }
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(OverlapPolicy, "overlap", Skip => "skip", Allow => "allow", CancelPrevious => "cancel-previous");
text_enum!(CatchUpPolicy, "catch_up", Latest => "latest", None => "none");
text_enum!(RunKind, "kind", Scheduled => "scheduled", Skipped => "skipped", Manual => "manual");

/// What a user defines: when (expression, zone, end), what (the task), and the policies.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    /// A name for people, 1 to 200 characters.
    pub name: String,
    /// A cron expression (5 fields, an optional leading seconds field, or a shortcut such as
    /// `@daily`) or an interval (`every 15m`); the runtime parses it.
    pub expression: String,
    /// The IANA time zone cron fields are read in, e.g. `Europe/Stockholm`.
    pub timezone: String,
    /// The type of the tasks it creates.
    pub task_type: String,
    /// The params of the tasks it creates.
    pub params: Value,
    /// The label of the tasks it creates.
    pub label: Option<String>,
    /// See [`OverlapPolicy`].
    pub overlap: OverlapPolicy,
    /// See [`CatchUpPolicy`].
    pub catch_up: CatchUpPolicy,
    /// A paused schedule fires nothing (a manual run still works).
    pub paused: bool,
    /// No time after this one fires.
    pub end_at: Option<UnixMillis>,
}

impl ScheduleSpec {
    /// A spec with the defaults: UTC, empty params, no label, skip, latest, active, no end.
    pub fn new(
        name: impl Into<String>,
        expression: impl Into<String>,
        task_type: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            expression: expression.into(),
            timezone: "UTC".to_owned(),
            task_type: task_type.into(),
            params: Value::Object(Default::default()),
            label: None,
            overlap: OverlapPolicy::default(),
            catch_up: CatchUpPolicy::default(),
            paused: false,
            end_at: None,
        }
    }

    /// The new task a firing of this schedule owned by `user_id` creates.
    pub fn new_task(&self, user_id: &str) -> NewTask {
        let task = NewTask::new(user_id, self.task_type.clone()).with_params(self.params.clone());
        match &self.label {
            Some(label) => task.with_label(label.clone()),
            None => task,
        }
    }

    /// Checks what the store can check without parsing the expression: the name, that the
    /// expression and zone are present, and the task fields (as a new task would be checked).
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] naming the first bad field.
    pub fn validate(&self, user_id: &str) -> Result<(), CoreError> {
        let invalid = |field, reason: &str| {
            Err(CoreError::InvalidField {
                field,
                reason: reason.to_owned(),
            })
        };
        let name_len = self.name.trim().chars().count();
        if name_len == 0 || self.name.chars().count() > MAX_SCHEDULE_NAME_LEN {
            return invalid("name", "must be 1 to 200 characters");
        }
        if self.expression.trim().is_empty() {
            return invalid("expression", "must not be empty");
        }
        if self.timezone.trim().is_empty() {
            return invalid("timezone", "must not be empty");
        }
        if !self.params.is_object() {
            return invalid("params", "must be a JSON object");
        }
        if self.end_at.is_some_and(|t| t < 0) {
            return invalid("end_at", "must be a unix time in milliseconds");
        }
        self.new_task(user_id).validate()
    }
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// `sched_<unix-ms>_<random hex>`.
    pub id: String,
    /// The owner; the tasks it creates are theirs.
    pub user_id: String,
    /// What the owner defined.
    pub spec: ScheduleSpec,
    /// Every fire time up to and including this one has been handled (fired, skipped or passed
    /// by the catch-up policy). Only moves forward.
    pub fired_through: UnixMillis,
    /// Starts at 1; every update adds one.
    pub version: i64,
    /// Unix milliseconds.
    pub created_at: UnixMillis,
    /// Unix milliseconds of the last update.
    pub updated_at: UnixMillis,
}

/// One handled fire time of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRun {
    /// The schedule.
    pub schedule_id: String,
    /// The fire time (for a manual run, the time it was asked for).
    pub scheduled_at: UnixMillis,
    /// How it was handled.
    pub kind: RunKind,
    /// The task it created, if any.
    pub task_id: Option<TaskId>,
    /// That task's status now; `None` without a task or once the task was deleted.
    pub task_status: Option<TaskStatus>,
    /// When the run was recorded.
    pub recorded_at: UnixMillis,
}

/// A request to record one fire time of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// The schedule.
    pub schedule_id: String,
    /// The fire time: the exactly-once key, with the schedule id.
    pub scheduled_at: UnixMillis,
    /// `Scheduled` and `Manual` need a task, `Skipped` must have none.
    pub kind: RunKind,
    /// The task to create; its owner must be the schedule's.
    pub task: Option<NewTask>,
}

impl Firing {
    /// Checks the firing against its schedule: the kind matches the presence of a task, and the
    /// task belongs to the schedule's owner.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] naming what is wrong.
    pub fn check(&self, schedule: &Schedule) -> Result<(), CoreError> {
        let invalid = |reason: &str| {
            Err(CoreError::InvalidField {
                field: "task",
                reason: reason.to_owned(),
            })
        };
        match (&self.task, self.kind) {
            (None, RunKind::Scheduled | RunKind::Manual) => {
                invalid("a scheduled or manual run creates a task")
            }
            (Some(_), RunKind::Skipped) => invalid("a skipped run creates no task"),
            (Some(task), _) if task.user_id != schedule.user_id => {
                invalid("must belong to the schedule's owner")
            }
            _ => Ok(()),
        }
    }

    /// The schedule's `fired_through` after this firing: manual runs leave it alone.
    pub fn fired_through_after(&self, current: UnixMillis) -> UnixMillis {
        match self.kind {
            RunKind::Manual => current,
            RunKind::Scheduled | RunKind::Skipped => current.max(self.scheduled_at),
        }
    }
}

/// What [`super::ScheduleStore::fire_schedule`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Fired {
    /// The run was recorded and this task created (boxed: a task is large, the other
    /// outcomes are empty).
    Created(Box<Task>),
    /// The run was recorded as skipped.
    Recorded,
    /// This fire time was already recorded (by this or another instance); nothing was written.
    AlreadyFired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for policy in [
            OverlapPolicy::Skip,
            OverlapPolicy::Allow,
            OverlapPolicy::CancelPrevious,
        ] {
            assert_eq!(policy.as_str().parse::<OverlapPolicy>(), Ok(policy));
        }
        for policy in [CatchUpPolicy::Latest, CatchUpPolicy::None] {
            assert_eq!(policy.as_str().parse::<CatchUpPolicy>(), Ok(policy));
        }
        for kind in [RunKind::Scheduled, RunKind::Skipped, RunKind::Manual] {
            assert_eq!(kind.as_str().parse::<RunKind>(), Ok(kind));
        }
        assert_eq!(
            "sometimes"
                .parse::<OverlapPolicy>()
                .unwrap_err()
                .to_string(),
            "invalid overlap: \"sometimes\" is not one of skip, allow, cancel-previous"
        );
    }

    #[test]
    fn specs_are_checked_field_by_field() {
        let check = |change: fn(&mut ScheduleSpec), field: &str| {
            let mut spec = ScheduleSpec::new("nightly", "0 6 * * *", "quiz");
            change(&mut spec);
            match spec.validate("ada") {
                Err(CoreError::InvalidField { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        };
        assert_eq!(
            ScheduleSpec::new("nightly", "0 6 * * *", "quiz").validate("ada"),
            Ok(())
        );
        check(|s| s.name = " ".into(), "name");
        check(|s| s.name = "x".repeat(201), "name");
        check(|s| s.expression = String::new(), "expression");
        check(|s| s.timezone = String::new(), "timezone");
        check(|s| s.params = Value::Null, "params");
        check(|s| s.task_type = "Bad Type".into(), "task_type");
        check(|s| s.label = Some("x".repeat(201)), "label");
        check(|s| s.end_at = Some(-1), "end_at");
    }
}
