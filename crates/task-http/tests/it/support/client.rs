//! A small hand-written HTTP/1.1 client on hyper's connection API: one connection per request,
//! so each test sees exactly what the server answered on a fresh connection.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use super::sse::SseStream;

/// How long any single response may take in tests before the test fails.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A request being built.
#[derive(Debug, Clone)]
pub struct Call {
    addr: SocketAddr,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Call {
    /// A request to `path` (with its query) on the server at `addr`.
    pub fn new(addr: SocketAddr, method: Method, path: impl Into<String>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(&addr.to_string()).unwrap());
        Self {
            addr,
            method,
            path: path.into(),
            headers,
            body: Bytes::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        let value = format!("Bearer {token}");
        self.header(AUTHORIZATION.as_str(), &value)
    }

    /// `Cookie: <cookie>`.
    pub fn cookie(self, cookie: &str) -> Self {
        self.header(COOKIE.as_str(), cookie)
    }

    /// An `Origin` naming the server itself.
    pub fn same_origin(self) -> Self {
        let origin = format!("http://{}", self.addr);
        self.header("origin", &origin)
    }

    /// A JSON body.
    pub fn json(mut self, value: &Value) -> Self {
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Bytes::from(serde_json::to_vec(value).unwrap());
        self
    }

    /// A raw body with a content type.
    pub fn raw_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        self.body = body.into();
        self
    }

    async fn start(self) -> http::Response<Incoming> {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(self.method)
            .uri(self.path)
            .body(Full::new(self.body))
            .unwrap();
        *request.headers_mut() = self.headers;
        tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(request))
            .await
            .expect("the server did not answer in time")
            .unwrap()
    }

    /// Sends the request and reads the whole answer.
    pub async fn send(self) -> Answer {
        let response = self.start().await;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(RESPONSE_TIMEOUT, body.collect())
            .await
            .expect("the body did not end in time")
            .unwrap()
            .to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Sends the request and returns the answer as a live event stream (or, when the status
    /// is not 200, with the body left unread).
    pub async fn open_stream(self) -> SseStream {
        SseStream::new(self.start().await)
    }
}

/// A complete answer.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The `error` message of an error answer.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {:?}", self.json()))
            .to_owned()
    }

    /// Fails unless the status is `expected`, showing the body.
    #[track_caller]
    pub fn expect(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }
}
