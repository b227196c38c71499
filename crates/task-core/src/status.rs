//! The task status state machine. The transition table lives here and only here; see
//! `docs/state-machine.md` for the diagram and who moves a task between states.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Where a task is in its life. Stored and serialised as the lowercase variant name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Waiting for parent tasks (`waiting_for` of them) to finish; never claimed, never scanned
    /// by a claim. **In:** creation with unfinished parents, a retry or re-arm while parents
    /// are unfinished. **Out:** the store, in the transaction that finishes its last parent
    /// (→ `pending`) or fails or cancels a parent over a cancel-by-default edge
    /// (→ `cancelled`); a cancel (user).
    Waiting,
    /// Waiting to run. **In:** creation (HTTP or an embedding service), a retryable failure with
    /// backoff (runtime), a release at shutdown (runtime), a rescued expired lease (rescuer), a
    /// manual retry of a failed or cancelled task (user). **Out:** a worker's claim, or a cancel.
    Pending,
    /// Claimed by a worker holding a lease. **In:** a worker's claim. **Out:** the worker
    /// (complete, fail, retry, release, acknowledged cancel), the runtime's cancel grace timer,
    /// or the rescuer once the lease expired.
    Processing,
    /// Finished with a result. **In:** the worker holding the lease. **Out:** none; only the
    /// cleaner deletes it after the retention period.
    Completed,
    /// Finished with an error. **In:** the worker (permanent error, attempts used up, timeout),
    /// or the rescuer (lease expired on the last attempt). **Out:** a manual retry, or the cleaner.
    Failed,
    /// Stopped on request. **In:** a cancel of a pending task (at once), or of a running task
    /// (when its handler stops, or when the grace period ends). **Out:** a manual retry, or the
    /// cleaner.
    Cancelled,
}

impl TaskStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Waiting,
        TaskStatus::Pending,
        TaskStatus::Processing,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// The stable name used in the database column and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Waiting => "waiting",
            TaskStatus::Pending => "pending",
            TaskStatus::Processing => "processing",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the task has finished (successfully or not). Terminal tasks end live streams.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// Whether the state machine allows a move from `self` to `to`. This table is the only
    /// place the rule is written down in code.
    pub const fn can_transition_to(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Waiting, Pending)
                | (Waiting, Cancelled)
                | (Pending, Processing)
                | (Pending, Cancelled)
                | (Processing, Completed)
                | (Processing, Failed)
                | (Processing, Cancelled)
                | (Processing, Pending)
                | (Failed, Pending)
                | (Cancelled, Pending)
                | (Failed, Waiting)
                | (Cancelled, Waiting)
        )
    }

    /// Checks a move against the table.
    ///
    /// # Errors
    /// [`CoreError::IllegalTransition`] when the table does not allow it.
    pub fn transition(self, to: TaskStatus) -> Result<TaskStatus, CoreError> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(CoreError::IllegalTransition { from: self, to })
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| CoreError::UnknownStatus(s.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    #[test]
    fn names_round_trip_and_unknown_names_fail() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(
            "PENDING".parse::<TaskStatus>(),
            Err(CoreError::UnknownStatus("PENDING".into()))
        );
        assert!("done".parse::<TaskStatus>().is_err());
    }

    #[test]
    fn transition_table_is_exactly_the_documented_one() {
        let legal = [
            (Waiting, Pending),
            (Waiting, Cancelled),
            (Failed, Waiting),
            (Cancelled, Waiting),
            (Pending, Processing),
            (Pending, Cancelled),
            (Processing, Completed),
            (Processing, Failed),
            (Processing, Cancelled),
            (Processing, Pending),
            (Failed, Pending),
            (Cancelled, Pending),
        ];
        for from in TaskStatus::ALL {
            for to in TaskStatus::ALL {
                let expected = legal.contains(&(from, to));
                assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
                match from.transition(to) {
                    Ok(next) => assert!(expected && next == to),
                    Err(err) => {
                        assert!(!expected);
                        assert_eq!(err, CoreError::IllegalTransition { from, to });
                    }
                }
            }
        }
    }

    #[test]
    fn completed_is_final() {
        for to in TaskStatus::ALL {
            assert!(!Completed.can_transition_to(to));
        }
        assert!(Completed.is_terminal() && Failed.is_terminal() && Cancelled.is_terminal());
        assert!(!Waiting.is_terminal() && !Pending.is_terminal() && !Processing.is_terminal());
    }
}
