//! The first release's ledger, converted once to the per-set one.
//!
//! That release recorded one sequence for every table in `schema_migrations (version, name,
//! applied_at)`: 1 `background_tasks`, 2 `users_tokens`, 3 `questions` (SQLite recorded the
//! names with their `NNNN_` prefix, PostgreSQL without). Its migrations now belong to two sets,
//! so a backend that finds this layout renames the table to [`OLD_TABLE`], creates the per-set
//! ledger, inserts what [`convert`] makes of the old rows and drops the old table, all in the
//! transaction that then applies the pending migrations. The tables themselves are untouched:
//! the SQL of those migrations is the same, only who owns it changed.
//!
//! This is the one place that knows the quiz crate's set name, as a fact about released data.

use super::Recorded;
use crate::StoreError;

/// What the old ledger is renamed to while it is converted.
pub const OLD_TABLE: &str = "schema_migrations_release1";

/// Renames the old ledger out of the way, so the per-set one can take its name.
pub const RENAME: &str = "ALTER TABLE schema_migrations RENAME TO schema_migrations_release1";

/// Reads the old ledger's rows: `version, name, applied_at`.
pub const READ: &str =
    "SELECT version, name, applied_at FROM schema_migrations_release1 ORDER BY version";

/// Drops the old ledger once its rows are copied.
pub const DROP: &str = "DROP TABLE schema_migrations_release1";

/// The first release's migrations: old version, name without prefix, set, version in the set.
const RELEASED: [(i64, &str, &str, i64); 3] = [
    (1, "background_tasks", "tasks", 1),
    (2, "users_tokens", "tasks", 2),
    (3, "questions", "questions", 1),
];

/// The per-set rows for the old ledger's `(version, name, applied_at)` rows.
///
/// # Errors
/// [`StoreError::Schema`] for a version the first release did not have (the database was
/// migrated by a build newer than this one knows how to convert) or a name it did not use.
pub fn convert(rows: &[(i64, String, i64)]) -> Result<Vec<Recorded>, StoreError> {
    rows.iter()
        .map(|(version, name, applied_at)| {
            let Some((_, old_name, set, new_version)) =
                RELEASED.iter().find(|(old, ..)| old == version)
            else {
                return Err(StoreError::Schema(format!(
                    "the database has schema version {version} ({name:?}), newer than this \
                     build knows; upgrade tasklane to open it"
                )));
            };
            if without_prefix(name) != *old_name {
                return Err(StoreError::Schema(format!(
                    "schema migration {version} is recorded as {name:?} but the release that \
                     wrote it called it {old_name:?}; the database belongs to a different build"
                )));
            }
            Ok(Recorded {
                set: (*set).to_owned(),
                version: *new_version,
                name: format!("{new_version:04}_{old_name}"),
                applied_at: *applied_at,
            })
        })
        .collect()
}

/// `0001_background_tasks` → `background_tasks`; a name without the prefix stays as it is.
fn without_prefix(name: &str) -> &str {
    match name.split_once('_') {
        Some((digits, rest)) if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            rest
        }
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(version: i64, name: &str) -> (i64, String, i64) {
        (version, name.to_owned(), 1_700_000_000_000 + version)
    }

    #[test]
    fn both_backends_old_rows_become_the_same_per_set_rows() {
        let sqlite = convert(&[
            old(1, "0001_background_tasks"),
            old(2, "0002_users_tokens"),
            old(3, "0003_questions"),
        ])
        .unwrap();
        let postgres = convert(&[
            old(1, "background_tasks"),
            old(2, "users_tokens"),
            old(3, "questions"),
        ])
        .unwrap();
        assert_eq!(sqlite, postgres);
        let rows: Vec<(&str, i64, &str, i64)> = sqlite
            .iter()
            .map(|r| (r.set.as_str(), r.version, r.name.as_str(), r.applied_at))
            .collect();
        assert_eq!(
            rows,
            [
                ("tasks", 1, "0001_background_tasks", 1_700_000_000_001),
                ("tasks", 2, "0002_users_tokens", 1_700_000_000_002),
                ("questions", 1, "0001_questions", 1_700_000_000_003),
            ]
        );
    }

    #[test]
    fn unknown_versions_and_names_are_refused() {
        for (rows, says) in [
            (vec![old(4, "0004_from_the_future")], "upgrade tasklane"),
            (vec![old(1, "0001_something_else")], "different build"),
        ] {
            match convert(&rows) {
                Err(StoreError::Schema(message)) => assert!(message.contains(says), "{message}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
