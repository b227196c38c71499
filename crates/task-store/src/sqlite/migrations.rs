//! The SQLite schema migrations, embedded in the binary and applied in order when a store
//! opens. Each runs in its own transaction and is recorded in `schema_migrations`.
//!
//! To change the schema, append a new file to [`MIGRATIONS`]; never edit a released one (a
//! database that already applied it would not see the edit).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::error::map_sqlite_error;
use crate::backend::clock::now_millis;
use crate::StoreError;

/// One schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Applied in increasing order; recorded in `schema_migrations.version`.
    pub version: i64,
    /// The file name without extension; recorded in `schema_migrations.name`.
    pub name: &'static str,
    /// The SQL, run as one batch.
    pub sql: &'static str,
}

/// Every migration this build knows, in order.
pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_background_tasks",
        sql: include_str!("../../../../migrations/sqlite/0001_background_tasks.sql"),
    },
    Migration {
        version: 2,
        name: "0002_users_tokens",
        sql: include_str!("../../../../migrations/sqlite/0002_users_tokens.sql"),
    },
    Migration {
        version: 3,
        name: "0003_questions",
        sql: include_str!("../../../../migrations/sqlite/0003_questions.sql"),
    },
    Migration {
        version: 4,
        name: "0004_idempotency",
        sql: include_str!("../../../../migrations/sqlite/0004_idempotency.sql"),
    },
    Migration {
        version: 5,
        name: "0005_user_limits",
        sql: include_str!("../../../../migrations/sqlite/0005_user_limits.sql"),
    },
];

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
)";

/// Brings the database up to the newest migration.
///
/// # Errors
/// [`StoreError::Schema`] when the database was migrated by a newer build (it has versions
/// this build does not know) or a recorded migration has another name than this build's.
pub(crate) fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    apply_list(conn, MIGRATIONS)
}

fn apply_list(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    conn.execute(CREATE_LEDGER, []).map_err(map_sqlite_error)?;
    check_known(conn, migrations)?;
    for migration in migrations {
        // Re-checked inside the write lock: another process may have applied it meanwhile.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_sqlite_error)?;
        let applied = tx
            .query_row(
                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                [migration.version],
                |_| Ok(()),
            )
            .optional()
            .map_err(map_sqlite_error)?
            .is_some();
        if !applied {
            tx.execute_batch(migration.sql).map_err(|e| {
                StoreError::Schema(format!("migration {} failed: {e}", migration.name))
            })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![migration.version, migration.name, now_millis()],
            )
            .map_err(map_sqlite_error)?;
            tracing::info!(migration = migration.name, "applied SQLite migration");
        }
        tx.commit().map_err(map_sqlite_error)?;
    }
    Ok(())
}

/// Fails when the ledger records a migration this build does not have, or under another name.
fn check_known(conn: &Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    let latest_known = migrations.last().map_or(0, |m| m.version);
    let mut statement = conn
        .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
        .map_err(map_sqlite_error)?;
    let recorded = statement
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(map_sqlite_error)?;
    for entry in recorded {
        let (version, name) = entry.map_err(map_sqlite_error)?;
        match migrations.iter().find(|m| m.version == version) {
            Some(known) if known.name == name => {}
            Some(known) => {
                return Err(StoreError::Schema(format!(
                    "schema migration {version} is recorded as {name:?} but this build calls \
                     it {:?}; the database belongs to a different build",
                    known.name
                )));
            }
            None => {
                return Err(StoreError::Schema(format!(
                    "the database has schema version {version} ({name:?}) but this build knows \
                     versions up to {latest_known}; upgrade tasklane to open it"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_names_match_files() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i64 + 1);
            assert!(migration
                .name
                .starts_with(&format!("{:04}_", migration.version)));
            assert!(!migration.sql.trim().is_empty());
        }
    }

    #[test]
    fn applying_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        apply(&mut conn).unwrap();
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_failing_migration_is_rolled_back_and_named() {
        let broken = [
            MIGRATIONS[0],
            Migration {
                version: 2,
                name: "0002_broken",
                sql: "CREATE TABLE half (x INTEGER); SELECT * FROM no_such_table;",
            },
        ];
        let mut conn = Connection::open_in_memory().unwrap();
        let error = apply_list(&mut conn, &broken).unwrap_err();
        assert!(
            matches!(&error, StoreError::Schema(m) if m.contains("0002_broken")),
            "{error:?}"
        );
        let half: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(half, 0, "nothing of the failed migration remains");
        let versions: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(versions, 1);
    }
}
