//! Guarded creation written once over [`GuardTx`]: the idempotency record, the unique key's
//! task and the new task (with its parents, or a whole workflow) read and written in one
//! backend transaction. The decision is [`crate::guard::decide`]; the backends that run
//! synchronously inside their transaction (SQLite, memory) call these functions, task-postgres
//! walks the same steps with its own async reads.

use task_core::{NewTask, NewWorkflow, TaskId, UnixMillis, Workflow};

use crate::backend::graph::{self, WorkflowTx};
use crate::guard::{
    self, CreateGuard, Decision, Guarded, GuardedWorkflow, IdempotencyClaim, StoredIdempotency,
    WorkflowDecision,
};
use crate::{Result, StoreError};

/// The reads and writes of guarded creation, inside one backend transaction, beside the
/// dependency graph's.
pub trait GuardTx: WorkflowTx {
    /// The record of `user`'s idempotency `key`, whatever its age.
    fn idempotency(&mut self, user: &str, key: &str) -> Result<Option<StoredIdempotency>>;
    /// Stores (or replaces) the record of `user`'s idempotency `key`.
    fn record_idempotency(
        &mut self,
        user: &str,
        key: &str,
        record: &StoredIdempotency,
    ) -> Result<()>;
    /// The task `user`'s unique `key` last created, if any.
    fn unique_key(&mut self, user: &str, key: &str) -> Result<Option<TaskId>>;
    /// Points `user`'s unique `key` at `task`.
    fn record_unique_key(&mut self, user: &str, key: &str, task: &TaskId) -> Result<()>;
    /// A workflow record by id.
    fn workflow(&mut self, id: &str) -> Result<Workflow>;
}

/// `TaskStore::create_guarded` inside `tx`: `new` (with its `depends_on`, checked as
/// `create` checks them) unless the guard finds an earlier answer.
pub fn create_guarded(
    tx: &mut impl GuardTx,
    new: NewTask,
    guard: &CreateGuard,
    now: UnixMillis,
) -> Result<Guarded> {
    guard.validate()?;
    let user = new.user_id.clone();
    let stored = match &guard.idempotency {
        Some(claim) => tx.idempotency(&user, &claim.key)?,
        None => None,
    };
    let twin = match &guard.unique_key {
        Some(key) => match tx.unique_key(&user, key)? {
            Some(id) => tx.task(&id)?,
            None => None,
        },
        None => None,
    };
    let (answer, created) = match guard::decide(guard, stored.as_ref(), twin.as_ref(), now) {
        Decision::Answer(answer) => return Ok(answer),
        Decision::ReturnTwin(twin) => (twin, false),
        Decision::Create => {
            let task = graph::create_tasks(tx, vec![new], now)?
                .pop()
                .ok_or_else(|| StoreError::Backend("nothing was created".to_owned()))?;
            if let Some(key) = &guard.unique_key {
                tx.record_unique_key(&user, key, &task.id)?;
            }
            (task, true)
        }
    };
    if let Some(claim) = &guard.idempotency {
        tx.record_idempotency(
            &user,
            &claim.key,
            &guard::record(claim, &answer, created, now),
        )?;
    }
    Ok(if created {
        Guarded::Created(answer)
    } else {
        Guarded::Existing(answer)
    })
}

/// `TaskStore::create_workflow_guarded` inside `tx`.
pub fn create_workflow_guarded(
    tx: &mut impl GuardTx,
    workflow: NewWorkflow,
    claim: &IdempotencyClaim,
    now: UnixMillis,
) -> Result<GuardedWorkflow> {
    CreateGuard {
        idempotency: Some(claim.clone()),
        unique_key: None,
    }
    .validate()?;
    let user = workflow.user_id.clone();
    let stored = tx.idempotency(&user, &claim.key)?;
    match guard::decide_workflow(claim, stored.as_ref(), now) {
        WorkflowDecision::Replay(id) => Ok(GuardedWorkflow::Replayed(tx.workflow(&id)?)),
        WorkflowDecision::KeyReused => Ok(GuardedWorkflow::KeyReused),
        WorkflowDecision::Create => {
            let (record, tasks) = graph::create_workflow(tx, workflow, now)?;
            let first = tasks
                .first()
                .ok_or_else(|| StoreError::Backend("a workflow without nodes".to_owned()))?;
            tx.record_idempotency(&user, &claim.key, &guard::record(claim, first, true, now))?;
            Ok(GuardedWorkflow::Created(record, tasks))
        }
    }
}
