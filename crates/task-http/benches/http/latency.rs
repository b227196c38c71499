//! Scenario 2: how long a progress update takes to reach 1,000 SSE subscribers of the task,
//! from the moment the update is written to the store (SQLite) until each client has parsed
//! the event; against a bare hyper server that fans the same frames out from a broadcast
//! channel with no store, no hub and no encoding; and against the least an SSE server can do
//! (`minimal_sse`: one loop writing every socket); against that least server committing each
//! update to SQLite before its fan-out and ending its streams after the final event (the floor
//! of any design whose updates are stored first and whose streams end with the task, as
//! tasklane's do); and the same update from tasklane to 1,000 WebSocket subscribers (one
//! `/api/ws` connection each). All sets of subscribers stay connected while the five servers take
//! turns publishing, so load from other work on the machine falls on all of them alike.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use task_core::TaskEvent;
use task_store::{Lease, SqliteStore, TaskStore};
use tokio::sync::{broadcast, Semaphore};
use tokio::task::JoinSet;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::minimal_sse::MinimalSse;
use crate::parser::{Item, Parser};
use crate::raw_stream::RawStream;
use crate::servers::{bare_sse, bench_config, claimed_noop, tasklane, Tasklane};
use crate::ws_client;

/// Latency percentiles over every (subscriber, delivered update) pair.
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Delivered updates / (subscribers x updates); below 1 when a client was sent a newer
    /// state instead of one it had not read yet.
    pub delivered: f64,
}

impl Percentiles {
    /// The percentiles of `latencies`, out of `expected` deliveries.
    pub fn of(mut latencies: Vec<Duration>, expected: usize) -> Percentiles {
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            max: *latencies.last().expect("latencies"),
            delivered: latencies.len() as f64 / expected as f64,
        }
    }
}

pub struct Result {
    pub tasklane: Percentiles,
    pub bare: Percentiles,
    /// The minimal fan-out server: one loop writing every socket (see `minimal_sse`).
    pub minimal: Percentiles,
    /// The minimal fan-out server that first commits each update to SQLite, as tasklane's
    /// updates are: the least any design can do whose updates are stored before they go out.
    pub minimal_stored: Percentiles,
    /// The least a fan-out costs here: threads and plain sockets (see `floor`).
    pub floor: Percentiles,
    /// tasklane to WebSocket subscribers (`/api/ws`), same store, same update.
    pub websocket: Percentiles,
    /// The final (`complete`) event alone, one per subscriber, for each server above: it ends
    /// tasklane's streams, so it takes another path than the updates.
    pub final_event: FinalEvent,
}

/// The percentiles of the final event alone (see [`Result::final_event`]).
pub struct FinalEvent {
    pub tasklane: Percentiles,
    pub bare: Percentiles,
    pub minimal: Percentiles,
    pub minimal_stored: Percentiles,
    pub websocket: Percentiles,
}

/// Fan-outs of the floor measurement, and the pause before each.
const FLOOR_ROUNDS: usize = 100;
const FLOOR_INTERVAL: Duration = Duration::from_millis(30);

/// When each version was sent, in nanoseconds since `base` (0: not sent).
struct SendTimes {
    base: Instant,
    at: Vec<AtomicU64>,
}

impl SendTimes {
    fn new(versions: usize) -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            at: (0..versions).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn mark(&self, version: i64) {
        let nanos = self.base.elapsed().as_nanos() as u64;
        self.at[version as usize].store(nanos.max(1), Ordering::Release);
    }

    fn latency(&self, version: i64) -> Option<Duration> {
        let sent = self.at.get(version as usize)?.load(Ordering::Acquire);
        (sent != 0).then(|| {
            self.base
                .elapsed()
                .saturating_sub(Duration::from_nanos(sent))
        })
    }
}

