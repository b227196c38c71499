-- Task priorities (issue #19): 0 low, 1 normal (every existing task), 2 high. A claim walks the
-- priority bands highest first, so the due index leads with the priority: each band is one range
-- of it. The per-user index gets the priority after the user for the same reason (a fair claim
-- reads one user's next due tasks of one band).
-- Released migrations are never edited; change the schema with a new file.

ALTER TABLE background_tasks
    ADD COLUMN priority INTEGER NOT NULL DEFAULT 1 CHECK (priority IN (0, 1, 2));

DROP INDEX idx_background_tasks_due;
CREATE INDEX idx_background_tasks_due
    ON background_tasks (priority, run_at, created_at, user_id, task_type)
    WHERE status = 'pending';

DROP INDEX idx_background_tasks_unfinished;
CREATE INDEX idx_background_tasks_unfinished
    ON background_tasks (user_id, priority, run_at, created_at, task_type)
    WHERE status IN ('pending', 'processing');
