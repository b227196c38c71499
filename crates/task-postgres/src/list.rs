//! [`task_store::TaskStore::list`]: one query built from the filters that are set, so each
//! variant gets a plan that can use the `(user_id, created_at, id)` or `(created_at, id)` index
//! for keyset paging.

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
    needle: Option<String>,
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
            needle: rules::search_needle(query),
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
        if !derived.statuses.is_empty() {
            filters.and("status = ANY({})", &[&derived.statuses]);
        }
        if let Some(task_type) = &query.task_type {
            filters.and("task_type = {}", &[task_type]);
        }
        if let Some(needle) = &derived.needle {
            filters.and(
                "(strpos(lower(label), {}) > 0 OR strpos(lower(description), {}) > 0)",
                &[needle, needle],
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
        let statement = client.prepare_cached(&filters.sql).await.map_err(map_db)?;
        let rows = client
            .query(&statement, &filters.params)
            .await
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
