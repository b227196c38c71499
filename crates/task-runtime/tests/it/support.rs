//! Shared test tools: both stores, a macro that runs a scenario on each, fast runtime settings,
//! and waits on the change feed with a bounded timeout (never a sleep).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use task_core::{NewTask, Task, TaskId, TaskStatus, UnixMillis};
use task_runtime::{Backoff, RescuerConfig, RuntimeConfig, TaskTypeConfig};
use task_store::{
    ChangeFeed, ChangeReceiver, ClaimRequest, Failure, Lease, ListQuery, MemoryStore, SqliteStore,
    StatusCount, StoreError, TaskChange, TaskPage, TaskStore,
};
use tempfile::TempDir;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

/// The longest any test waits for something that should happen. Generous, because a loaded
/// 2-core CI machine can be slow; a wait that expires fails the test.
pub const WAIT: Duration = Duration::from_secs(15);

/// A store to test against, with the temporary directory its file lives in.
pub struct Harness {
    pub store: Arc<dyn TaskStore>,
    _dir: Option<TempDir>,
}

pub fn memory() -> Harness {
    Harness {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
    }
}

pub fn sqlite() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("tasks.db")).expect("open sqlite");
    Harness {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// Runs each named scenario (an `async fn(Harness)`) once on `MemoryStore` and once on
/// `SqliteStore`, as the tests `<scenario>::memory` and `<scenario>::sqlite`.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$scenario($crate::support::memory()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario($crate::support::sqlite()).await
            }
        }
    )*};
}
pub(crate) use on_both_stores;

/// Short durations so every scenario finishes in well under a second of waiting, with leases
/// long enough that no lease expires by accident on a slow machine.
pub fn config() -> RuntimeConfig {
    RuntimeConfig {
        concurrency: 4,
        poll_interval: Duration::from_millis(50),
        lease_duration: Duration::from_secs(5),
        heartbeat_interval: Duration::from_secs(1),
        cancel_grace: Duration::from_millis(300),
        shutdown_grace: Duration::from_secs(2),
        rescuer: RescuerConfig {
            interval: Duration::from_millis(100),
        },
        default_task_type: fast_retries(),
        ..RuntimeConfig::default()
    }
}

/// The default task type with backoff in milliseconds instead of seconds.
pub fn fast_retries() -> TaskTypeConfig {
    TaskTypeConfig {
        backoff: Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(40),
        },
        ..TaskTypeConfig::default()
    }
}

pub use task_core::now_millis;

pub async fn create(store: &dyn TaskStore, task_type: &str, params: Value) -> Task {
    store
        .create(NewTask::new("ada@example.com", task_type).with_params(params))
        .await
        .expect("create task")
}

/// Runs `future` with the [`WAIT`] bound; `what` names it in the failure.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    task_store::testkit::within(WAIT, what, future).await
}

/// Waits until task `id` satisfies `done`, watching the change feed (subscribed before the
/// first read, so no change slips between them).
pub async fn wait_for(
    store: &dyn TaskStore,
    id: &TaskId,
    what: &str,
    done: impl Fn(&Task) -> bool,
) -> Task {
    task_store::testkit::wait_for_task(store, id, WAIT, what, done).await
}

/// Waits until task `id` reaches `status`.
pub async fn wait_status(store: &dyn TaskStore, id: &TaskId, status: TaskStatus) -> Task {
    wait_for(store, id, &format!("{id} to be {status}"), |task| {
        task.status == status
    })
    .await
}

/// Every state tasks went through, as seen on the feed from the moment of the call.
pub struct History {
    seen: watch::Receiver<Vec<Task>>,
    _collector: tokio::task::JoinHandle<()>,
}

