//! Every SQL statement the store runs (except the dynamic list query), in one place so the
//! column order, guards and orderings can be read side by side. Tasks come back as
//! [`crate::row::TASK_COLUMNS`]; ties in due, rescue and purge order break on `seq`, the
//! insertion order, as SQLite's rowid does. Due order is `(run_at, created_at, user_id,
//! task_type, seq)`.

use std::sync::LazyLock;

use crate::row::task_columns;

/// Tasks by id (`$1`: text[]), in any order.
pub(crate) static READ_TASKS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM background_tasks WHERE id = ANY($1)",
        task_columns("")
    )
});

/// One page of tasks changed after (`$1` updated_at, `$2` id), at most `$3`.
pub(crate) static RESYNC_PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM background_tasks WHERE (updated_at, id) > ($1, $2) \
         ORDER BY updated_at, id LIMIT $3",
        task_columns("")
    )
});

/// One task by id.
pub(crate) static GET_TASK: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM background_tasks WHERE id = $1",
        task_columns("")
    )
});

/// One task by id, locked until the transaction ends.
pub(crate) static LOCK_TASK: LazyLock<String> =
    LazyLock::new(|| format!("{} FOR UPDATE", *GET_TASK));

/// A new task: every column, `$1..$26` in [`crate::row::TASK_COLUMNS`] order.
pub(crate) static INSERT_TASK: LazyLock<String> = LazyLock::new(|| {
    let placeholders: Vec<String> = (1..=crate::row::TASK_COLUMNS.len())
        .map(|n| format!("${n}"))
        .collect();
    format!(
        "INSERT INTO background_tasks ({}) VALUES ({})",
        task_columns(""),
        placeholders.join(", ")
    )
});

/// Overwrites every column but `id` (`$1`) with `$2..$26` in [`crate::row::TASK_COLUMNS`]
/// order: the slow path writes the task the rules computed.
pub(crate) static WRITE_TASK: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = crate::row::TASK_COLUMNS
        .iter()
        .enumerate()
        .skip(1)
        .map(|(index, column)| format!("{column} = ${}", index + 1))
        .collect();
    format!(
        "UPDATE background_tasks SET {} WHERE id = $1",
        sets.join(", ")
    )
});

/// The claim without fairness, in one statement for every priority band: the oldest due
/// tasks (`$1` now, `$2` task types or empty for any, `$3` limit) that no other transaction
/// holds, band by band in the order of `$7` (int2[], highest first), each moved to `processing`
/// for worker `$4` with a token from `$5` (text[], one per task, in pick order) until `$6`.
/// Returns the tasks and their `seq`.
///
/// Why this shape:
/// - The bands are the outer side of a nested loop (`unnest` keeps the array's order) and each
///   band's pick is a `LATERAL` scan of the due index with the band as its first column, in the
///   index's order, under one `LIMIT`: the claim stops reading (and locking) as soon as it has
///   `$3` tasks, and an empty band costs one index probe, not a statement of its own.
/// - The plan does not depend on statistics: the band and `run_at` are the due index's
///   leading columns and the `ORDER BY` is its order, so the planner has no cheaper way to the
///   first `$3` rows whatever it believes about the table (a fresh bulk load, never analyzed,
///   gets the same plan; `src/plans.rs` checks it).
/// - Tokens are paired with the picked ids by `unnest` of two arrays (one pass), and the target
///   rows are matched with `= ANY(ARRAY(…))` rather than by a join alone: with a generic plan
///   (prepared statements) a join is planned for hundreds of picked rows and becomes a hash join
///   over the whole table.
pub(crate) static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH picked AS MATERIALIZED (
             SELECT p.id
             FROM unnest($7::int2[]) AS b(priority)
             CROSS JOIN LATERAL (
                 SELECT id FROM background_tasks
                 WHERE status = 'pending' AND priority = b.priority AND run_at <= $1
                   AND (cardinality($2::text[]) = 0 OR task_type = ANY($2::text[]))
                 ORDER BY run_at, created_at, user_id, task_type, seq
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED
             ) p
             LIMIT $3
         ), leased AS (
             SELECT l.id, l.token
             FROM unnest(ARRAY(SELECT id FROM picked), $5::text[]) AS l(id, token)
             WHERE l.id IS NOT NULL
         )
         UPDATE background_tasks t SET {CLAIMED}, lease_owner = $4, lease_token = leased.token,
             lease_expires_at = $6
         FROM leased
         WHERE t.id = ANY(ARRAY(SELECT id FROM picked)) AND t.id = leased.id
         RETURNING {}, t.seq",
        task_columns("t.")
    )
});

