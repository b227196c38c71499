//! Storage for tasklane: the [`TaskStore`] and [`UserStore`] traits, the change feed, and the
//! backends ([`SqliteStore`], [`MemoryStore`]).
//!
//! **Invariant: this crate knows nothing of HTTP, AI providers or the worker runtime.** Every
//! rule about what a change may do comes from `task-core`; this crate makes the changes durable,
//! fences them by lease token and publishes them in commit order.
//!
//! With the `testkit` feature, [`testkit`] exports the conformance suite that every backend
//! (including ones in other crates) runs in full.

mod error;
mod feed;
mod query;
mod store;
mod users;

pub use error::StoreError;
pub use feed::{ChangeFeed, ChangeReceiver, TaskChange, DEFAULT_FEED_CAPACITY};
pub use query::{
    ClaimRequest, Cursor, Failure, Lease, ListQuery, StatusCount, TaskPage, DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
};
pub use store::TaskStore;
pub use users::{NewToken, Role, TokenKind, TokenRecord, User, UserStore};

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
