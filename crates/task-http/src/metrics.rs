//! Prometheus metrics: task counts by status and type, queue depth, task durations, open live
//! streams, and HTTP requests by route, method and status with their latency.
//!
//! Counting, histograms and the text exposition format (version 0.0.4) are `prometheus-client`'s;
//! this module chooses the series and fills the ones read at scrape time (task counts from the
//! store, stream gauges from the live hub) into a registry built for that scrape.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use task_core::{Task, TaskStatus};
use task_store::{StoreError, TaskChange, TaskStore};
use tokio::sync::broadcast::error::RecvError;

use crate::fold_metrics::FoldSeries;
use crate::live::LiveHub;

/// Upper bounds (seconds) of the HTTP request duration histogram.
pub const REQUEST_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Upper bounds (seconds) of the task duration histogram: AI jobs take seconds to minutes.
pub const TASK_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// The request counter's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// The request histogram's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
}

/// The task duration histogram's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskDurationLabels {
    task_type: String,
    status: &'static str,
}

/// The task gauge's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    status: &'static str,
    task_type: String,
}

/// Makes histograms with one fixed set of buckets.
#[derive(Debug, Clone, Copy)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// The server's metrics. Create one per server with [`Metrics::new`], record requests with
/// [`Metrics::observe_request`], serve [`Metrics::render`] at `GET /metrics`.
pub struct Metrics {
    store: Arc<dyn TaskStore>,
    requests: Family<RequestLabels, Counter>,
    request_durations: Family<RouteLabels, Histogram, Buckets>,
    task_durations: Family<TaskDurationLabels, Histogram, Buckets>,
    live: OnceLock<Weak<LiveHub>>,
    folds: FoldSeries,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics over `store`. Task durations are recorded from the store's change feed as tasks
    /// finish, by a task spawned on the current Tokio runtime (outside one, durations are not
    /// recorded and a warning is logged); it stops when the metrics are dropped.
    pub fn new(store: Arc<dyn TaskStore>) -> Arc<Metrics> {
        let feed = store.subscribe();
        let metrics = Arc::new(Metrics {
            store,
            requests: Family::default(),
            request_durations: Family::new_with_constructor(Buckets(&REQUEST_BUCKETS)),
            task_durations: Family::new_with_constructor(Buckets(&TASK_BUCKETS)),
            live: OnceLock::new(),
            folds: FoldSeries::default(),
        });
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(record_durations(Arc::downgrade(&metrics), feed));
            }
            Err(_) => tracing::warn!(
                "metrics created outside a Tokio runtime; task durations will not be recorded"
            ),
        }
        metrics
    }

    /// Reports the open-stream gauge of `hub`. Call once; later calls are ignored.
    pub fn track_live(&self, hub: &Arc<LiveHub>) {
        let _ = self.live.set(Arc::downgrade(hub));
    }

    /// Records one answered request. `route` is the route pattern (never the raw path, so
    /// the number of series stays bounded); unusual methods are counted as `OTHER`.
    pub fn observe_request(
        &self,
        route: &'static str,
        method: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let method = known_method(method);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        self.request_durations
            .get_or_create(&RouteLabels { route, method })
            .observe(elapsed.as_secs_f64());
    }

    /// Records a finished task's duration (`completed_at - started_at`).
    fn observe_finished(&self, task: &Task) {
        let (Some(started), Some(completed)) = (task.started_at, task.completed_at) else {
            return;
        };
        let seconds = (completed - started).max(0) as f64 / 1000.0;
        self.task_durations
            .get_or_create(&TaskDurationLabels {
                task_type: task.task_type.clone(),
                status: task.status.as_str(),
            })
            .observe(seconds);
    }

    /// The series the rollup loop feeds as it folds finished tasks.
    pub(crate) fn folds(&self) -> &FoldSeries {
        &self.folds
    }

    /// The metrics in Prometheus text format (version 0.0.4).
    ///
    /// # Errors
    /// When the task counts cannot be read from the store.
    pub async fn render(&self) -> Result<String, StoreError> {
        let counts = self.store.counts().await?;
        // The registry adds the final period to each help text.
        let mut registry = Registry::default();

        let tasks = Family::<TaskLabels, Gauge>::default();
        let mut pending = 0;
        for count in &counts {
            if count.status == TaskStatus::Pending {
                pending += count.count;
            }
            tasks
                .get_or_create(&TaskLabels {
                    status: count.status.as_str(),
                    task_type: count.task_type.clone(),
                })
                .set(i64::try_from(count.count).unwrap_or(i64::MAX));
        }
        registry.register("tasklane_tasks", "Tasks by status and type", tasks);
        registry.register(
            "tasklane_queue_depth",
            "Tasks waiting to run (pending)",
            gauge(pending),
        );
        registry.register(
            "tasklane_task_duration_seconds",
            "Run time of finished tasks' last attempt (completed_at - started_at)",
            self.task_durations.clone(),
        );

        let hub = self.live.get().and_then(Weak::upgrade);
        let hub_value = |read: fn(&LiveHub) -> u64| hub.as_deref().map_or(0, read);
        registry.register(
            "tasklane_sse_streams_open",
            "Open live (SSE) streams",
            gauge(hub_value(|hub| hub.open_streams() as u64)),
        );
        registry.register(
            "tasklane_sse_watched_tasks",
            "Tasks with at least one open live stream",
            gauge(hub_value(|hub| hub.watched_tasks() as u64)),
        );
        let lag = Counter::<u64>::default();
        lag.inc_by(hub_value(LiveHub::lag_recoveries));
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "tasklane_sse_feed_lag",
            "Times the live hub fell behind the change feed (and re-read the watched tasks) or the task event feed (and had partial subscribers re-read the log)",
            lag,
        );
        let hub_writes = Counter::<u64>::default();
        hub_writes.inc_by(hub_value(LiveHub::hub_writes));
        registry.register(
            "tasklane_sse_hub_writes",
            "Frames the live hub wrote to direct-path task streams itself, in its one pass over a task's subscribers, without waking their tasks",
            hub_writes,
        );
        registry.register(
            "tasklane_http_requests",
            "HTTP requests by route, method and status",
            self.requests.clone(),
        );
        registry.register(
            "tasklane_http_request_duration_seconds",
            "Time to answer HTTP requests (to the response head for streams)",
            self.request_durations.clone(),
        );
        self.folds.register(&mut registry);

        let mut out = String::with_capacity(4096);
        prometheus_text::encode(&mut out, &registry)
            .map_err(|_| StoreError::Backend("encoding the metrics failed".to_owned()))?;
        Ok(out)
    }
}

