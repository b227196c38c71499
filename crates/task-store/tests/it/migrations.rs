//! Opening databases of other schema versions: older ones are upgraded with their data kept,
//! newer ones and non-databases are refused with a typed error.

use task_core::{NewTask, TaskStatus};
use task_store::rusqlite::{params, Connection};
use task_store::{Role, SqliteStore, StoreError, TaskStore, UserStore, MIGRATIONS};

/// Builds a database as a build that knew only the first migration would have left it, with
/// one task in it.
fn database_with_only_migration_one(path: &std::path::Path) {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
         applied_at INTEGER NOT NULL)",
    )
    .expect("ledger");
    conn.execute_batch(MIGRATIONS[0].sql).expect("migration 1");
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, ?1, 0)",
        [MIGRATIONS[0].name],
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

#[tokio::test]
async fn an_older_database_is_upgraded_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("old.db");
    database_with_only_migration_one(&path);

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

    let versions: Vec<(i64, String)> = store
        .with_connection(|conn| {
            let mut statement = conn
                .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
                .map_err(task_store::map_sqlite_error)?;
            let rows = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(task_store::map_sqlite_error)?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(task_store::map_sqlite_error)
        })
        .await
        .expect("ledger");
    let want: Vec<(i64, String)> = MIGRATIONS
        .iter()
        .map(|m| (m.version, m.name.to_owned()))
        .collect();
    assert_eq!(versions, want);
    drop(store);

    // Opening again applies nothing and keeps everything.
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.count_users().await.expect("count"), 1);
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("new.db");
    drop(SqliteStore::open(&path).expect("create"));
    let conn = Connection::open(&path).expect("open");
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?1, ?2)",
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
        "UPDATE schema_migrations SET name = '0001_something_else' WHERE version = 1",
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
