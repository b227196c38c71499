//! The live hub: ONE task reads the store's change feed and routes each change to the streams
//! that watch it, so an idle subscriber costs no database query and no wake-up.
//!
//! Per-task streams share a `tokio::sync::watch` per watched task holding the newest state,
//! already encoded as SSE bytes. A slow reader therefore never queues anything: when it reads
//! again it gets the newest state and skips what it missed. List streams share one bounded
//! `broadcast` channel per user (and one for "everyone"); a reader that falls behind is told to
//! refetch.
//!
//! Partial outputs (`partial` events) are routed the same way: one task reads the event log's
//! feed (started by the first stream that carries partials) and hands each event to the
//! subscribers of its task only, through a small per-task `broadcast` that exists while a
//! partial-carrying stream watches the task. Partials are never coalesced (each is a piece of
//! the result); a subscriber that falls behind that channel re-reads the log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

// No code panics while holding these locks, and the maps stay consistent even if one did.
use task_core::sync::lock;

use bytes::Bytes;
use serde::Serialize;
use task_core::{Task, TaskEvent, TaskId};
use task_store::{ChangeReceiver, EventReceiver, StoreError, TaskChange, TaskEventLog, TaskStore};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::encode::{freeze, write_json_event};
use super::partials::Partial;
use super::sink::DirectSink;
use super::StreamScope;
use sinks::FinalLog;

mod sinks;

/// Messages buffered per user's list channel before a reader that does not keep up is told to
/// resync. The buffer is shared by all of that user's list streams, not paid per stream.
pub const USER_CHANNEL_CAPACITY: usize = 128;
/// Messages buffered for the superusers' "all tasks" channel.
pub const EVERYONE_CHANNEL_CAPACITY: usize = 1024;
/// Partial outputs buffered per watched task before a subscriber that does not keep up re-reads
/// the task's event log. Shared by the task's subscribers; a generation stores a few dozen
/// partials over seconds, so a reader this far behind is rare. Small because the buffer exists
/// for every watched task whose streams carry partials, idle ones included (about 40 bytes a
/// slot), while falling behind costs only one read of the log.
pub const PARTIAL_CHANNEL_CAPACITY: usize = 8;

/// What a task's partial channel carries: the next partial, or `None` when the hub itself
/// missed events of the log's feed and every subscriber must re-read the log.
pub(crate) type PartialNote = Option<Arc<Partial>>;

/// A subscription to one task's partial outputs.
pub(crate) type PartialReceiver = broadcast::Receiver<PartialNote>;

/// The hub's routes to the streams of one watched task.
#[derive(Debug)]
struct Watched {
    /// The newest state, shared by every stream of the task.
    state: watch::Sender<TaskState>,
    /// Partial outputs, while at least one stream that carries them watches the task.
    partials: Option<broadcast::Sender<PartialNote>>,
    /// The sockets of the task's direct-path streams, which the hub writes itself
    /// (`super::sink`); those streams do not wait on `state`.
    sinks: Vec<Arc<DirectSink>>,
    /// The task's log as it stood at its final version, read once for all of its streams
    /// (`sinks::LiveHub::final_partials`).
    final_log: Option<(i64, FinalLog)>,
}

/// The newest known state of a watched task, shared by all of its streams.
#[derive(Debug, Clone)]
pub(crate) enum TaskState {
    /// The task exists at `version`; `frame` holds its events (`TaskEvent::for_task`), the
    /// last of them with `id: <version>`, ready to write.
    Present {
        /// The task's version, the SSE id.
        version: i64,
        /// Whether the task is finished, so streams end after `frame`.
        terminal: bool,
        /// The encoded events.
        frame: Bytes,
    },
    /// The task was deleted; its streams end with an error event.
    Deleted,
}

impl TaskState {
    /// The state of `task` with its events encoded once for every subscriber.
    ///
    /// # Errors
    /// Only if the task cannot be serialised as JSON, which a valid `Task` never fails.
    pub(crate) fn of(task: &Task) -> Result<Self, serde_json::Error> {
        let mut out = Vec::with_capacity(512);
        let events = TaskEvent::for_task(task);
        let last = events.len() - 1;
        for (index, event) in events.iter().enumerate() {
            // Only the version's last event carries the id. A failed or cancelled task's final
            // `update` and its `error` share a version; were both `id: <version>`, a client cut
            // between them would resume past the `error` and never see it. Without an id on the
            // `update`, that client resumes from the version before and gets both again.
            let id = (index == last).then_some(task.version);
            write_json_event(&mut out, id, event)?;
        }
        // The frame lives as long as the task is watched, and growing doubled the buffer: an
        // update's frame of ~600 bytes held 1,024 for every watched task.
        out.shrink_to_fit();
        Ok(TaskState::Present {
            version: task.version,
            terminal: task.status.is_terminal(),
            frame: freeze(out),
        })
    }

