-- Fair claims over big histories (issue #21, target 5): each user's oldest pending task per
-- priority band and task type, so a fair claim finds the users in the order of their oldest
-- due task by reading this table's due index (one entry per user and type) instead of seeking
-- every user with unfinished tasks in idx_background_tasks_unfinished.
-- Released migrations are never edited; change the schema with a new file.

-- One row per (user, priority, task type) that has a pending task: the due-order key of that
-- group's oldest pending task (`run_at`, `created_at`, then `rowid`, as the due index orders).
-- Future tasks count: a head whose `run_at` is later than now means the group has nothing due.
-- The key columns are NULL only inside the update trigger, for a group it is about to delete.
-- Per task type, so a claim for some types reads only their heads and still meets each user at
-- its oldest due task of those types. `task_rowid` links to `background_tasks` by rowid, as
-- the search index does (0010): a migration that rebuilds `background_tasks` without keeping
-- rowids must refill this table as below.
CREATE TABLE background_task_heads (
    user_id    TEXT    NOT NULL,
    priority   INTEGER NOT NULL,
    task_type  TEXT    NOT NULL,
    run_at     INTEGER,
    created_at INTEGER,
    task_rowid INTEGER,
    PRIMARY KEY (user_id, priority, task_type)
) WITHOUT ROWID;

-- A fair claim walks one band's heads in due order, the same order as idx_background_tasks_due.
CREATE INDEX idx_background_task_heads_due
    ON background_task_heads (priority, run_at, created_at, user_id, task_type, task_rowid);

INSERT INTO background_task_heads (user_id, priority, task_type, run_at, created_at, task_rowid)
SELECT user_id, priority, task_type, run_at, created_at, task_rowid
FROM (SELECT user_id, priority, task_type, run_at, created_at, rowid AS task_rowid,
             row_number() OVER (PARTITION BY user_id, priority, task_type
                                ORDER BY run_at, created_at, rowid) AS place
      FROM background_tasks WHERE status = 'pending')
WHERE place = 1;

-- Kept exact by triggers in the transaction of every write, so every path (creation, claims,
-- releases, retries and their backoff, the rescuer, cancels, a waiting task's release, deletes
-- and the cleaner's purge) is covered without the store's code knowing.

-- A creation writes a head only when its group has none or the new task is earlier; a task
-- created now is usually the newest, so most creations only look the head up.
CREATE TRIGGER background_task_heads_insert AFTER INSERT ON background_tasks
WHEN new.status = 'pending'
BEGIN
    INSERT INTO background_task_heads (user_id, priority, task_type, run_at, created_at, task_rowid)
    VALUES (new.user_id, new.priority, new.task_type, new.run_at, new.created_at, new.rowid)
    ON CONFLICT (user_id, priority, task_type) DO UPDATE
    SET run_at = excluded.run_at, created_at = excluded.created_at,
        task_rowid = excluded.task_rowid
    WHERE (excluded.run_at, excluded.created_at, excluded.task_rowid)
        < (background_task_heads.run_at, background_task_heads.created_at,
           background_task_heads.task_rowid);
END;

-- A task that leaves `pending` or moves: when it was its group's head, the group's next
-- pending task (at or after it in due order, since the head was the oldest) becomes the head,
-- in place (a claim of 64 moves up to 64 heads, and an update in place writes half the b-tree
-- entries of a delete and an insert); a group left without one gets NULLs for a moment and is
-- deleted. A task that is pending afterwards is then offered as on creation. The next task is
-- the first in idx_background_tasks_unfinished, whose order after (run_at, created_at) is the
-- task type (one here) and the rowid: ordering by more columns would make SQLite sort each time.
-- The index is named: SQLite 3.53 otherwise reads idx_background_tasks_due (it covers the
-- query), walking the band's whole due range from the head on and filtering on the user, 1 ms
-- per head on a 100,000-task backlog.
-- A claim (the only change from `pending` to `processing`) is left out: it moves its groups'
-- heads itself after its update, once per group instead of once per claimed task
-- (`MOVE_CLAIMED_HEADS` in sqlite/claim.rs), since a claim of 64 from one user's backlog would
-- otherwise seek the next task 64 times.
CREATE TRIGGER background_task_heads_update
AFTER UPDATE OF status, run_at, priority, created_at, user_id, task_type ON background_tasks
WHEN (old.status = 'pending' OR new.status = 'pending')
 AND NOT (old.status = 'pending' AND new.status = 'processing')
 AND (old.status IS NOT new.status OR old.run_at IS NOT new.run_at
      OR old.priority IS NOT new.priority OR old.created_at IS NOT new.created_at
      OR old.user_id IS NOT new.user_id OR old.task_type IS NOT new.task_type)
BEGIN
    UPDATE background_task_heads
    SET (run_at, created_at, task_rowid) = (
        SELECT t.run_at, t.created_at, t.rowid
        FROM background_tasks AS t INDEXED BY idx_background_tasks_unfinished
        WHERE t.user_id = old.user_id AND t.priority = old.priority
          AND t.status IN ('pending', 'processing') AND t.status = 'pending'
          AND t.task_type = old.task_type
          AND (t.run_at, t.created_at) >= (old.run_at, old.created_at)
        ORDER BY t.run_at, t.created_at LIMIT 1)
    WHERE old.status = 'pending' AND user_id = old.user_id AND priority = old.priority
      AND task_type = old.task_type AND task_rowid = old.rowid;
    DELETE FROM background_task_heads
    WHERE old.status = 'pending' AND user_id = old.user_id AND priority = old.priority
      AND task_type = old.task_type AND task_rowid IS NULL;
    INSERT INTO background_task_heads (user_id, priority, task_type, run_at, created_at, task_rowid)
    SELECT new.user_id, new.priority, new.task_type, new.run_at, new.created_at, new.rowid
    WHERE new.status = 'pending'
    ON CONFLICT (user_id, priority, task_type) DO UPDATE
    SET run_at = excluded.run_at, created_at = excluded.created_at,
        task_rowid = excluded.task_rowid
    WHERE (excluded.run_at, excluded.created_at, excluded.task_rowid)
        < (background_task_heads.run_at, background_task_heads.created_at,
           background_task_heads.task_rowid);
END;

-- A deleted pending task (a user's or a workflow's delete): as leaving `pending` above.
CREATE TRIGGER background_task_heads_delete AFTER DELETE ON background_tasks
WHEN old.status = 'pending'
BEGIN
    DELETE FROM background_task_heads
    WHERE user_id = old.user_id AND priority = old.priority
      AND task_type = old.task_type AND task_rowid = old.rowid;
    INSERT INTO background_task_heads (user_id, priority, task_type, run_at, created_at, task_rowid)
    SELECT t.user_id, t.priority, t.task_type, t.run_at, t.created_at, t.rowid
    FROM background_tasks AS t INDEXED BY idx_background_tasks_unfinished
    WHERE NOT EXISTS (SELECT 1 FROM background_task_heads AS h
                      WHERE h.user_id = old.user_id AND h.priority = old.priority
                        AND h.task_type = old.task_type)
      AND t.user_id = old.user_id AND t.priority = old.priority
      AND t.status IN ('pending', 'processing') AND t.status = 'pending'
      AND t.task_type = old.task_type
      AND (t.run_at, t.created_at) >= (old.run_at, old.created_at)
    ORDER BY t.run_at, t.created_at
    LIMIT 1;
END;

