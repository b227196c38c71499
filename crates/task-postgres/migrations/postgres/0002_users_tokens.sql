-- Users and their API/session tokens, as in SQLite. Tokens are stored only as SHA-256 hashes
-- of the secret. `seq` is the insertion order SQLite's rowid provides for tie-breaking.
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE users (
    email      text   PRIMARY KEY,
    role       text   NOT NULL CHECK (role IN ('user', 'superuser')),
    created_at bigint NOT NULL,
    seq        bigint GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE tokens (
    id         text   PRIMARY KEY,
    user_email text   NOT NULL REFERENCES users (email) ON DELETE CASCADE,
    hash       text   NOT NULL UNIQUE,
    kind       text   NOT NULL CHECK (kind IN ('api', 'session')),
    label      text,
    created_at bigint NOT NULL,
    expires_at bigint,
    seq        bigint GENERATED ALWAYS AS IDENTITY
);

-- A user's tokens, oldest first.
CREATE INDEX idx_tokens_user_created ON tokens (user_email, created_at, seq);
