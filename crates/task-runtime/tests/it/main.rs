//! Integration tests of the worker runtime. Every scenario runs against both `MemoryStore`
//! and `SqliteStore` (see `support::on_both_stores!`), except crash recovery, which needs a
//! database file shared with a child process.

mod cancellation;
mod claim_ahead;
mod crash;
mod dependencies;
mod fairness;
mod leases;
mod lifecycle;
mod maintenance;
mod retries;
mod rollups;
mod schedules;
mod search_index;
mod shutdown;
mod support;
