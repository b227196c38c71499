//! Scenario 3: 10,000 idle SSE connections, and as many idle WebSocket connections (`/api/ws`,
//! one task subscription each). Each server runs in a child process (this bench
//! binary started again with [`CHILD_ENV`] set), so its resident memory can be read from
//! `/proc/<pid>/status` without the clients' share, and so server and clients each get the
//! full open-file limit. The tasklane child counts every database call with
//! [`CountingStore`].

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use http::Request;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use task_core::NewTask;
use task_http::live::{task_stream, LiveHub, SseConfig};
use task_store::{MemoryStore, SqliteStore, TaskStore};
use tokio::sync::{broadcast, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::client::open_stream;
use crate::counting_store::CountingStore;
use crate::servers::{bare, bare_sse, bench_config, tasklane, USER};
use crate::ws_client;

/// Set in a child's environment to `tasklane`, `tasklane-ws` (the same server), `live` or
/// `bare`: the server it runs.
pub const CHILD_ENV: &str = "TASKLANE_BENCH_IDLE_SERVER";
const TASKS_ENV: &str = "TASKLANE_BENCH_IDLE_TASKS";

/// What one server's idle connections cost.
pub struct Cost {
    /// Resident memory added per open connection, in bytes.
    pub bytes_per_connection: f64,
    /// Database calls per connection while opening it.
    pub queries_per_connect: f64,
    /// Database calls during the idle period, over all connections.
    pub idle_queries: u64,
}

pub struct Result {
    pub connections: usize,
    pub idle_for: Duration,
    /// The full server: auth, SQLite, the live hub.
    pub tasklane: Cost,
    /// Bare hyper answering with `live::task_stream` of tasks held in memory: the live
    /// streams' own cost without the rest of the server.
    pub live_only: Cost,
    /// Bare hyper holding a minimal SSE stream open.
    pub bare: Cost,
    /// The full server with WebSocket connections, each subscribed to one task.
    pub websocket: Cost,
}

pub async fn run(connections: usize, idle_for: Duration) -> Result {
    Result {
        connections,
        idle_for,
        tasklane: measure("tasklane", connections, idle_for).await,
        live_only: measure("live", connections, idle_for).await,
        bare: measure("bare", connections, idle_for).await,
        websocket: measure("tasklane-ws", connections, idle_for).await,
    }
}

/// A server child and its command channel.
struct Server {
    child: Child,
    commands: ChildStdin,
    replies: BufReader<ChildStdout>,
}

impl Server {
    fn spawn(kind: &str, tasks: usize) -> (Server, u16, String, Vec<String>) {
        let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
            .env(CHILD_ENV, kind)
            .env(TASKS_ENV, tasks.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let (Some(commands), Some(replies)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server process has no piped stdin and stdout");
        };
        // From here on, dropping `server` (also while panicking) reaps the child.
        let mut server = Server {
            child,
            commands,
            replies: BufReader::new(replies),
        };
        let mut task_ids = Vec::new();
        loop {
            let line = read_line(&mut server.replies);
            if let Some(id) = line.strip_prefix("task ") {
                task_ids.push(id.to_owned());
            } else if let Some(ready) = line.strip_prefix("ready ") {
                let (port, token) = ready.split_once(' ').expect("ready <port> <token>");
                let port = port.parse().expect("a port");
                return (server, port, token.to_owned(), task_ids);
            } else {
                panic!("unexpected line from the server process: {line:?}");
            }
        }
    }

    /// The child's resident memory in bytes and its database call count.
    fn stats(&mut self) -> (u64, u64) {
        writeln!(self.commands, "stats").expect("write to the server process");
        let line = read_line(&mut self.replies);
        let calls = line
            .strip_prefix("stats ")
            .and_then(|n| n.parse().ok())
            .expect("stats <calls>");
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        let rss_kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        (rss_kib * 1024, calls)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if writeln!(self.commands, "quit").is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    let read = reader
        .read_line(&mut line)
        .expect("read from the server process");
    assert!(read > 0, "the server process exited early");
    line.trim_end().to_owned()
}

async fn measure(kind: &str, connections: usize, idle_for: Duration) -> Cost {
    let (mut server, port, token, task_ids) =
        tokio::task::block_in_place(|| Server::spawn(kind, connections));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (rss_before, calls_before) = server.stats();

    let connecting = Arc::new(Semaphore::new(200));
    let mut opening = JoinSet::new();
    for n in 0..connections {
        let connecting = connecting.clone();
        let token = token.clone();
        let task_id = task_ids.get(n).cloned();
        let websocket = kind == "tasklane-ws";
        opening.spawn(async move {
            let _permit = connecting.acquire_owned().await.expect("open semaphore");
            let open: Box<dyn std::any::Any + Send> = match (websocket, task_id) {
                (true, Some(id)) => {
                    let mut socket = ws_client::subscribe_task(addr, &token, &id).await;
                    // `subscribed`, then the snapshot event: the subscription is up.
                    for _ in 0..2 {
                        let _ = socket.next().await.expect("a first message");
                    }
                    Box::new(socket)
                }
                (_, task_id) => {
                    let path = match task_id {
                        Some(id) => format!("/api/subscribeToTask?taskId={id}"),
                        None => "/stream".to_owned(),
                    };
                    let mut body = open_stream(addr, &path, &token).await.into_body();
                    // The first frame (retry, and the snapshot on tasklane) proves the stream
                    // is up.
                    let _ = body.frame().await.expect("a first frame");
                    Box::new(body)
                }
            };
            open
        });
    }
    let mut open = Vec::with_capacity(connections);
    while let Some(body) = opening.join_next().await {
        open.push(body.expect("a connection"));
    }
    // Let the server finish per-connection work (the hub's one re-read per watched task).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_open, calls_open) = server.stats();
    tokio::time::sleep(idle_for).await;
    let (_, calls_idle) = server.stats();
    drop(open);
    Cost {
        bytes_per_connection: rss_open.saturating_sub(rss_before) as f64 / connections as f64,
        queries_per_connect: calls_open.saturating_sub(calls_before) as f64 / connections as f64,
        idle_queries: calls_idle - calls_open,
    }
}

/// The child process: serves until told to quit, answering `stats` on stdin.
pub fn child(kind: &str) {
    let tasks: usize = std::env::var(TASKS_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .expect("the task count");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let (port, token, calls): (u16, String, Box<dyn Fn() -> u64>) = match kind {
            "tasklane" | "tasklane-ws" => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let sqlite = SqliteStore::open(dir.path().join("bench.db")).expect("open SQLite");
                let store = Arc::new(CountingStore::new(Arc::new(sqlite)));
                let server = tasklane(store.clone(), bench_config(tasks)).await;
                for chunk in 0..tasks.div_ceil(1000) {
                    let batch = (chunk * 1000..tasks.min((chunk + 1) * 1000))
                        .map(|_| NewTask::new(USER, "noop"))
                        .collect();
                    for task in store.create_many(batch).await.expect("create tasks") {
                        println!("task {}", task.id);
                    }
                }
                let port = server.addr.port();
                let token = server.token.clone();
                // Both live as long as the process.
                std::mem::forget(server);
                std::mem::forget(dir);
                (port, token, Box::new(move || store.calls()))
            }
            "live" => {
                let store = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
                let mut snapshots = HashMap::new();
                for _ in 0..tasks {
                    let task = store
                        .create(NewTask::new(USER, "noop"))
                        .await
                        .expect("create");
                    println!("task {}", task.id);
                    snapshots.insert(task.id.to_string(), task);
                }
                let snapshots = Arc::new(snapshots);
                let hub = LiveHub::start(store.clone(), CancellationToken::new());
                let config = Arc::new(SseConfig::default());
                let addr = bare(move |request: Request<Incoming>| {
                    let task = request
                        .uri()
                        .query()
                        .and_then(|query| query.strip_prefix("taskId="))
                        .and_then(|id| snapshots.get(id))
                        .cloned()
                        .expect("a known task id");
                    let response = task_stream(&hub, task, None, &config, Box::new(()));
                    async move { response }
                })
                .await;
                (addr.port(), "-".to_owned(), Box::new(move || store.calls()))
            }
            "bare" => {
                let (frames, _) = broadcast::channel(16);
                let addr = bare_sse(frames.clone()).await;
                std::mem::forget(frames);
                (addr.port(), "-".to_owned(), Box::new(|| 0))
            }
            other => panic!("unknown server kind {other:?}"),
        };
        println!("ready {port} {token}");
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            match line.expect("read a command").as_str() {
                "stats" => println!("stats {}", calls()),
                _ => break,
            }
        }
    });
}