/// A gauge reading `value`.
fn gauge(value: u64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    gauge
}

/// Maps a method to a static name, so arbitrary client input cannot create new series.
fn known_method(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    KNOWN
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(method))
        .unwrap_or("OTHER")
}

async fn record_durations(metrics: Weak<Metrics>, mut feed: task_store::ChangeReceiver) {
    loop {
        let change = match feed.recv().await {
            Ok(change) => change,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "metrics fell behind the change feed; some task durations are not recorded"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(metrics) = metrics.upgrade() else {
            return;
        };
        if let TaskChange::Upserted(task) = change {
            if task.status.is_terminal() {
                metrics.observe_finished(&task);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use task_core::TaskStatus::*;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::live::testing::{task, FakeStore};
    use crate::live::{task_stream, tasks_stream, SseConfig, StreamScope};

    /// Checks the exposition format: every sample belongs to a family announced by `# HELP`
    /// and `# TYPE` lines before it, and every sample line is `name{labels} number`.
    fn check_format(text: &str) {
        let mut announced: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                announced.push(rest.split(' ').next().unwrap().to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                assert_eq!(parts.next(), announced.last().map(String::as_str), "{line}");
                assert!(
                    ["counter", "gauge", "histogram"].contains(&parts.next().unwrap()),
                    "{line}"
                );
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let name = series.split('{').next().unwrap();
            let family = announced.last().unwrap();
            assert!(
                name == family
                    || [
                        format!("{family}_bucket"),
                        format!("{family}_sum"),
                        format!("{family}_count")
                    ]
                    .contains(&name.to_owned()),
                "{line} is not in family {family}"
            );
        }
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_method_and_status() {
        let metrics = Metrics::new(FakeStore::new(16));
        metrics.observe_request("/api/tasks", "POST", 200, Duration::from_micros(700));
        metrics.observe_request("/api/tasks", "post", 200, Duration::from_millis(3));
        metrics.observe_request("/api/tasks", "POST", 400, Duration::from_secs(9));
        metrics.observe_request("/api/tasks", "BREW", 405, Duration::from_millis(1));
        let text = metrics.render().await.unwrap();
        check_format(&text);
        for expected in [
            "tasklane_http_requests_total{route=\"/api/tasks\",method=\"POST\",status=\"200\"} 2",
            "tasklane_http_requests_total{route=\"/api/tasks\",method=\"POST\",status=\"400\"} 1",
            "tasklane_http_requests_total{route=\"/api/tasks\",method=\"OTHER\",status=\"405\"} 1",
            "tasklane_http_request_duration_seconds_bucket{route=\"/api/tasks\",method=\"POST\",le=\"0.001\"} 1",
            "tasklane_http_request_duration_seconds_bucket{route=\"/api/tasks\",method=\"POST\",le=\"0.005\"} 2",
            "tasklane_http_request_duration_seconds_bucket{route=\"/api/tasks\",method=\"POST\",le=\"5\"} 2",
            "tasklane_http_request_duration_seconds_bucket{route=\"/api/tasks\",method=\"POST\",le=\"+Inf\"} 3",
            "tasklane_http_request_duration_seconds_count{route=\"/api/tasks\",method=\"POST\"} 3",
            "# TYPE tasklane_http_requests_total counter",
            "# TYPE tasklane_http_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|line| line == expected), "missing {expected}\n{text}");
        }
    }

    #[tokio::test]
    async fn task_counts_queue_depth_and_durations_come_from_the_store() {
        let store = FakeStore::new(16);
        let metrics = Metrics::new(store.clone());
        store.put_silently(task(1, "ann", 1, Pending));
        store.put_silently(task(2, "bob", 1, Pending));
        store.put_silently(task(3, "ann", 2, Processing));
        // Finished: started at 1 000 ms, completed at 4 000 ms.
        store.commit(task(4, "ann", 5, Completed));
        let text = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let text = metrics.render().await.unwrap();
                if text.contains("tasklane_task_duration_seconds_count") {
                    return text;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        check_format(&text);
        for expected in [
            "tasklane_tasks{status=\"pending\",task_type=\"generation\"} 2",
            "tasklane_tasks{status=\"processing\",task_type=\"generation\"} 1",
            "tasklane_tasks{status=\"completed\",task_type=\"generation\"} 1",
            "tasklane_queue_depth 2",
            "tasklane_task_duration_seconds_bucket{task_type=\"generation\",status=\"completed\",le=\"2.5\"} 0",
            "tasklane_task_duration_seconds_bucket{task_type=\"generation\",status=\"completed\",le=\"5\"} 1",
            "tasklane_task_duration_seconds_sum{task_type=\"generation\",status=\"completed\"} 3.0",
            "tasklane_task_duration_seconds_count{task_type=\"generation\",status=\"completed\"} 1",
        ] {
            assert!(text.lines().any(|line| line == expected), "missing {expected}\n{text}");
        }
    }

    #[tokio::test]
    async fn live_streams_are_gauges() {
        let store = FakeStore::new(16);
        let metrics = Metrics::new(store.clone());
        let hub = LiveHub::start(store, CancellationToken::new());
        metrics.track_live(&hub);
        let has = |text: &str, line: &str| text.lines().any(|l| l == line);
        let text = metrics.render().await.unwrap();
        check_format(&text);
        assert!(has(&text, "tasklane_sse_streams_open 0"), "{text}");
        assert!(has(&text, "tasklane_sse_watched_tasks 0"), "{text}");
        assert!(has(&text, "tasklane_sse_feed_lag_total 0"), "{text}");
        let list = tasks_stream(&hub, StreamScope::All, &SseConfig::default(), Box::new(()));
        let one = task_stream(
            &hub,
            task(1, "ann", 1, Processing),
            None,
            &SseConfig::default(),
            Box::new(()),
        );
        let text = metrics.render().await.unwrap();
        assert!(has(&text, "tasklane_sse_streams_open 2"), "{text}");
        assert!(has(&text, "tasklane_sse_watched_tasks 1"), "{text}");
        drop((list, one));
        let text = metrics.render().await.unwrap();
        assert!(has(&text, "tasklane_sse_streams_open 0"), "{text}");
        assert!(has(&text, "tasklane_sse_watched_tasks 0"), "{text}");
    }

    #[tokio::test]
    async fn label_values_are_escaped() {
        let metrics = Metrics::new(FakeStore::new(16));
        metrics.observe_request("/a\"b\\c\nd", "GET", 200, Duration::from_millis(1));
        let text = metrics.render().await.unwrap();
        let expected =
            "tasklane_http_requests_total{route=\"/a\\\"b\\\\c\\nd\",method=\"GET\",status=\"200\"} 1";
        assert!(text.lines().any(|line| line == expected), "{text}");
    }
}
