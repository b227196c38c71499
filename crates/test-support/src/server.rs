//! The fake provider server: a hyper 1.x HTTP/1 server on `127.0.0.1:0` that checks each request,
//! records it and answers from a script.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::checks::{self, Refusal};
use crate::stream_body::{self, Content, ItemMarks, StreamRequest};
use crate::{envelope, lock, Expectations, FakeError, ProviderKind, ProviderSchemas};
use crate::{RecordedRequest, Scripted, StreamPlan};

/// Every answer's body: whole, or streamed through a channel.
type FakeBody = BoxBody<Bytes, std::io::Error>;

/// The body [`Scripted::Malformed`] sends: valid JSON up to the point where it is cut off.
const MALFORMED_BODY: &str =
    r#"{"id": "fake", "choices": [{"index": 0, "message": {"content": "{\"ans"#;
/// After a failed `accept` (say, out of file descriptors) the loop waits this long before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A running fake provider. Dropping it stops the server and closes every open connection.
#[derive(Debug)]
pub struct FakeProvider {
    kind: ProviderKind,
    addr: SocketAddr,
    shared: Arc<Shared>,
    // Never sent on: dropping it wakes every server task, which then stops.
    _shutdown: watch::Sender<()>,
}

#[derive(Debug)]
struct Shared {
    kind: ProviderKind,
    expect: Expectations,
    schemas: Arc<ProviderSchemas>,
    script: Mutex<VecDeque<Scripted>>,
    /// Until when every request is answered 429 with this `Retry-After` (seconds), the script
    /// untouched: a provider rate limited for a while.
    rate_limited: Mutex<Option<(std::time::Instant, u64)>>,
    log: Mutex<Log>,
    counters: watch::Sender<Counters>,
    /// When each streamed item's last piece was handed to its connection, in order.
    items_written: ItemMarks,
}

#[derive(Debug, Default)]
struct Log {
    requests: Vec<RecordedRequest>,
    schema_violations: Vec<String>,
    protocol_violations: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    requests: usize,
    connections_closed: usize,
}

impl FakeProvider {
    /// Starts a fake speaking `kind` that accepts any non-empty key and model.
    ///
    /// # Panics
    /// If the official schemas cannot be found or compiled, or the loopback port cannot be bound:
    /// a test must fail loudly rather than run without its checks.
    pub async fn start(kind: ProviderKind, script: Vec<Scripted>) -> FakeProvider {
        Self::start_with(kind, Expectations::default(), script).await
    }

    /// Starts a fake that additionally demands what `expect` says of key and model.
    ///
    /// # Panics
    /// As [`FakeProvider::start`].
    pub async fn start_with(
        kind: ProviderKind,
        expect: Expectations,
        script: Vec<Scripted>,
    ) -> FakeProvider {
        match Self::try_start(kind, expect, script).await {
            Ok(fake) => fake,
            Err(e) => panic!("cannot start the fake {kind} provider: {e}"),
        }
    }

    /// Starts a fake, returning an error instead of panicking.
    pub async fn try_start(
        kind: ProviderKind,
        expect: Expectations,
        script: Vec<Scripted>,
    ) -> Result<FakeProvider, FakeError> {
        let schemas = ProviderSchemas::get(kind)?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(FakeError::Bind)?;
        let addr = listener.local_addr().map_err(FakeError::Bind)?;
        let shared = Arc::new(Shared {
            kind,
            expect,
            schemas,
            script: Mutex::new(script.into()),
            rate_limited: Mutex::new(None),
            log: Mutex::default(),
            counters: watch::Sender::new(Counters::default()),
            items_written: ItemMarks::default(),
        });
        let (shutdown, stopped) = watch::channel(());
        tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        Ok(FakeProvider {
            kind,
            addr,
            shared,
            _shutdown: shutdown,
        })
    }

