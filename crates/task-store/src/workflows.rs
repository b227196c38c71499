//! Operations on a whole workflow, built from the [`TaskStore`] methods every backend has.

use task_core::{Task, TaskStatus};

use crate::{Result, StoreError, TaskStore};

/// Cancels every unfinished node of workflow `id`: a waiting or pending node at once, a
/// running one by asking its worker to stop (it ends `cancelled` when the handler stops or the
/// grace period ends). Nodes cancelled by the propagation from an earlier node are skipped.
/// Returns every node's task after the call, in node order.
///
/// # Errors
/// `NotFound` for an unknown workflow; a store error stops the walk (the nodes cancelled so far
/// stay cancelled, and calling it again finishes the job).
pub async fn cancel_workflow(store: &dyn TaskStore, id: &str) -> Result<Vec<Task>> {
    let workflow = store.get_workflow(id).await?;
    let mut tasks = Vec::with_capacity(workflow.nodes.len());
    // Children first: cancelling a parent first would cancel them too, but each of those
    // cancels would be one more change to publish per edge.
    for (_, task_id) in workflow.nodes.iter().rev() {
        match store.request_cancel(task_id).await {
            Ok(_) | Err(StoreError::IllegalTransition { .. }) | Err(StoreError::NotFound) => {}
            Err(error) => return Err(error),
        }
    }
    for (_, task_id) in &workflow.nodes {
        match store.get(task_id).await {
            Ok(task) => tasks.push(task),
            Err(StoreError::NotFound) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(tasks)
}

/// Whether every node of a workflow is finished, given its tasks.
pub fn is_finished(tasks: &[Task]) -> bool {
    tasks.iter().all(|task| task.status.is_terminal())
}

/// How many of `tasks` are in `status`.
pub fn count_in(tasks: &[Task], status: TaskStatus) -> usize {
    tasks.iter().filter(|task| task.status == status).count()
}
