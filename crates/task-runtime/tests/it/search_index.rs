//! The search indexer: catches up batch by batch on SQLite, where creations leave their tasks
//! above the index's watermark; does nothing where the database keeps the index; refuses bad
//! settings; stops on its token.

use std::sync::Arc;
use std::time::Duration;

use task_core::NewTask;
use task_runtime::{RuntimeError, SearchIndexConfig, SearchIndexer};
use task_store::{ListQuery, MemoryStore, SqliteStore, TaskStore};
use tokio_util::sync::CancellationToken;

fn batches_of(batch_size: usize) -> SearchIndexConfig {
    SearchIndexConfig {
        interval: Duration::from_millis(10),
        batch_size,
    }
}

#[tokio::test]
async fn new_tasks_are_indexed_in_batches_and_found_before_and_after() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("index.db")).expect("open"));
    for n in 0..7 {
        store
            .create(NewTask::new("ada@example.com", "noop").with_label(format!("Fyrar {n}")))
            .await
            .expect("create");
    }
    let search = ListQuery {
        search: Some("fyrar".into()),
        ..Default::default()
    };
    let before = store.list(&search).await.expect("list").tasks;
    assert_eq!(before.len(), 7, "found before the indexer ran");
    let indexer = SearchIndexer::new(store.clone(), batches_of(3)).expect("config");
    assert_eq!(indexer.catch_up().await.expect("index"), 7);
    assert_eq!(indexer.catch_up().await.expect("index"), 0, "caught up");
    assert_eq!(store.list(&search).await.expect("list").tasks, before);
}

#[tokio::test]
async fn a_store_that_keeps_its_own_index_has_nothing_to_do() {
    let store = Arc::new(MemoryStore::new());
    store
        .create(NewTask::new("ada@example.com", "noop").with_label("Fyrar"))
        .await
        .expect("create");
    let indexer = SearchIndexer::new(store, batches_of(3)).expect("config");
    assert_eq!(indexer.catch_up().await.expect("index"), 0);
}

#[tokio::test]
async fn the_loop_ends_on_stop() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("index.db")).expect("open"));
    let stop = CancellationToken::new();
    let running = SearchIndexer::new(store, batches_of(3))
        .expect("config")
        .start(stop.clone());
    stop.cancel();
    running.await.expect("the loop ends on stop");
}

#[test]
fn bad_settings_are_refused() {
    let store: Arc<dyn TaskStore> = Arc::new(MemoryStore::new());
    for (config, field) in [
        (
            SearchIndexConfig {
                interval: Duration::ZERO,
                ..SearchIndexConfig::default()
            },
            "search_index.interval",
        ),
        (
            SearchIndexConfig {
                batch_size: 0,
                ..SearchIndexConfig::default()
            },
            "search_index.batch_size",
        ),
        (
            SearchIndexConfig {
                interval: Duration::from_secs(400 * 24 * 60 * 60),
                ..SearchIndexConfig::default()
            },
            "search_index.interval",
        ),
    ] {
        match SearchIndexer::new(Arc::clone(&store), config) {
            Err(RuntimeError::InvalidConfig { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{config:?}: expected InvalidConfig, got {other:?}"),
        }
    }
    assert!(SearchIndexer::new(store, SearchIndexConfig::default()).is_ok());
}
