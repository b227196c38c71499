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
