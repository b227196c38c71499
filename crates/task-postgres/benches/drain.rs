//! Drain rate and cross-instance change latency of the PostgreSQL store, each next to its
//! baseline in the same run:
//!
//! - drain: 16 concurrent workers claim and complete 10,000 tasks, one at a time, through
//!   `PostgresStore`, through `SqliteStore` (same shape), and through a hand-written
//!   `FOR UPDATE SKIP LOCKED` claim+complete loop on plain tokio-postgres connections, once on
//!   tasklane's own table (same indexes: the cost of the store's code) and once on a minimal
//!   two-index table (the cost of the schema too), in rotating order over several rounds;
//! - cross-instance latency: progress written through store A until store B's change feed
//!   publishes it, p50/p99.
//!
//! Needs a server: `TASKLANE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test cargo bench
//! -p task-postgres --bench drain`. `TASKLANE_BENCH_TASKS` and `TASKLANE_BENCH_ROUNDS` change the size. Without the
//! variable it prints why and exits. Everything runs in fresh schemas that are dropped after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use task_core::NewTask;
use task_postgres::{PostgresConfig, PostgresStore};
use task_store::{ClaimRequest, Lease, SqliteStore, TaskChange, TaskStore};
use tokio_postgres::{Client, NoTls};

const WORKERS: usize = 16;
const DEFAULT_TASKS: usize = 10_000;
const LATENCY_SAMPLES: usize = 1_000;
const CREATE_BATCH: usize = 1_000;
const DEFAULT_ROUNDS: usize = 3;
const CONTENDERS: [&str; 4] = [
    "PostgresStore",
    "hand-written loop, same table",
    "hand-written loop, minimal table",
    "SqliteStore, same shape",
];

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
    let tasks = setting("TASKLANE_BENCH_TASKS", DEFAULT_TASKS);
    let rounds = setting("TASKLANE_BENCH_ROUNDS", DEFAULT_ROUNDS);
    let admin = connect(&url).await;
    let schemas = [
        "tasklane_bench_store",
        "tasklane_bench_loop",
        "tasklane_bench_feed",
        "tasklane_bench_minimal",
    ];
    drop_schemas(&admin, &schemas).await;

    println!(
        "drain: {tasks} tasks, {WORKERS} workers, claim 1 + complete each, {rounds} rounds \
         in rotating order"
    );
    let mut times: [Vec<Duration>; 4] = Default::default();
    for round in 0..rounds {
        drop_schemas(&admin, &schemas).await;
        for offset in 0..CONTENDERS.len() {
            let contender = (round + offset) % CONTENDERS.len();
            let elapsed = match contender {
                0 => drain_postgres_store(&url, &admin, schemas[0], tasks).await,
                1 => drain_hand_written(&url, &admin, schemas[1], tasks).await,
                2 => drain_minimal(&url, &admin, schemas[3], tasks).await,
                _ => drain_sqlite(tasks).await,
            };
            println!(
                "  round {} {:<34} {:>7.0} tasks/s",
                round + 1,
                CONTENDERS[contender],
                rate(tasks, elapsed)
            );
            times[contender].push(elapsed);
        }
    }
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|elapsed| {
            elapsed.sort();
            rate(tasks, elapsed[elapsed.len() / 2])
        })
        .collect();
    println!("medians:");
    for (name, median) in CONTENDERS.iter().zip(&medians) {
        println!("  {name:<34} {median:>7.0} tasks/s");
    }
    println!(
        "PostgresStore reaches {:.0}% of the hand-written loop on its table, {:.0}% of the minimal one",
        100.0 * medians[0] / medians[1],
        100.0 * medians[0] / medians[2]
    );

    cross_instance_latency(&url, schemas[2]).await;
    drop_schemas(&admin, &schemas).await;
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the bench server");
    tokio::spawn(connection);
    client
}

async fn drop_schemas(admin: &Client, schemas: &[&str]) {
    for schema in schemas {
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .expect("drop the bench schema");
    }
}

fn rate(tasks: usize, elapsed: Duration) -> f64 {
    tasks as f64 / elapsed.as_secs_f64()
}

