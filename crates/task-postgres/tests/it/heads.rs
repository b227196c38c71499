//! The fair claim's heads (`background_task_heads`, migration 0012): a head left naming a task
//! that is no longer pending (two writers of one group at once can leave one) is rebuilt by the
//! next fair claim, which still takes the user's oldest due task.

use std::time::Duration;

use task_core::NewTask;
use task_store::{ClaimRequest, TaskStore};

use crate::support::TestDb;

fn fair(limit: usize, now: i64) -> ClaimRequest {
    ClaimRequest {
        worker_id: "heads".to_owned(),
        limit,
        task_types: vec!["heads".to_owned()],
        lease_for: Duration::from_secs(60),
        max_running_per_user: Some(5),
        now,
    }
}

#[tokio::test]
async fn a_fair_claim_rebuilds_a_head_naming_a_task_no_longer_pending() {
    let Some(db) = TestDb::new() else { return };
    let store = db.store().await;
    let now = task_core::now_millis();
    let batch = [("a@heads", 1), ("a@heads", 2), ("b@heads", 3)]
        .into_iter()
        .map(|(user, offset)| NewTask::new(user, "heads").with_run_at(now - 10_000 + offset))
        .collect();
    let tasks = store.create_many(batch).await.unwrap();
    // a's oldest task runs (an unfair claim), and a's head is then made to name it again, as
    // a claimer racing the one that moved the head can leave it.
    let unfair = ClaimRequest {
        max_running_per_user: None,
        ..fair(1, now)
    };
    let running = store.claim(&unfair).await.unwrap();
    assert_eq!(running[0].id, tasks[0].id);
    let admin = db.admin().await;
    let stale = admin
        .execute(
            &format!(
                "UPDATE \"{}\".background_task_heads h SET id = t.id, seq = t.seq, \
                 run_at = t.run_at, created_at = t.created_at \
                 FROM \"{0}\".background_tasks t WHERE t.id = $1 AND h.user_id = t.user_id",
                db.schema()
            ),
            &[&tasks[0].id.as_str()],
        )
        .await
        .unwrap();
    assert_eq!(stale, 1);
    let claimed = store.claim(&fair(2, now)).await.unwrap();
    let mut ids: Vec<&str> = claimed.iter().map(|t| t.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![tasks[1].id.as_str(), tasks[2].id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "a's next task and b's");
    let head: String = admin
        .query_one(
            &format!(
                "SELECT count(*)::text FROM \"{}\".background_task_heads WHERE user_id = 'a@heads'",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(head, "0", "a has nothing pending, so no head");
}
