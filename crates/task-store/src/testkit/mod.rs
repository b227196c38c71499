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
//! output is a [`TaskFixture`] + [`UserFixture`] (+ [`ScheduleFixture`] for
//! [`schedule_conformance_suite!`](crate::schedule_conformance_suite)) (any cloneable store, or a [`Guarded`] store
//! that keeps, say, a temporary directory alive). Backends without users use
//! [`task_conformance_suite!`](crate::task_conformance_suite) alone. The calling crate needs
//! `tokio` (with the `macros` and `rt-multi-thread` features) as a dev-dependency.
//!
//! A change of behaviour extends this suite first.

mod analytics;
mod claims;
mod completions;
mod crud;
mod dependencies;
mod events;
mod fair_heads;
mod feed;
mod fencing;
mod guards;
mod limits;
mod listing;
mod macros;
mod maintenance;
mod migrations;
mod priorities;
mod providers;
mod schedules;
mod support;
mod transitions;
mod users;
mod wait;

use std::sync::Arc;

pub use analytics::*;
pub use claims::*;
pub use completions::*;
pub use crud::*;
pub use dependencies::*;
pub use events::*;
pub use fair_heads::*;
pub use feed::*;
pub use fencing::*;
pub use guards::*;
pub use limits::*;
pub use listing::*;
pub use maintenance::*;
pub use migrations::{assert_set_matches_directory, released_rows, RELEASE_ONE_TASKS_MIGRATIONS};
pub use priorities::*;
pub use providers::*;
pub use schedules::*;
pub use transitions::*;
pub use users::*;
pub use wait::{wait_for_task, within};

use crate::{
    AnalyticsStore, ProviderLimitStore, ScheduleStore, TaskEventLog, TaskStore, UserStore,
};

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

/// What an event-log-suite factory produces: a fresh, empty store with an event log.
pub trait EventFixture: TaskFixture {
    /// The event log under test (the same store as [`TaskFixture::task_store`]).
    fn event_log(&self) -> Arc<dyn TaskEventLog>;
}

impl<S: TaskStore + TaskEventLog + Clone> EventFixture for S {
    fn event_log(&self) -> Arc<dyn TaskEventLog> {
        Arc::new(self.clone())
    }
}

impl<S: TaskStore + TaskEventLog + Clone, G: Send + 'static> EventFixture for Guarded<S, G> {
    fn event_log(&self) -> Arc<dyn TaskEventLog> {
        Arc::new(self.store.clone())
    }
}

/// What a schedule-suite factory produces: a fresh, empty store with tasks and schedules.
pub trait ScheduleFixture: Send + 'static {
    /// The store under test, as both traits.
    fn schedule_stores(&self) -> ScheduleStores;
}

impl<S: TaskStore + ScheduleStore + Clone> ScheduleFixture for S {
    fn schedule_stores(&self) -> ScheduleStores {
        ScheduleStores {
            tasks: Arc::new(self.clone()),
            schedules: Arc::new(self.clone()),
        }
    }
}

impl<S: TaskStore + ScheduleStore + Clone, G: Send + 'static> ScheduleFixture for Guarded<S, G> {
    fn schedule_stores(&self) -> ScheduleStores {
        self.store.schedule_stores()
    }
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

/// What an analytics-suite factory produces: a fresh, empty store with tasks and rollups.
pub trait AnalyticsFixture: Send + 'static {
    /// The store under test, as both traits.
    fn analytics_stores(&self) -> AnalyticsStores;
}

impl<S: TaskStore + AnalyticsStore + Clone> AnalyticsFixture for S {
    fn analytics_stores(&self) -> AnalyticsStores {
        AnalyticsStores {
            tasks: Arc::new(self.clone()),
            analytics: Arc::new(self.clone()),
        }
    }
}

impl<S: TaskStore + AnalyticsStore + Clone, G: Send + 'static> AnalyticsFixture for Guarded<S, G> {
    fn analytics_stores(&self) -> AnalyticsStores {
        self.store.analytics_stores()
    }
}

/// What a provider-limits-suite factory produces: a fresh, empty store.
pub trait ProviderFixture: Send + 'static {
    /// The store under test.
    fn provider_store(&self) -> Arc<dyn ProviderLimitStore>;
}

impl<S: ProviderLimitStore + TaskStore + Clone> ProviderFixture for S {
    fn provider_store(&self) -> Arc<dyn ProviderLimitStore> {
        Arc::new(self.clone())
    }
}

impl<S: ProviderLimitStore + TaskStore + Clone, G: Send + 'static> ProviderFixture
    for Guarded<S, G>
{
    fn provider_store(&self) -> Arc<dyn ProviderLimitStore> {
        Arc::new(self.store.clone())
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
