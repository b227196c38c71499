//! Checks that the claims' plans read the due index in its order whatever the planner knows
//! about the table: never analyzed after a bulk load, analyzed while it was empty (statistics
//! that say "no rows"), and analyzed after the load. A claim that sorts the backlog costs
//! milliseconds per call at ten thousand pending tasks; one that walks the index costs a few
//! index probes, so the drain rate must not depend on an `ANALYZE` (issue #21).
//!
//! Each statement is checked twice: with its parameters known (the custom plan a statement
//! gets for its first executions) and as the generic plan a prepared statement settles on.

use task_core::NewTask;
use task_store::TaskStore;
use test_support::postgres::TestSchema;
use tokio_postgres::Client;

use crate::{sql, PostgresConfig, PostgresStore};

/// Pending tasks the checks load: enough that a sort of the backlog would be the planner's
/// own choice if it knew about them and preferred it.
const LOADED: usize = 5_000;

/// What the planner knows when the plan is made.
#[derive(Debug, Clone, Copy)]
enum Statistics {
    /// The table was never analyzed (a fresh database, autovacuum not yet run or off).
    Never,
    /// Analyzed while empty, then bulk-loaded: the statistics say the table has no rows.
    WhileEmpty,
    /// Analyzed after the load.
    Current,
}

/// A store on a fresh schema holding [`LOADED`] pending tasks of 100 users (one in ten of
/// high priority), and an admin connection on that schema; `None` without a test server.
async fn loaded(statistics: Statistics) -> Option<(TestSchema, PostgresStore, Client)> {
    let schema = TestSchema::new("tasklane_plans")?;
    let config = PostgresConfig {
        schema: schema.name().to_owned(),
        ..PostgresConfig::default()
    };
    let store = PostgresStore::connect(schema.url(), config).await.unwrap();
    let admin = schema.admin().await;
    admin
        .batch_execute(&format!(
            "SET search_path = {}; \
             ALTER TABLE background_tasks SET (autovacuum_enabled = false)",
            schema.name()
        ))
        .await
        .unwrap();
    if let Statistics::WhileEmpty = statistics {
        admin
            .batch_execute("ANALYZE background_tasks")
            .await
            .unwrap();
    }
    for chunk in 0..LOADED / 1_000 {
        let batch = (0..1_000)
            .map(|i| {
                let mut new = NewTask::new(format!("user{}@example.com", i % 100), "noop");
                if (chunk * 1_000 + i) % 10 == 0 {
                    new.priority = task_core::Priority::High;
                }
                new
            })
            .collect();
        store.create_many(batch).await.unwrap();
    }
    if let Statistics::Current = statistics {
        admin
            .batch_execute("ANALYZE background_tasks")
            .await
            .unwrap();
    }
    Some((schema, store, admin))
}

/// The plan of `statement` as text: with `params` bound (a custom plan), or, when `generic`,
/// the generic plan (`params` are then SQL literals of the declared `types`).
async fn plan(admin: &Client, statement: &str, types: &str, params: &str, generic: bool) -> String {
    // The setting the fair claim's per-user read runs under; the other statements' plans do
    // not depend on it.
    let planner = if statement == sql::FAIR_NEXT {
        format!("SET {};", sql::FAIR_NEXT_PLANNER)
    } else {
        "RESET enable_bitmapscan;".to_owned()
    };
    let mode = if generic {
        "force_generic_plan"
    } else {
        "force_custom_plan"
    };
    admin
        .batch_execute(&format!(
            "DEALLOCATE ALL; {planner} SET plan_cache_mode = {mode}; \
             PREPARE checked({types}) AS {statement}"
        ))
        .await
        .unwrap();
    // EXPLAIN without ANALYZE plans the claim but runs nothing, so nothing is claimed.
    let rows = admin
        .query(&format!("EXPLAIN EXECUTE checked({params})"), &[])
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that each plan of `statement` reads `index` and sorts nothing, under every kind
/// of statistics.
async fn check(statement: &str, types: &str, params: &str, index: &str) {
    check_plans(statement, types, params, index, &["Sort", "Seq Scan"]).await;
}

/// Asserts that each plan of `statement` reads `index` and has none of `absent`, under every
/// kind of statistics.
async fn check_plans(statement: &str, types: &str, params: &str, index: &str, absent: &[&str]) {
    for statistics in [
        Statistics::Never,
        Statistics::WhileEmpty,
        Statistics::Current,
    ] {
        let Some((_schema, _store, admin)) = loaded(statistics).await else {
            return;
        };
        for generic in [false, true] {
            let plan = plan(&admin, statement, types, params, generic).await;
            let context = format!("{statistics:?}, generic plan: {generic}\n{plan}");
            assert!(plan.contains(index), "expected {index}: {context}");
            for node in absent {
                assert!(!plan.contains(node), "expected no {node}: {context}");
            }
        }
    }
}

/// A far-future `now`, so every loaded task is due.
const NOW: &str = "4102444800000";

#[tokio::test]
async fn the_claim_walks_the_due_index_in_order_without_statistics() {
    let tokens: Vec<String> = (0..64).map(|n| format!("\"{n:032x}\"")).collect();
    check(
        &sql::CLAIM,
        "int8, text[], int8, text, text[], int8, int2[]",
        &format!(
            "{NOW}, '{{noop}}', 64, 'w', '{{{}}}', {NOW}, '{{2,1,0}}'",
            tokens.join(",")
        ),
        "idx_background_tasks_due",
    )
    .await;
}

#[tokio::test]
async fn the_fair_claim_walks_the_heads_in_order_without_statistics() {
    check(
        sql::FAIR_HEADS,
        "int8, text[], int8, int2, int8, int8, text, text",
        &format!("{NOW}, '{{noop,other}}', 96, 1, -1, -1, '', ''"),
        "idx_background_task_heads_due",
    )
    .await;
}

#[tokio::test]
async fn the_fair_claims_next_tasks_seek_each_user_without_statistics() {
    check(
        sql::FAIR_NEXT,
        "int8, text[], text[], int8[], int8[], text[], int8[], int8, int2",
        &format!(
            "{NOW}, '{{noop,other}}', '{{user1@example.com,user2@example.com}}', '{{0,0}}', \
             '{{0,0}}', '{{noop,noop}}', '{{0,0}}', 2, 1"
        ),
        "idx_background_tasks_unfinished",
    )
    .await;
}

#[tokio::test]
async fn a_completion_group_reads_its_tasks_by_id_without_statistics() {
    // Not every processing task through the lease index, joined pairwise with the group.
    check_plans(
        &sql::COMPLETE_GROUP,
        "text[], text[], jsonb[], int8[]",
        &format!("'{{a,b}}', '{{x,y}}', ARRAY['null', 'null']::jsonb[], '{{{NOW},{NOW}}}'"),
        "background_tasks_pkey",
        &["Seq Scan", "idx_background_tasks_lease_expiry"],
    )
    .await;
}

#[tokio::test]
async fn a_fair_claim_drops_stale_heads_through_the_heads_key_without_statistics() {
    // Not a scan of every head for the picked ids.
    check_plans(
        sql::DROP_STALE_HEADS,
        "text[], text[]",
        "'{a,b}', '{user1@example.com,user2@example.com}'",
        "background_task_heads_pkey",
        &["Seq Scan on background_task_heads"],
    )
    .await;
}
