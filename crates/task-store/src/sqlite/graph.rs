//! The dependency rules' reads and writes ([`GraphTx`]) inside the writer's transaction, and
//! the workflow reads.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};
use task_core::{Dependency, Task, TaskId, Workflow, WorkflowEdge};

use super::error::map_sqlite_error;
use super::rows::{insert_task, select_task, update_task};
use crate::backend::graph::{GraphTx, WorkflowTx};
use crate::{Result, StoreError, TaskChange};

/// A finished task's children, off the primary key.
const CHILDREN: &str = "SELECT child, run_on_failure FROM task_dependencies WHERE parent = ?1";
/// A task's parents, off `idx_task_dependencies_child`.
const PARENTS: &str =
    "SELECT parent, run_on_failure FROM task_dependencies WHERE child = ?1 ORDER BY parent";

/// One write operation's view of the graph: the writer's connection and the changes it will
/// publish after the commit.
pub(super) struct SqliteTx<'a> {
    pub(super) conn: &'a Connection,
    pub(super) changes: &'a mut Vec<TaskChange>,
}

fn parse_id(text: String) -> Result<TaskId> {
    text.parse::<TaskId>()
        .map_err(|e| StoreError::Backend(format!("stored task id is malformed: {e}")))
}

/// The edges `sql` selects for `id`.
pub(super) fn edges(conn: &Connection, sql: &str, id: &TaskId) -> Result<Vec<(TaskId, bool)>> {
    let rows = conn
        .prepare_cached(sql)
        .and_then(|mut statement| {
            statement
                .query_map([id.as_str()], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_sqlite_error)?;
    rows.into_iter()
        .map(|(id, run_on_failure)| Ok((parse_id(id)?, run_on_failure)))
        .collect()
}

/// A task's parents, for readers.
pub(super) fn dependencies(conn: &Connection, id: &TaskId) -> Result<Vec<Dependency>> {
    Ok(edges(conn, PARENTS, id)?
        .into_iter()
        .map(|(parent, run_on_failure)| Dependency {
            parent,
            run_on_failure,
        })
        .collect())
}

/// A workflow record by id.
pub(super) fn workflow(conn: &Connection, id: &str) -> Result<Workflow> {
    let row = conn
        .prepare_cached("SELECT id, user_id, created_at, nodes, edges FROM workflows WHERE id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                    ))
                })
                .optional()
        })
        .map_err(map_sqlite_error)?
        .ok_or(StoreError::NotFound)?;
    let (id, user_id, created_at, nodes, edges) = row;
    let corrupt = |e: serde_json::Error| StoreError::Backend(format!("stored workflow: {e}"));
    let nodes: Vec<(String, TaskId)> = serde_json::from_str(&nodes).map_err(corrupt)?;
    let edges: Vec<WorkflowEdge> = serde_json::from_str(&edges).map_err(corrupt)?;
    Ok(Workflow {
        id,
        user_id,
        created_at,
        nodes,
        edges,
    })
}

impl GraphTx for SqliteTx<'_> {
    fn task(&mut self, id: &TaskId) -> Result<Option<Task>> {
        select_task(self.conn, id)
    }

    fn children(&mut self, parent: &TaskId) -> Result<Vec<(TaskId, bool)>> {
        edges(self.conn, CHILDREN, parent)
    }

    fn parents(&mut self, child: &TaskId) -> Result<Vec<(TaskId, bool)>> {
        edges(self.conn, PARENTS, child)
    }

    fn save(&mut self, task: &Task) -> Result<()> {
        update_task(self.conn, task)?;
        self.changes
            .push(TaskChange::Upserted(Arc::new(task.clone())));
        Ok(())
    }

    fn insert(&mut self, task: &Task, parents: &[Dependency]) -> Result<()> {
        insert_task(self.conn, task)?;
        if !parents.is_empty() {
            let mut statement = self
                .conn
                .prepare_cached(
                    "INSERT INTO task_dependencies (parent, child, run_on_failure) \
                     VALUES (?1, ?2, ?3)",
                )
                .map_err(map_sqlite_error)?;
            for dependency in parents {
                statement
                    .execute(rusqlite::params![
                        dependency.parent.as_str(),
                        task.id.as_str(),
                        dependency.run_on_failure
                    ])
                    .map_err(map_sqlite_error)?;
            }
        }
        self.changes
            .push(TaskChange::Upserted(Arc::new(task.clone())));
        Ok(())
    }
}

impl WorkflowTx for SqliteTx<'_> {
    fn insert_workflow(&mut self, workflow: &Workflow) -> Result<()> {
        let encode = |e: serde_json::Error| StoreError::Backend(format!("encoding JSON: {e}"));
        let nodes = serde_json::to_string(&workflow.nodes).map_err(encode)?;
        let edges = serde_json::to_string(&workflow.edges).map_err(encode)?;
        self.conn
            .prepare_cached(
                "INSERT INTO workflows (id, user_id, created_at, nodes, edges) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut statement| {
                statement.execute(rusqlite::params![
                    workflow.id,
                    workflow.user_id,
                    workflow.created_at,
                    nodes,
                    edges,
                ])
            })
            .map_err(map_sqlite_error)?;
        Ok(())
    }
}
