-- Counting running tasks per user (issue #21, target 5): every fair claim counts the
-- `processing` tasks of each user (`sql::RUNNING_PER_USER`). The lease index now carries the
-- user too, so the count can be an index-only scan wherever the visibility map allows it (the
-- heap is read only for pages changed since the last vacuum). It costs nothing the index did
-- not already cost: the index changes with every claim, heartbeat and completion anyway (so
-- none of those was a HOT update before either), and a task's user never changes. The
-- rescuer's expiry order is unchanged (the user is only carried, not a key).
-- Building the index reads the table once and blocks writes to it meanwhile: 1.1 s for
-- 1,000,000 tasks on the project's 2-core machine.
-- Released migrations are never edited; change the schema with a new file.

DROP INDEX idx_background_tasks_lease_expiry;
CREATE INDEX idx_background_tasks_lease_expiry
    ON background_tasks (lease_expires_at)
    INCLUDE (user_id)
    WHERE status = 'processing';
