//! The conformance suite: every behaviour the [`TaskStore`] and [`UserStore`] doc comments
//! promise, as public async test functions. Every backend runs all of it, in any crate, with one
//! line:
//!
//! ```no_run
//! task_store::conformance_suite!(async { task_store::MemoryStore::new() });
//! # fn main() {}
//! ```
//!
//! The argument is an expression evaluating to a future, evaluated afresh for every test; its
//! output is a [`TaskFixture`] + [`UserFixture`] (any cloneable store, or a [`Guarded`] store
//! that keeps, say, a temporary directory alive). Backends without users use
//! [`task_conformance_suite!`](crate::task_conformance_suite) alone. The calling crate needs
//! `tokio` (with the `macros` and `rt-multi-thread` features) as a dev-dependency.
//!
//! A change of behaviour extends this suite first.

mod claims;
mod crud;
mod feed;
mod fencing;
mod guards;
mod limits;
mod listing;
mod macros;
mod maintenance;
mod support;
mod transitions;
mod users;

use std::sync::Arc;

pub use claims::*;
pub use crud::*;
pub use feed::*;
pub use fencing::*;
pub use guards::*;
pub use limits::*;
pub use listing::*;
pub use maintenance::*;
pub use transitions::*;
pub use users::*;

use crate::{TaskStore, UserStore};

/// What a task-suite factory produces: a fresh, empty store.
pub trait TaskFixture: Send + 'static {
    /// The store under test.
    fn task_store(&self) -> Arc<dyn TaskStore>;
}

/// What a user-suite factory produces: a fresh, empty store.
pub trait UserFixture: Send + 'static {
    /// The store under test.
    fn user_store(&self) -> Arc<dyn UserStore>;
}

impl<S: TaskStore + Clone> TaskFixture for S {
    fn task_store(&self) -> Arc<dyn TaskStore> {
        Arc::new(self.clone())
    }
}

impl<S: UserStore + Clone> UserFixture for S {
    fn user_store(&self) -> Arc<dyn UserStore> {
        Arc::new(self.clone())
    }
}

/// A store plus something that must live as long as the test (a temporary directory, a
/// database container handle).
#[derive(Debug)]
pub struct Guarded<S, G> {
    store: S,
    _guard: G,
}

impl<S, G> Guarded<S, G> {
    /// Keeps `guard` alive next to `store`.
    pub fn new(store: S, guard: G) -> Self {
        Self {
            store,
            _guard: guard,
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: TaskStore + Clone, G: Send + 'static> TaskFixture for Guarded<S, G> {
    fn task_store(&self) -> Arc<dyn TaskStore> {
        Arc::new(self.store.clone())
    }
}

impl<S: UserStore + Clone, G: Send + 'static> UserFixture for Guarded<S, G> {
    fn user_store(&self) -> Arc<dyn UserStore> {
        Arc::new(self.store.clone())
    }
}
