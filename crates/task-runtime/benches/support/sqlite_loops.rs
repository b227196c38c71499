//! The hand-written SQLite drain loops that tasklane's runtime is measured against: the
//! store's own pragmas and statements on one connection, claiming up to [`BATCH`] tasks per
//! transaction. Shared by the drain bench (`benches/drain.rs`) and the peers bench
//! (`benches/peers`, through `#[path]`), so both measure the same floor.

use std::time::{Duration, Instant};

use task_core::now_millis;
use task_store::backend::lease_token::new_lease_token;
use task_store::rusqlite::{params, Connection, TransactionBehavior};

/// Tasks each claim takes at most.
pub const BATCH: usize = 64;

/// The baseline: claim up to 64 in one transaction, complete each in its own, on one
/// connection, with the store's pragmas and statements. Returns tasks drained and the time.
pub fn hand_written_drain(path: &std::path::Path) -> (usize, Duration) {
    hand_loop(path, false)
}

/// The fastest shape one writer allows: claim up to 64 in one transaction, complete all of
/// them in the next (the same per-row completion statement, cached). Nothing waits between
/// the two, so this is the ceiling for a drain of no-op tasks on this schema.
pub fn hand_written_batch_drain(path: &std::path::Path) -> (usize, Duration) {
    hand_loop(path, true)
}

fn hand_loop(path: &std::path::Path, one_completion_transaction: bool) -> (usize, Duration) {
    let mut conn = Connection::open(path).expect("open baseline");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;",
    )
    .expect("pragmas");
    conn.set_db_config(
        task_store::rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .expect("QPSG");
    let columns = "id, user_id, task_type, status, label, description, progress, total, \
        result, error, params, attempt, max_attempts, run_at, lease_owner, lease_token, \
        lease_expires_at, cancel_requested, version, created_at, updated_at, started_at, \
        completed_at";
    // The store's pick: the priority bands highest first, each one range of the due index
    // (which leads with the priority), so no claim sorts the backlog.
    let pick = "SELECT rowid FROM background_tasks WHERE status = 'pending' AND priority = ?3 \
        AND run_at <= ?1 ORDER BY run_at, created_at, user_id, task_type, rowid LIMIT ?2";
    // The store's claim: every picked row in one statement, rows and tokens bound as JSON.
    let take = format!(
        "UPDATE background_tasks SET status = 'processing', attempt = attempt + 1, \
         progress = 0, started_at = ?2, completed_at = NULL, lease_owner = 'baseline', \
         lease_token = picked.token, lease_expires_at = ?2 + 30000, cancel_requested = 0, \
         version = version + 1, updated_at = MAX(updated_at, ?2) \
         FROM (SELECT value ->> 0 AS task_rowid, value ->> 1 AS token \
               FROM json_each(?1)) AS picked \
         WHERE background_tasks.rowid = picked.task_rowid AND status = 'pending' \
         RETURNING {columns}, background_tasks.rowid"
    );
    let complete = format!(
        "UPDATE background_tasks SET status = 'completed', result = 'null', \
         progress = total, error = NULL, completed_at = ?3, lease_owner = NULL, \
         lease_token = NULL, lease_expires_at = NULL, version = version + 1, \
         updated_at = MAX(updated_at, ?3) \
         WHERE id = ?1 AND status = 'processing' AND lease_token = ?2 RETURNING {columns}"
    );
    let started = Instant::now();
    let mut drained = 0;
    loop {
        let now = now_millis();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin claim");
        let mut rowids: Vec<i64> = Vec::with_capacity(BATCH);
        for band in task_core::Priority::CLAIM_ORDER {
            let wanted = (BATCH - rowids.len()) as i64;
            if wanted == 0 {
                break;
            }
            let picked: Vec<i64> = tx
                .prepare_cached(pick)
                .expect("prepare pick")
                .query_map(params![now, wanted, band.rank()], |row| row.get(0))
                .expect("pick")
                .collect::<Result<_, _>>()
                .expect("pick rows");
            rowids.extend(picked);
        }
        let picked = rowids
            .iter()
            .map(|rowid| {
                format!(
                    "[{rowid},\"{}\"]",
                    new_lease_token().expect("OS randomness")
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        let leases: Vec<(String, String)> = if rowids.is_empty() {
            Vec::new()
        } else {
            tx.prepare_cached(&take)
                .expect("prepare take")
                .query_map(params![format!("[{picked}]"), now], |row| {
                    Ok((row.get(0)?, row.get(15)?))
                })
                .expect("take")
                .collect::<Result<_, _>>()
                .expect("take rows")
        };
        tx.commit().expect("commit claim");
        if leases.is_empty() {
            return (drained, started.elapsed());
        }
        if one_completion_transaction {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .expect("begin complete");
            for (id, token) in leases {
                tx.prepare_cached(&complete)
                    .expect("prepare complete")
                    .query_row(params![id, token, now_millis()], |row| {
                        row.get::<_, String>(0)
                    })
                    .expect("complete");
                drained += 1;
            }
            tx.commit().expect("commit complete");
            continue;
        }
        for (id, token) in leases {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .expect("begin complete");
            tx.prepare_cached(&complete)
                .expect("prepare complete")
                .query_row(params![id, token, now_millis()], |row| {
                    row.get::<_, String>(0)
                })
                .expect("complete");
            tx.commit().expect("commit complete");
            drained += 1;
        }
    }
}
