//! A task store that can be switched "down": every call then fails with
//! `StoreError::Unavailable`, as a real database does when its disk or server is gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use task_core::{NewTask, Task, TaskId, UnixMillis};
use task_store::{
    ChangeReceiver, ClaimRequest, Failure, Lease, ListQuery, StatusCount, StoreError, TaskPage,
    TaskStore,
};

/// The cause a down store reports; the tests check it never reaches a client.
pub const SECRET_CAUSE: &str = "disk /var/lib/tasklane/secret.db vanished";

/// Wraps a store; [`Flaky::set_down`] breaks it.
pub struct Flaky {
    inner: Arc<dyn TaskStore>,
    down: AtomicBool,
}

impl Flaky {
    /// A working wrapper around `inner`.
    pub fn new(inner: Arc<dyn TaskStore>) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
        }
    }

    /// Breaks (`true`) or repairs (`false`) the store.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable(SECRET_CAUSE.to_owned()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl TaskStore for Flaky {
    async fn create(&self, new: NewTask) -> Result<Task, StoreError> {
        self.check()?;
        self.inner.create(new).await
    }
    async fn create_many(&self, new: Vec<NewTask>) -> Result<Vec<Task>, StoreError> {
        self.check()?;
        self.inner.create_many(new).await
    }
    async fn create_workflow(
        &self,
        workflow: task_core::NewWorkflow,
    ) -> Result<(task_core::Workflow, Vec<Task>), StoreError> {
        self.check()?;
        self.inner.create_workflow(workflow).await
    }
    async fn get_workflow(&self, id: &str) -> Result<task_core::Workflow, StoreError> {
        self.check()?;
        self.inner.get_workflow(id).await
    }
    async fn dependencies(&self, id: &TaskId) -> Result<Vec<task_core::Dependency>, StoreError> {
        self.check()?;
        self.inner.dependencies(id).await
    }

    async fn create_guarded(
        &self,
        new: NewTask,
        guard: task_store::CreateGuard,
    ) -> Result<task_store::Guarded, StoreError> {
        self.check()?;
        self.inner.create_guarded(new, guard).await
    }
    async fn create_workflow_guarded(
        &self,
        workflow: task_core::NewWorkflow,
        claim: task_store::IdempotencyClaim,
    ) -> Result<task_store::GuardedWorkflow, StoreError> {
        self.check()?;
        self.inner.create_workflow_guarded(workflow, claim).await
    }
    async fn get(&self, id: &TaskId) -> Result<Task, StoreError> {
        self.check()?;
        self.inner.get(id).await
    }
    async fn list(&self, query: &ListQuery) -> Result<TaskPage, StoreError> {
        self.check()?;
        self.inner.list(query).await
    }
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Task>, StoreError> {
        self.check()?;
        self.inner.claim(request).await
    }
    async fn heartbeat(&self, lease: &Lease, until: UnixMillis) -> Result<Task, StoreError> {
        self.check()?;
        self.inner.heartbeat(lease, until).await
    }
    async fn update_progress(
        &self,
        lease: &Lease,
        progress: i64,
        description: Option<String>,
    ) -> Result<Task, StoreError> {
        self.check()?;
        self.inner
            .update_progress(lease, progress, description)
            .await
    }
    async fn complete(&self, lease: &Lease, result: Value) -> Result<Task, StoreError> {
        self.check()?;
        self.inner.complete(lease, result).await
    }
    async fn fail(&self, lease: &Lease, failure: Failure) -> Result<Task, StoreError> {
        self.check()?;
        self.inner.fail(lease, failure).await
    }
    async fn request_cancel(&self, id: &TaskId) -> Result<Task, StoreError> {
        self.check()?;
        self.inner.request_cancel(id).await
    }
    async fn cancel(&self, id: &TaskId, lease: Option<&Lease>) -> Result<Task, StoreError> {
        self.check()?;
        self.inner.cancel(id, lease).await
    }
    async fn retry(&self, id: &TaskId, run_at: Option<UnixMillis>) -> Result<Task, StoreError> {
        self.check()?;
        self.inner.retry(id, run_at).await
    }
    async fn release(&self, lease: &Lease) -> Result<Task, StoreError> {
        self.check()?;
        self.inner.release(lease).await
    }
    async fn postpone(
        &self,
        lease: &Lease,
        until: UnixMillis,
        description: Option<String>,
    ) -> Result<Task, StoreError> {
        self.check()?;
        self.inner.postpone(lease, until, description).await
    }
    async fn rescue_expired(&self, now: UnixMillis) -> Result<Vec<Task>, StoreError> {
        self.check()?;
        self.inner.rescue_expired(now).await
    }
    async fn delete(&self, id: &TaskId) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete(id).await
    }
    async fn purge_finished(&self, before: UnixMillis, limit: usize) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.purge_finished(before, limit).await
    }
    async fn count_unfinished(&self, user_id: &str) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.count_unfinished(user_id).await
    }
    async fn counts(&self) -> Result<Vec<StatusCount>, StoreError> {
        self.check()?;
        self.inner.counts().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
    fn subscribe(&self) -> ChangeReceiver {
        self.inner.subscribe()
    }
}
