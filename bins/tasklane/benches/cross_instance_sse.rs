//! Cross-instance progress → SSE latency on PostgreSQL: two tasklane servers (each a
//! `PostgresStore`, a `task_http::AppState` and `task_http::serve` on 127.0.0.1:0, as the
//! binary wires them, without workers) share one schema. A client streams a task from A
//! (`/api/subscribeToTask`) while progress is written through B's store with B's lease, as a
//! worker on B does; each sample runs from just before B's write until the client has parsed
//! the event carrying it. One write at a time.
//!
//! Baselines in the same run, rounds rotating the order:
//! - the same path without the hop between instances (written through A's store, streamed
//!   from A): what HTTP and SSE cost;
//! - the hop alone (written through B's store until A's change feed publishes it): what
//!   `LISTEN/NOTIFY` and re-reading the row cost.
//!
//! Needs a server: `TASKLANE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test cargo bench
//! -p tasklane --bench cross_instance_sse`. `TASKLANE_BENCH_SAMPLES` and
//! `TASKLANE_BENCH_ROUNDS` change the size. Without the variable it prints why and exits. The
//! schema `tasklane_bench_sse` is dropped before and after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use task_core::NewTask;
use task_http::auth::accounts;
use task_http::{AppState, HttpConfig};
use task_postgres::{PostgresConfig, PostgresStore};
use task_store::{ChangeReceiver, ClaimRequest, Lease, Role, TaskChange, TaskStore};
use tokio::net::TcpListener;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;

const SCHEMA: &str = "tasklane_bench_sse";
const DEFAULT_SAMPLES: usize = 1_000;
const DEFAULT_ROUNDS: usize = 3;
/// The task type of the measured tasks; no worker runs it, the bench holds the lease.
const TASK_TYPE: &str = "beacon";
/// The longest one sample may take before the bench gives up.
const WAIT: Duration = Duration::from_secs(10);

/// What a sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Written through B, streamed from A: the figure the target is about.
    CrossInstanceSse,
    /// Written through A, streamed from A.
    SameInstanceSse,
    /// Written through B until A's change feed publishes it.
    CrossInstanceFeed,
}

impl Path {
    const ALL: [Path; 3] = [
        Path::CrossInstanceSse,
        Path::SameInstanceSse,
        Path::CrossInstanceFeed,
    ];

    fn label(self) -> &'static str {
        match self {
            Path::CrossInstanceSse => "progress on B -> SSE on A",
            Path::SameInstanceSse => "baseline: progress on A -> SSE on A",
            Path::CrossInstanceFeed => "baseline: progress on B -> A's change feed",
        }
    }
}

/// One in-process tasklane server on the shared schema.
struct Server {
    store: PostgresStore,
    addr: std::net::SocketAddr,
}

impl Server {
    async fn start(url: &str, stop: &CancellationToken) -> Self {
        let store = PostgresStore::connect(url, PostgresConfig::with_schema(SCHEMA))
            .await
            .expect("connect to PostgreSQL");
        let state = AppState::new(
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            HttpConfig::default(),
            [TASK_TYPE],
        )
        .expect("server state");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(task_http::serve(
            listener,
            state,
            stop.clone().cancelled_owned(),
        ));
        Self { store, addr }
    }
}

