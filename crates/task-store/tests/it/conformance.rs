//! The whole conformance suite, once per backend.

mod memory {
    task_store::conformance_suite!(async { task_store::MemoryStore::new() });
    task_store::schedule_conformance_suite!(async { task_store::MemoryStore::new() });

    mod analytics {
        task_store::analytics_conformance_suite!(async { task_store::MemoryStore::new() });
    }

    mod events {
        task_store::event_log_conformance_suite!(async { task_store::MemoryStore::new() });
    }
}

mod sqlite {
    task_store::conformance_suite!(async { crate::support::sqlite_fixture() });
    task_store::schedule_conformance_suite!(async { crate::support::sqlite_fixture() });

    mod analytics {
        task_store::analytics_conformance_suite!(async { crate::support::sqlite_fixture() });
    }

    mod events {
        task_store::event_log_conformance_suite!(async { crate::support::sqlite_fixture() });
    }
}
