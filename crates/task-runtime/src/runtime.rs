//! [`Runtime::start`] wires the worker, the feed listener, the rescuer and the cleaner onto the
//! current tokio runtime; [`RuntimeHandle::shutdown`] takes them down gracefully.

use std::sync::Arc;

use task_store::TaskStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::shared::Shared;
use crate::{cleaner, listener, rescuer, worker, Registry, RuntimeConfig, RuntimeError};

/// The worker runtime. See the crate documentation for how it behaves.
#[derive(Debug)]
pub struct Runtime;

impl Runtime {
    /// Validates `config` and `registry` and starts working on the current tokio runtime: the
    /// worker claims due tasks of the registered types right away.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`], [`RuntimeError::NoHandlers`],
    /// [`RuntimeError::InvalidTaskType`], [`RuntimeError::DuplicateTaskType`], or
    /// [`RuntimeError::NoAsyncRuntime`] when called outside a tokio runtime.
    pub fn start(
        store: Arc<dyn TaskStore>,
        registry: Registry,
        config: RuntimeConfig,
    ) -> Result<RuntimeHandle, RuntimeError> {
        config.validate()?;
        let types = registry.resolve(&config.default_task_type)?;
        let tokio =
            tokio::runtime::Handle::try_current().map_err(|_| RuntimeError::NoAsyncRuntime)?;
        // Subscribe before the first claim, so a task created in between still wakes us.
        let feed = store.subscribe();
        let rescuer_config = config.rescuer;
        let cleaner_config = config.cleaner;
        let shared = Arc::new(Shared::new(Arc::clone(&store), config, types));
        let listener_stop = CancellationToken::new();
        let mut task_types: Vec<&str> = shared.types.keys().map(String::as_str).collect();
        task_types.sort_unstable();
        tracing::info!(
            worker_id = %shared.config.worker_id,
            concurrency = shared.config.concurrency,
            task_types = ?task_types,
            "runtime started"
        );
        Ok(RuntimeHandle {
            listener: tokio.spawn(listener::run(
                Arc::clone(&shared),
                feed,
                listener_stop.clone(),
            )),
            worker: tokio.spawn(worker::run(Arc::clone(&shared))),
            rescuer: tokio.spawn(rescuer::run(
                Arc::clone(&store),
                rescuer_config,
                shared.stop.clone(),
            )),
            cleaner: tokio.spawn(cleaner::run(store, cleaner_config, shared.stop.clone())),
            listener_stop,
            shared,
        })
    }
}

/// A running runtime. Call [`RuntimeHandle::shutdown`] to stop it gracefully; dropping it stops
/// claiming at once and releases running tasks without waiting.
pub struct RuntimeHandle {
    shared: Arc<Shared>,
    worker: JoinHandle<()>,
    listener: JoinHandle<()>,
    rescuer: JoinHandle<()>,
    cleaner: JoinHandle<()>,
    listener_stop: CancellationToken,
}

impl std::fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("worker_id", &self.shared.config.worker_id)
            .field("running", &self.shared.running_count())
            .finish_non_exhaustive()
    }
}

impl RuntimeHandle {
    /// The worker id stored as `lease_owner` on the tasks this runtime holds.
    pub fn worker_id(&self) -> &str {
        &self.shared.config.worker_id
    }

    /// How many tasks this runtime holds now: running, or claimed ahead and waiting for a
    /// slot (see [`RuntimeConfig::claim_ahead`]).
    pub fn running(&self) -> usize {
        self.shared.running_count()
    }

    /// Stops gracefully: no new claims; running handlers get `shutdown_grace` to finish; those
    /// still running are then cancelled and their tasks released (back to `pending`, the
    /// attempt not counted) so another worker takes them at once. Returns when no task of this
    /// runtime is left `processing` (unless the store refused the final writes, which the log
    /// reports; the rescuer then returns those tasks when their leases expire).
    pub async fn shutdown(mut self) {
        let shared = Arc::clone(&self.shared);
        tracing::info!(worker_id = %shared.config.worker_id, running = shared.running_count(), "shutting down: no new claims");
        shared.stop.cancel();
        // The worker may be inside a claim; once it returns, every claimed task has a
        // supervisor, so closing the tracker after it cannot miss one.
        let _ = (&mut self.worker).await;
        shared.tracker.close();
        let grace = shared.config.shutdown_grace;
        if tokio::time::timeout(grace, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::info!(
                running = shared.running_count(),
                grace = ?grace,
                "shutdown grace over: cancelling and releasing running tasks"
            );
            shared.hard_stop.cancel();
            shared.tracker.wait().await;
        }
        self.listener_stop.cancel();
        let _ = (&mut self.listener).await;
        let _ = (&mut self.rescuer).await;
        let _ = (&mut self.cleaner).await;
        tracing::info!(worker_id = %shared.config.worker_id, "runtime stopped");
    }
}

impl Drop for RuntimeHandle {
    fn drop(&mut self) {
        // Without a graceful shutdown, stop at once: supervisors release their tasks in the
        // background for as long as the tokio runtime lives.
        self.shared.stop.cancel();
        self.shared.hard_stop.cancel();
        self.listener_stop.cancel();
    }
}
