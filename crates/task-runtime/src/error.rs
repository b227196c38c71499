//! The errors of task-runtime: [`RuntimeError`] for starting the runtime, [`HandlerError`] for
//! what a handler returns, [`ProgressError`] for a refused progress report, and
//! [`ScheduleError`] for schedule operations (what an HTTP edge maps to 400 or 404).
//!
//! The brief fixes three types because they sit on three different sides of the API: the
//! embedding program sees `RuntimeError`, handlers return `HandlerError`, and handlers receive
//! `ProgressError`. The runtime decides what to do with a task by matching on their variants,
//! never on message text.

use std::time::Duration;

use task_core::CoreError;
use task_store::StoreError;

/// Why the runtime could not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A configuration value is out of range or contradicts another one.
    #[error("invalid runtime config: {field} {reason}")]
    InvalidConfig {
        /// The field's path, e.g. `heartbeat_interval` or `cleaner.batch_size`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry holds no handler, so the worker would never claim anything.
    #[error("no task handlers registered")]
    NoHandlers,
    /// A registered task type is not a valid task type name.
    #[error("invalid task type {name:?}: {reason}")]
    InvalidTaskType {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same task type was registered twice.
    #[error("task type {0:?} registered twice")]
    DuplicateTaskType(String),
    /// `Runtime::start` was called outside a tokio runtime.
    #[error("Runtime::start must be called from within a tokio runtime")]
    NoAsyncRuntime,
}

impl RuntimeError {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RuntimeError::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Why a schedule operation ([`crate::Schedules`]) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A field of the schedule is unusable: the expression or zone does not parse (the
    /// parsing crate's message), an interval is under the minimum, the task type is unknown.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field as the API spells it: `expression`, `timezone`, `task_type`, …
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store refused or failed (`NotFound` for an unknown schedule, `Invalid` for a field
    /// the store checks).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ScheduleError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ScheduleError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// How a handler's attempt ended without a result. The runtime retries, fails or cancels the
/// task by the variant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// A passing problem (rate limit, network, a provider hiccup): run again, after `after` or
    /// after the task type's backoff, while attempts are left.
    #[error("{message}")]
    Retryable {
        /// Why; stored as the task's `error`.
        message: String,
        /// Wait this long before the next attempt instead of the backoff (e.g. a provider's
        /// `Retry-After`).
        after: Option<Duration>,
    },
    /// A problem that another attempt cannot fix (bad input, a missing API key): fail now.
    #[error("{message}")]
    Permanent {
        /// Why; stored as the task's `error`.
        message: String,
    },
    /// The handler stopped because its context was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// An upstream asked to wait (a provider's 429 or 503 with `Retry-After`): the task is held
    /// back for `after` without using an attempt, its description saying
    /// "waiting for `<waiting_for>` (rate limited until HH:MM:SS)" (UTC).
    #[error("waiting for {waiting_for} for {after:?}")]
    Postponed {
        /// What the task waits for, e.g. `provider openai`.
        waiting_for: String,
        /// How long.
        after: Duration,
    },
}

impl HandlerError {
    /// A retryable error that waits for the task type's backoff.
    pub fn retryable(message: impl Into<String>) -> Self {
        HandlerError::Retryable {
            message: message.into(),
            after: None,
        }
    }

    /// A retryable error that waits exactly `after` before the next attempt.
    pub fn retry_after(message: impl Into<String>, after: Duration) -> Self {
        HandlerError::Retryable {
            message: message.into(),
            after: Some(after),
        }
    }

    /// An error that holds the task back for `after` without using an attempt.
    pub fn postponed(waiting_for: impl Into<String>, after: Duration) -> Self {
        HandlerError::Postponed {
            waiting_for: waiting_for.into(),
            after,
        }
    }

    /// An error that fails the task at once.
    pub fn permanent(message: impl Into<String>) -> Self {
        HandlerError::Permanent {
            message: message.into(),
        }
    }
}

/// Why a progress report was not recorded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProgressError {
    /// This worker no longer holds the task (its lease expired and another worker took it, or
    /// the attempt already ended). Nothing was written; the handler should stop.
    #[error("lease lost")]
    LeaseLost,
    /// The task was asked to stop (a cancel request, a timeout or shutdown). Nothing was
    /// written; the handler should return [`HandlerError::Cancelled`].
    #[error("task cancelled")]
    Cancelled,
    /// The progress broke a rule (out of `0..=total`, or lower than before).
    #[error(transparent)]
    Invalid(CoreError),
    /// The store failed; the report may be retried.
    #[error(transparent)]
    Store(StoreError),
}

impl From<ProgressError> for HandlerError {
    /// Lets handlers use `?` on progress reports: a lost lease or a cancel stops the attempt, a
    /// rule violation is a bug that another attempt repeats, and a store failure may pass.
    fn from(error: ProgressError) -> Self {
        match error {
            ProgressError::LeaseLost | ProgressError::Cancelled => HandlerError::Cancelled,
            ProgressError::Invalid(core) => HandlerError::permanent(core.to_string()),
            ProgressError::Store(store) => HandlerError::retryable(store.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: ProgressError, expected: HandlerError) {
        assert_eq!(HandlerError::from(error), expected);
    }

    #[test]
    fn progress_errors_map_to_handler_errors() {
        check(ProgressError::LeaseLost, HandlerError::Cancelled);
        check(ProgressError::Cancelled, HandlerError::Cancelled);
        check(
            ProgressError::Invalid(CoreError::ProgressRegressed {
                current: 5,
                requested: 1,
            }),
            HandlerError::permanent(
                "progress may not go backwards within an attempt (from 5 to 1)",
            ),
        );
        check(
            ProgressError::Store(StoreError::Busy),
            HandlerError::retryable("database busy"),
        );
    }

    #[test]
    fn constructors_fill_the_variants() {
        assert_eq!(
            HandlerError::retry_after("slow down", Duration::from_secs(3)),
            HandlerError::Retryable {
                message: "slow down".into(),
                after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(HandlerError::permanent("no").to_string(), "no");
    }
}
