//! Listing tasks: the query's filters as SQL, newest first, keyset-paged by `(created_at, id)`.
//!
//! Big histories (issue #21; numbers and plans in `docs/benchmarks.md`, "Big histories"):
//! - A single status is written into the statement as a literal, so the planner can take the
//!   partial index of that status: `failed` and `cancelled` have one in creation order
//!   (migration `0010_history`), `processing` and `waiting` are few by nature and are read from
//!   their own partial indexes and sorted, `pending` and `completed` are common among recent
//!   tasks and are met early walking `idx_background_tasks_created`.
//! - A text search reads the trigram index `background_tasks_search` (FTS5, migration
//!   `0010_history`) unless the needle is one it cannot answer exactly (see [`fts_phrase`]);
//!   then it walks the tasks newest first and checks each, as before. Through the index it reads
//!   all the matches when there are at most [`FEW_MATCHES`] of them. Otherwise one user's
//!   search walks that user's newest [`USER_WALK`] tasks first (a common needle fills the page
//!   there) and everyone's search, or the rest of a user's, reads the matches newest first by
//!   rowid (which follows creation order closely but not exactly: see [`walk_index`]).
//! - The index holds the tasks up to a watermark (migration `0011_search_watermark`, kept by
//!   `search_index`); the tasks above it, the newest ones a maintenance loop has not indexed
//!   yet, are read by rowid beside the index's matches ([`hits_sql`]; the rowid walk reads them
//!   first, [`unindexed_sql`]) and checked like every row, so a task is found the moment it is
//!   created.
//!
//! Each row is checked with the store's own case folding (`tasklane_fold`) whichever way it
//! was found, so the index narrows what is read and never changes the answer. The statements
//! of one listing read one snapshot (a read transaction).

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};

use super::connection::FOLD_FUNCTION;
use super::error::map_sqlite_error;
use super::rows::{task_columns, task_from_row, TASK_COLUMNS};
use super::search_index::WATERMARK;
use crate::backend::rules;
use crate::{Cursor, ListQuery, Result, TaskPage};
use task_core::{Task, TaskStatus};

/// At most this many matches, a search reads them all through the index and sorts them.
pub(super) const FEW_MATCHES: usize = 1_000;
/// A user's search of a needle with many matches first walks this many of the user's newest
/// tasks (about 2 µs a task); only when they do not fill the page does it read the index.
pub(super) const USER_WALK: usize = 5_000;
/// The first batch of index matches the rowid walk reads; each next one is four times larger.
pub(super) const FIRST_BATCH: usize = 256;
const MAX_BATCH: usize = 16_384;

/// Where one plan gives way to another; [`Limits::DEFAULT`] but in tests.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// [`FEW_MATCHES`].
    pub few_matches: usize,
    /// [`USER_WALK`].
    pub user_walk: usize,
    /// [`FIRST_BATCH`].
    pub first_batch: usize,
}

impl Limits {
    pub(super) const DEFAULT: Self = Self {
        few_matches: FEW_MATCHES,
        user_walk: USER_WALK,
        first_batch: FIRST_BATCH,
    };
}

/// How many matches the index holds, counted up to a limit. The tasks above the watermark are
/// not counted: reading all matches checks them in the statement's `WHERE`, which reads only
/// the columns the filters name, and keeps the ones that pass (a rare needle's few).
const COUNT_MATCHES: &str = "SELECT COUNT(*) FROM (SELECT rowid FROM background_tasks_search \
                             WHERE background_tasks_search MATCH ?1 LIMIT ?2)";
/// One task by rowid: a row the rowid walk found passing.
const TASK_BY_ROWID: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM background_tasks WHERE rowid = ?1"
);
/// The position of a user's task that is `?4` tasks older than the newest one before a
/// position (from `idx_background_tasks_user_created`, its entries only).
const USER_NTH: &str = "SELECT created_at, id FROM background_tasks WHERE user_id = ?1 \
                        AND (created_at, id) < (?2, ?3) ORDER BY created_at DESC, id DESC \
                        LIMIT 1 OFFSET ?4";