/// `PostgresStore` on a fresh schema, filled and analyzed before the clock starts.
async fn drain_postgres_store(url: &str, admin: &Client, schema: &str, tasks: usize) -> Duration {
    let store = PostgresStore::connect(url, PostgresConfig::with_schema(schema))
        .await
        .expect("connect");
    fill(&store, tasks).await;
    // Like the baselines, the drain starts on an analyzed table: without statistics the
    // planner takes 10,000 fresh rows for a handful and sorts them on every claim, until
    // autovacuum's first ANALYZE (see docs/postgres.md).
    admin
        .batch_execute(&format!("ANALYZE {schema}.background_tasks"))
        .await
        .expect("analyze");
    drain_store(Arc::new(store), tasks).await
}

/// `SqliteStore` on a temporary file, same shape.
async fn drain_sqlite(tasks: usize) -> Duration {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sqlite = SqliteStore::open(directory.path().join("bench.db")).expect("open SQLite");
    fill(&sqlite, tasks).await;
    drain_store(Arc::new(sqlite), tasks).await
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Creates `tasks` tasks for 10 users, in batches.
async fn fill(store: &dyn TaskStore, tasks: usize) {
    let mut left = tasks;
    while left > 0 {
        let batch = left.min(CREATE_BATCH);
        let new = (0..batch)
            .map(|i| NewTask::new(format!("user{}", i % 10), "bench"))
            .collect();
        store.create_many(new).await.expect("create tasks");
        left -= batch;
    }
}

/// Times 16 workers claiming and completing `tasks` tasks one by one.
async fn drain_store(store: Arc<dyn TaskStore>, tasks: usize) -> Duration {
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut done = 0usize;
                loop {
                    let request = ClaimRequest {
                        worker_id: format!("w{worker}"),
                        limit: 1,
                        task_types: Vec::new(),
                        lease_for: Duration::from_secs(60),
                        max_running_per_user: None,
                        now: now_ms(),
                    };
                    let claimed = store.claim(&request).await.expect("claim");
                    if claimed.is_empty() {
                        return done;
                    }
                    for task in claimed {
                        let lease = Lease::of(&task).expect("lease");
                        store
                            .complete(&lease, json!({"ok": true}))
                            .await
                            .expect("complete");
                        done += 1;
                    }
                }
            })
        })
        .collect();
    let mut done = 0;
    for worker in workers {
        done += worker.await.expect("worker");
    }
    assert_eq!(done, tasks, "every task ran once");
    started.elapsed()
}

/// The baseline: the simplest correct SKIP LOCKED claim+complete on tasklane's own table
/// (created by the store's migrations, so the indexes are the same),
/// one connection per worker, writing what a claim and a completion must write.
async fn drain_hand_written(url: &str, admin: &Client, schema: &str, tasks: usize) -> Duration {
    drop(
        PostgresStore::connect(url, PostgresConfig::with_schema(schema))
            .await
            .expect("create the baseline schema"),
    );
    admin
        .batch_execute(&format!(
            "INSERT INTO {schema}.background_tasks (id, user_id, task_type, status, run_at,
                 created_at, updated_at)
             SELECT 'task_1_' || lpad(g::text, 8, '0'), 'user' || (g % 10), 'bench', 'pending',
                 0, 0, 0
             FROM generate_series(1, {tasks}) g;
             ANALYZE {schema}.background_tasks;"
        ))
        .await
        .expect("baseline tasks");
    let claim = format!(
        "UPDATE {schema}.background_tasks SET status = 'processing', attempt = attempt + 1,
             progress = 0, started_at = $2, lease_owner = $1, lease_token = $1,
             lease_expires_at = $2 + 60000, version = version + 1, updated_at = $2
         WHERE id = (SELECT id FROM {schema}.background_tasks
                     WHERE status = 'pending' AND run_at <= $2
                     ORDER BY run_at, created_at, user_id, seq
                     LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id"
    );
    let complete = format!(
        "UPDATE {schema}.background_tasks SET status = 'completed', result = $3,
             progress = total, completed_at = $4, lease_owner = NULL, lease_token = NULL,
             lease_expires_at = NULL, version = version + 1, updated_at = $4
         WHERE id = $1 AND lease_token = $2 AND status = 'processing'"
    );
    hand_written_loop(url, &claim, &complete, tasks, true).await
}

