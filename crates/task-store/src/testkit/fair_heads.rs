//! Cases: a fair claim meets each user at its oldest due task after every write that moves a
//! task in or out of `pending` or changes when it is due. Stores may keep each user's oldest
//! pending task aside (SQLite's and PostgreSQL's `background_task_heads`); a stale one shows up
//! here as a user skipped, met out of order or offered a task it no longer has.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use task_core::{NewTask, NewWorkflow, Priority, Task, WorkflowEdge, WorkflowNode};

use super::support::{id_set, ids, now_ms, Store, LEASE_MS};
use crate::{ClaimRequest, Failure, Lease};

/// A fair claim of `limit` tasks of `types` at `now`, `max_running` per user.
fn fair_at(types: &[&str], limit: usize, max_running: u32, now: i64) -> ClaimRequest {
    ClaimRequest {
        worker_id: "heads-worker".to_owned(),
        limit,
        task_types: types.iter().map(|t| (*t).to_owned()).collect(),
        lease_for: Duration::from_millis(LEASE_MS as u64),
        max_running_per_user: Some(max_running),
        now,
    }
}

/// Creates one task per `(user, task type, run_at offset)`, due `base + offset`.
async fn create_due(store: &Store, base: i64, plan: &[(&str, &str, i64)]) -> Vec<Task> {
    let batch: Vec<NewTask> = plan
        .iter()
        .map(|(user, task_type, offset)| NewTask::new(*user, *task_type).with_run_at(base + offset))
        .collect();
    store.create_many(batch).await.expect("create_many")
}

fn lease(task: &Task) -> Lease {
    Lease::of(task).expect("a claimed task holds a lease")
}

/// A released task and a rescued one are pending again and due at once: the next fair claim
/// meets their users at them.
pub async fn fair_claims_take_released_and_rescued_tasks(store: Store) {
    let now = now_ms();
    let types = ["heads-release"];
    let t = create_due(
        &store,
        now - 10_000,
        &[
            ("a@heads", "heads-release", 1),
            ("b@heads", "heads-release", 2),
            ("c@heads", "heads-release", 3),
        ],
    )
    .await;
    let first = store
        .claim(&fair_at(&types, 2, 2, now))
        .await
        .expect("claim");
    assert_eq!(ids(&first), ids(&t[..2]), "a's and b's oldest");
    // a's task is due again from its release on, so after c's.
    store.release(&lease(&first[0])).await.expect("release");
    let again = store
        .claim(&fair_at(&types, 2, 2, now_ms()))
        .await
        .expect("claim");
    assert_eq!(
        ids(&again),
        vec![t[2].id.clone(), t[0].id.clone()],
        "c, then a at its released task"
    );

    // Every lease runs out; the rescuer puts the three tasks back, due at once.
    let later = now_ms() + 10 * LEASE_MS;
    let rescued = store.rescue_expired(later).await.expect("rescue");
    assert_eq!(rescued.len(), 3);
    let after = store
        .claim(&fair_at(&types, 3, 2, later))
        .await
        .expect("claim");
    assert_eq!(id_set(&after), id_set(&t), "every user's task once more");
}

/// A retryable failure puts the task back at its backoff: not due before, due after, and the
/// user's younger task is its oldest due one meanwhile.
pub async fn fair_claims_follow_retry_backoff(store: Store) {
    let now = now_ms();
    let types = ["heads-retry"];
    let t = create_due(
        &store,
        now - 10_000,
        &[
            ("a@heads", "heads-retry", 1),
            ("a@heads", "heads-retry", 2),
            ("b@heads", "heads-retry", 3),
        ],
    )
    .await;
    let first = store
        .claim(&fair_at(&types, 1, 1, now))
        .await
        .expect("claim");
    assert_eq!(ids(&first), ids(&t[..1]));
    let retry_at = now + 60_000;
    let failure = Failure {
        error: "busy".to_owned(),
        retry_at: Some(retry_at),
        retry_description: None,
    };
    store.fail(&lease(&first[0]), failure).await.expect("fail");
    let before = store
        .claim(&fair_at(&types, 1, 1, now))
        .await
        .expect("claim");
    assert_eq!(
        ids(&before),
        ids(&t[1..2]),
        "a's younger task is its oldest due"
    );
    let lease_b = lease(&before[0]);
    store.complete(&lease_b, json!(null)).await.expect("done");
    let after = store
        .claim(&fair_at(&types, 2, 1, retry_at))
        .await
        .expect("claim");
    assert_eq!(
        ids(&after),
        vec![t[2].id.clone(), t[0].id.clone()],
        "b, then a at its retried task, due again"
    );
}

