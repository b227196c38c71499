-- Tasks: the same table and columns as SQLite's `background_tasks` (timestamps are bigint
-- milliseconds since the Unix epoch, `result` and `params` are jsonb), plus `seq`, the
-- insertion order that SQLite's rowid provides for tie-breaking. `id` and `user_id` compare
-- bytewise (collation "C") like SQLite's text, so pages and claims come in the same order.
-- Applied at connect with `search_path` set to the store's schema, so no name is qualified.
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE background_tasks (
    id               text    COLLATE "C" PRIMARY KEY,
    user_id          text    COLLATE "C" NOT NULL,
    task_type        text    NOT NULL,
    status           text    NOT NULL
                     CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    label            text,
    description      text,
    progress         bigint  NOT NULL DEFAULT 0,
    total            bigint  NOT NULL DEFAULT 100 CHECK (total >= 1),
    result           jsonb,
    created_at       bigint  NOT NULL,
    updated_at       bigint  NOT NULL,
    completed_at     bigint,
    error            text,
    params           jsonb   NOT NULL DEFAULT '{}',
    attempt          bigint  NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     bigint  NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_at           bigint  NOT NULL,
    lease_owner      text,
    lease_token      text,
    lease_expires_at bigint,
    cancel_requested boolean NOT NULL DEFAULT false,
    version          bigint  NOT NULL DEFAULT 1 CHECK (version >= 1),
    started_at       bigint,
    seq              bigint  GENERATED ALWAYS AS IDENTITY,
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

-- Claiming: due pending tasks in due order. The partial index stays small because finished
-- tasks far outnumber waiting ones.
CREATE INDEX idx_background_tasks_due
    ON background_tasks (run_at, created_at, user_id, task_type, seq)
    WHERE status = 'pending';

-- Per-user queue limits count a user's unfinished tasks; fair claims walk the users with
-- unfinished tasks here and find each one's oldest due task.
CREATE INDEX idx_background_tasks_unfinished
    ON background_tasks (user_id, run_at, created_at, task_type, seq)
    WHERE status IN ('pending', 'processing');

-- The rescuer finds expired leases; fair claims count running tasks per user.
CREATE INDEX idx_background_tasks_lease_expiry
    ON background_tasks (lease_expires_at)
    WHERE status = 'processing';

-- The cleaner deletes finished tasks oldest first.
CREATE INDEX idx_background_tasks_finished
    ON background_tasks (completed_at)
    WHERE completed_at IS NOT NULL;

-- A queue table churns: every claim and completion leaves a dead row version behind. Vacuum
-- and analyze it sooner than the defaults (20 % and 10 % of the table) so the partial due
-- index stays lean and the planner knows the table's size after a burst of new tasks.
ALTER TABLE background_tasks SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);
