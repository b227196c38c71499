-- Big histories (issue #21): text search without reading the history, and a status listing
-- that reads only the tasks in that status.
-- Released migrations are never edited; change the schema with a new file.

-- Text search (`GET /api/tasks?q=`) over `label` and `description`: an FTS5 index of the
-- tasks' trigrams, case folded, external content (the text stays in `background_tasks`,
-- linked by rowid, which the table's rebuilds keep and VACUUM's copy preserves). A trigram
-- index answers a substring query, so search keeps its meaning (a case-insensitive substring,
-- not a word or a prefix); the store still checks each row it finds with its own case folding,
-- so the index only narrows, never decides. `columnsize=0`: no per-row token counts, which
-- only ranking needs and every insert would write.
-- A later migration that rebuilds `background_tasks` without keeping rowids must end with
-- `INSERT INTO background_tasks_search (background_tasks_search) VALUES ('rebuild')`.
CREATE VIRTUAL TABLE background_tasks_search USING fts5(
    label,
    description,
    content = 'background_tasks',
    tokenize = 'trigram case_sensitive 0',
    columnsize = 0
);

INSERT INTO background_tasks_search (background_tasks_search) VALUES ('rebuild');

-- Kept in step by triggers, so every write path (creation, updates, the cleaner's purge,
-- cascades) is covered without the store's code knowing. A label never changes; a description
-- changes with progress text, and only a real change rewrites its entry.
CREATE TRIGGER background_tasks_search_insert AFTER INSERT ON background_tasks
BEGIN
    INSERT INTO background_tasks_search (rowid, label, description)
    VALUES (new.rowid, new.label, new.description);
END;

CREATE TRIGGER background_tasks_search_delete AFTER DELETE ON background_tasks
BEGIN
    INSERT INTO background_tasks_search (background_tasks_search, rowid, label, description)
    VALUES ('delete', old.rowid, old.label, old.description);
END;

CREATE TRIGGER background_tasks_search_update AFTER UPDATE OF label, description
    ON background_tasks
    WHEN old.label IS NOT new.label OR old.description IS NOT new.description
BEGIN
    INSERT INTO background_tasks_search (background_tasks_search, rowid, label, description)
    VALUES ('delete', old.rowid, old.label, old.description);
    INSERT INTO background_tasks_search (rowid, label, description)
    VALUES (new.rowid, new.label, new.description);
END;

-- The dashboard's status filter for the finished statuses that are rare in a history: in
-- creation order, so a page is read from the index's newest end, never by walking every task.
-- Only failing and cancelling write them (never a creation or a completion). The listing
-- names the status as a literal, which is how SQLite sees that a partial index applies. The
-- other statuses are either common among recent tasks (`pending`, `completed`: walking
-- idx_background_tasks_created meets them at once) or few and indexed already (`processing`:
-- idx_background_tasks_lease_expiry, `waiting`: idx_background_tasks_waiting).
CREATE INDEX idx_background_tasks_failed
    ON background_tasks (created_at, id)
    WHERE status = 'failed';
CREATE INDEX idx_background_tasks_cancelled
    ON background_tasks (created_at, id)
    WHERE status = 'cancelled';
