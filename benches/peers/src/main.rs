//! tasklane's drain beside other job queues' on the same machine and the same database server,
//! in alternating rounds (see `docs/benchmarks.md`, "Peers").
//!
//! - SQLite: tasklane's runtime on `SqliteStore` and River's Rust client (`riverqueue`, SQLite
//!   through sqlx), each draining the same number of pre-inserted no-op jobs with 64 workers.
//! - PostgreSQL (when `TASKLANE_TEST_POSTGRES` is set): tasklane's runtime on `PostgresStore`
//!   (with and without an `ANALYZE` after the bulk load), graphile_worker in its documented
//!   throughput setup (a local queue of 100, completions batched every 5 ms) and River, each in a
//!   database of its own with autovacuum off on its job table. Beside the rate, the server's
//!   CPU per job: the `postgres` processes' user + system time over the drain, read from
//!   `/proc` (the server is shared, so anything else it runs meanwhile counts too).
//!
//! `PEERS_TASKS` (default 20,000), `PEERS_ROUNDS` (3) and `PEERS_ONLY` (`sqlite` or
//! `postgres`) change the run. Each contender's time runs from its start until every job is
//! recorded as done in the database.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use task_core::{NewTask, TaskStatus};
use task_runtime::{handler_fn, Registry, Runtime, RuntimeConfig};
use task_store::{SqliteConfig, SqliteStore, TaskChange, TaskStore};

const CONCURRENCY: usize = 64;
const INSERT_CHUNK: usize = 1_000;

/// How one drain went.
#[derive(Debug, Clone, Copy)]
struct Drained {
    took: Duration,
    /// CPU seconds the database server spent meanwhile (PostgreSQL only).
    server_cpu: Option<f64>,
}

fn main() -> Result<()> {
    let tasks = env_number("PEERS_TASKS", 20_000);
    let rounds = env_number("PEERS_ROUNDS", 3).max(1);
    let only = std::env::var("PEERS_ONLY").unwrap_or_default();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if only.is_empty() || only == "sqlite" {
        tokio.block_on(sqlite_section(tasks, rounds))?;
    }
    if only.is_empty() || only == "postgres" {
        match std::env::var("TASKLANE_TEST_POSTGRES") {
            Ok(url) => tokio.block_on(postgres_section(&url, tasks, rounds))?,
            Err(_) => println!("PostgreSQL skipped: TASKLANE_TEST_POSTGRES is not set"),
        }
    }
    Ok(())
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

async fn sqlite_section(tasks: usize, rounds: usize) -> Result<()> {
    let names = ["tasklane (SqliteStore)", "riverqueue 0.5 (SQLite)"];
    let mut results: Vec<Vec<Drained>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        for offset in 0..names.len() {
            let contender = (round + offset) % names.len();
            let dir = tempfile::tempdir()?;
            let drained = match contender {
                0 => tasklane_sqlite(&dir.path().join("tasklane.db"), tasks).await?,
                _ => river_sqlite(&dir.path().join("river.db"), tasks).await?,
            };
            report_round(round, names[contender], tasks, drained);
            results[contender].push(drained);
        }
    }
    println!("SQLite, {tasks} no-op jobs, concurrency {CONCURRENCY}, medians of {rounds} rounds:");
    let rates = summarize(&names, tasks, &results);
    println!("  tasklane / riverqueue: {:.1}x", rates[0] / rates[1]);
    Ok(())
}

async fn postgres_section(url: &str, tasks: usize, rounds: usize) -> Result<()> {
    let names = [
        "tasklane (PostgresStore, analyzed)",
        "tasklane (PostgresStore, no ANALYZE)",
        "graphile_worker 0.14 (throughput setup)",
        "riverqueue 0.5 (PostgreSQL)",
    ];
    let (admin, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let mut results: Vec<Vec<Drained>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        for offset in 0..names.len() {
            let contender = (round + offset) % names.len();
            let database = format!("tasklane_peers_{contender}");
            // One statement per call: DROP DATABASE cannot run in the implicit transaction
            // of a multi-statement batch.
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                .await?;
            admin
                .batch_execute(&format!("CREATE DATABASE {database}"))
                .await?;
            let db_url = with_database(url, &database);
            let drained = match contender {
                0 => tasklane_postgres(&db_url, tasks, true).await?,
                1 => tasklane_postgres(&db_url, tasks, false).await?,
                2 => graphile(&db_url, tasks).await?,
                _ => river_postgres(&db_url, tasks).await?,
            };
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                .await?;
            report_round(round, names[contender], tasks, drained);
            results[contender].push(drained);
        }
    }
    println!(
        "PostgreSQL, {tasks} no-op jobs, concurrency {CONCURRENCY}, medians of {rounds} rounds:"
    );
    let rates = summarize(&names, tasks, &results);
    println!(
        "  tasklane / graphile_worker: {:.2}x, tasklane / riverqueue: {:.2}x, \
         without ANALYZE / with: {:.2}",
        rates[0] / rates[2],
        rates[0] / rates[3],
        rates[1] / rates[0]
    );
    Ok(())
}

