-- Analytics rollups (task_store::analytics): finished tasks folded into per-bucket rows by the
-- rollup loop, kept after the tasks themselves are purged. One row per resolution (minute, hour,
-- day), bucket and group; user_id '*' rows sum every user. Histograms are LogHistogram::encode's
-- bytes.
CREATE TABLE analytics_watermark (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    completed_at INTEGER NOT NULL,
    task_id      TEXT    NOT NULL,
    folded       INTEGER NOT NULL
);

CREATE TABLE analytics_rollups (
    resolution     TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    bucket_start   INTEGER NOT NULL,
    task_type      TEXT    NOT NULL,
    provider       TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    completed      INTEGER NOT NULL,
    failed         INTEGER NOT NULL,
    cancelled      INTEGER NOT NULL,
    attempts       INTEGER NOT NULL,
    retries        INTEGER NOT NULL,
    timeouts       INTEGER NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    wait_histogram BLOB    NOT NULL,
    run_histogram  BLOB    NOT NULL,
    PRIMARY KEY (resolution, user_id, bucket_start, task_type, provider, model)
) WITHOUT ROWID;

CREATE TABLE analytics_failures (
    resolution   TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    bucket_start INTEGER NOT NULL,
    task_type    TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    model        TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (resolution, user_id, bucket_start, task_type, provider, model, reason)
) WITHOUT ROWID;
