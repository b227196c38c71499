-- Quiz questions: the same table and columns as SQLite's `questions`, written by the quiz crate
-- through the task store's pooled connections. Timestamps are bigint milliseconds since the Unix
-- epoch and `options` is jsonb. `id` and `user_id` compare bytewise (collation "C") like
-- SQLite's text, so pages come in the same order.
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE questions (
    id                text    COLLATE "C" PRIMARY KEY,  -- q_<unix-ms>_<random>
    user_id           text    COLLATE "C" NOT NULL,     -- the owner
    text              text    NOT NULL,
    -- The text normalised (lowercase, no punctuation, single spaces): duplicate checks and search.
    text_key          text    NOT NULL,
    options           jsonb   NOT NULL                  -- a JSON array of exactly four strings
                      CHECK (CASE WHEN jsonb_typeof(options) = 'array'
                                  THEN jsonb_array_length(options) = 4
                                  ELSE false END),
    correct_index     integer NOT NULL CHECK (correct_index BETWEEN 0 AND 3),
    explanation       text    NOT NULL,
    emoji             text    NOT NULL,
    category          text    NOT NULL,                 -- as given
    category_key      text    NOT NULL,                 -- lowercase, single spaces: what filters match
    age_group         text    NOT NULL CHECK (age_group IN ('children', 'youth', 'adults')),
    difficulty        text    NOT NULL CHECK (difficulty IN ('easy', 'medium', 'hard')),
    language          text    NOT NULL DEFAULT 'sv',
    validation_status text    NOT NULL DEFAULT 'unvalidated'
                      CHECK (validation_status IN ('unvalidated', 'valid', 'invalid')),
    validation_notes  text,
    -- Provenance. No foreign key to background_tasks: the cleaner deletes old tasks, their
    -- questions stay.
    task_id           text,
    provider          text    NOT NULL,
    model             text    NOT NULL,
    created_at        bigint  NOT NULL,                 -- unix milliseconds
    updated_at        bigint  NOT NULL
);

-- A user's questions, newest first, paged by (created_at, id).
CREATE INDEX idx_questions_user_created ON questions (user_id, created_at, id);

-- Everyone's questions (superusers), newest first.
CREATE INDEX idx_questions_created ON questions (created_at, id);

-- Category filters and the duplicate check, which reads only the normalised texts of a category.
CREATE INDEX idx_questions_category ON questions (category_key, text_key);
