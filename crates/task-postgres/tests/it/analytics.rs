//! Rollups after failures on PostgreSQL: a fold that fails after writing its rows but before
//! moving the watermark leaves nothing behind, and another instance resumes exactly where the
//! last committed fold left off.

use task_core::{now_millis, NewTask};
use task_store::analytics::{report, GroupBy, Prices, Resolution, RollupQuery, UserScope};
use task_store::{AnalyticsStore, TaskStore};

use crate::support::TestDb;

async fn cancelled_in_rollups(store: &dyn AnalyticsStore) -> i64 {
    let rollups = store
        .rollups(&RollupQuery {
            resolution: Resolution::Day,
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
async fn a_failed_fold_writes_nothing_and_another_instance_resumes() {
    let Some(db) = TestDb::new() else { return };
    let first = db.store().await;
    for n in 0..30 {
        let task = first
            .create(NewTask::new(format!("user{}@example.com", n % 3), "gen"))
            .await
            .expect("create");
        first.cancel(&task.id, None).await.expect("cancel");
    }
    let folded = first.fold_finished(now_millis(), 10).await.expect("fold");
    assert_eq!(folded.len(), 10);

    // The next fold breaks after its rows are written, before the watermark moves.
    let admin = db.admin().await;
    admin
        .batch_execute(&format!(
            "SET search_path TO \"{}\";
             CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
             CREATE TRIGGER half_way BEFORE UPDATE ON analytics_watermark
               FOR EACH ROW EXECUTE FUNCTION refuse();",
            db.schema()
        ))
        .await
        .expect("trigger");
    assert!(first.fold_finished(now_millis(), 10).await.is_err());
    assert_eq!(
        cancelled_in_rollups(&first).await,
        10,
        "nothing half-written"
    );
    admin
        .batch_execute("DROP TRIGGER half_way ON analytics_watermark")
        .await
        .expect("drop trigger");
    drop(first);

    let second = db.store().await;
    let mut rest = Vec::new();
    loop {
        let batch = second.fold_finished(now_millis(), 7).await.expect("fold");
        if batch.is_empty() {
            break;
        }
        rest.extend(batch);
    }
    assert_eq!(rest.len(), 20);
    assert!(rest.iter().all(|t| folded.iter().all(|f| f.id != t.id)));
    assert_eq!(cancelled_in_rollups(&second).await, 30);
    assert_eq!(
        second.watermark().await.expect("mark").map(|m| m.folded),
        Some(30)
    );
}
