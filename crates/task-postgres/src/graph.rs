//! Dependencies between tasks on Postgres: the steps of `task_store::backend::graph` (the same
//! step functions, so the rules cannot drift apart) walked with async reads inside one
//! transaction.
//!
//! Every task the walk reads is locked (`FOR UPDATE`) until the transaction ends. That is what
//! releases a child exactly once when its last two parents finish at the same moment in two
//! instances: the second transaction waits for the first's lock on the child and then sees the
//! counter the first left behind. Parents read at creation are locked too, so a parent cannot
//! finish between the check of its status and the commit of the new edge.

use deadpool_postgres::{GenericClient, Transaction};
use task_core::{
    Dependency, NewTask, NewWorkflow, Readiness, Task, TaskId, TaskStatus, UnixMillis, Workflow,
    WorkflowEdge,
};
use task_store::backend::graph::{self, Reopened};
use task_store::backend::rules;
use task_store::{Result, StoreError};

use crate::errors::{corrupt, map_db};
use crate::row::{get, task_from_row};
use crate::sql;
use crate::store::TaskParams;

const CHILDREN: &str = "SELECT child, run_on_failure FROM task_dependencies WHERE parent = $1";
const PARENTS: &str =
    "SELECT parent, run_on_failure FROM task_dependencies WHERE child = $1 ORDER BY parent";
const INSERT_EDGE: &str =
    "INSERT INTO task_dependencies (parent, child, run_on_failure) VALUES ($1, $2, $3)";
const INSERT_WORKFLOW: &str =
    "INSERT INTO workflows (id, user_id, created_at, nodes, edges) VALUES ($1, $2, $3, $4, $5)";
const GET_WORKFLOW: &str =
    "SELECT id, user_id, created_at, nodes, edges FROM workflows WHERE id = $1";

/// One transaction's view of the graph, with every task it wrote, in order, for publishing
/// after the commit.
pub(crate) struct PgTx<'a, 'b> {
    tx: &'a Transaction<'b>,
    pub(crate) changed: Vec<Task>,
}

/// The edges `sql` selects for `id`, on any client.
pub(crate) async fn edges(
    client: &impl GenericClient,
    sql: &str,
    id: &TaskId,
) -> Result<Vec<(TaskId, bool)>> {
    let statement = client.prepare_cached(sql).await.map_err(map_db)?;
    let rows = client
        .query(&statement, &[&id.as_str()])
        .await
        .map_err(map_db)?;
    rows.iter()
        .map(|row| {
            let id: &str = get(row, 0)?;
            let id = id.parse::<TaskId>().map_err(|e| corrupt("task id", e))?;
            Ok((id, get(row, 1)?))
        })
        .collect()
}

/// A task's parents, ordered by parent id.
pub(crate) async fn dependencies(
    client: &impl GenericClient,
    id: &TaskId,
) -> Result<Vec<Dependency>> {
    Ok(edges(client, PARENTS, id)
        .await?
        .into_iter()
        .map(|(parent, run_on_failure)| Dependency {
            parent,
            run_on_failure,
        })
        .collect())
}

/// A workflow record by id.
pub(crate) async fn workflow(client: &impl GenericClient, id: &str) -> Result<Workflow> {
    let row = client
        .query_opt(GET_WORKFLOW, &[&id])
        .await
        .map_err(map_db)?
        .ok_or(StoreError::NotFound)?;
    let nodes: serde_json::Value = get(&row, 3)?;
    let edges: serde_json::Value = get(&row, 4)?;
    let nodes: Vec<(String, TaskId)> =
        serde_json::from_value(nodes).map_err(|e| corrupt("workflow nodes", e))?;
    let edges: Vec<WorkflowEdge> =
        serde_json::from_value(edges).map_err(|e| corrupt("workflow edges", e))?;
    Ok(Workflow {
        id: get(&row, 0)?,
        user_id: get(&row, 1)?,
        created_at: get(&row, 2)?,
        nodes,
        edges,
    })
}

