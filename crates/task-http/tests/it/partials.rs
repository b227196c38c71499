//! `partial` events on `GET /api/subscribeToTask` from the task's event log: replayed after
//! the snapshot, then live, resumed from `Last-Event-ID` without duplicates or gaps — also by
//! a new server on the same database (a restart) — and caught up before the final event.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{json, Value};
use task_core::NewTask;
use task_http::auth::accounts::add_user;
use task_http::live::LiveHub;
use task_http::{serve, AppState, HttpConfig};
use task_store::{ClaimRequest, Lease, Role, SqliteStore, TaskEventLog, TaskStore};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::client::Call;
use crate::support::sse::{Item, SseStream};

const WAIT: Duration = Duration::from_secs(10);
const ANN: &str = "ann@example.com";

/// A server on the SQLite file at `path`, with the store's event log.
struct Server {
    addr: SocketAddr,
    store: Arc<SqliteStore>,
    hub: Arc<LiveHub>,
    stop: Option<oneshot::Sender<()>>,
    serving: JoinHandle<()>,
}

impl Server {
    async fn start(path: &Path) -> Server {
        let store = Arc::new(SqliteStore::open(path).unwrap());
        let state = AppState::new(
            store.clone(),
            store.clone(),
            HttpConfig::default(),
            ["noop"],
        )
        .unwrap()
        .with_event_log(store.clone());
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
            hub,
            stop: Some(stop),
            serving,
        }
    }

    async fn open(&self, token: &str, task: &str, last_event_id: Option<&str>) -> SseStream {
        let mut call = Call::new(
            self.addr,
            Method::GET,
            format!("/api/subscribeToTask?taskId={task}"),
        )
        .bearer(token);
        if let Some(id) = last_event_id {
            call = call.header("last-event-id", id);
        }
        call.open_stream().await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.serving.await;
    }
}

/// A task of Ann's, claimed as a worker would claim it.
async fn running_task(store: &SqliteStore) -> Lease {
    let task = store.create(NewTask::new(ANN, "noop")).await.unwrap();
    let claimed = store
        .claim(&ClaimRequest {
            worker_id: "test-worker".into(),
            limit: 1,
            task_types: vec![],
            lease_for: Duration::from_secs(60),
            max_running_per_user: None,
            now: task.run_at + 1000,
        })
        .await
        .unwrap();
    assert_eq!(claimed[0].id, task.id);
    Lease {
        task_id: task.id,
        token: claimed[0].lease_token.clone().unwrap(),
    }
}