/// What a claim sets besides the lease (`$1` is now).
const CLAIMED: &str = "status = 'processing', attempt = t.attempt + 1, progress = 0, \
     started_at = $1, completed_at = NULL, cancel_requested = false, version = t.version + 1, \
     updated_at = GREATEST($1, t.updated_at)";

/// Serialises fair claims on a schema (`$1`: the lock's name), so per-user limits hold across
/// instances.
pub(crate) const FAIR_CLAIM_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";

/// Processing tasks per user.
pub(crate) const RUNNING_PER_USER: &str =
    "SELECT user_id, count(*) FROM background_tasks WHERE status = 'processing' GROUP BY user_id";

/// One page of a band's due heads (`background_task_heads`: each user's oldest pending task per
/// task type) in due order, for a fair claim: `$1` now, `$2` task types or empty for any, `$3`
/// the page size, `$4` the band, after the head (`$5` run_at, `$6` created_at, `$7` user_id,
/// `$8` task_type). Same columns as [`FAIR_NEXT`]: `id, user_id, run_at, created_at,
/// task_type, seq`. The types are matched by `array_position`, not `= ANY`: a custom plan
/// would make `= ANY` an index condition, and an index scan with one (before PostgreSQL 17)
/// does not return rows in order, so every due head was read and sorted.
pub(crate) const FAIR_HEADS: &str = "SELECT id, user_id, run_at, created_at, task_type, seq
     FROM background_task_heads
     WHERE priority = $4 AND run_at <= $1
       AND (cardinality($2::text[]) = 0 OR array_position($2::text[], task_type) IS NOT NULL)
       AND (run_at, created_at, user_id, task_type) > ($5, $6, $7, $8)
     ORDER BY run_at, created_at, user_id, task_type
     LIMIT $3";

/// The planner setting [`FAIR_NEXT`] runs under (`SET LOCAL`, then undone). The planner costs
/// a user by the average user, so for a few rows it prefers a bitmap scan of everything the
/// user has pending in the band and a sort; for a user with a backlog of thousands that reads
/// the whole backlog on every claim. Without bitmap scans it walks the per-user index in order
/// and stops at the limit.
pub(crate) const FAIR_NEXT_PLANNER: &str = "enable_bitmapscan = off";

/// For a fair claim that met every due head with room left: the next due tasks of band `$9` of
/// each user in `$3` after that user's oldest (`$4` run_at, `$5` created_at, `$6` task_type,
/// `$7` seq), at most `$8` each (the most any of them wants: a constant limit, so the planner
/// walks the index in order rather than fetching and sorting a user's whole backlog; the
/// picker caps each user at its own room), in due order per user (one seek per user in the per-user
/// index). `$1` now, `$2` task types or empty for any. The row comparison follows the per-user
/// index's columns, and the due index is kept out of reach (pending told by `lease_token IS
/// NULL`, which the table's CHECK ties to the status, so `status = 'pending'` is not implied;
/// `priority + 0`): the planner would otherwise walk the due index per user, filtering on
/// `user_id`.
pub(crate) const FAIR_NEXT: &str =
    "SELECT d.id, d.user_id, d.run_at, d.created_at, d.task_type, d.seq
     FROM unnest($3::text[], $4::int8[], $5::int8[], $6::text[], $7::int8[])
          AS u(user_id, run_at, created_at, task_type, seq)
     CROSS JOIN LATERAL (
         SELECT b.id, b.user_id, b.run_at, b.created_at, b.task_type, b.seq
         FROM background_tasks b
         WHERE b.user_id = u.user_id AND b.status IN ('pending', 'processing')
           AND b.lease_token IS NULL AND b.priority + 0::int2 = $9::int2 AND b.run_at <= $1
           AND (cardinality($2::text[]) = 0 OR b.task_type = ANY($2::text[]))
           AND (b.user_id, b.priority, b.run_at, b.created_at, b.task_type, b.seq)
               > (u.user_id, $9::int2, u.run_at, u.created_at, u.task_type, u.seq)
         ORDER BY b.user_id, b.priority, b.run_at, b.created_at, b.task_type, b.seq
         LIMIT $8
     ) d";

