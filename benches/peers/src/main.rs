//! tasklane's drain beside other job queues' on the same machine and the same database server,
//! in alternating rounds (see `docs/benchmarks.md`, "Peers").
//!
//! - SQLite: tasklane's runtime on `SqliteStore` and River's Rust client (`riverqueue`, SQLite
//!   through sqlx), each draining the same number of pre-inserted no-op jobs with 64 workers,
//!   and the floor: the drain bench's hand-written claim-64 / complete-64 loop on tasklane's
//!   schema (`crates/task-runtime/benches/support/sqlite_loops.rs`).
//! - PostgreSQL (when `TASKLANE_TEST_POSTGRES` is set): tasklane's runtime on `PostgresStore`
//!   (with and without an `ANALYZE` after the bulk load), graphile_worker in its documented
//!   throughput setup (a local queue of 100, completions batched every 5 ms), River and a
//!   hand-written claim-64 / complete-64 floor on tasklane's table, each in a database of its own
//!   with autovacuum off on its job table. Beside the rate, the server's CPU per job: the
//!   server's processes' user + system time over the drain, read from `/proc`.
//!
//! tasklane runs twice on each backend: with the default settings (no claim-ahead) and with a
//! local queue of tasks claimed beyond the free slots (`RuntimeConfig::claim_ahead`:
//! `PEERS_CLAIM_AHEAD` on PostgreSQL, default 1,024; `PEERS_SQLITE_CLAIM_AHEAD` on SQLite, 512).
//!
//! `PEERS_TASKS` (default 20,000), `PEERS_ROUNDS` (3), `PEERS_ONLY` (`sqlite` or
//! `postgres`) and `PEERS_CONTENDERS` (PostgreSQL rows by position, such as `0,2,4`) change
//! the run. Beside the rate each row shows the client's CPU per job: this process's, which is
//! the contender's workers, handlers and driver. Each contender's time runs from its start
//! until every job is recorded as done in the database.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use task_core::{NewTask, TaskStatus};
use task_runtime::{handler_fn, Registry, Runtime, RuntimeConfig};
use task_store::{SqliteConfig, SqliteStore, TaskStore};

// The hand-written loops are the drain bench's, so both benches measure the same floor.
// Only the batch loop is a floor here; the drain bench also runs the other.
#[allow(dead_code)]
#[path = "../../../crates/task-runtime/benches/support/sqlite_loops.rs"]
mod sqlite_loops;

const CONCURRENCY: usize = 64;
/// The claim-ahead of tasklane's claim-ahead rows unless `PEERS_CLAIM_AHEAD` says otherwise:
/// sixteen times the concurrency. Round 6 picked 512 once claims and completion groups
/// overlapped; on round 7's machine 1,024 drained 8 % faster in every paired run
/// (`docs/benchmarks.md`, "Round 7"; graphile_worker's local queue is 100).
const CLAIM_AHEAD: usize = 1024;
/// The same for the SQLite row (`PEERS_SQLITE_CLAIM_AHEAD`): 512. Round 6 had
/// picked 32 when claims did not overlap (a large claim then held the single writer too long);
/// with overlapping claims 512 is the fastest of 32, 128, 256, 512 and 1,024
/// (`docs/benchmarks.md`, "Round 7").
const SQLITE_CLAIM_AHEAD: usize = 512;
const INSERT_CHUNK: usize = 1_000;

/// How one drain went.
#[derive(Debug, Clone, Copy)]
struct Drained {
    took: Duration,
    /// CPU seconds the database server spent meanwhile (PostgreSQL only).
    server_cpu: Option<f64>,
    /// CPU seconds this process (the contender's client side: its workers, handlers and
    /// driver) spent meanwhile; the bench's own waiting loop is a sliver of it.
    client_cpu: Option<f64>,
}

/// Measures one drain: wall time, the server's CPU (when there is a server) and this
/// process's CPU, from `start` to `stop`.
struct Meter<'a> {
    server: Option<&'a Server>,
    server_before: f64,
    client_before: f64,
    started: Instant,
}