fn report_round(round: usize, name: &str, tasks: usize, drained: Drained) {
    print!(
        "  round {} {name:<42} {:>8.0} jobs/s",
        round + 1,
        tasks as f64 / drained.took.as_secs_f64()
    );
    if let Some(cpu) = drained.server_cpu {
        print!("   server CPU {:>6.1} µs/job", cpu * 1e6 / tasks as f64);
    }
    println!();
}

/// Prints each contender's median rate (and server CPU per job) and returns the rates.
fn summarize(names: &[&str], tasks: usize, results: &[Vec<Drained>]) -> Vec<f64> {
    names
        .iter()
        .zip(results)
        .map(|(name, drained)| {
            let rates: Vec<f64> = drained
                .iter()
                .map(|d| tasks as f64 / d.took.as_secs_f64())
                .collect();
            let rate = median(&rates);
            let listed: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
            print!("  {name:<42} {rate:>8.0} jobs/s ({})", listed.join(" · "));
            let cpu: Vec<f64> = drained
                .iter()
                .filter_map(|d| d.server_cpu)
                .map(|cpu| cpu * 1e6 / tasks as f64)
                .collect();
            if !cpu.is_empty() {
                print!("   server CPU {:.1} µs/job", median(&cpu));
            }
            println!();
            rate
        })
        .collect()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, rest) = url.rsplit_once('/').unwrap_or((url, ""));
    let query = rest.split_once('?').map(|(_, q)| format!("?{q}"));
    format!("{base}/{database}{}", query.unwrap_or_default())
}

/// CPU seconds (user + system) used so far by every process named `postgres`.
fn postgres_cpu_seconds() -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let mut ticks = 0u64;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // The command is in parentheses and may hold spaces: fields are counted after it.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != "postgres" {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        ticks += field(11).unwrap_or(0) + field(12).unwrap_or(0);
    }
    ticks as f64 / ticks_per_second
}

// ---- tasklane ------------------------------------------------------------------------------

fn noop_registry() -> Registry {
    Registry::new().register(
        "noop",
        handler_fn(|_| async { Ok(serde_json::Value::Null) }),
    )
}

fn runtime_config() -> RuntimeConfig {
    RuntimeConfig {
        concurrency: CONCURRENCY,
        max_running_per_user: None,
        ..RuntimeConfig::default()
    }
}

async fn fill_tasklane(store: &dyn TaskStore, tasks: usize) -> Result<()> {
    let mut left = tasks;
    while left > 0 {
        let chunk = left.min(INSERT_CHUNK);
        let batch = (0..chunk)
            .map(|i| NewTask::new(format!("user{}@example.com", i % 100), "noop"))
            .collect();
        store.create_many(batch).await?;
        left -= chunk;
    }
    Ok(())
}

/// Runs the runtime until the store's feed has shown `tasks` completions.
async fn drain_tasklane(store: Arc<dyn TaskStore>, tasks: usize) -> Result<Duration> {
    let mut feed = store.subscribe();
    let started = Instant::now();
    let runtime = Runtime::start(Arc::clone(&store), noop_registry(), runtime_config())?;
    let mut completed = 0;
    while completed < tasks {
        match feed.recv().await {
            Ok(TaskChange::Upserted(task)) if task.status == TaskStatus::Completed => {
                completed += 1;
            }
            Ok(_) => {}
            Err(error) => anyhow::bail!("tasklane's feed: {error}"),
        }
    }
    let took = started.elapsed();
    runtime.shutdown().await;
    Ok(took)
}

