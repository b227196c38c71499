//! [`task_store::TaskStore::list`]: one query built from the filters that are set, so each
//! variant gets a plan that can use the `(user_id, created_at, id)` or `(created_at, id)` index
//! for keyset paging.
//!
//! Big histories (issue #21, `docs/benchmarks.md`): a single status is a literal in the
//! statement, so even a generic plan of the cached statement can take that status's partial
//! index (`failed`, `cancelled`: migration `0010_history`); a text search is
//! `lower(label) LIKE '%needle%'` (the same match as before), which the trigram indexes of
//! `0010_history` answer, and is planned for its own needle every time (an unnamed statement):
//! whether reading the index's matches or walking the newest tasks is cheaper depends on how
//! common the needle is, which only the needle's own plan can weigh.

use task_core::TaskStatus;
use task_store::backend::rules;
use task_store::{Cursor, ListQuery, Result, TaskPage};
use tokio_postgres::types::ToSql;

use crate::errors::map_db;
use crate::row::{task_columns, tasks_from_rows};
use crate::PostgresStore;

/// A query's SQL and parameters, built together so placeholders always match.
struct Filters<'a> {
    sql: String,
    params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Filters<'a> {
    /// Appends `clause`, in which `{}` stands for the next placeholders, one per parameter.
    fn and(&mut self, clause: &str, params: &[&'a (dyn ToSql + Sync)]) {
        let mut clause = clause.to_owned();
        for param in params {
            self.params.push(*param);
            clause = clause.replacen("{}", &format!("${}", self.params.len()), 1);
        }
        self.sql.push_str(" AND ");
        self.sql.push_str(&clause);
    }
}

/// The parameters of a list query that are not in the [`ListQuery`] as they are.
struct Derived {
    statuses: Vec<&'static str>,
    pattern: Option<String>,
    after: Option<(i64, String)>,
    limit: i64,
}

impl PostgresStore {
    pub(crate) async fn list_tasks(&self, query: &ListQuery) -> Result<TaskPage> {
        query.validate()?;
        let derived = Derived {
            statuses: query
                .statuses
                .iter()
                .map(|s| TaskStatus::as_str(*s))
                .collect(),
            // Folded like the other backends fold (an empty search filters nothing);
            // `lower()` folds the stored text.
            pattern: rules::search_needle(query).map(|needle| like_pattern(&needle)),
            after: query
                .after
                .as_ref()
                .map(|cursor| (cursor.created_at, cursor.id.to_string())),
            // One extra row tells whether another page follows.
            limit: i64::try_from(query.limit)
                .unwrap_or(i64::MAX)
                .saturating_add(1),
        };
        let mut filters = Filters {
            sql: format!(
                "SELECT {} FROM background_tasks WHERE true",
                task_columns("")
            ),
            params: Vec::new(),
        };
        if let Some(user_id) = &query.user_id {
            filters.and("user_id = {}", &[user_id]);
        }
        match derived.statuses.as_slice() {
            [] => {}
            // A fixed word, never caller text.
            [status] => filters.sql.push_str(&format!(" AND status = '{status}'")),
            _ => filters.and("status = ANY({})", &[&derived.statuses]),
        }
        if let Some(task_type) = &query.task_type {
            filters.and("task_type = {}", &[task_type]);
        }
        if let Some(pattern) = &derived.pattern {
            filters.and(
                "(lower(label) LIKE {} OR lower(description) LIKE {})",
                &[pattern, pattern],
            );
        }
        if let Some(from) = &query.created_from {
            filters.and("created_at >= {}", &[from]);
        }
        if let Some(before) = &query.created_before {
            filters.and("created_at < {}", &[before]);
        }
        if let Some((created_at, id)) = &derived.after {
            filters.and("(created_at, id) < ({}, {})", &[created_at, id]);
        }
        filters.sql.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT ${}",
            filters.params.len() + 1
        ));
        filters.params.push(&derived.limit);

        let client = self.client().await?;
        let rows = if derived.pattern.is_some() {
            client.query(filters.sql.as_str(), &filters.params).await
        } else {
            let statement = client.prepare_cached(&filters.sql).await.map_err(map_db)?;
            client.query(&statement, &filters.params).await
        }
        .map_err(map_db)?;
        let mut tasks = tasks_from_rows(&rows)?;
        let more = tasks.len() > query.limit;
        tasks.truncate(query.limit);
        let next = if more {
            tasks.last().map(Cursor::after)
        } else {
            None
        };
        Ok(TaskPage { tasks, next })
    }
}

/// `%needle%` for `LIKE`: a substring match, with `\\`, `%` and `_` in the needle escaped
/// (backslash is `LIKE`'s default escape character).
fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_escape_the_wildcards() {
        for (needle, pattern) in [
            ("historia", "%historia%"),
            ("50_%", "%50\\_\\%%"),
            ("a\\b", "%a\\\\b%"),
            ("", "%%"),
        ] {
            assert_eq!(like_pattern(needle), pattern, "{needle:?}");
        }
    }
}
