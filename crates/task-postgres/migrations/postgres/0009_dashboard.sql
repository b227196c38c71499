-- Indexes that counts need (issues 17 and 22); listings have their own.
-- Released migrations are never edited; change the schema with a new file.

-- Every task by type and status (`GET /api/tasks/counts`): the count reads this index alone,
-- in its order, never the table, whose rows carry the tasks' params and results. It is partial
-- on a condition every task meets, `created_at >= 0`, which only the count states word for
-- word: a planner without statistics (SQLite on a fresh database) then never takes it for a
-- listing filtered by type, which must be read in creation order. `created_at` is a column so
-- the count needs nothing else.
CREATE INDEX idx_background_tasks_type_status
    ON background_tasks (task_type, status, created_at)
    WHERE created_at >= 0;

-- A user's waiting tasks, which the per-user queue limit counts beside the pending and
-- processing ones (those are in idx_background_tasks_unfinished); without it the count would
-- read the user's whole history.
CREATE INDEX idx_background_tasks_waiting
    ON background_tasks (user_id)
    WHERE status = 'waiting';
