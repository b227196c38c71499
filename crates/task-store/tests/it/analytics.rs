//! Rollups after failures on SQLite: a fold that fails half-way writes nothing, and folding
//! resumes exactly where the last committed fold left off after the store is reopened.

use task_core::{now_millis, NewTask};
use task_store::analytics::{report, GroupBy, Prices, Resolution, RollupQuery, UserScope};
use task_store::{map_sqlite_error, AnalyticsStore, SqliteStore, TaskStore};

async fn finished_tasks(store: &SqliteStore, count: usize) {
    for n in 0..count {
        let task = store
            .create(NewTask::new(format!("user{}@example.com", n % 3), "gen"))
            .await
            .expect("create");
        store.cancel(&task.id, None).await.expect("cancel");
    }
}

async fn cancelled_in_rollups(store: &SqliteStore) -> i64 {
    let rollups = store
        .rollups(&RollupQuery {
            resolution: Resolution::Hour,
            from: 0,
            to: i64::MAX / 2,
            users: UserScope::AllUsers,
        })
        .await
        .expect("rollups");
    let report = report(&rollups, GroupBy::Nothing, &Prices::default()).expect("report");
    report.totals.first().map_or(0, |t| t.cancelled)
}

#[tokio::test]
async fn a_failed_fold_writes_nothing_and_folding_resumes_after_reopening() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("tasks.db");
    let store = SqliteStore::open(&path).expect("open");
    finished_tasks(&store, 30).await;

    // A write that breaks half-way through the fold's rollup rows (a full disk, say).
    store
        .with_write_transaction(|conn| {
            conn.execute_batch(
                "CREATE TRIGGER half_way BEFORE INSERT ON analytics_rollups \
                 WHEN (SELECT count(*) FROM analytics_rollups) >= 4 \
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END",
            )
            .map_err(map_sqlite_error)
        })
        .await
        .expect("trigger");
    assert!(store.fold_finished(now_millis(), 10).await.is_err());
    assert_eq!(store.watermark().await.expect("watermark"), None);
    assert_eq!(
        cancelled_in_rollups(&store).await,
        0,
        "nothing half-written"
    );
    store
        .with_write_transaction(|conn| {
            conn.execute_batch("DROP TRIGGER half_way")
                .map_err(map_sqlite_error)
        })
        .await
        .expect("drop trigger");

    let first = store.fold_finished(now_millis(), 10).await.expect("fold");
    assert_eq!(first.len(), 10);
    drop(store);

    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        store.watermark().await.expect("mark").map(|m| m.folded),
        Some(10)
    );
    let mut rest = Vec::new();
    loop {
        let batch = store.fold_finished(now_millis(), 7).await.expect("fold");
        if batch.is_empty() {
            break;
        }
        rest.extend(batch);
    }
    assert_eq!(rest.len(), 20);
    assert!(rest.iter().all(|t| first.iter().all(|f| f.id != t.id)));
    assert_eq!(cancelled_in_rollups(&store).await, 30);
}
