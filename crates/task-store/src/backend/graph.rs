//! Dependencies between tasks: how a backend creates tasks with parents and what happens to
//! the children when a parent finishes or is retried, written once over [`GraphTx`], the few
//! reads and writes a backend does inside its write transaction.
//!
//! The counter: a `waiting` task's `waiting_for` is the number of its parents that are not
//! finished in a way that satisfies their edge ([`task_core::edge_satisfied`]). Each parent's
//! finish decrements it by one, in the transaction that finishes the parent, so releasing a
//! child costs one row write per edge and needs no loop that could miss it after a crash. The
//! backends that run synchronously inside their transaction (SQLite, memory) use [`propagate`]
//! directly; task-postgres walks the same steps with its own async reads, calling the same step
//! functions ([`after_parent_finished`], [`after_parent_reopened`], [`rearm`]). One hot case
//! is written as SQL instead: SQLite's grouped completions count down the children of the
//! tasks they completed with one statement (`sqlite/completions.rs`), since a completed
//! parent only ever decrements (it satisfies every edge) and a fan-out released child by
//! child through [`GraphTx`] dominated a large workflow's drain.

use std::collections::VecDeque;

use task_core::{
    dependency_error, readiness, Dependency, NewTask, NewWorkflow, Readiness, Task, TaskId,
    TaskStatus, UnixMillis, Workflow, WorkflowPlan,
};

use crate::backend::rules;
use crate::{Result, StoreError};

/// The reads and writes the dependency rules need, inside one backend transaction.
pub trait GraphTx {
    /// A task by id, as the transaction sees it.
    fn task(&mut self, id: &TaskId) -> Result<Option<Task>>;
    /// The children of `parent` and whether each edge runs on failure.
    fn children(&mut self, parent: &TaskId) -> Result<Vec<(TaskId, bool)>>;
    /// The parents of `child` and whether each edge runs on failure.
    fn parents(&mut self, child: &TaskId) -> Result<Vec<(TaskId, bool)>>;
    /// Writes a changed task and records the change for the feed.
    fn save(&mut self, task: &Task) -> Result<()>;
    /// Stores a new task and its edges from `parents`, and records it for the feed.
    fn insert(&mut self, task: &Task, parents: &[Dependency]) -> Result<()>;
}

/// Checks that every parent exists and belongs to `user_id`; another user's task is
/// `NotFound`, never a hint that it exists.
pub fn check_parents(tx: &mut impl GraphTx, user_id: &str, parents: &[Dependency]) -> Result<()> {
    for dependency in parents {
        match tx.task(&dependency.parent)? {
            Some(parent) if parent.user_id == user_id => {}
            _ => return Err(StoreError::NotFound),
        }
    }
    Ok(())
}

/// The readiness of a task with `parents`, read through `tx`.
pub fn readiness_of(tx: &mut impl GraphTx, parents: &[(TaskId, bool)]) -> Result<Readiness> {
    let mut links = Vec::with_capacity(parents.len());
    for (parent, run_on_failure) in parents {
        let status = tx.task(parent)?.map(|task| task.status);
        links.push((parent, status, *run_on_failure));
    }
    Ok(readiness(links))
}

/// A new task as its parents leave it: `pending` when they are all done, `waiting` for the
/// unfinished ones, or `cancelled` (naming the parent) when one failed over a cancel edge.
pub fn arm_new(mut task: Task, readiness: Readiness, now: UnixMillis) -> Task {
    match readiness {
        Readiness::Ready => {}
        Readiness::Waiting(count) => {
            task.status = TaskStatus::Waiting;
            task.waiting_for = count;
        }
        Readiness::Blocked { parent, status } => {
            task.status = TaskStatus::Cancelled;
            task.error = Some(dependency_error(&parent, status));
            task.completed_at = Some(now);
        }
    }
    task
}

/// Creates `task` (already built by [`rules::new_task`]) with edges from `parents`, which the
/// caller checked with [`check_parents`].
pub fn insert_with_parents(
    tx: &mut impl GraphTx,
    task: Task,
    parents: &[Dependency],
    now: UnixMillis,
) -> Result<Task> {
    let links: Vec<(TaskId, bool)> = parents
        .iter()
        .map(|d| (d.parent.clone(), d.run_on_failure))
        .collect();
    let readiness = readiness_of(tx, &links)?;
    let task = arm_new(task, readiness, now);
    tx.insert(&task, parents)?;
    Ok(task)
}

