//! [`TaskStore`] for [`MemoryStore`]: the shared rules applied to a map under one lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use task_core::{Dependency, NewTask, NewWorkflow, Task, TaskId, TaskStatus, UnixMillis, Workflow};

use super::{MemoryStore, State, StoredTask};
use crate::backend::clock::now_millis;
use crate::backend::fair_claim::{FairPicker, Offer, Priority};
use crate::backend::graph::{self, GraphTx};
use crate::backend::guarded;
use crate::backend::lease_token::new_lease_token;
use crate::backend::rules;
use crate::{
    ChangeReceiver, ClaimRequest, CreateGuard, Failure, Guarded, GuardedWorkflow, IdempotencyClaim,
    Lease, ListQuery, Result, StatusCount, StoreError, TaskChange, TaskPage, TaskStore,
};

impl MemoryStore {
    /// Applies `change` to the task `id`, carries it to the task's children and publishes the
    /// results; nothing changes on error.
    fn update(&self, id: &TaskId, change: impl FnOnce(&Task) -> Result<Task>) -> Result<Task> {
        self.transact(|tx| {
            let current = tx.task(id)?.ok_or(StoreError::NotFound)?;
            let next = change(&current)?;
            tx.save(&next)?;
            graph::propagate(tx, current.status, &next, next.updated_at)?;
            Ok(next)
        })
    }

    /// Like [`MemoryStore::update`] for writes fenced by `lease`: a task that no longer exists
    /// means the lease is gone too.
    fn update_leased(
        &self,
        lease: &Lease,
        change: impl FnOnce(&Task) -> Result<Task>,
    ) -> Result<Task> {
        match self.update(&lease.task_id, change) {
            Err(StoreError::NotFound) => Err(StoreError::LeaseLost),
            other => other,
        }
    }

    fn publish_upsert(&self, task: &Task) {
        self.inner
            .feed
            .publish(TaskChange::Upserted(Arc::new(task.clone())));
    }

    /// Stores a new task under the caller's lock and publishes it.
    pub(super) fn insert_locked(&self, state: &mut State, task: &Task) {
        let seq = state.next_seq();
        state.tasks.insert(
            task.id.clone(),
            StoredTask {
                seq,
                task: task.clone(),
                events: Vec::new(),
            },
        );
        self.publish_upsert(task);
    }
}

/// The order claims take due tasks in: SQLite's due-index order, the insertion number standing
/// in for the rowid.
fn due_key(stored: &StoredTask) -> (UnixMillis, UnixMillis, &str, &str, u64) {
    let task = &stored.task;
    (
        task.run_at,
        task.created_at,
        &task.user_id,
        &task.task_type,
        stored.seq,
    )
}

/// The due tasks a claim may take, oldest first, with the same tie-breakers as SQLite.
fn due_tasks<'a>(state: &'a State, request: &ClaimRequest) -> Vec<&'a StoredTask> {
    let mut due: Vec<&StoredTask> = state
        .tasks
        .values()
        .filter(|stored| rules::is_claimable(&stored.task, request))
        .collect();
    due.sort_by(|a, b| due_key(a).cmp(&due_key(b)));
    due
}

/// The claim: the priority bands highest first, each picked like SQLite's (see
/// `backend::fair_claim`).
fn pick(state: &State, request: &ClaimRequest) -> Vec<TaskId> {
    let due = due_tasks(state, request);
    let mut running: HashMap<String, u64> = HashMap::new();
    for stored in state.tasks.values() {
        if stored.task.status == TaskStatus::Processing {
            *running.entry(stored.task.user_id.clone()).or_default() += 1;
        }
    }
    let mut claim = Vec::with_capacity(request.limit);
    for priority in Priority::CLAIM_ORDER {
        let wanted = request.limit - claim.len();
        if wanted == 0 {
            break;
        }
        let band = due.iter().filter(|stored| stored.task.priority == priority);
        let Some(max_running) = request.max_running_per_user else {
            claim.extend(band.take(wanted).map(|stored| stored.task.id.clone()));
            continue;
        };
        let caps: HashMap<String, u32> = state
            .limits
            .iter()
            .filter_map(|(user, limits)| Some((user.clone(), limits.max_running?)))
            .collect();
        let mut picker =
            FairPicker::new(wanted, max_running, std::mem::take(&mut running)).with_caps(&caps);
        for stored in band {
            if picker.offer(&stored.task.user_id, stored.task.id.clone()) == Offer::Done {
                break;
            }
        }
        let (picked, counts) = picker.finish_counted();
        claim.extend(picked);
        running = counts;
    }
    claim
}

