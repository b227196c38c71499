//! Completion groups written at once (`src/completions.rs`): completions that end together,
//! over children they share, land whichever groups carry them, and each child is released once
//! its last parent is done. Groups that release a shared child may deadlock on it; PostgreSQL's
//! deadlock error must reach the caller as `Busy`, which the runtime writes again, as here.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use task_core::{NewTask, NewWorkflow, TaskStatus, WorkflowEdge, WorkflowNode};
use task_store::{ClaimRequest, Lease, StoreError, TaskStore};
use tokio::task::JoinSet;

use crate::support::{TestDb, WAIT};

/// Enough parents that completions ending together fill several groups at once.
const PARENTS: usize = 96;
const CHILDREN: usize = 3;
const OWNER: &str = "ada@example.com";

fn node(key: String) -> WorkflowNode {
    WorkflowNode {
        key,
        task: NewTask::new(OWNER, "work"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_in_concurrent_groups_release_shared_children_once() {
    let Some(db) = TestDb::new() else { return };
    let store = Arc::new(db.store().await);
    let nodes = (0..PARENTS)
        .map(|n| node(format!("p{n}")))
        .chain((0..CHILDREN).map(|n| node(format!("c{n}"))))
        .collect();
    let edges = (0..PARENTS)
        .flat_map(|p| {
            (0..CHILDREN).map(move |c| WorkflowEdge {
                parent: format!("p{p}"),
                child: format!("c{c}"),
                run_on_failure: false,
            })
        })
        .collect();
    let (_, tasks) = store
        .create_workflow(NewWorkflow {
            user_id: OWNER.to_owned(),
            nodes,
            edges,
        })
        .await
        .expect("create the workflow");
    let children: Vec<_> = tasks
        .iter()
        .filter(|task| task.status == TaskStatus::Waiting)
        .map(|task| task.id.clone())
        .collect();
    assert_eq!(children.len(), CHILDREN);
    let claimed = store
        .claim(&ClaimRequest {
            worker_id: "worker".to_owned(),
            limit: PARENTS + CHILDREN,
            task_types: Vec::new(),
            lease_for: Duration::from_secs(60),
            max_running_per_user: None,
            now: task_core::now_millis(),
        })
        .await
        .expect("claim the parents");
    assert_eq!(
        claimed.len(),
        PARENTS,
        "the children wait for their parents"
    );

    let mut writers = JoinSet::new();
    for (n, task) in claimed.into_iter().enumerate() {
        let store = Arc::clone(&store);
        writers.spawn(async move {
            // Completions arrive in eight waves half a millisecond apart, so groups are still
            // being written when the next completions come.
            tokio::time::sleep(Duration::from_micros(500 * (n % 8) as u64)).await;
            let lease = Lease::of(&task).expect("a claimed task's lease");
            loop {
                match store.complete(&lease, json!({ "n": n })).await {
                    Err(StoreError::Busy) => continue,
                    other => return other.expect("the completion"),
                }
            }
        });
    }
    let completed = tokio::time::timeout(WAIT, async {
        let mut completed = 0;
        while let Some(task) = writers.join_next().await {
            assert_eq!(task.expect("a writer").status, TaskStatus::Completed);
            completed += 1;
        }
        completed
    })
    .await
    .expect("every completion answered within the wait");
    assert_eq!(completed, PARENTS);
    for child in &children {
        let child = store.get(child).await.expect("the child");
        assert_eq!(child.status, TaskStatus::Pending, "{child:?}");
    }
}
