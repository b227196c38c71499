//! Several stores ("instances") on one schema: the change feed and the task event feed cross
//! instances in order, the change feed survives a dropped LISTEN connection, and concurrent
//! claimers on different instances never share a task.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use task_core::{NewTask, Task, TaskId, TaskStatus};
use task_postgres::PostgresStore;
use task_store::{
    ChangeReceiver, ClaimRequest, EventReceiver, Lease, StoreError, TaskChange, TaskEventLog,
    TaskStore,
};

use crate::support::{TestDb, WAIT};

fn claim_request(worker: &str, limit: usize, fair: bool) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.to_owned(),
        limit,
        task_types: Vec::new(),
        lease_for: Duration::from_secs(60),
        max_running_per_user: fair.then_some(1000),
        now: now_ms(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Waits for the next change on `feed` concerning `id`.
async fn next_change_of(feed: &mut ChangeReceiver, id: &TaskId) -> TaskChange {
    loop {
        let change = tokio::time::timeout(WAIT, feed.recv())
            .await
            .expect("a change within the wait")
            .expect("no lag and an open feed");
        if change.task_id() == id {
            return change;
        }
    }
}

/// Collects `id`'s upserts from `feed` until one at `version`; fails on anything out of order.
async fn upserts_until(feed: &mut ChangeReceiver, id: &TaskId, version: i64) -> Vec<Arc<Task>> {
    let mut seen: Vec<Arc<Task>> = Vec::new();
    loop {
        match next_change_of(feed, id).await {
            TaskChange::Upserted(task) => {
                if let Some(last) = seen.last() {
                    assert!(
                        task.version > last.version,
                        "versions go up: {seen:?} then {task:?}"
                    );
                }
                let done = task.version == version;
                seen.push(task);
                if done {
                    return seen;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_written_through_one_instance_reach_the_others_feed_in_order() {
    let Some(db) = TestDb::new() else { return };
    let a = db.store().await;
    let b = db.store().await;
    let mut feed_b = b.subscribe();

    // A new task on A reaches B by itself: this is what wakes idle workers on every instance.
    let created = a
        .create(NewTask::new("u@example.com", "cross"))
        .await
        .unwrap();
    let seen = upserts_until(&mut feed_b, &created.id, 1).await;
    assert_eq!(*seen[0], created);

    let mut written: HashMap<i64, Task> = HashMap::new();
    let mut claimed = a.claim(&claim_request("wa", 1, false)).await.unwrap();
    let running = claimed.pop().expect("claimed the task");
    let lease = Lease::of(&running).unwrap();
    written.insert(running.version, running);
    for step in [10, 20, 30, 40] {
        let task = a
            .update_progress(&lease, step, Some(format!("step {step}")))
            .await
            .unwrap();
        written.insert(task.version, task);
    }
    let done = a.complete(&lease, json!({"ok": true})).await.unwrap();
    written.insert(done.version, done.clone());

    // Every state B publishes is one A wrote, in version order, ending with the last one.
    // (Changes that commit before B reads the row may arrive as the newer state only.)
    let seen = upserts_until(&mut feed_b, &created.id, done.version).await;
    for task in &seen {
        assert_eq!(**task, written[&task.version], "B shows what A wrote");
    }

    a.delete(&created.id).await.unwrap();
    match next_change_of(&mut feed_b, &created.id).await {
        TaskChange::Deleted { id, user_id } => {
            assert_eq!(id, created.id);
            assert_eq!(user_id, "u@example.com");
        }
        other => panic!("expected the deletion, got {other:?}"),
    }
}

/// The next appended event on `feed` of task `id`, as `(seq, item)`.
async fn next_event_of(feed: &mut EventReceiver, id: &TaskId) -> (i64, serde_json::Value) {
    loop {
        let event = tokio::time::timeout(WAIT, feed.recv())
            .await
            .expect("an event within the wait")
            .expect("no lag and an open feed");
        if &event.task_id == id {
            return (event.seq, event.item.clone());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_appended_through_one_instance_reach_every_instances_event_feed_once_in_order() {
    let Some(db) = TestDb::new() else { return };
    let a = db.store().await;
    let b = db.store().await;
    let mut on_a = a.subscribe_events();
    let mut on_b = b.subscribe_events();
    let task = a
        .create(NewTask::new("u@example.com", "cross"))
        .await
        .unwrap();
    let claimed = a.claim(&claim_request("worker-a", 1, false)).await.unwrap();
    assert_eq!(claimed[0].id, task.id);
    let lease = Lease::of(&claimed[0]).unwrap();
    for n in 1..=5 {
        a.append_event(&lease, json!({"n": n})).await.unwrap();
    }
    for n in 1..=5 {
        assert_eq!(
            next_event_of(&mut on_b, &task.id).await,
            (n, json!({"n": n}))
        );
        // A publishes its own appends once, although its listener hears them too.
        assert_eq!(
            next_event_of(&mut on_a, &task.id).await,
            (n, json!({"n": n}))
        );
    }
    // Appended through B (with the same lease): it reaches A through A's listener, right
    // after A's own five, so that listener republished none of them; the copy read from the
    // table carries the owner.
    b.append_event(&lease, json!({"n": 6})).await.unwrap();
    let event = loop {
        let event = tokio::time::timeout(WAIT, on_a.recv())
            .await
            .unwrap()
            .unwrap();
        if event.task_id == task.id {
            break event;
        }
    };
    assert_eq!(
        (event.seq, event.user_id.as_str(), &event.item),
        (6, "u@example.com", &json!({"n": 6}))
    );
    assert_eq!(
        next_event_of(&mut on_b, &task.id).await,
        (6, json!({"n": 6}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_listener_reconnects_and_publishes_what_changed_meanwhile() {
    let Some(db) = TestDb::new() else { return };
    let a = db.store().await;
    // B waits long enough before reconnecting that A's writes land while it is away.
    let b = db
        .store_with(task_postgres::PostgresConfig {
            listener_backoff_min: Duration::from_millis(500),
            ..db.config()
        })
        .await;
    let mut status = b.listener_status();
    let pid = status
        .borrow()
        .backend_pid
        .expect("the listener is connected");
    let mut feed_b = b.subscribe();

    let admin = db.admin().await;
    let row = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "terminated the listener's backend");
    tokio::time::timeout(WAIT, status.wait_for(|s| !s.connected))
        .await
        .expect("the listener notices")
        .unwrap();
    // Until it is back, B misses A's changes, so its readiness check fails (B waits out its
    // backoff before reconnecting, so this runs while it is away).
    assert!(
        matches!(b.ping().await, Err(StoreError::Unavailable(_))),
        "not ready while the listener is away"
    );

    let created = a.create(NewTask::new("u", "missed")).await.unwrap();
    let seen = upserts_until(&mut feed_b, &created.id, 1).await;
    assert_eq!(*seen[0], created);
    let after = tokio::time::timeout(WAIT, status.wait_for(|s| s.connected))
        .await
        .expect("the listener is back")
        .unwrap()
        .clone();
    assert!(after.reconnects >= 1, "{after:?}");
    assert!(
        after.resynced >= 1,
        "the change came from the re-sync: {after:?}"
    );
    assert_ne!(after.backend_pid, Some(pid));
    b.ping().await.expect("ready again");
    eprintln!("listener after the reconnect: {after:?}");

    // And live notifications flow again on the new connection.
    let cancelled = a.request_cancel(&created.id).await.unwrap();
    let seen = upserts_until(&mut feed_b, &created.id, cancelled.version).await;
    assert_eq!(**seen.last().unwrap(), cancelled);
    eprintln!("listener at the end: {:?}", b.listener_status().borrow());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_on_two_instances_never_share_a_task() {
    const TASKS: usize = 400;
    let Some(db) = TestDb::new() else { return };
    let instances = [Arc::new(db.store().await), Arc::new(db.store().await)];
    let users = ["a", "b", "c", "d", "e"];
    let created = instances[0]
        .create_many(
            (0..TASKS)
                .map(|i| NewTask::new(users[i % users.len()], "race"))
                .collect(),
        )
        .await
        .unwrap();

    let mut claimers = Vec::new();
    for worker in 0..8 {
        let store: Arc<PostgresStore> = Arc::clone(&instances[worker % 2]);
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let request = claim_request(&format!("w{worker}"), 5, worker % 4 < 2);
                let claimed = store.claim(&request).await.expect("claim");
                if claimed.is_empty() {
                    return mine;
                }
                for task in claimed {
                    let lease = Lease::of(&task).unwrap();
                    let done = store
                        .complete(&lease, json!(worker))
                        .await
                        .expect("complete");
                    assert_eq!(done.status, TaskStatus::Completed);
                    mine.push(task);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(
            tokio::time::timeout(WAIT * 3, claimer)
                .await
                .expect("claimers finish")
                .expect("claimer did not panic"),
        );
    }
    assert_eq!(all.len(), TASKS, "every task claimed exactly once");
    let claimed: HashSet<&TaskId> = all.iter().map(|t| &t.id).collect();
    let expected: HashSet<&TaskId> = created.iter().map(|t| &t.id).collect();
    assert_eq!(claimed, expected);
    for task in &all {
        assert_eq!(
            (task.attempt, task.version),
            (1, 2),
            "claimed once: {task:?}"
        );
    }
    let counts = instances[1].counts().await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (counts[0].status, counts[0].count),
        (TaskStatus::Completed, TASKS as u64)
    );
}
