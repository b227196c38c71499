//! The load generator's HTTP/1.1 client: one hyper connection per simulated client, requests
//! with a bearer token, and SSE bodies read through the WHATWG parser of the test suite.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A keep-alive connection to `addr`; its I/O runs on a spawned task until it is dropped.
pub async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr)
        .await
        .expect("connect to the bench server");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(connection);
    sender
}

/// A request carrying the bench user's token.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, format!("Bearer {token}"));
    if body.is_empty() {
        builder = builder.header(ACCEPT, "text/event-stream");
    } else {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    builder.body(Full::new(body)).expect("a valid request")
}

/// Opens an SSE stream on its own connection and returns the response (headers read, body
/// still streaming).
pub async fn open_stream(addr: SocketAddr, path: &str, token: &str) -> Response<Incoming> {
    let mut sender = connect(addr).await;
    let response = sender
        .send_request(request(addr, "GET", path, token, Bytes::new()))
        .await
        .expect("the stream's response head");
    assert_eq!(response.status(), 200, "{path} did not open a stream");
    // The connection task keeps running as long as the response body is alive.
    drop(sender);
    response
}
