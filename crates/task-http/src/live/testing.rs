//! Test support for the live module: a store whose state and change feed the tests control
//! directly (so they can make the hub lag, or change a task without publishing it), an event
//! log likewise (appends that are published or not, a feed that can be made to lag), and
//! helpers to read a response body frame by frame.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use http::Response;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use task_core::{NewTask, Task, TaskId, TaskStatus, UnixMillis};
use task_store::{
    ChangeFeed, ChangeReceiver, ClaimRequest, EventFeed, EventReceiver, Failure, Lease, ListQuery,
    StatusCount, StoreError, TaskChange, TaskEvent, TaskEventLog, TaskPage, TaskStore,
};

use crate::body::Body;

/// A store of ready-made tasks. Only `get`, `counts` and `subscribe` are meaningful; every
/// other operation fails, so a test notices if the live module ever calls one.
pub(crate) struct FakeStore {
    tasks: Mutex<HashMap<TaskId, Task>>,
    feed: ChangeFeed,
    gets: AtomicUsize,
    counts_calls: AtomicUsize,
}

impl FakeStore {
    pub(crate) fn new(feed_capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            tasks: Mutex::new(HashMap::new()),
            feed: ChangeFeed::new(feed_capacity),
            gets: AtomicUsize::new(0),
            counts_calls: AtomicUsize::new(0),
        })
    }

    /// Stores `task` without publishing it, as if its change were lost on the way.
    pub(crate) fn put_silently(&self, task: Task) {
        self.tasks.lock().unwrap().insert(task.id.clone(), task);
    }

    /// Stores `task` and publishes the change, like a committed write.
    pub(crate) fn commit(&self, task: Task) {
        self.put_silently(task.clone());
        self.feed.publish(TaskChange::Upserted(Arc::new(task)));
    }

    /// Deletes the task and publishes the deletion.
    pub(crate) fn delete_task(&self, id: &TaskId) {
        let removed = self.tasks.lock().unwrap().remove(id).unwrap();
        self.feed.publish(TaskChange::Deleted {
            id: id.clone(),
            user_id: removed.user_id,
        });
    }

    /// How many times `get` was called.
    pub(crate) fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    /// How many times `counts` was called.
    pub(crate) fn counts_calls(&self) -> usize {
        self.counts_calls.load(Ordering::SeqCst)
    }
}

fn unsupported<T>() -> task_store::Result<T> {
    Err(StoreError::Backend(
        "not supported by the fake store".into(),
    ))
}

#[async_trait]
impl TaskStore for FakeStore {
    async fn create(&self, _new: NewTask) -> task_store::Result<Task> {
        unsupported()
    }
    async fn create_many(&self, _new: Vec<NewTask>) -> task_store::Result<Vec<Task>> {
        unsupported()
    }
    async fn create_workflow(
        &self,
        _workflow: task_core::NewWorkflow,
    ) -> task_store::Result<(task_core::Workflow, Vec<Task>)> {
        unsupported()
    }
    async fn get_workflow(&self, _id: &str) -> task_store::Result<task_core::Workflow> {
        unsupported()
    }
    async fn dependencies(&self, _id: &TaskId) -> task_store::Result<Vec<task_core::Dependency>> {
        unsupported()
    }