impl<'a, 'b> PgTx<'a, 'b> {
    pub(crate) fn new(tx: &'a Transaction<'b>) -> Self {
        Self {
            tx,
            changed: Vec::new(),
        }
    }

    /// A task by id, locked until the transaction ends.
    pub(crate) async fn task(&self, id: &TaskId) -> Result<Option<Task>> {
        let lock = self
            .tx
            .prepare_cached(&sql::LOCK_TASK)
            .await
            .map_err(map_db)?;
        let row = self
            .tx
            .query_opt(&lock, &[&id.as_str()])
            .await
            .map_err(map_db)?;
        row.map(|row| task_from_row(&row)).transpose()
    }

    /// Processing tasks whose lease expired before `now`, locked.
    pub(crate) async fn expired(&self, now: UnixMillis) -> Result<Vec<Task>> {
        let expired = self
            .tx
            .prepare_cached(&sql::EXPIRED)
            .await
            .map_err(map_db)?;
        let rows = self.tx.query(&expired, &[&now]).await.map_err(map_db)?;
        rows.iter().map(task_from_row).collect()
    }

    /// Writes a changed task and records it for publishing.
    pub(crate) async fn save(&mut self, task: &Task) -> Result<()> {
        let write = self
            .tx
            .prepare_cached(&sql::WRITE_TASK)
            .await
            .map_err(map_db)?;
        self.tx
            .execute(&write, &TaskParams::new(task).all())
            .await
            .map_err(map_db)?;
        self.changed.push(task.clone());
        Ok(())
    }

    async fn insert(&mut self, task: &Task, parents: &[Dependency]) -> Result<()> {
        let insert = self
            .tx
            .prepare_cached(&sql::INSERT_TASK)
            .await
            .map_err(map_db)?;
        self.tx
            .execute(&insert, &TaskParams::new(task).all())
            .await
            .map_err(map_db)?;
        for dependency in parents {
            self.tx
                .execute(
                    INSERT_EDGE,
                    &[
                        &dependency.parent.as_str(),
                        &task.id.as_str(),
                        &dependency.run_on_failure,
                    ],
                )
                .await
                .map_err(map_db)?;
        }
        self.changed.push(task.clone());
        Ok(())
    }

    async fn readiness(&self, parents: &[(TaskId, bool)]) -> Result<Readiness> {
        let mut links = Vec::with_capacity(parents.len());
        for (parent, run_on_failure) in parents {
            let status = self.task(parent).await?.map(|task| task.status);
            links.push((parent, status, *run_on_failure));
        }
        Ok(task_core::readiness(links))
    }

    async fn check_parents(&self, user_id: &str, parents: &[Dependency]) -> Result<()> {
        for dependency in parents {
            match self.task(&dependency.parent).await? {
                Some(parent) if parent.user_id == user_id => {}
                _ => return Err(StoreError::NotFound),
            }
        }
        Ok(())
    }

    async fn insert_with_parents(
        &mut self,
        task: Task,
        parents: &[Dependency],
        now: UnixMillis,
    ) -> Result<Task> {
        let links: Vec<(TaskId, bool)> = parents
            .iter()
            .map(|d| (d.parent.clone(), d.run_on_failure))
            .collect();
        let readiness = self.readiness(&links).await?;
        let task = graph::arm_new(task, readiness, now);
        self.insert(&task, parents).await?;
        Ok(task)
    }

    /// As `graph::create_tasks`.
    pub(crate) async fn create_tasks(
        &mut self,
        new: Vec<NewTask>,
        now: UnixMillis,
    ) -> Result<Vec<Task>> {
        let mut tasks = Vec::with_capacity(new.len());
        for new in new {
            let parents = new.depends_on.clone();
            tasks.push((rules::new_task(new, now)?, parents));
        }
        for (task, parents) in &tasks {
            self.check_parents(&task.user_id, parents).await?;
        }
        let mut created = Vec::with_capacity(tasks.len());
        for (task, parents) in tasks {
            created.push(self.insert_with_parents(task, &parents, now).await?);
        }
        Ok(created)
    }

