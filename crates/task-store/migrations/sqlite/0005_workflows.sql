-- Dependencies between tasks and workflows (issue 17). A task may wait for parent tasks: it is
-- `waiting` with `waiting_for` unfinished parents until the last one finishes, then `pending`.
-- SQLite cannot change a CHECK constraint in place, so `background_tasks` is rebuilt with the
-- new status and the two new columns, and its indexes are recreated exactly as before (the
-- claim's partial indexes still cover only `pending`/`processing` rows: waiting tasks are
-- never scanned by a claim).
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE background_tasks_new (
    id               TEXT    PRIMARY KEY,
    user_id          TEXT    NOT NULL,
    task_type        TEXT    NOT NULL,
    status           TEXT    NOT NULL
                     CHECK (status IN ('waiting', 'pending', 'processing', 'completed', 'failed',
                                       'cancelled')),
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
    -- Unfinished parents of a waiting task; 0 in every other status.
    waiting_for      INTEGER NOT NULL DEFAULT 0 CHECK (waiting_for >= 0),
    workflow_id      TEXT,
    CHECK (progress >= 0 AND progress <= total),
    CHECK ((status = 'processing') = (lease_token IS NOT NULL)),
    CHECK ((status = 'waiting') = (waiting_for > 0))
);

INSERT INTO background_tasks_new (
    rowid, id, user_id, task_type, status, label, description, progress, total, result,
    created_at, updated_at, completed_at, error, params, attempt, max_attempts, run_at,
    lease_owner, lease_token, lease_expires_at, cancel_requested, version, started_at)
SELECT rowid, id, user_id, task_type, status, label, description, progress, total, result,
    created_at, updated_at, completed_at, error, params, attempt, max_attempts, run_at,
    lease_owner, lease_token, lease_expires_at, cancel_requested, version, started_at
FROM background_tasks;

DROP TABLE background_tasks;
ALTER TABLE background_tasks_new RENAME TO background_tasks;

CREATE INDEX idx_background_tasks_user_created
    ON background_tasks (user_id, created_at, id);
CREATE INDEX idx_background_tasks_created
    ON background_tasks (created_at, id);
CREATE INDEX idx_background_tasks_due
    ON background_tasks (run_at, created_at, user_id, task_type)
    WHERE status = 'pending';
CREATE INDEX idx_background_tasks_unfinished
    ON background_tasks (user_id, run_at, created_at, task_type)
    WHERE status IN ('pending', 'processing');
CREATE INDEX idx_background_tasks_lease_expiry
    ON background_tasks (lease_expires_at)
    WHERE status = 'processing';
CREATE INDEX idx_background_tasks_finished
    ON background_tasks (completed_at)
    WHERE completed_at IS NOT NULL;
-- A workflow's nodes.
CREATE INDEX idx_background_tasks_workflow
    ON background_tasks (workflow_id)
    WHERE workflow_id IS NOT NULL;

-- Edges: `child` waits for `parent`. Finding a finished task's children reads the primary key
-- (parent first); finding a task's parents reads the second index. Deleting a task deletes its
-- edges.
CREATE TABLE task_dependencies (
    parent         TEXT    NOT NULL REFERENCES background_tasks (id) ON DELETE CASCADE,
    child          TEXT    NOT NULL REFERENCES background_tasks (id) ON DELETE CASCADE,
    run_on_failure INTEGER NOT NULL DEFAULT 0 CHECK (run_on_failure IN (0, 1)),
    PRIMARY KEY (parent, child)
) WITHOUT ROWID;

CREATE INDEX idx_task_dependencies_child ON task_dependencies (child, parent);

-- Workflows created in one request: the owner and the node keys and edges as given (they
-- never change after creation).
CREATE TABLE workflows (
    id         TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    nodes      TEXT    NOT NULL,  -- JSON [[key, task id], ...] in request order
    edges      TEXT    NOT NULL   -- JSON [{parent, child, run_on_failure}, ...]
);
