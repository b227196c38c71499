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
                "SELECT version FROM \"{}\".schema_migrations WHERE set_name = 'tasks' \
                 ORDER BY version",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let every: Vec<i64> = (1..=task_postgres::MIGRATIONS.newest()).collect();
    assert_eq!(versions, every);
}

#[tokio::test]
async fn a_schema_from_a_newer_build_is_refused() {
    let Some(db) = TestDb::new() else { return };
    drop(db.store().await);
    let admin = db.admin().await;
    admin
        .execute(
            &format!(
                "INSERT INTO \"{}\".schema_migrations (set_name, version, name, applied_at) \
                 VALUES ('tasks', 999, '0999_from_the_future', 0)",
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

#[tokio::test]
async fn a_new_schema_records_the_analytics_set() {
    let Some(db) = TestDb::new() else { return };
    let _store = db.store().await;
    let analytics: Vec<(String, i64, String)> = full_ledger(&db)
        .await
        .into_iter()
        .filter(|(set, ..)| set == "analytics")
        .map(|(set, version, name, _)| (set, version, name))
        .collect();
    assert_eq!(
        analytics,
        [("analytics".to_owned(), 1, "0001_analytics".to_owned())]
    );
}

#[test]
fn the_analytics_set_embeds_every_file_of_its_directory() {
    task_store::testkit::assert_set_matches_directory(
        &task_postgres::ANALYTICS_MIGRATIONS,
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/analytics/postgres"),
    );
}

#[test]
fn the_providers_set_embeds_every_file_of_its_directory() {
    task_store::testkit::assert_set_matches_directory(
        &task_postgres::PROVIDER_MIGRATIONS,
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/providers/postgres"),
    );
}

#[test]
fn the_tasks_set_embeds_every_file_of_its_directory() {
    task_store::testkit::assert_set_matches_directory(
        &task_postgres::MIGRATIONS,
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"),
    );
}

/// The ledger of `db`'s schema without the `analytics` and `providers` sets (which every store
/// applies beside `tasks`; their own tests are `a_new_schema_records_the_analytics_set` and
/// `the_providers_set_embeds_every_file_of_its_directory`): `(set, version, name, applied_at)`,
/// tasks first.
async fn ledger(db: &TestDb) -> Vec<(String, i64, String, i64)> {
    let mut rows = full_ledger(db).await;
    rows.retain(|(set, ..)| set != "analytics" && set != "providers");
    rows
}

async fn full_ledger(db: &TestDb) -> Vec<(String, i64, String, i64)> {
    db.admin()
        .await
        .query(
            &format!(
                "SELECT set_name, version, name, applied_at FROM \"{}\".schema_migrations \
                 ORDER BY set_name DESC, version",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect()
}

#[tokio::test]
async fn a_release_one_schema_is_upgraded_in_place_and_keeps_its_data() {
    let Some(db) = TestDb::new() else { return };
    // The schema as the first release left it: one ledger sequence for every table (names
    // without prefix), its three migrations applied, one task. The quiz crate's `questions`
    // (version 3) stands in as a one-column table; the quiz crate's tests replay it in full.
    let admin = db.admin().await;
    let mut replay = format!(
        "CREATE SCHEMA \"{0}\"; SET search_path TO \"{0}\";
         CREATE TABLE schema_migrations (version bigint PRIMARY KEY, name text NOT NULL,
                                         applied_at bigint NOT NULL);",
        db.schema()
    );
    for migration in
        &task_postgres::MIGRATIONS.migrations()[..task_store::testkit::RELEASE_ONE_TASKS_MIGRATIONS]
    {
        replay.push_str(migration.sql());
        replay.push(';');
    }
    replay.push_str(
        "CREATE TABLE questions (id text PRIMARY KEY);
         INSERT INTO schema_migrations (version, name, applied_at) VALUES
             (1, 'background_tasks', 1700000000001), (2, 'users_tokens', 1700000000002),
             (3, 'questions', 1700000000003);
         INSERT INTO background_tasks (id, user_id, task_type, status, label, progress, total,
             created_at, updated_at, params, run_at)
         VALUES ('task_1700000000000_abcdef', 'old@example.com', 'generation', 'completed',
                 'From before', 100, 100, 1700000000000, 1700000000001, '{}', 1700000000000);",
    );
    admin
        .batch_execute(&replay)
        .await
        .expect("release-1 schema");

    let store = db.store().await;
    let old = store
        .get(&"task_1700000000000_abcdef".parse().unwrap())
        .await
        .expect("old task kept");
    assert_eq!(old.label.as_deref(), Some("From before"));
    let converted = [
        ("tasks", 1, "0001_background_tasks", 1_700_000_000_001),
        ("tasks", 2, "0002_users_tokens", 1_700_000_000_002),
        ("questions", 1, "0001_questions", 1_700_000_000_003),
    ]
    .map(|(set, version, name, at)| (set.to_owned(), version, name.to_owned(), at));
    assert_eq!(
        task_store::testkit::released_rows(
            full_ledger(&db).await,
            task_postgres::MIGRATIONS.migrations().len()
        ),
        converted,
        "recorded per set, times kept"
    );
    let old_ledger: i64 = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = $1 AND table_name = 'schema_migrations_release1'",
            &[&db.schema()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(old_ledger, 0, "the old ledger is gone");
    drop(store);
    drop(db.store().await);
    assert_eq!(
        task_store::testkit::released_rows(
            full_ledger(&db).await,
            task_postgres::MIGRATIONS.migrations().len()
        ),
        converted,
        "connecting again changes nothing"
    );
}

#[tokio::test]
async fn other_sets_are_applied_on_request_once() {
    use task_store::migrate::{Migration, MigrationSet};
    static NOTES_MIGRATIONS: [Migration; 1] = [Migration::new(
        "0001_notes",
        "CREATE TABLE notes (id bigint PRIMARY KEY)",
    )];
    static NOTES: MigrationSet = MigrationSet::new("notes", &NOTES_MIGRATIONS);
    let Some(db) = TestDb::new() else { return };
    let store = db.store().await;
    store.apply_migrations(&[&NOTES]).await.expect("apply");
    store.apply_migrations(&[&NOTES]).await.expect("again");
    let sets: Vec<(String, i64)> = ledger(&db)
        .await
        .into_iter()
        .map(|(set, version, ..)| (set, version))
        .collect();
    assert_eq!(
        sets,
        (1..=task_postgres::MIGRATIONS.migrations().len() as i64)
            .map(|version| ("tasks".to_owned(), version))
            .chain([("notes".to_owned(), 1)])
            .collect::<Vec<_>>()
    );
    let connection = store.connection().await.unwrap();
    connection
        .execute("INSERT INTO notes (id) VALUES (1)", &[])
        .await
        .expect("the set's table is in the store's schema");
}
