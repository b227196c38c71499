//! Maps rusqlite's errors onto [`StoreError`] kinds, so no driver type crosses the traits.

use rusqlite::ErrorCode;

use crate::StoreError;

/// The [`StoreError`] kind for a rusqlite error: busy or locked → [`StoreError::Busy`]; a file
/// that cannot be opened or is not a database, a full disk or an I/O error →
/// [`StoreError::Unavailable`]; a query that
/// expected a row and found none → [`StoreError::NotFound`]; anything else →
/// [`StoreError::Backend`] with the message. Sibling crates that share the database (through
/// [`crate::SqliteStore::with_connection`]) use it too, so errors look the same everywhere.
pub fn map_sqlite_error(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy,
            // A full disk (or the file's size limit) and failed reads or writes of the file
            // are conditions of the storage, not of the request: they pass when space is
            // freed or the device recovers, so callers answer 503 and retry.
            ErrorCode::CannotOpen
            | ErrorCode::NotADatabase
            | ErrorCode::PermissionDenied
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure => StoreError::Unavailable(error.to_string()),
            _ => StoreError::Backend(error.to_string()),
        },
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        _ => StoreError::Backend(error.to_string()),
    }
}

/// Whether `error` is a UNIQUE or PRIMARY KEY violation.
pub(crate) fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some("detail".to_owned()))
    }

    fn check(error: rusqlite::Error, expected: fn(&StoreError) -> bool) {
        let mapped = map_sqlite_error(error);
        assert!(expected(&mapped), "{mapped:?}");
    }

    #[test]
    fn driver_errors_map_to_neutral_kinds() {
        check(failure(ffi::SQLITE_BUSY), |e| *e == StoreError::Busy);
        check(failure(ffi::SQLITE_LOCKED), |e| *e == StoreError::Busy);
        check(failure(ffi::SQLITE_CANTOPEN), |e| {
            matches!(e, StoreError::Unavailable(_))
        });
        check(failure(ffi::SQLITE_NOTADB), |e| {
            matches!(e, StoreError::Unavailable(_))
        });
        check(failure(ffi::SQLITE_FULL), |e| {
            matches!(e, StoreError::Unavailable(_))
        });
        check(failure(ffi::SQLITE_IOERR_WRITE), |e| {
            matches!(e, StoreError::Unavailable(_))
        });
        check(
            failure(ffi::SQLITE_CONSTRAINT),
            |e| matches!(e, StoreError::Backend(m) if m.contains("detail")),
        );
        check(rusqlite::Error::QueryReturnedNoRows, |e| {
            *e == StoreError::NotFound
        });
        assert!(is_unique_violation(&failure(ffi::SQLITE_CONSTRAINT_UNIQUE)));
        assert!(!is_unique_violation(&failure(ffi::SQLITE_CONSTRAINT_CHECK)));
    }
}
