//! Cases: dependencies between tasks and workflows: readiness, fan-out, fan-in, failure
//! propagation (cancel by default, run anyway when the edge says so), re-arming on retry,
//! cancelling a workflow, and a child released exactly once when its last parents finish
//! concurrently.

use serde_json::json;
use task_core::{
    CoreError, Dependency, NewTask, NewWorkflow, Task, TaskId, TaskStatus, WorkflowEdge,
    WorkflowNode,
};

use super::support::{
    assert_quiet, claim_only, claim_request, expect_err, next_change, now_ms, Store,
};
use crate::{cancel_workflow, Failure, Lease, StoreError, TaskChange};

const USER: &str = "flow@example.com";

async fn get(store: &Store, id: &TaskId) -> Task {
    store.get(id).await.expect("get")
}

/// Claims the due task of `task_type` and completes it.
async fn run_to_completion(store: &Store, task_type: &str) -> Task {
    let (task, lease) = claim_only(store, task_type).await;
    store
        .complete(&lease, json!({"from": task.id.as_str()}))
        .await
        .expect("complete")
}

/// Claims the due task of `task_type` and fails it for good.
async fn run_to_failure(store: &Store, task_type: &str) -> Task {
    let (_, lease) = claim_only(store, task_type).await;
    store
        .fail(&lease, Failure::permanent("boom"))
        .await
        .expect("fail")
}

fn node(key: &str, task_type: &str) -> WorkflowNode {
    WorkflowNode {
        key: key.to_owned(),
        task: NewTask::new(USER, task_type),
    }
}

fn edge(parent: &str, child: &str, run_on_failure: bool) -> WorkflowEdge {
    WorkflowEdge {
        parent: parent.to_owned(),
        child: child.to_owned(),
        run_on_failure,
    }
}

#[track_caller]
fn assert_state(task: &Task, status: TaskStatus, waiting_for: i64) {
    assert_eq!(
        (task.status, task.waiting_for),
        (status, waiting_for),
        "{}",
        task.id
    );
}

/// A task with parents waits for all of them, is never claimed while waiting, and becomes
/// `pending` in the call that completes its last parent.
pub async fn dependencies_wait_for_every_parent(store: Store) {
    let a = store.create(NewTask::new(USER, "dep-a")).await.unwrap();
    let b = store.create(NewTask::new(USER, "dep-b")).await.unwrap();
    let child = store
        .create(
            NewTask::new(USER, "dep-child")
                .depending_on(Dependency::on(a.id.clone()))
                .depending_on(Dependency::on(b.id.clone())),
        )
        .await
        .unwrap();
    assert_state(&child, TaskStatus::Waiting, 2);
    assert_eq!(child.version, 1);
    let parents: Vec<TaskId> = store
        .dependencies(&child.id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.parent)
        .collect();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(parents, expected);
    let none = store
        .claim(&claim_request("w", 10, "dep-child"))
        .await
        .unwrap();
    assert!(none.is_empty(), "a waiting task is never claimed");

    run_to_completion(&store, "dep-a").await;
    let child_now = get(&store, &child.id).await;
    assert_state(&child_now, TaskStatus::Waiting, 1);
    assert_eq!(child_now.version, 2, "each parent's finish is one change");
    run_to_completion(&store, "dep-b").await;
    let released = get(&store, &child.id).await;
    assert_state(&released, TaskStatus::Pending, 0);
    assert_eq!(released.version, 3);
    let (claimed, _) = claim_only(&store, "dep-child").await;
    assert_eq!(claimed.id, child.id);

    // A parent that is already complete counts as done at creation.
    let late = store
        .create(NewTask::new(USER, "dep-late").depending_on(Dependency::on(a.id.clone())))
        .await
        .unwrap();
    assert_state(&late, TaskStatus::Pending, 0);
}

