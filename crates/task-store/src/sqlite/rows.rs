//! Converting between `background_tasks` rows and [`Task`], and the statements that read and
//! write one task.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::Value;
use task_core::{Priority, Task, TaskId, TaskStatus};

use super::error::map_sqlite_error;
use crate::{Result, StoreError};

/// Every column of a task, in the order [`task_from_row`] reads them, as a string literal:
/// statements that name them are put together with `concat!` at compile time. Formatting
/// them on every call cost the writer about 3 % of its time under creation load, since the
/// statement cache is keyed by the text.
macro_rules! task_columns {
    () => {
        "id, user_id, task_type, status, label, description, progress, total, result, error, \
         params, attempt, max_attempts, run_at, lease_owner, lease_token, lease_expires_at, \
         cancel_requested, version, created_at, updated_at, started_at, completed_at, \
         waiting_for, workflow_id, priority"
    };
}
pub(crate) use task_columns;

/// [`task_columns!`] as a constant, for statements built at run time.
pub(crate) const TASK_COLUMNS: &str = task_columns!();

fn conversion<E>(index: usize, error: E) -> rusqlite::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
}

fn json_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Value>> {
    row.get::<_, Option<String>>(index)?
        .map(|text| serde_json::from_str(&text).map_err(|e| conversion(index, e)))
        .transpose()
}

/// Reads a row selected with [`TASK_COLUMNS`].
pub(crate) fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    let id: String = row.get(0)?;
    let status: String = row.get(3)?;
    Ok(Task {
        id: id.parse::<TaskId>().map_err(|e| conversion(0, e))?,
        user_id: row.get(1)?,
        task_type: row.get(2)?,
        status: status.parse::<TaskStatus>().map_err(|e| conversion(3, e))?,
        label: row.get(4)?,
        description: row.get(5)?,
        progress: row.get(6)?,
        total: row.get(7)?,
        result: json_column(row, 8)?,
        error: row.get(9)?,
        params: json_column(row, 10)?.unwrap_or(Value::Null),
        attempt: row.get(11)?,
        max_attempts: row.get(12)?,
        run_at: row.get(13)?,
        lease_owner: row.get(14)?,
        lease_token: row.get(15)?,
        lease_expires_at: row.get(16)?,
        cancel_requested: row.get(17)?,
        version: row.get(18)?,
        created_at: row.get(19)?,
        updated_at: row.get(20)?,
        started_at: row.get(21)?,
        completed_at: row.get(22)?,
        waiting_for: row.get(23)?,
        workflow_id: row.get(24)?,
        priority: Priority::from_rank(row.get(25)?).map_err(|e| conversion(25, e))?,
    })
}

/// JSON text for a column; serialising a `Value` cannot fail, but the error is still typed.
pub(crate) fn json_text(value: &Value) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("encoding JSON: {e}")))
}

/// The task with this id, read inside the caller's transaction.
pub(crate) fn select_task(conn: &Connection, id: &TaskId) -> Result<Option<Task>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        task_columns!(),
        " FROM background_tasks WHERE id = ?1"
    ))
    .and_then(|mut statement| statement.query_row([id.as_str()], task_from_row).optional())
    .map_err(map_sqlite_error)
}

/// Stores a new task.
pub(crate) fn insert_task(conn: &Connection, task: &Task) -> Result<()> {
    let result = task.result.as_ref().map(json_text).transpose()?;
    let params = json_text(&task.params)?;
    let mut statement = conn
        .prepare_cached(concat!(
            "INSERT INTO background_tasks (",
            task_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
             ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)"
        ))
        .map_err(map_sqlite_error)?;
    statement
        .execute(rusqlite::params![
            task.id.as_str(),
            task.user_id,
            task.task_type,
            task.status.as_str(),
            task.label,
            task.description,
            task.progress,
            task.total,
            result,
            task.error,
            params,
            task.attempt,
            task.max_attempts,
            task.run_at,
            task.lease_owner,
            task.lease_token,
            task.lease_expires_at,
            task.cancel_requested,
            task.version,
            task.created_at,
            task.updated_at,
            task.started_at,
            task.completed_at,
            task.waiting_for,
            task.workflow_id,
            task.priority.rank(),
        ])
        .map_err(map_sqlite_error)?;
    Ok(())
}

/// Writes every column an operation may change (identity, owner, type, params and creation
/// time never change).
pub(crate) fn update_task(conn: &Connection, task: &Task) -> Result<()> {
    let result = task.result.as_ref().map(json_text).transpose()?;
    let mut statement = conn
        .prepare_cached(
            "UPDATE background_tasks SET status = ?2, description = ?3, progress = ?4, \
             result = ?5, error = ?6, attempt = ?7, run_at = ?8, lease_owner = ?9, \
             lease_token = ?10, lease_expires_at = ?11, cancel_requested = ?12, version = ?13, \
             updated_at = ?14, started_at = ?15, completed_at = ?16, waiting_for = ?17 \
             WHERE id = ?1",
        )
        .map_err(map_sqlite_error)?;
    let changed = statement
        .execute(rusqlite::params![
            task.id.as_str(),
            task.status.as_str(),
            task.description,
            task.progress,
            result,
            task.error,
            task.attempt,
            task.run_at,
            task.lease_owner,
            task.lease_token,
            task.lease_expires_at,
            task.cancel_requested,
            task.version,
            task.updated_at,
            task.started_at,
            task.completed_at,
            task.waiting_for,
        ])
        .map_err(map_sqlite_error)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}
