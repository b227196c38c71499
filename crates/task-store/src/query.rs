//! The argument and result types of [`crate::TaskStore`] operations.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use task_core::{CoreError, Task, TaskId, TaskStatus, UnixMillis};

/// Tasks per page unless the caller asks for another number.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// The most tasks one page may hold.
pub const MAX_LIST_LIMIT: usize = 1000;

/// Filters and paging for [`crate::TaskStore::list`]. Results are newest first (by
/// `created_at`, then `id`, both descending).
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Only this owner's tasks.
    pub user_id: Option<String>,
    /// Only tasks in one of these statuses; empty means any.
    pub statuses: Vec<TaskStatus>,
    /// Only tasks of this type.
    pub task_type: Option<String>,
    /// Case-insensitive substring match over `label` and `description`.
    pub search: Option<String>,
    /// Only tasks created at or after this time.
    pub created_from: Option<UnixMillis>,
    /// Only tasks created before this time.
    pub created_before: Option<UnixMillis>,
    /// Continue after this position (from a previous page's `next`).
    pub after: Option<Cursor>,
    /// Page size, 1..=[`MAX_LIST_LIMIT`]; defaults to [`DEFAULT_LIST_LIMIT`].
    pub limit: usize,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            user_id: None,
            statuses: Vec::new(),
            task_type: None,
            search: None,
            created_from: None,
            created_before: None,
            after: None,
            limit: DEFAULT_LIST_LIMIT,
        }
    }
}

impl ListQuery {
    /// Checks the limit.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] for `limit` outside 1..=1000.
    pub fn validate(&self) -> Result<(), CoreError> {
        if (1..=MAX_LIST_LIMIT).contains(&self.limit) {
            Ok(())
        } else {
            Err(CoreError::InvalidField {
                field: "limit",
                reason: format!("must be between 1 and {MAX_LIST_LIMIT}"),
            })
        }
    }
}

/// A keyset position: the `(created_at, id)` of the last task of a page. Its text form
/// (`<created_at>.<id>`) is opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `created_at` of the last task seen.
    pub created_at: UnixMillis,
    /// `id` of the last task seen.
    pub id: TaskId,
}

impl Cursor {
    /// The position just after `task`.
    pub fn after(task: &Task) -> Self {
        Self {
            created_at: task.created_at,
            id: task.id.clone(),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at, self.id)
    }
}

impl FromStr for Cursor {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || CoreError::InvalidField {
            field: "cursor",
            reason: "is not a cursor returned by this API".to_owned(),
        };
        let (created_at, id) = s.split_once('.').ok_or_else(invalid)?;
        Ok(Self {
            created_at: created_at.parse().map_err(|_| invalid())?,
            id: id.parse().map_err(|_| invalid())?,
        })
    }
}

/// One page of [`crate::TaskStore::list`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPage {
    /// Newest first.
    pub tasks: Vec<Task>,
    /// Where the next page starts, when there may be one.
    pub next: Option<Cursor>,
}

/// What a worker asks for in [`crate::TaskStore::claim`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    /// The claiming worker's id, stored as `lease_owner`.
    pub worker_id: String,
    /// At most this many tasks; more than [`crate::MAX_CLAIM_LIMIT`] is refused as invalid.
    pub limit: usize,
    /// Only these task types (the ones the worker has handlers for); empty means any.
    pub task_types: Vec<String>,
    /// The lease lasts until `now + lease_for`.
    pub lease_for: Duration,
    /// Per-user fairness: a user with this many `processing` tasks gets no more until one
    /// finishes, and claims round-robin across users (each user's oldest due task first).
    /// `None` turns fairness off (oldest due task first, regardless of owner).
    pub max_running_per_user: Option<u32>,
    /// The current time: tasks with `run_at <= now` are due.
    pub now: UnixMillis,
}

/// A worker's proof that it holds a task: the fencing token from the claim. Every write on the
/// worker's behalf carries it; a write with a token that is no longer current changes nothing
/// and fails with [`crate::StoreError::LeaseLost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The claimed task.
    pub task_id: TaskId,
    /// The fencing token.
    pub token: String,
}

impl Lease {
    /// The lease a claimed task carries, or `None` when `task` holds none.
    pub fn of(task: &Task) -> Option<Self> {
        task.lease_token.as_ref().map(|token| Self {
            task_id: task.id.clone(),
            token: token.clone(),
        })
    }
}

/// How an attempt failed, for [`crate::TaskStore::fail`].
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Why; stored in `error`.
    pub error: String,
    /// When the error is retryable: run again at this time. Ignored once the task has used all
    /// its attempts, so the task fails instead.
    pub retry_at: Option<UnixMillis>,
    /// The description to show while waiting to retry (e.g. "Retrying in 4s (attempt 2/3)").
    pub retry_description: Option<String>,
}

impl Failure {
    /// A failure that must not be retried.
    pub fn permanent(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            retry_at: None,
            retry_description: None,
        }
    }
}

/// One row of [`crate::TaskStore::counts`]: how many tasks of a type are in a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    /// The task type.
    pub task_type: String,
    /// The status.
    pub status: TaskStatus,
    /// How many.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_junk() {
        let cursor = Cursor {
            created_at: 17,
            id: "task_17_abcdef".parse().unwrap(),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>().unwrap(), cursor);
        for junk in ["", "17", "x.task_17_abcdef", "17.nope", "17-task_17_abcdef"] {
            assert!(junk.parse::<Cursor>().is_err(), "{junk:?}");
        }
    }

    #[test]
    fn list_limit_is_bounded() {
        let mut query = ListQuery::default();
        assert_eq!(query.limit, 100);
        assert!(query.validate().is_ok());
        query.limit = 1000;
        assert!(query.validate().is_ok());
        query.limit = 1001;
        assert!(query.validate().is_err());
        query.limit = 0;
        assert!(query.validate().is_err());
    }
}
