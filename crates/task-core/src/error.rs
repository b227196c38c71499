//! The one error type of task-core: every rule the model enforces fails with a variant of it.

use crate::TaskStatus;

/// A rule of the task model was broken. Each variant names the rule, so callers can map it to a
/// precise message (an HTTP 400 or 409) without parsing text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The string is not a task id of the form `task_<unix-ms>_<random>`.
    #[error("invalid task id: {0:?}")]
    InvalidTaskId(String),
    /// The string is not one of the six status names.
    #[error("unknown task status: {0:?}")]
    UnknownStatus(String),
    /// The state machine does not allow this move (see `docs/state-machine.md`).
    #[error("illegal transition from {from} to {to}")]
    IllegalTransition {
        /// The status the task is in.
        from: TaskStatus,
        /// The status that was asked for.
        to: TaskStatus,
    },
    /// Progress must satisfy `0 <= progress <= total`.
    #[error("progress {progress} is out of range 0..={total}")]
    ProgressOutOfRange {
        /// The progress that was reported.
        progress: i64,
        /// The task's total.
        total: i64,
    },
    /// Progress never goes backwards within an attempt.
    #[error("progress may not go backwards within an attempt (from {current} to {requested})")]
    ProgressRegressed {
        /// The progress the task already has.
        current: i64,
        /// The lower progress that was reported.
        requested: i64,
    },
    /// A field of a new task or an update is invalid; `field` names it for the caller.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field's name as the API spells it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A workflow's graph or one of its nodes is invalid; the text names the problem (an
    /// unknown key, a self-edge, a cycle, too many nodes).
    #[error("invalid workflow: {0}")]
    InvalidWorkflow(String),
}
