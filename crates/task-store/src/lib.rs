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

pub mod backend;
mod error;
mod feed;
pub mod guard;
mod limits;
mod memory;
mod query;
mod sqlite;
mod store;
mod users;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::StoreError;
pub use feed::{ChangeFeed, ChangeReceiver, TaskChange, DEFAULT_FEED_CAPACITY};
pub use guard::{
    CreateGuard, Guarded, IdempotencyClaim, DEFAULT_IDEMPOTENCY_WINDOW_MS, MAX_GUARD_KEY_BYTES,
};
pub use limits::{LimitColumns, Rate, UserLimits};
pub use memory::MemoryStore;
pub use query::{
    ClaimRequest, Cursor, Failure, Lease, ListQuery, StatusCount, TaskPage, DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
};
pub use sqlite::{
    map_sqlite_error, Migration, SqliteConfig, SqliteStore, DEFAULT_BUSY_TIMEOUT,
    DEFAULT_CHECKPOINT_PAGES, DEFAULT_POOL_SIZE, MIGRATIONS,
};
pub use store::TaskStore;
pub use users::{NewToken, Role, TokenKind, TokenRecord, User, UserStore};

/// The SQLite driver this crate uses, for sibling crates that keep their own tables in the same
/// file (through [`SqliteStore::with_connection`]); using this re-export keeps the versions
/// in step.
pub use rusqlite;

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