    /// The wire format this fake speaks.
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The base URL to configure the client with, shaped like the real default base: it ends in
    /// `/v1` for OpenAI and has no path for Anthropic and Gemini.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.kind.base_path())
    }

    /// Appends answers to the script.
    pub fn push(&self, answers: impl IntoIterator<Item = Scripted>) {
        lock(&self.shared.script).extend(answers);
    }

    /// Answers every request that arrives within `window` from now with 429 and
    /// `Retry-After: retry_after_secs` (for Gemini, in the body), without using the script.
    pub fn rate_limit_for(&self, window: Duration, retry_after_secs: u64) {
        *lock(&self.shared.rate_limited) =
            Some((std::time::Instant::now() + window, retry_after_secs));
    }

    /// How many scripted answers are still unused.
    pub fn remaining_script(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).requests.clone()
    }

    /// Every way a request body broke the official request schema. Tests assert this is empty.
    pub fn schema_violations(&self) -> Vec<String> {
        lock(&self.shared.log).schema_violations.clone()
    }

    /// Every wrong path, header, key or model, and requests beyond the script. Tests assert this is
    /// empty.
    pub fn protocol_violations(&self) -> Vec<String> {
        lock(&self.shared.log).protocol_violations.clone()
    }

    /// When the last piece of each streamed answer item (each question of a quiz answer) was
    /// handed to its connection, in the order written, over every stream so far: the start of
    /// an item's journey through the client, for latency measurements.
    pub fn items_written(&self) -> Vec<std::time::Instant> {
        lock(&self.shared.items_written).clone()
    }

    /// How many client connections have closed, from either side.
    pub fn connections_closed(&self) -> usize {
        self.shared.counters.borrow().connections_closed
    }

    /// Waits until at least `count` requests have arrived (a hanging request counts on arrival).
    pub async fn wait_for_requests(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<(), FakeError> {
        self.wait("requests", count, timeout, |c| c.requests).await
    }

    /// Waits until at least `count` client connections have closed.
    pub async fn wait_for_closed_connections(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<(), FakeError> {
        self.wait("closed connections", count, timeout, |c| {
            c.connections_closed
        })
        .await
    }

    async fn wait(
        &self,
        what: &'static str,
        wanted: usize,
        timeout: Duration,
        field: fn(&Counters) -> usize,
    ) -> Result<(), FakeError> {
        let mut counters = self.shared.counters.subscribe();
        let reached =
            tokio::time::timeout(timeout, counters.wait_for(|c| field(c) >= wanted)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            // The sender lives in `self.shared`, so it cannot be dropped while we wait.
            Ok(Err(_)) | Err(_) => Err(FakeError::WaitTimedOut {
                what,
                wanted,
                seen: field(&self.shared.counters.borrow()),
                timeout,
            }),
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<()>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let shared = Arc::clone(&shared);
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service_state = Arc::clone(&shared);
            let service = service_fn(move |request| {
                let shared = Arc::clone(&service_state);
                async move { Ok::<_, Infallible>(exchange(&shared, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            // A client that closes while its request hangs ends `connection` with an error: that
            // is the event the abort tests wait for, so the result itself does not matter.
            tokio::select! {
                _ = connection => {}
                _ = stopped.changed() => {}
            }
            shared.counters.send_modify(|c| c.connections_closed += 1);
        });
    }
}

/// Checks and records one request, then answers it from the script.
async fn exchange(shared: &Shared, request: Request<Incoming>) -> Response<FakeBody> {
    let (parts, body) = request.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return json_response(400, format!("{{\"error\":\"unreadable body: {e}\"}}")),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let mut recorded = RecordedRequest {
        received_at: std::time::Instant::now(),
        method: parts.method.to_string(),
        path,
        headers: parts.headers,
        body: Value::Null,
    };
    let parsed = serde_json::from_slice::<Value>(&bytes);
    let schema_problems = match &parsed {
        Ok(body) => shared.schemas.check_request(body),
        Err(_) => Vec::new(),
    };
    if let Ok(body) = &parsed {
        recorded.body = body.clone();
    }
    let mut refusals = checks::check(shared.kind, &shared.expect, &recorded);
    if let Err(e) = parsed {
        refusals.push(Refusal::BadRequest(format!("body is not JSON: {e}")));
    }
    if let Some(first) = schema_problems.first() {
        refusals.push(Refusal::BadRequest(format!("schema violation {first}")));
    }

    let model = checks::requested_model(shared.kind, &recorded).unwrap_or_default();
    let tool_name = forced_tool_name(&recorded.body);
    let credentials = recorded
        .header(shared.kind.auth_header())
        .unwrap_or_default()
        .to_owned();
    let stream = checks::wants_stream(shared.kind, &recorded).then(|| StreamRequest {
        kind: shared.kind,
        model: model.clone(),
        tool_name: tool_name.clone(),
        include_usage: recorded
            .body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true),
    });
    let answer = {
        let mut log = lock(&shared.log);
        let number = log.requests.len() + 1;
        let label = format!("request #{number} ({} {})", recorded.method, recorded.path);
        log.schema_violations
            .extend(schema_problems.iter().map(|p| format!("{label}: {p}")));
        log.protocol_violations.extend(
            refusals
                .iter()
                .filter(|r| !r.message().starts_with("schema violation"))
                .map(|r| format!("{label}: {}", r.message())),
        );
        let answer = match refusals.first() {
            // A refused request uses no scripted answer, so the script stays aligned.
            Some(refusal) => Err(refusal.clone()),
            None => match rate_limited_now(shared, recorded.received_at)
                .or_else(|| lock(&shared.script).pop_front())
            {
                Some(scripted) => Ok(scripted),
                None => {
                    log.protocol_violations.push(format!(
                        "{label}: unexpected request, the script is exhausted"
                    ));
                    Err(Refusal::BadRequest(
                        "fake provider script exhausted".to_owned(),
                    ))
                }
            },
        };
        log.requests.push(recorded);
        answer
    };
    shared.counters.send_modify(|c| c.requests += 1);

    match answer {
        Err(refusal) => error_response(shared.kind, refusal.status(), refusal.message()),
        Ok(scripted) => match stream {
            Some(stream) => {
                streamed_response(&stream, &credentials, scripted, &shared.items_written).await
            }
            None => {
                scripted_response(shared.kind, &model, &tool_name, &credentials, scripted).await
            }
        },
    }
}

/// The answer to a request that asked for a stream: success, text and malformed output are
/// streamed; errors, rate limits, hangs and raw bodies are answered as without a stream (a real
/// provider reports those before the stream starts).
async fn streamed_response(
    request: &StreamRequest,
    credentials: &str,
    scripted: Scripted,
    marks: &ItemMarks,
) -> Response<FakeBody> {
    let body = match scripted {
        Scripted::Success(answer) => {
            stream_body::start(request, Content::Answer, &StreamPlan::new(answer), marks)
        }
        Scripted::Stream(plan) => stream_body::start(request, Content::Answer, &plan, marks),
        Scripted::Text(text) => stream_body::start(
            request,
            Content::Text,
            &StreamPlan::new(Value::from(text)),
            marks,
        ),
        Scripted::Malformed => stream_body::malformed(),
        other => {
            let model = request.model.clone();
            return scripted_response(request.kind, &model, &request.tool_name, credentials, other)
                .await;
        }
    };
    let mut response = Response::new(body.boxed());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    response
}

async fn scripted_response(
    kind: ProviderKind,
    model: &str,
    tool_name: &str,
    credentials: &str,
    scripted: Scripted,
) -> Response<FakeBody> {
    match scripted {
        Scripted::Success(answer) => json_response(
            200,
            envelope::success_body(kind, model, tool_name, &answer).to_string(),
        ),
        Scripted::Text(text) => {
            json_response(200, envelope::text_body(kind, model, &text).to_string())
        }
        Scripted::Status(status) => error_response(
            kind,
            status,
            &format!("fake provider: scripted status {status}"),
        ),
        Scripted::RateLimited { retry_after_secs } => {
            let mut response = json_response(
                429,
                envelope::rate_limited_body(kind, retry_after_secs).to_string(),
            );
            if kind != ProviderKind::Gemini {
                response
                    .headers_mut()
                    .insert("retry-after", http::HeaderValue::from(retry_after_secs));
            }
            response
        }
        Scripted::Hang => std::future::pending().await,
        Scripted::Malformed => json_response(200, MALFORMED_BODY.to_owned()),
        Scripted::Raw(status, body) => json_response(status, body),
        Scripted::EchoCredentials(status) => error_response(
            kind,
            status,
            &format!(
                "fake provider: the request sent {}: {credentials}",
                kind.auth_header()
            ),
        ),
        Scripted::Stream(plan) => json_response(
            200,
            envelope::success_body(kind, model, tool_name, &plan.answer).to_string(),
        ),
    }
}

fn error_response(kind: ProviderKind, status: u16, message: &str) -> Response<FakeBody> {
    json_response(
        status,
        envelope::error_body(kind, status, message).to_string(),
    )
}

fn json_response(status: u16, body: String) -> Response<FakeBody> {
    let full = Full::new(Bytes::from(body)).map_err(|never| match never {});
    let mut response = Response::new(full.boxed());
    // An out-of-range scripted status is a mistake in the test; answer 500 so it shows.
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The tool an Anthropic request forces, which a real model's `tool_use` block names.
fn forced_tool_name(body: &Value) -> String {
    body.pointer("/tool_choice/name")
        .and_then(Value::as_str)
        .unwrap_or("json")
        .to_owned()
}

/// The 429 a request arriving `at` gets while the fake is rate limited.
fn rate_limited_now(shared: &Shared, at: std::time::Instant) -> Option<Scripted> {
    match *lock(&shared.rate_limited) {
        Some((until, retry_after_secs)) if at < until => {
            Some(Scripted::RateLimited { retry_after_secs })
        }
        _ => None,
    }
}
