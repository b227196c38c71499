//! Checks that the statements on hot or large paths use the index meant for them, so they stay
//! fast with many tasks (SQLite's planner has no statistics to go by on a fresh database).

use rusqlite::types::Value;

use super::claim::{
    DROP_EMPTY_HEADS, DUE_HEADS, MOVE_CLAIMED_HEADS, OLDEST_DUE, RUNNING_PER_USER, USER_DUE,
};
use super::list::{batch_sql, conditions, late_sql, list_sql, unindexed_sql, user_walk_sql, Plan};
use super::schedules::PURGE_RUNS;
use super::tasks::{COUNTS, COUNT_UNFINISHED, EXPIRED_LEASES, PURGE_FINISHED};
use super::{connection, migrations};
use crate::ListQuery;
use task_core::TaskStatus;

/// The query plan of `sql`, with every parameter bound to `args` or NULL.
fn plan(sql: &str, args: &[Value]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut conn =
        connection::open_writer(&dir.path().join("plan.db"), Default::default()).unwrap();
    migrations::apply(&mut conn, &migrations::OWN_SETS).unwrap();
    let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let params: Vec<Value> = (0..statement.parameter_count())
        .map(|i| args.get(i).cloned().unwrap_or(Value::Null))
        .collect();
    let rows = statement
        .query_map(rusqlite::params_from_iter(params), |row| {
            row.get::<_, String>(3)
        })
        .unwrap();
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
        .join("\n")
}

/// Asserts `sql` reads `index` and sorts nothing.
fn check(sql: &str, args: &[Value], index: &str) {
    let plan = check_index(sql, args, index);
    assert!(!plan.contains("TEMP B-TREE"), "expected no sort:\n{plan}");
}

/// Asserts `sql` reads `index`; returns the plan.
fn check_index(sql: &str, args: &[Value], index: &str) -> String {
    let plan = plan(sql, args);
    assert!(plan.contains(index), "expected {index}:\n{plan}");
    plan
}

#[test]
fn claims_read_their_indexes_in_order() {
    check(OLDEST_DUE, &[], "idx_background_tasks_due");
    check(USER_DUE, &[], "idx_background_tasks_unfinished");
    // A fair claim meets the users in the heads' index alone, never in the tasks table.
    check(
        DUE_HEADS,
        &[],
        "COVERING INDEX idx_background_task_heads_due",
    );
    // A claim moves its groups' heads through the heads' primary key, each next task one
    // seek of the per-user index; never a scan of the heads or the tasks.
    for moving in [MOVE_CLAIMED_HEADS, DROP_EMPTY_HEADS] {
        let plan = plan(moving, &[Value::Text("[1,2]".into())]);
        assert!(
            !plan.contains("SCAN h") && !plan.contains("SCAN background_task_heads"),
            "{plan}"
        );
        assert!(
            !plan.contains("SCAN t") && !plan.contains("SCAN c"),
            "{plan}"
        );
    }
    // Grouping the few processing tasks sorts them, which is cheap; scanning every task, or
    // reading each processing task's row, is not.
    check_index(
        RUNNING_PER_USER,
        &[],
        "COVERING INDEX idx_background_tasks_lease_expiry",
    );
}

#[test]
fn maintenance_statements_use_their_indexes() {
    check(EXPIRED_LEASES, &[], "idx_background_tasks_lease_expiry");
    check(PURGE_FINISHED, &[], "idx_background_tasks_finished");
    check(COUNT_UNFINISHED, &[], "idx_background_tasks_unfinished");
    // Each schedule's old runs are a range of its index, never a scan of every run.
    let plan = check_index(PURGE_RUNS, &[], "idx_schedule_runs_recent");
    assert!(!plan.contains("SCAN r"), "{plan}");
    // The waiting half of the queue limit's count reads only the user's waiting tasks.
    check(COUNT_UNFINISHED, &[], "idx_background_tasks_waiting");
    // The dashboard's counts read the index alone, not the table with its params and results.
    check(
        COUNTS,
        &[],
        "COVERING INDEX idx_background_tasks_type_status",
    );
}

#[test]
fn the_counts_index_is_never_taken_for_a_listing() {
    for statuses in [vec![], vec![task_core::TaskStatus::Failed]] {
        let by_type = ListQuery {
            task_type: Some("generation".into()),
            statuses,
            ..Default::default()
        };
        let (sql, args) = list_sql(&by_type, &Plan::Walk(None));
        let plan = plan(&sql, &args);
        assert!(!plan.contains("idx_background_tasks_type_status"), "{plan}");
    }
}

#[test]
fn lists_are_read_in_index_order() {
    let by_user = ListQuery {
        user_id: Some("ada@example.com".into()),
        ..Default::default()
    };
    let (sql, args) = list_sql(&by_user, &Plan::Walk(None));
    check(&sql, &args, "idx_background_tasks_user_created");

    let everyone = ListQuery::default();
    let (sql, args) = list_sql(&everyone, &Plan::Walk(None));
    check(&sql, &args, "idx_background_tasks_created");

    let next_page = ListQuery {
        after: Some("17.task_17_abcdef".parse().unwrap()),
        ..by_user
    };
    let (sql, args) = list_sql(&next_page, &Plan::Walk(None));
    check(&sql, &args, "idx_background_tasks_user_created");
}

