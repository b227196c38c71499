//! The one error type of task-store: database-neutral kinds, never a driver's error type.

use task_core::{CoreError, TaskStatus};

/// Why a store operation failed. Backends map their driver errors onto these kinds, so callers
/// (the runtime, the HTTP edge) decide what to do without knowing which database is behind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No task (or user, or token) with that key.
    #[error("not found")]
    NotFound,
    /// The input broke a rule of the task model (progress out of range, a bad field, a malformed
    /// id, an unknown status).
    #[error(transparent)]
    Invalid(CoreError),
    /// The state machine does not allow the change in the task's current status.
    #[error("illegal transition from {from} to {to}")]
    IllegalTransition {
        /// The status the task is in.
        from: TaskStatus,
        /// The status the operation would move it to.
        to: TaskStatus,
    },
    /// The change conflicts with what is stored (a user that already exists, deleting a running
    /// task).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller's lease is no longer current: another worker holds the task, or it was
    /// cancelled, released or rescued. Nothing was written.
    #[error("lease lost")]
    LeaseLost,
    /// The database is momentarily too busy (locked, pool exhausted); retrying may succeed.
    #[error("database busy")]
    Busy,
    /// The database cannot be reached, opened or written to (its server is down, its disk is
    /// full, its file cannot be read or written). Passes on its own when the condition clears.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database's schema is not one this build can use (for example it was created by a
    /// newer version).
    #[error("schema: {0}")]
    Schema(String),
    /// Any other backend failure; the text is for logs, not for end users.
    #[error("storage: {0}")]
    Backend(String),
}

impl From<CoreError> for StoreError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::IllegalTransition { from, to } => StoreError::IllegalTransition { from, to },
            other => StoreError::Invalid(other),
        }
    }
}