async fn tasklane_sqlite(path: &Path, tasks: usize) -> Result<Drained> {
    let config = SqliteConfig {
        feed_capacity: 1 << 18,
        ..SqliteConfig::default()
    };
    let store: Arc<dyn TaskStore> = Arc::new(SqliteStore::open_with(path, config)?);
    fill_tasklane(store.as_ref(), tasks).await?;
    let took = drain_tasklane(store, tasks).await?;
    Ok(Drained {
        took,
        server_cpu: None,
    })
}

async fn tasklane_postgres(url: &str, tasks: usize, analyze: bool) -> Result<Drained> {
    let config = task_postgres::PostgresConfig {
        feed_capacity: 1 << 18,
        ..task_postgres::PostgresConfig::default()
    };
    let store = task_postgres::PostgresStore::connect(url, config).await?;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "ALTER TABLE background_tasks SET (autovacuum_enabled = false, \
             toast.autovacuum_enabled = false)",
        )
        .await?;
    let store: Arc<dyn TaskStore> = Arc::new(store);
    fill_tasklane(store.as_ref(), tasks).await?;
    if analyze {
        client.batch_execute("ANALYZE background_tasks").await?;
    }
    let cpu_before = postgres_cpu_seconds();
    let took = drain_tasklane(store, tasks).await?;
    Ok(Drained {
        took,
        server_cpu: Some(postgres_cpu_seconds() - cpu_before),
    })
}

// ---- graphile_worker -------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Counter(Arc<AtomicUsize>);

#[derive(Debug, Serialize, Deserialize)]
struct GraphileNoop {}

impl graphile_worker::TaskHandler for GraphileNoop {
    const IDENTIFIER: &'static str = "noop";

