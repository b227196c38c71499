//! Opening and configuring connections: the writer, and the pooled readers.

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

use super::error::map_sqlite_error;
use crate::backend::rules::fold_case;
use crate::StoreError;

/// The SQL name of [`fold_case`], used by task search.
pub(crate) const FOLD_FUNCTION: &str = "tasklane_fold";
/// Prepared statements kept per connection; the store uses about thirty distinct ones.
const STATEMENT_CACHE: usize = 64;

/// Opens the one writer connection: WAL, `synchronous=NORMAL`, a busy timeout, foreign keys.
///
/// WAL lets readers run while the writer writes. `synchronous=NORMAL` in WAL mode syncs the
/// WAL at checkpoints, not at every commit: a commit is atomic and survives a crash of the
/// process, but the last commits before a power loss or OS crash may be rolled back. That
/// costs at most a few task updates (which workers redo) and makes commits several times
/// faster.
pub(crate) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(busy_timeout).map_err(map_sqlite_error)?;
    // The first statement that reads the file: a file that is not a database fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "{}: cannot switch to WAL mode (journal mode is {mode})",
            path.display()
        )));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(map_sqlite_error)?;
    prepare(&conn)?;
    Ok(conn)
}

/// The manager for pooled readers: same file, read-only by pragma, same busy timeout.
pub(crate) fn reader_manager(path: &Path, busy_timeout: Duration) -> SqliteConnectionManager {
    SqliteConnectionManager::file(path).with_init(move |conn| {
        conn.busy_timeout(busy_timeout)?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA query_only = ON;")?;
        register_functions(conn)?;
        tune(conn)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(())
    })
}

fn prepare(conn: &Connection) -> Result<(), StoreError> {
    register_functions(conn).map_err(map_sqlite_error)?;
    tune(conn).map_err(map_sqlite_error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Settings every connection shares, for speed; neither changes what a query returns.
///
/// - The query planner stability guarantee: the bundled SQLite is built with STAT4, which
///   makes a cached statement re-prepare itself whenever a parameter the planner looked at
///   changes value, `LIMIT ?` included. The claim's limit changes with every call, so without
///   this each claim paid a full re-prepare (9 % of a drain's writer time). The store keeps
///   no statistics tables, so there is no better plan to lose.
/// - `temp_store = MEMORY`: the group commit's savepoints journal each page an operation
///   touches first; past 64 KiB that sub-journal spilled into a temporary file, one `pwrite`
///   per page.
fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
}

/// SQLite's own `lower()` folds only ASCII; search must also fold "Ö" to "ö".
fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        FOLD_FUNCTION,
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text: Option<String> = ctx.get(0)?;
            Ok(text.map(|text| fold_case(&text)))
        },
    )
}

fn open_error(path: &Path, error: rusqlite::Error) -> StoreError {
    match map_sqlite_error(error) {
        StoreError::Unavailable(message) | StoreError::Backend(message) => {
            StoreError::Unavailable(format!("{}: {message}", path.display()))
        }
        other => other,
    }
}
