//! Drain and wake-up benchmarks of the worker runtime on SQLite, each next to a hand-written
//! baseline measured in the same run. Run with `cargo bench -p task-runtime --bench drain`
//! (`DRAIN_TASKS` and `DRAIN_ROUNDS` change the task count and the rounds); results go into
//! `docs/benchmarks.md`.
//!
//! - **Drain**: 100,000 pre-inserted no-op tasks, concurrency 64, fairness off, versus two
//!   plain rusqlite loops on the same schema: one with the same transaction shape (one
//!   transaction claims up to 64 tasks, one transaction completes each task), and the fastest
//!   shape a single writer allows (one transaction claims 64, the next completes all 64). The
//!   runtime drains twice: with the default settings and with `claim_ahead` set to
//!   `DRAIN_CLAIM_AHEAD` (default 32, the best on SQLite in #21's runs).
//! - **Wake-up latency**: an idle runtime, a task created in the same process; the time from
//!   before `create` to the handler's first line, over 1,000 tasks one at a time, versus the
//!   floor of any design (`create` then `claim` called back to back).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use task_core::{NewTask, TaskStatus};
use task_runtime::{handler_fn, Registry, Runtime, RuntimeConfig};
use task_store::{ClaimRequest, SqliteConfig, SqliteStore, TaskChange, TaskStore};
use tokio::sync::mpsc;

#[path = "support/sqlite_loops.rs"]
mod sqlite_loops;
use sqlite_loops::{hand_written_batch_drain, hand_written_drain};

const CONCURRENCY: usize = 64;
const LATENCY_SAMPLES: usize = 1_000;
const INSERT_CHUNK: usize = 1_000;

