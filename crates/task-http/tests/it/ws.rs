//! `GET /api/ws` end to end through a real WebSocket client (tokio-tungstenite): the handshake's
//! refusals (auth, origin, caps), subscriptions to a task, a list and every task, resuming by
//! version, terminal events, the monitoring timeout, errors, keep-alive and shutdown. Task
//! changes are made through the store, as the worker runtime makes them.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use task_core::{NewTask, Task};
use task_http::HttpConfig;
use task_store::{ClaimRequest, Failure, Lease, TaskEventLog, TaskStore};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::support::{now_millis, Options, TestServer, ALICE, BOB, WAIT};

type Socket = WebSocketStream<TcpStream>;

/// How the handshake authenticates.
enum Auth<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
    None,
}

/// Opens `/api/ws`: the socket, or the refusal's status and JSON body.
async fn connect(
    server: &TestServer,
    auth: Auth<'_>,
    origin: Option<&str>,
) -> Result<Socket, (u16, Value)> {
    let mut request = format!("ws://{}/api/ws", server.addr)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    match auth {
        Auth::Bearer(token) => {
            headers.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
        }
        Auth::Cookie(cookie) => {
            headers.insert("cookie", HeaderValue::from_str(cookie).unwrap());
        }
        Auth::None => {}
    }
    if let Some(origin) = origin {
        headers.insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok((socket, response)) => {
            assert_eq!(response.status(), 101);
            Ok(socket)
        }
        Err(WsError::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().clone().unwrap_or_default();
            Err((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
        }
        Err(other) => panic!("handshake failed: {other}"),
    }
}

async fn open(server: &TestServer, token: &str) -> Socket {
    connect(server, Auth::Bearer(token), None).await.unwrap()
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next JSON message (pings are answered by the client and skipped).
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message within the bound")
            .expect("the socket is open")
            .expect("no socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The close frame's code, once the server closes.
async fn closed(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("the close within the bound");
        match message {
            Some(Ok(Message::Close(frame))) => return frame.map(|frame| frame.code),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return None,
        }
    }
}

/// Subscribes and checks the `subscribed` answer.
async fn subscribe(socket: &mut Socket, message: Value) {
    let id = message["id"].clone();
    send(socket, message).await;
    assert_eq!(next(socket).await, json!({"type":"subscribed","id":id}));
}

fn task_topic(id: &str, task: &Task) -> Value {
    json!({"type":"subscribe","id":id,"topic":"task","taskId":task.id.to_string()})
}

/// `(type, version, event type)` of an event message for subscription `id`.
fn event(message: &Value, id: &str) -> (Option<i64>, String) {
    assert_eq!(message["type"], "event", "{message}");
    assert_eq!(message["id"], id, "{message}");
    (
        message["version"].as_i64(),
        message["event"]["type"].as_str().unwrap().to_owned(),
    )
}

async fn server_with(config: HttpConfig) -> TestServer {
    TestServer::start_with(Options {
        config,
        runtime: false,
    })
    .await
}

async fn pending(server: &TestServer, owner: &str) -> Task {
    server
        .store
        .create(NewTask::new(owner, "noop"))
        .await
        .unwrap()
}

/// Claims the only pending task, as a worker would.
async fn claim(server: &TestServer) -> Lease {
    let claimed = server
        .store
        .claim(&ClaimRequest {
            worker_id: "test-worker".into(),
            limit: 1,
            task_types: vec![],
            lease_for: Duration::from_secs(60),
            max_running_per_user: None,
            now: now_millis() + 1000,
        })
        .await
        .unwrap();
    Lease::of(&claimed[0]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_needs_an_upgrade_credentials_and_this_origin() {
    let server = server_with(HttpConfig::default()).await;
    let host = format!("http://{}", server.addr);

    let plain = server.get("/api/ws").bearer(&server.alice).send().await;
    plain.expect(400);
    assert!(
        plain.error().contains("WebSocket upgrade"),
        "{}",
        plain.error()
    );

    let (status, body) = connect(&server, Auth::None, None).await.unwrap_err();
    assert_eq!(
        (status, body),
        (401, json!({"error": "authentication required"}))
    );

    let (status, body) = connect(&server, Auth::Bearer("tl_nonsense"), None)
        .await
        .unwrap_err();
    assert_eq!(status, 401, "{body}");

    // A page of another site is refused whatever credentials ride along.
    let (status, body) = connect(
        &server,
        Auth::Bearer(&server.alice),
        Some("http://evil.example"),
    )
    .await
    .unwrap_err();
    assert_eq!(status, 403);
    assert!(
        body["error"].as_str().unwrap().contains("cross-origin"),
        "{body}"
    );

    // The browser's case: the session cookie, from a page of this server.
    let login = server
        .post("/api/login")
        .json(&json!({"token": server.alice}))
        .send()
        .await;
    login.expect(200);
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (status, _) = connect(&server, Auth::Cookie(&cookie), Some("http://evil.example"))
        .await
        .unwrap_err();
    assert_eq!(status, 403);
    let mut socket = connect(&server, Auth::Cookie(&cookie), Some(&host))
        .await
        .unwrap();
    send(&mut socket, json!({"type":"ping"})).await;
    assert_eq!(next(&mut socket).await, json!({"type":"pong"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_subscription_carries_every_version_then_ends_after_complete() {
    let server = server_with(HttpConfig::default()).await;
    let task = pending(&server, ALICE).await;
    let mut socket = open(&server, &server.alice).await;
    subscribe(&mut socket, task_topic("t", &task)).await;
    let snapshot = next(&mut socket).await;
    assert_eq!(event(&snapshot, "t"), (Some(1), "update".to_owned()));
    assert_eq!(snapshot["event"]["task"]["id"], task.id.to_string());

    let lease = claim(&server).await;
    assert_eq!(
        event(&next(&mut socket).await, "t"),
        (Some(2), "update".to_owned())
    );
    server
        .store
        .update_progress(&lease, 40, Some("halfway".into()))
        .await
        .unwrap();
    let progress = next(&mut socket).await;
    assert_eq!(event(&progress, "t"), (Some(3), "update".to_owned()));
    assert_eq!(progress["event"]["task"]["progress"], 40);
    server
        .store
        .complete(&lease, json!({"answer": 42}))
        .await
        .unwrap();
    let done = next(&mut socket).await;
    assert_eq!(event(&done, "t"), (Some(4), "complete".to_owned()));
    assert_eq!(done["event"]["task"]["result"], json!({"answer": 42}));
    assert_eq!(next(&mut socket).await, json!({"type":"ended","id":"t"}));

    // The id is free again once the subscription ended: resuming from the final version
    // sends nothing but the end.
    send(&mut socket, json!({"type":"subscribe","id":"t","topic":"task","taskId":task.id.to_string(),"lastVersion":4})).await;
    assert_eq!(
        next(&mut socket).await,
        json!({"type":"subscribed","id":"t"})
    );
    assert_eq!(next(&mut socket).await, json!({"type":"ended","id":"t"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_skips_what_the_client_has_seen() {
    let server = server_with(HttpConfig::default()).await;
    let task = pending(&server, ALICE).await;
    let lease = claim(&server).await;
    server
        .store
        .update_progress(&lease, 10, None)
        .await
        .unwrap();
    let mut socket = open(&server, &server.alice).await;
    // The client saw version 3 (the stored state) before it reconnected.
    send(&mut socket, json!({"type":"subscribe","id":"r","topic":"task","taskId":task.id.to_string(),"lastVersion":3})).await;
    assert_eq!(
        next(&mut socket).await,
        json!({"type":"subscribed","id":"r"})
    );
    server
        .store
        .update_progress(&lease, 20, None)
        .await
        .unwrap();
    let resumed = next(&mut socket).await;
    assert_eq!(event(&resumed, "r"), (Some(4), "update".to_owned()));
    assert_eq!(
        resumed["event"]["task"]["progress"], 20,
        "no duplicate of version 3"
    );

    // A client that was further back gets the current state first.
    subscribe(&mut socket, json!({"type":"subscribe","id":"s","topic":"task","taskId":task.id.to_string(),"lastVersion":1})).await;
    assert_eq!(
        event(&next(&mut socket).await, "s"),
        (Some(4), "update".to_owned())
    );
}

fn question(n: i64) -> Value {
    json!({"text": format!("Question {n}?"), "options": ["a", "b", "c", "d"], "correctIndex": 0})
}

/// The `(version, seq, event type)` of the next message, which must be an event of `id`.
async fn position(socket: &mut Socket, id: &str) -> (i64, Option<i64>, Value) {
    let message = next(socket).await;
    event(&message, id);
    (
        message["version"].as_i64().expect("a version"),
        message["seq"].as_i64(),
        message["event"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partials_are_replayed_then_live_and_resume_from_version_and_seq() {
    let server = server_with(HttpConfig::default()).await;
    let task = pending(&server, ALICE).await;
    let lease = claim(&server).await;
    for n in 1..=2 {
        server
            .store
            .append_event(&lease, question(n))
            .await
            .unwrap();
    }
    let partial = |n: i64| json!({"type": "partial", "taskId": task.id.to_string(), "item": question(n), "index": n - 1});

    // A late subscriber: the snapshot, then the stored partials in order, at its version.
    let mut socket = open(&server, &server.alice).await;
    subscribe(&mut socket, task_topic("p", &task)).await;
    let (version, seq, snapshot) = position(&mut socket, "p").await;
    assert_eq!((seq, &snapshot["type"]), (None, &json!("update")));
    for n in 1..=2 {
        assert_eq!(
            position(&mut socket, "p").await,
            (version, Some(n), partial(n))
        );
    }
    // Then live; later updates carry the partial position as SSE's `<version>.<seq>` does.
    server
        .store
        .append_event(&lease, question(3))
        .await
        .unwrap();
    assert_eq!(
        position(&mut socket, "p").await,
        (version, Some(3), partial(3))
    );
    server
        .store
        .update_progress(&lease, 50, None)
        .await
        .unwrap();
    let (updated, seq, event) = position(&mut socket, "p").await;
    assert_eq!(
        (updated, seq, &event["type"]),
        (version + 1, Some(3), &json!("update"))
    );

    // Resuming from `<version+1>.<1>` on another connection: no snapshot (the client has it),
    // exactly the partials it missed.
    let mut again = open(&server, &server.alice).await;
    subscribe(&mut again, json!({"type":"subscribe","id":"r","topic":"task","taskId":task.id.to_string(),"lastVersion":version + 1,"lastSeq":1})).await;
    for n in 2..=3 {
        assert_eq!(
            position(&mut again, "r").await,
            (version + 1, Some(n), partial(n))
        );
    }
    drop(again);

    // A partial stored just before completion comes before the final event.
    server
        .store
        .append_event(&lease, question(4))
        .await
        .unwrap();
    server
        .store
        .complete(&lease, json!({"questions": 4}))
        .await
        .unwrap();
    assert_eq!(
        position(&mut socket, "p").await,
        (version + 1, Some(4), partial(4))
    );
    let (done, seq, event) = position(&mut socket, "p").await;
    assert_eq!(
        (done, seq, &event["type"]),
        (version + 2, Some(4), &json!("complete"))
    );
    assert_eq!(next(&mut socket).await, json!({"type":"ended","id":"p"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_cancellation_and_deletion_end_task_subscriptions() {
    let server = server_with(HttpConfig::default()).await;
    let task = pending(&server, ALICE).await;
    let mut socket = open(&server, &server.alice).await;
    subscribe(&mut socket, task_topic("f", &task)).await;
    next(&mut socket).await;
    let lease = claim(&server).await;
    next(&mut socket).await;
    server
        .store
        .fail(&lease, Failure::permanent("the model refused"))
        .await
        .unwrap();
    let update = next(&mut socket).await;
    // As on SSE, the version rides on the last event that shows it (the error), so a client cut
    // between the two resumes before the update and misses neither.
    assert_eq!(event(&update, "f"), (None, "update".to_owned()));
    let error = next(&mut socket).await;
    assert_eq!(
        error,
        json!({"type":"event","id":"f","version":3,"event":{"type":"error","error":"the model refused"}})
    );
    assert_eq!(next(&mut socket).await, json!({"type":"ended","id":"f"}));

    let doomed = pending(&server, ALICE).await;
    subscribe(&mut socket, task_topic("d", &doomed)).await;
    next(&mut socket).await;
    server.store.delete(&doomed.id).await.unwrap();
    assert_eq!(
        next(&mut socket).await,
        json!({"type":"event","id":"d","event":{"type":"error","error":"Task was deleted"}})
    );
    assert_eq!(next(&mut socket).await, json!({"type":"ended","id":"d"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitoring_limit_sends_timeout_then_ends() {
    let server = server_with(HttpConfig {
        monitor_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    })
    .await;
    let task = pending(&server, ALICE).await;
    let mut socket = open(&server, &server.alice).await;
    subscribe(&mut socket, task_topic("m", &task)).await;
    next(&mut socket).await;
    assert_eq!(
        next(&mut socket).await,
        json!({"type":"event","id":"m","event":{"type":"timeout","error":"Task monitoring timeout"}})
    );
    assert_eq!(next(&mut socket).await, json!({"type":"ended","id":"m"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_subscriptions_see_their_scope_and_superusers_see_all() {
    let server = server_with(HttpConfig::default()).await;
    let mut alice = open(&server, &server.alice).await;
    let mut root = open(&server, &server.root).await;
    subscribe(
        &mut alice,
        json!({"type":"subscribe","id":"mine","topic":"tasks"}),
    )
    .await;
    subscribe(
        &mut root,
        json!({"type":"subscribe","id":"all","topic":"tasks"}),
    )
    .await;
    subscribe(
        &mut root,
        json!({"type":"subscribe","id":"bob","topic":"tasks","userId":BOB}),
    )
    .await;

    let bobs = pending(&server, BOB).await;
    let alices = pending(&server, ALICE).await;
    let first = next(&mut alice).await;
    assert_eq!(event(&first, "mine"), (None, "update".to_owned()));
    assert_eq!(
        first["event"]["task"]["id"],
        alices.id.to_string(),
        "Bob's task is not Alice's business"
    );
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let message = next(&mut root).await;
        seen.push((
            message["id"].as_str().unwrap().to_owned(),
            message["event"]["task"]["id"].as_str().unwrap().to_owned(),
        ));
    }
    seen.sort();
    let mut expected = vec![
        ("all".to_owned(), bobs.id.to_string()),
        ("all".to_owned(), alices.id.to_string()),
        ("bob".to_owned(), bobs.id.to_string()),
    ];
    expected.sort();
    assert_eq!(seen, expected);

    server.store.delete(&alices.id).await.unwrap();
    assert_eq!(
        next(&mut alice).await,
        json!({"type":"event","id":"mine","event":{"type":"deleted","taskId":alices.id.to_string()}})
    );

    // A normal user may not watch someone else's list, nor see someone else's task.
    send(
        &mut alice,
        json!({"type":"subscribe","id":"x","topic":"tasks","userId":BOB}),
    )
    .await;
    let refused = next(&mut alice).await;
    assert_eq!(
        (refused["type"].clone(), refused["id"].clone()),
        (json!("error"), json!("x"))
    );
    send(&mut alice, task_topic("y", &bobs)).await;
    assert_eq!(
        next(&mut alice).await,
        json!({"type":"error","id":"y","error":"task not found"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_subscriptions_are_capped_per_user() {
    let server = server_with(HttpConfig {
        max_sse_per_user: 2,
        max_ws_subscriptions_per_user: 2,
        ..HttpConfig::default()
    })
    .await;
    let mut first = open(&server, &server.alice).await;
    let mut second = open(&server, &server.alice).await;
    let (status, body) = connect(&server, Auth::Bearer(&server.alice), None)
        .await
        .unwrap_err();
    assert_eq!(status, 429);
    assert!(
        body["error"].as_str().unwrap().contains("at most 2"),
        "{body}"
    );
    open(&server, &server.bob).await;

    // Subscriptions count over all of a user's connections.
    subscribe(
        &mut first,
        json!({"type":"subscribe","id":"a","topic":"tasks"}),
    )
    .await;
    subscribe(
        &mut second,
        json!({"type":"subscribe","id":"b","topic":"tasks"}),
    )
    .await;
    send(
        &mut first,
        json!({"type":"subscribe","id":"c","topic":"tasks"}),
    )
    .await;
    assert_eq!(
        next(&mut first).await,
        json!({"type":"error","id":"c","error":"too many subscriptions: at most 2 per user"})
    );
    send(&mut second, json!({"type":"unsubscribe","id":"b"})).await;
    assert_eq!(
        next(&mut second).await,
        json!({"type":"unsubscribed","id":"b"})
    );
    subscribe(
        &mut first,
        json!({"type":"subscribe","id":"c","topic":"tasks"}),
    )
    .await;

    // Closing a connection frees its place.
    second.close(None).await.unwrap();
    drop(second);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match connect(&server, Auth::Bearer(&server.alice), None).await {
            Ok(_) => break,
            Err((429, _)) if tokio::time::Instant::now() < deadline => {
                tokio::task::yield_now().await;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_errors_and_the_connection_stays_open() {
    let server = server_with(HttpConfig::default()).await;
    let task = pending(&server, ALICE).await;
    let mut socket = open(&server, &server.alice).await;
    let check = |message: Value, id: Option<&str>, contains: &str| {
        let contains = contains.to_owned();
        let id = id.map(str::to_owned);
        (message, id, contains)
    };
    let cases = [
        check(
            json!({"type":"shout","id":"a"}),
            Some("a"),
            "unknown variant `shout`",
        ),
        check(
            json!({"type":"subscribe","id":"a","topic":"task"}),
            Some("a"),
            "taskId is required",
        ),
        check(
            json!({"type":"subscribe","id":"a","topic":"task","taskId":"nope"}),
            Some("a"),
            "task not found",
        ),
        check(
            json!({"type":"subscribe","id":"a","topic":"tasks","lastVersion":3}),
            Some("a"),
            "refetch the list",
        ),
        check(
            json!({"type":"subscribe","id":"a","topic":"task","taskId":task.id.to_string(),"lastVersion":-1}),
            Some("a"),
            "lastVersion",
        ),
        check(
            json!({"type":"subscribe","id":"a","topic":"task","taskId":task.id.to_string(),"lastVersion":2,"lastSeq":-1}),
            Some("a"),
            "lastSeq",
        ),
        check(
            json!({"type":"subscribe","id":"a","topic":"task","taskId":task.id.to_string(),"lastSeq":1}),
            Some("a"),
            "lastSeq needs the lastVersion",
        ),
        check(
            json!({"type":"subscribe","id":"a","topic":"tasks","lastSeq":1}),
            Some("a"),
            "refetch the list",
        ),
        check(
            json!({"type":"unsubscribe","id":"never"}),
            Some("never"),
            "no open subscription",
        ),
        check(
            json!({"type":"subscribe","topic":"tasks"}),
            None,
            "missing field `id`",
        ),
    ];
    for (message, id, contains) in cases {
        send(&mut socket, message.clone()).await;
        let answer = next(&mut socket).await;
        assert_eq!(answer["type"], "error", "{message}: {answer}");
        assert_eq!(answer["id"].as_str(), id.as_deref(), "{message}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(&contains),
            "{message}: {answer}"
        );
    }
    socket.send(Message::text("not json")).await.unwrap();
    assert!(next(&mut socket).await["error"]
        .as_str()
        .unwrap()
        .contains("not JSON"));
    socket.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert!(next(&mut socket).await["error"]
        .as_str()
        .unwrap()
        .contains("binary"));

    subscribe(&mut socket, task_topic("dup", &task)).await;
    next(&mut socket).await;
    send(&mut socket, task_topic("dup", &task)).await;
    assert_eq!(
        next(&mut socket).await,
        json!({"type":"error","id":"dup","error":"a subscription with this id is already open"})
    );
    send(&mut socket, json!({"type":"ping"})).await;
    assert_eq!(next(&mut socket).await, json!({"type":"pong"}));

    // Commands are small: a huge message closes the connection with 1009.
    let huge = json!({"type":"ping","padding":"x".repeat(20 * 1024)});
    let _ = socket.send(Message::text(huge.to_string())).await;
    assert_eq!(closed(&mut socket).await, Some(CloseCode::Size));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_get_pings_and_shutdown_closes_them() {
    let server = server_with(HttpConfig {
        sse_keep_alive: Duration::from_millis(50),
        ..HttpConfig::default()
    })
    .await;
    let mut socket = open(&server, &server.alice).await;
    let ping = tokio::time::timeout(WAIT, socket.next())
        .await
        .expect("a ping within the bound");
    assert!(matches!(ping, Some(Ok(Message::Ping(_)))), "{ping:?}");
    // The client answered that ping while reading; the connection stays up past three intervals.
    for _ in 0..4 {
        let ping = tokio::time::timeout(WAIT, socket.next()).await.unwrap();
        assert!(matches!(ping, Some(Ok(Message::Ping(_)))), "{ping:?}");
    }
    server.begin_shutdown();
    assert_eq!(closed(&mut socket).await, Some(CloseCode::Away));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_pings_is_closed() {
    let server = server_with(HttpConfig {
        sse_keep_alive: Duration::from_millis(50),
        ..HttpConfig::default()
    })
    .await;
    let socket = open(&server, &server.alice).await;
    // Read the raw TCP stream without a WebSocket client, so no pong is ever sent: the server
    // gives up after three silent intervals and closes the connection.
    let mut tcp = socket.into_inner();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut buffer),
    )
    .await
    .expect("the server closes within the bound");
    assert!(read.is_ok());
    // Close frame: opcode 0x8, code 1001.
    let close = buffer
        .windows(4)
        .any(|window| window[0] == 0x88 && window[2..4] == 1001u16.to_be_bytes());
    assert!(close, "{buffer:?}");
}
