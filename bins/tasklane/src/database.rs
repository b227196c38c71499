//! Opens the database `--db` names. The binary is where the concrete store is chosen.

use std::sync::Arc;

use anyhow::Context;
use task_store::SqliteStore;

/// Opens (creating if needed) the SQLite database at `db`. A `postgres://` URL is recognised
/// but refused until the Postgres backend is wired in.
pub fn open(db: &str) -> anyhow::Result<Arc<SqliteStore>> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        anyhow::bail!(
            "Postgres support is not built yet: --db/TASKLANE_DB must be a SQLite file path for now"
        );
    }
    let store =
        SqliteStore::open(db).with_context(|| format!("cannot open SQLite database {db:?}"))?;
    Ok(Arc::new(store))
}
