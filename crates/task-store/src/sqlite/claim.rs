//! Claiming due tasks in SQLite: which rows to take, then taking them.
//!
//! A claim walks the priority bands highest first; each band is one range of the due index
//! (which leads with the priority) and is picked as below, for what is left of the claim.
//!
//! Without per-user fairness the claim reads the first `limit` entries of the due index.
//!
//! With it, the claim reads the band's heads (`background_task_heads`: each user's oldest
//! pending task per task type, kept by triggers) in due order and offers them to a
//! [`FairPicker`]: that meets the users in the order of their oldest due task, one index entry
//! per user and type, however big their backlogs. Reading stops once the picker has `limit`
//! users; when every head was read first, the users with room for more read their next due
//! tasks in the per-user index (fewer than `limit` users, one seek each). A claim thus costs
//! index reads in the number of tasks it takes and of the capped users it passes, never in the
//! number of users with unfinished tasks nor the size of a backlog.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, Row};

use super::error::map_sqlite_error;
use super::rows::{task_columns, task_from_row};
use crate::backend::fair_claim::{FairPicker, Offer, Priority, OWN_CAPS_SQL};
use crate::backend::lease_token::new_lease_token;
use crate::backend::rules;
use crate::{ClaimRequest, Result, StoreError, TaskChange};
use task_core::Task;

pub(super) const OLDEST_DUE: &str = "SELECT rowid FROM background_tasks \
     WHERE status = 'pending' AND priority = ?4 AND run_at <= ?1 \
       AND (?2 IS NULL OR task_type IN (SELECT value FROM json_each(?2))) \
     ORDER BY run_at, created_at, user_id, task_type, rowid LIMIT ?3";

/// One band's heads that are due, in due order: each user's oldest pending task per task type
/// (`?1` now, `?2` the task types as a JSON array or NULL for any, `?3` the band), read from
/// the heads' own index alone.
pub(super) const DUE_HEADS: &str = "SELECT task_rowid, run_at, created_at, user_id, task_type \
     FROM background_task_heads INDEXED BY idx_background_task_heads_due \
     WHERE priority = ?3 AND run_at <= ?1 \
       AND (?2 IS NULL OR task_type IN (SELECT value FROM json_each(?2))) \
     ORDER BY run_at, created_at, user_id, task_type";

/// A user's next due tasks of one band after a due-index position, in due order.
pub(super) const USER_DUE: &str = "SELECT rowid, run_at, created_at, user_id, task_type \
     FROM background_tasks INDEXED BY idx_background_tasks_unfinished \
     WHERE status IN ('pending', 'processing') AND user_id = ?1 AND priority = ?10 \
       AND status = 'pending' AND run_at <= ?2 \
       AND (?3 IS NULL OR task_type IN (SELECT value FROM json_each(?3))) \
       AND (run_at, created_at, user_id, task_type, rowid) > (?4, ?5, ?6, ?7, ?8) \
     ORDER BY run_at, created_at, task_type, rowid LIMIT ?9";

// Without statistics the planner would rather walk the (user_id, ...) index over every task to
// avoid sorting the groups; the processing tasks are few, so read them from their own index,
// which carries the user (migration `0013_running_per_user`): no table row is read.
pub(super) const RUNNING_PER_USER: &str = "SELECT user_id, COUNT(*) \
     FROM background_tasks INDEXED BY idx_background_tasks_lease_expiry \
     WHERE status = 'processing' GROUP BY user_id";

/// A task's place in the due index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DueKey {
    run_at: i64,
    created_at: i64,
    user_id: String,
    task_type: String,
    rowid: i64,
}

impl DueKey {
    /// Reads `rowid, run_at, created_at, user_id, task_type`.
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            rowid: row.get(0)?,
            run_at: row.get(1)?,
            created_at: row.get(2)?,
            user_id: row.get(3)?,
            task_type: row.get(4)?,
        })
    }
}

/// Claims the tasks `request` asks for, inside the caller's write transaction, and records the
/// changes to publish.
pub(super) fn claim(
    conn: &Connection,
    request: &ClaimRequest,
    changes: &mut Vec<TaskChange>,
) -> Result<Vec<Task>> {
    if request.limit == 0 {
        return Ok(Vec::new());
    }
    let types = if request.task_types.is_empty() {
        None
    } else {
        Some(
            serde_json::to_string(&request.task_types)
                .map_err(|e| StoreError::Backend(format!("encoding JSON: {e}")))?,
        )
    };
    let mut rowids = Vec::with_capacity(request.limit);
    let (mut running, caps) = match request.max_running_per_user {
        Some(_) => (Some(running_per_user(conn)?), own_caps(conn)?),
        None => (None, HashMap::new()),
    };
    for band in Priority::CLAIM_ORDER {
        let wanted = request.limit - rowids.len();
        if wanted == 0 {
            break;
        }
        let band = Band {
            priority: band.rank(),
            limit: wanted,
        };
        match (request.max_running_per_user, running.take()) {
            (Some(max_running), Some(counts)) => {
                let picker = FairPicker::new(wanted, max_running, counts).with_caps(&caps);
                let (picked, counts) =
                    fair_pick(conn, request, &band, picker, types.as_deref())?.finish_counted();
                rowids.extend(picked);
                running = Some(counts);
            }
            _ => rowids.extend(oldest_due(conn, request, &band, types.as_deref())?),
        }
    }
    take(conn, request, &rowids, changes)
}

