-- Quiz questions, written by the quiz crate through the task store's connection helpers.
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE questions (
    id                TEXT    PRIMARY KEY,             -- q_<unix-ms>_<random>
    user_id           TEXT    NOT NULL,                -- the owner
    text              TEXT    NOT NULL,
    -- The text normalised (lowercase, no punctuation, single spaces): duplicate checks and search.
    text_key          TEXT    NOT NULL,
    options           TEXT    NOT NULL                 -- JSON array of exactly four strings
                      CHECK (json_valid(options) AND json_array_length(options) = 4),
    correct_index     INTEGER NOT NULL CHECK (correct_index BETWEEN 0 AND 3),
    explanation       TEXT    NOT NULL,
    emoji             TEXT    NOT NULL,
    category          TEXT    NOT NULL,                -- as given
    category_key      TEXT    NOT NULL,                -- lowercase, single spaces: what filters match
    age_group         TEXT    NOT NULL CHECK (age_group IN ('children', 'youth', 'adults')),
    difficulty        TEXT    NOT NULL CHECK (difficulty IN ('easy', 'medium', 'hard')),
    language          TEXT    NOT NULL DEFAULT 'sv',
    validation_status TEXT    NOT NULL DEFAULT 'unvalidated'
                      CHECK (validation_status IN ('unvalidated', 'valid', 'invalid')),
    validation_notes  TEXT,
    -- Provenance. No foreign key to background_tasks: the cleaner deletes old tasks, their
    -- questions stay.
    task_id           TEXT,
    provider          TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,                -- unix milliseconds
    updated_at        INTEGER NOT NULL
);

-- A user's questions, newest first, paged by (created_at, id).
CREATE INDEX idx_questions_user_created ON questions (user_id, created_at, id);

-- Everyone's questions (superusers), newest first.
CREATE INDEX idx_questions_created ON questions (created_at, id);

-- Category filters and the duplicate check, which reads only the normalised texts of a category.
CREATE INDEX idx_questions_category ON questions (category_key, text_key);
