//! [`TaskEventLog`] for [`SqliteStore`]: the `task_events` table (migration 0004), appended on
//! the writer connection in one savepoint that checks the lease first, read from the pool.

use async_trait::async_trait;
use rusqlite::OptionalExtension;
use serde_json::Value;
use task_core::TaskId;

use super::rows::json_text;
use super::SqliteStore;
use crate::backend::clock::now_millis;
use crate::{map_sqlite_error, EventReceiver, Lease, Result, StoreError, TaskEvent, TaskEventLog};

#[async_trait]
impl TaskEventLog for SqliteStore {
    async fn append_event(&self, lease: &Lease, item: Value) -> Result<TaskEvent> {
        let lease = lease.clone();
        let text = json_text(&item)?;
        let now = now_millis();
        let event = self
            .write(move |conn, _changes| {
                let holder: Option<(String, i64)> = conn
                    .query_row(
                        "SELECT user_id, attempt FROM background_tasks \
                         WHERE id = ?1 AND status = 'processing' AND lease_token = ?2",
                        rusqlite::params![lease.task_id.as_str(), lease.token],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()
                    .map_err(map_sqlite_error)?;
                let (user_id, attempt) = holder.ok_or(StoreError::LeaseLost)?;
                let seq: i64 = conn
                    .query_row(
                        "INSERT INTO task_events (task_id, seq, attempt, item, created_at) \
                         SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4 \
                         FROM task_events WHERE task_id = ?1 \
                         RETURNING seq",
                        rusqlite::params![lease.task_id.as_str(), attempt, text, now],
                        |row| row.get(0),
                    )
                    .map_err(map_sqlite_error)?;
                Ok(TaskEvent {
                    task_id: lease.task_id.clone(),
                    user_id,
                    seq,
                    attempt,
                    item,
                    created_at: now,
                })
            })
            .await?;
        // After the commit. One worker appends to a task at a time, so per task the feed order
        // is the append order.
        self.inner.events.publish(event.clone());
        Ok(event)
    }

    async fn events_after(&self, id: &TaskId, after: i64) -> Result<Vec<TaskEvent>> {
        let id = id.clone();
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT e.seq, e.attempt, e.item, e.created_at, t.user_id \
                     FROM task_events e JOIN background_tasks t ON t.id = e.task_id \
                     WHERE e.task_id = ?1 AND e.seq > ?2 ORDER BY e.seq",
                )
                .map_err(map_sqlite_error)?;
            let rows = statement
                .query_map(rusqlite::params![id.as_str(), after], |row| {
                    let text: String = row.get(2)?;
                    Ok((row.get(0)?, row.get(1)?, text, row.get(3)?, row.get(4)?))
                })
                .map_err(map_sqlite_error)?;
            let mut events = Vec::new();
            for row in rows {
                let (seq, attempt, text, created_at, user_id): (i64, i64, String, i64, String) =
                    row.map_err(map_sqlite_error)?;
                let item = serde_json::from_str(&text)
                    .map_err(|e| StoreError::Backend(format!("task_events {id} #{seq}: {e}")))?;
                events.push(TaskEvent {
                    task_id: id.clone(),
                    user_id,
                    seq,
                    attempt,
                    item,
                    created_at,
                });
            }
            Ok(events)
        })
        .await
    }

    fn subscribe_events(&self) -> EventReceiver {
        self.inner.events.subscribe()
    }
}