/// How a listing is answered.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Plan {
    /// One statement over the listing indexes; a search (the folded needle) checked per row.
    Walk(Option<String>),
    /// One statement over the rows of every index match (needle, FTS5 phrase).
    AllMatches(String, String),
    /// Index matches newest rowid first, in batches, then a check for rows out of order.
    IndexWalk(String, String),
    /// One user's search: a walk of the user's newest tasks, then an index walk below them.
    UserFirst(String, String),
}

/// One page of tasks matching `query`.
pub(super) fn list(conn: &Connection, query: &ListQuery) -> Result<TaskPage> {
    list_with(conn, query, Limits::DEFAULT)
}

/// [`list`] with the limits between the plans as a parameter, so tests can send the same
/// query down each plan.
pub(super) fn list_with(conn: &Connection, query: &ListQuery, limits: Limits) -> Result<TaskPage> {
    query.validate()?;
    let snapshot = conn.unchecked_transaction().map_err(map_sqlite_error)?;
    let plan = choose(conn, query, limits)?;
    let mut tasks = match &plan {
        Plan::IndexWalk(needle, phrase) => {
            walk_index(conn, query, needle, phrase, limits.first_batch)?
        }
        Plan::UserFirst(needle, phrase) => walk_user_first(conn, query, needle, phrase, limits)?,
        plan => {
            let (sql, args) = list_sql(query, plan);
            read_tasks(conn, &sql, args)?
        }
    };
    snapshot.finish().map_err(map_sqlite_error)?;
    let more = tasks.len() > query.limit;
    tasks.truncate(query.limit);
    let next = if more {
        tasks.last().map(Cursor::after)
    } else {
        None
    };
    Ok(TaskPage { tasks, next })
}

/// Picks the plan for `query` (see the module doc).
fn choose(conn: &Connection, query: &ListQuery, limits: Limits) -> Result<Plan> {
    let few_matches = limits.few_matches;
    let Some(needle) = rules::search_needle(query) else {
        return Ok(Plan::Walk(None));
    };
    let Some(phrase) = fts_phrase(&needle) else {
        return Ok(Plan::Walk(Some(needle)));
    };
    if count(conn, COUNT_MATCHES, &phrase, few_matches)? <= few_matches {
        return Ok(Plan::AllMatches(needle, phrase));
    }
    if query.user_id.is_some() {
        return Ok(Plan::UserFirst(needle, phrase));
    }
    Ok(Plan::IndexWalk(needle, phrase))
}

/// Runs a `COUNT_*` statement: how many, up to one more than `up_to`.
fn count(conn: &Connection, sql: &str, key: &str, up_to: usize) -> Result<usize> {
    let limit = i64::try_from(up_to).unwrap_or(i64::MAX).saturating_add(1);
    let counted: i64 = conn
        .prepare_cached(sql)
        .and_then(|mut statement| statement.query_row(rusqlite::params![key, limit], |r| r.get(0)))
        .map_err(map_sqlite_error)?;
    Ok(usize::try_from(counted).unwrap_or(usize::MAX))
}

fn read_tasks(conn: &Connection, sql: &str, args: Vec<SqlValue>) -> Result<Vec<Task>> {
    let mut statement = conn.prepare_cached(sql).map_err(map_sqlite_error)?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(args), task_from_row)
        .map_err(map_sqlite_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_sqlite_error)
}

/// The FTS5 query that finds `needle` as a substring in the trigram index, or `None` when the
/// index cannot be trusted to find every task that contains it: under three characters (no
/// trigram), or a character outside ASCII and the Latin letters U+00C0..=U+024F (where the
/// case folding of SQLite's `trigram case_sensitive 0` and Rust's `to_lowercase` agree), or
/// the dotted capital I (U+0130), which Rust folds into two characters.
pub(super) fn fts_phrase(needle: &str) -> Option<String> {
    let trusted = |c: char| c.is_ascii() || (('\u{c0}'..='\u{24f}').contains(&c) && c != '\u{130}');
    if needle.chars().count() < 3 || !needle.chars().all(trusted) {
        return None;
    }
    // One FTS5 string: the trigram tokenizer makes it a phrase of consecutive trigrams,
    // which is a substring match. A double quote inside is written twice.
    Some(format!("\"{}\"", needle.replace('"', "\"\"")))
}

