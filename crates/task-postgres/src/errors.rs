//! Maps tokio-postgres and pool errors onto [`StoreError`] kinds, so no driver type leaks out
//! of the store.

use deadpool_postgres::PoolError;
use task_core::CoreError;
use task_store::StoreError;
use tokio_postgres::error::SqlState;

/// The kind a database error belongs to. Callers retry `Busy`, report `Unavailable` as a
/// readiness failure, and show `Conflict` to users.
pub(crate) fn map_db(error: tokio_postgres::Error) -> StoreError {
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection failed or closed (I/O, TLS, timeout, protocol). The
        // driver's own message ("error connecting to server") leaves the cause to its source.
        return StoreError::Unavailable(with_causes(&error));
    };
    let message = error
        .as_db_error()
        .map(|db| db.message().to_owned())
        .unwrap_or_else(|| error.to_string());
    classify(code, message)
}

/// `error`'s message followed by those of its sources, `: `-separated.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The kind of a SQLSTATE, with the server's message.
fn classify(code: &SqlState, message: String) -> StoreError {
    let class = &code.code()[..2];
    if *code == SqlState::UNIQUE_VIOLATION {
        StoreError::Conflict(message)
    } else if [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::QUERY_CANCELED,
    ]
    .contains(code)
    {
        StoreError::Busy
    } else if [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::INVALID_CATALOG_NAME,
        SqlState::INVALID_PASSWORD,
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
    ]
    .contains(code)
        || class == "08"
    {
        StoreError::Unavailable(message)
    } else if [
        SqlState::CHARACTER_NOT_IN_REPERTOIRE,
        SqlState::UNTRANSLATABLE_CHARACTER,
    ]
    .contains(code)
    {
        // SQLite stores NUL characters; PostgreSQL text and jsonb cannot, so say which rule
        // the input broke instead of failing as a backend error.
        StoreError::Invalid(CoreError::InvalidField {
            field: "text",
            reason: format!("PostgreSQL cannot store it: {message}"),
        })
    } else {
        StoreError::Backend(format!("{message} (SQLSTATE {})", code.code()))
    }
}

/// The kind of a failure to get a pooled connection.
pub(crate) fn map_pool(error: PoolError) -> StoreError {
    match error {
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => StoreError::Busy,
        PoolError::Timeout(_) => {
            StoreError::Unavailable("timed out connecting to PostgreSQL".to_owned())
        }
        PoolError::Backend(error) => map_db(error),
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".to_owned()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// A stored value this build cannot read (a corrupt row or a schema from another version).
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable {what} in the database: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: &str, expected: StoreError) {
        let got = classify(&SqlState::from_code(code), "m".to_owned());
        assert_eq!(got, expected, "{code}");
    }

    #[test]
    fn sqlstates_map_to_kinds() {
        check("23505", StoreError::Conflict("m".into()));
        check("40001", StoreError::Busy);
        check("40P01", StoreError::Busy);
        check("55P03", StoreError::Busy);
        check("53300", StoreError::Busy);
        check("57P01", StoreError::Unavailable("m".into()));
        check("08006", StoreError::Unavailable("m".into()));
        check("3D000", StoreError::Unavailable("m".into()));
        check("42P01", StoreError::Backend("m (SQLSTATE 42P01)".into()));
        assert!(matches!(
            classify(&SqlState::from_code("22P05"), "m".into()),
            StoreError::Invalid(CoreError::InvalidField { field: "text", .. })
        ));
    }
}
