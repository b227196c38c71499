//! The whole conformance suite, once per backend.

mod memory {
    task_store::conformance_suite!(async { task_store::MemoryStore::new() });
    task_store::schedule_conformance_suite!(async { task_store::MemoryStore::new() });

    mod analytics {
        task_store::analytics_conformance_suite!(async { task_store::MemoryStore::new() });
    }

    mod providers {
        task_store::provider_limits_conformance_suite!(async { task_store::MemoryStore::new() });
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

    mod providers {
        task_store::provider_limits_conformance_suite!(async { crate::support::sqlite_fixture() });

        /// Two stores on one file, as two processes would open it.
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn instances_share_provider_slots() {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("tasks.db");
            let one = task_store::SqliteStore::open(&path).expect("open");
            let two = task_store::SqliteStore::open(&path).expect("open again");
            task_store::testkit::instances_share_provider_slots(
                std::sync::Arc::new(one),
                std::sync::Arc::new(two),
            )
            .await;
        }
    }

    mod events {
        task_store::event_log_conformance_suite!(async { crate::support::sqlite_fixture() });
    }
}
