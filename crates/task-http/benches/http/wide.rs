//! Scenario 5: 10,000 SSE subscribers of ONE task (issue #21, target 4's wide run), beside the
//! least an SSE server can do (`minimal_sse`) with the same clients, in rounds whose order
//! rotates.
//!
//! 10,000 clients and 10,000 server sockets do not fit one process's open-file limit here
//! (20,000, and the container may not raise it), so each server runs in a child process (this
//! bench binary started again with [`CHILD_ENV`] set) and only the clients live in this one.
//! The two processes share the wall clock: the child notes the time just before it writes the
//! change (tasklane: before `update_progress` commits to SQLite; the least server: before its
//! write loop) and reports it on its stdout; each client notes when it has parsed that
//! version's event. One server runs at a time, so neither pays for the other's sockets.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use task_store::{Lease, SqliteStore, TaskStore};
use tokio::io::AsyncBufReadExt;

use crate::latency::{gather, subscribe_noting, BaselineFrames, Percentiles};
use crate::minimal_sse::MinimalSse;
use crate::servers::{bench_config, claimed_noop, tasklane};

/// Set in a child's environment to `tasklane` or `minimal`: the server it runs.
pub const CHILD_ENV: &str = "TASKLANE_BENCH_WIDE_SERVER";
const SUBSCRIBERS_ENV: &str = "TASKLANE_BENCH_WIDE_SUBSCRIBERS";
const UPDATES_ENV: &str = "TASKLANE_BENCH_WIDE_UPDATES";

pub struct Result {
    pub tasklane: Percentiles,
    pub minimal: Percentiles,
}

/// `rounds` rounds; in each, both servers publish `updates` updates and a final `complete` to
/// `subscribers` subscribers, one every `interval`.
pub async fn run(subscribers: usize, updates: usize, interval: Duration, rounds: usize) -> Result {
    let (mut ours, mut least) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            ["tasklane", "minimal"]
        } else {
            ["minimal", "tasklane"]
        };
        for kind in order {
            let samples = measure(kind, subscribers, updates, interval).await;
            eprintln!(
                "  round {}: {kind}: {} deliveries",
                round + 1,
                samples.len()
            );
            match kind {
                "tasklane" => ours.extend(samples),
                _ => least.extend(samples),
            }
        }
    }
    let expected = subscribers * (updates + 1) * rounds;
    Result {
        tasklane: Percentiles::of(ours, expected),
        minimal: Percentiles::of(least, expected),
    }
}

/// Nanoseconds since the Unix epoch: the clock both processes read.
fn wall_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos() as u64
}

/// A server child and its command channel.
struct Server {
    child: Child,
    commands: ChildStdin,
    replies: BufReader<ChildStdout>,
}

impl Server {
    fn spawn(kind: &str, subscribers: usize, updates: usize) -> Server {
        let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
            .env(CHILD_ENV, kind)
            .env(SUBSCRIBERS_ENV, subscribers.to_string())
            .env(UPDATES_ENV, updates.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let (Some(commands), Some(replies)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server process has no piped stdin and stdout");
        };
        Server {
            child,
            commands,
            replies: BufReader::new(replies),
        }
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        let read = self
            .replies
            .read_line(&mut line)
            .expect("read from the server process");
        assert!(read > 0, "the server process exited early");
        line.trim_end().to_owned()
    }

    /// Asks the child to publish `step`; answers the version it wrote and when.
    fn publish(&mut self, step: usize, last: bool) -> (i64, u64) {
        writeln!(self.commands, "publish {step} {last}").expect("write to the server process");
        let line = self.read_line();
        let mut words = line.strip_prefix("sent ").expect("sent <v> <t>").split(' ');
        let mut number = || words.next().and_then(|n| n.parse::<u64>().ok());
        let (Some(version), Some(at)) = (number(), number()) else {
            panic!("unexpected reply {line:?}");
        };
        (version as i64, at)
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

/// One server's run: its latencies over every (subscriber, delivered version) pair.
async fn measure(
    kind: &str,
    subscribers: usize,
    updates: usize,
    interval: Duration,
) -> Vec<Duration> {
    let mut server = tokio::task::block_in_place(|| Server::spawn(kind, subscribers, updates));
    let ready_line = tokio::task::block_in_place(|| server.read_line());
    let mut words = ready_line
        .strip_prefix("ready ")
        .expect("ready <port> <token> <path>")
        .split(' ');
    let (Some(port), Some(token), Some(path)) = (words.next(), words.next(), words.next()) else {
        panic!("unexpected line from the server process: {ready_line:?}");
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port.parse().expect("a port")));
    let clients = subscribe_noting(addr, path, token, subscribers, |id| {
        id.parse::<i64>()
            .ok()
            .map(|version| (version, wall_nanos()))
    })
    .await;
    let mut sent = std::collections::HashMap::new();
    let mut pace = tokio::time::interval(interval);
    for step in 0..=updates {
        pace.tick().await;
        let (version, at) = tokio::task::block_in_place(|| server.publish(step, step == updates));
        sent.insert(version, at);
    }
    let received = gather(clients, Duration::from_secs(120)).await;
    drop(server);
    received
        .into_iter()
        .filter_map(|(version, at)| {
            let sent = sent.get(&version)?;
            Some(Duration::from_nanos(at.saturating_sub(*sent)))
        })
        .collect()
}

/// What a child publishes with.
enum Publisher {
    Tasklane {
        store: Arc<SqliteStore>,
        lease: Lease,
    },
    Minimal {
        server: MinimalSse,
        frames: BaselineFrames,
    },
}

/// The child process: serves until told to quit, publishing on `publish <step> <last>`.
pub fn child(kind: &str) {
    let number = |name: &str| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not set"))
    };
    let (subscribers, updates) = (number(SUBSCRIBERS_ENV), number(UPDATES_ENV));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (publisher, ready, _server) = match kind {
            "tasklane" => {
                let store =
                    Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("open SQLite"));
                let server = tasklane(store.clone(), bench_config(subscribers)).await;
                let task = claimed_noop(store.as_ref()).await;
                let ready = format!(
                    "ready {} {} /api/subscribeToTask?taskId={}",
                    server.addr.port(),
                    server.token,
                    task.id
                );
                let lease = Lease::of(&task).expect("a lease");
                (Publisher::Tasklane { store, lease }, ready, Some(server))
            }
            "minimal" => {
                let (server, addr) = MinimalSse::start().await;
                let ready = format!("ready {} - /stream", addr.port());
                let frames = BaselineFrames::new(updates);
                (Publisher::Minimal { server, frames }, ready, None)
            }
            other => panic!("unknown server kind {other:?}"),
        };
        println!("{ready}");
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Some(args) = line.strip_prefix("publish ") else {
                break;
            };
            let (step, last) = args.split_once(' ').expect("publish <step> <last>");
            let (step, last): (usize, bool) =
                (step.parse().expect("a step"), last.parse().expect("a flag"));
            let at = wall_nanos();
            let version = match &publisher {
                Publisher::Tasklane { store, lease } => {
                    let written = if last {
                        store.complete(lease, json!({"ok": true})).await
                    } else {
                        store
                            .update_progress(lease, 50, Some(format!("step {step}")))
                            .await
                    };
                    written.expect("write the change").version
                }
                Publisher::Minimal { server, frames } => {
                    let frame = frames.next(step, last);
                    server.publish(frame.as_bytes()).await;
                    step as i64 + 1
                }
            };
            println!("sent {version} {at}");
        }
        if let Publisher::Minimal { server, .. } = &publisher {
            server.close().await;
        }
    });
}
