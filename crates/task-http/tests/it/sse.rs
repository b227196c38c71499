//! The live endpoints end to end: a real server on 127.0.0.1:0, real HTTP connections, and the
//! streams read by a WHATWG-conformant SSE parser (`support/sse_parser.rs`). Task changes are made
//! through the store, exactly as the worker runtime makes them.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, HOST};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use task_core::{NewTask, Task, TaskId};
use task_http::auth::accounts::add_user;
use task_http::live::LiveHub;
use task_http::{serve, AppState, HttpConfig};
use task_store::{ClaimRequest, Failure, Lease, MemoryStore, Role, TaskStore};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::sse_parser::{Event, Item, Parser};

/// How long any single expected frame may take before the test fails.
const FRAME_BOUND: Duration = Duration::from_secs(5);
const ANN: &str = "ann@example.com";
const BOB: &str = "bob@example.com";

/// A running server with two users.
struct Server {
    addr: SocketAddr,
    store: Arc<MemoryStore>,
    tokens: HashMap<&'static str, String>,
    hub: Arc<LiveHub>,
    stop: Option<oneshot::Sender<()>>,
    serving: JoinHandle<()>,
}

impl Server {
    async fn start(config: HttpConfig) -> Server {
        let store = Arc::new(MemoryStore::new());
        let mut tokens = HashMap::new();
        for email in [ANN, BOB] {
            let (_, token) = add_user(&*store, email, Role::User).await.unwrap();
            tokens.insert(email, token.secret().to_owned());
        }
        let state = AppState::new(store.clone(), store.clone(), config, ["noop"]).unwrap();
        let hub = state.hub().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            serve(listener, state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Server {
            addr,
            store,
            tokens,
            hub,
            stop: Some(stop),
            serving,
        }
    }

    async fn task(&self, owner: &str) -> Task {
        self.store
            .create(NewTask::new(owner, "noop"))
            .await
            .unwrap()
    }

    /// Claims `task` as a worker would and returns its lease.
    async fn claim(&self, task: &Task) -> Lease {
        let claimed = self
            .store
            .claim(&ClaimRequest {
                worker_id: "test-worker".into(),
                limit: 1,
                task_types: vec![],
                lease_for: Duration::from_secs(60),
                max_running_per_user: None,
                now: now_ms() + 1000,
            })
            .await
            .unwrap();
        assert_eq!(claimed[0].id, task.id, "the only pending task");
        Lease::of(&claimed[0]).unwrap()
    }

    async fn subscribe(&self, user: &str, task: &TaskId, last_event_id: Option<i64>) -> Stream {
        let path = format!("/api/subscribeToTask?taskId={task}");
        Stream::open(self.addr, &path, &self.tokens[user], last_event_id, None).await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.serving)
            .await
            .expect("the server shuts down within its grace period")
            .unwrap();
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One SSE response read through [`Parser`].
struct Stream {
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    parser: Parser,
    items: VecDeque<Item>,
}

impl Stream {
    /// Opens `path` on a new connection. `recv_buffer` shrinks the client's socket buffer, so
    /// a client that does not read blocks the server's writes sooner.
    async fn open(
        addr: SocketAddr,
        path: &str,
        token: &str,
        last_event_id: Option<i64>,
        recv_buffer: Option<u32>,
    ) -> Stream {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let tcp = socket.connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = Request::get(path)
            .header(HOST, addr.to_string())
            .header(ACCEPT, "text/event-stream")
            .header(AUTHORIZATION, format!("Bearer {token}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        Stream {
            status: parts.status,
            headers: parts.headers,
            body,
            parser: Parser::default(),
            items: VecDeque::new(),
        }
    }

    /// The next parsed item, or `None` at the end of the body.
    async fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.items.pop_front() {
                return Some(item);
            }
            let frame = tokio::time::timeout(FRAME_BOUND, self.body.frame())
                .await
                .expect("no SSE traffic within the bound")?
                .expect("the body ends cleanly, never with an error");
            if let Ok(data) = frame.into_data() {
                self.items.extend(self.parser.feed(&data));
            }
        }
    }

    /// The next event (skipping comments and `retry`), or `None` at the end of the body.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            match self.next_item().await? {
                Item::Event(event) => return Some(event),
                Item::Comment(_) | Item::Retry(_) => {}
            }
        }
    }

    /// The next event, which must exist, as JSON with its id.
    async fn expect(&mut self) -> (i64, Value) {
        let event = self.next_event().await.expect("the stream ended early");
        assert_eq!(event.event, "message", "events are unnamed");
        let id = event.last_event_id.parse().unwrap_or(-1);
        (id, serde_json::from_str(&event.data).unwrap())
    }

    /// Asserts that the body ends (cleanly) with no further event.
    async fn expect_end(&mut self) {
        if let Some(event) = self.next_event().await {
            panic!("expected the end of the stream, got {event:?}");
        }
    }
}