/// A parent that does not exist, or belongs to someone else, is `NotFound`, and nothing is
/// written.
pub async fn dependencies_on_foreign_or_unknown_tasks_are_not_found(store: Store) {
    let theirs = store
        .create(NewTask::new("other@example.com", "dep-theirs"))
        .await
        .unwrap();
    let unknown: TaskId = "task_1_abcdefabcdef".parse().unwrap();
    for parent in [theirs.id.clone(), unknown] {
        expect_err(
            store
                .create(NewTask::new(USER, "dep-mine").depending_on(Dependency::on(parent)))
                .await,
            "create with a foreign parent",
            |e| *e == StoreError::NotFound,
        );
        let mut with_parent = node("b", "dep-mine");
        with_parent.task = with_parent
            .task
            .depending_on(Dependency::on(theirs.id.clone()));
        expect_err(
            store
                .create_workflow(NewWorkflow {
                    user_id: USER.to_owned(),
                    nodes: vec![node("a", "dep-mine"), with_parent],
                    edges: vec![],
                })
                .await,
            "workflow with a foreign parent",
            |e| *e == StoreError::NotFound,
        );
    }
    let counts = store.counts().await.unwrap();
    assert!(
        counts.iter().all(|c| c.task_type != "dep-mine"),
        "nothing was written: {counts:?}"
    );
}

/// A bad graph is refused with a reason and writes nothing; an unknown workflow is
/// `NotFound`.
pub async fn workflows_reject_bad_graphs(store: Store) {
    let cases = [
        (vec![edge("a", "b", false), edge("b", "a", false)], "cycle"),
        (vec![edge("a", "a", false)], "self-edge"),
        (vec![edge("a", "zz", false)], "unknown node key"),
    ];
    for (edges, reason) in cases {
        let result = store
            .create_workflow(NewWorkflow {
                user_id: USER.to_owned(),
                nodes: vec![node("a", "dep-bad"), node("b", "dep-bad")],
                edges,
            })
            .await;
        expect_err(
            result,
            reason,
            |e| matches!(e, StoreError::Invalid(CoreError::InvalidWorkflow(text)) if text.contains(reason)),
        );
    }
    assert!(store.counts().await.unwrap().is_empty(), "nothing written");
    expect_err(store.get_workflow("wf_1_nope").await, "unknown", |e| {
        *e == StoreError::NotFound
    });
}

/// root → three middles → sink: the root's completion releases the middles, the sink waits
/// for all three and is released by the last.
pub async fn workflows_fan_out_and_fan_in(store: Store) {
    let (workflow, tasks) = store
        .create_workflow(NewWorkflow {
            user_id: USER.to_owned(),
            nodes: vec![
                node("sink", "fan-sink"),
                node("root", "fan-root"),
                node("m1", "fan-mid"),
                node("m2", "fan-mid"),
                node("m3", "fan-mid"),
            ],
            edges: vec![
                edge("root", "m1", false),
                edge("root", "m2", false),
                edge("root", "m3", false),
                edge("m1", "sink", false),
                edge("m2", "sink", false),
                edge("m3", "sink", false),
            ],
        })
        .await
        .expect("create workflow");
    assert!(workflow.id.starts_with("wf_"));
    assert_eq!(tasks.len(), 5);
    let keys: Vec<&str> = workflow.nodes.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["sink", "root", "m1", "m2", "m3"], "request order");
    for ((_, id), task) in workflow.nodes.iter().zip(&tasks) {
        assert_eq!(*id, task.id);
        assert_eq!(task.workflow_id.as_deref(), Some(workflow.id.as_str()));
    }
    assert_state(&tasks[0], TaskStatus::Waiting, 3);
    assert_state(&tasks[1], TaskStatus::Pending, 0);
    for mid in &tasks[2..] {
        assert_state(mid, TaskStatus::Waiting, 1);
    }
    assert_eq!(store.get_workflow(&workflow.id).await.unwrap(), workflow);

    run_to_completion(&store, "fan-root").await;
    let mids = store
        .claim(&claim_request("w", 10, "fan-mid"))
        .await
        .unwrap();
    assert_eq!(mids.len(), 3, "the root released every middle");
    for (done, mid) in mids.iter().enumerate() {
        assert_state(
            &get(&store, &tasks[0].id).await,
            TaskStatus::Waiting,
            3 - done as i64,
        );
        let lease = Lease::of(mid).unwrap();
        store.complete(&lease, json!(done)).await.unwrap();
    }
    assert_state(&get(&store, &tasks[0].id).await, TaskStatus::Pending, 0);
}

