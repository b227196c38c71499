-- Tasks: the columns of the old `background_tasks` table, names and types kept, plus what
-- durable execution needs (attempts, scheduling, leases, cancellation, versioning).
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE background_tasks (
    id               TEXT    PRIMARY KEY,
    user_id          TEXT    NOT NULL,
    task_type        TEXT    NOT NULL,
    status           TEXT    NOT NULL
                     CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    label            TEXT,
    description      TEXT,
    progress         INTEGER DEFAULT 0,
    total            INTEGER DEFAULT 100 CHECK (total >= 1),
    result           TEXT,              -- JSON
    created_at       INTEGER NOT NULL,  -- unix milliseconds, like every timestamp here
    updated_at       INTEGER NOT NULL,
    completed_at     INTEGER,
    error            TEXT,
    params           TEXT    NOT NULL DEFAULT '{}',  -- JSON
    attempt          INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_at           INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    version          INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    started_at       INTEGER,
    CHECK (progress >= 0 AND progress <= total),
    -- A lease exists exactly while a worker holds the task.
    CHECK ((status = 'processing') = (lease_token IS NOT NULL))
);

-- A user's task list, newest first, paged by (created_at, id).
CREATE INDEX idx_background_tasks_user_created
    ON background_tasks (user_id, created_at, id);

-- Everyone's task list (superusers), newest first.
CREATE INDEX idx_background_tasks_created
    ON background_tasks (created_at, id);

-- Claiming: due pending tasks in due order. `user_id` and `task_type` are in the index so a
-- claim can pass over other users' or other types' tasks without reading the table.
CREATE INDEX idx_background_tasks_due
    ON background_tasks (run_at, created_at, user_id, task_type)
    WHERE status = 'pending';

-- Per-user queue limits count a user's unfinished tasks; fair claims find each user's oldest
-- due task here.
CREATE INDEX idx_background_tasks_unfinished
    ON background_tasks (user_id, run_at, created_at, task_type)
    WHERE status IN ('pending', 'processing');

-- The rescuer finds expired leases; fair claims count running tasks per user.
CREATE INDEX idx_background_tasks_lease_expiry
    ON background_tasks (lease_expires_at)
    WHERE status = 'processing';

-- The cleaner deletes finished tasks oldest first.
CREATE INDEX idx_background_tasks_finished
    ON background_tasks (completed_at)
    WHERE completed_at IS NOT NULL;
