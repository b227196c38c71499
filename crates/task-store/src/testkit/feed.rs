//! Cases: the change feed carries every committed change once, in commit order.

use std::collections::HashMap;

use serde_json::json;
use task_core::TaskId;

use super::support::{assert_quiet, claim_only, create, new_task, next_change, Store};
use crate::{Failure, TaskChange};

/// A scripted life of two tasks: the feed shows each change once, in order, with versions
/// going up by exactly one per task, equal to what the operations returned.
pub async fn feed_publishes_every_change_once_in_order(store: Store) {
    let mut feed = store.subscribe();
    let mut returned = Vec::new();
    let a = create(&store, "u", "feed-a").await;
    returned.push(a.clone());
    let b = create(&store, "u", "feed-b").await;
    returned.push(b.clone());
    let (claimed, lease) = claim_only(&store, "feed-a").await;
    returned.push(claimed);
    for step in [10, 20, 30] {
        returned.push(
            store
                .update_progress(&lease, step, Some(format!("step {step}")))
                .await
                .expect("progress"),
        );
    }
    returned.push(store.request_cancel(&b.id).await.expect("cancel b"));
    returned.push(
        store
            .complete(&lease, json!({"done": true}))
            .await
            .expect("complete"),
    );
    returned.push(store.retry(&b.id, None).await.expect("retry b"));
    let (_, lease_b) = claim_only(&store, "feed-b").await;
    returned.push(store.get(&b.id).await.expect("get"));
    returned.push(
        store
            .fail(&lease_b, Failure::permanent("nope"))
            .await
            .expect("fail"),
    );
    store.delete(&b.id).await.expect("delete");

    for want in &returned {
        match next_change(&mut feed).await {
            TaskChange::Upserted(got) => assert_eq!(*got, *want),
            other => panic!("expected {} v{}, got {other:?}", want.id, want.version),
        }
    }
    match next_change(&mut feed).await {
        TaskChange::Deleted { id, .. } => assert_eq!(id, b.id),
        other => panic!("expected the deletion, got {other:?}"),
    }
    assert_quiet(&mut feed);

    let mut last: HashMap<TaskId, i64> = HashMap::new();
    for task in &returned {
        let previous = last.insert(task.id.clone(), task.version);
        assert_eq!(task.version, previous.map_or(1, |v| v + 1), "{}", task.id);
    }
}

/// Refused operations publish nothing.
pub async fn failed_operations_publish_nothing(store: Store) {
    let task = create(&store, "u", "quiet").await;
    let (_, lease) = claim_only(&store, "quiet").await;
    store
        .update_progress(&lease, 50, None)
        .await
        .expect("progress");
    let mut feed = store.subscribe();
    assert!(store.update_progress(&lease, 10, None).await.is_err());
    assert!(store.create(new_task("", "quiet")).await.is_err());
    assert!(store.retry(&task.id, None).await.is_err());
    assert!(store.delete(&task.id).await.is_err());
    assert!(store.cancel(&task.id, None).await.is_err());
    store
        .heartbeat(&lease, i64::MAX / 2)
        .await
        .expect("heartbeat");
    assert_quiet(&mut feed);
}

/// Concurrent writers on a multi-threaded runtime: every change arrives once, and each task's
/// versions arrive in order without gaps.
pub async fn concurrent_writers_publish_in_commit_order(store: Store) {
    const TASKS: usize = 8;
    const STEPS: i64 = 20;
    let mut feed = store.subscribe();
    let mut writers = Vec::new();
    for i in 0..TASKS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let task_type = format!("concurrent-{i}");
            create(&store, "u", &task_type).await;
            let (_, lease) = claim_only(&store, &task_type).await;
            for step in 1..=STEPS {
                store
                    .update_progress(&lease, step, None)
                    .await
                    .expect("progress");
            }
            store.complete(&lease, json!(i)).await.expect("complete");
        }));
    }
    for writer in writers {
        writer.await.expect("writer did not panic");
    }
    // Per task: create, claim, STEPS progress updates, complete.
    let expected = TASKS * (STEPS as usize + 3);
    let mut versions: HashMap<TaskId, i64> = HashMap::new();
    for _ in 0..expected {
        match next_change(&mut feed).await {
            TaskChange::Upserted(task) => {
                let previous = versions.insert(task.id.clone(), task.version);
                assert_eq!(task.version, previous.map_or(1, |v| v + 1), "{}", task.id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_quiet(&mut feed);
    assert_eq!(versions.len(), TASKS);
    assert!(versions.values().all(|&v| v == STEPS + 3));
}