/// Feeds `input` to a [`Parser`] in chunks of every size from 1 byte to the whole, and checks
/// that each chunking gives `expected`.
fn check_parse(input: &str, expected: &[Item]) {
    for size in 1..=input.len().max(1) {
        let mut parser = Parser::default();
        let mut items = Vec::new();
        for chunk in input.as_bytes().chunks(size) {
            items.extend(parser.feed(chunk));
        }
        assert_eq!(items, expected, "{input:?} in chunks of {size}");
    }
}

fn message(data: &str, last_event_id: &str, had_id: bool) -> Item {
    Item::Event(Event {
        event: "message".into(),
        data: data.into(),
        last_event_id: last_event_id.into(),
        had_id,
    })
}

#[test]
fn the_test_parser_follows_the_whatwg_rules() {
    check_parse("data: a\n\n", &[message("a", "", false)]);
    check_parse("data: a\ndata: b\n\n", &[message("a\nb", "", false)]);
    check_parse("data:a\r\ndata:  b\r\r", &[message("a\n b", "", false)]);
    check_parse(
        "id: 7\ndata: x\n\ndata: y\n\n",
        &[message("x", "7", true), message("y", "7", false)],
    );
    check_parse(
        ":\n\n: keep\n",
        &[Item::Comment("".into()), Item::Comment(" keep".into())],
    );
    check_parse("retry: 3000\n\nretry: 1x\n\n", &[Item::Retry(3000)]);
    check_parse("data\n\n", &[message("", "", false)]);
    check_parse("data: \n\n", &[message("", "", false)]);
    check_parse("id: 1\n\n", &[]);
    check_parse("data: unfinished", &[]);
    check_parse("\u{FEFF}data: bom\n\n", &[message("bom", "", false)]);
    check_parse("id: a\0b\ndata: z\n\n", &[message("z", "", false)]);
    check_parse(
        "event: named\ndata: n\n\n",
        &[Item::Event(Event {
            event: "named".into(),
            data: "n".into(),
            last_event_id: "".into(),
            had_id: false,
        })],
    );
    check_parse("data: é€𝄞\n\n", &[message("é€𝄞", "", false)]);
}

#[tokio::test]
async fn the_snapshot_arrives_at_once_with_retry_and_sse_headers() {
    let server = Server::start(HttpConfig::default()).await;
    let task = server.task(ANN).await;
    let mut stream = server.subscribe(ANN, &task.id, None).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.headers["cache-control"], "no-cache");
    assert_eq!(stream.headers["x-accel-buffering"], "no");
    assert_eq!(stream.next_item().await, Some(Item::Retry(3000)));
    let event = stream.next_event().await.unwrap();
    assert!(event.had_id);
    assert_eq!(event.last_event_id, "1");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["type"], "update");
    assert_eq!(data["task"]["id"], task.id.as_str());
    assert_eq!(data["task"]["status"], "pending");
    server.stop().await;
}

