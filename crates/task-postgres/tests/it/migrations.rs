//! Connecting: migrations applied once even when instances start together, newer schemas
//! refused, bad settings and unreachable servers reported as typed errors.

use task_core::CoreError;
use task_postgres::{PostgresConfig, PostgresStore};
use task_store::{StoreError, TaskStore};

use crate::support::{database_url, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_apply_each_migration_once() {
    let Some(db) = TestDb::new() else { return };
    let connects = (0..4).map(|_| PostgresStore::connect(db.url(), db.config()));
    let stores = futures_util::future::join_all(connects).await;
    for store in &stores {
        let store = store.as_ref().expect("every instance connects");
        store.ping().await.unwrap();
        assert!(store.listener_status().borrow().connected);
    }
    let admin = db.admin().await;
    let versions: Vec<i64> = admin
        .query(
            &format!(
                "SELECT version FROM \"{}\".schema_migrations ORDER BY version",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_schema_from_a_newer_build_is_refused() {
    let Some(db) = TestDb::new() else { return };
    drop(db.store().await);
    let admin = db.admin().await;
    admin
        .execute(
            &format!(
                "INSERT INTO \"{}\".schema_migrations (version, name, applied_at) \
                 VALUES (999, 'from_the_future', 0)",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    match PostgresStore::connect(db.url(), db.config()).await {
        Err(StoreError::Schema(message)) => {
            assert!(
                message.contains("999") && message.contains("newer"),
                "{message}"
            )
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_settings_are_invalid_before_connecting() {
    let bad_schema = PostgresStore::connect(
        "postgres://nobody@127.0.0.1:1/none",
        PostgresConfig::with_schema("Robert'); DROP TABLE"),
    )
    .await;
    assert!(matches!(
        bad_schema,
        Err(StoreError::Invalid(CoreError::InvalidField {
            field: "schema",
            ..
        }))
    ));
    let bad_url =
        PostgresStore::connect("postgres://h:notaport/db", PostgresConfig::default()).await;
    assert!(matches!(
        bad_url,
        Err(StoreError::Invalid(CoreError::InvalidField {
            field: "database_url",
            ..
        }))
    ));
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let result = PostgresStore::connect(
        &format!("postgres://postgres@127.0.0.1:{port}/test"),
        PostgresConfig::default(),
    )
    .await;
    match result {
        // The cause is part of the message, not only "error connecting to server".
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("refused"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_missing_database_is_unavailable() {
    let Some(url) = database_url() else { return };
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.dbname("tasklane_no_such_database");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres").to_owned();
    let result = PostgresStore::connect(
        &format!("postgres://{user}@{host}:{port}/tasklane_no_such_database"),
        PostgresConfig::default(),
    )
    .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}