/// The listing's filters (every one of `query`'s but the search's index) as SQL conditions
/// joined by `AND`, with their arguments.
pub(super) fn conditions(query: &ListQuery, needle: Option<&str>) -> (String, Vec<SqlValue>) {
    let mut sql = String::from("1 = 1");
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(user_id) = &query.user_id {
        sql.push_str(" AND user_id = ?");
        args.push(SqlValue::Text(user_id.clone()));
    }
    match query.statuses.as_slice() {
        [] => {}
        // A literal (the status names are fixed words), so the planner can prove a partial
        // index of that status usable.
        [status] => sql.push_str(&format!(" AND status = '{}'", status.as_str())),
        statuses => {
            let marks = vec!["?"; statuses.len()].join(", ");
            sql.push_str(&format!(" AND status IN ({marks})"));
            args.extend(
                statuses
                    .iter()
                    .map(|status| SqlValue::Text(status.as_str().to_owned())),
            );
        }
    }
    if let Some(task_type) = &query.task_type {
        sql.push_str(" AND task_type = ?");
        args.push(SqlValue::Text(task_type.clone()));
    }
    if let Some(needle) = needle {
        sql.push_str(&format!(
            " AND (instr({FOLD_FUNCTION}(label), ?) > 0 \
               OR instr({FOLD_FUNCTION}(description), ?) > 0)"
        ));
        args.push(SqlValue::Text(needle.to_owned()));
        args.push(SqlValue::Text(needle.to_owned()));
    }
    if let Some(from) = query.created_from {
        sql.push_str(" AND created_at >= ?");
        args.push(SqlValue::Integer(from));
    }
    if let Some(before) = query.created_before {
        sql.push_str(" AND created_at < ?");
        args.push(SqlValue::Integer(before));
    }
    if let Some(after) = &query.after {
        sql.push_str(" AND (created_at, id) < (?, ?)");
        args.push(SqlValue::Integer(after.created_at));
        args.push(SqlValue::Text(after.id.as_str().to_owned()));
    }
    (sql, args)
}

/// The index a single-status listing is read from when creation order would reach its few
/// tasks late: all of them are read from their partial index and sorted.
fn few_status_index(query: &ListQuery) -> Option<&'static str> {
    match query.statuses.as_slice() {
        [TaskStatus::Processing] => Some("idx_background_tasks_lease_expiry"),
        [TaskStatus::Waiting] => Some("idx_background_tasks_waiting"),
        _ => None,
    }
}

fn page_size(query: &ListQuery) -> SqlValue {
    SqlValue::Integer(
        i64::try_from(query.limit)
            .unwrap_or(i64::MAX)
            .saturating_add(1),
    )
}

/// The one statement of a [`Plan::Walk`] or [`Plan::AllMatches`] and its arguments. It fetches
/// one row more than the page, which tells whether another page exists, so the last page has
/// no `next`.
pub(super) fn list_sql(query: &ListQuery, plan: &Plan) -> (String, Vec<SqlValue>) {
    let (mut sql, mut args) = match plan {
        Plan::Walk(needle) => {
            let (filters, args) = conditions(query, needle.as_deref());
            let table = match (needle, few_status_index(query)) {
                (None, Some(index)) => format!("background_tasks INDEXED BY {index}"),
                _ => "background_tasks".to_owned(),
            };
            (
                format!("SELECT {TASK_COLUMNS} FROM {table} WHERE {filters}"),
                args,
            )
        }
        Plan::AllMatches(needle, phrase)
        | Plan::IndexWalk(needle, phrase)
        | Plan::UserFirst(needle, phrase) => {
            let (filters, filter_args) = conditions(query, Some(needle));
            let mut args = vec![SqlValue::Text(phrase.clone())];
            args.extend(filter_args);
            // CROSS JOIN fixes the join order: from the matches the index names to their
            // rows, never the other way (the planner has no statistics to weigh the two by).
            (
                format!(
                    "SELECT {TASK_COLUMNS} FROM ({}) AS hits CROSS JOIN background_tasks \
                     ON background_tasks.rowid = hits.hit WHERE {filters}",
                    hits_sql()
                ),
                args,
            )
        }
    };
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    args.push(page_size(query));
    (sql, args)
}

