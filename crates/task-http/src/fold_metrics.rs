//! The Prometheus series fed by the rollup loop as it folds finished tasks: queue wait and run
//! time histograms per task type, and token and estimated-cost counters per provider. Fed by
//! folding rather than by the change feed so that, with several instances sharing a database,
//! each task is counted by exactly one of them (the one whose fold took it).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use task_runtime::FoldObserver;
use task_store::analytics::FoldedTask;

use crate::metrics::{Metrics, TASK_BUCKETS};
use crate::price_book::PriceBook;

/// Upper bounds (seconds) of the queue wait histogram: from an idle worker's instant pick-up to
/// a long backlog.
pub const WAIT_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    task_type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: String,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Debug, Clone, Copy)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// The folded-task series.
#[derive(Debug)]
pub(crate) struct FoldSeries {
    waits: Family<TypeLabels, Histogram, Buckets>,
    runs: Family<TypeLabels, Histogram, Buckets>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<ProviderLabels, Counter<f64, AtomicU64>>,
}

impl Default for FoldSeries {
    fn default() -> Self {
        Self {
            waits: Family::new_with_constructor(Buckets(&WAIT_BUCKETS)),
            runs: Family::new_with_constructor(Buckets(&TASK_BUCKETS)),
            tokens: Family::default(),
            cost: Family::default(),
        }
    }
}

impl FoldSeries {
    fn observe(&self, tasks: &[FoldedTask], prices: &PriceBook) {
        let prices = prices.prices();
        for task in tasks {
            let labels = TypeLabels {
                task_type: task.task_type.clone(),
            };
            if let Some(wait) = task.queue_wait() {
                self.waits
                    .get_or_create(&labels)
                    .observe(wait as f64 / 1000.0);
            }
            if let Some(run) = task.run_time() {
                self.runs
                    .get_or_create(&labels)
                    .observe(run as f64 / 1000.0);
            }
            if task.provider.is_empty() {
                continue;
            }
            for (kind, count) in [("input", task.input_tokens), ("output", task.output_tokens)] {
                if count > 0 {
                    self.tokens
                        .get_or_create(&TokenLabels {
                            provider: task.provider.clone(),
                            kind,
                        })
                        .inc_by(count as u64);
                }
            }
            if let Some(price) = prices.of(&task.provider, &task.model) {
                let cost = (task.input_tokens as f64 * price.input_per_million
                    + task.output_tokens as f64 * price.output_per_million)
                    / 1_000_000.0;
                self.cost
                    .get_or_create(&ProviderLabels {
                        provider: task.provider.clone(),
                    })
                    .inc_by(cost);
            }
        }
    }

    /// Adds the series to a scrape's registry.
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "tasklane_task_queue_wait_seconds",
            "Queue wait of finished tasks (created_at to the last started_at), by task type",
            self.waits.clone(),
        );
        registry.register(
            "tasklane_task_run_seconds",
            "Run time of finished tasks (last started_at to completed_at), by task type",
            self.runs.clone(),
        );
        registry.register(
            "tasklane_ai_tokens",
            "Tokens AI tasks used, by provider and kind (input or output)",
            self.tokens.clone(),
        );
        registry.register(
            "tasklane_ai_cost_usd",
            "Estimated cost in US dollars of AI tasks' tokens at the configured prices, by provider",
            self.cost.clone(),
        );
    }
}

/// Feeds [`Metrics`]' folded-task series from the rollup loop, costing tokens with `prices`.
pub(crate) struct FoldMetrics {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) prices: Arc<PriceBook>,
}

impl FoldObserver for FoldMetrics {
    fn folded(&self, tasks: &[FoldedTask]) {
        self.metrics.folds().observe(tasks, &self.prices);
    }
}
