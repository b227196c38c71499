-- Big histories (issue #21): text search without reading the history, and status listings
-- that read only the tasks in that status. The same indexes as SQLite's 0010_history, in
-- PostgreSQL's terms.
-- Released migrations are never edited; change the schema with a new file.

-- Text search (`GET /api/tasks?q=`) is a case-insensitive substring match over `label` and
-- `description` (`lower(x) LIKE '%needle%'`). Trigram GIN indexes (pg_trgm) answer exactly
-- that query shape, so search keeps its meaning; full-text search (tsvector) would match words
-- and stems instead. The index narrows, the LIKE is rechecked on each row. pg_trgm ships with
-- PostgreSQL (contrib) and is a trusted extension: a database owner may create it. It is
-- created in `public` when the database has none yet (one extension per database, shared by
-- every tasklane schema; creating it in a store's schema would tie it to that schema), under
-- a transaction-scoped advisory lock so two schemas migrating at once do not both create it.
-- The operator class is named with the extension's schema, which the store's `search_path`
-- (its own schema only) does not include.
DO $migration$
DECLARE
    trgm_schema name;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tasklane: CREATE EXTENSION pg_trgm'));
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE EXTENSION pg_trgm SCHEMA public;
    END IF;
    SELECT n.nspname INTO trgm_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    EXECUTE format(
        'CREATE INDEX idx_background_tasks_label_trgm ON background_tasks '
        'USING gin (lower(label) %I.gin_trgm_ops)', trgm_schema);
    EXECUTE format(
        'CREATE INDEX idx_background_tasks_description_trgm ON background_tasks '
        'USING gin (lower(description) %I.gin_trgm_ops)', trgm_schema);
END
$migration$;

-- The dashboard's status filter for the finished statuses that are rare in a history: in
-- creation order, so a page is read from the index's newest end. Only failing and cancelling
-- writes them (never a creation or a completion). The other statuses are either common among
-- recent tasks (`pending`, `completed`: a walk of idx_background_tasks_created meets them at
-- once) or few and indexed already (`processing`: idx_background_tasks_lease_expiry,
-- `waiting`: idx_background_tasks_waiting).
CREATE INDEX idx_background_tasks_failed
    ON background_tasks (created_at, id)
    WHERE status = 'failed';
CREATE INDEX idx_background_tasks_cancelled
    ON background_tasks (created_at, id)
    WHERE status = 'cancelled';