/// Removes the heads naming the tasks `$1` a fair claim just took (claims are left out of the
/// heads' trigger, migration 0012), found through each task's group: the heads' primary key.
/// Returns their groups for [`REFILL_HEADS`].
pub(crate) const DROP_CLAIMED_HEADS: &str = "DELETE FROM background_task_heads h
     USING background_tasks t
     WHERE t.id = ANY($1::text[]) AND h.user_id = t.user_id AND h.priority = t.priority
       AND h.task_type = t.task_type AND h.id = t.id
     RETURNING h.user_id, h.priority, h.task_type";

/// Removes the heads among `$1` (task ids a fair claim picked but could not claim; `$2` their
/// users) whose task is no longer pending at that place: left by an unfair claim, or by two
/// writers of one group at once (see migration 0012). The heads are found through their
/// primary key (the user leads it), not by a scan for their ids; a task id names one user, so
/// matching ids and users as two lists finds exactly the picked pairs. Returns their groups for
/// [`REFILL_HEADS`].
pub(crate) const DROP_STALE_HEADS: &str = "DELETE FROM background_task_heads h
     WHERE h.user_id = ANY($2::text[]) AND h.id = ANY($1::text[])
       AND NOT EXISTS (SELECT 1 FROM background_tasks t
                       WHERE t.id = h.id AND t.status = 'pending' AND t.priority = h.priority
                         AND t.run_at = h.run_at AND t.created_at = h.created_at)
     RETURNING h.user_id, h.priority, h.task_type";

/// Gives each group (`$1` users, `$2` priorities, `$3` task types) its oldest pending task as
/// head, as the triggers do (read in the per-user index, as there).
pub(crate) const REFILL_HEADS: &str = "INSERT INTO background_task_heads
         (user_id, priority, task_type, run_at, created_at, seq, id)
     SELECT n.user_id, n.priority, n.task_type, n.run_at, n.created_at, n.seq, n.id
     FROM unnest($1::text[], $2::int2[], $3::text[]) AS g(user_id, priority, task_type)
     CROSS JOIN LATERAL (
         SELECT t.user_id, t.priority, t.task_type, t.run_at, t.created_at, t.seq, t.id
         FROM background_tasks t
         WHERE t.user_id = g.user_id AND t.priority + 0::int2 = g.priority
           AND t.status IN ('pending', 'processing') AND t.lease_token IS NULL
           AND t.task_type = g.task_type
           AND (t.user_id, t.priority) >= (g.user_id, g.priority)
         ORDER BY t.user_id, t.priority, t.run_at, t.created_at, t.task_type, t.seq
         LIMIT 1
     ) n
     ON CONFLICT (user_id, priority, task_type) DO UPDATE
     SET run_at = excluded.run_at, created_at = excluded.created_at,
         seq = excluded.seq, id = excluded.id
     WHERE (excluded.run_at, excluded.created_at, excluded.seq)
         < (background_task_heads.run_at, background_task_heads.created_at,
            background_task_heads.seq)";

