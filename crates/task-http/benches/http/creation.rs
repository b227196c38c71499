//! Scenario 1: `POST /api/tasks` (a `noop` task) over 64 keep-alive connections against
//! tasklane on SQLite, against a bare hyper server that only answers, and against a bare hyper
//! server that stores the task with one `SqliteStore::create` call and nothing else (the
//! cheapest durable creation; the gap between the two bare servers is what the database write
//! costs). A second tasklane server has the per-user creation rate limit on, with a rate and
//! burst no client reaches: its throughput beside the first one's is what the limit's
//! bookkeeping costs. The four are measured in alternating rounds, so load from other work on
//! the machine falls on all of them alike.
//!
//! Every SQLite server runs the search indexer (new tasks reach the search index from it, in
//! batches). `TASKLANE_BENCH_INDEX_ON_INSERT=1` instead indexes every task inside its creation,
//! as before migration `0011_search_watermark` (the watermark is set past every rowid, so the
//! insert trigger indexes each new task and the indexer finds nothing): the same build
//! measures both.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use task_core::{NewTask, Task};
use task_store::{Rate, SqliteStore};

use crate::client::{connect, request};
use crate::servers::{bare_creation, bare_durable_creation, bench_config, tasklane};

/// Concurrent client connections.
pub const CONNECTIONS: usize = 64;
const BODY: &str = r#"{"task_type":"noop","params":{},"label":"bench"}"#;

/// Requests per second of the four servers.
pub struct Result {
    pub tasklane: f64,
    /// tasklane with the creation rate limit on but never reached.
    pub tasklane_rate_limited: f64,
    pub bare: f64,
    /// Bare hyper plus one `SqliteStore::create` per request.
    pub bare_durable: f64,
}

/// Alternates `rounds` rounds of `measure` on each server, each after `warmup`.
pub async fn run(rounds: u32, warmup: Duration, measure: Duration) -> Result {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let on_insert = std::env::var("TASKLANE_BENCH_INDEX_ON_INSERT").is_ok_and(|v| v == "1");
    if on_insert {
        eprintln!("  every creation writes its search index entry (as before 0011)");
    }
    let open = |name: &str| {
        let store = SqliteStore::open(dir.path().join(name)).expect("open SQLite");
        async move {
            if on_insert {
                store
                    .with_write_transaction(|conn| {
                        conn.execute(
                            "UPDATE background_tasks_search_watermark \
                             SET indexed_through = 9223372036854775807",
                            [],
                        )
                        .map(drop)
                        .map_err(task_store::map_sqlite_error)
                    })
                    .await
                    .expect("index on insert");
            }
            Arc::new(store)
        }
    };
    let store = open("bench.db").await;
    let server = tasklane(store, bench_config(CONNECTIONS)).await;
    // The baseline answers with a task of the same shape and size as tasklane's.
    let reply = Bytes::from(serde_json::to_vec(&sample_task()).expect("a task serialises"));
    let bare = bare_creation(reply).await;
    // A database of its own, so both durable servers insert into tables of the same size.
    let durable_store = open("durable.db").await;
    let bare_durable = bare_durable_creation(durable_store).await;
    let limited_store = open("limited.db").await;
    let limited = tasklane(
        limited_store,
        task_http::HttpConfig {
            // Far above what 64 connections reach, so every request passes the bucket.
            create_rate: Some(Rate {
                count: u32::MAX,
                period_ms: 1_000,
            }),
            create_burst: u32::MAX,
            ..bench_config(CONNECTIONS)
        },
    )
    .await;
    let mut totals = [(0, Duration::ZERO); 4];
    for round in 0..rounds {
        // Rotating the order spreads warm-up effects (page cache, WAL growth) over all four.
        for turn in 0..4 {
            let contender = (turn + round as usize) % 4;
            let addr = [server.addr, bare, bare_durable, limited.addr][contender];
            let token = if contender == 3 {
                &limited.token
            } else {
                &server.token
            };
            let (count, elapsed) = load(addr, token, warmup, measure).await;
            totals[contender].0 += count;
            totals[contender].1 += elapsed;
        }
    }
    let rate = |(count, elapsed): (u64, Duration)| count as f64 / elapsed.as_secs_f64();
    Result {
        tasklane: rate(totals[0]),
        bare: rate(totals[1]),
        bare_durable: rate(totals[2]),
        tasklane_rate_limited: rate(totals[3]),
    }
}

/// A freshly created `noop` task, as tasklane answers a creation.
pub fn sample_task() -> Task {
    let new = NewTask::new(crate::servers::USER, "noop");
    Task {
        id: "task_1732890000000_3f9a0c11d2e4b5a6c7d8"
            .parse()
            .expect("a valid id"),
        user_id: new.user_id,
        task_type: new.task_type,
        status: task_core::TaskStatus::Pending,
        label: Some("bench".into()),
        description: None,
        progress: 0,
        total: new.total,
        result: None,
        error: None,
        params: new.params,
        attempt: 0,
        max_attempts: new.max_attempts,
        run_at: 1_732_890_000_000,
        lease_owner: None,
        lease_token: None,
        lease_expires_at: None,
        cancel_requested: false,
        version: 1,
        created_at: 1_732_890_000_000,
        updated_at: 1_732_890_000_000,
        started_at: None,
        completed_at: None,
        waiting_for: 0,
        workflow_id: None,
        priority: task_core::Priority::Normal,
    }
}

/// Runs [`CONNECTIONS`] clients in a closed loop; returns how many `201` answers arrived
/// during `measure` (after `warmup`), and how long that window really was.
async fn load(
    addr: SocketAddr,
    token: &str,
    warmup: Duration,
    measure: Duration,
) -> (u64, Duration) {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let (measuring, stop, done) = (measuring.clone(), stop.clone(), done.clone());
        let token = token.to_owned();
        clients.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            while !stop.load(Ordering::Relaxed) {
                let body = Bytes::from_static(BODY.as_bytes());
                let response = sender
                    .send_request(request(addr, "POST", "/api/tasks", &token, body))
                    .await
                    .expect("a response");
                let status = response.status();
                let _ = response.into_body().collect().await;
                assert_eq!(status, 201, "task creation failed");
                if measuring.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("a client task");
    }
    (count, elapsed)
}