/// The candidates of a search (`hit`, a rowid; one parameter, the FTS5 phrase): the index's
/// matches, which cover the tasks up to the watermark, and every task above it, which the
/// filters then check like the others.
pub(super) fn hits_sql() -> String {
    format!(
        "SELECT rowid AS hit FROM background_tasks_search WHERE background_tasks_search MATCH ? \
         UNION ALL SELECT rowid FROM background_tasks WHERE rowid > {WATERMARK}"
    )
}

/// The start of the rowid walk: the tasks above the watermark (the newest rowids, which the
/// index does not hold yet), newest first, each with whether its row passes the filters
/// (`hit`, `pass`; a task without a label that does not match makes the filters NULL, which is
/// a no). One statement, read until the page is full; it never opens the index. Parameters
/// after the filters': a rowid bound.
pub(super) fn unindexed_sql(filters: &str) -> String {
    format!(
        "SELECT rowid AS hit, coalesce(({filters}), 0) AS pass FROM background_tasks \
         WHERE rowid > {WATERMARK} AND rowid < ? ORDER BY rowid DESC"
    )
}

/// One batch of the rowid walk below the watermark: the index's next matches below a rowid,
/// each with whether its row passes the filters (`hit`, `pass`). Only the filters' columns are
/// read here; the passing rows are read by rowid after. Parameters after the filters': the
/// phrase, the rowid, the batch size.
pub(super) fn batch_sql(filters: &str) -> String {
    format!(
        "SELECT hits.hit, coalesce(({filters}), 0) AS pass FROM (SELECT rowid AS hit \
         FROM background_tasks_search WHERE background_tasks_search MATCH ? AND rowid < ? \
         ORDER BY rowid DESC LIMIT ?) AS hits CROSS JOIN background_tasks \
         ON background_tasks.rowid = hits.hit"
    )
}

/// Reads the tasks at `rowids` (in that order) into `found`.
fn read_by_rowid(conn: &Connection, rowids: Vec<i64>, found: &mut Vec<Task>) -> Result<()> {
    let mut by_rowid = conn
        .prepare_cached(TASK_BY_ROWID)
        .map_err(map_sqlite_error)?;
    for rowid in rowids {
        found.push(
            by_rowid
                .query_row([rowid], task_from_row)
                .map_err(map_sqlite_error)?,
        );
    }
    Ok(())
}

/// The unindexed part of the walk ([`unindexed_sql`]): the passing tasks above the watermark,
/// newest rowid first, until `wanted` of them. Returns whether they filled the page and the
/// lowest rowid read (`i64::MAX` for none), below which the index's batches go on.
fn walk_unindexed(
    conn: &Connection,
    filters: &str,
    filter_args: &[SqlValue],
    wanted: usize,
    found: &mut Vec<Task>,
) -> Result<(bool, i64)> {
    let mut args = filter_args.to_vec();
    args.push(SqlValue::Integer(i64::MAX));
    let mut statement = conn
        .prepare_cached(&unindexed_sql(filters))
        .map_err(map_sqlite_error)?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(args))
        .map_err(map_sqlite_error)?;
    let (mut lowest, mut passing) = (i64::MAX, Vec::new());
    while let Some(row) = rows.next().map_err(map_sqlite_error)? {
        let hit: i64 = row.get(0).map_err(map_sqlite_error)?;
        lowest = lowest.min(hit);
        if row.get::<_, bool>(1).map_err(map_sqlite_error)? {
            passing.push(hit);
            if passing.len() >= wanted {
                break;
            }
        }
    }
    drop(rows);
    let full = passing.len() >= wanted;
    read_by_rowid(conn, passing, found)?;
    Ok((full, lowest))
}

