-- Users and their API/session tokens. Tokens are stored only as SHA-256 hashes of the secret.
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE users (
    email      TEXT    PRIMARY KEY,
    role       TEXT    NOT NULL CHECK (role IN ('user', 'superuser')),
    created_at INTEGER NOT NULL
);

CREATE TABLE tokens (
    id         TEXT    PRIMARY KEY,
    user_email TEXT    NOT NULL REFERENCES users (email) ON DELETE CASCADE,
    hash       TEXT    NOT NULL UNIQUE,
    kind       TEXT    NOT NULL CHECK (kind IN ('api', 'session')),
    label      TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);

-- A user's tokens, oldest first.
CREATE INDEX idx_tokens_user_created ON tokens (user_email, created_at);
