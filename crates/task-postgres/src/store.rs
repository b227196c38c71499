//! [`PostgresStore`]: the pool, the migrations at connect, the listener, and the helpers every
//! operation shares (getting a connection, the locked read-modify-write slow path, publishing).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use task_core::{CoreError, Task, TaskId};
use task_store::migrate::MigrationSet;
use task_store::{Result, StoreError};
use tokio::sync::watch;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::errors::{map_db, map_pool};
use crate::graph::PgTx;
use crate::listener::{self, ListenerSettings, ListenerStatus};
use crate::migrate::{migrate, ANALYTICS_MIGRATIONS, MIGRATIONS, PROVIDER_MIGRATIONS};
use crate::notifier::Notifier;
use crate::publish::Publisher;
use crate::row::task_from_row;
use crate::{sql, PostgresConfig, DEFAULT_APPLICATION_NAME};

/// A [`task_store::TaskStore`] and [`task_store::UserStore`] on PostgreSQL. Cloning is cheap
/// and shares the pool and the listener; the listener stops when the last clone is dropped.
///
/// Several stores (in one process or on many hosts) may share one schema: claims never hand
/// out a task twice (`FOR UPDATE SKIP LOCKED`), worker writes are fenced by lease token, and
/// every store's change feed carries every instance's changes (`LISTEN/NOTIFY`).
///
/// [`ping`](task_store::TaskStore::ping), the readiness check, also fails with
/// `Unavailable` while the change listener is disconnected: until it has reconnected and
/// re-synced, this instance misses other instances' changes.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) config: PostgresConfig,
    pub(crate) publisher: Arc<Publisher>,
    /// Completions waiting to be written together (see `completions`).
    pub(crate) completions: Arc<crate::completions::Completions>,
    notifier: Notifier,
    listener: watch::Receiver<ListenerStatus>,
    _stop_listener: DropGuard,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.config.schema)
            .field("pool", &self.inner.pool.status())
            .field("listener", &*self.inner.listener.borrow())
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or
    /// the key-value form), creates the schema if missing, applies its own migration set
    /// ([`MIGRATIONS`](crate::MIGRATIONS); other crates' sets are applied with
    /// [`PostgresStore::apply_migrations`]),
    /// and starts the change listener and notifier. Returns once the listener listens, so
    /// every change committed afterwards by any instance reaches this store's feed.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a bad URL or configuration, [`StoreError::Unavailable`] when
    /// the server cannot be reached, [`StoreError::Schema`] when the database was migrated by
    /// a newer tasklane or a migration fails.
    pub async fn connect(url: &str, config: PostgresConfig) -> Result<Self> {
        config.validate()?;
        let pg_config = connection_config(url, &config)?;
        let manager = Manager::from_config(
            pg_config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .wait_timeout(Some(config.pool_wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Backend(format!("building the connection pool: {e}")))?;
        {
            let mut client = pool.get().await.map_err(map_pool)?;
            let applied = migrate(
                &mut client,
                &config.schema,
                &[&MIGRATIONS, &ANALYTICS_MIGRATIONS, &PROVIDER_MIGRATIONS],
            )
            .await?;
            if !applied.is_empty() {
                tracing::info!(schema = %config.schema, ?applied, "applied PostgreSQL migrations");
            }
        }
        let publisher = Arc::new(Publisher::new(config.feed_capacity));
        let stop = CancellationToken::new();
        let notifier = Notifier::start(
            named_config(pg_config.clone(), "notifier"),
            config.channel(),
            config.events_channel(),
            stop.clone(),
        );
        let settings = ListenerSettings {
            pg_config: named_config(pg_config, "listener"),
            channel: config.channel(),
            events_channel: config.events_channel(),
            backoff_min: config.listener_backoff_min,
            backoff_max: config.listener_backoff_max,
            keepalive: config.listener_keepalive,
            resync_margin: config.resync_margin,
        };
        let listener = listener::start(settings, publisher.clone(), stop.clone()).await?;
        let completions = Arc::new(crate::completions::Completions::for_pool(config.pool_size));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                config,
                publisher,
                completions,
                notifier,
                listener,
                _stop_listener: stop.drop_guard(),
            }),
        })
    }

    /// Brings other crates' tables in this store's schema up to date: applies what `sets`
    /// still need, in one transaction (nothing on an error) under the same advisory lock as
    /// at connect. The binary calls it at startup with the sets it wants (the quiz crate's
    /// `questions`, …); see [`task_store::migrate`].
    ///
    /// # Errors
    /// [`StoreError::Schema`] when a set was migrated by a newer build or a migration fails;
    /// [`StoreError::Busy`] or [`StoreError::Unavailable`] when no connection is to be had.
    pub async fn apply_migrations(&self, sets: &[&MigrationSet]) -> Result<()> {
        let mut client = self.client().await?;
        let applied = migrate(&mut client, &self.inner.config.schema, sets).await?;
        if !applied.is_empty() {
            tracing::info!(schema = %self.inner.config.schema, ?applied, "applied PostgreSQL migrations");
        }
        Ok(())
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.inner.config.schema
    }

    /// The change listener's state, updated as it connects, reconnects and re-syncs.
    pub fn listener_status(&self) -> watch::Receiver<ListenerStatus> {
        self.inner.listener.clone()
    }

    /// Whether the change listener is connected (and, after a reconnect, re-synced).
    pub(crate) fn listener_connected(&self) -> bool {
        self.inner.listener.borrow().connected
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object> {
        self.inner.pool.get().await.map_err(map_pool)
    }

    /// A connection from this store's pool, for sibling crates that keep their own tables in
    /// the same schema (the quiz crate's questions): its `search_path` is the store's schema,
    /// so their SQL names tables unqualified. Map its errors with
    /// [`map_postgres_error`](crate::map_postgres_error) so they look like the store's.
    /// Dropping it returns it to the pool; a transaction left open is rolled back.
    ///
    /// # Errors
    /// [`StoreError::Busy`] when no connection frees up within `pool_wait_timeout`,
    /// [`StoreError::Unavailable`] when a new one cannot be opened.
    pub async fn connection(&self) -> Result<PooledConnection> {
        Ok(PooledConnection(self.client().await?))
    }

    /// Announces a committed change of `task`: on the local feed at once, to other instances
    /// with the next notification batch.
    pub(crate) fn committed(&self, task: &Task) {
        self.inner.publisher.upserted(task);
        self.inner.notifier.upserted(task);
    }

    /// Announces a committed event append: on the local event feed at once, to other
    /// instances with the next notification batch.
    pub(crate) fn appended(&self, event: &task_store::TaskEvent) {
        self.inner.notifier.appended(&event.task_id, event.seq);
        self.inner.publisher.event_appended(event.clone());
    }

    /// Announces a committed deletion, like [`PostgresStore::committed`].
    pub(crate) fn committed_deletion(&self, id: &TaskId, user_id: &str, version: i64) {
        self.inner.publisher.deleted(id, user_id, version);
        self.inner.notifier.deleted(id, user_id, version);
    }

    /// Commits `transaction` and publishes `changed`, in order.
    pub(crate) async fn commit(
        &self,
        transaction: deadpool_postgres::Transaction<'_>,
        changed: &[Task],
    ) -> Result<()> {
        transaction.commit().await.map_err(map_db)?;
        for task in changed {
            self.committed(task);
        }
        Ok(())
    }

    /// The slow path for single-task writes: locks the row, computes the change with the
    /// shared rules, writes the whole row, carries the change to the task's children (see
    /// [`PgTx::propagate`]) and publishes it all. `change` returns `None` when there
    /// is nothing to write. A missing task fails with `missing`.
    pub(crate) async fn modify(
        &self,
        id: &TaskId,
        missing: StoreError,
        change: impl FnOnce(&Task) -> Result<Option<Task>>,
    ) -> Result<Task> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let lock = transaction
            .prepare_cached(&sql::LOCK_TASK)
            .await
            .map_err(map_db)?;
        let row = transaction
            .query_opt(&lock, &[&id.as_str()])
            .await
            .map_err(map_db)?
            .ok_or(missing)?;
        let current = task_from_row(&row)?;
        // Refused or unchanged: end the transaction now rather than when the connection is
        // next used, so the row lock is released at once.
        let next = match change(&current) {
            Ok(Some(next)) => next,
            Ok(None) => {
                transaction.rollback().await.map_err(map_db)?;
                return Ok(current);
            }
            Err(error) => {
                transaction.rollback().await.map_err(map_db)?;
                return Err(error);
            }
        };
        let mut graph = PgTx::new(&transaction);
        graph.save(&next).await?;
        graph
            .propagate(current.status, &next, next.updated_at)
            .await?;
        let changed = std::mem::take(&mut graph.changed);
        transaction.commit().await.map_err(map_db)?;
        for task in &changed {
            self.committed(task);
        }
        Ok(next)
    }
}

