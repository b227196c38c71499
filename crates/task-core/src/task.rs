//! The task record: the existing `background_tasks` columns, names kept, plus what durable
//! execution needs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Priority, TaskId, TaskStatus, UnixMillis};

/// One background task as stored and as served in JSON. Field names are the table's column
/// names; `result` and `params` are JSON values, never JSON-in-a-string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// `task_<unix-ms>_<random>`.
    pub id: TaskId,
    /// The owner: the authenticated user's email or id.
    pub user_id: String,
    /// Which handler runs it, e.g. `generation`, `validation`, `emoji-regeneration`.
    pub task_type: String,
    /// Where the task is in its life.
    pub status: TaskStatus,
    /// Short human title, e.g. "10 questions about Historia".
    pub label: Option<String>,
    /// What is happening now, e.g. "Generating with OpenAI...".
    pub description: Option<String>,
    /// `0 <= progress <= total`; never goes backwards within an attempt.
    pub progress: i64,
    /// The progress value that means done; 100 unless the creator chose otherwise.
    pub total: i64,
    /// The handler's result once completed.
    pub result: Option<Value>,
    /// Why the task failed or was cancelled, once it has.
    pub error: Option<String>,
    /// The handler's input.
    pub params: Value,
    /// How many times a worker has claimed it in this run of attempts (0 before the first claim).
    pub attempt: i64,
    /// How many attempts it gets before a retryable error becomes final.
    pub max_attempts: i64,
    /// Not claimed before this time (delayed tasks and backoff).
    pub run_at: UnixMillis,
    /// The worker holding the lease while processing.
    pub lease_owner: Option<String>,
    /// The fencing token of the current lease. Never serialised: it is the worker's capability.
    #[serde(skip_serializing, default)]
    pub lease_token: Option<String>,
    /// When the current lease runs out unless renewed.
    pub lease_expires_at: Option<UnixMillis>,
    /// A cancel was asked for while it was processing; the handler should stop.
    pub cancel_requested: bool,
    /// Starts at 1 and increases by one with every committed change; the SSE event id.
    pub version: i64,
    /// When it was created.
    pub created_at: UnixMillis,
    /// When it last changed.
    pub updated_at: UnixMillis,
    /// When the current attempt started.
    pub started_at: Option<UnixMillis>,
    /// When it reached a terminal status.
    pub completed_at: Option<UnixMillis>,
    /// How many parents a `waiting` task still waits for (0 otherwise); listings show it as
    /// "waiting for N tasks".
    #[serde(default)]
    pub waiting_for: i64,
    /// The workflow the task was created in, if any.
    #[serde(default)]
    pub workflow_id: Option<String>,
    /// Which due tasks a claim takes first: `low`, `normal` (the default) or `high`.
    #[serde(default)]
    pub priority: Priority,
}

impl Task {
    /// The message a live stream sends when the task ended without success.
    pub fn failure_message(&self) -> String {
        match (&self.error, self.status) {
            (Some(error), _) => error.clone(),
            (None, TaskStatus::Cancelled) => "Task was cancelled".to_owned(),
            (None, _) => "Task failed".to_owned(),
        }
    }
}
