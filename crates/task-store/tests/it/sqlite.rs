//! What only the SQLite backend does: sibling-crate access to the same file, configuration.

use std::time::Duration;

use task_core::{CoreError, NewTask};
use task_store::{map_sqlite_error, SqliteConfig, SqliteStore, StoreError, TaskStore};

use crate::support::sqlite_fixture;

#[tokio::test]
async fn sibling_tables_are_written_in_transactions_and_read_from_the_pool() {
    let fixture = sqlite_fixture();
    let store = fixture.store();
    store
        .with_write_transaction(|conn| {
            conn.execute_batch("CREATE TABLE sibling_notes (id INTEGER PRIMARY KEY, text TEXT)")
                .map_err(map_sqlite_error)?;
            conn.execute(
                "INSERT INTO sibling_notes (text) VALUES ('Vad heter Sveriges huvudstad?')",
                [],
            )
            .map_err(map_sqlite_error)?;
            Ok(())
        })
        .await
        .expect("write");

    // An error inside the closure rolls the whole transaction back.
    let failed = store
        .with_write_transaction(|conn| {
            conn.execute("INSERT INTO sibling_notes (text) VALUES ('half')", [])
                .map_err(map_sqlite_error)?;
            Err::<(), _>(StoreError::Conflict("changed my mind".into()))
        })
        .await;
    assert_eq!(failed, Err(StoreError::Conflict("changed my mind".into())));

    let texts: Vec<String> = store
        .with_connection(|conn| {
            let mut statement = conn
                .prepare("SELECT text FROM sibling_notes ORDER BY id")
                .map_err(map_sqlite_error)?;
            let rows = statement
                .query_map([], |row| row.get(0))
                .map_err(map_sqlite_error)?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(map_sqlite_error)
        })
        .await
        .expect("read");
    assert_eq!(texts, ["Vad heter Sveriges huvudstad?"]);

    // Pooled connections are read-only.
    let write_on_reader = store
        .with_connection(|conn| {
            conn.execute("INSERT INTO sibling_notes (text) VALUES ('sneaky')", [])
                .map_err(map_sqlite_error)
        })
        .await;
    assert!(
        matches!(write_on_reader, Err(StoreError::Backend(_))),
        "{write_on_reader:?}"
    );
    let missing = store
        .with_connection(|conn| {
            conn.query_row("SELECT text FROM sibling_notes WHERE id = 42", [], |row| {
                row.get::<_, String>(0)
            })
            .map_err(map_sqlite_error)
        })
        .await;
    assert_eq!(missing, Err(StoreError::NotFound));
}

#[test]
fn bad_settings_are_rejected_before_touching_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("never.db");
    let cases = [
        (
            "pool_size",
            SqliteConfig {
                pool_size: 0,
                ..Default::default()
            },
        ),
        (
            "feed_capacity",
            SqliteConfig {
                feed_capacity: 0,
                ..Default::default()
            },
        ),
        (
            "busy_timeout",
            SqliteConfig {
                busy_timeout: Duration::ZERO,
                ..Default::default()
            },
        ),
        (
            "checkpoint_pages",
            SqliteConfig {
                checkpoint_pages: 0,
                ..Default::default()
            },
        ),
    ];
    for (field, config) in cases {
        assert!(
            matches!(
                SqliteStore::open_with(&path, config),
                Err(StoreError::Invalid(CoreError::InvalidField { field: f, .. })) if f == field
            ),
            "{field}"
        );
    }
    assert!(!path.exists());
    let defaults = SqliteConfig::default();
    assert_eq!(defaults.pool_size, task_store::DEFAULT_POOL_SIZE);
    assert_eq!(defaults.busy_timeout, task_store::DEFAULT_BUSY_TIMEOUT);
    assert_eq!(defaults.feed_capacity, task_store::DEFAULT_FEED_CAPACITY);
    assert_eq!(
        defaults.checkpoint_pages,
        task_store::DEFAULT_CHECKPOINT_PAGES
    );
    let store = SqliteStore::open_with(
        &path,
        SqliteConfig {
            pool_size: 1,
            ..defaults
        },
    )
    .expect("valid settings");
    assert_eq!(store.path(), path);
}