/// What a waiting `child` becomes when `parent` has just finished: one parent less (and
/// `pending` at the last), or `cancelled` when the parent failed over a cancel edge. `None`
/// when the child is not waiting (already cancelled by another parent, say).
pub fn after_parent_finished(
    child: &Task,
    parent: &Task,
    run_on_failure: bool,
    now: UnixMillis,
) -> Result<Option<Task>> {
    if child.status != TaskStatus::Waiting {
        return Ok(None);
    }
    let mut next = child.clone();
    if task_core::edge_satisfied(parent.status, run_on_failure) {
        next.waiting_for = (child.waiting_for - 1).max(0);
        if next.waiting_for == 0 {
            next.status = child.status.transition(TaskStatus::Pending)?;
            next.run_at = child.run_at.max(now);
        }
    } else {
        next.status = child.status.transition(TaskStatus::Cancelled)?;
        next.waiting_for = 0;
        next.error = Some(dependency_error(&parent.id, parent.status));
        next.completed_at = Some(now);
    }
    rules::touch(&mut next, now);
    Ok(Some(next))
}

/// What a child becomes when its finished `parent` was retried: over a run-anyway edge a
/// waiting child waits for it again; over a cancel edge a cancelled child is re-armed (see
/// [`rearm`]), which needs its parents' readiness, so that case returns `Rearm`.
pub fn after_parent_reopened(child: &Task, run_on_failure: bool, now: UnixMillis) -> Reopened {
    match (child.status, run_on_failure) {
        (TaskStatus::Waiting, true) => {
            let mut next = child.clone();
            next.waiting_for += 1;
            rules::touch(&mut next, now);
            Reopened::Changed(Box::new(next))
        }
        (TaskStatus::Cancelled, false) => Reopened::Rearm,
        _ => Reopened::Unchanged,
    }
}

/// The answer of [`after_parent_reopened`].
#[derive(Debug, Clone, PartialEq)]
pub enum Reopened {
    /// The child is not affected.
    Unchanged,
    /// The child changed to this.
    Changed(Box<Task>),
    /// The child is cancelled over a cancel edge: re-arm it with [`rearm`].
    Rearm,
}

/// A cancelled child whose parent was retried, given its parents' readiness: waiting (or
/// pending) again with a full set of attempts, as a manual retry would leave it. `None` while
/// another parent still blocks it.
pub fn rearm(child: &Task, readiness: Readiness, now: UnixMillis) -> Result<Option<Task>> {
    match readiness {
        Readiness::Blocked { .. } => Ok(None),
        ready => retry_with(child, None, ready, now).map(Some),
    }
}

/// A manual retry of a task with parents: `waiting` while some are unfinished, `pending` when
/// none are; refused with `Conflict` while a parent that failed still blocks it.
pub fn retry_with(
    task: &Task,
    run_at: Option<UnixMillis>,
    readiness: Readiness,
    now: UnixMillis,
) -> Result<Task> {
    let mut next = rules::retry(task, run_at, now)?;
    if let Readiness::Blocked { parent, status } = &readiness {
        return Err(StoreError::Conflict(format!(
            "{}; retry that task first",
            dependency_error(parent, *status)
        )));
    }
    if let Readiness::Waiting(count) = readiness {
        next.status = task.status.transition(TaskStatus::Waiting)?;
        next.waiting_for = count;
    }
    Ok(next)
}

/// A manual retry through `tx`: reads the task's parents first.
pub fn retry(
    tx: &mut impl GraphTx,
    task: &Task,
    run_at: Option<UnixMillis>,
    now: UnixMillis,
) -> Result<Task> {
    let parents = tx.parents(&task.id)?;
    let readiness = readiness_of(tx, &parents)?;
    retry_with(task, run_at, readiness, now)
}

