//! [`ScheduleStore`] for [`MemoryStore`]: the shared schedule rules applied under the store's
//! one lock, so a firing's run record and its task appear together or not at all.

use std::cmp::Reverse;

use super::{MemoryStore, StoredRun};
use crate::backend::clock::now_millis;
use crate::backend::{rules, schedule_rules};
use crate::schedules::{Fired, Firing, RunKind, Schedule, ScheduleRun, ScheduleSpec};
use crate::{Result, ScheduleStore, StoreError};
use async_trait::async_trait;
use task_core::UnixMillis;

#[async_trait]
impl ScheduleStore for MemoryStore {
    async fn create_schedule(&self, user_id: &str, spec: ScheduleSpec) -> Result<Schedule> {
        let schedule = schedule_rules::new_schedule(user_id, spec, now_millis())?;
        self.state()
            .schedules
            .insert(schedule.id.clone(), schedule.clone());
        Ok(schedule)
    }

    async fn get_schedule(&self, id: &str) -> Result<Schedule> {
        self.state()
            .schedules
            .get(id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list_schedules(&self, user_id: Option<&str>) -> Result<Vec<Schedule>> {
        let state = self.state();
        let mut schedules: Vec<Schedule> = state
            .schedules
            .values()
            .filter(|s| user_id.is_none_or(|user| s.user_id == user))
            .cloned()
            .collect();
        schedules.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(schedules)
    }

    async fn update_schedule(&self, id: &str, spec: ScheduleSpec) -> Result<Schedule> {
        let mut state = self.state();
        let stored = state.schedules.get_mut(id).ok_or(StoreError::NotFound)?;
        let next = schedule_rules::updated_schedule(stored, spec, now_millis())?;
        *stored = next.clone();
        Ok(next)
    }

    async fn delete_schedule(&self, id: &str) -> Result<()> {
        let mut state = self.state();
        state.schedules.remove(id).ok_or(StoreError::NotFound)?;
        state.schedule_runs.remove(id);
        Ok(())
    }

    async fn fire_schedule(&self, firing: Firing) -> Result<Fired> {
        let now = now_millis();
        let mut state = self.state();
        let schedule = state
            .schedules
            .get(&firing.schedule_id)
            .ok_or(StoreError::NotFound)?;
        schedule_rules::check_firing(schedule, &firing)?;
        let fired_through = firing.fired_through_after(schedule.fired_through);
        let taken = firing.kind != RunKind::Manual
            && state
                .schedule_runs
                .get(&firing.schedule_id)
                .is_some_and(|runs| {
                    runs.iter().any(|run| {
                        run.kind != RunKind::Manual && run.scheduled_at == firing.scheduled_at
                    })
                });
        if taken {
            return Ok(Fired::AlreadyFired);
        }
        let task = firing
            .task
            .map(|new| rules::new_task(new, now))
            .transpose()?;
        if let Some(schedule) = state.schedules.get_mut(&firing.schedule_id) {
            schedule.fired_through = fired_through;
        }
        state
            .schedule_runs
            .entry(firing.schedule_id)
            .or_default()
            .push(StoredRun {
                scheduled_at: firing.scheduled_at,
                kind: firing.kind,
                task_id: task.as_ref().map(|t| t.id.clone()),
                recorded_at: now,
            });
        let Some(task) = task else {
            return Ok(Fired::Recorded);
        };
        self.insert_locked(&mut state, &task);
        Ok(Fired::Created(Box::new(task)))
    }

    async fn schedule_runs(&self, id: &str, limit: usize) -> Result<Vec<ScheduleRun>> {
        self.runs_where(id, limit, |_| true)
    }

    async fn schedule_task_runs(&self, id: &str, limit: usize) -> Result<Vec<ScheduleRun>> {
        self.runs_where(id, limit, |run| run.task_id.is_some())
    }

    async fn purge_schedule_runs(&self, before: UnixMillis, limit: usize) -> Result<usize> {
        let mut guard = self.state();
        let state = &mut *guard;
        let mut left = limit;
        for runs in state.schedule_runs.values_mut() {
            runs.retain(|run| {
                let status = run
                    .task_id
                    .as_ref()
                    .and_then(|task_id| state.tasks.get(task_id))
                    .map(|stored| stored.task.status);
                let purge =
                    left > 0 && schedule_rules::run_is_purgeable(run.scheduled_at, status, before);
                if purge {
                    left -= 1;
                }
                !purge
            });
        }
        Ok(limit - left)
    }
}

impl MemoryStore {
    /// The newest `limit` runs of schedule `id` that `keep` accepts.
    fn runs_where(
        &self,
        id: &str,
        limit: usize,
        keep: impl Fn(&StoredRun) -> bool,
    ) -> Result<Vec<ScheduleRun>> {
        schedule_rules::check_runs_limit(limit)?;
        let state = self.state();
        if !state.schedules.contains_key(id) {
            return Err(StoreError::NotFound);
        }
        let mut runs: Vec<&StoredRun> = state
            .schedule_runs
            .get(id)
            .map(|runs| runs.iter().filter(|run| keep(run)).collect())
            .unwrap_or_default();
        runs.sort_by_key(|run| Reverse((run.scheduled_at, run.recorded_at)));
        Ok(runs
            .into_iter()
            .take(limit)
            .map(|run| ScheduleRun {
                schedule_id: id.to_owned(),
                scheduled_at: run.scheduled_at,
                kind: run.kind,
                task_id: run.task_id.clone(),
                task_status: run
                    .task_id
                    .as_ref()
                    .and_then(|task_id| state.tasks.get(task_id))
                    .map(|stored| stored.task.status),
                recorded_at: run.recorded_at,
            })
            .collect())
    }
}
