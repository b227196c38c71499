//! What the provider gate adds to each provider call on SQLite: one `admit` and one `release`
//! (two writer operations), timed against a baseline measured in the same run and alternating
//! with it: one `TaskStore::create` (one writer operation). 1 caller, then 8 callers at once
//! (the writer's group commit serves them together).
//!
//! Run: `cargo bench -p task-store --bench provider_gate`. Results: `docs/benchmarks.md`,
//! "Provider limits".

use std::sync::Arc;
use std::time::{Duration, Instant};

use task_core::{now_millis, NewTask};
use task_store::{
    Admission, AdmitRequest, ProviderCaps, ProviderKey, ProviderLimitStore, SqliteStore, TaskStore,
};

const ROUNDS: usize = 6;
const OPS: usize = 400;

async fn baseline(store: Arc<SqliteStore>, ops: usize) {
    for _ in 0..ops {
        store
            .create(NewTask::new("bench@example.com", "noop"))
            .await
            .expect("create");
    }
}

async fn gated(store: Arc<SqliteStore>, ops: usize) {
    let caps = ProviderCaps {
        concurrency: Some(1_000),
        requests_per_minute: Some(u32::MAX),
        tokens_per_minute: Some(u64::MAX),
    };
    for _ in 0..ops {
        let request = AdmitRequest {
            key: ProviderKey::new("openai", "gpt-4o-mini"),
            caps,
            lease_for_ms: 600_000,
            now: now_millis(),
        };
        let Admission::Granted(lease) = store.admit(&request).await.expect("admit") else {
            panic!("refused");
        };
        store
            .release_slot(&lease, 1_500, now_millis())
            .await
            .expect("release");
    }
}

async fn timed<F, Fut>(store: &Arc<SqliteStore>, callers: usize, run: F) -> Duration
where
    F: Fn(Arc<SqliteStore>, usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let handles: Vec<_> = (0..callers)
        .map(|_| tokio::spawn(run(Arc::clone(store), OPS / callers)))
        .collect();
    for handle in handles {
        handle.await.expect("join");
    }
    start.elapsed() / OPS as u32
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("open"));
    for callers in [1, 8] {
        let mut base = Vec::new();
        let mut gate = Vec::new();
        for _ in 0..ROUNDS {
            base.push(timed(&store, callers, baseline).await);
            gate.push(timed(&store, callers, gated).await);
        }
        base.sort();
        gate.sort();
        let (b, g) = (base[ROUNDS / 2], gate[ROUNDS / 2]);
        println!(
            "{callers} caller(s): create {b:?}/op, admit+release {g:?}/call, ratio {:.2}",
            g.as_secs_f64() / b.as_secs_f64()
        );
    }
}
