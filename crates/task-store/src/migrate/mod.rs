//! The one migration mechanism every backend shares: named **sets** of migrations ("lines" in
//! River's words), each owned by the crate whose code uses its tables, recorded per set in
//! `schema_migrations (set_name, version, name, applied_at)`.
//!
//! This module holds everything about migrations that is not SQL execution: the model
//! ([`Migration`], [`MigrationSet`], [`migration_set!`](crate::migration_set)), the ledger's
//! layout, the plan (which migrations a database still needs, and when to refuse it), and the
//! one-time conversion of the first release's single-sequence ledger ([`legacy`]). A backend
//! reads the ledger, asks [`plan`] and runs what it returns, each in its own dialect.
//!
//! A set's SQL lives in its owner crate, in `migrations/<backend>/NNNN_name.sql`; adding a
//! migration to a set is a new file and a line in its `migration_set!`, adding a set is a
//! `migration_set!` in the owner crate and a line in the binary's list of sets. Released files
//! are never edited: a database that already applied one would not see the edit.

pub mod legacy;
mod plan;

pub use plan::{plan, Recorded};

/// The ledger, created when missing. The same statement serves SQLite and PostgreSQL.
pub const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    set_name   TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    name       TEXT   NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (set_name, version)
)";

/// One schema change of a set: the file `NNNN_name.sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

impl Migration {
    /// The migration in file `name` (without `.sql`), whose first four characters are its
    /// version (`0001_background_tasks` is version 1).
    ///
    /// # Panics
    /// When `name` does not start with four digits and `_`; in a `static` that is a build
    /// error, which is where [`migration_set!`](crate::migration_set) puts it.
    pub const fn new(name: &'static str, sql: &'static str) -> Self {
        let bytes = name.as_bytes();
        assert!(
            bytes.len() > 5 && bytes[4] == b'_',
            "a migration file is named NNNN_name.sql"
        );
        let mut version = 0;
        let mut i = 0;
        while i < 4 {
            assert!(
                bytes[i].is_ascii_digit(),
                "a migration file is named NNNN_name.sql"
            );
            version = version * 10 + (bytes[i] - b'0') as i64;
            i += 1;
        }
        Self { version, name, sql }
    }

    /// Applied in increasing order within its set; recorded in `schema_migrations.version`.
    pub const fn version(&self) -> i64 {
        self.version
    }

    /// The file name without `.sql`; recorded in `schema_migrations.name`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The SQL, run as one batch.
    pub const fn sql(&self) -> &'static str {
        self.sql
    }
}

/// A named, ordered list of migrations owned by one crate, for one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationSet {
    name: &'static str,
    migrations: &'static [Migration],
}

impl MigrationSet {
    /// The set `name` of `migrations`, whose versions must be 1, 2, 3… in order.
    ///
    /// # Panics
    /// When the versions are not 1, 2, 3… or the name is empty; in a `static` that is a
    /// build error.
    pub const fn new(name: &'static str, migrations: &'static [Migration]) -> Self {
        assert!(!name.is_empty(), "a migration set has a name");
        let mut i = 0;
        while i < migrations.len() {
            assert!(
                migrations[i].version == i as i64 + 1,
                "a set's migrations are numbered 1, 2, 3… without gaps"
            );
            i += 1;
        }
        Self { name, migrations }
    }

    /// Recorded in `schema_migrations.set_name`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The migrations, in the order they are applied.
    pub const fn migrations(&self) -> &'static [Migration] {
        self.migrations
    }

    /// The newest version this build knows (0 for an empty set).
    pub const fn newest(&self) -> i64 {
        self.migrations.len() as i64
    }
}

/// Declares a [`MigrationSet`] from files in the calling crate:
/// `migration_set!("questions", "migrations/sqlite", ["0001_questions"])` embeds
/// `<crate>/migrations/sqlite/0001_questions.sql`. A missing file, a bad name or a gap in the
/// numbering fails the build.
#[macro_export]
macro_rules! migration_set {
    ($set:literal, $dir:literal, [$($file:literal),+ $(,)?]) => {
        $crate::migrate::MigrationSet::new(
            $set,
            &[$($crate::migrate::Migration::new(
                $file,
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $dir, "/", $file, ".sql")),
            )),+],
        )
    };
}

/// What a database's `schema_migrations` looks like, from its column names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerLayout {
    /// No ledger yet: create it with [`CREATE_LEDGER`].
    Missing,
    /// The first release's ledger, one sequence for every table: convert it with [`legacy`].
    Legacy,
    /// Recorded per set.
    PerSet,
}

impl LedgerLayout {
    /// The layout of a `schema_migrations` table with these columns (none: no table).
    pub fn from_columns<S: AsRef<str>>(columns: &[S]) -> Self {
        if columns.is_empty() {
            Self::Missing
        } else if columns.iter().any(|c| c.as_ref() == "set_name") {
            Self::PerSet
        } else {
            Self::Legacy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_file_names() {
        let m = Migration::new("0012_things", "SELECT 1");
        assert_eq!(
            (m.version(), m.name(), m.sql()),
            (12, "0012_things", "SELECT 1")
        );
    }

    #[test]
    #[should_panic(expected = "NNNN_name")]
    fn a_name_without_a_version_is_refused() {
        let _ = Migration::new("things", "");
    }

    #[test]
    #[should_panic(expected = "without gaps")]
    fn a_gap_is_refused() {
        static GAP: [Migration; 2] = [Migration::new("0001_a", ""), Migration::new("0003_c", "")];
        let _ = MigrationSet::new("gappy", &GAP);
    }

    #[test]
    fn layouts_are_told_apart_by_their_columns() {
        let none: [&str; 0] = [];
        assert_eq!(LedgerLayout::from_columns(&none), LedgerLayout::Missing);
        assert_eq!(
            LedgerLayout::from_columns(&["version", "name", "applied_at"]),
            LedgerLayout::Legacy
        );
        assert_eq!(
            LedgerLayout::from_columns(&["set_name", "version", "name", "applied_at"]),
            LedgerLayout::PerSet
        );
    }
}