/// Claims the picked tasks (`$4` ids, `$5` their tokens) for worker `$2` until `$3` (`$1`
/// now), skipping any that stopped being due meanwhile.
pub(crate) static CLAIM_PICKED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE background_tasks t SET {CLAIMED}, lease_owner = $2, lease_token = p.token,
             lease_expires_at = $3
         FROM unnest($4::text[], $5::text[]) AS p(id, token)
         WHERE t.id = p.id AND t.status = 'pending' AND t.run_at <= $1
         RETURNING {}",
        task_columns("t.")
    )
});

/// The guard of every fast-path worker write: `$1` id, `$2` lease token.
const LEASED: &str = "id = $1 AND lease_token = $2 AND status = 'processing'";

/// Renews a lease until `$3`; no version bump, so no notification.
pub(crate) static HEARTBEAT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE background_tasks SET lease_expires_at = $3 WHERE {LEASED} RETURNING {}",
        task_columns("")
    )
});

/// Progress `$3` (not below the current, not above total) and, unless null, description
/// `$4`, at `$5`.
pub(crate) static PROGRESS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE background_tasks SET progress = $3, description = COALESCE($4, description),
             version = version + 1, updated_at = GREATEST($5, updated_at)
         WHERE {LEASED} AND progress <= $3 AND $3 <= total
         RETURNING {}",
        task_columns("")
    )
});

/// Completes each task named in `$1` whose lease token is still the one at the same position
/// of `$2`; `$3` holds the results, `$4` the times. The `ANY` gives the planner an index lookup
/// per id whatever plan a prepared statement settles on. The guard does not repeat `status =
/// 'processing'`: a matching (non-null) lease token implies it by the table's check, and stated
/// it let a planner without statistics read every processing task through the lease index's
/// predicate and join them pairwise with the group instead (`src/plans.rs`).
pub(crate) static COMPLETE_GROUP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE background_tasks AS t SET status = 'completed', result = d.result,
             progress = t.total, error = NULL, completed_at = d.at, lease_owner = NULL,
             lease_token = NULL, lease_expires_at = NULL, version = t.version + 1,
             updated_at = GREATEST(d.at, t.updated_at)
         FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::int8[]) AS d(id, token, result, at)
         WHERE t.id = ANY($1::text[]) AND t.id = d.id AND t.lease_token = d.token
         RETURNING {}",
        task_columns("t.")
    )
});

/// Processing tasks whose lease expired before `$1`, oldest expiry first, locked (skipping
/// rows a worker is writing right now).
pub(crate) static EXPIRED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM background_tasks
         WHERE status = 'processing' AND lease_expires_at < $1
         ORDER BY lease_expires_at, seq
         FOR UPDATE SKIP LOCKED",
        task_columns("")
    )
});

/// Deletes one task by id.
pub(crate) const DELETE_TASK: &str = "DELETE FROM background_tasks WHERE id = $1";

/// Deletes up to `$2` terminal tasks completed before `$1`, oldest first; once analytics
/// folding has begun, only tasks the fold watermark has passed.
pub(crate) const PURGE: &str = "DELETE FROM background_tasks WHERE id = ANY(ARRAY(
         SELECT id FROM background_tasks
         WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < $1
         AND completed_at < COALESCE((SELECT completed_at FROM analytics_watermark), $1)
         ORDER BY completed_at, seq
         LIMIT $2
         FOR UPDATE SKIP LOCKED
     ))
     RETURNING id, user_id, version, completed_at, seq";

/// A user's unfinished (`waiting`, `pending` and `processing`) tasks: two counts, so the pending
/// and processing half keeps its partial index (a single `IN` with `waiting` implies none).
pub(crate) const COUNT_UNFINISHED: &str = "SELECT \
     (SELECT count(*) FROM background_tasks \
      WHERE user_id = $1 AND status IN ('pending', 'processing')) + \
     (SELECT count(*) FROM background_tasks WHERE user_id = $1 AND status = 'waiting')";

/// Tasks per type and status, from idx_background_tasks_type_status (`created_at >= 0` holds for
/// every task; it names that partial index's condition).
pub(crate) const COUNTS: &str = "SELECT task_type, status, count(*) FROM background_tasks \
     WHERE created_at >= 0 GROUP BY task_type, status";