impl History {
    pub fn record(store: &dyn TaskStore) -> Self {
        let (sink, seen) = watch::channel(Vec::new());
        let mut feed = store.subscribe();
        let collector = tokio::spawn(async move {
            loop {
                match feed.recv().await {
                    Ok(TaskChange::Upserted(task)) => {
                        sink.send_modify(|seen| seen.push((*task).clone()))
                    }
                    Ok(TaskChange::Deleted { .. }) => {}
                    Err(RecvError::Lagged(missed)) => panic!("history missed {missed} changes"),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Self {
            seen,
            _collector: collector,
        }
    }

    /// The recorded states of task `id`, in commit order, up to and including its first
    /// terminal state (waiting for the recorder to see it, since it runs on its own task).
    pub async fn of(&self, id: &TaskId) -> Vec<Task> {
        let mut seen = self.seen.clone();
        let ended = |tasks: &Vec<Task>| {
            tasks
                .iter()
                .any(|task| &task.id == id && task.status.is_terminal())
        };
        within("the history to record the end", seen.wait_for(ended))
            .await
            .expect("the recorder lives in self");
        let tasks = seen.borrow();
        let mut states: Vec<Task> = Vec::new();
        for task in tasks.iter().filter(|task| &task.id == id) {
            states.push(task.clone());
            if task.status.is_terminal() {
                break;
            }
        }
        states
    }
}

/// A gate handlers wait at until the test opens it.
#[derive(Clone)]
pub struct Gate {
    open: Arc<watch::Sender<bool>>,
}

impl Gate {
    pub fn new() -> Self {
        Self {
            open: Arc::new(watch::channel(false).0),
        }
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }

    pub async fn passed(&self) {
        let mut open = self.open.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = open.wait_for(|open| *open).await;
    }
}

/// Tells the test that something happened in a handler, with a value.
pub fn signal<T>() -> (mpsc::UnboundedSender<T>, Signals<T>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (sender, Signals(receiver))
}

pub struct Signals<T>(mpsc::UnboundedReceiver<T>);

impl<T> Signals<T> {
    pub async fn next(&mut self, what: &str) -> T {
        within(what, self.0.recv())
            .await
            .unwrap_or_else(|| panic!("signal channel for {what} closed"))
    }

    /// Every signal already sent and not yet read.
    pub fn drain(&mut self) -> Vec<T> {
        let mut sent = Vec::new();
        while let Ok(value) = self.0.try_recv() {
            sent.push(value);
        }
        sent
    }
}

/// Sends on drop: proves a handler future was dropped (aborted) rather than left running.
pub struct DropSignal(pub Option<mpsc::UnboundedSender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(());
        }
    }
}

/// Counts calls.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The store's tasks in `status`.
pub async fn in_status(store: &dyn TaskStore, status: TaskStatus) -> Vec<Task> {
    store
        .list(&ListQuery {
            statuses: vec![status],
            ..ListQuery::default()
        })
        .await
        .expect("list tasks")
        .tasks
}

/// A store wrapper for what the runtime cannot be asked directly: it counts finished claim
/// queries (so a test knows the worker has gone idle), and can silence the change feed, like a
/// store shared with another process (the runtime must then learn of cancels through
/// heartbeats and of new tasks through polling).
pub struct WrappedStore {
    pub inner: Arc<dyn TaskStore>,
    quiet: Option<ChangeFeed>,
    claims: watch::Sender<usize>,
    /// Claims sent and not yet answered to the runtime.
    in_flight: watch::Sender<usize>,
    most_in_flight: AtomicUsize,
    limits: std::sync::Mutex<Vec<usize>>,
    /// Answers of every claim after the first wait here (the query itself has run).
    held_answers: Option<Gate>,
}

impl WrappedStore {
    /// Passes the feed through.
    pub fn observed(inner: Arc<dyn TaskStore>) -> Self {
        Self {
            inner,
            quiet: None,
            claims: watch::channel(0).0,
            in_flight: watch::channel(0).0,
            most_in_flight: AtomicUsize::new(0),
            limits: std::sync::Mutex::default(),
            held_answers: None,
        }
    }

    /// Runs every claim after the first at once but hands its answer back only once `gate`
    /// opens, so the runtime's claims pile up in flight in the order they were sent.
    pub fn holding_answers(inner: Arc<dyn TaskStore>, gate: Gate) -> Self {
        Self {
            held_answers: Some(gate),
            ..Self::observed(inner)
        }
    }

    /// Waits until `count` claims are in flight at once.
    pub async fn claims_in_flight(&self, count: usize) {
        let mut in_flight = self.in_flight.subscribe();
        within("claims in flight", in_flight.wait_for(|now| *now >= count))
            .await
            .expect("the sender lives in self");
    }

    /// The most claims that were in flight at once.
    pub fn most_in_flight(&self) -> usize {
        self.most_in_flight.load(Ordering::SeqCst)
    }

    /// The limit of every claim sent so far.
    pub fn claim_limits(&self) -> Vec<usize> {
        self.limits.lock().unwrap().clone()
    }

    /// Gives the runtime a feed that never says anything.
    pub fn quiet(inner: Arc<dyn TaskStore>) -> Self {
        Self {
            quiet: Some(ChangeFeed::new(1)),
            ..Self::observed(inner)
        }
    }

    /// Waits until `count` claim queries have returned.
    pub async fn claims_returned(&self, count: usize) {
        let mut claims = self.claims.subscribe();
        within("claim queries", claims.wait_for(|done| *done >= count))
            .await
            .expect("the sender lives in self");
    }
}

#[async_trait]
impl TaskStore for WrappedStore {
    async fn create(&self, new: NewTask) -> task_store::Result<Task> {
        self.inner.create(new).await
    }
    async fn create_many(&self, new: Vec<NewTask>) -> task_store::Result<Vec<Task>> {
        self.inner.create_many(new).await
    }
    async fn create_workflow(
        &self,
        workflow: task_core::NewWorkflow,
    ) -> task_store::Result<(task_core::Workflow, Vec<Task>)> {
        self.inner.create_workflow(workflow).await
    }
    async fn get_workflow(&self, id: &str) -> task_store::Result<task_core::Workflow> {
        self.inner.get_workflow(id).await
    }
    async fn dependencies(&self, id: &TaskId) -> task_store::Result<Vec<task_core::Dependency>> {
        self.inner.dependencies(id).await
    }

    async fn create_guarded(
        &self,
        new: NewTask,
        guard: task_store::CreateGuard,
    ) -> task_store::Result<task_store::Guarded> {
        self.inner.create_guarded(new, guard).await
    }
    async fn create_workflow_guarded(
        &self,
        workflow: task_core::NewWorkflow,
        claim: task_store::IdempotencyClaim,
    ) -> task_store::Result<task_store::GuardedWorkflow> {
        self.inner.create_workflow_guarded(workflow, claim).await
    }
    async fn get(&self, id: &TaskId) -> task_store::Result<Task> {
        self.inner.get(id).await
    }
    async fn list(&self, query: &ListQuery) -> task_store::Result<TaskPage> {
        self.inner.list(query).await
    }
    async fn claim(&self, request: &ClaimRequest) -> task_store::Result<Vec<Task>> {
        let sent_before = {
            let mut limits = self.limits.lock().unwrap();
            limits.push(request.limit);
            limits.len() - 1
        };
        self.in_flight.send_modify(|now| {
            *now += 1;
            self.most_in_flight.fetch_max(*now, Ordering::SeqCst);
        });
        let claimed = self.inner.claim(request).await;
        if let Some(gate) = self.held_answers.as_ref().filter(|_| sent_before > 0) {
            gate.passed().await;
        }
        self.in_flight.send_modify(|now| *now -= 1);
        self.claims.send_modify(|count| *count += 1);
        claimed
    }
    async fn heartbeat(&self, lease: &Lease, until: UnixMillis) -> task_store::Result<Task> {
        self.inner.heartbeat(lease, until).await
    }
    async fn update_progress(
        &self,
        lease: &Lease,
        progress: i64,
        description: Option<String>,
    ) -> task_store::Result<Task> {
        self.inner
            .update_progress(lease, progress, description)
            .await
    }
    async fn complete(&self, lease: &Lease, result: Value) -> task_store::Result<Task> {
        self.inner.complete(lease, result).await
    }
    async fn fail(&self, lease: &Lease, failure: Failure) -> task_store::Result<Task> {
        self.inner.fail(lease, failure).await
    }
    async fn request_cancel(&self, id: &TaskId) -> task_store::Result<Task> {
        self.inner.request_cancel(id).await
    }
    async fn cancel(&self, id: &TaskId, lease: Option<&Lease>) -> task_store::Result<Task> {
        self.inner.cancel(id, lease).await
    }
    async fn retry(&self, id: &TaskId, run_at: Option<UnixMillis>) -> task_store::Result<Task> {
        self.inner.retry(id, run_at).await
    }
    async fn release(&self, lease: &Lease) -> task_store::Result<Task> {
        self.inner.release(lease).await
    }
    async fn postpone(
        &self,
        lease: &Lease,
        until: UnixMillis,
        description: Option<String>,
    ) -> task_store::Result<Task> {
        self.inner.postpone(lease, until, description).await
    }
    async fn rescue_expired(&self, now: UnixMillis) -> task_store::Result<Vec<Task>> {
        self.inner.rescue_expired(now).await
    }
    async fn delete(&self, id: &TaskId) -> task_store::Result<()> {
        self.inner.delete(id).await
    }
    async fn purge_finished(&self, before: UnixMillis, limit: usize) -> task_store::Result<usize> {
        self.inner.purge_finished(before, limit).await
    }
    async fn count_unfinished(&self, user_id: &str) -> task_store::Result<u64> {
        self.inner.count_unfinished(user_id).await
    }
    async fn counts(&self) -> task_store::Result<Vec<StatusCount>> {
        self.inner.counts().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    fn subscribe(&self) -> ChangeReceiver {
        match &self.quiet {
            Some(silent) => silent.subscribe(),
            None => self.inner.subscribe(),
        }
    }
}
