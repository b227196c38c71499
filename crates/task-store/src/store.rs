//! The [`TaskStore`] trait: everything tasklane does with tasks, in terms every backend can
//! honour (SQLite, memory, Postgres with `FOR UPDATE SKIP LOCKED` and `LISTEN/NOTIFY`).

use async_trait::async_trait;
use serde_json::Value;
use task_core::{Dependency, NewTask, NewWorkflow, Task, TaskId, UnixMillis, Workflow};

use crate::{
    ChangeReceiver, ClaimRequest, CreateGuard, Failure, Guarded, GuardedWorkflow, IdempotencyClaim,
    Lease, ListQuery, Result, StatusCount, TaskPage,
};

/// Durable task storage. Object-safe: use it as `Arc<dyn TaskStore>`.
///
/// Rules every implementation keeps (the conformance suite in `task_store::testkit`, feature
/// `testkit`, checks them):
/// - Every committed change increments the task's `version` by one, sets `updated_at`, and is
///   published on the change feed after the commit, in commit order. A lease renewal
///   ([`TaskStore::heartbeat`]) is bookkeeping, not a visible change: no version bump, no event.
/// - Status changes follow `task_core::TaskStatus`'s table; anything else fails with
///   [`crate::StoreError::IllegalTransition`] and writes nothing.
/// - Writes that take a [`Lease`] are fenced: if the token is not the task's current one (or the
///   task is not `processing`), they fail with [`crate::StoreError::LeaseLost`] and write nothing.
/// - An operation either commits whole or writes nothing.
/// - A task that finishes releases, cancels or re-counts its `waiting` children in the same
///   transaction, and a retried task re-arms its cancelled children (see
///   `task_store::backend::graph`); `waiting` tasks are never claimed.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Creates a task with `version` 1, `attempt` 0 and `run_at` = its `run_at` or now:
    /// `pending`, or `waiting` while parents named in `depends_on` are unfinished (`cancelled`
    /// when one already failed over a cancel edge). A parent that does not exist or belongs to
    /// another user fails the call with `NotFound`.
    async fn create(&self, new: NewTask) -> Result<Task>;

    /// Creates several tasks in one transaction (all or none), returned in input order. Servers
    /// use it to batch concurrent inserts.
    async fn create_many(&self, new: Vec<NewTask>) -> Result<Vec<Task>>;

    /// Creates every node of a workflow, their edges and the workflow record in one
    /// transaction (all or none). Returns the record and the tasks in node order.
    /// `Invalid(CoreError::InvalidWorkflow)` for a bad graph; `NotFound` for a parent named in
    /// a node's `depends_on` that does not exist or belongs to another user.
    async fn create_workflow(&self, workflow: NewWorkflow) -> Result<(Workflow, Vec<Task>)>;

    /// A workflow record by id.
    async fn get_workflow(&self, id: &str) -> Result<Workflow>;

    /// The parents of a task (empty for a task without any), ordered by parent id.
    async fn dependencies(&self, id: &TaskId) -> Result<Vec<Dependency>>;
    /// Creates `new` unless `guard` finds an earlier answer: an idempotency key the same user
    /// used within its window (replayed, or [`Guarded::KeyReused`] for another request), or
    /// an unfinished task of the user with the same unique key ([`Guarded::Existing`]). The
    /// task and the keys' records are written in one transaction; the rule is
    /// [`crate::guard::decide`].
    async fn create_guarded(&self, new: NewTask, guard: CreateGuard) -> Result<Guarded>;

    /// Creates `workflow` as [`TaskStore::create_workflow`] does, unless the same user sent
    /// `claim`'s key within its window: then the workflow that request created is replayed
    /// ([`GuardedWorkflow::Replayed`]), or, for another request,
    /// [`GuardedWorkflow::KeyReused`]. The key's record is written with the workflow; the rule is
    /// [`crate::guard::decide_workflow`].
    async fn create_workflow_guarded(
        &self,
        workflow: NewWorkflow,
        claim: IdempotencyClaim,
    ) -> Result<GuardedWorkflow>;

    /// One task by id.
    async fn get(&self, id: &TaskId) -> Result<Task>;

    /// Tasks matching the query, newest first, one page at a time.
    async fn list(&self, query: &ListQuery) -> Result<TaskPage>;

    /// Claims up to `request.limit` due `pending` tasks (`run_at <= now`) for a worker: each
    /// becomes `processing` with `attempt + 1`, `progress` 0, `started_at` = now, a fresh lease
    /// token, `lease_owner` and `lease_expires_at = now + lease_for`. Concurrent claimers never
    /// get the same task. Per-user limits and round-robin apply as `request` says.
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Task>>;

    /// Extends a lease to `lease_expires_at`. Returns the task, so the worker sees a
    /// `cancel_requested` set by another process.
    async fn heartbeat(&self, lease: &Lease, lease_expires_at: UnixMillis) -> Result<Task>;

    /// Records progress (checked by `task_core::check_progress`) and, when given, a new
    /// description.
    async fn update_progress(
        &self,
        lease: &Lease,
        progress: i64,
        description: Option<String>,
    ) -> Result<Task>;

    /// `processing` → `completed`: stores the result, sets `progress = total`, `completed_at`,
    /// clears the lease and any `error`.
    async fn complete(&self, lease: &Lease, result: Value) -> Result<Task>;

    /// Ends an attempt with an error. With `failure.retry_at` set and attempts left
    /// (`attempt < max_attempts`): back to `pending` at `retry_at`, progress 0, the error kept
    /// in `error` and `retry_description` as the description. Otherwise `failed` with
    /// `completed_at`. Either way the lease is cleared.
    async fn fail(&self, lease: &Lease, failure: Failure) -> Result<Task>;

    /// Asks for a task to stop. `pending` → `cancelled` at once (error "Task was cancelled");
    /// `processing` → `cancel_requested = true` (the worker stops it); an already requested
    /// cancel is returned unchanged; a terminal task fails with `IllegalTransition`.
    async fn request_cancel(&self, id: &TaskId) -> Result<Task>;

    /// Marks a task `cancelled` and clears its lease. With a lease (the worker acknowledging
    /// the cancel) the write is fenced; without one (the runtime's grace timer, an operator) it
    /// applies to a `pending` task or a `processing` task whose cancel was requested.
    async fn cancel(&self, id: &TaskId, lease: Option<&Lease>) -> Result<Task>;

    /// A manual retry of a `failed` or `cancelled` task: back to `pending`, due at `run_at` (or
    /// now), with `attempt` 0 (a full set of attempts), progress 0, and `result`, `error`,
    /// `completed_at` and `cancel_requested` cleared.
    async fn retry(&self, id: &TaskId, run_at: Option<UnixMillis>) -> Result<Task>;

    /// Gives a claimed task back (graceful shutdown): `pending`, due now, the attempt not
    /// counted (`attempt - 1`), progress 0, lease cleared.
    async fn release(&self, lease: &Lease) -> Result<Task>;

    /// Holds a claimed task back until `until` because an upstream asked to wait (a provider's
    /// 429 or 503 with `Retry-After`): `pending`, due at `until`, the attempt not counted,
    /// progress 0, lease cleared, and `description` (when given) saying why. A task whose cancel
    /// was requested is cancelled instead. Fenced by the lease (`LeaseLost`).
    async fn postpone(
        &self,
        lease: &Lease,
        until: UnixMillis,
        description: Option<String>,
    ) -> Result<Task>;

    /// Finds `processing` tasks whose lease expired before `now`. Each goes back to `pending`
    /// (due now, error "worker lost: lease expired") when it has attempts left, else to `failed`
    /// with that error. Returns the tasks after the change.
    async fn rescue_expired(&self, now: UnixMillis) -> Result<Vec<Task>>;

    /// Deletes one task that is not `processing` (`Conflict` otherwise). Published as
    /// `TaskChange::Deleted`.
    async fn delete(&self, id: &TaskId) -> Result<()>;

    /// Deletes up to `limit` terminal tasks whose `completed_at` is before `before`, oldest
    /// first. Returns how many were deleted. Each deletion is published.
    async fn purge_finished(&self, before: UnixMillis, limit: usize) -> Result<usize>;

    /// How many unfinished (`waiting`, `pending` or `processing`) tasks a user has (for
    /// per-user queue limits).
    async fn count_unfinished(&self, user_id: &str) -> Result<u64>;

    /// Task counts by type and status (for metrics and dashboards).
    async fn counts(&self) -> Result<Vec<StatusCount>>;

    /// Cheap check that the database answers (for readiness probes).
    async fn ping(&self) -> Result<()>;

    /// Adds up to `limit` of the tasks created since the last call to the text-search index,
    /// oldest first, and returns how many it added (fewer than `limit`: the index has caught
    /// up). A maintenance loop calls it (task-runtime's search indexer), so creating a task
    /// does not pay for the index. Searches are exact whether or not it has run: a backend
    /// that indexes this way also reads the tasks not yet indexed. Backends whose database
    /// keeps the index on every write (memory, PostgreSQL) have nothing to do; the default
    /// returns 0.
    async fn index_search(&self, limit: usize) -> Result<usize> {
        let _ = limit;
        Ok(0)
    }

    /// A subscription to the change feed, starting now.
    fn subscribe(&self) -> ChangeReceiver;
}
