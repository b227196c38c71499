//! The connection layer: graceful shutdown, the header read timeout and the connection cap.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Options, TestServer, WAIT};

/// A kept-alive client connection.
async fn connect(server: &TestServer) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

async fn healthz(sender: &mut SendRequest<Empty<Bytes>>, server: &TestServer) -> u16 {
    let request = Request::get("/healthz")
        .header("host", server.addr.to_string())
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    response.into_body().collect().await.unwrap();
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_streams_and_returns_within_the_cap() {
    let server = TestServer::start().await;
    let running = server.running_task(&server.alice).await;
    let mut task_stream = server
        .get(&format!("/api/subscribeToTask?taskId={}", running.id))
        .bearer(&server.alice)
        .open_stream()
        .await;
    let mut list_stream = server
        .get("/api/subscribeToTasks")
        .bearer(&server.root)
        .open_stream()
        .await;
    task_stream.next_event(WAIT).await.unwrap();
    let mut idle = connect(&server).await;
    assert_eq!(healthz(&mut idle, &server).await, 200);
    let addr = server.addr;

    server.begin_shutdown();
    // Both streams end cleanly (the body finishes; no error, no hang).
    task_stream.collect_events(WAIT).await;
    list_stream.collect_events(WAIT).await;
    let took = server.shutdown().await;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off() {
    let mut options = Options {
        runtime: false,
        ..Options::default()
    };
    options.config.header_read_timeout = Duration::from_millis(200);
    let server = TestServer::start_with(options).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 256];
    // The server must hang up (possibly after a 408) instead of waiting for the rest.
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection stayed open");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let mut options = Options {
        runtime: false,
        ..Options::default()
    };
    options.config.max_connections = 2;
    let server = TestServer::start_with(options).await;
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;
    assert_eq!(healthz(&mut first, &server).await, 200);
    assert_eq!(healthz(&mut second, &server).await, 200);

    let mut third = connect(&server).await;
    let server_addr = server.addr.to_string();
    let mut waiting = tokio::spawn(async move {
        let request = Request::get("/healthz")
            .header("host", server_addr)
            .body(Empty::<Bytes>::new())
            .unwrap();
        third
            .send_request(request)
            .await
            .map(|r| r.status().as_u16())
    });
    // While both slots are taken the third client is not served.
    let early = tokio::time::timeout(Duration::from_millis(300), &mut waiting).await;
    assert!(early.is_err(), "served beyond the connection cap");
    drop(first);
    let status = tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(healthz(&mut second, &server).await, 200);
}

/// Sends `head` on a fresh connection and reads until the server closes it.
pub(crate) async fn exchange_raw(server: &TestServer, head: impl AsRef<[u8]>) -> String {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(head.as_ref()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8(answer).unwrap()
}

/// A live stream on a fresh connection is written directly: chunked, `Connection: close`,
/// ended with the last chunk and the server's close once the task is final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_live_stream_is_chunked_and_closes_when_it_ends() {
    let server = TestServer::start().await;
    let done = server.completed_task(&server.alice).await;
    let answer = exchange_raw(
        &server,
        format!(
            "GET /api/subscribeToTask?taskId={} HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {}\r\n\r\n",
            done.id, server.alice
        ),
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    for header in [
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "transfer-encoding: chunked",
        "connection: close",
        "date: ",
    ] {
        assert!(
            head.contains(&format!("\r\n{header}")),
            "{header} in {head}"
        );
    }
    assert!(body.contains("retry: 3000"), "{body}");
    assert!(body.contains("\"status\":\"completed\""), "{body}");
    assert!(
        body.ends_with("\r\n0\r\n\r\n"),
        "the last chunk ends the body: {body:?}"
    );
}

/// A workflow's stream on a fresh connection is written directly too: a cancelled workflow's
/// stream sends every node and `finished`, then closes; an unknown workflow is a JSON 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_workflow_stream_is_chunked_and_closes_when_it_ends() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let created = server
        .post("/api/workflows")
        .bearer(&server.alice)
        .json(&serde_json::json!({
            "nodes": [{"key": "a", "task_type": "noop"}, {"key": "b", "task_type": "noop"}],
            "edges": [{"parent": "a", "child": "b"}]
        }))
        .send()
        .await;
    created.expect(201);
    let workflow = created.json()["workflowId"].as_str().unwrap().to_owned();
    server
        .post(&format!("/api/workflows/{workflow}/cancel"))
        .bearer(&server.alice)
        .send()
        .await
        .expect(200);
    let request = |id: &str| {
        format!(
            "GET /api/workflows/{id}/events HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {}\r\n\r\n",
            server.alice
        )
    };
    let answer = exchange_raw(&server, request(&workflow)).await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    for header in ["transfer-encoding: chunked", "connection: close"] {
        assert!(
            head.contains(&format!("\r\n{header}")),
            "{header} in {head}"
        );
    }
    assert!(body.contains("\"type\":\"finished\""), "{body}");
    assert!(body.ends_with("\r\n0\r\n\r\n"), "{body:?}");

    let answer = exchange_raw(&server, request("wf_unknown")).await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 404 not found\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: close"), "{head}");
    let error: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(error["error"].is_string(), "{body}");
}

