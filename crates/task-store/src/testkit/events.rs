//! Cases: the per-task event log — numbering, order, fencing by lease, publication after the
//! commit, replay from a sequence number, and deletion with the task.

use std::sync::Arc;

use serde_json::json;

use super::support::{claim_only, create, expect_err, Store, WAIT};
use crate::{Lease, StoreError, TaskEventLog};

/// The event log under test, beside the task store it belongs to.
pub type EventLog = Arc<dyn TaskEventLog>;

/// Appends are numbered 1, 2, 3 per task, come back in order, and replay from any point.
pub async fn events_are_numbered_and_replayed_in_order(store: Store, log: EventLog) {
    create(&store, "ada@example.com", "events").await;
    let (task, lease) = claim_only(&store, "events").await;
    let (_, other_lease) = {
        create(&store, "bo@example.com", "events").await;
        claim_only(&store, "events").await
    };
    for n in 1..=3 {
        let event = log.append_event(&lease, json!({"n": n})).await.unwrap();
        assert_eq!((event.seq, event.attempt), (n, 1));
        assert_eq!(event.task_id, task.id);
        assert_eq!(event.user_id, "ada@example.com");
    }
    // Another task's log is numbered on its own.
    let other = log.append_event(&other_lease, json!("x")).await.unwrap();
    assert_eq!(other.seq, 1);
    let all = log.events_after(&task.id, 0).await.unwrap();
    let items: Vec<_> = all.iter().map(|e| (e.seq, e.item.clone())).collect();
    assert_eq!(
        items,
        [
            (1, json!({"n": 1})),
            (2, json!({"n": 2})),
            (3, json!({"n": 3}))
        ]
    );
    let missed = log.events_after(&task.id, 2).await.unwrap();
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0], all[2]);
    assert!(log.events_after(&task.id, 3).await.unwrap().is_empty());
    let unknown = task_core::TaskId::generate(0).unwrap();
    assert!(log.events_after(&unknown, 0).await.unwrap().is_empty());
}

/// Only the current lease appends: a wrong token, a finished task or an unknown task write
/// nothing and yield `LeaseLost`.
pub async fn appends_are_fenced_by_the_lease(store: Store, log: EventLog) {
    create(&store, "ada@example.com", "events").await;
    let (task, lease) = claim_only(&store, "events").await;
    log.append_event(&lease, json!(1)).await.unwrap();
    let stale = Lease {
        task_id: task.id.clone(),
        token: "not-the-token".to_owned(),
    };
    expect_err(
        log.append_event(&stale, json!(2)).await,
        "a wrong token",
        |e| *e == StoreError::LeaseLost,
    );
    store.complete(&lease, json!({"ok": true})).await.unwrap();
    expect_err(
        log.append_event(&lease, json!(3)).await,
        "a finished task",
        |e| *e == StoreError::LeaseLost,
    );
    let unknown = Lease {
        task_id: task_core::TaskId::generate(0).unwrap(),
        token: lease.token.clone(),
    };
    expect_err(
        log.append_event(&unknown, json!(4)).await,
        "an unknown task",
        |e| *e == StoreError::LeaseLost,
    );
    let stored = log.events_after(&task.id, 0).await.unwrap();
    assert_eq!(
        stored.len(),
        1,
        "only the fenced append was stored: {stored:?}"
    );
}

/// Every append is published once, after it is readable, in order.
pub async fn appended_events_are_published_in_order(store: Store, log: EventLog) {
    let mut feed = log.subscribe_events();
    create(&store, "ada@example.com", "events").await;
    let (task, lease) = claim_only(&store, "events").await;
    let mut appended = Vec::new();
    for n in 1..=3 {
        appended.push(log.append_event(&lease, json!(n)).await.unwrap());
    }
    for expected in appended {
        let published = tokio::time::timeout(WAIT, feed.recv())
            .await
            .expect("an event within the wait")
            .expect("the feed is open");
        assert_eq!(*published, expected);
        let readable = log.events_after(&task.id, published.seq - 1).await.unwrap();
        assert_eq!(readable.first(), Some(&expected));
    }
    assert!(feed.try_recv().is_err(), "nothing more was published");
}

/// A task's events go with it: deleted or purged, its log is empty.
pub async fn events_are_deleted_with_their_task(store: Store, log: EventLog) {
    create(&store, "ada@example.com", "events").await;
    let (task, lease) = claim_only(&store, "events").await;
    log.append_event(&lease, json!("a")).await.unwrap();
    store.complete(&lease, json!(null)).await.unwrap();
    store.delete(&task.id).await.unwrap();
    assert!(log.events_after(&task.id, 0).await.unwrap().is_empty());

    create(&store, "ada@example.com", "events").await;
    let (purged, lease) = claim_only(&store, "events").await;
    log.append_event(&lease, json!("b")).await.unwrap();
    store.complete(&lease, json!(null)).await.unwrap();
    let far_future = super::support::now_ms() + 86_400_000;
    assert_eq!(store.purge_finished(far_future, 10).await.unwrap(), 1);
    assert!(log.events_after(&purged.id, 0).await.unwrap().is_empty());
}
