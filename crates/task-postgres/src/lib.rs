//! A PostgreSQL backend for tasklane: [`PostgresStore`] implements `task_store`'s
//! [`TaskStore`](task_store::TaskStore) and [`UserStore`](task_store::UserStore) unchanged, so
//! several tasklane instances (on one or many hosts) can share one database.
//!
//! - **Claiming** takes due tasks with `FOR UPDATE SKIP LOCKED` in one statement, so concurrent
//!   claimers on any instance never get the same task; fair claims (per-user caps, round-robin)
//!   hold a per-schema advisory lock so the caps hold across instances.
//! - **Fencing**: every worker write is guarded by the lease token, as on SQLite.
//! - **Change feed**: every committed change is published on the local feed at once and
//!   notified, batched, on the schema's channel (`tasklane_changes.<schema>`, payload
//!   `<id>:<version>`); each store's one LISTEN connection reads the named rows and publishes
//!   other instances' changes locally, reconnecting and re-syncing after a drop.
//! - **Task event feed**: appended partial outputs cross instances the same way, on the
//!   schema's events channel (`tasklane_events.<schema>`, payload `<id>:<seq>`), so a live
//!   stream on any instance gets them as they are stored.
//! - **Migrations**: the `tasks` set ([`MIGRATIONS`], files in this crate's
//!   `migrations/postgres/`) is embedded and applied at connect, other crates' sets with
//!   [`PostgresStore::apply_migrations`]; each call in one transaction under an advisory lock,
//!   by the mechanism every backend shares (`task_store::migrate`). The `analytics` set
//!   ([`ANALYTICS_MIGRATIONS`], `migrations/analytics/postgres/`) and the `providers` set
//!   ([`PROVIDER_MIGRATIONS`], `migrations/providers/postgres/`) are applied with it.
//!
//! **Invariant: the behaviour is `task_store`'s.** The rules of every operation are the ones
//! SQLite and memory apply (`task_store::backend`), and the conformance suite runs against this
//! backend in full. No driver type appears in the `TaskStore` and `UserStore` API; the driver
//! shows only where sibling crates keep their own tables in the same schema
//! ([`PostgresStore::connection`], [`map_postgres_error`], the [`tokio_postgres`] re-export),
//! as `task_store` does for SQLite.

mod analytics;
mod claim;
mod completions;
mod config;
mod errors;
mod events;
mod graph;
mod guarded;
mod list;
mod listener;
mod migrate;
mod notifier;
#[cfg(test)]
mod plans;
mod providers;
mod publish;
mod row;
mod schedules;
mod sql;
mod store;
mod tasks;
mod users;

pub use config::{
    PostgresConfig, DEFAULT_APPLICATION_NAME, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_LISTENER_BACKOFF_MAX, DEFAULT_LISTENER_BACKOFF_MIN, DEFAULT_LISTENER_KEEPALIVE,
    DEFAULT_POOL_SIZE, DEFAULT_POOL_WAIT_TIMEOUT, DEFAULT_RESYNC_MARGIN, DEFAULT_SCHEMA,
};
pub use listener::ListenerStatus;
pub use migrate::{ANALYTICS_MIGRATIONS, MIGRATIONS, PROVIDER_MIGRATIONS};
pub use store::{PooledConnection, PostgresStore};

/// The PostgreSQL driver this crate uses, for sibling crates that keep their own tables in the
/// same schema (through [`PostgresStore::connection`]); using this re-export keeps the versions
/// in step.
pub use tokio_postgres;

/// The [`StoreError`](task_store::StoreError) kind for a driver error, exactly as the store
/// maps its own: a lost or refused connection is `Unavailable`; serialization failures,
/// deadlocks, lock and statement timeouts are `Busy`; a unique violation is `Conflict`; text
/// PostgreSQL cannot store (NUL characters) is `Invalid`; anything else is `Backend` with the
/// message and SQLSTATE. For sibling crates using [`PostgresStore::connection`].
pub fn map_postgres_error(error: tokio_postgres::Error) -> task_store::StoreError {
    errors::map_db(error)
}

/// Whether `database` names a PostgreSQL server (`postgres://` or `postgresql://` URL) rather
/// than a SQLite file, for binaries choosing a backend from one setting.
pub fn is_postgres_url(database: &str) -> bool {
    let lower = database.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_told_from_file_paths() {
        for url in ["postgres://u@h/db", "postgresql://h/db", "POSTGRES://h"] {
            assert!(is_postgres_url(url), "{url}");
        }
        for path in [
            "tasklane.db",
            "/var/lib/postgres/x.db",
            "./postgres.sqlite",
            "",
        ] {
            assert!(!is_postgres_url(path), "{path}");
        }
    }
}