    /// Whether `self` is newer than `current`. Versions only grow and a deletion is final, so
    /// replacing only with newer states keeps every stream's ids increasing whatever order
    /// the feed and re-reads arrive in.
    fn supersedes(&self, current: &TaskState) -> bool {
        match (self, current) {
            (_, TaskState::Deleted) => false,
            (TaskState::Deleted, _) => true,
            (TaskState::Present { version: new, .. }, TaskState::Present { version: old, .. }) => {
                new > old
            }
        }
    }

    /// The task version this state shows; `None` once the task is deleted.
    fn version(&self) -> Option<i64> {
        match self {
            TaskState::Present { version, .. } => Some(*version),
            TaskState::Deleted => None,
        }
    }
}

/// One message of a list stream, serialised as the stream's `data`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ListEvent<'a> {
    /// A task of the scope was created or changed.
    Update { task: &'a Task },
    /// A task of the scope was deleted.
    Deleted {
        #[serde(rename = "taskId")]
        task_id: &'a TaskId,
    },
}

/// Encodes one list-stream message. List streams carry no `id:`: the per-task version is not
/// an order across tasks, so a reconnecting client refetches its list instead of resuming.
fn list_frame(event: &ListEvent<'_>) -> Result<Bytes, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    write_json_event(&mut out, None, event)?;
    Ok(freeze(out))
}

/// The frame that tells a list stream's client it missed changes and must refetch its list:
/// `{"type":"resync"}`.
pub(crate) fn resync_frame() -> Bytes {
    Bytes::from_static(b"data: {\"type\":\"resync\"}\n\n")
}

/// Routes committed task changes to live streams. Create one per server with
/// [`LiveHub::start`]; hand it to [`super::task_stream`] and [`super::tasks_stream`].
pub struct LiveHub {
    store: Arc<dyn TaskStore>,
    shutdown: CancellationToken,
    /// One watch per task that has at least one open stream.
    tasks: Mutex<HashMap<TaskId, Watched>>,
    /// The event log, once its feed is routed (by the first stream that carries partials).
    partial_routing: OnceLock<Arc<dyn TaskEventLog>>,
    /// One list channel per user that has at least one open list stream.
    users: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
    everyone: broadcast::Sender<Bytes>,
    open_streams: AtomicUsize,
    lag_recoveries: AtomicU64,
    hub_writes: AtomicU64,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("open_streams", &self.open_streams())
            .field("watched_tasks", &self.watched_tasks())
            .field("lag_recoveries", &self.lag_recoveries())
            .finish_non_exhaustive()
    }
}

impl LiveHub {
    /// Subscribes to `store`'s change feed and spawns the routing task on the current Tokio
    /// runtime. The task, and every stream made from this hub, ends when `shutdown` fires.
    ///
    /// # Panics
    /// When called outside a Tokio runtime (like `tokio::spawn`).
    pub fn start(store: Arc<dyn TaskStore>, shutdown: CancellationToken) -> Arc<LiveHub> {
        // Subscribing before the hub exists means no change committed after `start` returns
        // can be missed.
        let feed = store.subscribe();
        let hub = Arc::new(LiveHub {
            store,
            shutdown: shutdown.clone(),
            tasks: Mutex::new(HashMap::new()),
            partial_routing: OnceLock::new(),
            users: Mutex::new(HashMap::new()),
            everyone: broadcast::channel(EVERYONE_CHANNEL_CAPACITY).0,
            open_streams: AtomicUsize::new(0),
            lag_recoveries: AtomicU64::new(0),
            hub_writes: AtomicU64::new(0),
        });
        tokio::spawn(route_changes(Arc::downgrade(&hub), feed, shutdown));
        hub
    }

    /// How many live streams (per-task and list) are open now.
    pub fn open_streams(&self) -> usize {
        self.open_streams.load(Ordering::Relaxed)
    }

    /// How many tasks have at least one open stream.
    pub fn watched_tasks(&self) -> usize {
        lock(&self.tasks).len()
    }

