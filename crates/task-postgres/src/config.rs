//! [`PostgresConfig`]: how a [`crate::PostgresStore`] connects, with documented defaults.

use std::time::Duration;

use task_core::CoreError;
use task_store::{StoreError, DEFAULT_FEED_CAPACITY};

/// The schema a store uses unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "public";
/// Pooled connections per store (the LISTEN connection comes on top).
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long an operation waits for a free pooled connection before failing with `Busy`.
pub const DEFAULT_POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening one connection may take before failing with `Unavailable`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first wait before the listener reconnects; it doubles up to the maximum.
pub const DEFAULT_LISTENER_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between the listener's reconnect attempts.
pub const DEFAULT_LISTENER_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often an idle listener checks its connection, so a dead one is noticed and re-synced.
pub const DEFAULT_LISTENER_KEEPALIVE: Duration = Duration::from_secs(5);
/// How far before the listener's last good round trip a re-sync starts reading. It covers
/// notifications in flight when the connection broke and clock skew between hosts (tasks'
/// `updated_at` comes from the writing host's clock).
pub const DEFAULT_RESYNC_MARGIN: Duration = Duration::from_secs(5);
/// The `application_name` of the store's connections, unless the URL sets one.
pub const DEFAULT_APPLICATION_NAME: &str = "tasklane";

/// Longest schema name: the notification channels `tasklane_changes.<schema>` and
/// `tasklane_events.<schema>` must fit PostgreSQL's 63-byte identifiers.
const MAX_SCHEMA_LEN: usize = 46;

/// How a [`crate::PostgresStore`] connects and behaves. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// The schema holding tasklane's tables: lowercase ASCII letters, digits and `_`, not
    /// starting with a digit, at most 46 characters. Created at connect if missing. Each
    /// connection's `search_path` is set to it. Several stores (or test runs) can share one
    /// database in separate schemas. Defaults to [`DEFAULT_SCHEMA`].
    pub schema: String,
    /// Pooled connections. Defaults to [`DEFAULT_POOL_SIZE`].
    pub pool_size: usize,
    /// Wait for a free pooled connection before `Busy`. Defaults to
    /// [`DEFAULT_POOL_WAIT_TIMEOUT`].
    pub pool_wait_timeout: Duration,
    /// Limit for opening one connection, unless the URL sets `connect_timeout`. Defaults to
    /// [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// Changes buffered per change-feed subscriber. Defaults to
    /// [`task_store::DEFAULT_FEED_CAPACITY`].
    pub feed_capacity: usize,
    /// First reconnect wait of the LISTEN connection. Defaults to
    /// [`DEFAULT_LISTENER_BACKOFF_MIN`].
    pub listener_backoff_min: Duration,
    /// Longest reconnect wait of the LISTEN connection. Defaults to
    /// [`DEFAULT_LISTENER_BACKOFF_MAX`].
    pub listener_backoff_max: Duration,
    /// Idle check interval of the LISTEN connection. Defaults to
    /// [`DEFAULT_LISTENER_KEEPALIVE`].
    pub listener_keepalive: Duration,
    /// How far back a re-sync after a reconnect reads. Defaults to [`DEFAULT_RESYNC_MARGIN`].
    pub resync_margin: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            schema: DEFAULT_SCHEMA.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            pool_wait_timeout: DEFAULT_POOL_WAIT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            feed_capacity: DEFAULT_FEED_CAPACITY,
            listener_backoff_min: DEFAULT_LISTENER_BACKOFF_MIN,
            listener_backoff_max: DEFAULT_LISTENER_BACKOFF_MAX,
            listener_keepalive: DEFAULT_LISTENER_KEEPALIVE,
            resync_margin: DEFAULT_RESYNC_MARGIN,
        }
    }
}

impl PostgresConfig {
    /// The default configuration with another schema.
    pub fn with_schema(schema: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            ..Self::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the bad field.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(StoreError::Invalid(CoreError::InvalidField {
                field,
                reason: reason.to_owned(),
            }))
        };
        if !is_valid_schema_name(&self.schema) {
            return invalid(
                "schema",
                "must be 1 to 46 characters of a-z, 0-9 and '_', not starting with a digit",
            );
        }
        if self.pool_size == 0 {
            return invalid("pool_size", "must be at least 1");
        }
        if self.feed_capacity == 0 {
            return invalid("feed_capacity", "must be at least 1");
        }
        if self.listener_backoff_min.is_zero()
            || self.listener_backoff_max < self.listener_backoff_min
        {
            return invalid(
                "listener_backoff",
                "the minimum must be positive and not above the maximum",
            );
        }
        if self.listener_keepalive.is_zero() {
            return invalid("listener_keepalive", "must be positive");
        }
        Ok(())
    }

    /// The notification channel of this schema's change feed.
    pub(crate) fn channel(&self) -> String {
        format!("tasklane_changes.{}", self.schema)
    }

    /// The notification channel of this schema's task event feed (appended partial outputs).
    /// A channel of its own, so instances of a build without it never see its payloads.
    pub(crate) fn events_channel(&self) -> String {
        format!("tasklane_events.{}", self.schema)
    }
}

/// Whether `name` is a schema name this crate accepts. The rule keeps names safe to splice into
/// SQL and connection options without quoting.
fn is_valid_schema_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    first_ok
        && name.len() <= MAX_SCHEMA_LEN
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(config: PostgresConfig, bad_field: Option<&str>) {
        match (config.validate(), bad_field) {
            (Ok(()), None) => {}
            (Err(StoreError::Invalid(CoreError::InvalidField { field, .. })), Some(expected)) => {
                assert_eq!(field, expected)
            }
            (other, expected) => panic!("{other:?}, expected bad field {expected:?}"),
        }
    }

    #[test]
    fn validation_names_the_bad_field() {
        check(PostgresConfig::default(), None);
        check(PostgresConfig::with_schema("tasklane_test_1"), None);
        check(PostgresConfig::with_schema("_x"), None);
        check(PostgresConfig::with_schema("a".repeat(46)), None);
        for bad in ["", "1abc", "Public", "a-b", "a.b", "a\"b", "a b"] {
            check(PostgresConfig::with_schema(bad), Some("schema"));
        }
        check(PostgresConfig::with_schema("a".repeat(47)), Some("schema"));
        let zero_pool = PostgresConfig {
            pool_size: 0,
            ..PostgresConfig::default()
        };
        check(zero_pool, Some("pool_size"));
        let inverted_backoff = PostgresConfig {
            listener_backoff_min: Duration::from_secs(2),
            listener_backoff_max: Duration::from_secs(1),
            ..PostgresConfig::default()
        };
        check(inverted_backoff, Some("listener_backoff"));
    }

    #[test]
    fn the_channel_fits_an_identifier() {
        let config = PostgresConfig::with_schema("a".repeat(MAX_SCHEMA_LEN));
        assert!(config.channel().len() <= 63);
        assert!(config.events_channel().len() <= 63);
        assert_eq!(
            PostgresConfig::default().channel(),
            "tasklane_changes.public"
        );
    }
}