/// The next event's id and data.
async fn next(stream: &mut SseStream) -> (String, Value) {
    match stream.next_event(WAIT).await {
        Some(item @ Item::Event { .. }) => {
            let Item::Event { id, .. } = &item else {
                unreachable!()
            };
            (id.clone().unwrap_or_default(), item.json())
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

fn question(n: u32) -> Value {
    json!({"text": format!("Question {n}?"), "options": ["a", "b", "c", "d"], "correctIndex": 0})
}

#[tokio::test]
async fn partials_replay_stream_live_and_resume_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasklane.db");
    let server = Server::start(&path).await;
    let (_, token) = add_user(&*server.store, ANN, Role::User).await.unwrap();
    let token = token.secret().to_owned();
    let lease = running_task(&server.store).await;
    let id = lease.task_id.to_string();
    for n in 1..=2 {
        server
            .store
            .append_event(&lease, question(n))
            .await
            .unwrap();
    }

    // A late subscriber: the snapshot, then the stored partials in order.
    let mut stream = server.open(&token, &id, None).await;
    assert_eq!(stream.status, 200);
    let (snapshot_id, snapshot) = next(&mut stream).await;
    assert_eq!(snapshot["type"], "update");
    let version = snapshot["task"]["version"].as_i64().unwrap();
    assert_eq!(snapshot_id, version.to_string());
    for n in 1..=2 {
        let (event_id, event) = next(&mut stream).await;
        assert_eq!(event_id, format!("{version}.{n}"));
        assert_eq!(
            event,
            json!({"type": "partial", "taskId": id, "item": question(n), "index": n - 1})
        );
    }
    // Then live.
    server
        .store
        .append_event(&lease, question(3))
        .await
        .unwrap();
    let (event_id, event) = next(&mut stream).await;
    assert_eq!(
        (event_id.as_str(), &event["index"]),
        (format!("{version}.3").as_str(), &json!(2))
    );
    drop(stream);

    // Resuming after the second partial replays exactly the third.
    let mut resumed = server
        .open(&token, &id, Some(&format!("{version}.2")))
        .await;
    let (event_id, event) = next(&mut resumed).await;
    assert_eq!(event_id, format!("{version}.3"));
    assert_eq!(event["item"], question(3));
    drop(resumed);

    // A restart: a new server on the same file replays what the client missed, then goes on.
    // The worker (here: the first store) goes on writing while the server is down.
    let worker = Arc::clone(&server.store);
    server.stop().await;
    worker.append_event(&lease, question(4)).await.unwrap();
    let restarted = Server::start(&path).await;
    let mut after_restart = restarted
        .open(&token, &id, Some(&format!("{version}.3")))
        .await;
    let (event_id, event) = next(&mut after_restart).await;
    assert_eq!(event_id, format!("{version}.4"));
    assert_eq!(event["index"], 3);
    restarted
        .store
        .append_event(&lease, question(5))
        .await
        .unwrap();
    let (event_id, _) = next(&mut after_restart).await;
    assert_eq!(event_id, format!("{version}.5"));

    // Progress after partials carries the partial position in its id; the final event comes
    // after every partial stored before it.
    restarted
        .store
        .update_progress(&lease, 50, Some("5 of 10 questions received".into()))
        .await
        .unwrap();
    let (event_id, event) = next(&mut after_restart).await;
    assert_eq!(event["type"], "update");
    assert_eq!(event_id, format!("{}.5", version + 1));
    restarted
        .store
        .append_event(&lease, question(6))
        .await
        .unwrap();
    restarted
        .store
        .complete(&lease, json!({"questionsGenerated": 6}))
        .await
        .unwrap();
    let (event_id, event) = next(&mut after_restart).await;
    assert_eq!(
        (event_id, event["type"].clone()),
        (format!("{}.6", version + 1), json!("partial"))
    );
    let (event_id, event) = next(&mut after_restart).await;
    assert_eq!(event["type"], "complete");
    assert_eq!(event_id, format!("{}.6", version + 2));
    restarted.stop().await;
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("tasklane.db")).await;
    let (_, token) = add_user(&*server.store, ANN, Role::User).await.unwrap();
    let lease = running_task(&server.store).await;
    for bad in ["1.x", "1.2.3", "-1", ".3"] {
        let stream = server
            .open(token.secret(), lease.task_id.as_str(), Some(bad))
            .await;
        assert_eq!(stream.status, 400, "{bad}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_go_out_through_the_hub_until_the_first_partial_then_carry_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("tasklane.db")).await;
    let (_, token) = add_user(&*server.store, ANN, Role::User).await.unwrap();
    let token = token.secret().to_owned();
    let lease = running_task(&server.store).await;
    let id = lease.task_id.to_string();
    let mut stream = server.open(&token, &id, None).await;
    let (snapshot_id, _) = next(&mut stream).await;
    let mut version: i64 = snapshot_id.parse().unwrap();

    // Before any partial, updates are the hub's shared frames, written by the hub itself.
    let before = server.hub.hub_writes();
    for n in 0..3 {
        server
            .store
            .update_progress(&lease, n, Some(format!("step {n}")))
            .await
            .unwrap();
        version += 1;
        let (event_id, event) = next(&mut stream).await;
        assert_eq!(
            (event_id, event["type"].clone()),
            (version.to_string(), json!("update"))
        );
    }
    assert!(
        server.hub.hub_writes() >= before + 2,
        "the hub wrote the updates: {} then {}",
        before,
        server.hub.hub_writes()
    );

    // An update and a partial right behind it: the partial's id names the version the client
    // has, whoever wrote that version; from then on the ids carry the partial's position. The
    // two come from two feeds (changes and the event log), so either may reach the stream
    // first; the ids must say which.
    server
        .store
        .update_progress(&lease, 10, Some("almost".into()))
        .await
        .unwrap();
    server
        .store
        .append_event(&lease, question(1))
        .await
        .unwrap();
    let first = next(&mut stream).await;
    let second = next(&mut stream).await;
    let seen = [first, second].map(|(event_id, event)| (event_id, event["type"].clone()));
    let update_first = [
        ((version + 1).to_string(), json!("update")),
        (format!("{}.1", version + 1), json!("partial")),
    ];
    let partial_first = [
        (format!("{version}.1"), json!("partial")),
        (format!("{}.1", version + 1), json!("update")),
    ];
    assert!(
        seen == update_first || seen == partial_first,
        "the update and the partial, in either order, with ids naming what the client had: \
         {seen:?}"
    );
    server
        .store
        .update_progress(&lease, 20, Some("more".into()))
        .await
        .unwrap();
    let (event_id, _) = next(&mut stream).await;
    assert_eq!(event_id, format!("{}.1", version + 2));
    server
        .store
        .complete(&lease, json!({"questionsGenerated": 1}))
        .await
        .unwrap();
    let (event_id, event) = next(&mut stream).await;
    assert_eq!(
        (event_id, event["type"].clone()),
        (format!("{}.1", version + 3), json!("complete"))
    );
    server.stop().await;
}

/// `count` streams of the leased task, each past its snapshot and idle.
async fn idle_streams(server: &Server, token: &str, lease: &Lease, count: usize) -> Vec<SseStream> {
    let mut streams = Vec::new();
    for _ in 0..count {
        let mut stream = server.open(token, lease.task_id.as_str(), None).await;
        assert_eq!(next(&mut stream).await.1["type"], "update");
        streams.push(stream);
    }
    // The openings' writers give their sockets back just after the client has the bytes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    streams
}

/// The types of `stream`'s events until it ends.
async fn event_types_to_the_end(stream: &mut SseStream) -> Vec<Value> {
    stream
        .collect_events(WAIT)
        .await
        .iter()
        .map(|event| event.json()["type"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_state_goes_out_through_the_hub_when_the_task_streamed_no_partial() {
    // Streams that carry partials must send every stored partial before the final event; when
    // the task has none, the hub writes the final state to every idle stream itself, in its one
    // pass, instead of waking each stream to read the log and write it.
    const SUBSCRIBERS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("tasklane.db")).await;
    let (_, token) = add_user(&*server.store, ANN, Role::User).await.unwrap();
    let lease = running_task(&server.store).await;
    let mut streams = idle_streams(&server, token.secret(), &lease, SUBSCRIBERS).await;
    let before = server.hub.hub_writes();
    server
        .store
        .complete(&lease, json!({"questionsGenerated": 0}))
        .await
        .unwrap();
    for stream in &mut streams {
        assert_eq!(event_types_to_the_end(stream).await, [json!("complete")]);
    }
    assert_eq!(
        server.hub.hub_writes() - before,
        SUBSCRIBERS as u64,
        "the hub wrote the final state to every stream"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_the_feed_never_delivered_still_goes_out_before_the_final_event() {
    // A second store on the same file appends the partial: the server's event feed never
    // sees it, so only the log holds it when the task completes. The hub must not write the
    // final state over it; each stream reads it from the log and sends it first.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasklane.db");
    let server = Server::start(&path).await;
    let (_, token) = add_user(&*server.store, ANN, Role::User).await.unwrap();
    let lease = running_task(&server.store).await;
    let mut streams = idle_streams(&server, token.secret(), &lease, 2).await;
    let elsewhere = SqliteStore::open(&path).unwrap();
    elsewhere.append_event(&lease, question(1)).await.unwrap();
    server
        .store
        .complete(&lease, json!({"questionsGenerated": 1}))
        .await
        .unwrap();
    for stream in &mut streams {
        assert_eq!(
            event_types_to_the_end(stream).await,
            [json!("partial"), json!("complete")]
        );
    }
    server.stop().await;
}
