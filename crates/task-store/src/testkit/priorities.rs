//! Cases: task priorities (issue #19). Claims walk the bands highest first; inside a band the
//! usual order (and, with a per-user cap, the usual fairness) applies, and the cap counts a
//! user's running tasks across bands.

use std::time::Duration;

use task_core::{NewTask, Priority, Task};

use super::support::{now_ms, Store};
use crate::ClaimRequest;

fn request(limit: usize, task_type: &str, max_running: Option<u32>) -> ClaimRequest {
    ClaimRequest {
        worker_id: "prio-worker".to_owned(),
        limit,
        task_types: vec![task_type.to_owned()],
        lease_for: Duration::from_secs(60),
        max_running_per_user: max_running,
        now: now_ms(),
    }
}

/// Creates tasks of `task_type`, each `(user, priority)` one millisecond due after the one
/// before it, the first a minute ago.
async fn create_due(store: &Store, task_type: &str, plan: &[(&str, Priority)]) -> Vec<Task> {
    let base = now_ms() - 60_000;
    let new = plan
        .iter()
        .zip(0..)
        .map(|(&(user, priority), offset)| {
            NewTask::new(user, task_type)
                .with_priority(priority)
                .with_run_at(base + offset)
        })
        .collect();
    store.create_many(new).await.expect("create")
}

fn ids(tasks: &[Task]) -> Vec<String> {
    tasks.iter().map(|task| task.id.to_string()).collect()
}

/// A task keeps its priority (normal unless set); without fairness a claim takes every due high
/// task before any normal one and normal before low, oldest first in each band; a high task
/// that is not due yet waits like any other.
pub async fn claims_take_higher_priorities_first(store: Store) {
    use Priority::{High, Low, Normal};
    let a = "prio-a@example.com";
    let tasks = create_due(
        &store,
        "prio",
        &[(a, Low), (a, Normal), (a, High), (a, Low), (a, High)],
    )
    .await;
    assert_eq!(
        store.get(&tasks[2].id).await.expect("get").priority,
        High,
        "stored and read back"
    );
    let plain = store
        .create(NewTask::new(a, "prio-default"))
        .await
        .expect("create");
    assert_eq!(plain.priority, Normal);
    let later = store
        .create(
            NewTask::new(a, "prio")
                .with_priority(High)
                .with_run_at(now_ms() + 60_000),
        )
        .await
        .expect("future task");

    let first = store.claim(&request(3, "prio", None)).await.expect("claim");
    assert_eq!(
        ids(&first),
        ids(&[tasks[2].clone(), tasks[4].clone(), tasks[1].clone()])
    );
    let rest = store.claim(&request(5, "prio", None)).await.expect("claim");
    assert_eq!(ids(&rest), ids(&[tasks[0].clone(), tasks[3].clone()]));
    assert!(!ids(&rest).contains(&later.id.to_string()));
}

/// With a per-user cap, a user's flood of high tasks takes at most the cap; the other users'
/// normal tasks take the rest of the claim. A user's high task found behind another user's
/// backlog (the window of the due index full of one user) is still taken before anyone's
/// normal tasks.
pub async fn priorities_keep_per_user_fairness(store: Store) {
    use Priority::{High, Normal};
    let a = "flood@example.com";
    let b = "steady@example.com";
    let mut plan: Vec<(&str, Priority)> = vec![(b, Normal), (b, Normal)];
    plan.extend(std::iter::repeat_n((a, High), 5));
    let tasks = create_due(&store, "prio-fair", &plan).await;
    let claimed = store
        .claim(&request(4, "prio-fair", Some(2)))
        .await
        .expect("claim");
    assert_eq!(
        ids(&claimed),
        ids(&[
            tasks[2].clone(),
            tasks[3].clone(),
            tasks[0].clone(),
            tasks[1].clone()
        ]),
        "A's two high tasks first, then B's normal ones"
    );
    assert!(store
        .claim(&request(4, "prio-fair", Some(2)))
        .await
        .expect("claim")
        .is_empty());

    // A backlog of one user's high tasks beyond the claim's window of the due index.
    let c = "backlog@example.com";
    let d = "late@example.com";
    let mut plan: Vec<(&str, Priority)> = vec![(d, Normal)];
    plan.extend(std::iter::repeat_n((c, High), 300));
    plan.push((d, High));
    let tasks = create_due(&store, "prio-window", &plan).await;
    let claimed = store
        .claim(&request(2, "prio-window", Some(1)))
        .await
        .expect("claim");
    assert_eq!(
        ids(&claimed),
        ids(&[tasks[1].clone(), tasks[301].clone()]),
        "each user's oldest high task; D's normal task waits"
    );
}