#[test]
fn status_listings_read_the_status_in_creation_order_or_its_few_tasks() {
    let listing = |status: TaskStatus, user: Option<&str>| {
        list_sql(
            &ListQuery {
                statuses: vec![status],
                user_id: user.map(str::to_owned),
                ..Default::default()
            },
            &Plan::Walk(None),
        )
    };
    // Rare among finished tasks: their own partial index, newest end first, no sort.
    let (sql, args) = listing(TaskStatus::Failed, None);
    check(&sql, &args, "idx_background_tasks_failed");
    let (sql, args) = listing(TaskStatus::Cancelled, None);
    check(&sql, &args, "idx_background_tasks_cancelled");
    // Common among recent tasks: met at once walking every task newest first.
    for status in [TaskStatus::Pending, TaskStatus::Completed] {
        let (sql, args) = listing(status, None);
        check(&sql, &args, "idx_background_tasks_created");
    }
    // Few by nature: all of them, sorted.
    let (sql, args) = listing(TaskStatus::Processing, None);
    check_index(&sql, &args, "idx_background_tasks_lease_expiry");
    let (sql, args) = listing(TaskStatus::Waiting, None);
    check_index(&sql, &args, "idx_background_tasks_waiting");
    // One user's tasks of a status: the user's own index still.
    let (sql, args) = listing(TaskStatus::Failed, Some("ada@example.com"));
    check(&sql, &args, "idx_background_tasks_user_created");
    // Several statuses: every task newest first, as before.
    let several = ListQuery {
        statuses: vec![TaskStatus::Failed, TaskStatus::Cancelled],
        ..Default::default()
    };
    let (sql, args) = list_sql(&several, &Plan::Walk(None));
    check(&sql, &args, "idx_background_tasks_created");
}

#[test]
fn searches_start_from_the_search_index() {
    let search = |user: Option<&str>| ListQuery {
        search: Some("historia".into()),
        user_id: user.map(str::to_owned),
        statuses: vec![TaskStatus::Failed],
        ..Default::default()
    };
    for user in [None, Some("ada@example.com")] {
        let query = search(user);
        let all = Plan::AllMatches("historia".into(), "\"historia\"".into());
        let (sql, args) = list_sql(&query, &all);
        let plan = check_index(&sql, &args, "VIRTUAL TABLE");
        assert!(
            plan.contains("INTEGER PRIMARY KEY"),
            "rows by rowid:\n{plan}"
        );
        assert!(
            plan.find("VIRTUAL TABLE") < plan.find("INTEGER PRIMARY KEY"),
            "the index's matches first:\n{plan}"
        );
        assert!(
            plan.contains("SEARCH background_tasks USING INTEGER PRIMARY KEY (rowid>?)"),
            "the tasks above the watermark are a rowid range:\n{plan}"
        );
        let (filters, _) = conditions(&query, Some("historia"));
        let plan = plan_of(&batch_sql(&filters));
        assert!(
            plan.find("VIRTUAL TABLE") < plan.find("INTEGER PRIMARY KEY"),
            "the walk's batches too:\n{plan}"
        );
        assert!(
            !plan.contains("TEMP B-TREE"),
            "a batch comes in rowid order:\n{plan}"
        );
    }
    // The walk starts with the tasks above the watermark: a rowid range, newest first.
    let (filters, _) = conditions(&search(None), Some("historia"));
    let plan = plan_of(&unindexed_sql(&filters));
    assert!(
        plan.contains("SEARCH background_tasks USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        "{plan}"
    );
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    // The walk's check for tasks out of rowid order reads index entries newer than the page.
    let (filters, _) = conditions(&search(None), Some("historia"));
    let plan = plan_of(&late_sql(&filters));
    assert!(
        plan.contains("idx_background_tasks_failed ((created_at,id)>(?,?))"),
        "{plan}"
    );
    let (filters, _) = conditions(&search(Some("ada@example.com")), Some("historia"));
    let plan = plan_of(&late_sql(&filters));
    assert!(
        plan.contains("idx_background_tasks_user_created (user_id=? AND (created_at,id)>(?,?))"),
        "{plan}"
    );
    let everyone = ListQuery {
        search: Some("historia".into()),
        ..Default::default()
    };
    let (filters, _) = conditions(&everyone, Some("historia"));
    let plan = plan_of(&late_sql(&filters));
    assert!(
        plan.contains("idx_background_tasks_created ((created_at,id)>(?,?))"),
        "{plan}"
    );
    // A user's search walks the user's newest tasks in index order first.
    let (filters, _) = conditions(
        &ListQuery {
            search: Some("historia".into()),
            user_id: Some("ada@example.com".into()),
            ..Default::default()
        },
        Some("historia"),
    );
    let plan = plan_of(&user_walk_sql(&filters));
    assert!(
        plan.contains("idx_background_tasks_user_created (user_id=? AND (created_at,id)>(?,?))")
            || plan.contains("idx_background_tasks_user_created (user_id=?"),
        "{plan}"
    );
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    // A walk with a search still reads in index order.
    let query = ListQuery {
        search: Some("hi".into()),
        ..Default::default()
    };
    let (sql, args) = list_sql(&query, &Plan::Walk(Some("hi".into())));
    check(&sql, &args, "idx_background_tasks_created");
}

fn plan_of(sql: &str) -> String {
    plan(sql, &[])
}
