-- Dependencies between tasks and workflows (issue 17): the same schema as SQLite's
-- 0004_workflows. A task may wait for parent tasks: it is `waiting` with `waiting_for`
-- unfinished parents until the last one finishes, then `pending`. The claim's partial indexes
-- still cover only `pending`/`processing` rows: waiting tasks are never scanned by a claim.
-- Released migrations are never edited; change the schema with a new file.

ALTER TABLE background_tasks
    ADD COLUMN waiting_for bigint NOT NULL DEFAULT 0 CHECK (waiting_for >= 0),
    ADD COLUMN workflow_id text COLLATE "C";

ALTER TABLE background_tasks DROP CONSTRAINT background_tasks_status_check;
ALTER TABLE background_tasks ADD CONSTRAINT background_tasks_status_check
    CHECK (status IN ('waiting', 'pending', 'processing', 'completed', 'failed', 'cancelled'));
ALTER TABLE background_tasks ADD CONSTRAINT background_tasks_waiting_check
    CHECK ((status = 'waiting') = (waiting_for > 0));

-- A workflow's nodes.
CREATE INDEX idx_background_tasks_workflow
    ON background_tasks (workflow_id)
    WHERE workflow_id IS NOT NULL;

-- Edges: `child` waits for `parent`. A finished task's children are read off the primary key
-- (parent first), a task's parents off the second index. Deleting a task deletes its edges.
CREATE TABLE task_dependencies (
    parent         text    COLLATE "C" NOT NULL REFERENCES background_tasks (id) ON DELETE CASCADE,
    child          text    COLLATE "C" NOT NULL REFERENCES background_tasks (id) ON DELETE CASCADE,
    run_on_failure boolean NOT NULL DEFAULT false,
    PRIMARY KEY (parent, child)
);

CREATE INDEX idx_task_dependencies_child ON task_dependencies (child, parent);

-- Workflows created in one request: the owner and the node keys and edges as given (they
-- never change after creation).
CREATE TABLE workflows (
    id         text   COLLATE "C" PRIMARY KEY,
    user_id    text   COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    nodes      jsonb  NOT NULL,  -- [[key, task id], ...] in request order
    edges      jsonb  NOT NULL   -- [{parent, child, run_on_failure}, ...]
);
