//! The worker runtime: durable background execution of tasks stored in a
//! [`task_store::TaskStore`], with leases, heartbeats, retries with backoff, timeouts,
//! cancellation, per-user fairness and graceful shutdown.
//!
//! Register a [`Handler`] per task type in a [`Registry`], then [`Runtime::start`] it with a
//! store and a [`RuntimeConfig`]. The runtime claims due tasks up to its concurrency, runs each
//! handler with a [`TaskContext`] (params, fenced progress reports, a cancellation token),
//! renews the lease while it runs, and stores the outcome. A rescuer returns tasks of crashed
//! workers; a cleaner deletes old finished tasks; [`Rollups`] folds finished tasks into the
//! analytics rollups; [`SearchIndexer`] adds new tasks to the store's search index in batches.
//! [`Schedules`] creates tasks at recurring
//! times (cron or `every` intervals in IANA zones) and runs the scheduler loop; each fire time
//! creates its task once across instances. `docs/runtime.md` describes every step and default.
//!
//! **Invariant: every write the runtime makes for a running task carries that attempt's lease,
//! and once the lease is known lost it writes nothing more for it.** The only unfenced writes
//! are the ones the state machine allows without a lease: cancelling a task whose cancel was
//! requested after its grace period, and the rescuer's sweep of expired leases.
//!
//! ```
//! use std::sync::Arc;
//!
//! use serde_json::json;
//! use task_core::{NewTask, TaskStatus};
//! use task_runtime::{handler_fn, Registry, Runtime, RuntimeConfig, TaskContext};
//! use task_store::{MemoryStore, TaskChange, TaskStore};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn TaskStore> = Arc::new(MemoryStore::new());
//! let shout = handler_fn(|ctx: TaskContext| async move {
//!     let text = ctx.params()["text"].as_str().unwrap_or_default().to_uppercase();
//!     ctx.progress(50, "Shouting").await?;
//!     Ok(json!({ "shouted": text }))
//! });
//! let runtime = Runtime::start(
//!     Arc::clone(&store),
//!     Registry::new().register("shout", shout),
//!     RuntimeConfig::default(),
//! )?;
//!
//! let mut feed = store.subscribe();
//! let new = NewTask::new("ada@example.com", "shout").with_params(json!({"text": "hej"}));
//! let task = store.create(new).await?;
//! let finished = loop {
//!     if let TaskChange::Upserted(seen) = feed.recv().await? {
//!         if seen.id == task.id && seen.status.is_terminal() {
//!             break seen;
//!         }
//!     }
//! };
//! assert_eq!(finished.status, TaskStatus::Completed);
//! assert_eq!(finished.result, Some(json!({"shouted": "HEJ"})));
//! runtime.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod backoff;
mod cleaner;
mod clock;
mod config;
mod context;
mod error;
mod handler;
mod humanize;
mod listener;
mod registry;
mod rescuer;
mod rollups;
mod runtime;
mod schedules;
mod search_indexer;
mod shared;
mod slots;
mod supervisor;
pub mod testing;
mod ticks;
mod worker;

pub use backoff::{Backoff, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP};
pub use cleaner::{
    CleanerConfig, DEFAULT_CLEAN_BATCH_SIZE, DEFAULT_CLEAN_INTERVAL, DEFAULT_RETENTION,
};
pub use config::{
    RuntimeConfig, DEFAULT_CANCEL_GRACE, DEFAULT_CLAIM_AHEAD, DEFAULT_CONCURRENCY,
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_LEASE_DURATION, DEFAULT_MAX_RUNNING_PER_USER,
    DEFAULT_POLL_INTERVAL, DEFAULT_SHUTDOWN_GRACE, MAX_CLAIM_AHEAD,
};
pub use context::TaskContext;
pub use error::{HandlerError, ProgressError, RuntimeError, ScheduleError};
pub use handler::{handler_fn, Handler};
pub use registry::{Registry, TaskTypeConfig, DEFAULT_TASK_TIMEOUT};
pub use rescuer::{RescuerConfig, DEFAULT_RESCUE_INTERVAL};
pub use rollups::{
    FoldObserver, RollupConfig, Rollups, DEFAULT_MINUTE_RETENTION, DEFAULT_ROLLUP_BATCH_SIZE,
    DEFAULT_ROLLUP_INTERVAL, DEFAULT_ROLLUP_SETTLE,
};
pub use runtime::{Runtime, RuntimeHandle};
pub use schedules::{
    overlap_action, parse_timezone, plan, Cadence, Clock, OverlapAction, Plan, RunCleanerConfig,
    SchedulerConfig, Schedules, SystemClock, DEFAULT_RUN_CLEAN_BATCH_SIZE,
    DEFAULT_RUN_CLEAN_INTERVAL, DEFAULT_RUN_RETENTION, DEFAULT_SCHEDULER_MAX_SLEEP,
    DEFAULT_SCHEDULER_ON_TIME, MIN_SCHEDULE_INTERVAL,
};
pub use search_indexer::{
    SearchIndexConfig, SearchIndexer, DEFAULT_SEARCH_INDEX_BATCH_SIZE,
    DEFAULT_SEARCH_INDEX_INTERVAL,
};