    /// How many times the hub fell behind the change feed (and re-read the watched tasks) or
    /// the task event feed (and had every partial subscriber re-read the log).
    pub fn lag_recoveries(&self) -> u64 {
        self.lag_recoveries.load(Ordering::Relaxed)
    }

    /// How many frames the hub wrote to direct-path task streams itself, without waking their
    /// tasks (`super::sink`).
    pub fn hub_writes(&self) -> u64 {
        self.hub_writes.load(Ordering::Relaxed)
    }

    /// The token whose cancellation ends every stream of this hub.
    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Counts a stream as open until the returned ticket is dropped.
    pub(crate) fn open_stream(self: &Arc<Self>) -> OpenStream {
        self.open_streams.fetch_add(1, Ordering::Relaxed);
        OpenStream { hub: self.clone() }
    }

    /// Starts watching `snapshot`'s task. The watch holds the newer of `snapshot` and what
    /// the hub already knew. The first watcher of a task triggers one re-read, because a
    /// change committed between the caller's read of `snapshot` and this call was routed
    /// before the watch existed.
    pub(crate) fn watch_task(self: &Arc<Self>, snapshot: &Task, state: TaskState) -> TaskWatch {
        let mut tasks = lock(&self.tasks);
        let (receiver, first_watcher) = match tasks.get(&snapshot.id) {
            Some(watched) => {
                if offer(&watched.state, state.clone()) {
                    self.write_sinks(&snapshot.id, &watched.route(), &state);
                }
                (watched.state.subscribe(), false)
            }
            None => {
                let (sender, receiver) = watch::channel(state);
                tasks.insert(
                    snapshot.id.clone(),
                    Watched {
                        state: sender,
                        partials: None,
                        sinks: Vec::new(),
                        final_log: None,
                    },
                );
                (receiver, true)
            }
        };
        drop(tasks);
        if first_watcher {
            self.spawn_reread(vec![snapshot.id.clone()]);
        }
        TaskWatch {
            hub: self.clone(),
            id: snapshot.id.clone(),
            receiver: Some(receiver),
        }
    }

    /// Subscribes to the partial outputs of a task the caller watches (`watch` keeps its
    /// route alive). The first call starts routing `log`'s feed; the subscription exists
    /// before this returns, so every event appended after it is delivered, and one appended
    /// before is in the log when the caller reads it.
    pub(crate) fn watch_partials(
        self: &Arc<Self>,
        watch: &TaskWatch,
        log: &Arc<dyn TaskEventLog>,
    ) -> PartialReceiver {
        self.partial_routing.get_or_init(|| {
            // Subscribed here, before any stream reads the log: nothing appended from now on
            // can be missed.
            let feed = log.subscribe_events();
            tokio::spawn(route_partials(
                Arc::downgrade(self),
                feed,
                self.shutdown.clone(),
            ));
            log.clone()
        });
        let mut tasks = lock(&self.tasks);
        match tasks.get_mut(&watch.id) {
            Some(watched) => watched
                .partials
                .get_or_insert_with(|| broadcast::channel(PARTIAL_CHANNEL_CAPACITY).0)
                .subscribe(),
            // Unreachable while `watch` holds its receiver; a closed channel then ends the
            // live feed, and the stream still catches up from the log.
            None => broadcast::channel(1).1,
        }
    }

    /// Hands one appended event to its task's partial subscribers, encoded once for all.
    fn route_partial(&self, event: &task_store::TaskEvent) {
        let sender = {
            let mut tasks = lock(&self.tasks);
            let Some(watched) = tasks.get_mut(&event.task_id) else {
                return;
            };
            match &watched.partials {
                // The partial-carrying streams of the task ended; the channel goes with them.
                Some(sender) if sender.receiver_count() == 0 => {
                    watched.partials = None;
                    return;
                }
                Some(sender) => sender.clone(),
                None => return,
            }
        };
        let _ = sender.send(Some(Arc::new(Partial::of(event))));
    }