/// A connection borrowed from a [`PostgresStore`]'s pool (see [`PostgresStore::connection`]).
/// It dereferences to a [`tokio_postgres::Client`].
pub struct PooledConnection(Object);

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("closed", &self.0.is_closed())
            .finish()
    }
}

impl Deref for PooledConnection {
    type Target = tokio_postgres::Client;

    fn deref(&self) -> &tokio_postgres::Client {
        &self.0
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut tokio_postgres::Client {
        &mut self.0
    }
}

/// A task's columns as statement parameters, in [`crate::row::TASK_COLUMNS`] order.
pub(crate) struct TaskParams<'a> {
    task: &'a Task,
    id: &'a str,
    status: &'static str,
    priority: i16,
}

impl<'a> TaskParams<'a> {
    pub(crate) fn new(task: &'a Task) -> Self {
        Self {
            task,
            id: task.id.as_str(),
            status: task.status.as_str(),
            priority: task.priority.rank(),
        }
    }

    /// All 26 columns, the id first (as `$1` of [`sql::WRITE_TASK`]).
    pub(crate) fn all(&self) -> [&(dyn ToSql + Sync); 26] {
        let task = self.task;
        [
            &self.id,
            &task.user_id,
            &task.task_type,
            &self.status,
            &task.label,
            &task.description,
            &task.progress,
            &task.total,
            &task.result,
            &task.error,
            &task.params,
            &task.attempt,
            &task.max_attempts,
            &task.run_at,
            &task.lease_owner,
            &task.lease_token,
            &task.lease_expires_at,
            &task.cancel_requested,
            &task.version,
            &task.created_at,
            &task.updated_at,
            &task.started_at,
            &task.completed_at,
            &task.waiting_for,
            &task.workflow_id,
            &self.priority,
        ]
    }
}

