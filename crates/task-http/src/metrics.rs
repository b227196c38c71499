//! Prometheus metrics in the text exposition format, written by hand: task counts by status
//! and type, queue depth, task durations, open live streams, and HTTP requests by route,
//! method and status with their latency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use std::time::Duration;
use task_core::sync::lock;

use task_core::{Task, TaskStatus};
use task_store::{StoreError, TaskChange, TaskStore};
use tokio::sync::broadcast::error::RecvError;

use crate::live::LiveHub;

/// Upper bounds (seconds) of the HTTP request duration histogram.
pub const REQUEST_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Upper bounds (seconds) of the task duration histogram: AI jobs take seconds to minutes.
pub const TASK_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// A cumulative histogram with fixed buckets.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative; summed when rendered), plus `+Inf` last.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    /// Writes the `_bucket`, `_sum` and `_count` series; `labels` is `k="v",...` or empty.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let separator = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (index, count) in self.counts.iter().enumerate() {
            cumulative += count;
            let le = match self.bounds.get(index) {
                Some(bound) => bound.to_string(),
                None => "+Inf".to_owned(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{separator}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The request counter's key: route pattern, method, status.
type RequestKey = (&'static str, &'static str, u16);
/// The request histogram's key: route pattern, method.
type RouteKey = (&'static str, &'static str);
/// The task duration histogram's key: task type, terminal status.
type TaskKey = (String, TaskStatus);

/// The server's metrics. Create one per server with [`Metrics::new`], record requests with
/// [`Metrics::observe_request`], serve [`Metrics::render`] at `GET /metrics`.
pub struct Metrics {
    store: Arc<dyn TaskStore>,
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    request_durations: Mutex<BTreeMap<RouteKey, Histogram>>,
    task_durations: Mutex<BTreeMap<TaskKey, Histogram>>,
    live: OnceLock<Weak<LiveHub>>,
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
            requests: Mutex::new(BTreeMap::new()),
            request_durations: Mutex::new(BTreeMap::new()),
            task_durations: Mutex::new(BTreeMap::new()),
            live: OnceLock::new(),
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
        *lock(&self.requests)
            .entry((route, method, status))
            .or_insert(0) += 1;
        lock(&self.request_durations)
            .entry((route, method))
            .or_insert_with(|| Histogram::new(&REQUEST_BUCKETS))
            .observe(elapsed.as_secs_f64());
    }

    /// Records a finished task's duration (`completed_at - started_at`).
    fn observe_finished(&self, task: &Task) {
        let (Some(started), Some(completed)) = (task.started_at, task.completed_at) else {
            return;
        };
        let seconds = (completed - started).max(0) as f64 / 1000.0;
        lock(&self.task_durations)
            .entry((task.task_type.clone(), task.status))
            .or_insert_with(|| Histogram::new(&TASK_BUCKETS))
            .observe(seconds);
    }

    /// The metrics in Prometheus text format (version 0.0.4).
    ///
    /// # Errors
    /// When the task counts cannot be read from the store.
    pub async fn render(&self) -> Result<String, StoreError> {
        let counts = self.store.counts().await?;
        let mut out = String::with_capacity(4096);

        header(
            &mut out,
            "tasklane_tasks",
            "gauge",
            "Tasks by status and type.",
        );
        let mut pending = 0;
        for count in &counts {
            if count.status == TaskStatus::Pending {
                pending += count.count;
            }
            let _ = writeln!(
                out,
                "tasklane_tasks{{status=\"{}\",task_type=\"{}\"}} {}",
                count.status,
                escape(&count.task_type),
                count.count
            );
        }

        header(
            &mut out,
            "tasklane_queue_depth",
            "gauge",
            "Tasks waiting to run (pending).",
        );
        let _ = writeln!(out, "tasklane_queue_depth {pending}");

        header(
            &mut out,
            "tasklane_task_duration_seconds",
            "histogram",
            "Run time of finished tasks' last attempt (completed_at - started_at).",
        );
        for ((task_type, status), histogram) in lock(&self.task_durations).iter() {
            let labels = format!("task_type=\"{}\",status=\"{status}\"", escape(task_type));
            histogram.render(&mut out, "tasklane_task_duration_seconds", &labels);
        }

        let hub = self.live.get().and_then(Weak::upgrade);
        let hub_value = |read: fn(&LiveHub) -> u64| hub.as_deref().map_or(0, read);
        header(
            &mut out,
            "tasklane_sse_streams_open",
            "gauge",
            "Open live (SSE) streams.",
        );
        let _ = writeln!(
            out,
            "tasklane_sse_streams_open {}",
            hub_value(|hub| hub.open_streams() as u64)
        );
        header(
            &mut out,
            "tasklane_sse_watched_tasks",
            "gauge",
            "Tasks with at least one open live stream.",
        );
        let _ = writeln!(
            out,
            "tasklane_sse_watched_tasks {}",
            hub_value(|hub| hub.watched_tasks() as u64)
        );
        header(
            &mut out,
            "tasklane_sse_feed_lag_total",
            "counter",
            "Times the live hub fell behind the change feed and re-read the watched tasks.",
        );
        let _ = writeln!(
            out,
            "tasklane_sse_feed_lag_total {}",
            hub_value(LiveHub::lag_recoveries)
        );

        header(
            &mut out,
            "tasklane_http_requests_total",
            "counter",
            "HTTP requests by route, method and status.",
        );
        for ((route, method, status), count) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "tasklane_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }

        header(
            &mut out,
            "tasklane_http_request_duration_seconds",
            "histogram",
            "Time to answer HTTP requests (to the response head for streams).",
        );
        for ((route, method), histogram) in lock(&self.request_durations).iter() {
            let labels = format!("route=\"{}\",method=\"{method}\"", escape(route));
            histogram.render(&mut out, "tasklane_http_request_duration_seconds", &labels);
        }
        Ok(out)
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value as the exposition format requires.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
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
            "tasklane_task_duration_seconds_sum{task_type=\"generation\",status=\"completed\"} 3",
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

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("line\nbreak"), "line\\nbreak");
        assert_eq!(escape("plain-type_1"), "plain-type_1");
    }
}
