//! The servers under test: tasklane's own `serve` over a store, and the hand-written bare hyper
//! baselines that answer the same requests with nothing behind them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use task_core::NewTask;
use task_http::auth::accounts::add_user;
use task_http::body::{self, Body};
use task_http::{serve, AppState, HttpConfig};
use task_runtime::{SearchIndexConfig, SearchIndexer};
use task_store::{ClaimRequest, Role, TaskEventLog, TaskStore, UserStore};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;

/// The bench user's email.
pub const USER: &str = "bench@example.com";

/// A running tasklane server; dropping it shuts the server down.
pub struct Tasklane {
    pub addr: SocketAddr,
    pub token: String,
    _stop: oneshot::Sender<()>,
    _indexer: tokio_util::sync::DropGuard,
}

/// Starts the search indexer on `store` with its default settings, as the binary does, so a
/// server that creates tasks pays for indexing them as it would in production. It runs until
/// the guard is dropped. `TASKLANE_BENCH_NO_SEARCH_INDEXER=1` leaves it off (every task stays
/// above the watermark, so no write rewrites a task's trigram entry): what the index costs.
pub fn search_indexer(store: Arc<dyn TaskStore>) -> tokio_util::sync::DropGuard {
    let stop = CancellationToken::new();
    if std::env::var("TASKLANE_BENCH_NO_SEARCH_INDEXER").is_ok_and(|v| v == "1") {
        return stop.drop_guard();
    }
    SearchIndexer::new(store, SearchIndexConfig::default())
        .expect("the default settings are valid")
        .start(stop.clone());
    stop.drop_guard()
}

/// Starts `serve` over `store` with a user for the bench and the `noop` task type, the
/// store's task event log (so task streams carry partial outputs) and the search indexer
/// beside it, as the binary has them.
pub async fn tasklane<S: TaskStore + UserStore + TaskEventLog>(
    store: Arc<S>,
    config: HttpConfig,
) -> Tasklane {
    let indexer = search_indexer(store.clone());
    let (_, token) = add_user(&*store, USER, Role::User)
        .await
        .expect("create the bench user");
    let state = AppState::new(store.clone(), store.clone(), config, ["noop"])
        .expect("a valid config")
        .with_event_log(store);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = serve(listener, state, async {
            let _ = stopped.await;
        })
        .await;
    });
    Tasklane {
        addr,
        token: token.secret().to_owned(),
        _stop: stop,
        _indexer: indexer,
    }
}

/// The limits that would otherwise stop a benchmark's single user: queue, stream and
/// creation-rate caps.
pub fn bench_config(connections: usize) -> HttpConfig {
    HttpConfig {
        max_queued_per_user: 1 << 40,
        // Creation benchmarks measure the server, not the rate limit; the limit's own cost is
        // measured by the creation bench's rate-limited variant.
        create_rate: None,
        max_sse_per_user: connections + 16,
        max_connections: connections + 256,
        max_ws_subscriptions_per_user: connections + 16,
        ..HttpConfig::default()
    }
}

/// Serves `handler` on bare hyper with the same HTTP/1.1 settings as tasklane's server.
pub async fn bare<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .keep_alive(true);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let handler = handler.clone();
            let service = service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(request).await) }
            });
            let connection = builder.serve_connection(TokioIo::new(tcp), service);
            tokio::spawn(connection);
        }
    });
    addr
}

/// The bare creation baseline: reads the request body and answers `201` with `reply`.
pub async fn bare_creation(reply: Bytes) -> SocketAddr {
    bare(move |request: Request<Incoming>| {
        let reply = reply.clone();
        async move {
            let _ = request.into_body().collect().await;
            created(reply)
        }
    })
    .await
}

/// The durable creation baseline: bare hyper whose handler reads the body, creates the same
/// `noop` task with one `create` call on `store` and answers `201` with it. No routing, auth,
/// JSON parsing, validation, queue limit, log or metrics: the gap between it and
/// [`bare_creation`] is what storing the task costs. The search indexer runs beside it (for
/// the rest of the process), since the store needs it as much as tasklane's server does.
pub async fn bare_durable_creation(store: Arc<dyn TaskStore>) -> SocketAddr {
    let _running = search_indexer(Arc::clone(&store)).disarm();
    bare(move |request: Request<Incoming>| {
        let store = store.clone();
        async move {
            let _ = request.into_body().collect().await;
            let mut new = NewTask::new(USER, "noop");
            new.label = Some("bench".into());
            let task = store.create(new).await.expect("create the task");
            created(Bytes::from(
                serde_json::to_vec(&task).expect("a task serialises"),
            ))
        }
    })
    .await
}

/// `201 Created` with `json` as the body, as tasklane answers a creation.
fn created(json: Bytes) -> Response<Body> {
    let mut response = Response::new(body::full(json));
    *response.status_mut() = StatusCode::CREATED;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, "application/json".parse().expect("static"));
    response
}

/// The bare SSE baseline: every `GET` becomes a stream of the frames sent on `frames`.
pub async fn bare_sse(frames: broadcast::Sender<Bytes>) -> SocketAddr {
    bare(move |_request: Request<Incoming>| {
        let receiver = frames.subscribe();
        async move {
            let events = stream::unfold(receiver, |mut receiver| async move {
                let frame = receiver.recv().await.ok()?;
                Some((Ok::<_, Infallible>(Frame::data(frame)), receiver))
            });
            let opening = stream::once(async {
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"retry: 3000\n\n")))
            });
            let mut response = Response::new(BodyExt::boxed(StreamBody::new(
                futures_util::StreamExt::chain(opening, events),
            )));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, "text/event-stream".parse().expect("static"));
            headers.insert(CACHE_CONTROL, "no-cache".parse().expect("static"));
            response
        }
    })
    .await
}

/// A `noop` task of [`USER`], created and claimed for ten minutes, as a worker holding it:
/// what the latency scenarios publish progress on.
pub async fn claimed_noop(store: &dyn TaskStore) -> task_core::Task {
    let task = store
        .create(NewTask::new(USER, "noop"))
        .await
        .expect("create");
    let mut claimed = store
        .claim(&ClaimRequest {
            worker_id: "bench".into(),
            limit: 1,
            task_types: vec![],
            lease_for: Duration::from_secs(600),
            max_running_per_user: None,
            now: task.run_at + 1,
        })
        .await
        .expect("claim");
    claimed.pop().expect("the task just created")
}
