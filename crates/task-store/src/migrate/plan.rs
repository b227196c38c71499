//! Which migrations a database still needs, from what its ledger records, and when to refuse
//! the database instead.

use super::{Migration, MigrationSet};
use crate::StoreError;

/// One row of `schema_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The set it belongs to.
    pub set: String,
    /// Its version within the set.
    pub version: i64,
    /// The file name it was applied from, without `.sql`.
    pub name: String,
    /// When it was applied, in unix milliseconds.
    pub applied_at: i64,
}

/// The migrations of `sets` that `recorded` (the whole ledger) does not list yet, set by set in
/// the order given, each set's in version order.
///
/// Rows of sets not in `sets` are ignored: another binary may own tables in the same database.
///
/// # Errors
/// [`StoreError::Schema`] when two sets share a name, when the ledger records a version of a
/// set that this build does not know (the database was migrated by a newer build) or under
/// another name (by a different build), or when a version is missing below a recorded one.
pub fn plan<'s>(
    sets: &[&'s MigrationSet],
    recorded: &[Recorded],
) -> Result<Vec<(&'s MigrationSet, &'s Migration)>, StoreError> {
    let mut pending = Vec::new();
    for (index, set) in sets.iter().enumerate() {
        if sets[..index].iter().any(|other| other.name() == set.name()) {
            return Err(StoreError::Schema(format!(
                "the migration set {:?} is given twice",
                set.name()
            )));
        }
        let mine: Vec<&Recorded> = recorded.iter().filter(|r| r.set == set.name()).collect();
        for row in &mine {
            check_known(set, row)?;
        }
        let newest_recorded = mine.iter().map(|r| r.version).max().unwrap_or(0);
        for migration in set.migrations() {
            if mine.iter().any(|r| r.version == migration.version()) {
                continue;
            }
            if migration.version() < newest_recorded {
                return Err(StoreError::Schema(format!(
                    "migration {} of set {:?} is not recorded, but a later one is; the ledger \
                     was edited by hand",
                    migration.name(),
                    set.name()
                )));
            }
            pending.push((*set, migration));
        }
    }
    Ok(pending)
}

/// Fails when `row` is not a migration of `set` this build has, under the same name.
fn check_known(set: &MigrationSet, row: &Recorded) -> Result<(), StoreError> {
    match set.migrations().iter().find(|m| m.version() == row.version) {
        Some(known) if known.name() == row.name => Ok(()),
        Some(known) => Err(StoreError::Schema(format!(
            "migration {} of set {:?} is recorded as {:?} but this build calls it {:?}; the \
             database belongs to a different build",
            row.version,
            set.name(),
            row.name,
            known.name()
        ))),
        None => Err(StoreError::Schema(format!(
            "the database has migration {} ({:?}) of set {:?}, newer than this build's newest \
             ({}); upgrade tasklane to open it",
            row.version,
            row.name,
            set.name(),
            set.newest()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static A_MIGRATIONS: [Migration; 2] = [
        Migration::new("0001_one", "CREATE TABLE one (x)"),
        Migration::new("0002_two", "CREATE TABLE two (x)"),
    ];
    static A: MigrationSet = MigrationSet::new("a", &A_MIGRATIONS);
    static B_MIGRATIONS: [Migration; 1] = [Migration::new("0001_bee", "CREATE TABLE bee (x)")];
    static B: MigrationSet = MigrationSet::new("b", &B_MIGRATIONS);

    fn row(set: &str, version: i64, name: &str) -> Recorded {
        Recorded {
            set: set.to_owned(),
            version,
            name: name.to_owned(),
            applied_at: 0,
        }
    }

    fn names(pending: &[(&MigrationSet, &Migration)]) -> Vec<String> {
        pending
            .iter()
            .map(|(set, m)| format!("{}/{}", set.name(), m.name()))
            .collect()
    }

    fn refusal(sets: &[&MigrationSet], recorded: &[Recorded]) -> String {
        match plan(sets, recorded) {
            Err(StoreError::Schema(message)) => message,
            other => panic!("expected a schema error, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_ledger_gets_every_set_in_order() {
        let pending = plan(&[&A, &B], &[]).unwrap();
        assert_eq!(names(&pending), ["a/0001_one", "a/0002_two", "b/0001_bee"]);
    }

    #[test]
    fn recorded_migrations_are_skipped_per_set() {
        let recorded = [row("a", 1, "0001_one"), row("b", 1, "0001_bee")];
        assert_eq!(names(&plan(&[&A, &B], &recorded).unwrap()), ["a/0002_two"]);
        let all = [row("a", 1, "0001_one"), row("a", 2, "0002_two")];
        assert!(plan(&[&A], &all).unwrap().is_empty());
    }

    #[test]
    fn other_sets_in_the_ledger_are_left_alone() {
        let recorded = [row("someone_else", 7, "0007_theirs")];
        assert_eq!(names(&plan(&[&B], &recorded).unwrap()), ["b/0001_bee"]);
    }

    #[test]
    fn a_newer_version_is_refused() {
        let message = refusal(&[&A], &[row("a", 3, "0003_three")]);
        assert!(message.contains("newer") && message.contains("upgrade tasklane"));
        assert!(message.contains("0003_three"), "{message}");
    }

    #[test]
    fn a_renamed_migration_is_refused() {
        let message = refusal(&[&A], &[row("a", 1, "0001_other")]);
        assert!(message.contains("0001_other") && message.contains("different build"));
    }

    #[test]
    fn a_hole_below_a_recorded_version_is_refused() {
        let message = refusal(&[&A], &[row("a", 2, "0002_two")]);
        assert!(message.contains("0001_one"), "{message}");
    }

    #[test]
    fn a_set_given_twice_is_refused() {
        assert!(refusal(&[&A, &A], &[]).contains("twice"));
    }
}