/// A cancelled or deleted pending task no longer stands for its user: the user is met at its
/// next task, in the order of that task.
pub async fn fair_claims_pass_cancelled_and_deleted_tasks(store: Store) {
    let now = now_ms();
    let types = ["heads-cancel"];
    let t = create_due(
        &store,
        now - 10_000,
        &[
            ("a@heads", "heads-cancel", 1),
            ("b@heads", "heads-cancel", 2),
            ("a@heads", "heads-cancel", 3),
            ("b@heads", "heads-cancel", 4),
            ("c@heads", "heads-cancel", 5),
        ],
    )
    .await;
    store.request_cancel(&t[0].id).await.expect("cancel");
    store.delete(&t[1].id).await.expect("delete");
    let claimed = store
        .claim(&fair_at(&types, 2, 2, now))
        .await
        .expect("claim");
    assert_eq!(
        ids(&claimed),
        vec![t[2].id.clone(), t[3].id.clone()],
        "a and b at their next tasks, before c"
    );
}

/// A waiting task released by its parent's completion is pending: a fair claim takes it.
pub async fn fair_claims_take_released_waiting_tasks(store: Store) {
    let user = "flow@heads";
    let node = |key: &str, task_type: &str| WorkflowNode {
        key: key.to_owned(),
        task: NewTask::new(user, task_type),
    };
    let (_, tasks) = store
        .create_workflow(NewWorkflow {
            user_id: user.to_owned(),
            nodes: vec![node("parent", "heads-parent"), node("child", "heads-child")],
            edges: vec![WorkflowEdge {
                parent: "parent".to_owned(),
                child: "child".to_owned(),
                run_on_failure: false,
            }],
        })
        .await
        .expect("workflow");
    let child = tasks
        .iter()
        .find(|t| t.task_type == "heads-child")
        .expect("child")
        .id
        .clone();
    let now = now_ms();
    let none = store
        .claim(&fair_at(&["heads-child"], 5, 2, now))
        .await
        .expect("claim");
    assert!(none.is_empty(), "the child waits for its parent");
    let parent = store
        .claim(&fair_at(&["heads-parent"], 5, 2, now))
        .await
        .expect("claim");
    assert_eq!(parent.len(), 1);
    store
        .complete(&lease(&parent[0]), json!(null))
        .await
        .expect("complete");
    let claimed = store
        .claim(&fair_at(&["heads-child"], 5, 2, now_ms()))
        .await
        .expect("claim");
    assert_eq!(ids(&claimed), [child]);
}

/// A claim for some task types meets each user at its oldest due task of those types, even
/// when an older task of another type stands first in the user's queue.
pub async fn fair_claims_by_type_meet_users_at_their_oldest_of_those_types(store: Store) {
    let now = now_ms();
    let t = create_due(
        &store,
        now - 10_000,
        &[
            ("a@heads", "heads-x", 1),
            ("b@heads", "heads-x", 2),
            ("a@heads", "heads-y", 3),
            ("c@heads", "heads-y", 4),
            ("b@heads", "heads-y", 5),
            ("a@heads", "heads-y", 6),
        ],
    )
    .await;
    let first = store
        .claim(&fair_at(&["heads-y"], 2, 2, now))
        .await
        .expect("claim");
    assert_eq!(
        ids(&first),
        vec![t[2].id.clone(), t[3].id.clone()],
        "a, then c"
    );
    // a is at its cap of one; b's oldest of that type comes next; then nothing is left for c.
    let second = store
        .claim(&fair_at(&["heads-y", "heads-z"], 5, 1, now))
        .await
        .expect("claim");
    assert_eq!(ids(&second), vec![t[4].id.clone()]);
    let both = store
        .claim(&fair_at(&["heads-x", "heads-y"], 5, 2, now))
        .await
        .expect("claim");
    assert_eq!(
        id_set(&both),
        HashSet::from([t[1].id.clone(), t[0].id.clone()]),
        "a and b fill their caps of two with their x tasks; a's last y waits"
    );
}

