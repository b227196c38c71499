//! Storage for tasklane: the [`TaskStore`] and [`UserStore`] traits, the change feed, and the
//! backends ([`SqliteStore`], [`MemoryStore`]).
//!
//! **Invariant: this crate knows nothing of HTTP, AI providers or the worker runtime.** Every
//! rule about what a change may do comes from `task-core` (and, for the rules every backend
//! shares, from this crate's [`backend::rules`]); this crate makes the changes durable, fences them
//! by lease token and publishes them in commit order. `docs/state-machine.md` describes the
//! states, who moves a task between them, and the fencing, versioning and durability rules.
//!
//! With the `testkit` feature, `task_store::testkit` exports the conformance suite that every
//! backend (including ones in other crates) runs in full with `conformance_suite!`. The
//! [`backend`] module exports the shared rules, fair-claim picker, lease tokens and clock that
//! the built-in backends are made of, for backends in other crates.
//!
//! ```
//! use std::time::Duration;
//!
//! use serde_json::json;
//! use task_core::{now_millis, NewTask, TaskStatus};
//! use task_store::{ClaimRequest, Lease, MemoryStore, TaskChange, TaskStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), task_store::StoreError> {
//! // `SqliteStore::open(path)` or a PostgreSQL store work the same way.
//! let store = MemoryStore::new();
//! let mut feed = store.subscribe();
//! let task = store.create(NewTask::new("ada@example.com", "generation")).await?;
//!
//! // A worker claims it with a lease; every write on its behalf carries the lease's token.
//! let request = ClaimRequest {
//!     worker_id: "worker-1".to_owned(),
//!     limit: 1,
//!     task_types: vec!["generation".to_owned()],
//!     lease_for: Duration::from_secs(30),
//!     max_running_per_user: None,
//!     now: now_millis(),
//! };
//! let claimed = store.claim(&request).await?;
//! let lease = Lease::of(&claimed[0]).expect("a claimed task holds a lease");
//! store.update_progress(&lease, 50, Some("Halfway".to_owned())).await?;
//! let done = store.complete(&lease, json!({"questions": 10})).await?;
//! assert_eq!(done.status, TaskStatus::Completed);
//!
//! // Every committed change was published, in commit order.
//! let mut seen = Vec::new();
//! while let Ok(TaskChange::Upserted(change)) = feed.try_recv() {
//!     assert_eq!(change.id, task.id);
//!     seen.push(change.status);
//! }
//! assert_eq!(seen.first(), Some(&TaskStatus::Pending));
//! assert_eq!(seen.last(), Some(&TaskStatus::Completed));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod analytics;
pub mod backend;
mod error;
mod events;
mod feed;
pub mod guard;
mod limits;
mod memory;
pub mod migrate;
pub mod provider_limits;
mod query;
mod schedules;
mod sqlite;
mod store;
mod users;
mod workflows;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use analytics::AnalyticsStore;
pub use backend::rules::MAX_CLAIM_LIMIT;
pub use error::StoreError;
pub use events::{EventFeed, EventReceiver, TaskEvent, TaskEventLog, DEFAULT_EVENT_FEED_CAPACITY};
pub use feed::{ChangeFeed, ChangeReceiver, TaskChange, DEFAULT_FEED_CAPACITY};
pub use guard::{
    CreateGuard, Guarded, GuardedWorkflow, IdempotencyClaim, DEFAULT_IDEMPOTENCY_WINDOW_MS,
    MAX_GUARD_KEY_BYTES,
};
pub use limits::{LimitColumns, Rate, UserLimits};
pub use memory::MemoryStore;
pub use provider_limits::{
    Admission, AdmitRequest, ProviderCaps, ProviderKey, ProviderLease, ProviderLimit,
    ProviderLimitStore, ProviderLimits, ProviderUsage, WaitReason,
};
pub use query::{
    ClaimRequest, Cursor, Failure, Lease, ListQuery, StatusCount, TaskPage, DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
};
pub use schedules::{
    CatchUpPolicy, Fired, Firing, OverlapPolicy, RunKind, Schedule, ScheduleRun, ScheduleSpec,
    ScheduleStore, MAX_SCHEDULE_NAME_LEN,
};
pub use sqlite::{
    map_sqlite_error, SqliteConfig, SqliteStore, ANALYTICS_MIGRATIONS, DEFAULT_BUSY_TIMEOUT,
    DEFAULT_CHECKPOINT_PAGES, DEFAULT_POOL_SIZE, MIGRATIONS, PROVIDER_MIGRATIONS,
};
pub use store::TaskStore;
pub use users::{NewToken, Role, TokenKind, TokenRecord, User, UserStore};
pub use workflows::{cancel_workflow, count_in, is_finished};

/// The SQLite driver this crate uses, for sibling crates that keep their own tables in the same
/// file (through [`SqliteStore::with_connection`]); using this re-export keeps the versions
/// in step.
pub use rusqlite;

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
