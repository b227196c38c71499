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
