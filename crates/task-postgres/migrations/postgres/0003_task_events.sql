-- The per-task event log: partial outputs of a running task (a question a model has finished
-- writing), in order, so a live stream that reconnects (also after a restart, or on another
-- instance) replays exactly what it missed. Written by workers under their lease.
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE task_events (
    -- Deleted with its task: an event log lives exactly as long as the task.
    task_id    text   COLLATE "C" NOT NULL REFERENCES background_tasks (id) ON DELETE CASCADE,
    seq        bigint NOT NULL CHECK (seq >= 1),      -- 1, 2, 3, … per task: the SSE event id
    attempt    bigint NOT NULL,                       -- the attempt that wrote it
    item       jsonb  NOT NULL,
    created_at bigint NOT NULL,                       -- unix milliseconds
    PRIMARY KEY (task_id, seq)
);
