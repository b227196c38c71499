//! Opening databases of other schema versions: older ones are upgraded with their data kept,
//! newer ones and non-databases are refused with a typed error.

use task_core::{NewTask, TaskStatus};
use task_store::rusqlite::{params, Connection};
use task_store::{ListQuery, Role, SqliteStore, StoreError, TaskStore, UserStore, MIGRATIONS};

/// Builds a database as the first release left it: one ledger sequence for every table
/// (`schema_migrations (version, name, applied_at)`, names with their `NNNN_` prefix), its
/// three migrations applied, and one task in it. The quiz crate's `questions` table (version
/// 3) stands in as a one-column table: this crate only converts its ledger row; the quiz
/// crate's tests replay it in full.
fn release_one_database(path: &std::path::Path) {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
         applied_at INTEGER NOT NULL)",
    )
    .expect("ledger");
    for migration in &MIGRATIONS.migrations()[..task_store::testkit::RELEASE_ONE_TASKS_MIGRATIONS] {
        conn.execute_batch(migration.sql())
            .expect("tasks migration");
    }
    conn.execute_batch("CREATE TABLE questions (id TEXT PRIMARY KEY)")
        .expect("questions");
    conn.execute_batch(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES \
            (1, '0001_background_tasks', 1700000000001), \
            (2, '0002_users_tokens', 1700000000002), \
            (3, '0003_questions', 1700000000003)",
    )
    .expect("record");
    conn.execute(
        "INSERT INTO background_tasks (id, user_id, task_type, status, label, progress, total, \
         created_at, updated_at, params, run_at) \
         VALUES ('task_1700000000000_abcdef', 'old@example.com', 'generation', 'completed', \
                 'From before', 100, 100, 1700000000000, 1700000000001, '{}', 1700000000000)",
        [],
    )
    .expect("old task");
}

/// The ledger without the `analytics` and `providers` sets, which every store applies beside
/// `tasks` (the first's own test is `a_new_database_records_the_analytics_set`).
async fn ledger(store: &SqliteStore) -> Vec<(String, i64, String, i64)> {
    let mut rows = full_ledger(store).await;
    rows.retain(|(set, ..)| set != "analytics" && set != "providers");
    rows
}

async fn full_ledger(store: &SqliteStore) -> Vec<(String, i64, String, i64)> {
    store
        .with_connection(|conn| {
            let mut statement = conn
                .prepare(
                    "SELECT set_name, version, name, applied_at FROM schema_migrations \
                     ORDER BY set_name DESC, version",
                )
                .map_err(task_store::map_sqlite_error)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .map_err(task_store::map_sqlite_error)?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(task_store::map_sqlite_error)
        })
        .await
        .expect("ledger")
}

#[tokio::test]
async fn a_release_one_database_is_upgraded_in_place_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("old.db");
    release_one_database(&path);

    let store = SqliteStore::open(&path).expect("upgrade");
    let old = store
        .get(&"task_1700000000000_abcdef".parse().expect("id"))
        .await
        .expect("old task kept");
    assert_eq!(old.status, TaskStatus::Completed);
    assert_eq!(old.label.as_deref(), Some("From before"));
    assert_eq!((old.version, old.attempt), (1, 0), "column defaults apply");
    store
        .create_user("admin@example.com", Role::Superuser)
        .await
        .expect("the users table of migration 2 exists");

    let converted = [
        ("tasks", 1, "0001_background_tasks", 1_700_000_000_001),
        ("tasks", 2, "0002_users_tokens", 1_700_000_000_002),
        ("questions", 1, "0001_questions", 1_700_000_000_003),
    ]
    .map(|(set, version, name, at)| (set.to_owned(), version, name.to_owned(), at));
    assert_eq!(
        task_store::testkit::released_rows(
            full_ledger(&store).await,
            MIGRATIONS.migrations().len()
        ),
        converted,
        "recorded per set, times kept"
    );
    let old_ledger: i64 = store
        .with_connection(|conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_migrations_release1'",
                [],
                |r| r.get(0),
            )
            .map_err(task_store::map_sqlite_error)
        })
        .await
        .expect("count");
    assert_eq!(old_ledger, 0, "the old ledger is gone");
    drop(store);

    // Opening again applies nothing and keeps everything.
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.count_users().await.expect("count"), 1);
    assert_eq!(
        task_store::testkit::released_rows(
            full_ledger(&store).await,
            MIGRATIONS.migrations().len()
        ),
        converted
    );
}

