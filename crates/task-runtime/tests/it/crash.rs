//! Crash recovery across processes: a child process (this test binary, re-executed) runs a
//! worker on a SQLite file and is killed with SIGKILL mid-task; a worker in this process
//! finishes the task once the dead worker's lease expires. SQLite only: a memory store cannot
//! be shared with another process.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use task_core::TaskStatus;
use task_runtime::{handler_fn, Registry, RescuerConfig, Runtime, RuntimeConfig, TaskContext};
use task_store::{SqliteStore, TaskStore};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::{config, create, in_status, wait_status, within};

/// Set in the child's environment to the database path: the test then acts as the worker
/// that gets killed.
const CHILD_DB_ENV: &str = "TASK_RUNTIME_CRASH_CHILD_DB";
/// The child prints this once its handler has committed progress.
const STARTED: &str = "crash-child: task started";
/// This test's name inside the test binary, to re-run exactly it in the child.
const TEST_NAME: &str = "crash::killed_worker_task_is_finished_by_another_process";

fn settings() -> RuntimeConfig {
    RuntimeConfig {
        lease_duration: Duration::from_millis(600),
        heartbeat_interval: Duration::from_millis(100),
        rescuer: RescuerConfig {
            interval: Duration::from_millis(100),
        },
        ..config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_task_is_finished_by_another_process() {
    if let Ok(path) = std::env::var(CHILD_DB_ENV) {
        return doomed_child_worker(path).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.db");
    let store: Arc<dyn TaskStore> = Arc::new(SqliteStore::open(&path).unwrap());
    let task = create(store.as_ref(), "essay", json!({"topic": "Historia"})).await;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB_ENV, &path)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    within("the child worker to start the task", async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(STARTED) {
                return;
            }
        }
        panic!("the child exited before starting the task");
    })
    .await;
    let running = store.get(&task.id).await.unwrap();
    assert_eq!(running.status, TaskStatus::Processing);
    assert_eq!(running.progress, 10);
    let child_worker = running.lease_owner.clone();

    child.kill().await.unwrap(); // SIGKILL: no shutdown, no release.
    assert_eq!(
        store.get(&task.id).await.unwrap().status,
        TaskStatus::Processing,
        "the dead worker left its task processing"
    );

    let runtime = Runtime::start(
        store.clone(),
        Registry::new().register(
            "essay",
            handler_fn(|ctx: TaskContext| async move {
                Ok(json!({"recovered_on_attempt": ctx.attempt()}))
            }),
        ),
        settings(),
    )
    .unwrap();
    let done = wait_status(store.as_ref(), &task.id, TaskStatus::Completed).await;
    runtime.shutdown().await;
    assert_eq!(done.attempt, 2);
    assert_eq!(done.result, Some(json!({"recovered_on_attempt": 2})));
    assert_ne!(done.lease_owner, child_worker);
    assert!(in_status(store.as_ref(), TaskStatus::Processing)
        .await
        .is_empty());
}

/// The child: works on the task until it is killed.
async fn doomed_child_worker(path: String) {
    let store: Arc<dyn TaskStore> = Arc::new(SqliteStore::open(path).unwrap());
    let registry = Registry::new().register(
        "essay",
        handler_fn(|ctx: TaskContext| async move {
            ctx.progress(10, "Writing...").await?;
            println!("{STARTED}");
            std::future::pending::<()>().await;
            Ok(json!("never"))
        }),
    );
    let _runtime = Runtime::start(store, registry, settings()).unwrap();
    // The parent kills this process; if it never does (it died itself), give up eventually
    // rather than linger as an orphan.
    tokio::time::sleep(Duration::from_secs(60)).await;
    panic!("the parent never killed the child worker");
}
