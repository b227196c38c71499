//! The cost of dependencies on SQLite, each next to a baseline measured in the same run. Run
//! with `cargo bench -p task-runtime --bench workflow` (`WORKFLOW_NODES`, `WORKFLOW_ROUNDS`
//! and `CHAIN_LENGTH` change the sizes; `WORKFLOW_ONLY=independent` or `=workflow` runs one
//! drain contender alone and skips the latencies, for a profile of one side); results go into
//! `docs/benchmarks.md`.
//!
//! - **Drain**: a workflow of `WORKFLOW_NODES` no-op tasks (one root, a fan-out to all but two,
//!   a fan-in to one sink), from the runtime's start to the sink's completion, versus the same
//!   number of independent no-op tasks drained by the same runtime configuration.
//! - **Release latency**: in a chain of `CHAIN_LENGTH` no-ops, the time from a parent's
//!   completion on the change feed to its child's claim, versus the time from an independent
//!   task's creation on the feed to its claim on the feed (the wake-up every task pays anyway). The
//!   difference of the medians is what releasing a child adds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use task_core::{NewTask, NewWorkflow, TaskId, TaskStatus, WorkflowEdge, WorkflowNode};
use task_runtime::{handler_fn, Registry, Runtime, RuntimeConfig, RuntimeHandle};
use task_store::{SqliteConfig, SqliteStore, TaskChange, TaskStore};

const CONCURRENCY: usize = 64;
const USER: &str = "bench@example.com";

fn main() {
    let nodes = env_number("WORKFLOW_NODES", 10_000).max(3);
    let rounds = env_number("WORKFLOW_ROUNDS", 3).max(1);
    let chain = env_number("CHAIN_LENGTH", 300).max(2);
    let only = std::env::var("WORKFLOW_ONLY").ok();
    let runs = |contender: &str| only.as_deref().is_none_or(|only| only == contender);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    // Rounds alternate between the contenders, so load from other processes on this shared
    // machine hits both alike; the medians are reported.
    let (mut independent, mut workflow) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        if runs("independent") {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = open(&dir.path().join("independent.db"));
            let took = tokio.block_on(async {
                let batch = (0..nodes).map(|_| NewTask::new(USER, "noop")).collect();
                store.create_many(batch).await.expect("insert");
                drain(store, nodes).await
            });
            independent.push(nodes as f64 / took.as_secs_f64());
        }
        if !runs("workflow") {
            continue;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir.path().join("workflow.db"));
        let took = tokio.block_on(async {
            store
                .create_workflow(fan_out_fan_in(nodes))
                .await
                .expect("create workflow");
            drain(store, nodes).await
        });
        workflow.push(nodes as f64 / took.as_secs_f64());
    }
    if only.is_some() {
        println!("independent: {}", rates(&independent));
        println!("workflow: {}", rates(&workflow));
        return;
    }
    let (base, graph) = (median(&independent), median(&workflow));
    println!("drain of {nodes} no-op tasks, concurrency {CONCURRENCY}, median of {rounds} rounds");
    println!(
        "  independent tasks:            {base:>8.0} tasks/s   rounds: {}",
        rates(&independent)
    );
    println!(
        "  root -> fan-out -> sink:      {graph:>8.0} tasks/s   rounds: {}",
        rates(&workflow)
    );
    println!("  workflow / independent: {:.0}%", 100.0 * graph / base);

    let dir = tempfile::tempdir().expect("temp dir");
    let (wake, release) = tokio.block_on(latencies(&dir.path().join("latency.db"), chain));
    println!("latency to the claim, {chain} tasks one at a time, p50 / p99");
    println!(
        "  created -> claimed (independent): {:.2?} / {:.2?}",
        wake.0, wake.1
    );
    println!(
        "  parent completed -> child claimed: {:.2?} / {:.2?}",
        release.0, release.1
    );
    println!(
        "  release adds (p50): {:.2?}",
        release.0.saturating_sub(wake.0)
    );
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
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
    // Deep enough that the benchmark's own watcher never lags.
    let config = SqliteConfig {
        feed_capacity: 1 << 18,
        ..SqliteConfig::default()
    };
    Arc::new(SqliteStore::open_with(path, config).expect("open sqlite"))
}

fn node(key: String) -> WorkflowNode {
    WorkflowNode {
        key,
        task: NewTask::new(USER, "noop"),
    }
}

fn edge(parent: &str, child: &str) -> WorkflowEdge {
    WorkflowEdge {
        parent: parent.to_owned(),
        child: child.to_owned(),
        run_on_failure: false,
    }
}