/// Publishes `updates` updates and a final `complete` on each server, the five taking turns
/// every `interval`.
pub async fn run(subscribers: usize, updates: usize, interval: Duration) -> Result {
    let mut ours = Ours::start(subscribers, updates).await;
    let mut bare = Bare::start(subscribers, updates).await;
    let mut minimal = Minimal::start(subscribers, updates).await;
    let mut minimal_stored = MinimalStored::start(subscribers, updates).await;
    let mut websocket = Ours::start_ws(subscribers, updates).await;
    // The same number of connections carrying a frame of the size of one event, as chunked
    // SSE (size line, `id:` line, data, blank line, CRLF), while the subscribers idle.
    let frame_len = bare.frames.data.len() + 32;
    let floor = tokio::task::spawn_blocking(move || {
        crate::floor::measure(subscribers, frame_len, FLOOR_ROUNDS, FLOOR_INTERVAL)
    })
    .await
    .expect("the floor measurement");
    let mut pace = tokio::time::interval(interval);
    for step in 0..=updates {
        let last = step == updates;
        pace.tick().await;
        ours.publish(step, last).await;
        pace.tick().await;
        bare.publish(step, last);
        pace.tick().await;
        minimal.publish(step, last).await;
        pace.tick().await;
        minimal_stored.publish(step, last).await;
        pace.tick().await;
        websocket.publish(step, last).await;
    }
    let (tasklane, tasklane_final) = collect(ours.clients, subscribers, updates).await;
    let (bare, bare_final) = collect(bare.clients, subscribers, updates).await;
    let (minimal_all, minimal_final) = collect(minimal.clients, subscribers, updates).await;
    let (stored, stored_final) =
        collect(minimal_stored.minimal.clients, subscribers, updates).await;
    let (ws, ws_final) = collect(websocket.clients, subscribers, updates).await;
    let result = Result {
        tasklane,
        bare,
        minimal: minimal_all,
        minimal_stored: stored,
        floor,
        websocket: ws,
        final_event: FinalEvent {
            tasklane: tasklane_final,
            bare: bare_final,
            minimal: minimal_final,
            minimal_stored: stored_final,
            websocket: ws_final,
        },
    };
    minimal.server.close().await;
    minimal_stored.minimal.server.close().await;
    result
}

/// tasklane on SQLite, with the subscribers of one claimed task.
struct Ours {
    store: Arc<SqliteStore>,
    lease: Lease,
    version: i64,
    times: Arc<SendTimes>,
    clients: JoinSet<Vec<Duration>>,
    _server: Tasklane,
    _dir: tempfile::TempDir,
}

impl Ours {
    async fn start(subscribers: usize, updates: usize) -> Ours {
        Ours::start_with(subscribers, updates, false).await
    }

    /// The same server and task, followed over `/api/ws` instead of SSE.
    async fn start_ws(subscribers: usize, updates: usize) -> Ours {
        Ours::start_with(subscribers, updates, true).await
    }

    async fn start_with(subscribers: usize, updates: usize, websocket: bool) -> Ours {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("open SQLite"));
        let server = tasklane(store.clone(), bench_config(subscribers)).await;
        let task = claimed_noop(store.as_ref()).await;
        let version = task.version;
        let times = SendTimes::new(version as usize + updates + 2);
        let clients = if websocket {
            subscribe_ws(
                server.addr,
                &task.id.to_string(),
                &server.token,
                subscribers,
                &times,
            )
            .await
        } else {
            let path = format!("/api/subscribeToTask?taskId={}", task.id);
            subscribe(server.addr, &path, &server.token, subscribers, &times).await
        };
        Ours {
            store,
            lease: Lease::of(&task).expect("a lease"),
            version,
            times,
            clients,
            _server: server,
            _dir: dir,
        }
    }

    /// Writes the next change through the store, as a worker reports progress.
    async fn publish(&mut self, step: usize, last: bool) {
        self.times.mark(self.version + 1);
        let updated = write_step(&self.store, &self.lease, step, last).await;
        self.version = updated.expect("write the change").version;
    }
}

/// The change of `step` written through the store, as a worker reports progress; the last
/// step completes the task.
async fn write_step(
    store: &SqliteStore,
    lease: &Lease,
    step: usize,
    last: bool,
) -> task_store::Result<task_core::Task> {
    if last {
        store.complete(lease, json!({"ok": true})).await
    } else {
        let description = Some(format!("step {step}"));
        store.update_progress(lease, 50, description).await
    }
}

/// The frames both baselines send: an `update` event of a task the size of tasklane's, with
/// the step's version as its id, and `complete` for the last step. Records when each is sent.
pub struct BaselineFrames {
    /// The JSON of the `update` event.
    data: String,
    times: Arc<SendTimes>,
}