/// One priority band of a claim: its stored rank and how many tasks are still wanted.
struct Band {
    priority: i16,
    limit: usize,
}

fn oldest_due(
    conn: &Connection,
    request: &ClaimRequest,
    band: &Band,
    types: Option<&str>,
) -> Result<Vec<i64>> {
    let limit = i64::try_from(band.limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(OLDEST_DUE).map_err(map_sqlite_error)?;
    let rows = statement
        .query_map(
            rusqlite::params![request.now, types, limit, band.priority],
            |row| row.get(0),
        )
        .map_err(map_sqlite_error)?;
    rows.collect::<rusqlite::Result<Vec<i64>>>()
        .map_err(map_sqlite_error)
}

fn fair_pick(
    conn: &Connection,
    request: &ClaimRequest,
    band: &Band,
    mut picker: FairPicker<i64>,
    types: Option<&str>,
) -> Result<FairPicker<i64>> {
    // Each user's first head offered (its oldest due task of the wanted types), where its
    // further tasks start if it has room for more.
    let mut oldest: HashMap<String, DueKey> = HashMap::new();
    {
        let mut statement = conn.prepare_cached(DUE_HEADS).map_err(map_sqlite_error)?;
        let mut rows = statement
            .query(rusqlite::params![request.now, types, band.priority])
            .map_err(map_sqlite_error)?;
        while let Some(row) = rows.next().map_err(map_sqlite_error)? {
            let user_id = row
                .get_ref(3)
                .and_then(|value| value.as_str().map_err(Into::into))
                .map_err(map_sqlite_error)?;
            // A later head of a user already met is one of its younger tasks of another type;
            // the per-user read below takes those in due order.
            if picker.knows(user_id) {
                continue;
            }
            let rowid: i64 = row.get(0).map_err(map_sqlite_error)?;
            if picker.offer(user_id, rowid) == Offer::Done {
                return Ok(picker);
            }
            if picker.knows(user_id) {
                let key = DueKey::read(row).map_err(map_sqlite_error)?;
                oldest.insert(key.user_id.clone(), key);
            }
        }
    }
    // Every user with a due task was offered its oldest one and the claim still has room:
    // users who may take more read their next due tasks.
    for (user_id, wanted) in picker.wanting() {
        let Some(after) = oldest.get(&user_id) else {
            continue;
        };
        for key in user_due(conn, request, band, types, &user_id, after, wanted)? {
            picker.offer(&user_id, key.rowid);
        }
    }
    Ok(picker)
}

fn user_due(
    conn: &Connection,
    request: &ClaimRequest,
    band: &Band,
    types: Option<&str>,
    user_id: &str,
    after: &DueKey,
    limit: usize,
) -> Result<Vec<DueKey>> {
    let mut statement = conn.prepare_cached(USER_DUE).map_err(map_sqlite_error)?;
    let rows = statement
        .query_map(
            rusqlite::params![
                user_id,
                request.now,
                types,
                after.run_at,
                after.created_at,
                after.user_id,
                after.task_type,
                after.rowid,
                i64::try_from(limit).unwrap_or(i64::MAX),
                band.priority,
            ],
            DueKey::read,
        )
        .map_err(map_sqlite_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_sqlite_error)
}

/// Users' own running caps (`UserLimits::max_running`); see [`OWN_CAPS_SQL`].
fn own_caps(conn: &Connection) -> Result<HashMap<String, u32>> {
    let mut statement = conn
        .prepare_cached(OWN_CAPS_SQL)
        .map_err(map_sqlite_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(map_sqlite_error)?;
    rows.map(|row| {
        row.map(|(user, cap)| (user, u32::try_from(cap).unwrap_or(u32::MAX)))
            .map_err(map_sqlite_error)
    })
    .collect()
}

fn running_per_user(conn: &Connection) -> Result<HashMap<String, u64>> {
    let mut statement = conn
        .prepare_cached(RUNNING_PER_USER)
        .map_err(map_sqlite_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(map_sqlite_error)?;
    rows.map(|row| {
        row.map(|(user, count)| (user, u64::try_from(count).unwrap_or(0)))
            .map_err(map_sqlite_error)
    })
    .collect()
}

/// Moves the picked rows to `processing`, each with a fresh lease token, in one statement, and
/// returns them in pick order.
///
/// One `UPDATE … FROM … RETURNING` for the whole claim, not one per row: a claim is most of a
/// worker's writes, and each statement execution costs a reset, its bindings and a scratch
/// table for `RETURNING`. The picked rows and their tokens go in as one JSON array of
/// `[rowid, token]` pairs.
fn take(
    conn: &Connection,
    request: &ClaimRequest,
    rowids: &[i64],
    changes: &mut Vec<TaskChange>,
) -> Result<Vec<Task>> {
    if rowids.is_empty() {
        return Ok(Vec::new());
    }
    let mut statement = conn
        .prepare_cached(concat!(
            "UPDATE background_tasks SET status = 'processing', attempt = attempt + 1, \
             progress = 0, started_at = ?2, completed_at = NULL, lease_owner = ?3, \
             lease_token = picked.token, lease_expires_at = ?4, cancel_requested = 0, \
             version = version + 1, updated_at = MAX(updated_at, ?2) \
             FROM (SELECT value ->> 0 AS task_rowid, value ->> 1 AS token \
                   FROM json_each(?1)) AS picked \
             WHERE background_tasks.rowid = picked.task_rowid AND status = 'pending' \
             RETURNING ",
            task_columns!(),
            ", background_tasks.rowid"
        ))
        .map_err(map_sqlite_error)?;
    let picked = picked_json(rowids)?;
    let expires = rules::lease_expiry(request);
    let mut taken = statement
        .query_map(
            rusqlite::params![picked, request.now, request.worker_id, expires],
            |row| {
                let rowid_column = row.as_ref().column_count() - 1;
                Ok((row.get::<_, i64>(rowid_column)?, task_from_row(row)?))
            },
        )
        .map_err(map_sqlite_error)?
        .collect::<rusqlite::Result<HashMap<i64, Task>>>()
        .map_err(map_sqlite_error)?;
    let mut claimed = Vec::with_capacity(taken.len());
    let mut claimed_rowids = Vec::with_capacity(taken.len());
    for rowid in rowids {
        if let Some(task) = taken.remove(rowid) {
            changes.push(TaskChange::Upserted(Arc::new(task.clone())));
            claimed.push(task);
            claimed_rowids.push(*rowid);
        }
    }
    move_claimed_heads(conn, &claimed_rowids)?;
    Ok(claimed)
}

/// The groups (user, band, type) of the claimed tasks `?1` (a JSON array of rowids), shared by
/// the two statements below.
macro_rules! claimed_groups {
    () => {
        "(SELECT c.user_id, c.priority, c.task_type FROM background_tasks AS c \
          WHERE c.rowid IN (SELECT value FROM json_each(?1)))"
    };
}

/// Moves the head of every group (user, band, type) whose head was just claimed to the
/// group's next pending task, or drops it when there is none. The heads' update trigger leaves
/// claims out (migration `0012_claim_heads`), so this runs once per group, not per task.
pub(super) const MOVE_CLAIMED_HEADS: &str = concat!(
    "UPDATE background_task_heads AS h \
     SET (run_at, created_at, task_rowid) = ( \
         SELECT t.run_at, t.created_at, t.rowid \
         FROM background_tasks AS t INDEXED BY idx_background_tasks_unfinished \
         WHERE t.user_id = h.user_id AND t.priority = h.priority \
           AND t.status IN ('pending', 'processing') AND t.status = 'pending' \
           AND t.task_type = h.task_type \
           AND (t.run_at, t.created_at) >= (h.run_at, h.created_at) \
         ORDER BY t.run_at, t.created_at LIMIT 1) \
     WHERE (h.user_id, h.priority, h.task_type) IN ",
    claimed_groups!(),
    " AND h.task_rowid IN (SELECT value FROM json_each(?1))"
);

/// Drops the heads [`MOVE_CLAIMED_HEADS`] found no next task for.
pub(super) const DROP_EMPTY_HEADS: &str = concat!(
    "DELETE FROM background_task_heads \
     WHERE task_rowid IS NULL AND (user_id, priority, task_type) IN ",
    claimed_groups!()
);

fn move_claimed_heads(conn: &Connection, claimed: &[i64]) -> Result<()> {
    if claimed.is_empty() {
        return Ok(());
    }
    let claimed = serde_json::to_string(claimed)
        .map_err(|e| StoreError::Backend(format!("encoding JSON: {e}")))?;
    for sql in [MOVE_CLAIMED_HEADS, DROP_EMPTY_HEADS] {
        conn.prepare_cached(sql)
            .and_then(|mut statement| statement.execute([&claimed]))
            .map_err(map_sqlite_error)?;
    }
    Ok(())
}

/// `[[rowid, "token"], …]` with a fresh lease token per row.
fn picked_json(rowids: &[i64]) -> Result<String> {
    use std::fmt::Write;
    let mut text = String::with_capacity(2 + rowids.len() * 48);
    text.push('[');
    for (i, rowid) in rowids.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        // Tokens are hex, so they need no JSON escaping.
        let _ = write!(text, "[{rowid},\"{}\"]", new_lease_token()?);
    }
    text.push(']');
    Ok(text)
}
