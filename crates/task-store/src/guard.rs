//! Guarded creation: a create that first looks for an earlier answer (an `Idempotency-Key`
//! used before by the same user) or an unfinished twin (a task with the same `unique_key`),
//! and records its own answer in the same transaction as the task, so a crash can never leave
//! a task without its key or a key without its task.
//!
//! The decision is the same on every backend and lives here ([`decide`]); each backend only
//! reads the stored key and twin, and writes what the decision says, atomically.

use serde::{Deserialize, Serialize};
use task_core::{Task, TaskStatus, UnixMillis, Workflow};

use crate::{Result, StoreError};

/// The longest idempotency key or unique key accepted, in bytes.
pub const MAX_GUARD_KEY_BYTES: usize = 255;

/// How long an idempotency key is remembered by default: 24 hours.
pub const DEFAULT_IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// What a guarded create checks before it writes. Both parts are scoped to the new task's
/// `user_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateGuard {
    /// The client's idempotency key, with the fingerprint of its request.
    pub idempotency: Option<IdempotencyClaim>,
    /// While an unfinished task of the user has this key, a create returns that task.
    pub unique_key: Option<String>,
}

/// An idempotency key and what it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// The key, 1 to [`MAX_GUARD_KEY_BYTES`] bytes.
    pub key: String,
    /// A digest of the request (endpoint and body); the same key with another fingerprint is a
    /// different request.
    pub fingerprint: String,
    /// How long the key is remembered, in milliseconds; an older record is replaced.
    pub window_ms: i64,
}

/// What a guarded create did.
#[derive(Debug, Clone, PartialEq)]
pub enum Guarded {
    /// A new task was created (and the keys recorded).
    Created(Task),
    /// An unfinished task with the same `unique_key` exists; it is returned as it is now, and
    /// nothing was created.
    Existing(Task),
    /// The idempotency key was used before with the same request: the answer that request got,
    /// the task as it was then, and whether that request created it.
    Replayed {
        /// The task as the first request returned it.
        task: Task,
        /// `true` when the first request created the task (`false`: it found a twin).
        created: bool,
    },
    /// The idempotency key was used before with a different request; nothing was written.
    KeyReused,
}

/// What a guarded workflow create did (`TaskStore::create_workflow_guarded`).
#[derive(Debug, Clone, PartialEq)]
pub enum GuardedWorkflow {
    /// The workflow was created and the key recorded; its tasks in node order.
    Created(Workflow, Vec<Task>),
    /// The key was used before with the same request: the workflow that request created.
    Replayed(Workflow),
    /// The key was used before with a different request (or on another endpoint); nothing was
    /// written.
    KeyReused,
}

/// What a backend stores for one idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredIdempotency {
    /// The request's fingerprint.
    pub fingerprint: String,
    /// The task as the first request returned it.
    pub task: Task,
    /// Whether the first request created it.
    pub created: bool,
    /// When the key was recorded.
    pub created_at: UnixMillis,
}

/// What a backend must do after [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Answer this without writing anything.
    Answer(Guarded),
    /// Answer `Existing(task)` and record the idempotency key (if any) for it.
    ReturnTwin(Task),
    /// Insert the new task, point the unique key (if any) at it and record the idempotency key
    /// (if any).
    Create,
}

impl CreateGuard {
    /// Checks the keys' lengths.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty key or one over [`MAX_GUARD_KEY_BYTES`].
    pub fn validate(&self) -> Result<()> {
        if let Some(claim) = &self.idempotency {
            check_key("idempotency_key", &claim.key)?;
        }
        if let Some(key) = &self.unique_key {
            check_key("unique_key", key)?;
        }
        Ok(())
    }
}

fn check_key(field: &'static str, key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_GUARD_KEY_BYTES {
        return Err(StoreError::Invalid(task_core::CoreError::InvalidField {
            field,
            reason: format!("must be 1 to {MAX_GUARD_KEY_BYTES} bytes"),
        }));
    }
    Ok(())
}

/// The one rule every backend applies, given what it read inside its transaction: the stored
/// record of the idempotency key (if the guard has one) and the task the unique key points at
/// (if the guard has one and the task still exists).
pub fn decide(
    guard: &CreateGuard,
    stored_key: Option<&StoredIdempotency>,
    twin: Option<&Task>,
    now: UnixMillis,
) -> Decision {
    if let (Some(claim), Some(stored)) = (&guard.idempotency, stored_key) {
        if now < stored.created_at.saturating_add(claim.window_ms) {
            return Decision::Answer(if stored.fingerprint == claim.fingerprint {
                Guarded::Replayed {
                    task: stored.task.clone(),
                    created: stored.created,
                }
            } else {
                Guarded::KeyReused
            });
        }
    }
    match twin {
        Some(task) if is_unfinished(task.status) => Decision::ReturnTwin(task.clone()),
        _ => Decision::Create,
    }
}

/// The record to store for `claim` answered with `task`.
pub fn record(
    claim: &IdempotencyClaim,
    task: &Task,
    created: bool,
    now: UnixMillis,
) -> StoredIdempotency {
    StoredIdempotency {
        fingerprint: claim.fingerprint.clone(),
        task: task.clone(),
        created,
        created_at: now,
    }
}

/// What a backend must do for a guarded workflow create, given the key's stored record.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowDecision {
    /// Answer with the workflow this id names, writing nothing.
    Replay(String),
    /// Answer [`GuardedWorkflow::KeyReused`], writing nothing.
    KeyReused,
    /// Create the workflow and record the key with its first node's task.
    Create,
}

/// [`decide`] for a workflow: the record of a workflow create holds its first node's task,
/// whose `workflow_id` names the workflow to replay. A record whose task belongs to no
/// workflow came from a single-task create with the same key: a different request.
pub fn decide_workflow(
    claim: &IdempotencyClaim,
    stored_key: Option<&StoredIdempotency>,
    now: UnixMillis,
) -> WorkflowDecision {
    let guard = CreateGuard {
        idempotency: Some(claim.clone()),
        unique_key: None,
    };
    match decide(&guard, stored_key, None, now) {
        Decision::Answer(Guarded::Replayed { task, .. }) => match task.workflow_id {
            Some(id) => WorkflowDecision::Replay(id),
            None => WorkflowDecision::KeyReused,
        },
        Decision::Answer(_) => WorkflowDecision::KeyReused,
        Decision::ReturnTwin(_) | Decision::Create => WorkflowDecision::Create,
    }
}

/// Waiting tasks are unfinished too: a `unique_key` twin that waits for its parents is returned.
fn is_unfinished(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Waiting | TaskStatus::Pending | TaskStatus::Processing
    )
}
