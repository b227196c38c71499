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