impl<'a> Meter<'a> {
    fn start(server: Option<&'a Server>) -> Self {
        Self {
            server,
            server_before: server.map_or(0.0, Server::cpu_seconds),
            client_before: own_cpu_seconds(),
            started: Instant::now(),
        }
    }

    fn stop(self) -> Drained {
        Drained {
            took: self.started.elapsed(),
            server_cpu: self.server.map(|s| s.cpu_seconds() - self.server_before),
            client_cpu: Some(own_cpu_seconds() - self.client_before),
        }
    }
}

/// CPU seconds (user + system) this process has used so far, every thread included.
fn own_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields = stat_fields(&stat)?;
            let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            // utime and stime: fields 14 and 15 of the line, 12 and 13 after the command.
            Some((field(11)? + field(12)?) as f64 / 100.0)
        })
        .unwrap_or(0.0)
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
    if only.is_empty() || only == "postgres" || only == "latency" {
        match std::env::var("TASKLANE_TEST_POSTGRES") {
            Ok(url) => {
                if only != "latency" {
                    tokio.block_on(postgres_section(&url, tasks, rounds))?;
                }
                tokio.block_on(latency_section(&url, rounds))?;
            }
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
    let ahead = env_number("PEERS_SQLITE_CLAIM_AHEAD", SQLITE_CLAIM_AHEAD);
    let with_queue = format!("tasklane (SqliteStore, claim-ahead {ahead})");
    let names = [
        "tasklane (SqliteStore)",
        "riverqueue 0.5 (SQLite)",
        with_queue.as_str(),
        "floor: claim 64 / complete 64, hand-written",
    ];
    let mut results: Vec<Vec<Drained>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        for offset in 0..names.len() {
            let contender = (round + offset) % names.len();
            let dir = tempfile::tempdir()?;
            let drained = match contender {
                0 => tasklane_sqlite(&dir.path().join("tasklane.db"), tasks, 0).await?,
                2 => tasklane_sqlite(&dir.path().join("tasklane.db"), tasks, ahead).await?,
                3 => floor_sqlite(&dir.path().join("floor.db"), tasks).await?,
                _ => river_sqlite(&dir.path().join("river.db"), tasks).await?,
            };
            report_round(round, names[contender], tasks, drained);
            results[contender].push(drained);
        }
    }
    println!("SQLite, {tasks} no-op jobs, concurrency {CONCURRENCY}, medians of {rounds} rounds:");
    let rates = summarize(&names, tasks, &results);
    println!(
        "  tasklane / riverqueue: {:.1}x, with claim-ahead: {:.1}x, floor / riverqueue: {:.1}x, \
         tasklane / floor: {:.2}, with claim-ahead / floor: {:.2}",
        rates[0] / rates[1],
        rates[2] / rates[1],
        rates[3] / rates[1],
        rates[0] / rates[3],
        rates[2] / rates[3]
    );
    Ok(())
}

