-- Per-user limits (issue #19): a user's own creation rate and burst, running and queued caps.
-- A NULL column means "the server's default". Self-contained: it only adds a table.
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE user_limits (
    email          TEXT   PRIMARY KEY REFERENCES users (email) ON DELETE CASCADE,
    rate_count     BIGINT CHECK (rate_count >= 1),
    rate_period_ms BIGINT CHECK (rate_period_ms >= 1),
    burst          BIGINT CHECK (burst >= 1),
    max_running    BIGINT CHECK (max_running >= 1),
    max_queued     BIGINT CHECK (max_queued >= 1),
    CHECK ((rate_count IS NULL) = (rate_period_ms IS NULL))
);
