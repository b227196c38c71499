//! Guarded creation on SQLite: reading the idempotency record and the unique key's task, and
//! writing the task with both records, in one operation of the writer's transaction (so in one
//! commit, undone together by the operation's savepoint).

use rusqlite::{params, Connection, OptionalExtension};
use task_core::{Task, TaskId};

use super::error::map_sqlite_error;
use super::rows::{insert_task, select_task};
use crate::guard::{self, CreateGuard, Decision, Guarded, StoredIdempotency};
use crate::{Result, StoreError, TaskChange};

const SELECT_KEY: &str = "SELECT fingerprint, task, created, created_at FROM idempotency_keys \
     WHERE user_id = ?1 AND idem_key = ?2";
const UPSERT_KEY: &str = "INSERT OR REPLACE INTO idempotency_keys \
     (user_id, idem_key, fingerprint, task, created, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const SELECT_UNIQUE: &str =
    "SELECT task_id FROM task_unique_keys WHERE user_id = ?1 AND unique_key = ?2";
const UPSERT_UNIQUE: &str =
    "INSERT OR REPLACE INTO task_unique_keys (user_id, unique_key, task_id) \
     VALUES (?1, ?2, ?3)";

/// Runs a guarded create of the validated `task` inside the writer's transaction.
pub(super) fn create_guarded(
    conn: &Connection,
    task: Task,
    guard: &CreateGuard,
    changes: &mut Vec<TaskChange>,
) -> Result<Guarded> {
    let now = task.created_at;
    let user = task.user_id.clone();
    let user = user.as_str();
    let stored_key = match &guard.idempotency {
        Some(claim) => read_key(conn, user, &claim.key)?,
        None => None,
    };
    let twin = match &guard.unique_key {
        Some(key) => read_twin(conn, user, key)?,
        None => None,
    };
    let (answer, created) = match guard::decide(guard, stored_key.as_ref(), twin.as_ref(), now) {
        Decision::Answer(answer) => return Ok(answer),
        Decision::ReturnTwin(twin) => (twin, false),
        Decision::Create => {
            insert_task(conn, &task)?;
            if let Some(key) = &guard.unique_key {
                execute(conn, UPSERT_UNIQUE, params![user, key, task.id.as_str()])?;
            }
            changes.push(TaskChange::Upserted(std::sync::Arc::new(task.clone())));
            (task, true)
        }
    };
    if let Some(claim) = &guard.idempotency {
        let snapshot = serde_json::to_string(&answer)
            .map_err(|e| StoreError::Backend(format!("encoding an idempotency record: {e}")))?;
        execute(
            conn,
            UPSERT_KEY,
            params![user, claim.key, claim.fingerprint, snapshot, created, now],
        )?;
    }
    Ok(if created {
        Guarded::Created(answer)
    } else {
        Guarded::Existing(answer)
    })
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

fn read_twin(conn: &Connection, user: &str, key: &str) -> Result<Option<Task>> {
    let id: Option<String> = conn
        .prepare_cached(SELECT_UNIQUE)
        .and_then(|mut statement| {
            statement
                .query_row(params![user, key], |row| row.get(0))
                .optional()
        })
        .map_err(map_sqlite_error)?;
    match id {
        None => Ok(None),
        Some(id) => {
            let id = id
                .parse::<TaskId>()
                .map_err(|e| StoreError::Backend(format!("a stored unique key: {e}")))?;
            select_task(conn, &id)
        }
    }
}
