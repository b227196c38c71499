//! Embeds the worker runtime in a plain tokio program: one handler, one task, progress
//! followed on the change feed, then a graceful shutdown. Run with
//! `cargo run -p task-runtime --example embed`.

use std::sync::Arc;

use serde_json::json;
use task_core::NewTask;
use task_runtime::{handler_fn, Registry, Runtime, RuntimeConfig, TaskContext};
use task_store::{MemoryStore, TaskChange, TaskStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn TaskStore> = Arc::new(MemoryStore::new());
    let shout = handler_fn(|ctx: TaskContext| async move {
        let text = ctx.params()["text"].as_str().unwrap_or_default().to_owned();
        ctx.progress(50, "Shouting...").await?;
        Ok(json!({ "shouted": text.to_uppercase() }))
    });
    let registry = Registry::new().register("shout", shout);
    let runtime = Runtime::start(Arc::clone(&store), registry, RuntimeConfig::default())?;

    let mut feed = store.subscribe();
    let new = NewTask::new("demo@example.com", "shout").with_params(json!({"text": "hej"}));
    let task = store.create(new).await?;
    println!("created {}", task.id);
    loop {
        let TaskChange::Upserted(seen) = feed.recv().await? else {
            continue;
        };
        if seen.id != task.id {
            continue;
        }
        let note = seen.description.as_deref().unwrap_or("");
        println!("{} {}% {note}", seen.status, seen.progress);
        if seen.status.is_terminal() {
            println!("result: {}", seen.result.clone().unwrap_or_default());
            break;
        }
    }
    runtime.shutdown().await;
    Ok(())
}