async fn postgres_section(url: &str, tasks: usize, rounds: usize) -> Result<()> {
    let ahead = claim_ahead();
    let analyzed = format!("tasklane (PostgresStore, analyzed, claim-ahead {ahead})");
    let unanalyzed = format!("tasklane (PostgresStore, no ANALYZE, claim-ahead {ahead})");
    let names = [
        analyzed.as_str(),
        unanalyzed.as_str(),
        "graphile_worker 0.14 (throughput setup)",
        "riverqueue 0.5 (PostgreSQL)",
        "floor: claim 64 / complete 64, tasklane's table",
        "tasklane (PostgresStore, analyzed, default)",
    ];
    let (admin, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let server = Server::of(&admin).await?;
    let mut results: Vec<Vec<Drained>> = vec![Vec::new(); names.len()];
    let chosen = chosen_contenders(names.len());
    for round in 0..rounds {
        for offset in 0..names.len() {
            let contender = (round + offset) % names.len();
            if !chosen.contains(&contender) {
                continue;
            }
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
                0 => tasklane_postgres(&server, &db_url, tasks, true, ahead).await?,
                1 => tasklane_postgres(&server, &db_url, tasks, false, ahead).await?,
                2 => graphile(&server, &db_url, tasks).await?,
                3 => river_postgres(&server, &db_url, tasks).await?,
                4 => floor_postgres(&server, &db_url, tasks).await?,
                _ => tasklane_postgres(&server, &db_url, tasks, true, 0).await?,
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
         without ANALYZE / with: {:.2}, tasklane / floor: {:.2}, floor / graphile_worker: {:.2}x, \
         default tasklane / graphile_worker: {:.2}x, claim-ahead / default: {:.2}",
        rates[0] / rates[2],
        rates[0] / rates[3],
        rates[1] / rates[0],
        rates[0] / rates[4],
        rates[4] / rates[2],
        rates[5] / rates[2],
        rates[0] / rates[5]
    );
    println!("  load average after the section: {}", load_average());
    Ok(())
}

/// The PostgreSQL contenders to run: `PEERS_CONTENDERS`, their positions in the table
/// (`0,2,4`: tasklane analyzed, graphile_worker and the floor), or all of them.
fn chosen_contenders(count: usize) -> Vec<usize> {
    match std::env::var("PEERS_CONTENDERS") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .filter(|n| *n < count)
            .collect(),
        Err(_) => (0..count).collect(),
    }
}

/// `/proc/loadavg`'s first three fields.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
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
    if let Some(cpu) = drained.client_cpu {
        print!("   client CPU {:>6.1} µs/job", cpu * 1e6 / tasks as f64);
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
            if rates.is_empty() {
                return f64::NAN;
            }
            let rate = median(&rates);
            let listed: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
            print!("  {name:<42} {rate:>8.0} jobs/s ({})", listed.join(" · "));
            let per_job = |seconds: fn(&Drained) -> Option<f64>| {
                let micros: Vec<f64> = drained
                    .iter()
                    .filter_map(seconds)
                    .map(|cpu| cpu * 1e6 / tasks as f64)
                    .collect();
                (!micros.is_empty()).then(|| median(&micros))
            };
            if let Some(cpu) = per_job(|d| d.server_cpu) {
                print!("   server CPU {cpu:.1} µs/job");
            }
            if let Some(cpu) = per_job(|d| d.client_cpu) {
                print!("   client CPU {cpu:.1} µs/job");
            }
            println!();
            rate
        })
        .collect()
}

/// The median, or NaN for a contender that did not run.
fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
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

/// The database server under test: its postmaster, whose children are the server's processes.
/// CPU is counted for this server only, so another cluster on the machine does not count.
struct Server {
    postmaster: u32,
}

impl Server {
    /// The server `client` is connected to (its backend's parent process).
    async fn of(client: &tokio_postgres::Client) -> Result<Self> {
        let backend: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await?
            .get(0);
        let stat = std::fs::read_to_string(format!("/proc/{backend}/stat"))
            .context("the server must run on this machine to measure its CPU")?;
        let fields = stat_fields(&stat).context("unreadable /proc stat")?;
        let postmaster = fields
            .get(1)
            .and_then(|f| f.parse().ok())
            .context("no ppid")?;
        Ok(Self { postmaster })
    }

    /// CPU seconds (user + system) used so far by the postmaster and its children, live or
    /// ended (an ended backend's time is added to the postmaster's `cutime` + `cstime` when
    /// it is reaped, so a connection that closes before the reading still counts).
    fn cpu_seconds(&self) -> f64 {
        let live: f64 = self.processes().values().map(|p| p.1).sum();
        let reaped = std::fs::read_to_string(format!("/proc/{}/stat", self.postmaster))
            .ok()
            .and_then(|stat| {
                let fields: Vec<u64> = stat_fields(&stat)?
                    .iter()
                    .map(|f| f.parse().unwrap_or(0))
                    .collect();
                // cutime and cstime are fields 16 and 17 of the line, 14 and 15 after the command.
                Some((fields.get(13)? + fields.get(14)?) as f64 / 100.0)
            })
            .unwrap_or(0.0);
        live + reaped
    }

