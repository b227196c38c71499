-- Creation without the search index's cost (issue #21, target 3): new tasks enter the trigram
-- index `background_tasks_search` (0010_history) behind a watermark, in batches, from a
-- maintenance loop (task-runtime's search indexer, `SqliteStore::index_search`), instead of
-- one FTS5 insert per created task inside the creating transaction.
-- Released migrations are never edited; change the schema with a new file.

-- The watermark: the index holds exactly the tasks whose rowid is at most `indexed_through`,
-- each with its current label and description. A search asks the index for those and reads
-- the tasks above it (the newest, few while the loop runs) by rowid and checks each, so its
-- answers stay exact. One row.
CREATE TABLE background_tasks_search_watermark (
    only            INTEGER PRIMARY KEY CHECK (only = 1),
    indexed_through INTEGER NOT NULL
);

-- Every task already in the table was indexed by 0010's triggers.
INSERT INTO background_tasks_search_watermark (only, indexed_through)
SELECT 1, COALESCE(MAX(rowid), 0) FROM background_tasks;

DROP TRIGGER background_tasks_search_insert;
DROP TRIGGER background_tasks_search_delete;
DROP TRIGGER background_tasks_search_update;

-- A new task above the watermark (every new task, while rowids grow) waits for the indexer.
-- One at or below it (SQLite reuses the largest rowid when the newest tasks were deleted) is
-- indexed at once, or no search would find it: the indexer only reads above the watermark.
CREATE TRIGGER background_tasks_search_insert AFTER INSERT ON background_tasks
WHEN new.rowid <= (SELECT indexed_through FROM background_tasks_search_watermark)
BEGIN
    INSERT INTO background_tasks_search (rowid, label, description)
    VALUES (new.rowid, new.label, new.description);
END;

-- Only indexed tasks have entries to remove or rewrite; the others are read from the table.
CREATE TRIGGER background_tasks_search_delete AFTER DELETE ON background_tasks
WHEN old.rowid <= (SELECT indexed_through FROM background_tasks_search_watermark)
BEGIN
    INSERT INTO background_tasks_search (background_tasks_search, rowid, label, description)
    VALUES ('delete', old.rowid, old.label, old.description);
END;

CREATE TRIGGER background_tasks_search_update AFTER UPDATE OF label, description
    ON background_tasks
    WHEN (old.label IS NOT new.label OR old.description IS NOT new.description)
        AND old.rowid <= (SELECT indexed_through FROM background_tasks_search_watermark)
BEGIN
    INSERT INTO background_tasks_search (background_tasks_search, rowid, label, description)
    VALUES ('delete', old.rowid, old.label, old.description);
    INSERT INTO background_tasks_search (rowid, label, description)
    VALUES (new.rowid, new.label, new.description);
END;
