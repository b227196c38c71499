//! The quiz crate's tables, as the migration set `questions` for each backend (the mechanism is
//! `task_store::migrate`). The SQL is in this crate's `migrations/sqlite/` and
//! `migrations/postgres/`; the binary applies these sets with the task store's
//! `apply_migrations` before it builds a question store.

use task_store::migrate::MigrationSet;

/// The `questions` table in a SQLite task store's file
/// ([`SqliteStore::apply_migrations`](task_store::SqliteStore::apply_migrations)).
pub static SQLITE_MIGRATIONS: MigrationSet =
    task_store::migration_set!("questions", "migrations/sqlite", ["0001_questions"]);

/// The `questions` table in a PostgreSQL task store's schema (`PostgresStore::apply_migrations`
/// of task-postgres).
pub static POSTGRES_MIGRATIONS: MigrationSet =
    task_store::migration_set!("questions", "migrations/postgres", ["0001_questions"]);