impl BaselineFrames {
    pub fn new(updates: usize) -> BaselineFrames {
        let task = task_core::Task {
            description: Some("step 0".into()),
            ..crate::creation::sample_task()
        };
        BaselineFrames {
            data: serde_json::to_string(&TaskEvent::Update { task }).expect("serialise"),
            times: SendTimes::new(updates + 3),
        }
    }

    /// The encoded event of `step`, its send time recorded now.
    pub fn next(&self, step: usize, last: bool) -> String {
        let version = step as i64 + 1;
        self.times.mark(version);
        let kind = if last { "complete" } else { "update" };
        let data = self.data.replacen("update", kind, 1);
        format!("id: {version}\ndata: {data}\n\n")
    }
}

/// The bare SSE server and its subscribers.
struct Bare {
    sender: broadcast::Sender<Bytes>,
    frames: BaselineFrames,
    clients: JoinSet<Vec<Duration>>,
}

impl Bare {
    async fn start(subscribers: usize, updates: usize) -> Bare {
        let (sender, _) = broadcast::channel(1024);
        let addr = bare_sse(sender.clone()).await;
        let frames = BaselineFrames::new(updates);
        let clients = subscribe(addr, "/stream", "-", subscribers, &frames.times).await;
        Bare {
            sender,
            frames,
            clients,
        }
    }

    fn publish(&mut self, step: usize, last: bool) {
        let _ = self.sender.send(Bytes::from(self.frames.next(step, last)));
    }
}

/// The minimal fan-out server and its subscribers; it sends the same frames as [`Bare`].
struct Minimal {
    server: MinimalSse,
    frames: BaselineFrames,
    clients: JoinSet<Vec<Duration>>,
}

impl Minimal {
    async fn start(subscribers: usize, updates: usize) -> Minimal {
        let (server, addr) = MinimalSse::start().await;
        let frames = BaselineFrames::new(updates);
        let clients = subscribe(addr, "/stream", "-", subscribers, &frames.times).await;
        Minimal {
            server,
            frames,
            clients,
        }
    }

    async fn publish(&mut self, step: usize, last: bool) {
        let frame = self.frames.next(step, last);
        self.server.publish(frame.as_bytes()).await;
    }
}

/// The minimal fan-out server behind a store: each update is first written to SQLite through
/// the same call tasklane's contender makes ([`write_step`], awaited, so committed), then
/// fanned out as [`Minimal`] does. The send time is taken before the write, as for tasklane.
/// After the final event it ends every stream at once (the last chunk, then the socket is
/// shut down and closed), as the contract has tasklane end them: the least a server that keeps
/// the contract pays around its final event.
struct MinimalStored {
    minimal: Minimal,
    store: SqliteStore,
    lease: Lease,
    _dir: tempfile::TempDir,
}

impl MinimalStored {
    async fn start(subscribers: usize, updates: usize) -> MinimalStored {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(dir.path().join("floor.db")).expect("open SQLite");
        let task = claimed_noop(&store).await;
        MinimalStored {
            minimal: Minimal::start(subscribers, updates).await,
            store,
            lease: Lease::of(&task).expect("a lease"),
            _dir: dir,
        }
    }

    async fn publish(&mut self, step: usize, last: bool) {
        let frame = self.minimal.frames.next(step, last);
        write_step(&self.store, &self.lease, step, last)
            .await
            .expect("write the change");
        self.minimal.server.publish(frame.as_bytes()).await;
        if last {
            self.minimal.server.close().await;
        }
    }
}

/// Opens `count` streams (at most 100 connecting at once), waits until each has its first
/// event, and returns the reader tasks; each yields the latencies it saw.
async fn subscribe(
    addr: SocketAddr,
    path: &str,
    token: &str,
    count: usize,
    times: &Arc<SendTimes>,
) -> JoinSet<Vec<Duration>> {
    let times = times.clone();
    subscribe_noting(addr, path, token, count, move |id| {
        id.parse().ok().and_then(|version| times.latency(version))
    })
    .await
}

