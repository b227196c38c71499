//! [`TaskStore`] for [`MemoryStore`]: the shared rules applied to a map under one lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use task_core::{NewTask, Task, TaskId, TaskStatus, UnixMillis};

use super::{MemoryStore, State, StoredTask};
use crate::backend::clock::now_millis;
use crate::backend::fair_claim::{FairPicker, Offer};
use crate::backend::lease_token::new_lease_token;
use crate::backend::rules;
use crate::guard::{self, Decision};
use crate::{
    ChangeReceiver, ClaimRequest, CreateGuard, Failure, Guarded, Lease, ListQuery, Result,
    StatusCount, StoreError, TaskChange, TaskPage, TaskStore,
};

impl MemoryStore {
    /// Applies `change` to the task `id` and publishes the result; nothing changes on error.
    fn update(&self, id: &TaskId, change: impl FnOnce(&Task) -> Result<Task>) -> Result<Task> {
        let mut state = self.state();
        let stored = state.tasks.get_mut(id).ok_or(StoreError::NotFound)?;
        let next = change(&stored.task)?;
        stored.task = next.clone();
        self.publish_upsert(&next);
        Ok(next)
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

    fn insert_all(&self, tasks: Vec<Task>) -> Vec<Task> {
        let mut state = self.state();
        for task in &tasks {
            let seq = state.next_seq();
            state.tasks.insert(
                task.id.clone(),
                StoredTask {
                    seq,
                    task: task.clone(),
                },
            );
            self.publish_upsert(task);
        }
        tasks
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

fn pick(state: &State, request: &ClaimRequest) -> Vec<TaskId> {
    let due = due_tasks(state, request);
    let Some(max_running) = request.max_running_per_user else {
        return due
            .into_iter()
            .take(request.limit)
            .map(|stored| stored.task.id.clone())
            .collect();
    };
    let mut running: HashMap<String, u64> = HashMap::new();
    for stored in state.tasks.values() {
        if stored.task.status == TaskStatus::Processing {
            *running.entry(stored.task.user_id.clone()).or_default() += 1;
        }
    }
    let mut picker = FairPicker::new(request.limit, max_running, running);
    for stored in due {
        if picker.offer(&stored.task.user_id, stored.task.id.clone()) == Offer::Done {
            break;
        }
    }
    picker.finish()
}

#[async_trait]
impl TaskStore for MemoryStore {
    async fn create(&self, new: NewTask) -> Result<Task> {
        let task = rules::new_task(new, now_millis())?;
        Ok(self.insert_all(vec![task]).remove(0))
    }

    async fn create_many(&self, new: Vec<NewTask>) -> Result<Vec<Task>> {
        let now = now_millis();
        let tasks = new
            .into_iter()
            .map(|new| rules::new_task(new, now))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.insert_all(tasks))
    }

    async fn create_guarded(&self, new: NewTask, guard: CreateGuard) -> Result<Guarded> {
        guard.validate()?;
        let now = now_millis();
        let task = rules::new_task(new, now)?;
        let user = task.user_id.clone();
        let key_slot = guard
            .idempotency
            .as_ref()
            .map(|claim| (user.clone(), claim.key.clone()));
        let unique_slot = guard.unique_key.clone().map(|key| (user.clone(), key));
        let mut state = self.state();
        let stored_key = key_slot
            .as_ref()
            .and_then(|slot| state.idempotency.get(slot));
        let twin = unique_slot
            .as_ref()
            .and_then(|slot| state.unique_keys.get(slot))
            .and_then(|id| state.tasks.get(id))
            .map(|stored| &stored.task);
        let (answer, created) = match guard::decide(&guard, stored_key, twin, now) {
            Decision::Answer(answer) => return Ok(answer),
            Decision::ReturnTwin(twin) => (twin, false),
            Decision::Create => {
                let seq = state.next_seq();
                state.tasks.insert(
                    task.id.clone(),
                    StoredTask {
                        seq,
                        task: task.clone(),
                    },
                );
                if let Some(slot) = unique_slot {
                    state.unique_keys.insert(slot, task.id.clone());
                }
                self.publish_upsert(&task);
                (task, true)
            }
        };
        if let (Some(claim), Some(slot)) = (&guard.idempotency, key_slot) {
            state
                .idempotency
                .insert(slot, guard::record(claim, &answer, created, now));
        }
        Ok(if created {
            Guarded::Created(answer)
        } else {
            Guarded::Existing(answer)
        })
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
        let mut state = self.state();
        let stored = state.tasks.get_mut(id).ok_or(StoreError::NotFound)?;
        if let Some(next) = rules::request_cancel(&stored.task, now)? {
            stored.task = next;
            self.publish_upsert(&stored.task);
        }
        Ok(stored.task.clone())
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
        self.update(id, |task| rules::retry(task, run_at, now))
    }

    async fn release(&self, lease: &Lease) -> Result<Task> {
        let now = now_millis();
        self.update_leased(lease, |task| rules::release(task, lease, now))
    }

    async fn rescue_expired(&self, now: UnixMillis) -> Result<Vec<Task>> {
        let mut state = self.state();
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
        let rescued = expired
            .iter()
            .filter_map(|(_, _, id)| state.tasks.get(id))
            .map(|stored| rules::rescue(&stored.task, now))
            .collect::<Result<Vec<_>>>()?;
        for task in &rescued {
            if let Some(stored) = state.tasks.get_mut(&task.id) {
                stored.task = task.clone();
                self.publish_upsert(task);
            }
        }
        Ok(rescued)
    }

    async fn delete(&self, id: &TaskId) -> Result<()> {
        let mut state = self.state();
        let stored = state.tasks.get(id).ok_or(StoreError::NotFound)?;
        rules::check_deletable(&stored.task)?;
        if let Some(removed) = state.tasks.remove(id) {
            self.inner.feed.publish(TaskChange::Deleted {
                id: removed.task.id,
                user_id: removed.task.user_id,
            });
        }
        Ok(())
    }

    async fn purge_finished(&self, before: UnixMillis, limit: usize) -> Result<usize> {
        let mut state = self.state();
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
