//! The whole conformance suite of `task_store`, against PostgreSQL: one test per case, each on
//! its own fresh schema.

use crate::support::fresh_store;

task_store::conformance_suite!({
    // Without a test server the case returns here, after `fresh_store` printed why.
    let Some(fixture) = fresh_store().await else {
        return;
    };
    std::future::ready(fixture)
});

mod events {
    use crate::support::fresh_store;

    task_store::event_log_conformance_suite!({
        // Without a test server the case returns here, after `fresh_store` printed why.
        let Some(fixture) = fresh_store().await else {
            return;
        };
        std::future::ready(fixture)
    });
}

/// The schedule cases, each on its own fresh schema.
mod schedules {
    use crate::support::fresh_store;

    task_store::schedule_conformance_suite!({
        let Some(fixture) = fresh_store().await else {
            return;
        };
        std::future::ready(fixture)
    });
}

/// The analytics cases, each on its own fresh schema.
mod analytics {
    use crate::support::fresh_store;

    task_store::analytics_conformance_suite!({
        let Some(fixture) = fresh_store().await else {
            return;
        };
        std::future::ready(fixture)
    });
}

/// The provider-limit cases, each on its own fresh schema, and two stores on one schema (two
/// instances) contending for the same slots.
mod providers {
    use std::sync::Arc;

    use crate::support::{fresh_store, TestDb};

    task_store::provider_limits_conformance_suite!({
        let Some(fixture) = fresh_store().await else {
            return;
        };
        std::future::ready(fixture)
    });

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn instances_share_provider_slots() {
        let Some(db) = TestDb::new() else { return };
        let one = db.store().await;
        let two = db.store().await;
        task_store::testkit::instances_share_provider_slots(Arc::new(one), Arc::new(two)).await;
    }
}
