//! [`SqliteConfig`]: the knobs of [`crate::SqliteStore`], each with a documented default.

use std::time::Duration;

use task_core::CoreError;

use crate::{StoreError, DEFAULT_FEED_CAPACITY};

/// Reader connections unless configured otherwise: enough for concurrent list/get/SSE re-reads
/// on a small machine without holding many file handles.
pub const DEFAULT_POOL_SIZE: u32 = 4;
/// How long a statement waits for a lock (and a reader for a free pooled connection) before
/// failing with [`StoreError::Busy`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL length, in pages, at which the checkpoint thread copies the WAL back into the
/// database file: SQLite's own default for its automatic checkpoint (about 4 MiB of WAL).
pub const DEFAULT_CHECKPOINT_PAGES: u32 = 1000;

/// How [`crate::SqliteStore::open_with`] sets up the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// Pooled read-only connections. Writes always use one separate writer connection.
    /// Defaults to [`DEFAULT_POOL_SIZE`]; must be at least 1.
    pub pool_size: u32,
    /// SQLite's `busy_timeout`, also the longest wait for a pooled connection.
    /// Defaults to [`DEFAULT_BUSY_TIMEOUT`].
    pub busy_timeout: Duration,
    /// Changes buffered per change-feed subscriber before it lags.
    /// Defaults to [`DEFAULT_FEED_CAPACITY`].
    pub feed_capacity: usize,
    /// WAL pages after which the checkpoint thread runs a checkpoint. Smaller keeps the WAL
    /// file and the readers' WAL lookups small; larger copies hot pages back less often.
    /// Defaults to [`DEFAULT_CHECKPOINT_PAGES`]; must be at least 1.
    pub checkpoint_pages: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            pool_size: DEFAULT_POOL_SIZE,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            feed_capacity: DEFAULT_FEED_CAPACITY,
            checkpoint_pages: DEFAULT_CHECKPOINT_PAGES,
        }
    }
}

impl SqliteConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the bad setting.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |field, reason: &str| {
            Err(StoreError::Invalid(CoreError::InvalidField {
                field,
                reason: reason.to_owned(),
            }))
        };
        if self.pool_size == 0 {
            return invalid("pool_size", "must be at least 1");
        }
        if self.feed_capacity == 0 {
            return invalid("feed_capacity", "must be at least 1");
        }
        if self.checkpoint_pages == 0 {
            return invalid("checkpoint_pages", "must be at least 1");
        }
        if self.busy_timeout.is_zero() {
            return invalid("busy_timeout", "must be longer than zero");
        }
        Ok(())
    }
}
