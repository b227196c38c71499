-- Counting running tasks per user from the lease index alone (issue #21, target 5): every fair
-- claim counts the `processing` tasks of each user (`RUNNING_PER_USER` in the store's claim).
-- With the lease index on the expiry only, that count read every processing task's table row
-- (one page each, on a big file most of the fair claim's time); with the user in the index
-- after the expiry, the count reads the index's entries alone. It costs no extra write: the
-- index already changes with every claim, heartbeat and completion, and a task's user never
-- changes. The rescuer, which reads expired leases from the same index in expiry order, now
-- orders ties by user before rowid, the index's own order.
-- Building the index reads the table once, inside the migration's write transaction.
-- Released migrations are never edited; change the schema with a new file.

DROP INDEX idx_background_tasks_lease_expiry;
CREATE INDEX idx_background_tasks_lease_expiry
    ON background_tasks (lease_expires_at, user_id)
    WHERE status = 'processing';