    async fn create_guarded(
        &self,
        _new: NewTask,
        _guard: task_store::CreateGuard,
    ) -> task_store::Result<task_store::Guarded> {
        unsupported()
    }
    async fn create_workflow_guarded(
        &self,
        _workflow: task_core::NewWorkflow,
        _claim: task_store::IdempotencyClaim,
    ) -> task_store::Result<task_store::GuardedWorkflow> {
        unsupported()
    }
    async fn get(&self, id: &TaskId) -> task_store::Result<Task> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let task = self.tasks.lock().unwrap().get(id).cloned();
        task.ok_or(StoreError::NotFound)
    }
    async fn list(&self, _query: &ListQuery) -> task_store::Result<TaskPage> {
        unsupported()
    }
    async fn claim(&self, _request: &ClaimRequest) -> task_store::Result<Vec<Task>> {
        unsupported()
    }
    async fn heartbeat(&self, _lease: &Lease, _until: UnixMillis) -> task_store::Result<Task> {
        unsupported()
    }
    async fn update_progress(
        &self,
        _lease: &Lease,
        _progress: i64,
        _description: Option<String>,
    ) -> task_store::Result<Task> {
        unsupported()
    }
    async fn complete(&self, _lease: &Lease, _result: Value) -> task_store::Result<Task> {
        unsupported()
    }
    async fn fail(&self, _lease: &Lease, _failure: Failure) -> task_store::Result<Task> {
        unsupported()
    }
    async fn request_cancel(&self, _id: &TaskId) -> task_store::Result<Task> {
        unsupported()
    }
    async fn cancel(&self, _id: &TaskId, _lease: Option<&Lease>) -> task_store::Result<Task> {
        unsupported()
    }
    async fn retry(&self, _id: &TaskId, _run_at: Option<UnixMillis>) -> task_store::Result<Task> {
        unsupported()
    }
    async fn release(&self, _lease: &Lease) -> task_store::Result<Task> {
        unsupported()
    }
    async fn postpone(
        &self,
        _lease: &Lease,
        _until: UnixMillis,
        _description: Option<String>,
    ) -> task_store::Result<Task> {
        unsupported()
    }
    async fn rescue_expired(&self, _now: UnixMillis) -> task_store::Result<Vec<Task>> {
        unsupported()
    }
    async fn delete(&self, _id: &TaskId) -> task_store::Result<()> {
        unsupported()
    }
    async fn purge_finished(
        &self,
        _before: UnixMillis,
        _limit: usize,
    ) -> task_store::Result<usize> {
        unsupported()
    }
    async fn count_unfinished(&self, _user_id: &str) -> task_store::Result<u64> {
        unsupported()
    }
    async fn counts(&self) -> task_store::Result<Vec<StatusCount>> {
        self.counts_calls.fetch_add(1, Ordering::SeqCst);
        let mut counts: HashMap<(String, TaskStatus), u64> = HashMap::new();
        for task in self.tasks.lock().unwrap().values() {
            *counts
                .entry((task.task_type.clone(), task.status))
                .or_default() += 1;
        }
        let mut rows: Vec<StatusCount> = counts
            .into_iter()
            .map(|((task_type, status), count)| StatusCount {
                task_type,
                status,
                count,
            })
            .collect();
        rows.sort_by(|a, b| (&a.task_type, a.status).cmp(&(&b.task_type, b.status)));
        Ok(rows)
    }
    async fn ping(&self) -> task_store::Result<()> {
        Ok(())
    }
    fn subscribe(&self) -> ChangeReceiver {
        self.feed.subscribe()
    }
}

/// An event log whose appends the tests make directly: [`FakeLog::append`] stores and
/// publishes, [`FakeLog::store_silently`] only stores (a feed that has not delivered yet).
#[derive(Debug)]
pub(crate) struct FakeLog {
    events: Mutex<HashMap<TaskId, Vec<TaskEvent>>>,
    feed: EventFeed,
    reads: AtomicUsize,
}

