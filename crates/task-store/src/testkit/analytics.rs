//! Cases: analytics rollups ([`crate::AnalyticsStore`]): folding in watermark order, exact sums,
//! limits and `until`, the cleaner sparing unfolded tasks, pruning, and concurrent folds.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use task_core::{Task, TaskStatus};

use super::support::{claim_only, new_task, now_ms, Store};
use crate::analytics::{
    report, AnalyticsStore, FoldedTask, GroupBy, Price, Prices, Resolution, RollupQuery, UserScope,
    ALL_USERS,
};
use crate::{Failure, TaskStore};

/// What an analytics-suite factory's store is, as both traits.
#[derive(Clone)]
pub struct AnalyticsStores {
    /// The store's tasks.
    pub tasks: Arc<dyn TaskStore>,
    /// The same store's rollups.
    pub analytics: Arc<dyn AnalyticsStore>,
}

/// How the suite finishes a task.
#[derive(Debug, Clone, Copy)]
enum End {
    Complete,
    Fail,
    TimeOut,
    Cancel,
}

/// Creates a task of `task_type` for `user` naming `provider`, and finishes it as `end` (a
/// completed one reports `model` and token usage). Each task type is driven one at a time.
async fn finish(store: &Store, user: &str, task_type: &str, end: End, tokens: i64) -> Task {
    let task = store
        .create(new_task(user, task_type).with_params(json!({"provider": "openai"})))
        .await
        .expect("create");
    if let End::Cancel = end {
        return store.cancel(&task.id, None).await.expect("cancel");
    }
    let (_, lease) = claim_only(store, task_type).await;
    match end {
        End::Complete => store
            .complete(
                &lease,
                json!({
                    "provider": "openai",
                    "model": "gpt-test",
                    "usage": {"inputTokens": tokens, "outputTokens": tokens * 2},
                }),
            )
            .await
            .expect("complete"),
        End::Fail => store
            .fail(
                &lease,
                Failure::permanent(format!("provider said no {tokens} times")),
            )
            .await
            .expect("fail"),
        End::TimeOut => store
            .fail(&lease, Failure::permanent("timed out after 10m"))
            .await
            .expect("fail"),
        End::Cancel => unreachable!("cancelled above"),
    }
}

fn all_users(resolution: Resolution) -> RollupQuery {
    RollupQuery {
        resolution,
        from: i64::MIN / 2,
        to: i64::MAX / 2,
        users: UserScope::AllUsers,
    }
}

/// A mixed history of eight tasks of two users, finished one after the other.
async fn history(store: &Store) -> Vec<Task> {
    let plan = [
        ("ada", "gen", End::Complete, 100),
        ("ada", "gen", End::Complete, 10),
        ("bob", "gen", End::Fail, 1),
        ("bob", "gen", End::Fail, 2),
        ("ada", "check", End::TimeOut, 0),
        ("bob", "check", End::Cancel, 0),
        ("bob", "gen", End::Complete, 1),
        ("ada", "check", End::Complete, 5),
    ];
    let mut tasks = Vec::new();
    for (user, task_type, end, tokens) in plan {
        tasks.push(finish(store, user, task_type, end, tokens).await);
    }
    tasks
}

