//! [`SqliteStore`]: tasks and users in one SQLite file.
//!
//! One writer connection makes every write transaction (`BEGIN IMMEDIATE`; writes that arrive
//! together share one commit, each undone alone if it fails) and publishes the changes on the change
//! feed after the commit while still holding the connection, so the feed's order is the commit
//! order. Reads use a pool of read-only connections, which WAL lets run alongside the writer.
//! A thread of its own copies the WAL back into the database file (`checkpointer`), so no
//! commit waits for a checkpoint. All other blocking work runs on tokio's blocking threads.

mod analytics;
mod checkpointer;
mod claim;
mod completions;
mod config;
mod connection;
mod error;
mod events;
mod graph;
mod guarded;
mod list;
mod migrations;
#[cfg(test)]
mod plans;
mod providers;
mod rows;
mod schedules;
mod search_index;
mod tasks;
mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

pub use config::{SqliteConfig, DEFAULT_BUSY_TIMEOUT, DEFAULT_CHECKPOINT_PAGES, DEFAULT_POOL_SIZE};
pub use error::map_sqlite_error;
pub use migrations::{ANALYTICS_MIGRATIONS, MIGRATIONS, PROVIDER_MIGRATIONS};

use checkpointer::Checkpointer;
use writer::{Atomicity, Writer};

use crate::migrate::MigrationSet;
use crate::{ChangeFeed, Result, StoreError, TaskChange};

/// A [`crate::TaskStore`] and [`crate::UserStore`] on one SQLite file. Cloning is cheap and
/// shares the connections and the change feed.
///
/// Durability: the database runs in WAL mode with `synchronous=NORMAL`. A committed change
/// survives a crash of the process; after a power loss or OS crash the last few commits may
/// be lost (never half-applied). Workers redo lost progress; see `docs/state-machine.md`.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Arc<Writer>,
    /// Completions waiting to be run together (see `completions`).
    completions: Arc<completions::Completions>,
    readers: Pool<SqliteConnectionManager>,
    /// Appended task events; published after each append's commit.
    events: crate::EventFeed,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with [`SqliteConfig::default`] and
    /// brings its own tables up to date (the migration set [`MIGRATIONS`]; other crates' sets
    /// are applied with [`SqliteStore::apply_migrations`]). Blocks while it opens: call it at
    /// startup.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened or is not a database,
    /// [`StoreError::Schema`] when it was migrated by a newer build.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteConfig::default())
    }

    /// Like [`SqliteStore::open`], with explicit settings.
    ///
    /// # Errors
    /// As [`SqliteStore::open`], and [`StoreError::Invalid`] for bad settings.
    pub fn open_with(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self> {
        config.validate()?;
        let path = path.as_ref().to_path_buf();
        let mut writer = connection::open_writer(&path, config.busy_timeout)?;
        migrations::apply(&mut writer, &migrations::OWN_SETS)?;
        checkpointer::watch_wal(&writer);
        let checkpointer =
            Checkpointer::start(&path, config.busy_timeout, config.checkpoint_pages)?;
        let readers = Pool::builder()
            .max_size(config.pool_size)
            .connection_timeout(config.busy_timeout)
            // A local file connection does not go stale; testing it costs a query per read.
            .test_on_check_out(false)
            .build(connection::reader_manager(&path, config.busy_timeout))
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Arc::new(Writer::new(
                    writer,
                    ChangeFeed::new(config.feed_capacity),
                    checkpointer,
                )),
                completions: Arc::default(),
                readers,
                events: crate::EventFeed::default(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Brings other crates' tables in this file up to date: applies what `sets` still need, all
    /// in one write transaction (nothing on an error). The binary calls it at startup with the
    /// sets it wants (the quiz crate's `questions`, …); see [`crate::migrate`].
    ///
    /// # Errors
    /// [`StoreError::Schema`] when a set was migrated by a newer build or a migration fails.
    pub async fn apply_migrations(&self, sets: &[&'static MigrationSet]) -> Result<()> {
        let sets = sets.to_vec();
        self.write(move |conn, _changes| migrations::apply_in_transaction(conn, &sets))
            .await
    }

    /// Runs `f` on a pooled read-only connection on a blocking thread. For sibling crates that
    /// keep their own tables in this file; map rusqlite errors with [`map_sqlite_error`].
    ///
    /// # Errors
    /// `f`'s error, or [`StoreError::Busy`] when no connection frees up within the busy timeout.
    pub async fn with_connection<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            let conn = inner.readers.get().map_err(|_| StoreError::Busy)?;
            f(&conn)
        })
        .await
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`) on the writer connection, on a
    /// blocking thread; what `f` wrote is kept if it returns `Ok` and rolled back otherwise.
    /// Other callers' writes may share the transaction (each in its own savepoint), so `f` must
    /// not run `BEGIN`, `COMMIT` or `ROLLBACK` itself. For sibling crates' own tables: writing
    /// `background_tasks` here would bypass versioning and the change feed.
    ///
    /// # Errors
    /// `f`'s error, or the commit's.
    pub async fn with_write_transaction<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.write(move |conn, _changes| f(conn)).await
    }

    /// Runs `op` in a write transaction, possibly together with other callers' operations
    /// (group commit, see `writer`). Its changes are published after the commit, in commit
    /// order, before this returns.
    async fn write<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection, &mut Vec<TaskChange>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.inner.writer.write(Atomicity::Savepoint, op).await
    }

    /// [`Self::write`] for an operation that writes with at most one statement (it may read
    /// before), which therefore needs no savepoint of its own.
    async fn write_one_statement<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection, &mut Vec<TaskChange>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.inner.writer.write(Atomicity::OneStatement, op).await
    }

    fn feed(&self) -> &ChangeFeed {
        self.inner.writer.feed()
    }

    /// Runs `op` on a pooled reader.
    async fn read<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.with_connection(op).await
    }
}

async fn run_blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| StoreError::Backend(format!("store operation did not finish: {e}")))?
}
