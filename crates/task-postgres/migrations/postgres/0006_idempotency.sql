-- Guarded creation (issue #19): idempotency keys and per-task unique keys, both per user.
-- Written in the same transaction as the task they point at. Self-contained: it only adds
-- tables. Released migrations are never edited; change the schema with a new file.

-- The first answer to each (user, Idempotency-Key): the request's fingerprint and the task as
-- it was returned (JSON text), kept for the idempotency window (24 h); an older row is replaced.
CREATE TABLE idempotency_keys (
    user_id     TEXT    NOT NULL,
    idem_key    TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    task        TEXT    NOT NULL,
    created     BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);

-- The task each (user, unique_key) last created; while it is unfinished a create returns it.
CREATE TABLE task_unique_keys (
    user_id    TEXT NOT NULL,
    unique_key TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    PRIMARY KEY (user_id, unique_key)
);