#[tokio::test]
async fn a_new_database_records_the_tasks_set() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(dir.path().join("new.db")).expect("open");
    let names: Vec<(String, i64, String)> = ledger(&store)
        .await
        .into_iter()
        .map(|(set, version, name, _)| (set, version, name))
        .collect();
    let want: Vec<(String, i64, String)> = MIGRATIONS
        .migrations()
        .iter()
        .map(|m| ("tasks".to_owned(), m.version(), m.name().to_owned()))
        .collect();
    assert_eq!(names, want);
}

#[tokio::test]
async fn a_new_database_records_the_analytics_set() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(dir.path().join("new.db")).expect("open");
    let analytics: Vec<(String, i64, String)> = full_ledger(&store)
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

#[tokio::test]
async fn other_sets_are_applied_on_request_once() {
    static EXTRA_MIGRATIONS: [task_store::migrate::Migration; 1] =
        [task_store::migrate::Migration::new(
            "0001_notes",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY)",
        )];
    static EXTRA: task_store::migrate::MigrationSet =
        task_store::migrate::MigrationSet::new("notes", &EXTRA_MIGRATIONS);
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(dir.path().join("sets.db")).expect("open");
    store.apply_migrations(&[&EXTRA]).await.expect("apply");
    store.apply_migrations(&[&EXTRA]).await.expect("again");
    let sets: Vec<(String, i64)> = ledger(&store)
        .await
        .into_iter()
        .map(|(set, version, ..)| (set, version))
        .collect();
    assert_eq!(
        sets,
        (1..=MIGRATIONS.migrations().len() as i64)
            .map(|version| ("tasks".to_owned(), version))
            .chain([("notes".to_owned(), 1)])
            .collect::<Vec<_>>()
    );
    store
        .with_write_transaction(|conn| {
            conn.execute("INSERT INTO notes (id) VALUES (1)", [])
                .map_err(task_store::map_sqlite_error)
        })
        .await
        .expect("the set's table exists");
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("new.db");
    drop(SqliteStore::open(&path).expect("create"));
    let conn = Connection::open(&path).expect("open");
    conn.execute(
        "INSERT INTO schema_migrations (set_name, version, name, applied_at) \
         VALUES ('tasks', 999, ?1, ?2)",
        params!["0999_from_the_future", 0],
    )
    .expect("future version");
    drop(conn);

    match SqliteStore::open(&path) {
        Err(StoreError::Schema(message)) => {
            assert!(message.contains("999"), "{message}");
            assert!(message.contains("upgrade tasklane"), "{message}");
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_renamed_migration_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("renamed.db");
    drop(SqliteStore::open(&path).expect("create"));
    let conn = Connection::open(&path).expect("open");
    conn.execute(
        "UPDATE schema_migrations SET name = '0001_something_else' \
         WHERE set_name = 'tasks' AND version = 1",
        [],
    )
    .expect("rename");
    drop(conn);
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::Schema(message)) if message.contains("0001_something_else")
    ));
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_unavailable() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("garbage.db");
    std::fs::write(
        &path,
        b"this is not an SQLite database, just some text. ".repeat(200),
    )
    .expect("write");
    match SqliteStore::open(&path) {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("garbage.db"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_path_that_cannot_be_opened_is_unavailable() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("no-such-dir").join("tasks.db");
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("tasks.db");
    let store = SqliteStore::open(&path).expect("open");
    let task = store
        .create(NewTask::new("u@example.com", "generation").with_label("kept"))
        .await
        .expect("create");
    drop(store);
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.get(&task.id).await.expect("get"), task);
}