    /// The hub missed events of the log's feed: every partial subscriber re-reads the log.
    fn partials_lagged(&self, missed: u64) {
        self.lag_recoveries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            missed,
            "live hub fell behind the event log's feed; partial subscribers re-read the log"
        );
        for watched in lock(&self.tasks).values() {
            if let Some(sender) = &watched.partials {
                let _ = sender.send(None);
            }
        }
    }

    /// Starts receiving the list frames of `scope`.
    pub(crate) fn watch_scope(self: &Arc<Self>, scope: &StreamScope) -> ScopeWatch {
        let (user, receiver) = match scope {
            StreamScope::All => (None, self.everyone.subscribe()),
            StreamScope::User(user) => {
                let mut users = lock(&self.users);
                let sender = users
                    .entry(user.clone())
                    .or_insert_with(|| broadcast::channel(USER_CHANNEL_CAPACITY).0);
                (Some(user.clone()), sender.subscribe())
            }
        };
        ScopeWatch {
            hub: self.clone(),
            user,
            receiver: Some(receiver),
        }
    }

    fn route(self: &Arc<Self>, change: &TaskChange) {
        match change {
            TaskChange::Upserted(task) => self.publish_task(task),
            TaskChange::Deleted { id, .. } => self.publish_deleted(id),
        }
        self.publish_list(change);
    }

    /// Lets the hub write `watch`'s task to `sink` itself; the stream's task is woken only for
    /// what the hub leaves to it, until the returned attachment is dropped.
    pub(crate) fn attach_sink(
        self: &Arc<Self>,
        watch: &TaskWatch,
        sink: Arc<DirectSink>,
    ) -> SinkAttachment {
        if let Some(watched) = lock(&self.tasks).get_mut(&watch.id) {
            watched.sinks.push(sink.clone());
        }
        SinkAttachment {
            hub: self.clone(),
            id: watch.id.clone(),
            sink,
        }
    }

    fn publish_task(self: &Arc<Self>, task: &Task) {
        let Some((sender, route)) = lock(&self.tasks)
            .get(&task.id)
            .map(|watched| (watched.state.clone(), watched.route()))
        else {
            return;
        };
        // Skip the encoding when the watch already holds this version or a newer one (a
        // re-read racing the feed).
        let stale = sender
            .borrow()
            .version()
            .is_none_or(|known| known >= task.version);
        if stale {
            return;
        }
        match TaskState::of(task) {
            Ok(state) => {
                if offer(&sender, state.clone()) {
                    self.write_sinks(&task.id, &route, &state);
                }
            }
            Err(error) => tracing::error!(task_id = %task.id, %error, "cannot encode task event"),
        }
    }

    fn publish_deleted(self: &Arc<Self>, id: &TaskId) {
        let route = match lock(&self.tasks).get(id) {
            Some(watched) if offer(&watched.state, TaskState::Deleted) => watched.route(),
            _ => return,
        };
        self.write_sinks(id, &route, &TaskState::Deleted);
    }

    fn publish_list(&self, change: &TaskChange) {
        let user_sender = lock(&self.users).get(change.user_id()).cloned();
        let everyone = self.everyone.receiver_count() > 0;
        if user_sender.is_none() && !everyone {
            return;
        }
        let encoded = match change {
            TaskChange::Upserted(task) => list_frame(&ListEvent::Update { task }),
            TaskChange::Deleted { id, .. } => list_frame(&ListEvent::Deleted { task_id: id }),
        };
        let frame = match encoded {
            Ok(frame) => frame,
            Err(error) => {
                tracing::error!(task_id = %change.task_id(), %error, "cannot encode list event");
                return;
            }
        };
        // A send error only means the last receiver left meanwhile.
        if let Some(sender) = user_sender {
            let _ = sender.send(frame.clone());
        }
        if everyone {
            let _ = self.everyone.send(frame);
        }
    }

    /// The hub missed changes: every watched task is re-read and every list stream is told
    /// to refetch, so nobody is left showing a state older than the database's.
    fn recover_from_lag(self: &Arc<Self>, missed: u64) {
        self.lag_recoveries.fetch_add(1, Ordering::Relaxed);
        let ids: Vec<TaskId> = lock(&self.tasks).keys().cloned().collect();
        tracing::warn!(
            missed,
            watched = ids.len(),
            "live hub fell behind the change feed; re-reading watched tasks"
        );
        self.spawn_reread(ids);
        for sender in lock(&self.users).values() {
            let _ = sender.send(resync_frame());
        }
        let _ = self.everyone.send(resync_frame());
    }

    fn spawn_reread(self: &Arc<Self>, ids: Vec<TaskId>) {
        let hub = self.clone();
        tokio::spawn(async move {
            for id in ids {
                // A task nobody watches any more needs no query.
                if !lock(&hub.tasks).contains_key(&id) {
                    continue;
                }
                match hub.store.get(&id).await {
                    Ok(task) => hub.publish_task(&task),
                    Err(StoreError::NotFound) => hub.publish_deleted(&id),
                    Err(error) => {
                        tracing::warn!(task_id = %id, %error, "live hub could not re-read a task");
                    }
                }
            }
        });
    }
}