#[async_trait]
impl TaskStore for MemoryStore {
    async fn create(&self, new: NewTask) -> Result<Task> {
        let mut created = self.create_many(vec![new]).await?;
        created
            .pop()
            .ok_or_else(|| StoreError::Backend("nothing was created".to_owned()))
    }

    async fn create_many(&self, new: Vec<NewTask>) -> Result<Vec<Task>> {
        let now = now_millis();
        self.transact(|tx| graph::create_tasks(tx, new, now))
    }

    async fn create_workflow(&self, workflow: NewWorkflow) -> Result<(Workflow, Vec<Task>)> {
        let now = now_millis();
        self.transact(|tx| graph::create_workflow(tx, workflow, now))
    }

    async fn get_workflow(&self, id: &str) -> Result<Workflow> {
        self.state()
            .workflows
            .get(id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn dependencies(&self, id: &TaskId) -> Result<Vec<Dependency>> {
        let state = self.state();
        let mut parents = state.parents.get(id).cloned().unwrap_or_default();
        parents.sort();
        Ok(parents
            .into_iter()
            .map(|(parent, run_on_failure)| Dependency {
                parent,
                run_on_failure,
            })
            .collect())
    }

    async fn create_guarded(&self, new: NewTask, guard: CreateGuard) -> Result<Guarded> {
        let now = now_millis();
        self.transact(|tx| guarded::create_guarded(tx, new, &guard, now))
    }

    async fn create_workflow_guarded(
        &self,
        workflow: NewWorkflow,
        claim: IdempotencyClaim,
    ) -> Result<GuardedWorkflow> {
        let now = now_millis();
        self.transact(|tx| guarded::create_workflow_guarded(tx, workflow, &claim, now))
    }

    async fn get(&self, id: &TaskId) -> Result<Task> {
        self.state()
            .tasks
            .get(id)
            .map(|stored| stored.task.clone())
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, query: &ListQuery) -> Result<TaskPage> {
        query.validate()?;
        let state = self.state();
        let mut found: Vec<&Task> = state
            .tasks
            .values()
            .map(|stored| &stored.task)
            .filter(|task| rules::matches(query, task))
            .filter(|task| {
                query
                    .after
                    .as_ref()
                    .is_none_or(|after| (task.created_at, &task.id) < (after.created_at, &after.id))
            })
            .collect();
        found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let more = found.len() > query.limit;
        let tasks: Vec<Task> = found.into_iter().take(query.limit).cloned().collect();
        let next = if more {
            tasks.last().map(crate::Cursor::after)
        } else {
            None
        };
        Ok(TaskPage { tasks, next })
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Task>> {
        rules::validate_claim(request)?;
        let mut state = self.state();
        let picked = pick(&state, request);
        let tokens = picked
            .iter()
            .map(|_| new_lease_token())
            .collect::<Result<Vec<_>>>()?;
        let mut claimed = Vec::with_capacity(picked.len());
        for (id, token) in picked.iter().zip(tokens) {
            if let Some(stored) = state.tasks.get_mut(id) {
                stored.task = rules::claim(&stored.task, request, token);
                self.publish_upsert(&stored.task);
                claimed.push(stored.task.clone());
            }
        }
        Ok(claimed)
    }

    async fn heartbeat(&self, lease: &Lease, lease_expires_at: UnixMillis) -> Result<Task> {
        // A lease renewal is not a visible change: stored, but neither versioned nor published.
        let mut state = self.state();
        let stored = state
            .tasks
            .get_mut(&lease.task_id)
            .ok_or(StoreError::LeaseLost)?;
        stored.task = rules::heartbeat(&stored.task, lease, lease_expires_at)?;
        Ok(stored.task.clone())
    }

    async fn update_progress(
        &self,
        lease: &Lease,
        progress: i64,
        description: Option<String>,
    ) -> Result<Task> {
        let now = now_millis();
        self.update_leased(lease, |task| {
            rules::update_progress(task, lease, progress, description, now)
        })
    }

    async fn complete(&self, lease: &Lease, result: Value) -> Result<Task> {
        let now = now_millis();
        self.update_leased(lease, |task| rules::complete(task, lease, result, now))
    }

    async fn fail(&self, lease: &Lease, failure: Failure) -> Result<Task> {
        let now = now_millis();
        self.update_leased(lease, |task| rules::fail(task, lease, failure, now))
    }

    async fn request_cancel(&self, id: &TaskId) -> Result<Task> {
        let now = now_millis();
        self.transact(|tx| {
            let task = tx.task(id)?.ok_or(StoreError::NotFound)?;
            let Some(next) = rules::request_cancel(&task, now)? else {
                return Ok(task);
            };
            tx.save(&next)?;
            graph::propagate(tx, task.status, &next, now)?;
            Ok(next)
        })
    }

    async fn cancel(&self, id: &TaskId, lease: Option<&Lease>) -> Result<Task> {
        let now = now_millis();
        match lease {
            Some(lease) if lease.task_id != *id => Err(StoreError::LeaseLost),
            Some(lease) => self.update_leased(lease, |task| rules::cancel(task, Some(lease), now)),
            None => self.update(id, |task| rules::cancel(task, None, now)),
        }
    }

    async fn retry(&self, id: &TaskId, run_at: Option<UnixMillis>) -> Result<Task> {
        let now = now_millis();
        self.transact(|tx| {
            let task = tx.task(id)?.ok_or(StoreError::NotFound)?;
            let next = graph::retry(tx, &task, run_at, now)?;
            tx.save(&next)?;
            graph::propagate(tx, task.status, &next, now)?;
            Ok(next)
        })
    }

    async fn release(&self, lease: &Lease) -> Result<Task> {
        let now = now_millis();
        self.update_leased(lease, |task| rules::release(task, lease, now))
    }

    async fn postpone(
        &self,
        lease: &Lease,
        until: UnixMillis,
        description: Option<String>,
    ) -> Result<Task> {
        let now = now_millis();
        self.update_leased(lease, |task| {
            rules::postpone(task, lease, until, description, now)
        })
    }

    async fn rescue_expired(&self, now: UnixMillis) -> Result<Vec<Task>> {
        let state = self.state();
        let mut expired: Vec<(UnixMillis, u64, TaskId)> = state
            .tasks
            .values()
            .filter(|stored| rules::is_rescuable(&stored.task, now))
            .map(|stored| {
                let expiry = stored.task.lease_expires_at.unwrap_or(now);
                (expiry, stored.seq, stored.task.id.clone())
            })
            .collect();
        expired.sort();
        let ids: Vec<TaskId> = expired.into_iter().map(|(_, _, id)| id).collect();
        drop(state);
        self.transact(|tx| {
            let mut rescued = Vec::with_capacity(ids.len());
            for id in &ids {
                let Some(task) = tx.task(id)? else { continue };
                let next = rules::rescue(&task, now)?;
                tx.save(&next)?;
                graph::propagate(tx, task.status, &next, now)?;
                rescued.push(next);
            }
            Ok(rescued)
        })
    }

    async fn delete(&self, id: &TaskId) -> Result<()> {
        self.transact(|tx| {
            let task = tx.task(id)?.ok_or(StoreError::NotFound)?;
            graph::check_deletable(tx, &task)?;
            tx.state.tasks.remove(id);
            super::graph::forget_edges(tx.state, id);
            tx.changes.push(TaskChange::Deleted {
                id: task.id,
                user_id: task.user_id,
            });
            Ok(())
        })
    }

    async fn purge_finished(&self, before: UnixMillis, limit: usize) -> Result<usize> {
        let mut state = self.state();
        let before = state.analytics.purge_horizon(before);
        let mut finished: Vec<(UnixMillis, u64, TaskId)> = state
            .tasks
            .values()
            .filter(|stored| rules::is_purgeable(&stored.task, before))
            .map(|stored| {
                let at = stored.task.completed_at.unwrap_or(before);
                (at, stored.seq, stored.task.id.clone())
            })
            .collect();
        finished.sort();
        finished.truncate(limit);
        for (_, _, id) in &finished {
            super::graph::forget_edges(&mut state, id);
            if let Some(removed) = state.tasks.remove(id) {
                self.inner.feed.publish(TaskChange::Deleted {
                    id: removed.task.id,
                    user_id: removed.task.user_id,
                });
            }
        }
        Ok(finished.len())
    }

    async fn count_unfinished(&self, user_id: &str) -> Result<u64> {
        let count = self
            .state()
            .tasks
            .values()
            .filter(|stored| stored.task.user_id == user_id && !stored.task.status.is_terminal())
            .count();
        Ok(count as u64)
    }

    async fn counts(&self) -> Result<Vec<StatusCount>> {
        let mut counts: BTreeMap<(String, TaskStatus), u64> = BTreeMap::new();
        for stored in self.state().tasks.values() {
            *counts
                .entry((stored.task.task_type.clone(), stored.task.status))
                .or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((task_type, status), count)| StatusCount {
                task_type,
                status,
                count,
            })
            .collect())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn subscribe(&self) -> ChangeReceiver {
        self.inner.feed.subscribe()
    }
}