/// a → b (cancel edge) → d, and a → c (run-anyway edge). a failing for good cancels b (the
/// error names a) and d (naming b), and releases c. Retrying a re-arms b and d; c, already
/// released, is left alone; a's completion then releases b.
pub async fn failure_cancels_dependents_and_retry_rearms_them(store: Store) {
    let (_, tasks) = store
        .create_workflow(NewWorkflow {
            user_id: USER.to_owned(),
            nodes: vec![
                node("a", "prop-a"),
                node("b", "prop-b"),
                node("c", "prop-c"),
                node("d", "prop-d"),
            ],
            edges: vec![
                edge("a", "b", false),
                edge("a", "c", true),
                edge("b", "d", false),
            ],
        })
        .await
        .unwrap();
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| tasks[i].id.clone());
    run_to_failure(&store, "prop-a").await;
    let b_now = get(&store, &b).await;
    assert_state(&b_now, TaskStatus::Cancelled, 0);
    assert_eq!(b_now.error, Some(format!("dependency {a} failed")));
    assert!(b_now.completed_at.is_some());
    let d_now = get(&store, &d).await;
    assert_state(&d_now, TaskStatus::Cancelled, 0);
    assert_eq!(d_now.error, Some(format!("dependency {b} was cancelled")));
    assert_state(&get(&store, &c).await, TaskStatus::Pending, 0);

    // b cannot be retried alone while a still blocks it.
    expect_err(
        store.retry(&b, None).await,
        "retry of b",
        |e| matches!(e, StoreError::Conflict(text) if text.contains(a.as_str())),
    );

    let retried = store.retry(&a, None).await.unwrap();
    assert_state(&retried, TaskStatus::Pending, 0);
    let b_now = get(&store, &b).await;
    assert_state(&b_now, TaskStatus::Waiting, 1);
    assert_eq!(b_now.error, None);
    assert_eq!(b_now.completed_at, None);
    assert_state(&get(&store, &d).await, TaskStatus::Waiting, 1);
    assert_state(&get(&store, &c).await, TaskStatus::Pending, 0);

    run_to_completion(&store, "prop-a").await;
    assert_state(&get(&store, &b).await, TaskStatus::Pending, 0);
    assert_state(&get(&store, &d).await, TaskStatus::Waiting, 1);
}

/// A cancelled parent cancels its dependents too; a run-anyway child still waiting for
/// another parent keeps waiting for that one only, and waits for the first again if it is
/// retried.
pub async fn cancel_propagates_and_run_anyway_edges_recount(store: Store) {
    let a = store.create(NewTask::new(USER, "cp-a")).await.unwrap();
    let b = store.create(NewTask::new(USER, "cp-b")).await.unwrap();
    let strict = store
        .create(NewTask::new(USER, "cp-strict").depending_on(Dependency::on(a.id.clone())))
        .await
        .unwrap();
    let lenient = store
        .create(
            NewTask::new(USER, "cp-lenient")
                .depending_on(Dependency {
                    parent: a.id.clone(),
                    run_on_failure: true,
                })
                .depending_on(Dependency::on(b.id.clone())),
        )
        .await
        .unwrap();
    let cancelled = store.request_cancel(&a.id).await.unwrap();
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    let strict_now = get(&store, &strict.id).await;
    assert_state(&strict_now, TaskStatus::Cancelled, 0);
    assert_eq!(
        strict_now.error,
        Some(format!("dependency {} was cancelled", a.id))
    );
    assert_state(&get(&store, &lenient.id).await, TaskStatus::Waiting, 1);

    store.retry(&a.id, None).await.unwrap();
    assert_state(&get(&store, &lenient.id).await, TaskStatus::Waiting, 2);
    assert_state(&get(&store, &strict.id).await, TaskStatus::Waiting, 1);

    // A task others wait for cannot be deleted; a waiting task can be cancelled.
    expect_err(store.delete(&b.id).await, "delete of b", |e| {
        matches!(e, StoreError::Conflict(_))
    });
    let stopped = store.request_cancel(&lenient.id).await.unwrap();
    assert_state(&stopped, TaskStatus::Cancelled, 0);
    store.delete(&b.id).await.expect("nothing waits for b now");
}