/// `subscribeToTask` on a server, parsed message by message.
struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl EventStream {
    async fn open(client: &reqwest::Client, server: &Server, token: &str, task_id: &str) -> Self {
        let response = client
            .get(format!(
                "http://{}/api/subscribeToTask?taskId={task_id}",
                server.addr
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("open the stream");
        assert!(response.status().is_success(), "{}", response.status());
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next message's `task`.
    async fn next_task(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
                let message: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let message = String::from_utf8(message).expect("UTF-8");
                if let Some(data) = message.lines().find_map(|l| l.strip_prefix("data: ")) {
                    let event: Value = serde_json::from_str(data).expect("JSON");
                    return event["task"].clone();
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("an event in time")
                .expect("read the stream")
                .expect("the stream stays open");
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

/// Where a sample's write is seen.
enum Reader {
    Sse(EventStream),
    Feed(ChangeReceiver),
}

impl Reader {
    /// Waits until the task reaches `progress`.
    async fn until_progress(&mut self, progress: i64) {
        loop {
            let seen = match self {
                Reader::Sse(stream) => stream.next_task().await["progress"].as_i64(),
                Reader::Feed(feed) => {
                    match tokio::time::timeout(WAIT, feed.recv())
                        .await
                        .expect("a change in time")
                        .expect("no lag")
                    {
                        TaskChange::Upserted(task) => Some(task.progress),
                        TaskChange::Deleted { .. } => None,
                    }
                }
            };
            if seen.is_some_and(|seen| seen >= progress) {
                return;
            }
        }
    }
}

/// `samples` progress writes on a fresh task, one at a time, each timed until `path`'s reader
/// sees it.
async fn measure(
    path: Path,
    a: &Server,
    b: &Server,
    client: &reqwest::Client,
    token: &str,
    samples: usize,
) -> Vec<Duration> {
    let writer = match path {
        Path::SameInstanceSse => &a.store,
        Path::CrossInstanceSse | Path::CrossInstanceFeed => &b.store,
    };
    let mut new = NewTask::new("bench@example.com", TASK_TYPE);
    new.total = samples as i64;
    let created = writer.create(new).await.expect("create");
    let claimed = writer
        .claim(&ClaimRequest {
            worker_id: "bench".into(),
            limit: 1,
            task_types: vec![TASK_TYPE.to_owned()],
            lease_for: Duration::from_secs(600),
            max_running_per_user: None,
            now: now_ms(),
        })
        .await
        .expect("claim")
        .pop()
        .expect("the task");
    assert_eq!(claimed.id, created.id);
    let lease = Lease::of(&claimed).expect("a lease");
    let mut reader = match path {
        Path::CrossInstanceFeed => Reader::Feed(a.store.subscribe()),
        Path::CrossInstanceSse | Path::SameInstanceSse => {
            let mut stream = EventStream::open(client, a, token, claimed.id.as_str()).await;
            // The snapshot: the claimed task, as A has it.
            stream.next_task().await;
            Reader::Sse(stream)
        }
    };
    let mut timings = Vec::with_capacity(samples);
    for step in 1..=samples as i64 {
        let started = Instant::now();
        writer
            .update_progress(&lease, step, None)
            .await
            .expect("progress");
        reader.until_progress(step).await;
        timings.push(started.elapsed());
    }
    writer
        .complete(&lease, serde_json::json!({}))
        .await
        .expect("complete");
    timings
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let index = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[index].as_secs_f64() * 1e3
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn drop_schema(url: &str) {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{SCHEMA}\" CASCADE"))
        .await
        .expect("drop the bench schema");
}

#[tokio::main]
async fn main() {
    let Ok(url) = std::env::var("TASKLANE_TEST_POSTGRES") else {
        println!("skipped: TASKLANE_TEST_POSTGRES is not set");
        return;
    };
    let setting = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(default)
    };
    let samples = setting("TASKLANE_BENCH_SAMPLES", DEFAULT_SAMPLES);
    let rounds = setting("TASKLANE_BENCH_ROUNDS", DEFAULT_ROUNDS);
    drop_schema(&url).await;
    let stop = CancellationToken::new();
    let a = Server::start(&url, &stop).await;
    let b = Server::start(&url, &stop).await;
    let (_, token) = accounts::add_user(&a.store, "bench@example.com", Role::User)
        .await
        .expect("a user");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client");

    let mut results: Vec<(Path, Vec<Duration>)> =
        Path::ALL.iter().map(|&path| (path, Vec::new())).collect();
    for round in 0..rounds {
        for offset in 0..Path::ALL.len() {
            let index = (round + offset) % Path::ALL.len();
            let path = results[index].0;
            let timings = measure(path, &a, &b, &client, token.secret(), samples).await;
            let mut sorted = timings.clone();
            sorted.sort();
            println!(
                "round {}: {:<44} p50 {:6.2} ms  p99 {:6.2} ms",
                round + 1,
                path.label(),
                percentile(&sorted, 0.50),
                percentile(&sorted, 0.99)
            );
            results[index].1.extend(timings);
        }
    }
    println!("\n{rounds} rounds x {samples} writes, one at a time:");
    for (path, mut timings) in results {
        timings.sort();
        println!(
            "{:<44} p50 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms",
            path.label(),
            percentile(&timings, 0.50),
            percentile(&timings, 0.99),
            percentile(&timings, 1.0)
        );
    }
    stop.cancel();
    drop((a, b));
    drop_schema(&url).await;
}
