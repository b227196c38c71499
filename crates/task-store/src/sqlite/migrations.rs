//! Runs migration sets ([`crate::migrate`]) on SQLite: the ledger, the first release's ledger
//! converted, the pending migrations executed. What to run and when to refuse is decided by
//! [`crate::migrate::plan`]; this file only executes SQL.

use rusqlite::{Connection, TransactionBehavior};

use super::error::map_sqlite_error;
use crate::backend::clock::now_millis;
use crate::migrate::{self, legacy, LedgerLayout, MigrationSet, Recorded};
use crate::StoreError;

/// The tasks, users and tokens tables, the tasks' event logs, the schedules, the workflows, the guarded-creation keys, the users' own limits, task priorities, the search and status indexes of big histories, the search index's watermark, the fair claim's per-user heads and the lease index that counts running tasks per user: the set this store applies when it opens.
pub static MIGRATIONS: MigrationSet = crate::migration_set!(
    "tasks",
    "migrations/sqlite",
    [
        "0001_background_tasks",
        "0002_users_tokens",
        "0003_task_events",
        "0004_schedules",
        "0005_workflows",
        "0006_idempotency",
        "0007_user_limits",
        "0008_priorities",
        "0009_dashboard",
        "0010_history",
        "0011_search_watermark",
        "0012_claim_heads",
        "0013_running_per_user"
    ]
);

/// The analytics rollups (`task_store::analytics`): a set of its own, so its numbering never
/// meets the `tasks` set's; the store applies it with [`MIGRATIONS`] when it opens.
pub static ANALYTICS_MIGRATIONS: MigrationSet = crate::migration_set!(
    "analytics",
    "migrations/analytics/sqlite",
    ["0001_analytics"]
);

/// The provider limits (`task_store::provider_limits`): leases, per-minute counts and holds, a
/// set of its own like [`ANALYTICS_MIGRATIONS`]; the store applies it when it opens.
pub static PROVIDER_MIGRATIONS: MigrationSet = crate::migration_set!(
    "providers",
    "migrations/providers/sqlite",
    ["0001_provider_limits"]
);

/// The sets a [`super::SqliteStore`] applies when it opens, in order.
pub(crate) const OWN_SETS: [&MigrationSet; 3] =
    [&MIGRATIONS, &ANALYTICS_MIGRATIONS, &PROVIDER_MIGRATIONS];

/// Applies `sets` in one `BEGIN IMMEDIATE` transaction: all of them or, on an error, nothing.
///
/// # Errors
/// As [`apply_in_transaction`].
pub(crate) fn apply(conn: &mut Connection, sets: &[&MigrationSet]) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_sqlite_error)?;
    apply_in_transaction(&tx, sets)?;
    tx.commit().map_err(map_sqlite_error)
}

/// Applies what `sets` still need, inside the caller's write transaction (the writer lock makes
/// the check and the writes one step, so two processes opening together apply each migration
/// once).
///
/// # Errors
/// [`StoreError::Schema`] when the plan refuses the database (see [`migrate::plan`]) or a
/// migration fails; the caller's transaction must then be rolled back.
pub(crate) fn apply_in_transaction(
    conn: &Connection,
    sets: &[&MigrationSet],
) -> Result<(), StoreError> {
    match LedgerLayout::from_columns(&ledger_columns(conn)?) {
        LedgerLayout::Missing => conn
            .execute_batch(migrate::CREATE_LEDGER)
            .map_err(map_sqlite_error)?,
        LedgerLayout::Legacy => convert_legacy(conn)?,
        LedgerLayout::PerSet => {}
    }
    let recorded = read_ledger(conn)?;
    for (set, migration) in migrate::plan(sets, &recorded)? {
        conn.execute_batch(migration.sql()).map_err(|e| {
            StoreError::Schema(format!(
                "migration {} of set {:?} failed: {e}",
                migration.name(),
                set.name()
            ))
        })?;
        record(
            conn,
            set.name(),
            migration.version(),
            migration.name(),
            now_millis(),
        )?;
        tracing::info!(
            set = set.name(),
            migration = migration.name(),
            "applied SQLite migration"
        );
    }
    Ok(())
}

fn ledger_columns(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut statement = conn
        .prepare("SELECT name FROM pragma_table_info('schema_migrations')")
        .map_err(map_sqlite_error)?;
    let columns = statement
        .query_map([], |row| row.get(0))
        .map_err(map_sqlite_error)?;
    columns.collect::<Result<_, _>>().map_err(map_sqlite_error)
}

fn convert_legacy(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(legacy::RENAME)
        .map_err(map_sqlite_error)?;
    conn.execute_batch(migrate::CREATE_LEDGER)
        .map_err(map_sqlite_error)?;
    let old = {
        let mut statement = conn.prepare(legacy::READ).map_err(map_sqlite_error)?;
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .map_err(map_sqlite_error)?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(map_sqlite_error)?
    };
    for row in legacy::convert(&old)? {
        record(conn, &row.set, row.version, &row.name, row.applied_at)?;
    }
    conn.execute_batch(legacy::DROP).map_err(map_sqlite_error)?;
    tracing::info!("converted the schema_migrations ledger to one sequence per set");
    Ok(())
}

fn read_ledger(conn: &Connection) -> Result<Vec<Recorded>, StoreError> {
    let mut statement = conn
        .prepare("SELECT set_name, version, name, applied_at FROM schema_migrations")
        .map_err(map_sqlite_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok(Recorded {
                set: row.get(0)?,
                version: row.get(1)?,
                name: row.get(2)?,
                applied_at: row.get(3)?,
            })
        })
        .map_err(map_sqlite_error)?;
    rows.collect::<Result<_, _>>().map_err(map_sqlite_error)
}

fn record(
    conn: &Connection,
    set: &str,
    version: i64,
    name: &str,
    applied_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO schema_migrations (set_name, version, name, applied_at) \
         VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![set, version, name, applied_at],
    )
    .map_err(map_sqlite_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::Migration;

    #[test]
    fn applying_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, &[&MIGRATIONS]).unwrap();
        apply(&mut conn, &[&MIGRATIONS]).unwrap();
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, MIGRATIONS.newest());
    }

    #[test]
    fn a_failing_migration_undoes_the_whole_call_and_is_named() {
        static BROKEN: [Migration; 2] = [
            Migration::new("0001_fine", "CREATE TABLE fine (x INTEGER)"),
            Migration::new(
                "0002_broken",
                "CREATE TABLE half (x INTEGER); SELECT * FROM no_such_table;",
            ),
        ];
        static SET: MigrationSet = MigrationSet::new("broken", &BROKEN);
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, &[&MIGRATIONS]).unwrap();
        let error = apply(&mut conn, &[&MIGRATIONS, &SET]).unwrap_err();
        assert!(
            matches!(&error, StoreError::Schema(m) if m.contains("0002_broken") && m.contains("\"broken\"")),
            "{error:?}"
        );
        let leftovers: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('fine', 'half')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leftovers, 0, "nothing of the failed call remains");
        let recorded: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM schema_migrations WHERE set_name = 'broken'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(recorded, 0);
    }
}