impl FakeLog {
    pub(crate) fn new(feed_capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            events: Mutex::new(HashMap::new()),
            feed: EventFeed::new(feed_capacity),
            reads: AtomicUsize::new(0),
        })
    }

    /// Stores the task's next event without publishing it.
    pub(crate) fn store_silently(&self, id: &TaskId, item: Value) -> TaskEvent {
        let mut events = self.events.lock().unwrap();
        let log = events.entry(id.clone()).or_default();
        let event = TaskEvent {
            task_id: id.clone(),
            user_id: "ann@example.com".to_owned(),
            seq: log.len() as i64 + 1,
            attempt: 1,
            item,
            created_at: 1_000,
        };
        log.push(event.clone());
        event
    }

    /// Stores and publishes the task's next event, like a committed append.
    pub(crate) fn append(&self, id: &TaskId, item: Value) {
        let event = self.store_silently(id, item);
        self.feed.publish(event);
    }

    /// How many times the log was read.
    pub(crate) fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TaskEventLog for FakeLog {
    async fn append_event(&self, _lease: &Lease, _item: Value) -> task_store::Result<TaskEvent> {
        unsupported()
    }
    async fn events_after(&self, id: &TaskId, after: i64) -> task_store::Result<Vec<TaskEvent>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let events = self.events.lock().unwrap();
        Ok(events
            .get(id)
            .map(|log| log.iter().filter(|e| e.seq > after).cloned().collect())
            .unwrap_or_default())
    }
    fn subscribe_events(&self) -> EventReceiver {
        self.feed.subscribe()
    }
}

/// A task numbered `n` (its id is `task_<n>_abcdef`) owned by `user`, at `version`.
pub(crate) fn task(n: u32, user: &str, version: i64, status: TaskStatus) -> Task {
    let terminal = status.is_terminal();
    Task {
        id: format!("task_{n}_abcdef").parse().unwrap(),
        user_id: user.to_owned(),
        task_type: "generation".to_owned(),
        status,
        label: None,
        description: Some(format!("version {version}")),
        progress: version.min(100),
        total: 100,
        result: (status == TaskStatus::Completed).then(|| json!({"questions": 10})),
        error: (status == TaskStatus::Failed).then(|| "boom".to_owned()),
        params: json!({}),
        attempt: 1,
        max_attempts: 3,
        run_at: 1_000,
        lease_owner: None,
        lease_token: None,
        lease_expires_at: None,
        cancel_requested: false,
        version,
        created_at: 1_000,
        updated_at: 1_000 + version,
        started_at: Some(1_000),
        completed_at: terminal.then_some(4_000),
        waiting_for: 0,
        workflow_id: None,
        priority: task_core::Priority::Normal,
    }
}

/// Reads a response body frame by frame.
pub(crate) struct Reader {
    body: Body,
}

impl Reader {
    pub(crate) fn new(response: Response<Body>) -> Self {
        Self {
            body: response.into_body(),
        }
    }

    /// The next data frame as text, or `None` when the body ended.
    pub(crate) async fn next(&mut self) -> Option<String> {
        let frame = self.body.frame().await?.unwrap();
        let data = frame.into_data().unwrap();
        Some(String::from_utf8(data.to_vec()).unwrap())
    }

    /// The next frame, which must arrive: ends the test if the body ended.
    pub(crate) async fn expect(&mut self) -> String {
        self.next().await.expect("the stream ended early")
    }
}

/// The `id:` of every event in a chunk of SSE text, as written (`<version>` or
/// `<version>.<seq>`); events without one are left out.
pub(crate) fn ids(chunk: &str) -> Vec<String> {
    chunk
        .split("\n\n")
        .filter_map(|block| block.lines().find_map(|line| line.strip_prefix("id: ")))
        .map(str::to_owned)
        .collect()
}

/// The `data:` payloads of a chunk of SSE text, as JSON, with their `id:` (if any).
pub(crate) fn events(chunk: &str) -> Vec<(Option<i64>, Value)> {
    chunk
        .split("\n\n")
        .filter(|block| block.lines().any(|line| line.starts_with("data: ")))
        .map(|block| {
            let id = block
                .lines()
                .find_map(|line| line.strip_prefix("id: "))
                // A `<version>.<seq>` id counts as its version here; see [`ids`] for both.
                .map(|id| id.split('.').next().unwrap().parse().unwrap());
            let data: Vec<&str> = block
                .lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .collect();
            (id, serde_json::from_str(&data.join("\n")).unwrap())
        })
        .collect()
}