/// A task with children still waiting for it cannot be deleted: they would wait forever.
pub fn check_deletable(tx: &mut impl GraphTx, task: &Task) -> Result<()> {
    rules::check_deletable(task)?;
    for (child, _) in tx.children(&task.id)? {
        if tx
            .task(&child)?
            .is_some_and(|child| child.status == TaskStatus::Waiting)
        {
            return Err(StoreError::Conflict(
                "tasks are waiting for this one; cancel it instead of deleting it".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Whether a move from `before` to `after` concerns the task's children: it finished, or a
/// finished task was retried.
pub fn concerns_children(before: TaskStatus, after: TaskStatus) -> bool {
    before.is_terminal() != after.is_terminal()
}

/// Carries a task's change from `before` to `after` (already saved) to its descendants, in the
/// caller's transaction: releases or cancels children of a task that finished, re-arms
/// children of a task that was retried, and so on down the graph.
pub fn propagate(
    tx: &mut impl GraphTx,
    before: TaskStatus,
    after: &Task,
    now: UnixMillis,
) -> Result<()> {
    if !concerns_children(before, after.status) {
        return Ok(());
    }
    let mut queue = VecDeque::from([(before, after.clone())]);
    while let Some((before, parent)) = queue.pop_front() {
        let finished = !before.is_terminal() && parent.status.is_terminal();
        let reopened = before.is_terminal() && !parent.status.is_terminal();
        if !finished && !reopened {
            continue;
        }
        for (child_id, run_on_failure) in tx.children(&parent.id)? {
            let Some(child) = tx.task(&child_id)? else {
                continue;
            };
            let next = if finished {
                after_parent_finished(&child, &parent, run_on_failure, now)?
            } else {
                match after_parent_reopened(&child, run_on_failure, now) {
                    Reopened::Unchanged => None,
                    Reopened::Changed(next) => Some(*next),
                    Reopened::Rearm => {
                        let parents = tx.parents(&child.id)?;
                        let readiness = readiness_of(tx, &parents)?;
                        rearm(&child, readiness, now)?
                    }
                }
            };
            if let Some(next) = next {
                tx.save(&next)?;
                queue.push_back((child.status, next));
            }
        }
    }
    Ok(())
}

/// Stores the record of a new workflow.
pub trait WorkflowTx: GraphTx {
    /// Inserts the workflow row.
    fn insert_workflow(&mut self, workflow: &Workflow) -> Result<()>;
}

/// A new workflow id, `wf_<unix-ms>_<80 random bits>`.
pub fn new_workflow_id(now: UnixMillis) -> Result<String> {
    let id = TaskId::generate(now).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(format!("wf_{}", id.as_str().trim_start_matches("task_")))
}

/// Creates tasks that may name existing parents, checking every parent before writing
/// anything.
pub fn create_tasks(
    tx: &mut impl GraphTx,
    new: Vec<NewTask>,
    now: UnixMillis,
) -> Result<Vec<Task>> {
    let tasks = new
        .into_iter()
        .map(|new| {
            let parents = new.depends_on.clone();
            rules::new_task(new, now).map(|task| (task, parents))
        })
        .collect::<Result<Vec<_>>>()?;
    for (task, parents) in &tasks {
        check_parents(tx, &task.user_id, parents)?;
    }
    tasks
        .into_iter()
        .map(|(task, parents)| insert_with_parents(tx, task, &parents, now))
        .collect()
}

/// The parents of workflow node `index`: the tasks it names by id, then its parents inside the
/// workflow, which `plan.order` has created before it (`created`, by node index). Every backend's
/// workflow creation builds a node's parents here.
///
/// # Errors
/// [`StoreError::Backend`] when a parent was not created first (a broken plan).
pub fn node_parents(
    workflow: &NewWorkflow,
    plan: &WorkflowPlan,
    index: usize,
    created: &[Option<Task>],
) -> Result<Vec<Dependency>> {
    let mut parents = workflow.nodes[index].task.depends_on.clone();
    for &(parent, run_on_failure) in &plan.parents[index] {
        let parent = created[parent]
            .as_ref()
            .ok_or_else(|| StoreError::Backend("workflow order broken".to_owned()))?;
        parents.push(Dependency {
            parent: parent.id.clone(),
            run_on_failure,
        });
    }
    Ok(parents)
}

/// The stored record of a workflow whose nodes were created as `tasks` (in node order).
pub fn workflow_record(
    id: String,
    workflow: NewWorkflow,
    tasks: &[Task],
    now: UnixMillis,
) -> Workflow {
    Workflow {
        id,
        user_id: workflow.user_id,
        created_at: now,
        nodes: workflow
            .nodes
            .iter()
            .zip(tasks)
            .map(|(node, task)| (node.key.clone(), task.id.clone()))
            .collect(),
        edges: workflow.edges,
    }
}

/// Creates a whole workflow: checks the graph and every parent, then inserts the nodes
/// parents first, so each node's readiness is computed from parents already written.
pub fn create_workflow(
    tx: &mut impl WorkflowTx,
    workflow: NewWorkflow,
    now: UnixMillis,
) -> Result<(Workflow, Vec<Task>)> {
    let plan = workflow.plan()?;
    for node in &workflow.nodes {
        check_parents(tx, &workflow.user_id, &node.task.depends_on)?;
    }
    let id = new_workflow_id(now)?;
    let mut tasks: Vec<Option<Task>> = vec![None; workflow.nodes.len()];
    for &index in &plan.order {
        let node = &workflow.nodes[index];
        let parents = node_parents(&workflow, &plan, index, &tasks)?;
        let mut task = rules::new_task(node.task.clone(), now)?;
        task.workflow_id = Some(id.clone());
        tasks[index] = Some(insert_with_parents(tx, task, &parents, now)?);
    }
    let tasks: Vec<Task> = tasks.into_iter().flatten().collect();
    let record = workflow_record(id, workflow, &tasks, now);
    tx.insert_workflow(&record)?;
    Ok((record, tasks))
}
