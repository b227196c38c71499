//! Guarded creation on SQLite: the idempotency and unique-key records ([`GuardTx`]) read and
//! written in one operation of the writer's transaction, with the task (so in one commit,
//! undone together by the operation's savepoint). The steps are
//! [`crate::backend::guarded`]'s.

use rusqlite::{params, Connection, OptionalExtension};
use task_core::{TaskId, Workflow};

use super::error::map_sqlite_error;
use super::graph::SqliteTx;
use crate::backend::guarded::GuardTx;
use crate::guard::StoredIdempotency;
use crate::{Result, StoreError};

const SELECT_KEY: &str = "SELECT fingerprint, task, created, created_at FROM idempotency_keys \
     WHERE user_id = ?1 AND idem_key = ?2";
const UPSERT_KEY: &str = "INSERT OR REPLACE INTO idempotency_keys \
     (user_id, idem_key, fingerprint, task, created, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const SELECT_UNIQUE: &str =
    "SELECT task_id FROM task_unique_keys WHERE user_id = ?1 AND unique_key = ?2";
const UPSERT_UNIQUE: &str =
    "INSERT OR REPLACE INTO task_unique_keys (user_id, unique_key, task_id) \
     VALUES (?1, ?2, ?3)";

impl GuardTx for SqliteTx<'_> {
    fn idempotency(&mut self, user: &str, key: &str) -> Result<Option<StoredIdempotency>> {
        read_key(self.conn, user, key)
    }

    fn record_idempotency(
        &mut self,
        user: &str,
        key: &str,
        record: &StoredIdempotency,
    ) -> Result<()> {
        let snapshot = serde_json::to_string(&record.task)
            .map_err(|e| StoreError::Backend(format!("encoding an idempotency record: {e}")))?;
        execute(
            self.conn,
            UPSERT_KEY,
            params![
                user,
                key,
                record.fingerprint,
                snapshot,
                record.created,
                record.created_at
            ],
        )
    }

    fn unique_key(&mut self, user: &str, key: &str) -> Result<Option<TaskId>> {
        let id: Option<String> = self
            .conn
            .prepare_cached(SELECT_UNIQUE)
            .and_then(|mut statement| {
                statement
                    .query_row(params![user, key], |row| row.get(0))
                    .optional()
            })
            .map_err(map_sqlite_error)?;
        id.map(|id| {
            id.parse::<TaskId>()
                .map_err(|e| StoreError::Backend(format!("a stored unique key: {e}")))
        })
        .transpose()
    }

    fn record_unique_key(&mut self, user: &str, key: &str, task: &TaskId) -> Result<()> {
        execute(self.conn, UPSERT_UNIQUE, params![user, key, task.as_str()])
    }

    fn workflow(&mut self, id: &str) -> Result<Workflow> {
        super::graph::workflow(self.conn, id)
    }
}

fn execute(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map(drop)
        .map_err(map_sqlite_error)
}

fn read_key(conn: &Connection, user: &str, key: &str) -> Result<Option<StoredIdempotency>> {
    let row = conn
        .prepare_cached(SELECT_KEY)
        .and_then(|mut statement| {
            statement
                .query_row(params![user, key], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, bool>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .optional()
        })
        .map_err(map_sqlite_error)?;
    row.map(|(fingerprint, task, created, created_at)| {
        let task = serde_json::from_str(&task)
            .map_err(|e| StoreError::Backend(format!("a stored idempotency record: {e}")))?;
        Ok(StoredIdempotency {
            fingerprint,
            task,
            created,
            created_at,
        })
    })
    .transpose()
}