#[tokio::test]
async fn changes_stream_in_order_with_versions_as_ids_until_complete() {
    let server = Server::start(HttpConfig::default()).await;
    let task = server.task(ANN).await;
    let mut stream = server.subscribe(ANN, &task.id, None).await;
    assert_eq!(stream.expect().await.0, 1);
    let lease = server.claim(&task).await;
    let (id, data) = stream.expect().await;
    assert_eq!(
        (id, data["task"]["status"].as_str()),
        (2, Some("processing"))
    );
    for (step, progress) in [10, 40, 70].into_iter().enumerate() {
        let description = format!("step {step}");
        server
            .store
            .update_progress(&lease, progress, Some(description.clone()))
            .await
            .unwrap();
        let (id, data) = stream.expect().await;
        assert_eq!(id, 3 + step as i64);
        assert_eq!(data["type"], "update");
        assert_eq!(data["task"]["progress"], progress);
        assert_eq!(data["task"]["description"], description);
    }
    server
        .store
        .complete(&lease, json!({"questions": [1, 2]}))
        .await
        .unwrap();
    let (id, data) = stream.expect().await;
    assert_eq!(id, 6);
    assert_eq!(data["type"], "complete");
    assert_eq!(data["task"]["result"], json!({"questions": [1, 2]}));
    assert_eq!(data["task"]["progress"], 100);
    stream.expect_end().await;
    server.stop().await;
}

#[tokio::test]
async fn a_failed_task_ends_with_its_final_state_then_the_error() {
    let server = Server::start(HttpConfig::default()).await;
    let task = server.task(ANN).await;
    let mut stream = server.subscribe(ANN, &task.id, None).await;
    stream.expect().await;
    let lease = server.claim(&task).await;
    stream.expect().await;
    server
        .store
        .fail(
            &lease,
            Failure::permanent("API key not configured for provider: openai"),
        )
        .await
        .unwrap();
    // The final update carries no id (the client still holds 2), so a client cut before the
    // error resumes from 2 and gets both again; the error carries the final version.
    let (id, update) = stream.expect().await;
    assert_eq!((id, update["task"]["status"].as_str()), (2, Some("failed")));
    let (id, error) = stream.expect().await;
    assert_eq!(id, 3);
    assert_eq!(
        error,
        json!({"type":"error","error":"API key not configured for provider: openai"})
    );
    stream.expect_end().await;
    server.stop().await;
}

#[tokio::test]
async fn a_cancelled_or_deleted_task_ends_the_stream_with_an_error() {
    let server = Server::start(HttpConfig::default()).await;
    let cancelled = server.task(ANN).await;
    let mut stream = server.subscribe(ANN, &cancelled.id, None).await;
    stream.expect().await;
    server.store.request_cancel(&cancelled.id).await.unwrap();
    assert_eq!(stream.expect().await.1["task"]["status"], "cancelled");
    assert_eq!(
        stream.expect().await.1,
        json!({"type":"error","error":"Task was cancelled"})
    );
    stream.expect_end().await;

    let deleted = server.task(ANN).await;
    let mut stream = server.subscribe(ANN, &deleted.id, None).await;
    stream.expect().await;
    server.store.delete(&deleted.id).await.unwrap();
    assert_eq!(
        stream.expect().await.1,
        json!({"type":"error","error":"Task was deleted"})
    );
    stream.expect_end().await;
    server.stop().await;
}

#[tokio::test]
async fn a_finished_task_gets_snapshot_and_terminal_event_at_once() {
    let server = Server::start(HttpConfig::default()).await;
    let task = server.task(ANN).await;
    let lease = server.claim(&task).await;
    server
        .store
        .complete(&lease, json!({"ok": true}))
        .await
        .unwrap();
    let mut stream = server.subscribe(ANN, &task.id, None).await;
    let (id, data) = stream.expect().await;
    assert_eq!((id, data["type"].as_str()), (3, Some("complete")));
    stream.expect_end().await;
    server.stop().await;
}