/// A [`Plan::IndexWalk`]: the page from the index's matches read newest rowid first.
///
/// Rowids follow insertion order, which is creation order but for tasks written out of
/// order (a clock step back, concurrent creations within a millisecond, ids within the same
/// millisecond). So once the walk holds a full page, every task created after the page's last
/// one and inserted before the walk's lowest rowid is read from `idx_background_tasks_created`
/// (rowids are in the index, so the others cost an index entry each, not a row) and checked.
pub(super) fn walk_index(
    conn: &Connection,
    query: &ListQuery,
    needle: &str,
    phrase: &str,
    first_batch: usize,
) -> Result<Vec<Task>> {
    let wanted = query.limit.saturating_add(1);
    let (filters, filter_args) = conditions(query, Some(needle));
    let batch = batch_sql(&filters);
    let mut found: Vec<Task> = Vec::new();
    let (full, mut below) = walk_unindexed(conn, &filters, &filter_args, wanted, &mut found)?;
    let mut size = first_batch.max(1);
    let exhausted = !full
        && loop {
            // The filters' placeholders come first in the text, the batch's after.
            let mut args = filter_args.clone();
            args.push(SqlValue::Text(phrase.to_owned()));
            args.push(SqlValue::Integer(below));
            args.push(SqlValue::Integer(i64::try_from(size).unwrap_or(i64::MAX)));
            let mut statement = conn.prepare_cached(&batch).map_err(map_sqlite_error)?;
            let mut rows = statement
                .query(rusqlite::params_from_iter(args))
                .map_err(map_sqlite_error)?;
            let mut read = 0;
            let mut passing = Vec::new();
            while let Some(row) = rows.next().map_err(map_sqlite_error)? {
                read += 1;
                let hit: i64 = row.get(0).map_err(map_sqlite_error)?;
                below = below.min(hit);
                if row.get::<_, bool>(1).map_err(map_sqlite_error)? {
                    passing.push(hit);
                }
            }
            drop(rows);
            read_by_rowid(conn, passing, &mut found)?;
            if read < size {
                break true;
            }
            if found.len() >= wanted {
                break false;
            }
            size = (size * 4).min(MAX_BATCH);
        };
    sort_newest_first(&mut found);
    found.truncate(wanted);
    if !exhausted {
        if let Some(last) = found.last() {
            let (filters, mut args) = conditions(query, Some(needle));
            let sql = late_sql(&filters);
            let mut check = vec![
                SqlValue::Integer(last.created_at),
                SqlValue::Text(last.id.as_str().to_owned()),
                SqlValue::Integer(below),
            ];
            check.append(&mut args);
            let late = read_tasks(conn, &sql, check)?;
            if !late.is_empty() {
                found.extend(late);
                sort_newest_first(&mut found);
                found.truncate(wanted);
            }
        }
    }
    Ok(found)
}

