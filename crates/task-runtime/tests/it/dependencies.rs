//! Dependencies through the runtime, without HTTP: an embedder creates a workflow with the
//! store's API, the runtime runs each node when its parents are done, and a handler reads its
//! parents' results through its context.

use serde_json::{json, Value};
use task_core::{Dependency, NewTask, NewWorkflow, TaskStatus, WorkflowEdge, WorkflowNode};
use task_runtime::{handler_fn, HandlerError, Registry, Runtime, TaskContext};

use crate::support::{config, on_both_stores, wait_status, Harness};

on_both_stores!(
    a_workflow_runs_in_order_and_data_flows_down,
    a_failed_parent_cancels_its_dependents,
);

const USER: &str = "embed@example.com";

fn node(key: &str, task_type: &str, params: Value) -> WorkflowNode {
    WorkflowNode {
        key: key.to_owned(),
        task: NewTask::new(USER, task_type).with_params(params),
    }
}

fn edge(parent: &str, child: &str) -> WorkflowEdge {
    WorkflowEdge {
        parent: parent.to_owned(),
        child: child.to_owned(),
        run_on_failure: false,
    }
}

/// Each `produce` returns its `n`; `sum` adds up its parents' results.
fn registry() -> Registry {
    Registry::new()
        .register(
            "produce",
            handler_fn(|ctx: TaskContext| async move {
                Ok(json!({ "n": ctx.params()["n"].as_i64().unwrap_or_default() }))
            }),
        )
        .register(
            "sum",
            handler_fn(|ctx: TaskContext| async move {
                let results = ctx.parent_results().await?;
                let total: i64 = results.iter().filter_map(|r| r["n"].as_i64()).sum();
                Ok(json!({ "n": total, "parents": results.len() }))
            }),
        )
        .register(
            "explode",
            handler_fn(|_ctx: TaskContext| async move {
                Err::<Value, _>(HandlerError::permanent("boom"))
            }),
        )
}

async fn a_workflow_runs_in_order_and_data_flows_down(h: Harness) {
    let runtime = Runtime::start(h.store.clone(), registry(), config()).unwrap();
    let (_, tasks) = h
        .store
        .create_workflow(NewWorkflow {
            user_id: USER.to_owned(),
            nodes: vec![
                node("a", "produce", json!({"n": 2})),
                node("b", "produce", json!({"n": 3})),
                node("total", "sum", json!({})),
            ],
            edges: vec![edge("a", "total"), edge("b", "total")],
        })
        .await
        .unwrap();
    let total = wait_status(h.store.as_ref(), &tasks[2].id, TaskStatus::Completed).await;
    assert_eq!(total.result, Some(json!({"n": 5, "parents": 2})));

    // An existing task named as a parent works the same way.
    let later = h
        .store
        .create(NewTask::new(USER, "sum").depending_on(Dependency::on(total.id.clone())))
        .await
        .unwrap();
    let later = wait_status(h.store.as_ref(), &later.id, TaskStatus::Completed).await;
    assert_eq!(later.result, Some(json!({"n": 5, "parents": 1})));
    runtime.shutdown().await;
}

async fn a_failed_parent_cancels_its_dependents(h: Harness) {
    let runtime = Runtime::start(h.store.clone(), registry(), config()).unwrap();
    let (_, tasks) = h
        .store
        .create_workflow(NewWorkflow {
            user_id: USER.to_owned(),
            nodes: vec![
                node("bad", "explode", json!({})),
                node("after", "sum", json!({})),
            ],
            edges: vec![edge("bad", "after")],
        })
        .await
        .unwrap();
    wait_status(h.store.as_ref(), &tasks[0].id, TaskStatus::Failed).await;
    let after = wait_status(h.store.as_ref(), &tasks[1].id, TaskStatus::Cancelled).await;
    assert_eq!(
        after.error,
        Some(format!("dependency {} failed", tasks[0].id))
    );
    assert_eq!(after.attempt, 0, "it never ran");
    runtime.shutdown().await;
}