    async fn run(
        self,
        ctx: graphile_worker::WorkerContext,
    ) -> impl graphile_worker::IntoTaskHandlerResult {
        if let Some(counter) = ctx.get_ext::<Counter>() {
            counter.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok::<(), String>(())
    }
}

async fn graphile(url: &str, tasks: usize) -> Result<Drained> {
    let database: graphile_worker::Database =
        graphile_worker::tokio_postgres::TokioPostgresDatabase::from_url(url, 100)
            .map_err(|e| anyhow::anyhow!("graphile database: {e}"))?
            .into();
    let handled = Arc::new(AtomicUsize::new(0));
    // The setup graphile_worker documents for throughput: a local queue of 100 jobs and
    // completions flushed in batches every 5 ms.
    let worker = graphile_worker::WorkerOptions::default()
        .database(database.clone())
        .schema("graphile_worker")
        .concurrency(CONCURRENCY)
        .poll_interval(Duration::from_millis(10))
        .local_queue(graphile_worker::LocalQueueConfig::default().with_size(100))
        .complete_job_batch_delay(Duration::from_millis(5))
        .listen_os_shutdown_signals(false)
        .add_extension(Counter(Arc::clone(&handled)))
        .define_job::<GraphileNoop>()
        .init()
        .await
        .map_err(|e| anyhow::anyhow!("graphile init: {e}"))?;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute("ALTER TABLE graphile_worker._private_jobs SET (autovacuum_enabled = false)")
        .await?;
    let utils = worker.create_utils();
    let mut left = tasks;
    while left > 0 {
        let chunk = left.min(INSERT_CHUNK);
        let jobs: Vec<graphile_worker::RawJobSpec> = (0..chunk)
            .map(|_| graphile_worker::RawJobSpec {
                identifier: "noop".to_owned(),
                payload: serde_json::json!({}),
                spec: graphile_worker::JobSpec::default(),
            })
            .collect();
        utils
            .add_raw_jobs(&jobs)
            .await
            .map_err(|e| anyhow::anyhow!("graphile add jobs: {e}"))?;
        left -= chunk;
    }
    let worker = Arc::new(worker);
    let cpu_before = postgres_cpu_seconds();
    let started = Instant::now();
    let running = {
        let worker = Arc::clone(&worker);
        tokio::spawn(async move { worker.run().await })
    };
    while handled.load(Ordering::Relaxed) < tasks {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Completed jobs are deleted; the batched completions land a few ms after the handlers.
    wait_for_zero(
        &client,
        "SELECT COUNT(*) FROM graphile_worker._private_jobs",
    )
    .await?;
    let took = started.elapsed();
    let server_cpu = postgres_cpu_seconds() - cpu_before;
    worker.request_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    Ok(Drained {
        took,
        server_cpu: Some(server_cpu),
    })
}

async fn wait_for_zero(client: &tokio_postgres::Client, count_sql: &str) -> Result<()> {
    loop {
        let left: i64 = client.query_one(count_sql, &[]).await?.get(0);
        if left == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// ---- River -----------------------------------------------------------------------------------

#[derive(Clone, Debug, Deserialize, Serialize, riverqueue::JobArgs)]
#[river(kind = "noop")]
struct RiverNoop {}

/// River's defaults (a fetch at most every 100 ms, a poll every second) cap a queue of 64
/// workers at a few hundred jobs a second; a drain needs the shortest cooldown River allows.
const RIVER_FETCH_COOLDOWN: Duration = Duration::from_millis(1);

fn river_queue() -> riverqueue::QueueConfig {
    riverqueue::QueueConfig::new(CONCURRENCY).with_fetch_poll_interval(Duration::from_millis(10))
}

fn river_workers(handled: &Arc<AtomicUsize>) -> Result<riverqueue::Workers> {
    let mut workers = riverqueue::Workers::new();
    let handled = Arc::clone(handled);
    workers.add_fn(
        move |_context: riverqueue::WorkContext, _job: riverqueue::Job<RiverNoop>| {
            let handled = Arc::clone(&handled);
            async move {
                handled.fetch_add(1, Ordering::Relaxed);
                Ok::<_, std::io::Error>(riverqueue::WorkOutcome::Complete)
            }
        },
    )?;
    Ok(workers)
}

async fn river_sqlite(path: &Path, tasks: usize) -> Result<Drained> {
    use riverqueue::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    use riverqueue::sqlx::Row;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(riverqueue::sqlx::sqlite::SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new().connect_with(options).await?;
    riverqueue::migrate::SqliteMigrator::new(pool.clone())
        .migrate_up()
        .await?;
    let handled = Arc::new(AtomicUsize::new(0));
    let client = riverqueue::Client::builder(pool.clone())
        .workers(river_workers(&handled)?)
        .fetch_cooldown(RIVER_FETCH_COOLDOWN)
        .queue("default", river_queue())
        .build()?;
    let mut left = tasks;
    while left > 0 {
        let chunk = left.min(INSERT_CHUNK);
        client.insert_many((0..chunk).map(|_| RiverNoop {})).await?;
        left -= chunk;
    }
    let started = Instant::now();
    let mut run = client.start()?;
    // Count in the database only once the handlers are through: a count every few
    // milliseconds during the drain would compete with River for the file.
    while handled.load(Ordering::Relaxed) < tasks {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    loop {
        let done: i64 =
            riverqueue::sqlx::query("SELECT COUNT(*) FROM river_job WHERE state = 'completed'")
                .fetch_one(&pool)
                .await?
                .get(0);
        if done as usize >= tasks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = started.elapsed();
    run.stop().await?;
    pool.close().await;
    Ok(Drained {
        took,
        server_cpu: None,
    })
}

async fn river_postgres(url: &str, tasks: usize) -> Result<Drained> {
    let pool = riverqueue::sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(url)
        .await
        .context("river pool")?;
    riverqueue::migrate::PostgresMigrator::new(pool.clone())
        .migrate_up()
        .await?;
    let (client_pg, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client_pg
        .batch_execute("ALTER TABLE river_job SET (autovacuum_enabled = false)")
        .await?;
    let handled = Arc::new(AtomicUsize::new(0));
    let client = riverqueue::Client::builder(pool.clone())
        .workers(river_workers(&handled)?)
        .fetch_cooldown(RIVER_FETCH_COOLDOWN)
        .queue("default", river_queue())
        .build()?;
    let mut left = tasks;
    while left > 0 {
        let chunk = left.min(INSERT_CHUNK);
        client.insert_many((0..chunk).map(|_| RiverNoop {})).await?;
        left -= chunk;
    }
    let cpu_before = postgres_cpu_seconds();
    let started = Instant::now();
    let mut run = client.start()?;
    while handled.load(Ordering::Relaxed) < tasks {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    wait_for_zero(
        &client_pg,
        "SELECT COUNT(*) FROM river_job WHERE state <> 'completed'",
    )
    .await?;
    let took = started.elapsed();
    let server_cpu = postgres_cpu_seconds() - cpu_before;
    run.stop().await?;
    pool.close().await;
    Ok(Drained {
        took,
        server_cpu: Some(server_cpu),
    })
}
