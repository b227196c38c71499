//! [`TaskContext`]: what a handler gets for one attempt — the task, a fenced progress
//! reporter and a cancellation token — and the attempt state it shares with the supervisor.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use task_core::{check_progress, Task, TaskId};
use task_store::{Lease, StoreError, TaskStore};
use tokio_util::sync::CancellationToken;

use crate::ProgressError;

/// One attempt of one task, as its handler sees it. Cheap to clone; every clone reports for
/// the same attempt, and all stop working (with [`ProgressError::LeaseLost`]) once the attempt
/// has ended.
#[derive(Clone)]
pub struct TaskContext {
    attempt: Arc<Attempt>,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("task_id", &self.attempt.task.id)
            .field("attempt", &self.attempt.task.attempt)
            .finish_non_exhaustive()
    }
}

impl TaskContext {
    pub(crate) fn new(attempt: Arc<Attempt>) -> Self {
        Self { attempt }
    }

    /// The task as it was claimed (status `processing`, this attempt's number, progress 0).
    pub fn task(&self) -> &Task {
        &self.attempt.task
    }

    /// The task's id.
    pub fn task_id(&self) -> &TaskId {
        &self.attempt.task.id
    }

    /// The task's owner.
    pub fn user_id(&self) -> &str {
        &self.attempt.task.user_id
    }

    /// The handler's input, as given when the task was created.
    pub fn params(&self) -> &Value {
        &self.attempt.task.params
    }

    /// Which attempt this is, from 1.
    pub fn attempt(&self) -> i64 {
        self.attempt.task.attempt
    }

    /// Records progress (`0..=total`, never lower than the last report of this attempt) and,
    /// unless `description` is empty, a new description. It is written through the store, so
    /// the change feed carries it to live streams, and it is fenced by this attempt's lease.
    ///
    /// # Errors
    /// [`ProgressError::LeaseLost`] when this worker no longer holds the task (nothing written;
    /// stop working), [`ProgressError::Cancelled`] when the task was asked to stop,
    /// [`ProgressError::Invalid`] for a value the rules reject, [`ProgressError::Store`] when
    /// the store failed.
    pub async fn progress(
        &self,
        progress: i64,
        description: impl Into<String> + Send,
    ) -> Result<(), ProgressError> {
        let attempt = &self.attempt;
        if attempt.is_closed() {
            return Err(ProgressError::LeaseLost);
        }
        if attempt.token.is_cancelled() {
            return Err(ProgressError::Cancelled);
        }
        let current = attempt.progress.load(Ordering::Acquire);
        check_progress(current, progress, attempt.task.total).map_err(ProgressError::Invalid)?;
        let description = Some(description.into()).filter(|text| !text.is_empty());
        match attempt
            .store
            .update_progress(&attempt.lease, progress, description)
            .await
        {
            Ok(task) => {
                attempt.progress.fetch_max(task.progress, Ordering::AcqRel);
                tracing::debug!(task_id = %task.id, progress = task.progress, "progress");
                Ok(())
            }
            Err(StoreError::LeaseLost | StoreError::NotFound) => {
                tracing::warn!(task_id = %attempt.task.id, "progress refused: lease lost");
                attempt.lose_lease();
                Err(ProgressError::LeaseLost)
            }
            Err(StoreError::Invalid(error)) => Err(ProgressError::Invalid(error)),
            Err(error) => Err(ProgressError::Store(error)),
        }
    }

    /// This attempt's lease, for writes the handler makes through a store of its own that
    /// must be fenced like the worker's (a [`task_store::TaskEventLog`] append, for instance).
    /// Writes with it fail with `LeaseLost` once this worker no longer holds the task.
    pub fn lease(&self) -> &Lease {
        &self.attempt.lease
    }

    /// The tasks this task depends on (its parents, ordered by id), read now, with their
    /// results: how data flows down a workflow. A task without parents gets an empty list;
    /// a parent the cleaner already purged is left out.
    ///
    /// # Errors
    /// [`ProgressError::Store`] when the store failed.
    pub async fn parents(&self) -> Result<Vec<Task>, ProgressError> {
        let store = &self.attempt.store;
        let dependencies = store
            .dependencies(&self.attempt.task.id)
            .await
            .map_err(ProgressError::Store)?;
        let mut parents = Vec::with_capacity(dependencies.len());
        for dependency in dependencies {
            match store.get(&dependency.parent).await {
                Ok(parent) => parents.push(parent),
                Err(StoreError::NotFound) => {}
                Err(error) => return Err(ProgressError::Store(error)),
            }
        }
        Ok(parents)
    }

    /// The results of this task's completed parents, in [`TaskContext::parents`] order.
    ///
    /// # Errors
    /// As [`TaskContext::parents`].
    pub async fn parent_results(&self) -> Result<Vec<Value>, ProgressError> {
        Ok(self
            .parents()
            .await?
            .into_iter()
            .filter_map(|parent| parent.result)
            .collect())
    }

    /// A token that fires when the handler should stop: the task was cancelled, timed out, its
    /// lease was lost, or the runtime is shutting down past its grace period.
    pub fn cancellation(&self) -> CancellationToken {
        self.attempt.token.clone()
    }

    /// Whether [`TaskContext::cancellation`] has fired.
    pub fn is_cancelled(&self) -> bool {
        self.attempt.token.is_cancelled()
    }
}

/// The state of one attempt, shared by its handler's contexts and its supervisor.
pub(crate) struct Attempt {
    pub(crate) task: Task,
    pub(crate) lease: Lease,
    pub(crate) store: Arc<dyn TaskStore>,
    pub(crate) token: CancellationToken,
    /// Fires when a cancel of this task was requested (seen on the feed or in a heartbeat);
    /// the supervisor then fires `token` and starts the grace timer. Kept apart from `token`
    /// because timeouts and shutdown stop the handler too, but end the task differently.
    pub(crate) cancel_requested: CancellationToken,
    /// The highest progress recorded in this attempt, to refuse regressions without a round
    /// trip.
    progress: AtomicI64,
    /// Set once the worker must write nothing more for this attempt: the lease was lost, or
    /// the supervisor is writing the attempt's outcome.
    closed: AtomicBool,
}

impl Attempt {
    pub(crate) fn new(task: Task, lease: Lease, store: Arc<dyn TaskStore>) -> Self {
        Self {
            progress: AtomicI64::new(task.progress),
            task,
            lease,
            store,
            token: CancellationToken::new(),
            cancel_requested: CancellationToken::new(),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends the handler's right to write; later progress reports fail with `LeaseLost`.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Another worker (or a cancel, or the rescuer) owns the task now: stop the handler and
    /// write nothing more.
    pub(crate) fn lose_lease(&self) {
        self.close();
        self.token.cancel();
    }
}