#[test]
fn the_analytics_set_embeds_every_file_of_its_directory() {
    task_store::testkit::assert_set_matches_directory(
        &task_store::ANALYTICS_MIGRATIONS,
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/analytics/sqlite"),
    );
}

#[test]
fn the_providers_set_embeds_every_file_of_its_directory() {
    task_store::testkit::assert_set_matches_directory(
        &task_store::PROVIDER_MIGRATIONS,
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/providers/sqlite"),
    );
}

#[test]
fn the_tasks_set_embeds_every_file_of_its_directory() {
    task_store::testkit::assert_set_matches_directory(
        &MIGRATIONS,
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"),
    );
}

/// How many tasks the trigram search index holds that contain `needle` (three or more ASCII
/// characters), read from the index itself.
async fn indexed_matches(store: &SqliteStore, needle: &str) -> i64 {
    let phrase = format!("\"{needle}\"");
    store
        .with_connection(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM background_tasks_search \
                 WHERE background_tasks_search MATCH ?1",
                [phrase],
                |r| r.get(0),
            )
            .map_err(task_store::map_sqlite_error)
        })
        .await
        .expect("count")
}

/// A database migrated through `0010_history`, whose tasks the old triggers indexed on
/// insert, gets the search watermark in place (`0011_search_watermark`): its tasks count as
/// indexed and are searched through the index, new tasks wait above the watermark (found by
/// search all the same) until the indexer adds them.
#[tokio::test]
async fn a_database_indexed_by_the_old_triggers_gets_the_watermark_in_place() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("history.db");
    {
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(task_store::migrate::CREATE_LEDGER)
            .expect("ledger");
        let history = MIGRATIONS
            .migrations()
            .iter()
            .position(|m| m.name() == "0010_history")
            .expect("0010_history is in the set");
        for migration in &MIGRATIONS.migrations()[..=history] {
            conn.execute_batch(migration.sql()).expect("migration");
            conn.execute(
                "INSERT INTO schema_migrations (set_name, version, name, applied_at) \
                 VALUES ('tasks', ?1, ?2, 1700000000000)",
                params![migration.version(), migration.name()],
            )
            .expect("record");
        }
        for i in 0..3 {
            conn.execute(
                "INSERT INTO background_tasks (id, user_id, task_type, status, label, \
                 created_at, updated_at, run_at) VALUES (?1, 'old@example.com', 'generation', \
                 'completed', ?2, ?3, ?3, ?3)",
                params![
                    format!("task_170000000000{i}_abcdef"),
                    format!("Segelfartyg {i}"),
                    1_700_000_000_000_i64 + i
                ],
            )
            .expect("old task");
        }
    }
    let store = SqliteStore::open(&path).expect("upgrade");
    assert_eq!(indexed_matches(&store, "segelfartyg").await, 3);
    assert_eq!(
        store.index_search(100).await.expect("index"),
        0,
        "the old triggers' tasks are below the watermark"
    );
    let search = ListQuery {
        search: Some("SEGELFARTYG".into()),
        ..Default::default()
    };
    assert_eq!(store.list(&search).await.expect("list").tasks.len(), 3);

    let new = store
        .create(NewTask::new("new@example.com", "generation").with_label("Nytt segelfartyg"))
        .await
        .expect("create");
    assert_eq!(
        indexed_matches(&store, "segelfartyg").await,
        3,
        "a creation no longer writes the index"
    );
    let found = store.list(&search).await.expect("list").tasks;
    assert_eq!(found.len(), 4);
    assert_eq!(found[0].id, new.id, "found before it is indexed");
    assert_eq!(store.index_search(100).await.expect("index"), 1);
    assert_eq!(indexed_matches(&store, "segelfartyg").await, 4);
    assert_eq!(store.list(&search).await.expect("list").tasks, found);
}
