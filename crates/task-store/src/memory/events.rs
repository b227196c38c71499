//! [`TaskEventLog`] for [`MemoryStore`]: each task's events live in its map entry, so they go
//! when the task goes; appends are checked against the lease under the state lock.

use async_trait::async_trait;
use serde_json::Value;
use task_core::TaskId;

use super::MemoryStore;
use crate::backend::clock::now_millis;
use crate::backend::rules;
use crate::{EventReceiver, Lease, Result, StoreError, TaskEvent, TaskEventLog};

#[async_trait]
impl TaskEventLog for MemoryStore {
    async fn append_event(&self, lease: &Lease, item: Value) -> Result<TaskEvent> {
        let mut state = self.state();
        let stored = state
            .tasks
            .get_mut(&lease.task_id)
            .ok_or(StoreError::LeaseLost)?;
        rules::check_lease(&stored.task, lease)?;
        let event = TaskEvent {
            task_id: stored.task.id.clone(),
            user_id: stored.task.user_id.clone(),
            seq: stored.events.len() as i64 + 1,
            attempt: stored.task.attempt,
            item,
            created_at: now_millis(),
        };
        stored.events.push(event.clone());
        // Published under the lock, so the feed order is the append order.
        self.inner.events.publish(event.clone());
        Ok(event)
    }

    async fn events_after(&self, id: &TaskId, after: i64) -> Result<Vec<TaskEvent>> {
        let state = self.state();
        Ok(state
            .tasks
            .get(id)
            .map(|stored| {
                stored
                    .events
                    .iter()
                    .filter(|event| event.seq > after)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn subscribe_events(&self) -> EventReceiver {
        self.inner.events.subscribe()
    }
}