/// The per-user cap holds across priority bands while tasks move: a user's high tasks take its
/// cap, its normal ones wait, and each completion frees one place, high first.
pub async fn fair_caps_hold_across_bands_as_tasks_finish(store: Store) {
    let now = now_ms();
    let base = now - 10_000;
    let plan = [
        ("a@heads", Priority::High, 1),
        ("a@heads", Priority::High, 2),
        ("a@heads", Priority::High, 3),
        ("a@heads", Priority::Normal, 0),
        ("b@heads", Priority::Normal, 4),
    ];
    let batch: Vec<NewTask> = plan
        .iter()
        .map(|(user, priority, offset)| {
            NewTask::new(*user, "heads-bands")
                .with_priority(*priority)
                .with_run_at(base + offset)
        })
        .collect();
    let t = store.create_many(batch).await.expect("create_many");
    let types = ["heads-bands"];
    let first = store
        .claim(&fair_at(&types, 10, 2, now))
        .await
        .expect("claim");
    assert_eq!(
        ids(&first),
        vec![t[0].id.clone(), t[1].id.clone(), t[4].id.clone()]
    );
    store
        .complete(&lease(&first[0]), json!(null))
        .await
        .expect("complete");
    let second = store
        .claim(&fair_at(&types, 10, 2, now))
        .await
        .expect("claim");
    assert_eq!(ids(&second), ids(&t[2..3]), "a's last high task");
    for task in [&first[1], &second[0]] {
        store
            .complete(&lease(task), json!(null))
            .await
            .expect("complete");
    }
    let third = store
        .claim(&fair_at(&types, 10, 2, now))
        .await
        .expect("claim");
    assert_eq!(ids(&third), ids(&t[3..4]), "a's normal task at last");
}

/// Fair claims after unfair ones: an unfair claim takes users' oldest tasks without regard to
/// owner (and a store may leave those users' kept heads behind for the fair claim to repair);
/// the next fair claim still meets every user at its oldest pending task, within its cap.
pub async fn fair_claims_follow_unfair_claims(store: Store) {
    let now = now_ms();
    let types = ["heads-unfair"];
    let t = create_due(
        &store,
        now - 10_000,
        &[
            ("a@heads", "heads-unfair", 1),
            ("b@heads", "heads-unfair", 2),
            ("a@heads", "heads-unfair", 3),
            ("a@heads", "heads-unfair", 4),
            ("b@heads", "heads-unfair", 5),
            ("c@heads", "heads-unfair", 6),
        ],
    )
    .await;
    let unfair = ClaimRequest {
        max_running_per_user: None,
        ..fair_at(&types, 2, 2, now)
    };
    let first = store.claim(&unfair).await.expect("unfair claim");
    assert_eq!(ids(&first), ids(&t[..2]), "the two oldest, a's and b's");
    // a and b run one each: one more each fits under the cap of 2; c's task is its oldest.
    let fair = store
        .claim(&fair_at(&types, 10, 2, now))
        .await
        .expect("fair claim");
    assert_eq!(
        id_set(&fair),
        id_set(&[t[2].clone(), t[4].clone(), t[5].clone()]),
        "a's and b's next tasks and c's"
    );
    // What is left is a's youngest, behind its cap until one of its tasks finishes.
    store
        .complete(&lease(&first[0]), json!(null))
        .await
        .expect("complete");
    let last = store
        .claim(&fair_at(&types, 10, 2, now))
        .await
        .expect("fair claim");
    assert_eq!(ids(&last), ids(&t[3..4]), "a's youngest once it has room");
}
