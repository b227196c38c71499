-- Schedules: recurring task specs (cron expression or interval, time zone, policies) and their
-- runs. A run row is the exactly-once record of one fire time: the partial unique index lets a
-- non-manual (schedule, time) be recorded once, in the same transaction as the task it creates.
-- Applied with `search_path` set to the store's schema, so no name is qualified.
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE schedules (
    id            TEXT    COLLATE "C" PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    expression    TEXT    NOT NULL,
    timezone      TEXT    NOT NULL,
    task_type     TEXT    NOT NULL,
    params        JSONB   NOT NULL DEFAULT '{}',
    label         TEXT,
    overlap       TEXT    NOT NULL CHECK (overlap IN ('skip', 'allow', 'cancel-previous')),
    catch_up      TEXT    NOT NULL CHECK (catch_up IN ('latest', 'none')),
    paused        BOOLEAN NOT NULL DEFAULT FALSE,
    end_at        BIGINT,                         -- unix milliseconds
    fired_through BIGINT  NOT NULL,
    version       BIGINT  NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- A user's schedules, oldest first.
CREATE INDEX idx_schedules_user_created ON schedules (user_id, created_at, id);

CREATE TABLE schedule_runs (
    schedule_id  TEXT    NOT NULL,
    scheduled_at BIGINT  NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('scheduled', 'skipped', 'manual')),
    task_id      TEXT,
    recorded_at  BIGINT  NOT NULL,
    CHECK ((kind = 'skipped') = (task_id IS NULL))
);

-- The exactly-once key: one scheduled or skipped run per (schedule, fire time).
CREATE UNIQUE INDEX idx_schedule_runs_once
    ON schedule_runs (schedule_id, scheduled_at)
    WHERE kind <> 'manual';

-- A schedule's runs, newest first.
CREATE INDEX idx_schedule_runs_recent ON schedule_runs (schedule_id, scheduled_at, recorded_at);