#[tokio::test]
async fn last_event_id_resumes_without_duplicates() {
    let server = Server::start(HttpConfig::default()).await;
    let task = server.task(ANN).await;
    let lease = server.claim(&task).await;
    server
        .store
        .update_progress(&lease, 30, None)
        .await
        .unwrap();
    let mut first = server.subscribe(ANN, &task.id, None).await;
    let (seen, _) = first.expect().await;
    assert_eq!(seen, 3);
    drop(first);

    // Reconnecting with the last id: version 3 is not sent again; the next change is.
    let mut resumed = server.subscribe(ANN, &task.id, Some(seen)).await;
    server
        .store
        .update_progress(&lease, 60, None)
        .await
        .unwrap();
    let (id, data) = resumed.expect().await;
    assert_eq!((id, data["task"]["progress"].as_i64()), (4, Some(60)));
    server.store.complete(&lease, json!({})).await.unwrap();
    let (id, data) = resumed.expect().await;
    assert_eq!((id, data["type"].as_str()), (5, Some("complete")));
    resumed.expect_end().await;

    // The client saw the final event: 204 tells its EventSource to stop reconnecting.
    let finished = server.subscribe(ANN, &task.id, Some(5)).await;
    assert_eq!(finished.status, StatusCode::NO_CONTENT);
    server.stop().await;
}

#[tokio::test]
async fn the_monitoring_limit_sends_the_timeout_event_and_closes() {
    let config = HttpConfig {
        monitor_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let server = Server::start(config).await;
    let task = server.task(ANN).await;
    let started = Instant::now();
    let mut stream = server.subscribe(ANN, &task.id, None).await;
    stream.expect().await;
    let (_, data) = stream.expect().await;
    assert_eq!(
        data,
        json!({"type":"timeout","error":"Task monitoring timeout"})
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    stream.expect_end().await;
    server.stop().await;
}

#[tokio::test]
async fn idle_streams_receive_keep_alive_comments() {
    let server = Server::start(HttpConfig {
        sse_keep_alive: Duration::from_millis(300),
        ..HttpConfig::default()
    })
    .await;
    let task = server.task(ANN).await;
    let path = format!("/api/subscribeToTask?taskId={}", task.id);
    let mut stream = Stream::open(server.addr, &path, &server.tokens[ANN], None, None).await;
    stream.expect().await;
    let started = Instant::now();
    let item = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let frame = stream.body.frame().await.unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                if let Some(item) = stream.parser.feed(&data).into_iter().next() {
                    return item;
                }
            }
        }
    })
    .await
    .expect("a keep-alive within 5 s");
    assert_eq!(item, Item::Comment(String::new()));
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.stop().await;
}

