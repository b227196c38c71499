//! The task model shared by every tasklane crate: ids, the status state machine, progress rules and
//! the events the live stream carries.
//!
//! **Invariant: this crate does no I/O and needs no async runtime.** The one system call it makes is
//! reading the OS random number generator for new task ids. Everything that decides whether a change
//! to a task is legal lives here, so every storage backend enforces the same rules.

mod error;
mod event;
mod id;
mod new_task;
mod progress;
mod status;
mod task;
mod workflow;

pub use error::CoreError;
pub use event::{TaskEvent, MONITORING_TIMEOUT_MESSAGE};
pub use id::TaskId;
pub use new_task::{NewTask, DEFAULT_MAX_ATTEMPTS, MAX_DESCRIPTION_LEN, MAX_LABEL_LEN};
pub use progress::{check_progress, Phase, DEFAULT_TOTAL};
pub use status::TaskStatus;
pub use task::Task;
pub use workflow::{
    dependency_error, edge_satisfied, readiness, waiting_text, Dependency, NewWorkflow, Readiness,
    Workflow, WorkflowEdge, WorkflowNode, WorkflowPlan, MAX_DEPENDS_ON, MAX_WORKFLOW_NODES,
};

/// Milliseconds since the Unix epoch, the unit of every timestamp in a [`Task`].
pub type UnixMillis = i64;