    /// pid → (parent pid, CPU seconds) of the server's processes.
    fn processes(&self) -> std::collections::HashMap<u32, (u32, f64)> {
        let ticks_per_second = 100.0; // USER_HZ on Linux
        let mut found = std::collections::HashMap::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some(fields) = stat_fields(&stat) else {
                continue;
            };
            let ppid: u32 = fields.get(1).and_then(|f| f.parse().ok()).unwrap_or(0);
            if pid != self.postmaster && ppid != self.postmaster {
                continue;
            }
            // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
            let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            let ticks = field(11).unwrap_or(0) + field(12).unwrap_or(0);
            found.insert(pid, (ppid, ticks as f64 / ticks_per_second));
        }
        found
    }
}

/// The fields of a `/proc/<pid>/stat` line after the command (which is in parentheses and
/// may hold spaces): state, ppid, ….
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat.get(close + 2..)?.split(' ').collect())
}

/// pid → `application_name` (or the backend type for the server's own processes).
async fn connection_names(
    client: &tokio_postgres::Client,
) -> Result<std::collections::HashMap<i32, String>> {
    Ok(client
        .query(
            "SELECT pid, coalesce(nullif(application_name, ''), backend_type) FROM pg_stat_activity",
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// With `PEERS_PROFILE=1`: where the server's CPU goes during one drain, per connection role
/// (`application_name`, or the backend type for the server's own processes), and, when the
/// database has `pg_stat_statements`, the statements that took the most time.
struct Profile {
    client: tokio_postgres::Client,
    statements: bool,
    before: std::collections::HashMap<u32, (u32, f64)>,
    names: std::collections::HashMap<i32, String>,
}

impl Profile {
    async fn start(server: &Server, url: &str) -> Result<Option<Self>> {
        if std::env::var("PEERS_PROFILE").map_or(true, |v| v != "1") {
            return Ok(None);
        }
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let statements = client
            .batch_execute(
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()",
            )
            .await
            .is_ok();
        let names = connection_names(&client).await?;
        Ok(Some(Self {
            client,
            statements,
            before: server.processes(),
            names,
        }))
    }

    async fn report(self, server: &Server, jobs: usize) -> Result<()> {
        let after = server.processes();
        let mut roles: std::collections::BTreeMap<String, f64> = Default::default();
        let mut names = self.names;
        names.extend(connection_names(&self.client).await?);
        for (pid, (_, cpu)) in &after {
            let spent = cpu - self.before.get(pid).map_or(0.0, |p| p.1);
            let name = names.get(&(*pid as i32)).cloned().unwrap_or_else(|| {
                if *pid == server.postmaster {
                    "postmaster"
                } else {
                    "ended or unnamed"
                }
                .to_owned()
            });
            *roles.entry(name).or_default() += spent;
        }
        println!("    server CPU per job by connection role:");
        for (name, cpu) in &roles {
            if *cpu > 0.0 {
                println!("      {:>7.1} µs  {name}", cpu * 1e6 / jobs as f64);
            }
        }
        if self.statements {
            println!("    statements (calls, rows, exec µs per job, WAL bytes per job):");
            for row in self
                .client
                .query(
                    "SELECT calls, rows, total_exec_time, wal_bytes::float8, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) \
                     FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     ORDER BY total_exec_time DESC LIMIT 12",
                    &[],
                )
                .await?
            {
                let (calls, rows, ms, wal, query): (i64, i64, f64, f64, String) =
                    (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
                println!(
                    "      {calls:>6} {rows:>6} {:>7.1} µs {:>6.0} B  {query}",
                    ms * 1e3 / jobs as f64,
                    wal / jobs as f64
                );
            }
        }
        Ok(())
    }
}

// ---- tasklane ------------------------------------------------------------------------------

/// The no-op handler, counting its runs in `handled` as the peers' handlers do.
fn noop_registry(handled: &Arc<AtomicUsize>) -> Registry {
    let handled = Arc::clone(handled);
    Registry::new().register(
        "noop",
        handler_fn(move |_| {
            handled.fetch_add(1, Ordering::Relaxed);
            async { Ok(serde_json::Value::Null) }
        }),
    )
}

fn claim_ahead() -> usize {
    env_number("PEERS_CLAIM_AHEAD", CLAIM_AHEAD)
}

fn runtime_config(claim_ahead: usize) -> RuntimeConfig {
    RuntimeConfig {
        concurrency: CONCURRENCY,
        claim_ahead,
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

/// Runs the runtime until its handler ran `tasks` times and the store counts them all completed.
async fn drain_tasklane(
    server: Option<&Server>,
    store: Arc<dyn TaskStore>,
    tasks: usize,
    claim_ahead: usize,
) -> Result<Drained> {
    let handled = Arc::new(AtomicUsize::new(0));
    let meter = Meter::start(server);
    let config = runtime_config(claim_ahead);
    let runtime = Runtime::start(Arc::clone(&store), noop_registry(&handled), config)?;
    // Done as for the peers: every handler ran (polled every millisecond), then the store
    // counts every task completed (its completions land after the handlers). Following the
    // change feed instead woke this thread for each of the 40,000 changes: a fifth of the
    // client CPU the bench then charged to tasklane.
    while handled.load(Ordering::Relaxed) < tasks {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while completed(store.as_ref()).await? < tasks as u64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let drained = meter.stop();
    runtime.shutdown().await;
    Ok(drained)
}

/// How many tasks the store counts as completed.
async fn completed(store: &dyn TaskStore) -> Result<u64> {
    Ok(store
        .counts()
        .await?
        .iter()
        .filter(|count| count.status == TaskStatus::Completed)
        .map(|count| count.count)
        .sum())
}

async fn tasklane_sqlite(path: &Path, tasks: usize, claim_ahead: usize) -> Result<Drained> {
    let config = SqliteConfig {
        feed_capacity: 1 << 18,
        ..SqliteConfig::default()
    };
    let store: Arc<dyn TaskStore> = Arc::new(SqliteStore::open_with(path, config)?);
    fill_tasklane(store.as_ref(), tasks).await?;
    drain_tasklane(None, store, tasks, claim_ahead).await
}

/// The floor on SQLite: the drain bench's fastest hand-written loop (one transaction claims 64
/// tasks with the store's statement, the next completes all 64) on a store filled the same
/// way, with no runtime, feed or handler.
async fn floor_sqlite(path: &Path, tasks: usize) -> Result<Drained> {
    let store = SqliteStore::open(path)?;
    fill_tasklane(&store, tasks).await?;
    drop(store);
    let path = path.to_owned();
    let meter = Meter::start(None);
    let (drained, _) =
        tokio::task::spawn_blocking(move || sqlite_loops::hand_written_batch_drain(&path)).await?;
    let measured = meter.stop();
    anyhow::ensure!(drained == tasks, "the floor drained {drained} of {tasks}");
    Ok(measured)
}

async fn tasklane_postgres(
    server: &Server,
    url: &str,
    tasks: usize,
    analyze: bool,
    claim_ahead: usize,
) -> Result<Drained> {
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
    let profile = Profile::start(server, url).await?;
    let drained = drain_tasklane(Some(server), store, tasks, claim_ahead).await?;
    if let Some(profile) = profile {
        profile.report(server, tasks).await?;
    }
    drop(client);
    Ok(drained)
}

// ---- the floor -----------------------------------------------------------------------------

/// Hand-written loops draining tasklane's own table.
const FLOOR_LOOPS: usize = 4;
/// Jobs each floor statement claims or completes.
const FLOOR_BATCH: i64 = 64;

/// What a claim must write, and no more: the oldest due tasks of the normal band moved to
/// `processing` with a lease (`$1` now, `$2` worker, `$3` expiry, `$4` limit).
const FLOOR_CLAIM: &str = "UPDATE background_tasks t SET status = 'processing', \
     attempt = t.attempt + 1, progress = 0, started_at = $1, version = t.version + 1, \
     updated_at = GREATEST($1, t.updated_at), lease_owner = $2, lease_token = md5(t.id || $2), \
     lease_expires_at = $3 \
     WHERE t.id = ANY(ARRAY(SELECT id FROM background_tasks WHERE status = 'pending' \
       AND priority = 1 AND run_at <= $1 ORDER BY run_at, created_at, user_id, task_type, seq \
       LIMIT $4 FOR UPDATE SKIP LOCKED)) \
     RETURNING t.id, t.lease_token";

/// What a completion must write, and no more: each task whose lease still matches becomes
/// `completed` (`$1` ids, `$2` tokens, `$3` now).
const FLOOR_COMPLETE: &str = "UPDATE background_tasks t SET status = 'completed', \
     result = 'null', progress = t.total, completed_at = $3, lease_owner = NULL, \
     lease_token = NULL, lease_expires_at = NULL, version = t.version + 1, \
     updated_at = GREATEST($3, t.updated_at) \
     FROM unnest($1::text[], $2::text[]) AS d(id, token) \
     WHERE t.id = ANY($1::text[]) AND t.id = d.id AND t.lease_token = d.token \
       AND t.status = 'processing'";

/// The floor for any design that keeps finished tasks as rows in tasklane's table: the same
/// tasks, schema and indexes as tasklane's contenders, drained by [`FLOOR_LOOPS`] hand-written
/// loops that claim [`FLOOR_BATCH`] tasks in one statement and complete them in one more,
/// without returning whole tasks, notifying or running a handler.
async fn floor_postgres(server: &Server, url: &str, tasks: usize) -> Result<Drained> {
    let store =
        task_postgres::PostgresStore::connect(url, task_postgres::PostgresConfig::default())
            .await?;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "ALTER TABLE background_tasks SET (autovacuum_enabled = false, \
             toast.autovacuum_enabled = false)",
        )
        .await?;
    fill_tasklane(&store, tasks).await?;
    client.batch_execute("ANALYZE background_tasks").await?;
    drop(store);
    let mut loops = Vec::new();
    for n in 0..FLOOR_LOOPS {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        loops.push((client, format!("floor-{n}")));
    }
    let profile = Profile::start(server, url).await?;
    let meter = Meter::start(Some(server));
    let mut running = Vec::new();
    for (client, worker) in loops {
        running.push(tokio::spawn(async move {
            let claim = client.prepare(FLOOR_CLAIM).await?;
            let complete = client.prepare(FLOOR_COMPLETE).await?;
            loop {
                let now = task_core::now_millis();
                let rows = client
                    .query(&claim, &[&now, &worker, &(now + 30_000), &FLOOR_BATCH])
                    .await?;
                if rows.is_empty() {
                    return Ok::<_, anyhow::Error>(());
                }
                let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                let tokens: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
                client
                    .execute(&complete, &[&ids, &tokens, &task_core::now_millis()])
                    .await?;
            }
        }));
    }
    for handle in running {
        handle.await??;
    }
    let drained = meter.stop();
    if let Some(profile) = profile {
        profile.report(server, tasks).await?;
    }
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM background_tasks WHERE status <> 'completed'",
            &[],
        )
        .await?
        .get(0);
    anyhow::ensure!(left == 0, "the floor left {left} tasks");
    Ok(drained)
}

// ---- enqueue → start latency ---------------------------------------------------------------

/// Tasks created one at a time per round of the latency section.
const LATENCY_SAMPLES: usize = 500;

/// Enqueue → start on PostgreSQL (issue #21, target 6): the time from just before
/// `TaskStore::create` until the runtime's handler runs, one task at a time on an idle runtime
/// (default settings: fair claims, 16 workers), beside the floor in the same rounds: `create`
/// and then `claim` back to back on the same store, no runtime.
async fn latency_section(url: &str, rounds: usize) -> Result<()> {
    let names = [
        "enqueue → handler start (runtime)",
        "floor: create + claim back to back",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        for offset in 0..names.len() {
            let contender = (round + offset) % names.len();
            let schema = format!("tasklane_peers_latency_{contender}");
            let config = task_postgres::PostgresConfig {
                schema: schema.clone(),
                ..task_postgres::PostgresConfig::default()
            };
            let store = Arc::new(task_postgres::PostgresStore::connect(url, config).await?);
            let round_samples = match contender {
                0 => latency_runtime(Arc::clone(&store) as Arc<dyn TaskStore>).await?,
                _ => latency_floor(store.as_ref()).await?,
            };
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            drop(store);
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await?;
            let (p50, p99) = percentiles(round_samples.clone());
            println!(
                "  round {} {:<36} p50 {:>6.3} ms  p99 {:>6.3} ms",
                round + 1,
                names[contender],
                p50,
                p99
            );
            samples[contender].extend(round_samples);
        }
    }
    println!(
        "PostgreSQL enqueue → start, {LATENCY_SAMPLES} tasks one at a time × {rounds} rounds, pooled:"
    );
    for (name, pooled) in names.iter().zip(samples) {
        let (p50, p99) = percentiles(pooled);
        println!("  {name:<36} p50 {p50:>6.3} ms  p99 {p99:>6.3} ms");
    }
    println!("  load average after the section: {}", load_average());
    Ok(())
}

/// p50 and p99 in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q) as usize).min(samples.len() - 1);
        samples[index].as_secs_f64() * 1e3
    };
    (at(0.50), at(0.99))
}

async fn latency_runtime(store: Arc<dyn TaskStore>) -> Result<Vec<Duration>> {
    let (started, mut starts) = tokio::sync::mpsc::unbounded_channel();
    let registry = Registry::new().register(
        "noop",
        handler_fn(move |ctx: task_runtime::TaskContext| {
            let _ = started.send((ctx.task().id.clone(), Instant::now()));
            async { Ok(serde_json::Value::Null) }
        }),
    );
    let runtime = Runtime::start(Arc::clone(&store), registry, RuntimeConfig::default())?;
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        // Let the previous task finish, so each one meets an idle runtime.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let before = Instant::now();
        let task = store
            .create(NewTask::new(format!("user{}@example.com", i % 10), "noop"))
            .await?;
        loop {
            let (id, at) = starts.recv().await.context("the handler channel closed")?;
            if id == task.id {
                samples.push(at - before);
                break;
            }
        }
    }
    runtime.shutdown().await;
    Ok(samples)
}

async fn latency_floor(store: &dyn TaskStore) -> Result<Vec<Duration>> {
    let request = |now| task_store::ClaimRequest {
        worker_id: "floor".to_owned(),
        limit: 1,
        task_types: vec!["noop".to_owned()],
        lease_for: Duration::from_secs(30),
        max_running_per_user: RuntimeConfig::default().max_running_per_user,
        now,
    };
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let before = Instant::now();
        store
            .create(NewTask::new(format!("user{}@example.com", i % 10), "noop"))
            .await?;
        let claimed = store.claim(&request(task_core::now_millis())).await?;
        samples.push(before.elapsed());
        let task = claimed.first().context("the floor claimed nothing")?;
        let lease = task_store::Lease::of(task).context("no lease")?;
        store.complete(&lease, serde_json::Value::Null).await?;
    }
    Ok(samples)
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

async fn graphile(server: &Server, url: &str, tasks: usize) -> Result<Drained> {
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
    let profile = Profile::start(server, url).await?;
    let meter = Meter::start(Some(server));
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
    let drained = meter.stop();
    if let Some(profile) = profile {
        profile.report(server, tasks).await?;
    }
    worker.request_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    Ok(drained)
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
    let meter = Meter::start(None);
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
    let drained = meter.stop();
    run.stop().await?;
    pool.close().await;
    Ok(drained)
}

async fn river_postgres(server: &Server, url: &str, tasks: usize) -> Result<Drained> {
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
    let meter = Meter::start(Some(server));
    let mut run = client.start()?;
    while handled.load(Ordering::Relaxed) < tasks {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    wait_for_zero(
        &client_pg,
        "SELECT COUNT(*) FROM river_job WHERE state <> 'completed'",
    )
    .await?;
    let drained = meter.stop();
    run.stop().await?;
    pool.close().await;
    Ok(drained)
}
