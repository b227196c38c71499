//! The embedded migrations (`migrations/postgres/NNNN_name.sql`) and the runner that applies
//! them at connect: in one transaction, under an advisory lock so several instances starting at
//! once apply each migration exactly once, recorded in `schema_migrations`.

use task_store::StoreError;
use tokio_postgres::Client;

use crate::errors::map_db;
use task_store::backend::clock::now_millis;

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The `NNNN` of the file name; applied in increasing order.
    pub(crate) version: i64,
    /// The `name` part of the file name.
    pub(crate) name: &'static str,
    /// The file's SQL.
    pub(crate) sql: &'static str,
}

/// Every migration this build knows, in order. A unit test checks the list against the folder.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "background_tasks",
        sql: include_str!("../../../migrations/postgres/0001_background_tasks.sql"),
    },
    Migration {
        version: 2,
        name: "users_tokens",
        sql: include_str!("../../../migrations/postgres/0002_users_tokens.sql"),
    },
    Migration {
        version: 3,
        name: "questions",
        sql: include_str!("../../../migrations/postgres/0003_questions.sql"),
    },
    Migration {
        version: 4,
        name: "idempotency",
        sql: include_str!("../../../migrations/postgres/0004_idempotency.sql"),
    },
    Migration {
        version: 5,
        name: "user_limits",
        sql: include_str!("../../../migrations/postgres/0005_user_limits.sql"),
    },
];

/// Brings `schema` up to the newest migration. Returns the versions it applied.
///
/// # Errors
/// [`StoreError::Schema`] when the database was migrated by a newer build; the database's own
/// errors otherwise. On any error nothing is applied.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<Vec<i64>, StoreError> {
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
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             SET LOCAL search_path TO \"{schema}\";
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    bigint PRIMARY KEY,
                 name       text   NOT NULL,
                 applied_at bigint NOT NULL
             );"
        ))
        .await
        .map_err(map_db)?;
    let row = transaction
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await
        .map_err(map_db)?;
    let current: i64 = row.get::<_, Option<i64>>(0).unwrap_or(0);
    check_known(current)?;
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        transaction
            .batch_execute(migration.sql)
            .await
            .map_err(|e| match map_db(e) {
                StoreError::Backend(message) => StoreError::Schema(format!(
                    "migration {:04}_{} failed: {message}",
                    migration.version, migration.name
                )),
                other => other,
            })?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&migration.version, &migration.name, &now_millis()],
            )
            .await
            .map_err(map_db)?;
        applied.push(migration.version);
    }
    transaction.commit().await.map_err(map_db)?;
    Ok(applied)
}

/// Refuses a database migrated past what this build knows: its tables may have changed in
/// ways this code would misread.
fn check_known(current: i64) -> Result<(), StoreError> {
    let newest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > newest {
        return Err(StoreError::Schema(format!(
            "the database schema is at version {current}, newer than this build's {newest}; \
             upgrade tasklane before using this database"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_folder_is_embedded_in_order() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/postgres");
        let mut files: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.name))
            .collect();
        assert_eq!(files, embedded);
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i64 + 1, "versions have no gaps");
            let on_disk = std::fs::read_to_string(format!("{folder}/{}", files[index])).unwrap();
            assert_eq!(on_disk, migration.sql);
        }
    }

    #[test]
    fn newer_schemas_are_refused() {
        assert!(check_known(0).is_ok());
        assert!(check_known(MIGRATIONS.len() as i64).is_ok());
        match check_known(MIGRATIONS.len() as i64 + 1) {
            Err(StoreError::Schema(message)) => assert!(message.contains("newer than")),
            other => panic!("{other:?}"),
        }
    }
}
