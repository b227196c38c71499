//! Runs migration sets ([`task_store::migrate`]) on PostgreSQL: in one transaction, under an
//! advisory lock so several instances starting at once apply each migration exactly once. What
//! to run and when to refuse is decided by [`task_store::migrate::plan`]; this file only
//! executes SQL.

use task_store::backend::clock::now_millis;
use task_store::migrate::{self, legacy, LedgerLayout, MigrationSet, Recorded};
use task_store::StoreError;
use tokio_postgres::{Client, Transaction};

use crate::errors::map_db;

/// The tasks, users and tokens tables, the tasks' event logs, the schedules, the workflows, the guarded-creation keys, the users' own limits, task priorities the search and status indexes of big histories, the fair claim's per-user heads and the lease index that counts running tasks per user: the set this store applies when it connects.
pub static MIGRATIONS: MigrationSet = task_store::migration_set!(
    "tasks",
    "migrations/postgres",
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
/// meets the `tasks` set's; the store applies it with [`MIGRATIONS`] when it connects.
pub static ANALYTICS_MIGRATIONS: MigrationSet = task_store::migration_set!(
    "analytics",
    "migrations/analytics/postgres",
    ["0001_analytics"]
);

/// The provider limits (`task_store::provider_limits`): leases, per-minute counts and holds, a
/// set of its own like [`ANALYTICS_MIGRATIONS`]; the store applies it when it connects.
pub static PROVIDER_MIGRATIONS: MigrationSet = task_store::migration_set!(
    "providers",
    "migrations/providers/postgres",
    ["0001_provider_limits"]
);

/// Brings `sets` in `schema` up to date, all or (on an error) nothing. Returns the names
/// (`set/NNNN_name`) of the migrations it applied.
///
/// # Errors
/// [`StoreError::Schema`] when the plan refuses the database (see [`migrate::plan`]) or a
/// migration fails; the database's own errors otherwise.
pub(crate) async fn migrate(
    client: &mut Client,
    schema: &str,
    sets: &[&MigrationSet],
) -> Result<Vec<String>, StoreError> {
    let transaction = client.transaction().await.map_err(map_db)?;
    // Serialises concurrent starts on this schema: the second instance waits, then finds the
    // migrations recorded and applies nothing.
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("tasklane.migrate.{schema}")],
        )
        .await
        .map_err(map_db)?;
    // The schema name was validated (see `PostgresConfig::validate`), so splicing it is safe.
    transaction
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET LOCAL search_path TO \"{schema}\";"
        ))
        .await
        .map_err(map_db)?;
    let columns: Vec<String> = transaction
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = 'schema_migrations'",
            &[&schema],
        )
        .await
        .map_err(map_db)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    match LedgerLayout::from_columns(&columns) {
        LedgerLayout::Missing => transaction
            .batch_execute(migrate::CREATE_LEDGER)
            .await
            .map_err(map_db)?,
        LedgerLayout::Legacy => convert_legacy(&transaction).await?,
        LedgerLayout::PerSet => {}
    }
    let recorded: Vec<Recorded> = transaction
        .query(
            "SELECT set_name, version, name, applied_at FROM schema_migrations",
            &[],
        )
        .await
        .map_err(map_db)?
        .iter()
        .map(|row| Recorded {
            set: row.get(0),
            version: row.get(1),
            name: row.get(2),
            applied_at: row.get(3),
        })
        .collect();
    let mut applied = Vec::new();
    for (set, migration) in migrate::plan(sets, &recorded)? {
        transaction
            .batch_execute(migration.sql())
            .await
            .map_err(|e| match map_db(e) {
                StoreError::Backend(message) => StoreError::Schema(format!(
                    "migration {} of set {:?} failed: {message}",
                    migration.name(),
                    set.name()
                )),
                other => other,
            })?;
        record(
            &transaction,
            set.name(),
            migration.version(),
            migration.name(),
            now_millis(),
        )
        .await?;
        applied.push(format!("{}/{}", set.name(), migration.name()));
    }
    transaction.commit().await.map_err(map_db)?;
    Ok(applied)
}

async fn convert_legacy(transaction: &Transaction<'_>) -> Result<(), StoreError> {
    transaction
        .batch_execute(legacy::RENAME)
        .await
        .map_err(map_db)?;
    transaction
        .batch_execute(migrate::CREATE_LEDGER)
        .await
        .map_err(map_db)?;
    let old: Vec<(i64, String, i64)> = transaction
        .query(legacy::READ, &[])
        .await
        .map_err(map_db)?
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    for row in legacy::convert(&old)? {
        record(
            transaction,
            &row.set,
            row.version,
            &row.name,
            row.applied_at,
        )
        .await?;
    }
    transaction
        .batch_execute(legacy::DROP)
        .await
        .map_err(map_db)?;
    tracing::info!("converted the schema_migrations ledger to one sequence per set");
    Ok(())
}

async fn record(
    transaction: &Transaction<'_>,
    set: &str,
    version: i64,
    name: &str,
    applied_at: i64,
) -> Result<(), StoreError> {
    transaction
        .execute(
            "INSERT INTO schema_migrations (set_name, version, name, applied_at) \
             VALUES ($1, $2, $3, $4)",
            &[&set, &version, &name, &applied_at],
        )
        .await
        .map_err(map_db)?;
    Ok(())
}
