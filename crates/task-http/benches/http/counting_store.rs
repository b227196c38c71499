//! A store wrapper that counts every call reaching the database, so the bench can show that an
//! idle subscriber causes none. Subscribing to the change feed is not a query and is not
//! counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use task_core::{NewTask, Task, TaskId, UnixMillis};
use task_store::{
    ChangeReceiver, ClaimRequest, EventReceiver, Failure, Lease, ListQuery, NewToken, Result, Role,
    StatusCount, TaskEvent, TaskEventLog, TaskPage, TaskStore, TokenRecord, User, UserStore,
};

/// Delegates to `inner`, counting calls.
#[derive(Debug)]
pub struct CountingStore<S> {
    inner: Arc<S>,
    calls: AtomicU64,
}

impl<S> CountingStore<S> {
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            calls: AtomicU64::new(0),
        }
    }

    /// Database calls so far (task and user stores together).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self) -> &S {
        self.calls.fetch_add(1, Ordering::Relaxed);
        &self.inner
    }
}

#[async_trait]
impl<S: TaskStore> TaskStore for CountingStore<S> {
    async fn create(&self, new: NewTask) -> Result<Task> {
        self.count().create(new).await
    }
    async fn create_many(&self, new: Vec<NewTask>) -> Result<Vec<Task>> {
        self.count().create_many(new).await
    }
    async fn create_workflow(
        &self,
        workflow: task_core::NewWorkflow,
    ) -> Result<(task_core::Workflow, Vec<Task>)> {
        self.count().create_workflow(workflow).await
    }
    async fn get_workflow(&self, id: &str) -> Result<task_core::Workflow> {
        self.count().get_workflow(id).await
    }
    async fn dependencies(&self, id: &TaskId) -> Result<Vec<task_core::Dependency>> {
        self.count().dependencies(id).await
    }
    async fn create_guarded(
        &self,
        new: NewTask,
        guard: task_store::CreateGuard,
    ) -> Result<task_store::Guarded> {
        self.count().create_guarded(new, guard).await
    }
    async fn create_workflow_guarded(
        &self,
        workflow: task_core::NewWorkflow,
        claim: task_store::IdempotencyClaim,
    ) -> Result<task_store::GuardedWorkflow> {
        self.count().create_workflow_guarded(workflow, claim).await
    }
    async fn get(&self, id: &TaskId) -> Result<Task> {
        self.count().get(id).await
    }
    async fn list(&self, query: &ListQuery) -> Result<TaskPage> {
        self.count().list(query).await
    }
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Task>> {
        self.count().claim(request).await
    }
    async fn heartbeat(&self, lease: &Lease, until: UnixMillis) -> Result<Task> {
        self.count().heartbeat(lease, until).await
    }
    async fn update_progress(
        &self,
        lease: &Lease,
        progress: i64,
        description: Option<String>,
    ) -> Result<Task> {
        self.count()
            .update_progress(lease, progress, description)
            .await
    }
    async fn complete(&self, lease: &Lease, result: Value) -> Result<Task> {
        self.count().complete(lease, result).await
    }
    async fn fail(&self, lease: &Lease, failure: Failure) -> Result<Task> {
        self.count().fail(lease, failure).await
    }
    async fn request_cancel(&self, id: &TaskId) -> Result<Task> {
        self.count().request_cancel(id).await
    }
    async fn cancel(&self, id: &TaskId, lease: Option<&Lease>) -> Result<Task> {
        self.count().cancel(id, lease).await
    }
    async fn retry(&self, id: &TaskId, run_at: Option<UnixMillis>) -> Result<Task> {
        self.count().retry(id, run_at).await
    }
    async fn release(&self, lease: &Lease) -> Result<Task> {
        self.count().release(lease).await
    }
    async fn postpone(
        &self,
        lease: &Lease,
        until: UnixMillis,
        description: Option<String>,
    ) -> Result<Task> {
        self.count().postpone(lease, until, description).await
    }
    async fn rescue_expired(&self, now: UnixMillis) -> Result<Vec<Task>> {
        self.count().rescue_expired(now).await
    }
    async fn delete(&self, id: &TaskId) -> Result<()> {
        self.count().delete(id).await
    }
    async fn purge_finished(&self, before: UnixMillis, limit: usize) -> Result<usize> {
        self.count().purge_finished(before, limit).await
    }
    async fn count_unfinished(&self, user_id: &str) -> Result<u64> {
        self.count().count_unfinished(user_id).await
    }
    async fn counts(&self) -> Result<Vec<StatusCount>> {
        self.count().counts().await
    }
    async fn ping(&self) -> Result<()> {
        self.count().ping().await
    }
    fn subscribe(&self) -> ChangeReceiver {
        self.inner.subscribe()
    }
}

#[async_trait]
impl<S: UserStore> UserStore for CountingStore<S> {
    async fn create_user(&self, email: &str, role: Role) -> Result<User> {
        self.count().create_user(email, role).await
    }
    async fn get_user(&self, email: &str) -> Result<User> {
        self.count().get_user(email).await
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        self.count().list_users().await
    }
    async fn count_users(&self) -> Result<u64> {
        self.count().count_users().await
    }
    async fn insert_token(&self, token: NewToken) -> Result<TokenRecord> {
        self.count().insert_token(token).await
    }
    async fn find_token(&self, hash: &str, now: UnixMillis) -> Result<Option<(User, TokenRecord)>> {
        self.count().find_token(hash, now).await
    }
    async fn revoke_token(&self, id: &str) -> Result<()> {
        self.count().revoke_token(id).await
    }
    async fn delete_token_by_hash(&self, hash: &str) -> Result<()> {
        self.count().delete_token_by_hash(hash).await
    }
    async fn get_user_limits(&self, email: &str) -> Result<task_store::UserLimits> {
        self.count().get_user_limits(email).await
    }
    async fn set_user_limits(&self, email: &str, limits: task_store::UserLimits) -> Result<()> {
        self.count().set_user_limits(email, limits).await
    }
    async fn list_tokens(&self, email: &str) -> Result<Vec<TokenRecord>> {
        self.count().list_tokens(email).await
    }
}

/// The task event log (partial outputs) the server reads when a stream opens: counted too.
#[async_trait]
impl<S: TaskEventLog> TaskEventLog for CountingStore<S> {
    async fn append_event(&self, lease: &Lease, item: Value) -> Result<TaskEvent> {
        self.count().append_event(lease, item).await
    }
    async fn events_after(&self, id: &TaskId, after: i64) -> Result<Vec<TaskEvent>> {
        self.count().events_after(id, after).await
    }
    fn subscribe_events(&self) -> EventReceiver {
        self.inner.subscribe_events()
    }
}