#[tokio::test]
async fn the_list_stream_carries_the_callers_changes_only() {
    let server = Server::start(HttpConfig::default()).await;
    let mut ann = Stream::open(
        server.addr,
        "/api/subscribeToTasks",
        &server.tokens[ANN],
        None,
        None,
    )
    .await;
    assert_eq!(ann.status, 200);
    assert_eq!(ann.next_item().await, Some(Item::Retry(3000)));
    server.task(BOB).await;
    let mine = server.task(ANN).await;
    server.store.delete(&mine.id).await.unwrap();
    let created = ann.next_event().await.unwrap();
    assert!(!created.had_id, "list events carry no id");
    let created: Value = serde_json::from_str(&created.data).unwrap();
    assert_eq!(created["type"], "update");
    assert_eq!(created["task"]["id"], mine.id.as_str());
    let (_, deleted) = ann.expect().await;
    assert_eq!(
        deleted,
        json!({"type":"deleted","taskId": mine.id.as_str()})
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_cleanly() {
    let server = Server::start(HttpConfig::default()).await;
    let task = server.task(ANN).await;
    let mut one = server.subscribe(ANN, &task.id, None).await;
    let mut list = Stream::open(
        server.addr,
        "/api/subscribeToTasks",
        &server.tokens[BOB],
        None,
        None,
    )
    .await;
    one.expect().await;
    assert_eq!(list.next_item().await, Some(Item::Retry(3000)));
    let stopping = tokio::spawn(server.stop());
    one.expect_end().await;
    assert_eq!(list.next_item().await, None);
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_does_not_delay_other_subscribers() {
    // About 2 KiB per event: enough to fill the slow client's buffers after a second or so.
    const UPDATES: i64 = 2000;
    let server = Server::start(HttpConfig::default()).await;
    let task = server.task(ANN).await;
    let path = format!("/api/subscribeToTask?taskId={}", task.id);
    // This client reads nothing until the end, and its small receive buffer makes the
    // server's writes to it block early.
    let mut slow = Stream::open(server.addr, &path, &server.tokens[ANN], None, Some(4096)).await;
    let mut fast = server.subscribe(ANN, &task.id, None).await;
    fast.expect().await;
    let lease = server.claim(&task).await;
    let committed: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();

    let store = server.store.clone();
    let times = committed.clone();
    let writer = tokio::spawn(async move {
        // One update per millisecond: a pace a reader keeps up with, so any delay the fast
        // reader sees would come from the stalled one.
        let mut pace = tokio::time::interval(Duration::from_millis(1));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let padding = "x".repeat(1900);
        for n in 0..UPDATES {
            pace.tick().await;
            let updated = store
                .update_progress(&lease, 50, Some(format!("{n} {padding}")))
                .await
                .unwrap();
            times
                .lock()
                .unwrap()
                .insert(updated.version, Instant::now());
        }
        store.complete(&lease, json!({})).await.unwrap()
    });

    let mut worst = Duration::ZERO;
    loop {
        let (id, data) = fast.expect().await;
        if let Some(at) = committed.lock().unwrap().get(&id) {
            worst = worst.max(at.elapsed());
        }
        if data["type"] == "complete" {
            break;
        }
    }
    let completed = writer.await.unwrap();
    assert!(
        worst < Duration::from_millis(500),
        "the fast subscriber waited {worst:?} for an update"
    );

    // The slow client, reading at last, gets the newest state, in order, without repeats,
    // and fewer events than there were versions: its stream skipped what it could not take.
    let mut ids = Vec::new();
    while let Some(event) = slow.next_event().await {
        ids.push(event.last_event_id.parse::<i64>().unwrap());
    }
    assert_eq!(ids.last(), Some(&completed.version));
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(
        (ids.len() as i64) < UPDATES,
        "the slow client was sent all {} events: it never stalled",
        ids.len()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_writes_updates_and_the_final_state_to_direct_path_subscribers_itself() {
    // Streams opened as a connection's first request take the direct path, whose socket the
    // hub writes in one pass: every subscriber gets every update, in order, exactly once,
    // and the updates and the final state were written by the hub, not by each stream's task.
    const SUBSCRIBERS: usize = 20;
    const UPDATES: i64 = 30;
    let server = Server::start(HttpConfig::default()).await;
    let task = server.task(ANN).await;
    let mut streams = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut stream = server.subscribe(ANN, &task.id, None).await;
        assert_eq!(stream.expect().await.0, task.version);
        streams.push(stream);
    }
    let lease = server.claim(&task).await;
    for n in 0..UPDATES {
        server
            .store
            .update_progress(&lease, n, Some(format!("step {n}")))
            .await
            .unwrap();
        // Paced like a real handler's progress, so each update reaches idle streams.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every stream idle again (one woken for the last update has long written it): the final
    // state goes out through the hub's pass too.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before_final = server.hub.hub_writes();
    let completed = server
        .store
        .complete(&lease, json!({"n": 1}))
        .await
        .unwrap();
    for stream in &mut streams {
        let mut seen = Vec::new();
        loop {
            let (id, data) = stream.expect().await;
            seen.push(id);
            if data["type"] == "complete" {
                break;
            }
        }
        stream.expect_end().await;
        assert!(
            seen.windows(2).all(|pair| pair[0] < pair[1]),
            "in order, no repeats: {seen:?}"
        );
        assert_eq!(seen.last(), Some(&completed.version));
        assert!(
            seen.len() as i64 >= UPDATES,
            "paced updates all arrive: {seen:?}"
        );
    }
    assert_eq!(
        server.hub.hub_writes() - before_final,
        SUBSCRIBERS as u64,
        "the hub wrote the final state to every stream, and each stream then ended"
    );
    // The claim's version and most updates went out through the hub's pass (a few may find a
    // stream busy with its keep-alive or the one before, and be written by its task).
    let hub_writes = server.hub.hub_writes();
    assert!(
        hub_writes >= (SUBSCRIBERS as u64) * (UPDATES as u64) / 2,
        "the hub wrote {hub_writes} frames itself"
    );
    server.stop().await;
}
