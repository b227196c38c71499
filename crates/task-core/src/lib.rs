//! The task model shared by every tasklane crate: ids, the status state machine, progress rules and
//! the events the live stream carries.
//!
//! **Invariant: this crate does no I/O and needs no async runtime.** The system calls it makes are
//! reading the OS random number generator for new task ids and the wall clock ([`now_millis`]).
//! Everything that decides whether a change to a task is legal lives here, so every storage
//! backend enforces the same rules.
//!
//! ```
//! use task_core::{check_progress, now_millis, NewTask, TaskId, TaskStatus};
//!
//! // A new task is checked before any store sees it.
//! let new = NewTask::new("ada@example.com", "generation").with_label("Quiz about planets");
//! assert!(new.validate().is_ok());
//! assert!(NewTask::new("ada@example.com", "").validate().is_err());
//!
//! // Ids carry their creation time.
//! let id = TaskId::generate(now_millis())?;
//! assert!(id.as_str().starts_with("task_"));
//!
//! // The one transition table: a finished task never runs again.
//! assert!(TaskStatus::Pending.can_transition_to(TaskStatus::Processing));
//! assert!(TaskStatus::Completed.transition(TaskStatus::Processing).is_err());
//!
//! // Progress only moves forward, within the task's total.
//! assert_eq!(check_progress(40, 60, 100)?, 60);
//! assert!(check_progress(60, 40, 100).is_err());
//! # Ok::<(), task_core::CoreError>(())
//! ```

#![warn(missing_docs)]

mod clock;
mod error;
mod event;
mod id;
mod new_task;
mod priority;
mod progress;
mod status;
pub mod sync;
mod task;
mod workflow;

pub use clock::now_millis;
pub use error::CoreError;
pub use event::{TaskEvent, MONITORING_TIMEOUT_MESSAGE};
pub use id::TaskId;
pub use new_task::{NewTask, DEFAULT_MAX_ATTEMPTS, MAX_DESCRIPTION_LEN, MAX_LABEL_LEN};
pub use priority::Priority;
pub use progress::{check_progress, Phase, DEFAULT_TOTAL};
pub use status::TaskStatus;
pub use task::Task;
pub use workflow::{
    dependency_error, edge_satisfied, readiness, waiting_text, Dependency, NewWorkflow, Readiness,
    Workflow, WorkflowEdge, WorkflowNode, WorkflowPlan, MAX_DEPENDS_ON, MAX_WORKFLOW_NODES,
};

/// Milliseconds since the Unix epoch, the unit of every timestamp in a [`Task`].
pub type UnixMillis = i64;
