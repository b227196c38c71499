//! Opens the database `--db` names: a `postgres://` (or `postgresql://`) URL chooses
//! PostgreSQL, anything else is a SQLite file path. The binary is where the concrete stores are
//! chosen; tasks, users and tokens, and questions always live in the same database.
//!
//! It is also where the binary decides which tables the database gets: each store applies its
//! own migration set (`tasks`) when it opens, and the sets listed below are applied next, each
//! owned by the crate whose code uses the tables. A crate with new tables adds its set here,
//! one line per backend (see `task_store::migrate`).

use std::sync::Arc;

use anyhow::Context;
use quiz::{PostgresQuestionStore, QuestionStore, SqliteQuestionStore};
use task_postgres::{is_postgres_url, PostgresConfig, PostgresStore};
use task_store::migrate::MigrationSet;
use task_store::{
    AnalyticsStore, ProviderLimitStore, ScheduleStore, SqliteStore, TaskEventLog, TaskStore,
    UserStore,
};

/// The migration sets applied to a SQLite database after the store's own.
const SQLITE_SETS: &[&MigrationSet] = &[&quiz::SQLITE_MIGRATIONS];

/// The migration sets applied to a PostgreSQL schema after the store's own.
const POSTGRES_SETS: &[&MigrationSet] = &[&quiz::POSTGRES_MIGRATIONS];

/// The stores of one database, as the rest of the binary uses them.
pub struct Database {
    /// Tasks and their change feed.
    pub tasks: Arc<dyn TaskStore>,
    /// Users and tokens.
    pub users: Arc<dyn UserStore>,
    /// Quiz questions.
    pub questions: Arc<dyn QuestionStore>,
    /// The tasks' event logs (partial outputs of running tasks).
    pub events: Arc<dyn TaskEventLog>,
    /// Schedules and their runs.
    pub schedules: Arc<dyn ScheduleStore>,
    /// The analytics rollups.
    pub analytics: Arc<dyn AnalyticsStore>,
    /// Provider limits, holds and call slots, shared by every instance on the database.
    pub providers: Arc<dyn ProviderLimitStore>,
}

/// Opens `db`: connects to PostgreSQL (in `pg_schema`, default `public`) and applies its
/// migrations, or opens (creating if needed) the SQLite file.
///
/// # Errors
/// When the database cannot be opened or migrated, or when `pg_schema` is given for a SQLite
/// file (where it would silently mean nothing).
pub async fn open(db: &str, pg_schema: Option<&str>) -> anyhow::Result<Database> {
    if is_postgres_url(db) {
        let mut config = PostgresConfig::default();
        if let Some(schema) = pg_schema {
            schema.clone_into(&mut config.schema);
        }
        let store = PostgresStore::connect(db, config)
            .await
            .with_context(|| format!("cannot open PostgreSQL database {}", redact(db)))?;
        store
            .apply_migrations(POSTGRES_SETS)
            .await
            .with_context(|| format!("cannot migrate PostgreSQL database {}", redact(db)))?;
        tracing::info!(schema = store.schema(), "using PostgreSQL");
        return Ok(Database {
            tasks: Arc::new(store.clone()),
            users: Arc::new(store.clone()),
            events: Arc::new(store.clone()),
            schedules: Arc::new(store.clone()),
            analytics: Arc::new(store.clone()),
            providers: Arc::new(store.clone()),
            questions: Arc::new(PostgresQuestionStore::new(store)),
        });
    }
    if pg_schema.is_some() {
        anyhow::bail!("--pg-schema/TASKLANE_PG_SCHEMA needs a postgres:// database URL in --db");
    }
    let store =
        SqliteStore::open(db).with_context(|| format!("cannot open SQLite database {db:?}"))?;
    store
        .apply_migrations(SQLITE_SETS)
        .await
        .with_context(|| format!("cannot migrate SQLite database {db:?}"))?;
    Ok(Database {
        tasks: Arc::new(store.clone()),
        users: Arc::new(store.clone()),
        events: Arc::new(store.clone()),
        schedules: Arc::new(store.clone()),
        analytics: Arc::new(store.clone()),
        providers: Arc::new(store.clone()),
        questions: Arc::new(SqliteQuestionStore::new(store)),
    })
}

/// `url` without its user and password, for messages: `postgres://user:secret@host/db`
/// becomes `postgres://…@host/db`. Query parameters are dropped too, since `password=` may
/// be among them.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_owned();
    };
    let rest = rest.split('?').next().unwrap_or_default();
    // The last `@` ends the user info even when an unencoded password holds `/` or `@`.
    match rest.rsplit_once('@') {
        Some((_, host_and_path)) => format!("{scheme}://…@{host_and_path}"),
        None => format!("{scheme}://{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets_in_messages() {
        for (url, shown) in [
            (
                "postgres://user:s3cret@db.internal:5432/tasklane",
                "postgres://…@db.internal:5432/tasklane",
            ),
            (
                "postgresql://db/tasklane?password=s3cret&sslmode=disable",
                "postgresql://db/tasklane",
            ),
            ("postgres://u@host", "postgres://…@host"),
            ("postgres://:p@w@host/db", "postgres://…@host/db"),
            ("postgres://u:pa/ss@host/db", "postgres://…@host/db"),
            ("host=db password=s3cret", "(not a URL)"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[tokio::test]
    async fn a_schema_needs_a_postgres_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasklane.db");
        let error = open(path.to_str().unwrap(), Some("tenant_a"))
            .await
            .err()
            .expect("refused");
        assert!(error.to_string().contains("--pg-schema"), "{error}");
    }

    #[tokio::test]
    async fn a_new_sqlite_database_gets_every_set_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasklane.db");
        for _ in 0..2 {
            let db = open(path.to_str().unwrap(), None).await.expect("open");
            db.questions
                .existing_texts("Matte")
                .await
                .expect("the questions table exists");
            db.users
                .count_users()
                .await
                .expect("the users table exists");
        }
    }
}