/// Cancelling a workflow cancels every unfinished node and leaves finished ones alone; a
/// running node is asked to stop.
pub async fn cancelling_a_workflow_cancels_unfinished_nodes(store: Store) {
    let (workflow, tasks) = store
        .create_workflow(NewWorkflow {
            user_id: USER.to_owned(),
            nodes: vec![
                node("done", "wc-done"),
                node("running", "wc-running"),
                node("next", "wc-next"),
                node("last", "wc-last"),
            ],
            edges: vec![
                edge("done", "next", false),
                edge("running", "next", false),
                edge("next", "last", false),
            ],
        })
        .await
        .unwrap();
    run_to_completion(&store, "wc-done").await;
    claim_only(&store, "wc-running").await;
    let after = cancel_workflow(store.as_ref(), &workflow.id).await.unwrap();
    let by_id = |id: &TaskId| after.iter().find(|t| t.id == *id).unwrap().clone();
    assert_eq!(by_id(&tasks[0].id).status, TaskStatus::Completed);
    let running = by_id(&tasks[1].id);
    assert!(running.status == TaskStatus::Processing && running.cancel_requested);
    assert_eq!(by_id(&tasks[2].id).status, TaskStatus::Cancelled);
    assert_eq!(by_id(&tasks[3].id).status, TaskStatus::Cancelled);
    expect_err(
        cancel_workflow(store.as_ref(), "wf_1_unknown").await,
        "unknown workflow",
        |e| *e == StoreError::NotFound,
    );
}

/// Two parents of the same child complete at the same moment, many times over: the child is
/// released exactly once each time (one release change, `version` 3, `waiting_for` 0).
pub async fn concurrent_last_parents_release_a_child_once(store: Store) {
    for round in 0..20 {
        let task_type = format!("race-{round}");
        let a = store.create(NewTask::new(USER, &task_type)).await.unwrap();
        let b = store.create(NewTask::new(USER, &task_type)).await.unwrap();
        let child = store
            .create(
                NewTask::new(USER, "race-child")
                    .depending_on(Dependency::on(a.id.clone()))
                    .depending_on(Dependency::on(b.id.clone())),
            )
            .await
            .unwrap();
        let claimed = store
            .claim(&claim_request("w", 10, &task_type))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        let finishes = claimed.iter().map(|task| {
            let store = store.clone();
            let lease = Lease::of(task).unwrap();
            tokio::spawn(async move { store.complete(&lease, json!(null)).await })
        });
        for finish in finishes.collect::<Vec<_>>() {
            finish.await.unwrap().expect("complete");
        }
        let released = get(&store, &child.id).await;
        assert_state(&released, TaskStatus::Pending, 0);
        assert_eq!(released.version, 3, "round {round}: released exactly once");
        let (claimed_child, lease) = claim_only(&store, "race-child").await;
        assert_eq!(claimed_child.id, child.id);
        store.complete(&lease, json!(null)).await.unwrap();
    }
}

/// The per-user queue limit counts `waiting` tasks as unfinished beside `pending` and
/// `processing` ones, so a chain of waiting steps cannot grow a user's queue past the limit;
/// a waiting task that is cancelled stops counting.
pub async fn count_unfinished_counts_waiting_tasks(store: Store) {
    let parent = store.create(NewTask::new(USER, "dep-count")).await.unwrap();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let child = store
            .create(NewTask::new(USER, "dep-count").depending_on(Dependency::on(parent.id.clone())))
            .await
            .unwrap();
        assert_state(&child, TaskStatus::Waiting, 1);
        waiting.push(child);
    }
    assert_eq!(
        store.count_unfinished(USER).await.unwrap(),
        4,
        "1 pending + 3 waiting"
    );
    store.request_cancel(&waiting[0].id).await.unwrap();
    assert_eq!(store.count_unfinished(USER).await.unwrap(), 3);
    assert_eq!(
        store.count_unfinished("other@example.com").await.unwrap(),
        0
    );
}