/// The same loop on a minimal table: two indexes, no notifications.
async fn drain_minimal(url: &str, admin: &Client, schema: &str, tasks: usize) -> Duration {
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.jobs (
                 id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 status text NOT NULL,
                 lease_token text,
                 result jsonb,
                 completed_at bigint
             );
             CREATE INDEX ON {schema}.jobs (id) WHERE status = 'pending';
             INSERT INTO {schema}.jobs (status) SELECT 'pending' FROM generate_series(1, {tasks});
             ANALYZE {schema}.jobs;"
        ))
        .await
        .expect("minimal table");
    let claim = format!(
        "UPDATE {schema}.jobs SET status = 'processing', lease_token = $1
         WHERE id = (SELECT id FROM {schema}.jobs WHERE status = 'pending' AND $2::bigint >= 0
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id::text"
    );
    let complete = format!(
        "UPDATE {schema}.jobs SET status = 'completed', result = $3, lease_token = NULL,
             completed_at = $4
         WHERE id = $1::text::bigint AND lease_token = $2 AND status = 'processing'"
    );
    hand_written_loop(url, &claim, &complete, tasks, false).await
}

/// Runs 16 workers of `claim` (`$1` token, `$2` now; returns the id) and `complete` (`$1` id,
/// `$2` token, `$3` result, `$4` now) until no task is left.
async fn hand_written_loop(
    url: &str,
    claim: &str,
    complete: &str,
    tasks: usize,
    random_tokens: bool,
) -> Duration {
    let mut clients = Vec::new();
    for _ in 0..WORKERS {
        clients.push(connect(url).await);
    }
    let started = Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(worker, client)| {
            let (claim, complete) = (claim.to_owned(), complete.to_owned());
            tokio::spawn(async move {
                let claim = client.prepare(&claim).await.expect("prepare");
                let complete = client.prepare(&complete).await.expect("prepare");
                let result = json!({"ok": true});
                let mut done = 0usize;
                loop {
                    let token = if random_tokens {
                        let mut bytes = [0u8; 16];
                        getrandom::getrandom(&mut bytes).expect("randomness");
                        hex::encode(bytes)
                    } else {
                        format!("token-{worker}")
                    };
                    let now = now_ms();
                    let Some(row) = client
                        .query_opt(&claim, &[&token, &now])
                        .await
                        .expect("claim")
                    else {
                        return done;
                    };
                    let id: String = row.get(0);
                    let updated = client
                        .execute(&complete, &[&id, &token, &result, &now_ms()])
                        .await
                        .expect("complete");
                    assert_eq!(updated, 1);
                    done += 1;
                }
            })
        })
        .collect();
    let mut done = 0;
    for worker in workers {
        done += worker.await.expect("worker");
    }
    assert_eq!(done, tasks, "every job ran once");
    started.elapsed()
}

/// Progress written through A until B's feed publishes it, one change at a time.
async fn cross_instance_latency(url: &str, schema: &str) {
    let a = PostgresStore::connect(url, PostgresConfig::with_schema(schema))
        .await
        .expect("connect A");
    let b = PostgresStore::connect(url, PostgresConfig::with_schema(schema))
        .await
        .expect("connect B");
    let mut new = NewTask::new("user", "latency");
    new.total = LATENCY_SAMPLES as i64;
    a.create(new).await.expect("create");
    let request = ClaimRequest {
        worker_id: "a".into(),
        limit: 1,
        task_types: Vec::new(),
        lease_for: Duration::from_secs(600),
        max_running_per_user: None,
        now: now_ms(),
    };
    let task = a
        .claim(&request)
        .await
        .expect("claim")
        .pop()
        .expect("a task");
    let lease = Lease::of(&task).expect("lease");
    let mut feed = b.subscribe();
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for step in 1..=LATENCY_SAMPLES as i64 {
        let started = Instant::now();
        let written = a
            .update_progress(&lease, step, None)
            .await
            .expect("progress");
        loop {
            let change = tokio::time::timeout(Duration::from_secs(10), feed.recv())
                .await
                .expect("B publishes within 10 s")
                .expect("feed open");
            if let TaskChange::Upserted(seen) = change {
                if seen.id == written.id && seen.version >= written.version {
                    break;
                }
            }
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!("cross-instance change latency (progress on A -> Upserted on B's feed), {LATENCY_SAMPLES} changes:");
    println!(
        "  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    );
}
