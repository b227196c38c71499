//! Temporary SQLite databases for tests.

use task_store::testkit::Guarded;
use task_store::SqliteStore;
use tempfile::TempDir;

/// A fresh store on a file in its own temporary directory, removed when the fixture drops.
pub fn sqlite_fixture() -> Guarded<SqliteStore, TempDir> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("tasks.db")).expect("open");
    Guarded::new(store, dir)
}