/// One root, `nodes - 2` middles, one sink.
fn fan_out_fan_in(nodes: usize) -> NewWorkflow {
    let middles: Vec<String> = (0..nodes - 2).map(|n| format!("m{n}")).collect();
    let mut all = vec![node("root".into()), node("sink".into())];
    let mut edges = Vec::with_capacity(2 * middles.len());
    for key in &middles {
        edges.push(edge("root", key));
        edges.push(edge(key, "sink"));
        all.push(node(key.clone()));
    }
    NewWorkflow {
        user_id: USER.to_owned(),
        nodes: all,
        edges,
    }
}

fn runtime(store: Arc<dyn TaskStore>, concurrency: usize) -> RuntimeHandle {
    let config = RuntimeConfig {
        concurrency,
        max_running_per_user: None,
        ..RuntimeConfig::default()
    };
    let registry = Registry::new().register("noop", handler_fn(|_| async { Ok(json!(null)) }));
    Runtime::start(store, registry, config).expect("start runtime")
}

/// Runs the runtime until `tasks` completions were published; returns the time taken.
async fn drain(store: Arc<dyn TaskStore>, tasks: usize) -> Duration {
    let mut feed = store.subscribe();
    let started = Instant::now();
    let runtime = runtime(store, CONCURRENCY);
    let mut completed = 0;
    let mut marks = Vec::new();
    while completed < tasks {
        match feed.recv().await {
            Ok(TaskChange::Upserted(task)) if task.status == TaskStatus::Completed => {
                completed += 1;
                if [1, 2, tasks / 2, tasks - 1, tasks].contains(&completed) {
                    marks.push((completed, started.elapsed()));
                }
            }
            Ok(_) => {}
            Err(error) => panic!("benchmark feed: {error}"),
        }
    }
    let took = started.elapsed();
    if std::env::var_os("WORKFLOW_PHASES").is_some() {
        eprintln!("  completions at: {marks:.1?}");
    }
    runtime.shutdown().await;
    took
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

/// Wake-up latency of independent tasks created one at a time, then release latency along a
/// chain, both seen on the change feed by one watcher.
async fn latencies(
    path: &std::path::Path,
    chain: usize,
) -> ((Duration, Duration), (Duration, Duration)) {
    let store = open(path);
    let runtime = runtime(Arc::clone(&store), 4);
    let mut feed = store.subscribe();
    let mut wake = Vec::with_capacity(chain);
    for _ in 0..chain {
        let task = store
            .create(NewTask::new(USER, "noop"))
            .await
            .expect("create");
        let created = seen(&mut feed, &task.id, TaskStatus::Pending).await;
        let claimed = seen(&mut feed, &task.id, TaskStatus::Processing).await;
        wake.push(claimed - created);
        seen(&mut feed, &task.id, TaskStatus::Completed).await;
    }

    let nodes: Vec<WorkflowNode> = (0..chain).map(|n| node(format!("n{n}"))).collect();
    let edges = (1..chain)
        .map(|n| edge(&format!("n{}", n - 1), &format!("n{n}")))
        .collect();
    let (_, tasks) = store
        .create_workflow(NewWorkflow {
            user_id: USER.to_owned(),
            nodes,
            edges,
        })
        .await
        .expect("create chain");
    let order: HashMap<TaskId, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, task)| (task.id.clone(), i))
        .collect();
    let mut completed_at: Vec<Option<Instant>> = vec![None; chain];
    let mut release = Vec::with_capacity(chain);
    let mut done = 0;
    while done < chain {
        let change = feed.recv().await.expect("feed");
        let TaskChange::Upserted(task) = change else {
            continue;
        };
        let Some(&index) = order.get(&task.id) else {
            continue;
        };
        match task.status {
            TaskStatus::Completed => {
                completed_at[index] = Some(Instant::now());
                done += 1;
            }
            TaskStatus::Processing if index > 0 => {
                if let Some(parent_done) = completed_at[index - 1] {
                    release.push(parent_done.elapsed());
                }
            }
            _ => {}
        }
    }
    runtime.shutdown().await;
    (percentiles(wake), percentiles(release))
}

/// When the watcher saw `id` reach `status` on the feed.
async fn seen(feed: &mut task_store::ChangeReceiver, id: &TaskId, status: TaskStatus) -> Instant {
    loop {
        match feed.recv().await.expect("feed") {
            TaskChange::Upserted(task) if task.id == *id && task.status == status => {
                return Instant::now()
            }
            _ => {}
        }
    }
}
