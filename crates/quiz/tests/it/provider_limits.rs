//! Provider limits shared through the store (issue #19) with the real runtime and the
//! `generation` handler against a fake OpenAI: a hold one task's 429 sets keeps every other
//! task from calling the provider until it ends, and `concurrency=1` keeps calls one at a time
//! even across two runtimes ("instances") on one database.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_providers::{AiProvider, JsonRequest, ProviderError, Providers, Streamed, TextSink};
use async_trait::async_trait;
use quiz::{StoreGate, GENERATION};
use serde_json::{json, Value};
use task_core::TaskStatus;
use task_store::{ProviderLimit, ProviderLimits};
use test_support::{FakeProvider, ProviderKind, Scripted, StreamPlan};

use crate::support::{
    assert_clean, create, finished, generation_params, on_every_backend, providers, questions,
    start, wait_for, Stores, CALL_TIMEOUT, USER,
};

on_every_backend!(
    a_hold_from_one_task_keeps_other_tasks_from_calling_the_provider,
    concurrency_one_never_lets_two_calls_overlap,
);

/// The fake's providers behind a [`StoreGate`] over `stores`' provider limits.
fn gated(stores: &Stores, providers: Providers, limits: &[&str]) -> Providers {
    let limits: Vec<ProviderLimit> = limits.iter().map(|l| l.parse().unwrap()).collect();
    let gate = StoreGate::new(
        Arc::clone(&stores.providers),
        ProviderLimits::new(limits).unwrap(),
    );
    providers.with_gate(Arc::new(gate))
}

fn params(n: usize) -> Value {
    let mut params = generation_params(10, "openai");
    params["category"] = json!(format!("Kategori{n}"));
    params
}

/// The first task's call is answered 429 with `Retry-After: 2`; the hold it leaves in the store
/// keeps the tasks created next from sending anything before the 2 s are over. All complete
/// afterwards, none failed, and waiting used no attempt.
async fn a_hold_from_one_task_keeps_other_tasks_from_calling_the_provider(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![Scripted::RateLimited {
            retry_after_secs: 2,
        }],
    )
    .await;
    fake.push((0..4).map(|n| Scripted::Success(questions(n * 10..n * 10 + 10))));
    let runtime = start(
        &stores,
        gated(&stores, providers(Some(&fake), CALL_TIMEOUT), &[]),
    );
    let first = create(&stores, USER, GENERATION, params(0)).await;
    wait_for(
        stores.tasks.as_ref(),
        &first.id,
        "the 429 to hold it back",
        |t| t.status == TaskStatus::Pending && t.version > 1,
    )
    .await;
    let limited_at = fake.requests()[0].received_at;
    let mut tasks = vec![first];
    for n in 1..4 {
        tasks.push(create(&stores, USER, GENERATION, params(n)).await);
    }
    for task in &tasks {
        let done = finished(stores.tasks.as_ref(), &task.id).await;
        assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
        assert_eq!(done.attempt, 1, "waiting for the hold used no attempt");
    }
    runtime.shutdown().await;
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        5,
        "one 429, then one call per task: no task was sent while the hold lasted"
    );
    for request in &requests[1..] {
        let gap = request.received_at - limited_at;
        assert!(
            gap >= Duration::from_millis(1990),
            "a call went out {gap:?} after the 429, inside the 2 s hold"
        );
    }
    assert_clean(&fake);
}

/// Counts the calls in flight to the provider it wraps (the HTTP requests to the fake) and
/// keeps the highest count.
#[derive(Debug)]
struct Probe {
    inner: Arc<dyn AiProvider>,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Probe {
    async fn measure<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let result = call.await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

#[async_trait]
impl AiProvider for Probe {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn model(&self) -> &str {
        self.inner.model()
    }

    async fn generate_json(&self, request: &JsonRequest) -> Result<Value, ProviderError> {
        self.measure(self.inner.generate_json(request)).await
    }

    async fn stream_json(
        &self,
        request: &JsonRequest,
        on_text: &mut TextSink<'_>,
    ) -> Result<Streamed, ProviderError> {
        self.measure(self.inner.stream_json(request, on_text)).await
    }
}

/// Two runtimes on one database, each with its own gate over the shared store, and
/// `openai:*=concurrency=1`: six tasks of three users (so per-user fairness lets several run at
/// once) all complete with their first attempt, and the fake never has two requests open.
async fn concurrency_one_never_lets_two_calls_overlap(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        (0..6)
            .map(|n| {
                let plan =
                    StreamPlan::new(questions(n * 10..n * 10 + 10)).pace(Duration::from_millis(15));
                Scripted::Stream(plan)
            })
            .collect(),
    )
    .await;
    let base = providers(Some(&fake), CALL_TIMEOUT);
    let probe = Arc::new(Probe {
        inner: base.get("openai").unwrap(),
        now: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    });
    let base = base.with_provider(probe.clone());
    let one = start(
        &stores,
        gated(&stores, base.clone(), &["openai:*=concurrency=1"]),
    );
    let two = start(&stores, gated(&stores, base, &["openai:*=concurrency=1"]));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..6 {
        let user = ["ada@example.com", "bo@example.com", "cy@example.com"][n % 3];
        tasks.push(create(&stores, user, GENERATION, params(n)).await);
    }
    for task in &tasks {
        let done = finished(stores.tasks.as_ref(), &task.id).await;
        assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
        assert_eq!(done.attempt, 1, "waiting for a slot used no attempt");
    }
    one.shutdown().await;
    two.shutdown().await;
    assert_eq!(
        probe.most.load(Ordering::SeqCst),
        1,
        "never two calls at once"
    );
    assert_eq!(fake.requests().len(), 6, "each task called once");
    assert!(started.elapsed() < Duration::from_secs(30));
    let usage = stores
        .providers
        .provider_usage(task_core::now_millis())
        .await
        .unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].in_flight, 0, "every slot was given back");
    assert_clean(&fake);
}
