-- Placeholder for another branch's 0011 (the lead renumbers or replaces it at merge).
-- Released migrations are never edited; change the schema with a new file.
SELECT 1;