/// Every finished task is folded once, in `(completed_at, id)` order, into rows whose sums
/// match the tasks exactly at every resolution and user scope; the watermark moves to the last.
pub async fn folding_sums_finished_tasks_exactly(stores: AnalyticsStores) {
    let (tasks, analytics) = (&stores.tasks, &stores.analytics);
    assert_eq!(analytics.watermark().await.expect("watermark"), None);
    let finished = history(tasks).await;
    let unfinished = tasks.create(new_task("ada", "gen")).await.expect("create");

    let folded = analytics
        .fold_finished(now_ms() + 1_000, 100)
        .await
        .expect("fold");
    let mut expected: Vec<FoldedTask> = finished.iter().filter_map(FoldedTask::of).collect();
    expected.sort_by(|a, b| (a.completed_at, a.id.as_str()).cmp(&(b.completed_at, b.id.as_str())));
    assert_eq!(folded, expected);
    assert!(folded.iter().all(|t| t.id != unfinished.id));
    let mark = analytics
        .watermark()
        .await
        .expect("watermark")
        .expect("set");
    let last = expected.last().expect("tasks");
    assert_eq!(
        (mark.completed_at, mark.task_id.as_str(), mark.folded),
        (last.completed_at, last.id.as_str(), 8)
    );
    assert!(analytics
        .fold_finished(now_ms() + 1_000, 100)
        .await
        .expect("fold again")
        .is_empty());

    let prices = Prices(BTreeMap::from([(
        "openai/gpt-test".to_owned(),
        Price {
            input_per_million: 1.0,
            output_per_million: 2.0,
        },
    )]));
    for resolution in Resolution::ALL {
        let rollups = analytics
            .rollups(&all_users(resolution))
            .await
            .expect("rollups");
        assert!(rollups.rows.iter().all(|r| r.key.user_id == ALL_USERS));
        let by_type = report(&rollups, GroupBy::TaskType, &prices).expect("report");
        let gen = by_type
            .totals
            .iter()
            .find(|s| s.group == "gen")
            .expect("gen");
        assert_eq!((gen.completed, gen.failed, gen.cancelled), (3, 2, 0));
        assert_eq!((gen.attempts, gen.retries, gen.timeouts), (5, 0, 0));
        assert_eq!((gen.input_tokens, gen.output_tokens), (111, 222));
        assert!((gen.cost_usd - (111.0 + 444.0) / 1e6).abs() < 1e-12);
        assert_eq!(gen.success_rate, Some(0.6));
        let check = by_type
            .totals
            .iter()
            .find(|s| s.group == "check")
            .expect("check");
        assert_eq!((check.completed, check.failed, check.cancelled), (1, 1, 1));
        assert_eq!(check.timeouts, 1);
        assert_eq!(
            by_type
                .failures
                .first()
                .map(|f| (f.reason.as_str(), f.count)),
            Some(("provider said no # times", 2))
        );
        let runs: u64 = by_type
            .series
            .iter()
            .map(|s| (s.completed + s.failed) as u64)
            .sum();
        assert_eq!(runs, 7, "{resolution:?}");

        let ada = analytics
            .rollups(&RollupQuery {
                users: UserScope::User("ada".to_owned()),
                ..all_users(resolution)
            })
            .await
            .expect("ada's rollups");
        let ada = report(&ada, GroupBy::Nothing, &prices).expect("report");
        assert_eq!(
            (ada.totals[0].completed, ada.totals[0].failed),
            (3, 1),
            "{resolution:?}"
        );
        let each = analytics
            .rollups(&RollupQuery {
                users: UserScope::EachUser,
                ..all_users(resolution)
            })
            .await
            .expect("each user's rollups");
        let each = report(&each, GroupBy::User, &prices).expect("report");
        let groups: Vec<&str> = each.totals.iter().map(|s| s.group.as_str()).collect();
        assert_eq!(groups, ["ada", "bob"]);
    }
}

/// `limit` caps a fold, `until` holds back tasks finished later, and repeated folds resume
/// from the watermark without gaps or repeats.
pub async fn folds_resume_from_the_watermark(stores: AnalyticsStores) {
    let (tasks, analytics) = (&stores.tasks, &stores.analytics);
    let finished = history(tasks).await;
    let mut ends: Vec<i64> = finished.iter().filter_map(|t| t.completed_at).collect();
    ends.sort_unstable();
    let held_back = ends.iter().filter(|at| **at > ends[3]).count();
    let early = analytics.fold_finished(ends[3], 100).await.expect("fold");
    assert_eq!(early.len(), 8 - held_back);
    assert!(early.iter().all(|t| t.completed_at <= ends[3]));
    let mut seen: Vec<String> = early.iter().map(|t| t.id.to_string()).collect();
    loop {
        let batch = analytics
            .fold_finished(now_ms() + 1_000, 3)
            .await
            .expect("fold");
        assert!(batch.len() <= 3);
        if batch.is_empty() {
            break;
        }
        seen.extend(batch.iter().map(|t| t.id.to_string()));
    }
    let mut all: Vec<String> = finished.iter().map(|t| t.id.to_string()).collect();
    all.sort();
    seen.sort();
    assert_eq!(seen, all);
    let rollups = analytics
        .rollups(&all_users(Resolution::Day))
        .await
        .expect("rollups");
    let total = report(&rollups, GroupBy::Nothing, &Prices::default()).expect("report");
    assert_eq!(
        total.totals[0].completed + total.totals[0].failed + total.totals[0].cancelled,
        8
    );
    assert_eq!(rollups.watermark.map(|m| m.folded), Some(8));
}