/// Opens `count` streams (at most 100 connecting at once) and waits until each has its first
/// frame. Each reader passes every event's id to `note` the moment it has parsed the event,
/// keeps what `note` returns, and yields all of it once the `complete` event arrives.
pub async fn subscribe_noting<T: Send + 'static>(
    addr: SocketAddr,
    path: &str,
    token: &str,
    count: usize,
    note: impl Fn(&str) -> Option<T> + Clone + Send + 'static,
) -> JoinSet<Vec<T>> {
    let ready = Arc::new(AtomicUsize::new(0));
    let connecting = Arc::new(Semaphore::new(100));
    let mut clients = JoinSet::new();
    for _ in 0..count {
        let (ready, connecting, note) = (ready.clone(), connecting.clone(), note.clone());
        let (path, token) = (path.to_owned(), token.to_owned());
        clients.spawn(async move {
            let permit = connecting.acquire_owned().await.expect("open semaphore");
            let mut stream = RawStream::open(addr, &path, &token).await;
            drop(permit);
            let mut buffer = vec![0u8; 16 * 1024];
            let mut parser = Parser::default();
            let mut noted = Vec::new();
            let mut announced = false;
            while let Some(payload) = stream.next(&mut buffer).await {
                for item in parser.feed(&payload) {
                    let Item::Event(event) = item else { continue };
                    noted.extend(note(&event.last_event_id));
                    if event.data.contains("\"type\":\"complete\"") {
                        return noted;
                    }
                }
                // The first frame (`retry`, and tasklane's snapshot) means "subscribed".
                if !announced {
                    announced = true;
                    ready.fetch_add(1, Ordering::Release);
                }
            }
            noted
        });
    }
    while ready.load(Ordering::Acquire) < count {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    clients
}

/// Like [`subscribe`], over `/api/ws`: `count` connections each subscribed to the task.
async fn subscribe_ws(
    addr: SocketAddr,
    task_id: &str,
    token: &str,
    count: usize,
    times: &Arc<SendTimes>,
) -> JoinSet<Vec<Duration>> {
    let ready = Arc::new(AtomicUsize::new(0));
    let connecting = Arc::new(Semaphore::new(100));
    let mut clients = JoinSet::new();
    for _ in 0..count {
        let (ready, connecting, times) = (ready.clone(), connecting.clone(), times.clone());
        let (task_id, token) = (task_id.to_owned(), token.to_owned());
        clients.spawn(async move {
            let permit = connecting.acquire_owned().await.expect("open semaphore");
            let mut socket = ws_client::subscribe_task(addr, &token, &task_id).await;
            drop(permit);
            let mut latencies = Vec::new();
            let mut announced = false;
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let text = text.as_str();
                if let Some(latency) = ws_client::version_of(text).and_then(|v| times.latency(v)) {
                    latencies.push(latency);
                }
                if text.contains("\"type\":\"complete\"") {
                    return latencies;
                }
                // The snapshot event means "subscribed".
                if !announced && text.starts_with("{\"type\":\"event\"") {
                    announced = true;
                    ready.fetch_add(1, Ordering::Release);
                }
            }
            latencies
        });
    }
    while ready.load(Ordering::Acquire) < count {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    clients
}

/// The percentiles of every delivered event, and of the final event alone (each reader's
/// last latency: it stops at the `complete` event).
async fn collect(
    clients: JoinSet<Vec<Duration>>,
    subscribers: usize,
    updates: usize,
) -> (Percentiles, Percentiles) {
    let per_reader = gather_each(clients, Duration::from_secs(60)).await;
    let finals = per_reader
        .iter()
        .filter_map(|latencies| latencies.last().copied());
    let final_event = Percentiles::of(finals.collect(), subscribers);
    let all = per_reader.into_iter().flatten().collect();
    (
        Percentiles::of(all, subscribers * (updates + 1)),
        final_event,
    )
}

/// Everything the reader tasks yield; panics when they have not all finished within `limit`.
pub async fn gather<T: Send + 'static>(clients: JoinSet<Vec<T>>, limit: Duration) -> Vec<T> {
    gather_each(clients, limit)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// What each reader task yielded, one list per reader; panics when they have not all finished
/// within `limit`.
async fn gather_each<T: Send + 'static>(
    mut clients: JoinSet<Vec<T>>,
    limit: Duration,
) -> Vec<Vec<T>> {
    let mut all = Vec::new();
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    while !clients.is_empty() {
        tokio::select! {
            joined = clients.join_next() => {
                if let Some(noted) = joined {
                    all.push(noted.expect("a reader task"));
                }
            }
            () = &mut deadline => panic!("subscribers did not finish within {limit:?}"),
        }
    }
    all
}
