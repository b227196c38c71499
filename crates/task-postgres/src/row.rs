//! Reading tasks, users and tokens out of rows. Every query selects [`TASK_COLUMNS`] in this
//! order, so the mapping is by position and checked in one place.

use serde_json::Value;
use task_core::{Priority, Task, TaskId, TaskStatus};
use task_store::{Role, StoreError, TokenKind, TokenRecord, User};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::errors::corrupt;

/// The `background_tasks` columns every task query returns, in [`task_from_row`]'s order.
pub(crate) const TASK_COLUMNS: [&str; 26] = [
    "id",
    "user_id",
    "task_type",
    "status",
    "label",
    "description",
    "progress",
    "total",
    "result",
    "error",
    "params",
    "attempt",
    "max_attempts",
    "run_at",
    "lease_owner",
    "lease_token",
    "lease_expires_at",
    "cancel_requested",
    "version",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "waiting_for",
    "workflow_id",
    "priority",
];

/// [`TASK_COLUMNS`] as a select list, each prefixed with `qualifier` (e.g. `t.`).
pub(crate) fn task_columns(qualifier: &str) -> String {
    TASK_COLUMNS
        .iter()
        .map(|column| format!("{qualifier}{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Column `index` of `row`; a type mismatch means the row is not what this build expects.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|e| corrupt("column", format_args!("#{index}: {e}")))
}

/// A task from a row whose first columns are [`TASK_COLUMNS`].
pub(crate) fn task_from_row(row: &Row) -> Result<Task, StoreError> {
    let id: &str = get(row, 0)?;
    let status: &str = get(row, 3)?;
    Ok(Task {
        id: id.parse::<TaskId>().map_err(|e| corrupt("task id", e))?,
        user_id: get(row, 1)?,
        task_type: get(row, 2)?,
        status: status
            .parse::<TaskStatus>()
            .map_err(|e| corrupt("task status", e))?,
        label: get(row, 4)?,
        description: get(row, 5)?,
        progress: get(row, 6)?,
        total: get(row, 7)?,
        result: get::<Option<Value>>(row, 8)?,
        error: get(row, 9)?,
        params: get::<Value>(row, 10)?,
        attempt: get(row, 11)?,
        max_attempts: get(row, 12)?,
        run_at: get(row, 13)?,
        lease_owner: get(row, 14)?,
        lease_token: get(row, 15)?,
        lease_expires_at: get(row, 16)?,
        cancel_requested: get(row, 17)?,
        version: get(row, 18)?,
        created_at: get(row, 19)?,
        updated_at: get(row, 20)?,
        started_at: get(row, 21)?,
        completed_at: get(row, 22)?,
        waiting_for: get(row, 23)?,
        workflow_id: get(row, 24)?,
        priority: Priority::from_rank(get::<i16>(row, 25)?.into())
            .map_err(|e| corrupt("task priority", e))?,
    })
}

/// Every task of `rows`, in order.
pub(crate) fn tasks_from_rows(rows: &[Row]) -> Result<Vec<Task>, StoreError> {
    rows.iter().map(task_from_row).collect()
}

/// A role from its stored name.
pub(crate) fn role_from_str(role: &str) -> Result<Role, StoreError> {
    match role {
        "user" => Ok(Role::User),
        "superuser" => Ok(Role::Superuser),
        other => Err(corrupt("role", other)),
    }
}

/// A token kind's stored name.
pub(crate) fn kind_as_str(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Api => "api",
        TokenKind::Session => "session",
    }
}

fn kind_from_str(kind: &str) -> Result<TokenKind, StoreError> {
    match kind {
        "api" => Ok(TokenKind::Api),
        "session" => Ok(TokenKind::Session),
        other => Err(corrupt("token kind", other)),
    }
}

/// A user from a row whose first columns are `email, role, created_at`.
pub(crate) fn user_from_row(row: &Row) -> Result<User, StoreError> {
    Ok(User {
        email: get(row, 0)?,
        role: role_from_str(get(row, 1)?)?,
        created_at: get(row, 2)?,
    })
}

/// A token from a row whose columns from `offset` on are `id, user_email, kind, label,
/// created_at, expires_at`.
pub(crate) fn token_from_row(row: &Row, offset: usize) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: get(row, offset)?,
        user_email: get(row, offset + 1)?,
        kind: kind_from_str(get(row, offset + 2)?)?,
        label: get(row, offset + 3)?,
        created_at: get(row, offset + 4)?,
        expires_at: get(row, offset + 5)?,
    })
}
