-- Schedules: recurring task specs (cron expression or interval, time zone, policies) and their
-- runs. A run row is the exactly-once record of one fire time: the partial unique index lets a
-- non-manual (schedule, time) be recorded once, in the same transaction as the task it creates.
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE schedules (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    expression    TEXT    NOT NULL,
    timezone      TEXT    NOT NULL,
    task_type     TEXT    NOT NULL,
    params        TEXT    NOT NULL DEFAULT '{}',  -- JSON
    label         TEXT,
    overlap       TEXT    NOT NULL CHECK (overlap IN ('skip', 'allow', 'cancel-previous')),
    catch_up      TEXT    NOT NULL CHECK (catch_up IN ('latest', 'none')),
    paused        INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    end_at        INTEGER,                        -- unix milliseconds, like every timestamp here
    fired_through INTEGER NOT NULL,
    version       INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- A user's schedules, oldest first.
CREATE INDEX idx_schedules_user_created ON schedules (user_id, created_at, id);

CREATE TABLE schedule_runs (
    schedule_id  TEXT    NOT NULL,
    scheduled_at INTEGER NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('scheduled', 'skipped', 'manual')),
    task_id      TEXT,
    recorded_at  INTEGER NOT NULL,
    CHECK ((kind = 'skipped') = (task_id IS NULL))
);

-- The exactly-once key: one scheduled or skipped run per (schedule, fire time).
CREATE UNIQUE INDEX idx_schedule_runs_once
    ON schedule_runs (schedule_id, scheduled_at)
    WHERE kind <> 'manual';

-- A schedule's runs, newest first.
CREATE INDEX idx_schedule_runs_recent ON schedule_runs (schedule_id, scheduled_at, recorded_at);
