//! Listing tasks: the query's filters as SQL, newest first, keyset-paged by `(created_at, id)`.

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::connection::FOLD_FUNCTION;
use super::error::map_sqlite_error;
use super::rows::{task_from_row, TASK_COLUMNS};
use crate::backend::rules;
use crate::{Cursor, ListQuery, Result, TaskPage};

/// One page of tasks matching `query`.
pub(super) fn list(conn: &Connection, query: &ListQuery) -> Result<TaskPage> {
    query.validate()?;
    let (sql, args) = list_sql(query);
    let mut statement = conn.prepare_cached(&sql).map_err(map_sqlite_error)?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(args), task_from_row)
        .map_err(map_sqlite_error)?;
    let mut tasks = rows
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_sqlite_error)?;
    let more = tasks.len() > query.limit;
    tasks.truncate(query.limit);
    let next = if more {
        tasks.last().map(Cursor::after)
    } else {
        None
    };
    Ok(TaskPage { tasks, next })
}

/// The statement for `query` and its arguments. It fetches one row more than the page, which
/// tells whether another page exists, so the last page has no `next`.
pub(super) fn list_sql(query: &ListQuery) -> (String, Vec<SqlValue>) {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM background_tasks WHERE 1 = 1");
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(user_id) = &query.user_id {
        sql.push_str(" AND user_id = ?");
        args.push(SqlValue::Text(user_id.clone()));
    }
    if !query.statuses.is_empty() {
        let marks = vec!["?"; query.statuses.len()].join(", ");
        sql.push_str(&format!(" AND status IN ({marks})"));
        args.extend(
            query
                .statuses
                .iter()
                .map(|status| SqlValue::Text(status.as_str().to_owned())),
        );
    }
    if let Some(task_type) = &query.task_type {
        sql.push_str(" AND task_type = ?");
        args.push(SqlValue::Text(task_type.clone()));
    }
    if let Some(needle) = rules::search_needle(query) {
        sql.push_str(&format!(
            " AND (instr({FOLD_FUNCTION}(label), ?) > 0 \
               OR instr({FOLD_FUNCTION}(description), ?) > 0)"
        ));
        args.push(SqlValue::Text(needle.clone()));
        args.push(SqlValue::Text(needle));
    }
    if let Some(from) = query.created_from {
        sql.push_str(" AND created_at >= ?");
        args.push(SqlValue::Integer(from));
    }
    if let Some(before) = query.created_before {
        sql.push_str(" AND created_at < ?");
        args.push(SqlValue::Integer(before));
    }
    if let Some(after) = &query.after {
        sql.push_str(" AND (created_at, id) < (?, ?)");
        args.push(SqlValue::Integer(after.created_at));
        args.push(SqlValue::Text(after.id.as_str().to_owned()));
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    args.push(SqlValue::Integer(
        i64::try_from(query.limit)
            .unwrap_or(i64::MAX)
            .saturating_add(1),
    ));
    (sql, args)
}
