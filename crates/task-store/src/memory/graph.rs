//! The dependency rules' reads and writes ([`GraphTx`]) on the in-memory state, with the
//! changes published once the whole operation succeeded.

use std::sync::Arc;

use task_core::{Dependency, Task, TaskId, Workflow};

use super::{MemoryStore, State, StoredTask};
use crate::backend::graph::{GraphTx, WorkflowTx};
use crate::backend::guarded::GuardTx;
use crate::guard::StoredIdempotency;
use crate::{Result, StoreError, TaskChange};

/// One operation on the state: its writes go straight to the maps (the lock is held), its
/// changes wait in `changes` until [`MemoryStore::transact`] publishes them.
pub(super) struct MemoryTx<'a> {
    pub(super) state: &'a mut State,
    pub(super) changes: Vec<TaskChange>,
}

impl GraphTx for MemoryTx<'_> {
    fn task(&mut self, id: &TaskId) -> Result<Option<Task>> {
        Ok(self.state.tasks.get(id).map(|stored| stored.task.clone()))
    }

    fn children(&mut self, parent: &TaskId) -> Result<Vec<(TaskId, bool)>> {
        Ok(self.state.children.get(parent).cloned().unwrap_or_default())
    }

    fn parents(&mut self, child: &TaskId) -> Result<Vec<(TaskId, bool)>> {
        Ok(self.state.parents.get(child).cloned().unwrap_or_default())
    }

    fn save(&mut self, task: &Task) -> Result<()> {
        if let Some(stored) = self.state.tasks.get_mut(&task.id) {
            stored.task = task.clone();
        }
        self.changes
            .push(TaskChange::Upserted(Arc::new(task.clone())));
        Ok(())
    }

    fn insert(&mut self, task: &Task, parents: &[Dependency]) -> Result<()> {
        let seq = self.state.next_seq();
        self.state.tasks.insert(
            task.id.clone(),
            StoredTask {
                seq,
                task: task.clone(),
                events: Vec::new(),
            },
        );
        for dependency in parents {
            let edge = (task.id.clone(), dependency.run_on_failure);
            self.state
                .children
                .entry(dependency.parent.clone())
                .or_default()
                .push(edge);
        }
        if !parents.is_empty() {
            let edges = parents
                .iter()
                .map(|d| (d.parent.clone(), d.run_on_failure))
                .collect();
            self.state.parents.insert(task.id.clone(), edges);
        }
        self.changes
            .push(TaskChange::Upserted(Arc::new(task.clone())));
        Ok(())
    }
}

impl WorkflowTx for MemoryTx<'_> {
    fn insert_workflow(&mut self, workflow: &Workflow) -> Result<()> {
        self.state
            .workflows
            .insert(workflow.id.clone(), workflow.clone());
        Ok(())
    }
}

impl GuardTx for MemoryTx<'_> {
    fn idempotency(&mut self, user: &str, key: &str) -> Result<Option<StoredIdempotency>> {
        Ok(self
            .state
            .idempotency
            .get(&(user.to_owned(), key.to_owned()))
            .cloned())
    }

    fn record_idempotency(
        &mut self,
        user: &str,
        key: &str,
        record: &StoredIdempotency,
    ) -> Result<()> {
        self.state
            .idempotency
            .insert((user.to_owned(), key.to_owned()), record.clone());
        Ok(())
    }

    fn unique_key(&mut self, user: &str, key: &str) -> Result<Option<TaskId>> {
        Ok(self
            .state
            .unique_keys
            .get(&(user.to_owned(), key.to_owned()))
            .cloned())
    }

    fn record_unique_key(&mut self, user: &str, key: &str, task: &TaskId) -> Result<()> {
        self.state
            .unique_keys
            .insert((user.to_owned(), key.to_owned()), task.clone());
        Ok(())
    }

    fn workflow(&mut self, id: &str) -> Result<Workflow> {
        self.state
            .workflows
            .get(id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }
}

impl MemoryStore {
    /// Runs `op` under the state lock and publishes its changes, in order, if it succeeded.
    /// Operations check before they write, so a refused one has changed nothing.
    pub(super) fn transact<T>(&self, op: impl FnOnce(&mut MemoryTx<'_>) -> Result<T>) -> Result<T> {
        let mut state = self.state();
        let mut tx = MemoryTx {
            state: &mut state,
            changes: Vec::new(),
        };
        let value = op(&mut tx)?;
        for change in tx.changes {
            self.inner.feed.publish(change);
        }
        Ok(value)
    }
}

/// Forgets the edges of a deleted task.
pub(super) fn forget_edges(state: &mut State, id: &TaskId) {
    state.parents.remove(id);
    state.children.remove(id);
}
