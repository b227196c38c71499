-- Provider limits shared by every instance on the database (task_store::provider_limits):
-- one row per provider and model with its hold and the current minute's counts, and one row
-- per call in flight (a lease that expires if its worker dies mid-call).
CREATE TABLE provider_gates (
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    hold_until INTEGER,
    window_start INTEGER NOT NULL DEFAULT 0,
    window_requests INTEGER NOT NULL DEFAULT 0,
    window_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, model)
) WITHOUT ROWID;

CREATE TABLE provider_leases (
    lease_id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX provider_leases_by_key ON provider_leases (provider, model, expires_at);
