//! Cases: many completions at once, as a drain's wave of finished tasks sends them. Backends
//! may write completions that arrive together as one (SQLite and PostgreSQL do); each must
//! still be fenced by its own lease, answered alone, release its children and be published
//! once, in order.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use task_core::{Dependency, NewTask, TaskId, TaskStatus};

use super::support::{claim_request, next_change, Store, WAIT};
use crate::{Lease, StoreError, TaskChange};

const TASKS: usize = 48;

/// 48 claimed tasks completed concurrently, every third also by a stale lease and one twice by
/// its own lease; two of them are the parents of a waiting child (a fan-in).
pub async fn concurrent_completions_are_fenced_alone(store: Store) {
    let mut parents = Vec::new();
    for _ in 0..2 {
        let parent = store
            .create(NewTask::new("u", "grouped"))
            .await
            .expect("create a parent");
        parents.push(parent.id);
    }
    let child = store
        .create(
            NewTask::new("u", "grouped-child")
                .depending_on(Dependency::on(parents[0].clone()))
                .depending_on(Dependency::on(parents[1].clone())),
        )
        .await
        .expect("create the child");
    assert_eq!(child.status, TaskStatus::Waiting);
    let rest = (2..TASKS).map(|_| NewTask::new("u", "grouped")).collect();
    store.create_many(rest).await.expect("create_many");
    let mut claimed = Vec::new();
    while claimed.len() < TASKS {
        let more = store
            .claim(&claim_request("w", TASKS, "grouped"))
            .await
            .expect("claim");
        assert!(!more.is_empty(), "all {TASKS} tasks are due");
        claimed.extend(more);
    }
    let claimed_versions: HashMap<TaskId, i64> =
        claimed.iter().map(|t| (t.id.clone(), t.version)).collect();
    let index: HashMap<TaskId, usize> = claimed
        .iter()
        .enumerate()
        .map(|(n, t)| (t.id.clone(), n))
        .collect();
    let mut feed = store.subscribe();

    let mut writes = Vec::new();
    for (n, task) in claimed.iter().enumerate() {
        let lease = Lease::of(task).expect("a lease");
        let mut leases = vec![(true, lease.clone())];
        if n % 3 == 1 {
            let stale = Lease {
                token: "0".repeat(32),
                ..lease.clone()
            };
            leases.push((false, stale));
        }
        if n == 2 {
            leases.push((true, lease));
        }
        for (own, lease) in leases {
            let store = Arc::clone(&store);
            writes.push(tokio::spawn(async move {
                let outcome = store.complete(&lease, json!({ "n": n })).await;
                (n, own, outcome)
            }));
        }
    }
    let mut completed_by = vec![0; TASKS];
    for write in writes {
        let (n, own, outcome) = tokio::time::timeout(WAIT, write)
            .await
            .expect("completions finish")
            .expect("no panic");
        match outcome {
            Ok(task) => {
                assert!(own, "task {n}: a stale lease completed it");
                assert_eq!(task.status, TaskStatus::Completed, "task {n}");
                assert_eq!(task.result, Some(json!({ "n": n })), "task {n}");
                assert_eq!(task.version, claimed_versions[&task.id] + 1, "task {n}");
                assert_eq!(task.lease_token, None, "task {n}");
                completed_by[n] += 1;
            }
            Err(error) => assert_eq!(error, StoreError::LeaseLost, "task {n}, own lease {own}"),
        }
    }
    assert!(
        completed_by.iter().all(|&count| count == 1),
        "each task is completed exactly once: {completed_by:?}"
    );

    for task in &claimed {
        let stored = store.get(&task.id).await.expect("get");
        assert_eq!(stored.status, TaskStatus::Completed);
        assert_eq!(stored.result, Some(json!({ "n": index[&task.id] })));
        assert_eq!(stored.progress, stored.total);
    }
    let released = store.get(&child.id).await.expect("get the child");
    assert_eq!(
        released.status,
        TaskStatus::Pending,
        "the child was released"
    );
    assert_eq!(released.waiting_for, 0);

    // Each completion is published once, and the child's release after both parents'
    // completions (a backend may publish the child's count going down in between, or not).
    let mut seen = vec![0; TASKS];
    let mut child_released = false;
    let mut child_version = child.version;
    while seen.contains(&0) || !child_released {
        let TaskChange::Upserted(task) = next_change(&mut feed).await else {
            panic!("only upserts are expected");
        };
        if task.id == child.id {
            assert!(task.version > child_version, "the child's versions go up");
            child_version = task.version;
            let parents_seen = parents.iter().filter(|p| seen[index[*p]] == 1).count();
            if task.status == TaskStatus::Pending {
                assert_eq!(
                    parents_seen, 2,
                    "released before both parents were published"
                );
                child_released = true;
            } else {
                assert_eq!(task.status, TaskStatus::Waiting);
                assert_eq!(task.waiting_for, 1);
                assert!(
                    parents_seen >= 1,
                    "counted down before a parent was published"
                );
            }
            continue;
        }
        let n = index[&task.id];
        assert_eq!(task.status, TaskStatus::Completed, "task {n}");
        seen[n] += 1;
    }
    assert!(
        seen.iter().all(|&count| count == 1),
        "published once each: {seen:?}"
    );
}
