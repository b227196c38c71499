//! The rollup loop: folds finished tasks shortly after they finish, tells its observer once per
//! task, and refuses bad settings.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use task_core::NewTask;
use task_runtime::{FoldObserver, RollupConfig, Rollups, RuntimeError};
use task_store::analytics::FoldedTask;
use task_store::testkit::within;
use task_store::{AnalyticsStore, MemoryStore, TaskStore};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Seen {
    ids: Mutex<Vec<String>>,
    changed: Notify,
}

impl FoldObserver for Seen {
    fn folded(&self, tasks: &[FoldedTask]) {
        self.ids
            .lock()
            .unwrap()
            .extend(tasks.iter().map(|t| t.id.to_string()));
        self.changed.notify_waiters();
    }
}

fn quick() -> RollupConfig {
    RollupConfig {
        interval: Duration::from_millis(10),
        settle: Duration::ZERO,
        batch_size: 2,
        ..RollupConfig::default()
    }
}

#[tokio::test]
async fn finished_tasks_are_folded_and_observed_once() {
    let store = MemoryStore::new();
    let seen = Arc::new(Seen::default());
    let stop = CancellationToken::new();
    let observer: Arc<dyn FoldObserver> = seen.clone();
    let rollups = Rollups::new(Arc::new(store.clone()), quick(), Some(observer)).expect("config");
    let running = rollups.start(stop.clone());

    let mut ids = Vec::new();
    for n in 0..5 {
        let task = store
            .create(NewTask::new(format!("u{n}@example.com"), "noop"))
            .await
            .expect("create");
        store.cancel(&task.id, None).await.expect("cancel");
        ids.push(task.id.to_string());
    }
    within(Duration::from_secs(10), "all five folded", async {
        loop {
            let changed = seen.changed.notified();
            if seen.ids.lock().unwrap().len() >= 5 {
                break;
            }
            changed.await;
        }
    })
    .await;
    let mut observed = seen.ids.lock().unwrap().clone();
    observed.sort();
    ids.sort();
    assert_eq!(observed, ids, "each task observed once");
    assert_eq!(
        store.watermark().await.expect("mark").map(|m| m.folded),
        Some(5)
    );
    stop.cancel();
    running.await.expect("loop ends on stop");
}

#[tokio::test]
async fn settle_holds_back_tasks_that_just_finished() {
    let store = MemoryStore::new();
    let task = store
        .create(NewTask::new("u@example.com", "noop"))
        .await
        .expect("create");
    store.cancel(&task.id, None).await.expect("cancel");
    let config = RollupConfig {
        settle: Duration::from_secs(3600),
        ..quick()
    };
    let rollups = Rollups::new(Arc::new(store.clone()), config, None).expect("config");
    assert_eq!(rollups.fold_due().await.expect("fold"), 0);
    let rollups = Rollups::new(Arc::new(store.clone()), quick(), None).expect("config");
    assert_eq!(rollups.fold_due().await.expect("fold"), 1);
}

#[test]
fn bad_settings_are_refused() {
    let store: Arc<dyn AnalyticsStore> = Arc::new(MemoryStore::new());
    for (config, field) in [
        (
            RollupConfig {
                interval: Duration::ZERO,
                ..RollupConfig::default()
            },
            "rollups.interval",
        ),
        (
            RollupConfig {
                batch_size: 0,
                ..RollupConfig::default()
            },
            "rollups.batch_size",
        ),
        (
            RollupConfig {
                minute_retention: Duration::from_secs(60),
                ..RollupConfig::default()
            },
            "rollups.minute_retention",
        ),
    ] {
        match Rollups::new(Arc::clone(&store), config, None) {
            Err(RuntimeError::InvalidConfig { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}
