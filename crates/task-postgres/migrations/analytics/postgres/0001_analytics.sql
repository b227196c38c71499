-- Analytics rollups (task_store::analytics): finished tasks folded into per-bucket rows by the
-- rollup loop, kept after the tasks themselves are purged. One row per resolution (minute, hour,
-- day), bucket and group; user_id '*' rows sum every user. Histograms are LogHistogram::encode's
-- bytes. The watermark row is also the lock that serialises folds across instances.
CREATE TABLE analytics_watermark (
    id           SMALLINT PRIMARY KEY CHECK (id = 1),
    completed_at BIGINT   NOT NULL,
    task_id      TEXT     NOT NULL,
    folded       BIGINT   NOT NULL
);

CREATE TABLE analytics_rollups (
    resolution     TEXT   NOT NULL,
    user_id        TEXT   NOT NULL,
    bucket_start   BIGINT NOT NULL,
    task_type      TEXT   NOT NULL,
    provider       TEXT   NOT NULL,
    model          TEXT   NOT NULL,
    completed      BIGINT NOT NULL,
    failed         BIGINT NOT NULL,
    cancelled      BIGINT NOT NULL,
    attempts       BIGINT NOT NULL,
    retries        BIGINT NOT NULL,
    timeouts       BIGINT NOT NULL,
    input_tokens   BIGINT NOT NULL,
    output_tokens  BIGINT NOT NULL,
    wait_histogram BYTEA  NOT NULL,
    run_histogram  BYTEA  NOT NULL,
    PRIMARY KEY (resolution, user_id, bucket_start, task_type, provider, model)
);

CREATE TABLE analytics_failures (
    resolution   TEXT   NOT NULL,
    user_id      TEXT   NOT NULL,
    bucket_start BIGINT NOT NULL,
    task_type    TEXT   NOT NULL,
    provider     TEXT   NOT NULL,
    model        TEXT   NOT NULL,
    reason       TEXT   NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (resolution, user_id, bucket_start, task_type, provider, model, reason)
);