/// Once folding began, the cleaner deletes only tasks the watermark passed; the rollups
/// outlive the tasks.
pub async fn purge_spares_unfolded_tasks(stores: AnalyticsStores) {
    let (tasks, analytics) = (&stores.tasks, &stores.analytics);
    let finished = history(tasks).await;
    let mut ends: Vec<i64> = finished.iter().filter_map(|t| t.completed_at).collect();
    ends.sort_unstable();
    // Nothing folded yet, but folding has begun: nothing may go.
    analytics
        .fold_finished(ends[0] - 1, 100)
        .await
        .expect("fold");
    assert_eq!(
        tasks
            .purge_finished(now_ms() + 60_000, 100)
            .await
            .expect("purge"),
        0
    );

    let folded = analytics.fold_finished(ends[4], 100).await.expect("fold");
    let mark = analytics.watermark().await.expect("mark").expect("set");
    let purged = tasks
        .purge_finished(now_ms() + 60_000, 100)
        .await
        .expect("purge");
    let before_mark = finished
        .iter()
        .filter(|t| t.completed_at.is_some_and(|at| at < mark.completed_at))
        .count();
    assert_eq!(purged, before_mark);
    assert!(purged < finished.len());
    for task in &finished {
        let kept = tasks.get(&task.id).await.is_ok();
        let folded_task = folded.iter().any(|f| f.id == task.id);
        assert!(
            kept || folded_task,
            "{} was purged before it was folded",
            task.id
        );
    }

    analytics
        .fold_finished(now_ms() + 1_000, 100)
        .await
        .expect("fold");
    let mark = analytics.watermark().await.expect("mark").expect("set");
    tasks
        .purge_finished(now_ms() + 60_000, 100)
        .await
        .expect("purge");
    for task in &finished {
        if tasks.get(&task.id).await.is_ok() {
            assert_eq!(
                task.completed_at,
                Some(mark.completed_at),
                "only tasks finished at the watermark's time wait for a later fold"
            );
        }
    }
    let rollups = analytics
        .rollups(&all_users(Resolution::Minute))
        .await
        .expect("rollups");
    let total = report(&rollups, GroupBy::Nothing, &Prices::default()).expect("report");
    assert_eq!(
        total.totals[0].completed, 4,
        "rollups outlive the purged tasks"
    );
}

/// Pruning removes one resolution's old buckets and nothing else.
pub async fn pruning_removes_only_old_buckets(stores: AnalyticsStores) {
    let (tasks, analytics) = (&stores.tasks, &stores.analytics);
    history(tasks).await;
    analytics
        .fold_finished(now_ms() + 1_000, 100)
        .await
        .expect("fold");
    let minute_rows = analytics
        .rollups(&all_users(Resolution::Minute))
        .await
        .expect("rollups")
        .rows
        .len();
    assert!(minute_rows > 0);
    assert_eq!(
        analytics
            .prune_rollups(Resolution::Minute, i64::MIN / 2)
            .await
            .expect("prune"),
        0
    );
    let pruned = analytics
        .prune_rollups(Resolution::Minute, now_ms() + 120_000)
        .await
        .expect("prune");
    assert!(
        pruned >= minute_rows as u64,
        "every user's and the sum's rows go"
    );
    assert!(analytics
        .rollups(&all_users(Resolution::Minute))
        .await
        .expect("rollups")
        .rows
        .is_empty());
    let days = analytics
        .rollups(&all_users(Resolution::Day))
        .await
        .expect("rollups");
    assert!(!days.rows.is_empty(), "other resolutions stay");
    assert!(!days.failures.is_empty());
}

/// Folds running at the same time (several instances) count every task exactly once.
pub async fn concurrent_folds_count_each_task_once(stores: AnalyticsStores) {
    let (tasks, analytics) = (&stores.tasks, &stores.analytics);
    let mut created = Vec::new();
    for n in 0..40 {
        let task = tasks
            .create(new_task(&format!("user{}", n % 4), "bulk"))
            .await
            .expect("create");
        created.push(task);
    }
    for task in &created {
        tasks.cancel(&task.id, None).await.expect("cancel");
    }
    let until = now_ms() + 1_000;
    let folders: Vec<_> = (0..4)
        .map(|_| {
            let analytics = Arc::clone(analytics);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let batch = analytics.fold_finished(until, 3).await.expect("fold");
                    if batch.is_empty() {
                        return ids;
                    }
                    ids.extend(batch.into_iter().map(|t| t.id.to_string()));
                }
            })
        })
        .collect();
    let mut ids = Vec::new();
    for folder in folders {
        ids.extend(folder.await.expect("folder"));
    }
    ids.sort();
    let mut expected: Vec<String> = created.iter().map(|t| t.id.to_string()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    let rollups = analytics
        .rollups(&all_users(Resolution::Hour))
        .await
        .expect("rollups");
    let total = report(&rollups, GroupBy::Nothing, &Prices::default()).expect("report");
    assert_eq!(total.totals[0].cancelled, 40);
    assert_eq!(total.series.iter().map(|s| s.cancelled).sum::<i64>(), 40);
    assert!(matches!(
        tasks.get(&created[0].id).await.map(|t| t.status),
        Ok(TaskStatus::Cancelled)
    ));
}
