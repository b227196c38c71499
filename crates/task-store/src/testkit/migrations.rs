//! A check every owner of a migration set runs in its tests: the set embeds every file of its
//! directory, in order, so a new file nobody listed cannot be silently left out.

use crate::migrate::MigrationSet;

/// Panics unless `set` embeds exactly the `.sql` files of `dir`, in name order, with their
/// current contents.
pub fn assert_set_matches_directory(set: &MigrationSet, dir: &str) {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.expect("directory entry").file_name())
        .filter_map(|name| name.into_string().ok())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    files.sort();
    let embedded: Vec<String> = set
        .migrations()
        .iter()
        .map(|m| format!("{}.sql", m.name()))
        .collect();
    assert_eq!(files, embedded, "set {:?} against {dir}", set.name());
    for migration in set.migrations() {
        let on_disk = std::fs::read_to_string(format!("{dir}/{}.sql", migration.name()))
            .expect("migration file");
        assert_eq!(
            on_disk,
            migration.sql(),
            "{} is embedded as it is",
            migration.name()
        );
    }
}

/// The first release shipped the `tasks` set's first two files; every later one is an upgrade.
pub const RELEASE_ONE_TASKS_MIGRATIONS: usize = 2;

/// A per-set ledger's `(set, version, name, applied_at)` rows of what the first release applied,
/// after checking that the rest are exactly the `tasks` set's later migrations (3 to
/// `tasks_set_len`) and the `analytics` set, applied once by the upgrade as to any older
/// database.
pub fn released_rows(
    rows: Vec<(String, i64, String, i64)>,
    tasks_set_len: usize,
) -> Vec<(String, i64, String, i64)> {
    let released_len = RELEASE_ONE_TASKS_MIGRATIONS as i64;
    // The `analytics` set came after the first release; every store applies it when it opens
    // (the SQLite and PostgreSQL sets have the same files, numbered alike).
    let (analytics, rows): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|(set, ..)| set == "analytics");
    // So did the `providers` set (provider limits).
    let (providers, rows): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|(set, ..)| set == "providers");
    let providers: Vec<i64> = providers.iter().map(|row| row.1).collect();
    let expected: Vec<i64> = (1..=crate::PROVIDER_MIGRATIONS.newest()).collect();
    assert_eq!(
        providers, expected,
        "the providers migrations are applied once"
    );
    let analytics: Vec<i64> = analytics.iter().map(|row| row.1).collect();
    let expected: Vec<i64> = (1..=crate::ANALYTICS_MIGRATIONS.newest()).collect();
    assert_eq!(
        analytics, expected,
        "the analytics migrations are applied once"
    );
    let (later, released): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|(set, version, ..)| set == "tasks" && *version > released_len);
    let later: Vec<i64> = later.iter().map(|row| row.1).collect();
    let expected: Vec<i64> = (released_len + 1..=tasks_set_len as i64).collect();
    assert_eq!(
        later, expected,
        "the later tasks migrations are applied once"
    );
    released
}