    /// As `graph::create_workflow`.
    pub(crate) async fn create_workflow(
        &mut self,
        workflow: NewWorkflow,
        now: UnixMillis,
    ) -> Result<(Workflow, Vec<Task>)> {
        let plan = workflow.plan()?;
        for node in &workflow.nodes {
            self.check_parents(&workflow.user_id, &node.task.depends_on)
                .await?;
        }
        let id = graph::new_workflow_id(now)?;
        let mut tasks: Vec<Option<Task>> = vec![None; workflow.nodes.len()];
        for &index in &plan.order {
            let node = &workflow.nodes[index];
            let parents = graph::node_parents(&workflow, &plan, index, &tasks)?;
            let mut task = rules::new_task(node.task.clone(), now)?;
            task.workflow_id = Some(id.clone());
            tasks[index] = Some(self.insert_with_parents(task, &parents, now).await?);
        }
        let tasks: Vec<Task> = tasks.into_iter().flatten().collect();
        let record = graph::workflow_record(id, workflow, &tasks, now);
        let encode = |e: serde_json::Error| StoreError::Backend(format!("encoding JSON: {e}"));
        let nodes = serde_json::to_value(&record.nodes).map_err(encode)?;
        let edges = serde_json::to_value(&record.edges).map_err(encode)?;
        self.tx
            .execute(
                INSERT_WORKFLOW,
                &[
                    &record.id,
                    &record.user_id,
                    &record.created_at,
                    &nodes,
                    &edges,
                ],
            )
            .await
            .map_err(map_db)?;
        Ok((record, tasks))
    }

    /// As `graph::retry`.
    pub(crate) async fn retry(
        &self,
        task: &Task,
        run_at: Option<UnixMillis>,
        now: UnixMillis,
    ) -> Result<Task> {
        let parents = edges(self.tx, PARENTS, &task.id).await?;
        let readiness = self.readiness(&parents).await?;
        graph::retry_with(task, run_at, readiness, now)
    }

    /// As `graph::check_deletable`.
    pub(crate) async fn check_deletable(&self, task: &Task) -> Result<()> {
        rules::check_deletable(task)?;
        for (child, _) in edges(self.tx, CHILDREN, &task.id).await? {
            if self
                .task(&child)
                .await?
                .is_some_and(|child| child.status == TaskStatus::Waiting)
            {
                return Err(StoreError::Conflict(
                    "tasks are waiting for this one; cancel it instead of deleting it".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// As `graph::propagate`.
    pub(crate) async fn propagate(
        &mut self,
        before: TaskStatus,
        after: &Task,
        now: UnixMillis,
    ) -> Result<()> {
        if !graph::concerns_children(before, after.status) {
            return Ok(());
        }
        let mut queue = std::collections::VecDeque::from([(before, after.clone())]);
        while let Some((before, parent)) = queue.pop_front() {
            let finished = !before.is_terminal() && parent.status.is_terminal();
            let reopened = before.is_terminal() && !parent.status.is_terminal();
            if !finished && !reopened {
                continue;
            }
            for (child_id, run_on_failure) in edges(self.tx, CHILDREN, &parent.id).await? {
                let Some(child) = self.task(&child_id).await? else {
                    continue;
                };
                let next = if finished {
                    graph::after_parent_finished(&child, &parent, run_on_failure, now)?
                } else {
                    match graph::after_parent_reopened(&child, run_on_failure, now) {
                        Reopened::Unchanged => None,
                        Reopened::Changed(next) => Some(*next),
                        Reopened::Rearm => {
                            let parents = edges(self.tx, PARENTS, &child.id).await?;
                            let readiness = self.readiness(&parents).await?;
                            graph::rearm(&child, readiness, now)?
                        }
                    }
                };
                if let Some(next) = next {
                    self.save(&next).await?;
                    queue.push_back((child.status, next));
                }
            }
        }
        Ok(())
    }
}