fn main() {
    let tasks = env_number("DRAIN_TASKS", 100_000);
    let rounds = env_number("DRAIN_ROUNDS", 3).max(1);
    // The fourth contender: the runtime with a local queue claimed beyond its free slots.
    let ahead = env_number("DRAIN_CLAIM_AHEAD", 32);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    // Rounds alternate between the two contenders, so load from other processes on this
    // shared machine hits both alike; the medians are reported.
    let mut loop_rates = Vec::new();
    let mut batch_rates = Vec::new();
    let mut runtime_rates = Vec::new();
    let mut ahead_rates = Vec::new();
    // CPU time of the whole process per drained task, per contender: on a machine shared with
    // other work it moves far less than the rates do.
    let mut cpu: [Vec<f64>; 4] = Default::default();
    let mut tasks_per_claim = Vec::new();
    let mut ahead_per_claim = Vec::new();
    for _ in 0..rounds {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("baseline.db");
        let (drained, took) = tokio.block_on(async {
            insert_noops(&open(&path), tasks).await;
            let before = process_cpu_seconds();
            let drained = tokio::task::spawn_blocking(move || hand_written_drain(&path))
                .await
                .expect("baseline thread");
            cpu[0].push((process_cpu_seconds() - before) * 1e6 / tasks as f64);
            drained
        });
        assert_eq!(drained, tasks, "the loop drained everything");
        loop_rates.push(tasks as f64 / took.as_secs_f64());

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("batch.db");
        let (drained, took) = tokio.block_on(async {
            insert_noops(&open(&path), tasks).await;
            let before = process_cpu_seconds();
            let drained = tokio::task::spawn_blocking(move || hand_written_batch_drain(&path))
                .await
                .expect("batch baseline thread");
            cpu[1].push((process_cpu_seconds() - before) * 1e6 / tasks as f64);
            drained
        });
        assert_eq!(drained, tasks, "the batch loop drained everything");
        batch_rates.push(tasks as f64 / took.as_secs_f64());

        let dir = tempfile::tempdir().expect("temp dir");
        let (took, claims) = tokio.block_on(async {
            let store = open(&dir.path().join("runtime.db"));
            insert_noops(&store, tasks).await;
            let before = process_cpu_seconds();
            let drained = runtime_drain(store, tasks, 0).await;
            cpu[2].push((process_cpu_seconds() - before) * 1e6 / tasks as f64);
            drained
        });
        runtime_rates.push(tasks as f64 / took.as_secs_f64());
        tasks_per_claim.push(tasks as f64 / claims as f64);

        let dir = tempfile::tempdir().expect("temp dir");
        let (took, claims) = tokio.block_on(async {
            let store = open(&dir.path().join("ahead.db"));
            insert_noops(&store, tasks).await;
            let before = process_cpu_seconds();
            let drained = runtime_drain(store, tasks, ahead).await;
            cpu[3].push((process_cpu_seconds() - before) * 1e6 / tasks as f64);
            drained
        });
        ahead_rates.push(tasks as f64 / took.as_secs_f64());
        ahead_per_claim.push(tasks as f64 / claims as f64);
    }
    let (loop_rate, runtime_rate) = (median(&loop_rates), median(&runtime_rates));
    let batch_rate = median(&batch_rates);
    let ahead_rate = median(&ahead_rates);
    println!(
        "drain of {tasks} no-op tasks, concurrency {CONCURRENCY}, fairness off, median of {rounds} rounds"
    );
    println!(
        "  hand-written rusqlite loop: {loop_rate:>8.0} tasks/s   rounds: {}",
        rates(&loop_rates)
    );
    println!(
        "  loop, 64 per claim and per completion transaction: {batch_rate:>8.0} tasks/s   rounds: {}",
        rates(&batch_rates)
    );
    println!(
        "  task-runtime:               {runtime_rate:>8.0} tasks/s   rounds: {}",
        rates(&runtime_rates)
    );
    println!(
        "  runtime / loop: {:.0}%, runtime / batch loop: {:.0}%, {:.1} tasks per claim",
        100.0 * runtime_rate / loop_rate,
        100.0 * runtime_rate / batch_rate,
        median(&tasks_per_claim)
    );
    println!(
        "  task-runtime, claim-ahead {ahead}: {ahead_rate:>8.0} tasks/s   rounds: {}",
        rates(&ahead_rates)
    );
    println!(
        "  claim-ahead / batch loop: {:.0}%, claim-ahead / runtime: {:.2}, {:.1} tasks per claim",
        100.0 * ahead_rate / batch_rate,
        ahead_rate / runtime_rate,
        median(&ahead_per_claim)
    );
    println!(
        "  CPU per task (whole process, median): loop {:.1} µs, batch loop {:.1} µs, runtime {:.1} µs, claim-ahead {:.1} µs",
        median(&cpu[0]),
        median(&cpu[1]),
        median(&cpu[2]),
        median(&cpu[3])
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let (floor, wake) = tokio.block_on(latency(&dir.path().join("latency.db")));
    println!("enqueue -> start latency, idle worker, {LATENCY_SAMPLES} tasks");
    println!(
        "  create + claim back to back: p50 {:.2?}  p99 {:.2?}",
        floor.0, floor.1
    );
    println!(
        "  task-runtime:                p50 {:.2?}  p99 {:.2?}",
        wake.0, wake.1
    );
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU seconds this process has used so far (all threads).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_command = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    // utime and stime are the 14th and 15th fields, the 12th and 13th after the command.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn rates(values: &[f64]) -> String {
    values
        .iter()
        .map(|rate| format!("{rate:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn open(path: &std::path::Path) -> Arc<dyn TaskStore> {
    // A feed deep enough that the benchmark's own watcher never lags behind 200,000 changes.
    let config = SqliteConfig {
        feed_capacity: 1 << 18,
        ..SqliteConfig::default()
    };
    Arc::new(SqliteStore::open_with(path, config).expect("open sqlite"))
}

async fn insert_noops(store: &Arc<dyn TaskStore>, count: usize) {
    let mut left = count;
    while left > 0 {
        let chunk = left.min(INSERT_CHUNK);
        let batch = (0..chunk)
            .map(|i| NewTask::new(format!("user{}@example.com", i % 100), "noop"))
            .collect();
        store.create_many(batch).await.expect("insert tasks");
        left -= chunk;
    }
}

/// Drains with the runtime; returns the time taken and how many claims it made.
async fn runtime_drain(
    store: Arc<dyn TaskStore>,
    tasks: usize,
    claim_ahead: usize,
) -> (Duration, u64) {
    let mut feed = store.subscribe();
    let claims = Arc::new(AtomicU64::new(0));
    let counted = Arc::new(ClaimCounter {
        inner: Arc::clone(&store),
        claims: Arc::clone(&claims),
    });
    let config = RuntimeConfig {
        concurrency: CONCURRENCY,
        claim_ahead,
        max_running_per_user: None,
        ..RuntimeConfig::default()
    };
    let registry = Registry::new().register("noop", handler_fn(|_| async { Ok(json!(null)) }));
    let started = Instant::now();
    let runtime = Runtime::start(counted, registry, config).expect("start runtime");
    let mut completed = 0;
    while completed < tasks {
        match feed.recv().await {
            Ok(TaskChange::Upserted(task)) if task.status == TaskStatus::Completed => {
                completed += 1
            }
            Ok(_) => {}
            Err(error) => panic!("benchmark feed: {error}"),
        }
    }
    let took = started.elapsed();
    runtime.shutdown().await;
    (took, claims.load(Ordering::Relaxed))
}

/// p50 and p99 of the floor (create, then claim) and of the runtime's enqueue-to-start time.
async fn latency(path: &std::path::Path) -> ((Duration, Duration), (Duration, Duration)) {
    let store = open(path);
    let mut floor = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        let started = Instant::now();
        let task = store
            .create(NewTask::new("bench@example.com", "floor"))
            .await
            .expect("create");
        let claimed = store
            .claim(&ClaimRequest {
                worker_id: "floor".into(),
                limit: 1,
                task_types: vec!["floor".into()],
                lease_for: Duration::from_secs(30),
                max_running_per_user: None,
                now: now_millis(),
            })
            .await
            .expect("claim");
        floor.push(started.elapsed());
        assert_eq!(claimed.first().map(|t| &t.id), Some(&task.id));
    }

    let (starts, mut start) = mpsc::unbounded_channel();
    let registry = Registry::new().register(
        "ping",
        handler_fn(move |_| {
            let _ = starts.send(Instant::now());
            async { Ok(json!(null)) }
        }),
    );
    let runtime =
        Runtime::start(Arc::clone(&store), registry, RuntimeConfig::default()).expect("start");
    let mut feed = store.subscribe();
    let mut wake = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        let created = Instant::now();
        let task = store
            .create(NewTask::new("bench@example.com", "ping"))
            .await
            .expect("create");
        let began = start.recv().await.expect("handler started");
        wake.push(began - created);
        // Wait until the worker is idle again before the next sample.
        loop {
            match feed.recv().await.expect("feed") {
                TaskChange::Upserted(seen) if seen.id == task.id && seen.status.is_terminal() => {
                    break
                }
                _ => {}
            }
        }
    }
    runtime.shutdown().await;
    (percentiles(floor), percentiles(wake))
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

use task_core::now_millis;

/// Counts the runtime's claim queries, to report how many tasks each one brings.
struct ClaimCounter {
    inner: Arc<dyn TaskStore>,
    claims: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl TaskStore for ClaimCounter {
    async fn create(&self, new: NewTask) -> task_store::Result<task_core::Task> {
        self.inner.create(new).await
    }
    async fn create_many(&self, new: Vec<NewTask>) -> task_store::Result<Vec<task_core::Task>> {
        self.inner.create_many(new).await
    }
    async fn create_workflow(
        &self,
        workflow: task_core::NewWorkflow,
    ) -> task_store::Result<(task_core::Workflow, Vec<task_core::Task>)> {
        self.inner.create_workflow(workflow).await
    }
    async fn get_workflow(&self, id: &str) -> task_store::Result<task_core::Workflow> {
        self.inner.get_workflow(id).await
    }
    async fn dependencies(
        &self,
        id: &task_core::TaskId,
    ) -> task_store::Result<Vec<task_core::Dependency>> {
        self.inner.dependencies(id).await
    }

    async fn create_guarded(
        &self,
        new: NewTask,
        guard: task_store::CreateGuard,
    ) -> task_store::Result<task_store::Guarded> {
        self.inner.create_guarded(new, guard).await
    }
    async fn create_workflow_guarded(
        &self,
        workflow: task_core::NewWorkflow,
        claim: task_store::IdempotencyClaim,
    ) -> task_store::Result<task_store::GuardedWorkflow> {
        self.inner.create_workflow_guarded(workflow, claim).await
    }
    async fn get(&self, id: &task_core::TaskId) -> task_store::Result<task_core::Task> {
        self.inner.get(id).await
    }
    async fn list(
        &self,
        query: &task_store::ListQuery,
    ) -> task_store::Result<task_store::TaskPage> {
        self.inner.list(query).await
    }
    async fn claim(&self, request: &ClaimRequest) -> task_store::Result<Vec<task_core::Task>> {
        self.claims.fetch_add(1, Ordering::Relaxed);
        self.inner.claim(request).await
    }
    async fn heartbeat(
        &self,
        lease: &task_store::Lease,
        until: i64,
    ) -> task_store::Result<task_core::Task> {
        self.inner.heartbeat(lease, until).await
    }
    async fn update_progress(
        &self,
        lease: &task_store::Lease,
        progress: i64,
        description: Option<String>,
    ) -> task_store::Result<task_core::Task> {
        self.inner
            .update_progress(lease, progress, description)
            .await
    }
    async fn complete(
        &self,
        lease: &task_store::Lease,
        result: serde_json::Value,
    ) -> task_store::Result<task_core::Task> {
        self.inner.complete(lease, result).await
    }
    async fn fail(
        &self,
        lease: &task_store::Lease,
        failure: task_store::Failure,
    ) -> task_store::Result<task_core::Task> {
        self.inner.fail(lease, failure).await
    }
    async fn request_cancel(&self, id: &task_core::TaskId) -> task_store::Result<task_core::Task> {
        self.inner.request_cancel(id).await
    }
    async fn cancel(
        &self,
        id: &task_core::TaskId,
        lease: Option<&task_store::Lease>,
    ) -> task_store::Result<task_core::Task> {
        self.inner.cancel(id, lease).await
    }
    async fn retry(
        &self,
        id: &task_core::TaskId,
        run_at: Option<i64>,
    ) -> task_store::Result<task_core::Task> {
        self.inner.retry(id, run_at).await
    }
    async fn release(&self, lease: &task_store::Lease) -> task_store::Result<task_core::Task> {
        self.inner.release(lease).await
    }
    async fn postpone(
        &self,
        lease: &task_store::Lease,
        until: i64,
        description: Option<String>,
    ) -> task_store::Result<task_core::Task> {
        self.inner.postpone(lease, until, description).await
    }
    async fn rescue_expired(&self, now: i64) -> task_store::Result<Vec<task_core::Task>> {
        self.inner.rescue_expired(now).await
    }
    async fn delete(&self, id: &task_core::TaskId) -> task_store::Result<()> {
        self.inner.delete(id).await
    }
    async fn purge_finished(&self, before: i64, limit: usize) -> task_store::Result<usize> {
        self.inner.purge_finished(before, limit).await
    }
    async fn count_unfinished(&self, user_id: &str) -> task_store::Result<u64> {
        self.inner.count_unfinished(user_id).await
    }
    async fn counts(&self) -> task_store::Result<Vec<task_store::StatusCount>> {
        self.inner.counts().await
    }
    async fn ping(&self) -> task_store::Result<()> {
        self.inner.ping().await
    }
    fn subscribe(&self) -> task_store::ChangeReceiver {
        self.inner.subscribe()
    }
}
