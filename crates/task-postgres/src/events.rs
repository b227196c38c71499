//! [`TaskEventLog`] for [`PostgresStore`]: the `task_events` table (migration 4). An append
//! is one statement that locks the task row while it checks the lease, so appends to a task
//! are serialised and numbered without gaps; events are read back from any instance, which is
//! what lets a stream reconnecting to another instance replay what it missed.
//!
//! The feed ([`TaskEventLog::subscribe_events`]) is shared by every instance like the change
//! feed: an append is published locally at once and notified (batched, after the commit) on the
//! schema's events channel; each store's listener reads the named rows and publishes other
//! instances' appends, so a live stream on any instance gets them as they are stored.

use async_trait::async_trait;
use serde_json::Value;
use task_core::TaskId;
use task_store::backend::clock::now_millis;
use task_store::{EventReceiver, Lease, Result, StoreError, TaskEvent, TaskEventLog};

use crate::errors::{corrupt, map_db};
use crate::PostgresStore;

/// Checks the lease (locking the task row) and appends the next event.
const APPEND: &str = "WITH holder AS ( \
        SELECT id, user_id, attempt FROM background_tasks \
        WHERE id = $1 AND status = 'processing' AND lease_token = $2 \
        FOR UPDATE \
    ) \
    INSERT INTO task_events (task_id, seq, attempt, item, created_at) \
    SELECT h.id, COALESCE((SELECT MAX(e.seq) FROM task_events e WHERE e.task_id = h.id), 0) + 1, \
           h.attempt, $3, $4 \
    FROM holder h \
    RETURNING seq, attempt, (SELECT user_id FROM holder)";

/// A task's events after a sequence number, with the owner.
const AFTER: &str = "SELECT e.seq, e.attempt, e.item, e.created_at, t.user_id \
    FROM task_events e JOIN background_tasks t ON t.id = e.task_id \
    WHERE e.task_id = $1 AND e.seq > $2 ORDER BY e.seq";

#[async_trait]
impl TaskEventLog for PostgresStore {
    async fn append_event(&self, lease: &Lease, item: Value) -> Result<TaskEvent> {
        let client = self.client().await?;
        let statement = client.prepare_cached(APPEND).await.map_err(map_db)?;
        let now = now_millis();
        let row = client
            .query_opt(
                &statement,
                &[&lease.task_id.as_str(), &lease.token, &item, &now],
            )
            .await
            .map_err(map_db)?
            .ok_or(StoreError::LeaseLost)?;
        let event = TaskEvent {
            task_id: lease.task_id.clone(),
            user_id: row.try_get(2).map_err(|e| corrupt("task event", e))?,
            seq: row.try_get(0).map_err(|e| corrupt("task event", e))?,
            attempt: row.try_get(1).map_err(|e| corrupt("task event", e))?,
            item,
            created_at: now,
        };
        // After the commit: here at once, other instances through their listeners.
        self.appended(&event);
        Ok(event)
    }

    async fn events_after(&self, id: &TaskId, after: i64) -> Result<Vec<TaskEvent>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(AFTER).await.map_err(map_db)?;
        let rows = client
            .query(&statement, &[&id.as_str(), &after])
            .await
            .map_err(map_db)?;
        rows.iter()
            .map(|row| {
                let field = |e| corrupt("task event", e);
                Ok(TaskEvent {
                    task_id: id.clone(),
                    seq: row.try_get(0).map_err(field)?,
                    attempt: row.try_get(1).map_err(field)?,
                    item: row.try_get(2).map_err(field)?,
                    created_at: row.try_get(3).map_err(field)?,
                    user_id: row.try_get(4).map_err(field)?,
                })
            })
            .collect()
    }

    fn subscribe_events(&self) -> EventReceiver {
        self.inner.publisher.subscribe_events()
    }
}