/// Replaces the watch's state when `state` is newer, waking its streams.
fn offer(sender: &watch::Sender<TaskState>, state: TaskState) -> bool {
    sender.send_if_modified(|current| {
        if state.supersedes(current) {
            *current = state;
            true
        } else {
            false
        }
    })
}

/// The routing loop of the change feed: its only reader for all live streams.
async fn route_changes(hub: Weak<LiveHub>, feed: ChangeReceiver, shutdown: CancellationToken) {
    route_feed(
        hub,
        feed,
        shutdown,
        LiveHub::route,
        LiveHub::recover_from_lag,
    )
    .await;
}

/// The routing loop of partial outputs: the only reader of the event log's feed.
async fn route_partials(hub: Weak<LiveHub>, feed: EventReceiver, shutdown: CancellationToken) {
    let route = |hub: &Arc<LiveHub>, event: &Arc<task_store::TaskEvent>| hub.route_partial(event);
    let lagged = |hub: &Arc<LiveHub>, missed| hub.partials_lagged(missed);
    route_feed(hub, feed, shutdown, route, lagged).await;
}

/// Hands each item of `feed` to `route`, and a lag to `lagged`, until `shutdown` fires, the
/// feed closes or the hub is gone.
async fn route_feed<T: Clone>(
    hub: Weak<LiveHub>,
    mut feed: broadcast::Receiver<T>,
    shutdown: CancellationToken,
    route: impl Fn(&Arc<LiveHub>, &T),
    lagged: impl Fn(&Arc<LiveHub>, u64),
) {
    loop {
        let received = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            received = feed.recv() => received,
        };
        let Some(hub) = hub.upgrade() else { break };
        match received {
            Ok(item) => route(&hub, &item),
            Err(RecvError::Lagged(missed)) => lagged(&hub, missed),
            Err(RecvError::Closed) => break,
        }
    }
}

/// Counts one open stream; dropping it (when the response body is dropped) uncounts it.
#[derive(Debug)]
pub(crate) struct OpenStream {
    hub: Arc<LiveHub>,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.hub.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream's subscription to one task. Dropping the last one removes the task's watch.
#[derive(Debug)]
pub(crate) struct TaskWatch {
    hub: Arc<LiveHub>,
    id: TaskId,
    receiver: Option<watch::Receiver<TaskState>>,
}

impl TaskWatch {
    pub(crate) fn receiver(&mut self) -> Option<&mut watch::Receiver<TaskState>> {
        self.receiver.as_mut()
    }
}

impl Drop for TaskWatch {
    fn drop(&mut self) {
        // Under the lock, so a subscriber arriving at the same moment either finds the watch
        // (and keeps it alive) or creates a new one.
        let mut tasks = lock(&self.hub.tasks);
        drop(self.receiver.take());
        if tasks
            .get(&self.id)
            .is_some_and(|watched| watched.state.receiver_count() == 0)
        {
            tasks.remove(&self.id);
        }
    }
}

/// A direct-path stream's socket, written by the hub while this lives. Dropping it (the stream
/// ended) closes the sink, so the hub never writes on that socket again, and forgets it.
#[derive(Debug)]
pub(crate) struct SinkAttachment {
    hub: Arc<LiveHub>,
    id: TaskId,
    sink: Arc<DirectSink>,
}

impl SinkAttachment {
    pub(crate) fn sink(&self) -> &DirectSink {
        &self.sink
    }
}

impl Drop for SinkAttachment {
    fn drop(&mut self) {
        self.sink.close();
        if let Some(watched) = lock(&self.hub.tasks).get_mut(&self.id) {
            watched
                .sinks
                .retain(|attached| !Arc::ptr_eq(attached, &self.sink));
        }
    }
}

/// A list stream's subscription. Dropping the last one of a user removes the user's channel.
#[derive(Debug)]
pub(crate) struct ScopeWatch {
    hub: Arc<LiveHub>,
    user: Option<String>,
    receiver: Option<broadcast::Receiver<Bytes>>,
}

impl ScopeWatch {
    pub(crate) fn receiver(&mut self) -> Option<&mut broadcast::Receiver<Bytes>> {
        self.receiver.as_mut()
    }
}

impl Drop for ScopeWatch {
    fn drop(&mut self) {
        let Some(user) = &self.user else { return };
        let mut users = lock(&self.hub.users);
        drop(self.receiver.take());
        if users
            .get(user)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            users.remove(user);
        }
    }
}
