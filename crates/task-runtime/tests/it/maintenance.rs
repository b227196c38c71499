//! The cleaner deletes finished tasks past their retention, batch by batch, and nothing else.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use task_core::{NewTask, TaskStatus};
use task_runtime::{handler_fn, CleanerConfig, Registry, Runtime, RuntimeConfig};
use task_store::TaskChange;
use tokio::sync::broadcast::error::RecvError;

use crate::support::{config, create, now_millis, on_both_stores, wait_status, within, Harness};

on_both_stores!(cleaner_purges_finished_tasks_past_retention);

async fn cleaner_purges_finished_tasks_past_retention(h: Harness) {
    let store = h.store.as_ref();
    let waiting = store
        .create(NewTask::new("ada@example.com", "noop").with_run_at(now_millis() + 3_600_000))
        .await
        .unwrap();
    let mut finished = HashSet::new();
    {
        // Finish five tasks with a runtime whose cleaner never runs during the test.
        let runtime = Runtime::start(
            h.store.clone(),
            Registry::new().register("noop", handler_fn(|_| async { Ok(json!(null)) })),
            config(),
        )
        .unwrap();
        for _ in 0..5 {
            let task = create(store, "noop", json!({})).await;
            wait_status(store, &task.id, TaskStatus::Completed).await;
            finished.insert(task.id);
        }
        runtime.shutdown().await;
    }

    let mut feed = store.subscribe();
    let cleaning = RuntimeConfig {
        cleaner: CleanerConfig {
            interval: Duration::from_millis(50),
            retention: Duration::from_millis(1),
            batch_size: 2,
        },
        ..config()
    };
    let runtime = Runtime::start(
        h.store.clone(),
        Registry::new().register("other", handler_fn(|_| async { Ok(json!(null)) })),
        cleaning,
    )
    .unwrap();
    within("the cleaner to delete the finished tasks", async {
        let mut left = finished.clone();
        while !left.is_empty() {
            match feed.recv().await {
                Ok(TaskChange::Deleted { id, .. }) => {
                    assert!(left.remove(&id), "deleted an unexpected task {id}");
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => panic!("feed broke"),
            }
        }
    })
    .await;
    runtime.shutdown().await;
    for id in &finished {
        assert!(store.get(id).await.is_err(), "{id} still stored");
    }
    assert_eq!(
        store.get(&waiting.id).await.unwrap().status,
        TaskStatus::Pending,
        "unfinished tasks are kept"
    );
}
