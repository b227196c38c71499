//! The search indexer: a maintenance component, like the rollups, that adds newly created
//! tasks to the store's text-search index in batches ([`TaskStore::index_search`]), so a
//! creation does not pay for the index inside its own transaction.
//!
//! Searches are exact whether it runs or not: the store reads the tasks it has not indexed
//! yet directly (by rowid on SQLite), which stays cheap while they are few. The loop keeps
//! them few: every `interval` it indexes batch after batch until the store says it has caught
//! up, each batch its own write transaction so creations interleave with it. Several
//! instances on one database may all run it: each batch moves the store's watermark in the
//! same transaction that indexes, so no task is indexed twice. On stores whose database keeps
//! the index itself (memory, PostgreSQL) each pass is one call that does nothing.

use std::sync::Arc;
use std::time::Duration;

use task_store::TaskStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{check_batch_size, check_interval};
use crate::ticks::Ticks;
use crate::RuntimeError;

/// How often the loop indexes unless configured otherwise.
pub const DEFAULT_SEARCH_INDEX_INTERVAL: Duration = Duration::from_secs(1);
/// How many tasks one indexing transaction takes unless configured otherwise.
pub const DEFAULT_SEARCH_INDEX_BATCH_SIZE: usize = 500;

/// The search indexer's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchIndexConfig {
    /// Time between passes; the first runs at start. The tasks a search reads outside the
    /// index are about the ones created during one interval. Defaults to 1 s.
    pub interval: Duration,
    /// Tasks indexed per write transaction: larger batches cost less per task, smaller ones
    /// hold the writer for less time. Defaults to 500.
    pub batch_size: usize,
}

impl Default for SearchIndexConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_SEARCH_INDEX_INTERVAL,
            batch_size: DEFAULT_SEARCH_INDEX_BATCH_SIZE,
        }
    }
}

impl SearchIndexConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] for a zero interval or batch size, or an interval over
    /// 365 days.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        check_interval("search_index.interval", self.interval)?;
        check_batch_size("search_index.batch_size", self.batch_size)
    }
}

/// The search indexer, ready to start.
pub struct SearchIndexer {
    store: Arc<dyn TaskStore>,
    config: SearchIndexConfig,
}

impl std::fmt::Debug for SearchIndexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndexer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SearchIndexer {
    /// An indexer for `store`'s search index.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] for bad settings.
    pub fn new(store: Arc<dyn TaskStore>, config: SearchIndexConfig) -> Result<Self, RuntimeError> {
        config.validate()?;
        Ok(Self { store, config })
    }

    /// Indexes every task not indexed yet, batch by batch. Returns how many were indexed.
    ///
    /// # Errors
    /// The store's error; what earlier batches indexed stays indexed.
    pub async fn catch_up(&self) -> Result<usize, task_store::StoreError> {
        let mut total = 0;
        loop {
            let indexed = self.store.index_search(self.config.batch_size).await?;
            total += indexed;
            if indexed < self.config.batch_size {
                return Ok(total);
            }
        }
    }

    /// Starts indexing every `interval` on the current tokio runtime until `stop` fires.
    pub fn start(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = Ticks::every(self.config.interval, stop);
            while ticks.tick().await {
                let Some(result) = ticks.unless_stopped(self.catch_up()).await else {
                    return;
                };
                match result {
                    Ok(0) => {}
                    Ok(indexed) => tracing::debug!(indexed, "indexed new tasks for search"),
                    Err(error) => {
                        tracing::warn!(%error, "search indexing failed; retrying next tick")
                    }
                }
            }
        })
    }
}