/// A completion releases a wide fan-out in its own call, each child written and published
/// once, after the parent: every waiting child one parent less (and `pending`, due now, at
/// none), a child with a later `run_at` due then, a child another parent still holds waiting,
/// and a child already cancelled by a failed parent left alone. Two parents of one child
/// completed together count it down twice (one version each, as one at a time would).
pub async fn a_completion_releases_a_wide_fan_out_once(store: Store) {
    const WIDE: usize = 150;
    let root = store.create(NewTask::new(USER, "wide-root")).await.unwrap();
    let other = store
        .create(NewTask::new(USER, "wide-other"))
        .await
        .unwrap();
    let mut children = Vec::new();
    for _ in 0..WIDE {
        let child = NewTask::new(USER, "wide-child").depending_on(Dependency::on(root.id.clone()));
        children.push(store.create(child).await.unwrap());
    }
    let later = now_ms() + 3_600_000;
    let mut late = NewTask::new(USER, "wide-late").depending_on(Dependency::on(root.id.clone()));
    late.run_at = Some(later);
    let late = store.create(late).await.unwrap();
    let held = NewTask::new(USER, "wide-held")
        .depending_on(Dependency::on(root.id.clone()))
        .depending_on(Dependency::on(other.id.clone()));
    let held = store.create(held).await.unwrap();
    let failing = store.create(NewTask::new(USER, "wide-fail")).await.unwrap();
    let blocked = NewTask::new(USER, "wide-blocked")
        .depending_on(Dependency::on(root.id.clone()))
        .depending_on(Dependency::on(failing.id.clone()));
    let blocked = store.create(blocked).await.unwrap();
    run_to_failure(&store, "wide-fail").await;
    let blocked = get(&store, &blocked.id).await;
    assert_state(&blocked, TaskStatus::Cancelled, 0);
    let grandchild = NewTask::new(USER, "wide-grandchild")
        .depending_on(Dependency::on(children[0].id.clone()))
        .depending_on(Dependency::on(children[1].id.clone()))
        .depending_on(Dependency::on(other.id.clone()));
    let grandchild = store.create(grandchild).await.unwrap();
    assert_state(&grandchild, TaskStatus::Waiting, 3);

    let mut feed = store.subscribe();
    let before = now_ms();
    let completed = run_to_completion(&store, "wide-root").await;
    let mut published = std::collections::HashMap::new();
    loop {
        let TaskChange::Upserted(task) = next_change(&mut feed).await else {
            panic!("only upserts are expected");
        };
        if task.id == root.id {
            assert_eq!(task.status, TaskStatus::Processing, "the claim comes first");
            let TaskChange::Upserted(done) = next_change(&mut feed).await else {
                panic!("only upserts are expected");
            };
            assert_eq!(done.id, root.id, "the completion comes before any release");
            assert_eq!(done.status, TaskStatus::Completed);
            continue;
        }
        assert!(
            published.insert(task.id.clone(), task).is_none(),
            "a child is published once"
        );
        if published.len() == WIDE + 2 {
            break;
        }
    }
    assert_quiet(&mut feed);
    for child in &children {
        let now = get(&store, &child.id).await;
        assert_state(&now, TaskStatus::Pending, 0);
        assert_eq!(now.version, child.version + 1, "one change per child");
        assert!(now.run_at >= before && now.run_at <= now_ms(), "due now");
        assert!(now.updated_at >= completed.completed_at.unwrap());
        assert_eq!(
            published[&child.id].as_ref(),
            &now,
            "the feed shows the stored row"
        );
    }
    let late_now = get(&store, &late.id).await;
    assert_state(&late_now, TaskStatus::Pending, 0);
    assert_eq!(late_now.run_at, later, "a later run_at is kept");
    let held_now = get(&store, &held.id).await;
    assert_state(&held_now, TaskStatus::Waiting, 1);
    assert_eq!(held_now.version, held.version + 1);
    assert_eq!(
        get(&store, &blocked.id).await,
        blocked,
        "a cancelled child is left alone"
    );

    // Both middles claimed, then completed concurrently (one group where a backend groups).
    let claimed = store
        .claim(&claim_request("w", 2 * WIDE, "wide-child"))
        .await
        .unwrap();
    assert_eq!(claimed.len(), WIDE, "every child was released");
    let pair: Vec<_> = claimed
        .iter()
        .filter(|task| task.id == children[0].id || task.id == children[1].id)
        .map(|task| {
            let store = store.clone();
            let lease = Lease::of(task).unwrap();
            tokio::spawn(async move { store.complete(&lease, json!(null)).await })
        })
        .collect();
    for finish in pair {
        finish.await.unwrap().expect("complete");
    }
    let counted = get(&store, &grandchild.id).await;
    assert_state(&counted, TaskStatus::Waiting, 1);
    assert_eq!(
        counted.version,
        grandchild.version + 2,
        "one version per parent"
    );
}