/// Concurrent writes share commits; one that fails is rolled back alone, the others keep
/// everything they wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_in_a_shared_commit_is_rolled_back_alone() {
    let fixture = sqlite_fixture();
    let store = fixture.store().clone();
    store
        .with_write_transaction(|conn| {
            conn.execute_batch("CREATE TABLE notes (n INTEGER PRIMARY KEY)")
                .map_err(map_sqlite_error)
        })
        .await
        .expect("table");
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..200_i64 {
        let store = store.clone();
        writes.spawn(async move {
            let outcome = store
                .with_write_transaction(move |conn| {
                    conn.execute("INSERT INTO notes (n) VALUES (?1)", [n])
                        .map_err(map_sqlite_error)?;
                    conn.execute("INSERT INTO notes (n) VALUES (?1)", [n + 1000])
                        .map_err(map_sqlite_error)?;
                    if n % 3 == 0 {
                        Err(StoreError::Conflict(format!("refusing {n}")))
                    } else {
                        Ok(n)
                    }
                })
                .await;
            (n, outcome)
        });
    }
    let mut kept = Vec::new();
    while let Some(done) = writes.join_next().await {
        let (n, outcome) = done.expect("writer task");
        match outcome {
            Ok(value) => {
                assert_eq!(value, n);
                kept.push(n);
                kept.push(n + 1000);
            }
            Err(error) => {
                assert_eq!(n % 3, 0);
                assert_eq!(error, StoreError::Conflict(format!("refusing {n}")));
            }
        }
    }
    kept.sort();
    let stored: Vec<i64> = store
        .with_connection(|conn| {
            let mut statement = conn
                .prepare("SELECT n FROM notes ORDER BY n")
                .map_err(map_sqlite_error)?;
            let rows = statement
                .query_map([], |row| row.get(0))
                .map_err(map_sqlite_error)?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(map_sqlite_error)
        })
        .await
        .expect("read");
    assert_eq!(stored, kept);
}

/// A write that panics fails its caller; the store keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_fails_its_caller_only() {
    let fixture = sqlite_fixture();
    let store = fixture.store().clone();
    let outcome = store
        .with_write_transaction(|_conn| -> Result<(), StoreError> {
            panic!("a sibling crate's bug")
        })
        .await;
    assert!(
        matches!(outcome, Err(StoreError::Backend(_))),
        "{outcome:?}"
    );
    store
        .with_write_transaction(|conn| {
            conn.execute_batch("CREATE TABLE after_panic (x INTEGER)")
                .map_err(map_sqlite_error)
        })
        .await
        .expect("the writer still works");
}

/// Checkpoints run beside the writer, yet under a steady stream of commits the WAL stays
/// bounded (the writer restarts it once it reaches four times the threshold) and the tasks
/// reach the database file itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoints_keep_the_wal_bounded_under_steady_writes() {
    const THRESHOLD: u32 = 16;
    const WRITERS: usize = 8;
    const TASKS_EACH: usize = 300;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("wal.db");
    let store = SqliteStore::open_with(
        &path,
        SqliteConfig {
            checkpoint_pages: THRESHOLD,
            ..Default::default()
        },
    )
    .expect("open");
    let empty_size = std::fs::metadata(&path).expect("db file").len();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..TASKS_EACH {
                store
                    .create(NewTask::new(format!("user{writer}@example.com"), "noop"))
                    .await
                    .expect("create");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    for writer in 0..WRITERS {
        let unfinished = store
            .count_unfinished(&format!("user{writer}@example.com"))
            .await
            .expect("count");
        assert_eq!(unfinished, TASKS_EACH as u64);
    }
    // Without checkpoints these commits leave thousands of frames in the WAL. The writer
    // restarts it at 4 × THRESHOLD frames; one more batch of commits may follow first.
    let frame = 4096 + 24;
    let bound = (4 * u64::from(THRESHOLD) + 128) * frame + 32;
    let wal = std::fs::metadata(dir.path().join("wal.db-wal"))
        .expect("WAL file")
        .len();
    assert!(wal <= bound, "WAL is {wal} bytes, more than {bound}");
    assert!(
        std::fs::metadata(&path).expect("db file").len() > empty_size + 64 * 1024,
        "checkpoints copied the tasks into the database file"
    );
}

/// The search index's batches (`index_search`): at most the limit each, every task once, until
/// nothing is left above the watermark; then a new task is the next batch.
#[tokio::test]
async fn search_indexing_takes_batches_until_it_has_caught_up() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(dir.path().join("index.db")).expect("open");
    let new = (0..10)
        .map(|i| NewTask::new("ada@example.com", "generation").with_label(format!("Quiz {i}")))
        .collect();
    store.create_many(new).await.expect("create");
    let mut batches = Vec::new();
    for _ in 0..5 {
        batches.push(store.index_search(4).await.expect("index"));
    }
    assert_eq!(batches, [4, 4, 2, 0, 0]);
    assert_eq!(store.index_search(0).await.expect("index"), 0);
    store
        .create(NewTask::new("ada@example.com", "generation").with_label("Quiz 10"))
        .await
        .expect("create");
    assert_eq!(store.index_search(4).await.expect("index"), 1);
}