/// The pool's connection settings: `url` plus the schema as `search_path` and the defaults
/// the URL leaves open.
fn connection_config(url: &str, config: &PostgresConfig) -> Result<tokio_postgres::Config> {
    let mut pg_config: tokio_postgres::Config = url.parse().map_err(|e| {
        StoreError::Invalid(CoreError::InvalidField {
            field: "database_url",
            reason: format!("is not a PostgreSQL connection string: {e}"),
        })
    })?;
    // The schema name was validated, so it needs no quoting inside the options string.
    let search_path = format!("-c search_path={}", config.schema);
    let options = match pg_config.get_options() {
        Some(existing) if !existing.is_empty() => format!("{existing} {search_path}"),
        _ => search_path,
    };
    pg_config.options(options);
    if pg_config.get_application_name().is_none() {
        pg_config.application_name(DEFAULT_APPLICATION_NAME);
    }
    if pg_config.get_connect_timeout().is_none() {
        pg_config.connect_timeout(config.connect_timeout);
    }
    Ok(pg_config)
}

/// A dedicated connection's settings: the pool's, with `role` appended to the application
/// name so operators can tell the connections apart.
fn named_config(mut pg_config: tokio_postgres::Config, role: &str) -> tokio_postgres::Config {
    let name = format!(
        "{} {role}",
        pg_config
            .get_application_name()
            .unwrap_or(DEFAULT_APPLICATION_NAME)
    );
    pg_config.application_name(name);
    pg_config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_becomes_the_search_path_and_url_settings_win() {
        let config = PostgresConfig::with_schema("s1");
        let pg = connection_config("postgres://u@localhost/db", &config).unwrap();
        assert_eq!(pg.get_options(), Some("-c search_path=s1"));
        assert_eq!(pg.get_application_name(), Some("tasklane"));
        let pg = connection_config(
            "postgres://u@localhost/db?options=-c%20work_mem%3D4MB&application_name=app&connect_timeout=2",
            &config,
        )
        .unwrap();
        assert_eq!(pg.get_options(), Some("-c work_mem=4MB -c search_path=s1"));
        assert_eq!(pg.get_application_name(), Some("app"));
        assert_eq!(
            pg.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(2))
        );
        assert_eq!(
            named_config(pg, "listener").get_application_name(),
            Some("app listener")
        );
        assert!(matches!(
            connection_config("postgres://u@localhost:notaport/db", &config),
            Err(StoreError::Invalid(CoreError::InvalidField {
                field: "database_url",
                ..
            }))
        ));
    }
}
