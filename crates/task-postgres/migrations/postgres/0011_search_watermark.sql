-- Issue #21, target 3: on SQLite, migration 0011 moves the search index behind a watermark, so
-- that a creation no longer writes it. PostgreSQL needs no such change: its pg_trgm GIN indexes
-- (0010) take new entries into their fast-update pending list, which is cheap per insert and
-- merged later by (auto)vacuum. This migration changes nothing; it keeps the two backends'
-- `tasks` sets numbered alike, so `tasks/0012_claim_heads` names the same change on both.
-- Released migrations are never edited; change the schema with a new file.
SELECT 1;
