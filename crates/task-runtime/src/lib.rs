//! The worker runtime: durable background execution with leases, retries, cancellation, per-user fairness and graceful shutdown.
