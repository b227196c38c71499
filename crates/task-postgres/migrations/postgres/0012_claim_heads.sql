-- Fair claims over big histories (issue #21, target 5): each user's oldest pending task per
-- priority band and task type, so a fair claim finds the users in the order of their oldest
-- due task by reading this table's due index (one entry per user and type) instead of seeking
-- every user with unfinished tasks in idx_background_tasks_unfinished.
-- Released migrations are never edited; change the schema with a new file.

-- One row per (user, priority, task type) that has a pending task: the due-order key of that
-- group's oldest pending task (`run_at`, `created_at`, then `seq`, as the due index orders) and
-- its id. Future tasks count: a head whose `run_at` is later than now means the group has
-- nothing due. Per task type, so a claim for some types reads only their heads and still meets
-- each user at its oldest due task of those types. `user_id` and `id` are "C" like the tasks'
-- own: the triggers compare them with the tasks' columns, and a comparison in another
-- collation cannot use this table's primary key (each head's delete then read the band's heads).
CREATE TABLE background_task_heads (
    user_id    text     COLLATE "C" NOT NULL,
    priority   smallint NOT NULL,
    task_type  text     NOT NULL,
    run_at     bigint   NOT NULL,
    created_at bigint   NOT NULL,
    seq        bigint   NOT NULL,
    id         text     COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, priority, task_type)
);

-- A fair claim walks one band's heads in due order, the same order as idx_background_tasks_due,
-- from this index alone.
CREATE INDEX idx_background_task_heads_due
    ON background_task_heads (priority, run_at, created_at, user_id, task_type)
    INCLUDE (seq, id);

INSERT INTO background_task_heads (user_id, priority, task_type, run_at, created_at, seq, id)
SELECT DISTINCT ON (user_id, priority, task_type)
       user_id, priority, task_type, run_at, created_at, seq, id
FROM background_tasks
WHERE status = 'pending'
ORDER BY user_id, priority, task_type, run_at, created_at, seq;

-- Kept exact by triggers in the transaction of every write, so every path (creation, claims,
-- releases, retries and their backoff, the rescuer, cancels, a waiting task's release, deletes
-- and the cleaner's purge) is covered without the store's code knowing.
--
-- A task that leaves `pending` or moves: when it was its group's head, the group's next pending
-- task (at or after it in due order, since the head was the oldest) becomes the head. A task
-- that is pending afterwards (a creation included) becomes the head when its group has none or
-- it is earlier; a task created now is usually the newest, so most creations only look the head
-- up.
--
-- The next head is read in idx_background_tasks_unfinished: the row comparison follows its
-- columns, and the planner is kept off idx_background_tasks_due, which it would otherwise walk
-- from its start filtering on the user (3 ms per claimed head on a 1,000,000-task table): a
-- pending task is told from a processing one by its lease (`lease_token IS NULL`, which the
-- table's CHECK ties to the status), so the due index's `status = 'pending'` is not implied,
-- and `priority + 0` is no index condition.
--
-- Concurrent writers (READ COMMITTED): an offer that meets a head being replaced waits for it
-- through ON CONFLICT and compares with the new one, so a head is never later than its group's
-- oldest pending task. A writer whose task becomes the next head while it takes that task
-- (two claimers of one group at once) may leave a head naming a task no longer pending; the
-- fair claim, the one reader, finds it when the task is not claimable and rebuilds that head
-- (`sql::DROP_STALE_HEADS`, `sql::REFILL_HEADS`). Locking the group's head first would close
-- that gap but makes claimers of several users deadlock on each other's heads.
CREATE FUNCTION background_task_heads_sync() RETURNS trigger
LANGUAGE plpgsql
-- Whoever writes the task (the store, or an admin connection with another search path), the
-- heads are the ones in this schema.
SET search_path FROM CURRENT
AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'pending' THEN
        DELETE FROM background_task_heads
        WHERE user_id = OLD.user_id AND priority = OLD.priority AND task_type = OLD.task_type
          AND seq = OLD.seq;
        IF FOUND THEN
            INSERT INTO background_task_heads
                (user_id, priority, task_type, run_at, created_at, seq, id)
            SELECT t.user_id, t.priority, t.task_type, t.run_at, t.created_at, t.seq, t.id
            FROM background_tasks t
            WHERE t.user_id = OLD.user_id AND t.priority + 0::int2 = OLD.priority
              AND t.status IN ('pending', 'processing') AND t.lease_token IS NULL
              AND t.task_type = OLD.task_type
              AND (t.user_id, t.priority, t.run_at, t.created_at)
                  >= (OLD.user_id, OLD.priority, OLD.run_at, OLD.created_at)
            ORDER BY t.user_id, t.priority, t.run_at, t.created_at, t.task_type, t.seq
            LIMIT 1
            ON CONFLICT (user_id, priority, task_type) DO UPDATE
            SET run_at = excluded.run_at, created_at = excluded.created_at,
                seq = excluded.seq, id = excluded.id
            WHERE (excluded.run_at, excluded.created_at, excluded.seq)
                < (background_task_heads.run_at, background_task_heads.created_at,
                   background_task_heads.seq);
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'pending' THEN
        INSERT INTO background_task_heads
            (user_id, priority, task_type, run_at, created_at, seq, id)
        VALUES (NEW.user_id, NEW.priority, NEW.task_type, NEW.run_at, NEW.created_at, NEW.seq,
                NEW.id)
        ON CONFLICT (user_id, priority, task_type) DO UPDATE
        SET run_at = excluded.run_at, created_at = excluded.created_at,
            seq = excluded.seq, id = excluded.id
        WHERE (excluded.run_at, excluded.created_at, excluded.seq)
            < (background_task_heads.run_at, background_task_heads.created_at,
               background_task_heads.seq);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER background_task_heads_insert AFTER INSERT ON background_tasks
    FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION background_task_heads_sync();

-- A claim (the only change from `pending` to `processing`) is left out: each claimed head
-- would run the function, and concurrent claimers of one user's backlog would queue on that
-- user's head row, so a drain would pay a head move per task and lose its parallelism. A fair
-- claim moves the heads it claimed itself, once per group (`claim::claim_fairly`); an unfair
-- claim leaves them naming the tasks it took, and the fair claim rebuilds such a head when it
-- meets it (`sql::DROP_STALE_HEADS`, `sql::REFILL_HEADS`). A head is thus never later than
-- its group's oldest pending task, only sometimes earlier.
CREATE TRIGGER background_task_heads_update
    AFTER UPDATE OF status, run_at, priority, created_at, user_id, task_type
    ON background_tasks
    FOR EACH ROW
    WHEN ((OLD.status = 'pending' OR NEW.status = 'pending')
          AND NOT (OLD.status = 'pending' AND NEW.status = 'processing')
          AND (OLD.status, OLD.run_at, OLD.priority, OLD.created_at, OLD.user_id, OLD.task_type)
              IS DISTINCT FROM
              (NEW.status, NEW.run_at, NEW.priority, NEW.created_at, NEW.user_id, NEW.task_type))
    EXECUTE FUNCTION background_task_heads_sync();

CREATE TRIGGER background_task_heads_delete AFTER DELETE ON background_tasks
    FOR EACH ROW WHEN (OLD.status = 'pending')
    EXECUTE FUNCTION background_task_heads_sync();