/// A [`Plan::UserFirst`]: the user's newest [`Limits::user_walk`] tasks (below the cursor)
/// walked and checked; when they hold less than a page, the rest from an index walk that
/// starts below the oldest of them.
fn walk_user_first(
    conn: &Connection,
    query: &ListQuery,
    needle: &str,
    phrase: &str,
    limits: Limits,
) -> Result<Vec<Task>> {
    let user_id = query.user_id.clone().unwrap_or_default();
    let (after_at, after_id) = query
        .after
        .as_ref()
        .map_or((i64::MAX, String::new()), |after| {
            (after.created_at, after.id.as_str().to_owned())
        });
    let offset = i64::try_from(limits.user_walk.max(1) - 1).unwrap_or(i64::MAX);
    let bound: Option<(i64, String)> = conn
        .prepare_cached(USER_NTH)
        .and_then(|mut statement| {
            statement
                .query_row(
                    rusqlite::params![user_id, after_at, after_id, offset],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
        })
        .map_err(map_sqlite_error)?;
    let Some((bound_at, bound_id)) = bound else {
        // The user has no more tasks than the walk's length: walk them all.
        let (sql, args) = list_sql(query, &Plan::Walk(Some(needle.to_owned())));
        return read_tasks(conn, &sql, args);
    };
    let (filters, filter_args) = conditions(query, Some(needle));
    let mut args = vec![
        SqlValue::Integer(bound_at),
        SqlValue::Text(bound_id.clone()),
    ];
    args.extend(filter_args);
    args.push(page_size(query));
    let mut found = read_tasks(conn, &user_walk_sql(&filters), args)?;
    let wanted = query.limit.saturating_add(1);
    if found.len() < wanted {
        let older = ListQuery {
            after: Some(Cursor {
                created_at: bound_at,
                id: bound_id.parse()?,
            }),
            limit: wanted - found.len() - 1,
            ..query.clone()
        };
        found.extend(walk_index(
            conn,
            &older,
            needle,
            phrase,
            limits.first_batch,
        )?);
    }
    Ok(found)
}

/// The newest part of a [`Plan::UserFirst`]: the tasks at or after a position that pass
/// `filters`, newest first.
pub(super) fn user_walk_sql(filters: &str) -> String {
    format!(
        "SELECT {TASK_COLUMNS} FROM background_tasks WHERE (created_at, id) >= (?, ?) \
         AND {filters} ORDER BY created_at DESC, id DESC LIMIT ?"
    )
}

/// The tasks created after a position (`(created_at, id) > (?, ?)`) but inserted before a rowid
/// (`rowid < ?`) that pass `filters`: the ones a rowid walk may have passed over. The `+`
/// keeps the planner off the rowid range (most of the table), so it reads the listing index's
/// entries newer than the position, where the rowid is at hand without the row.
pub(super) fn late_sql(filters: &str) -> String {
    format!(
        "SELECT {TASK_COLUMNS} FROM background_tasks WHERE (created_at, id) > (?, ?) \
         AND +rowid < ? AND {filters}"
    )
}

fn sort_newest_first(tasks: &mut [Task]) {
    tasks.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
}

#[cfg(test)]
mod tests {
    //! Every plan answers every query as the walk over the listing index does, page by page,
    //! with tasks inserted out of creation order.

    use super::*;
    use crate::sqlite::{connection, migrations};

    fn database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn =
            connection::open_writer(&dir.path().join("list.db"), Default::default()).unwrap();
        migrations::apply(&mut conn, &migrations::OWN_SETS).unwrap();
        let topics = ["Historia", "Segelfartyg", "Östersjöns fyrar", "Plain"];
        for i in 0..400_i64 {
            // Every 13th task is inserted far out of creation order, and every 7th shares its
            // millisecond with the one before.
            let created_at = if i % 13 == 0 {
                10_000 - i * 10
            } else if i % 7 == 0 {
                1_000 + (i - 1) * 10
            } else {
                1_000 + i * 10
            };
            let user = match i % 5 {
                0 | 1 => "heavy@example.com".to_owned(),
                n => format!("user{n}@example.com"),
            };
            let status = if i % 4 == 0 { "failed" } else { "completed" };
            conn.execute(
                "INSERT INTO background_tasks (id, user_id, task_type, status, label, \
                 description, created_at, updated_at, run_at, completed_at) \
                 VALUES (?1, ?2, 'generation', ?3, ?4, ?5, ?6, ?6, ?6, ?6)",
                rusqlite::params![
                    format!("task_{created_at}_{:020x}", (i * 7919) % 400),
                    user,
                    status,
                    format!("{} frågor om {}", i % 9, topics[(i % 4) as usize]),
                    format!("Klar {i}"),
                    created_at,
                ],
            )
            .unwrap();
        }
        (dir, conn)
    }

    /// Every page of `query`, following the cursors.
    fn all_pages(conn: &Connection, query: &ListQuery, limits: Limits) -> Vec<String> {
        let mut query = query.clone();
        let mut ids = Vec::new();
        loop {
            let page = list_with(conn, &query, limits).unwrap();
            ids.extend(page.tasks.iter().map(|task| task.id.to_string()));
            match page.next {
                Some(next) => query.after = Some(next),
                None => return ids,
            }
        }
    }

    /// The reference: the walk over the listing index, in one page.
    fn walked(conn: &Connection, query: &ListQuery) -> Vec<String> {
        let everything = ListQuery {
            limit: 1000,
            ..query.clone()
        };
        let (sql, args) = list_sql(&everything, &Plan::Walk(rules::search_needle(query)));
        read_tasks(conn, &sql, args)
            .unwrap()
            .into_iter()
            .map(|task| task.id.to_string())
            .collect()
    }

    /// Each stage of the search index: nothing indexed (the 400 tasks are all above the
    /// watermark), some, indexed and unindexed tasks renamed and deleted, everything, and tasks
    /// inserted at rowids the watermark has passed (SQLite reuses the largest rowid once the
    /// newest tasks are deleted).
    #[test]
    fn every_plan_pages_through_the_same_tasks_at_every_stage_of_the_index() {
        let (_dir, conn) = database();
        check_every_plan(&conn);
        assert_eq!(
            super::super::search_index::index_batch(&conn, 150).unwrap(),
            150
        );
        check_every_plan(&conn);
        for (rowid, text) in [
            (3, "Segelfartyg i natt"),
            (140, "ingen"),
            (151, "HISTORIA"),
            (390, "nej"),
        ] {
            conn.execute(
                "UPDATE background_tasks SET description = ?2, label = NULL WHERE rowid = ?1",
                rusqlite::params![rowid, text],
            )
            .unwrap();
        }
        conn.execute(
            "DELETE FROM background_tasks WHERE rowid IN (5, 149, 152, 300)",
            [],
        )
        .unwrap();
        check_every_plan(&conn);
        assert_eq!(
            super::super::search_index::index_batch(&conn, 1_000).unwrap(),
            248
        );
        assert_eq!(
            super::super::search_index::index_batch(&conn, 1_000).unwrap(),
            0
        );
        check_every_plan(&conn);
        conn.execute("DELETE FROM background_tasks WHERE rowid > 395", [])
            .unwrap();
        for i in 0..3_i64 {
            conn.execute(
                "INSERT INTO background_tasks (id, user_id, task_type, status, label, \
                 created_at, updated_at, run_at) VALUES (?1, 'heavy@example.com', 'generation', \
                 'completed', 'Historia om segelfartyg', ?2, ?2, ?2)",
                rusqlite::params![format!("task_{}_{:020x}", 20_000 + i, i), 20_000 + i],
            )
            .unwrap();
        }
        let reused: i64 = conn
            .query_row("SELECT max(rowid) FROM background_tasks", [], |r| r.get(0))
            .unwrap();
        assert!(reused <= 400, "rowids below the watermark were reused");
        check_every_plan(&conn);
    }

    fn check_every_plan(conn: &Connection) {
        let plans = [
            // Through the index, reading every match.
            Limits {
                few_matches: usize::MAX / 2,
                ..Limits::DEFAULT
            },
            // The rowid walk, in batches small enough to stop early and check.
            Limits {
                few_matches: 0,
                user_walk: 1,
                first_batch: 3,
            },
            // One user's search: a few of the user's tasks walked, the rest from the index.
            Limits {
                few_matches: 0,
                user_walk: 9,
                first_batch: 3,
            },
            // The walk over all of the user's tasks.
            Limits {
                few_matches: 0,
                user_walk: usize::MAX / 2,
                first_batch: 3,
            },
            Limits::DEFAULT,
        ];
        let mut searched = 0;
        for needle in [
            "historia",
            "SEGELFARTYG",
            "östersjöns",
            "frågor om",
            "3 fr",
            "klar 1",
            "zebra",
            "hi",
        ] {
            for user_id in [None, Some("heavy@example.com"), Some("user3@example.com")] {
                for statuses in [vec![], vec![TaskStatus::Failed]] {
                    for limit in [1, 7, 100] {
                        let query = ListQuery {
                            search: Some(needle.to_owned()),
                            user_id: user_id.map(str::to_owned),
                            statuses: statuses.clone(),
                            limit,
                            ..Default::default()
                        };
                        let want = walked(conn, &query);
                        searched += want.len();
                        for limits in plans {
                            assert_eq!(
                                all_pages(conn, &query, limits),
                                want,
                                "{query:?} {limits:?}"
                            );
                        }
                    }
                }
            }
        }
        assert!(searched > 900, "the searches find tasks");
    }

    #[test]
    fn needles_the_index_cannot_answer_exactly_are_walked() {
        for (needle, phrase) in [
            ("historia", Some("\"historia\"")),
            ("say \"hi\"", Some("\"say \"\"hi\"\"\"")),
            ("östersjön", Some("\"östersjön\"")),
            ("hi", None),
            ("σοφία", None),
            ("i\u{307}stanbul", None),
        ] {
            assert_eq!(fts_phrase(needle).as_deref(), phrase, "{needle:?}");
        }
    }
}
