//! The search index behind a watermark (migration `0011_search_watermark`): new tasks enter
//! the trigram index `background_tasks_search` in batches, from a maintenance loop, instead of
//! one FTS5 insert inside each creation's transaction.
//!
//! The index holds exactly the tasks whose rowid is at most the watermark, each with its
//! current text (the triggers of `0011` keep the indexed ones right on updates and deletes).
//! A batch indexes the next tasks above the watermark in rowid order and moves it past them,
//! in one write transaction; searches (`list`) read the tasks above it from the table. Why
//! batches: FTS5 pays a fixed cost per transaction that writes to it (a new segment, its
//! structure record), which a creation's transaction paid for a handful of rows; a batch of
//! hundreds pays it once (`docs/benchmarks.md`, "Creation without the search index's cost").

use rusqlite::{Connection, OptionalExtension};

use super::error::map_sqlite_error;
use crate::Result;

/// The watermark, as a scalar subquery the search statements embed (so each reads it in its
/// own snapshot, with nothing to pass around).
pub(super) const WATERMARK: &str =
    "(SELECT indexed_through FROM background_tasks_search_watermark)";

/// The rowid of the `?2`-th task above the watermark `?1`, or of the last one when there are
/// fewer: where this batch ends.
const BATCH_END: &str = "SELECT max(rowid) FROM (SELECT rowid FROM background_tasks \
                         WHERE rowid > ?1 ORDER BY rowid LIMIT ?2)";

const INDEX_RANGE: &str = "INSERT INTO background_tasks_search (rowid, label, description) \
                           SELECT rowid, label, description FROM background_tasks \
                           WHERE rowid > ?1 AND rowid <= ?2";

const MOVE_WATERMARK: &str = "UPDATE background_tasks_search_watermark SET indexed_through = ?1";

/// Indexes up to `limit` tasks above the watermark and moves it past them; returns how many.
/// Runs inside the writer's transaction, which makes the three statements one step.
pub(super) fn index_batch(conn: &Connection, limit: usize) -> Result<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let through: i64 = conn
        .prepare_cached(&format!("SELECT {WATERMARK}"))
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(map_sqlite_error)?;
    let end: Option<i64> = conn
        .prepare_cached(BATCH_END)
        .and_then(|mut statement| {
            statement
                .query_row(rusqlite::params![through, limit], |row| row.get(0))
                .optional()
        })
        .map_err(map_sqlite_error)?
        .flatten();
    let Some(end) = end else {
        return Ok(0);
    };
    let indexed = conn
        .prepare_cached(INDEX_RANGE)
        .and_then(|mut statement| statement.execute(rusqlite::params![through, end]))
        .map_err(map_sqlite_error)?;
    conn.prepare_cached(MOVE_WATERMARK)
        .and_then(|mut statement| statement.execute([end]))
        .map_err(map_sqlite_error)?;
    Ok(indexed)
}