/// Errors on the direct path are the usual JSON answers, with a length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_stream_request_that_fails_gets_a_json_error() {
    let server = TestServer::start().await;
    let answer = exchange_raw(
        &server,
        "GET /api/subscribeToTasks HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 401 unauthorized\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\ncontent-length: {}", body.len())),
        "{head}"
    );
    assert!(head.contains("\r\nconnection: close"), "{head}");
    let error: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(error["error"].is_string(), "{body}");
}

/// A stream asked for on a connection that already served a request goes through hyper,
/// and the connection stays usable afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_a_kept_alive_connection_is_served_by_hyper() {
    let server = TestServer::start().await;
    let done = server.completed_task(&server.alice).await;
    let mut connection = connect(&server).await;
    assert_eq!(healthz(&mut connection, &server).await, 200);
    let request = Request::get(format!("/api/subscribeToTask?taskId={}", done.id))
        .header("host", server.addr.to_string())
        .header("authorization", format!("Bearer {}", server.alice))
        .body(Empty::new())
        .unwrap();
    connection
        .ready()
        .await
        .expect("the connection is kept alive");
    let response = connection.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("connection").is_none());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(body.contains("\"status\":\"completed\""), "{body}");
    connection
        .ready()
        .await
        .expect("the connection is kept alive");
    assert_eq!(healthz(&mut connection, &server).await, 200);
}

/// A client that hangs up ends its direct stream at once: its per-user slot is free again
/// although the task it watched never changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hanging_up_ends_its_direct_stream() {
    let mut options = Options::default();
    options.config.max_sse_per_user = 1;
    let server = TestServer::start_with(options).await;
    let pending = server.pending_task(&server.alice).await;
    let head = format!(
        "GET /api/subscribeToTask?taskId={} HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {}\r\n\r\n",
        pending.id, server.alice
    );
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first.write_all(head.as_bytes()).await.unwrap();
    let mut start = [0u8; 64];
    let read = first.read(&mut start).await.unwrap();
    assert!(
        start[..read].starts_with(b"HTTP/1.1 200"),
        "the stream is open"
    );
    let refused = server
        .get("/api/subscribeToTasks")
        .bearer(&server.alice)
        .send()
        .await;
    refused.expect(429);
    drop(first);
    let reopened = tokio::time::timeout(WAIT, async {
        loop {
            let answer = server
                .get("/api/subscribeToTasks")
                .bearer(&server.alice)
                .open_stream()
                .await;
            if answer.status == 200 {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reopened.is_ok(), "the slot was never freed");
}
