//! Reading a connection's first request head, to decide who serves the connection.
//!
//! Only a complete `GET` for a live stream, with no body and nothing sent after it, is served
//! directly; everything else (other routes, bodies, pipelined requests, HTTP/1.0, upgrades,
//! heads too long or malformed) goes to hyper together with the bytes read so far, so hyper's
//! parsing, limits and error answers apply unchanged.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Uri, Version};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::router::{Route, StreamRoute};
use crate::ApiError;

/// What the first request head asks for.
pub(crate) enum FirstHead {
    /// A live stream, served directly.
    Stream {
        /// The request head, as hyper would have built it.
        parts: Box<Parts>,
        /// Which stream.
        route: StreamRoute,
    },
    /// Anything else: hyper serves the connection, starting with these bytes.
    Hyper(Vec<u8>),
    /// A head no server could serve (malformed, too large, an unusable `Content-Length`):
    /// answered here with this JSON error and the connection closed, where hyper would have
    /// answered with an empty body.
    Rejected(ApiError),
    /// The client closed, failed or stalled past the header timeout before sending a head.
    Gone,
}

/// Most requests, live-stream ones included, fit the first read's buffer.
const FIRST_READ: usize = 1024;
/// The longest request head the server takes, here and in hyper (its read buffer is set to
/// this); a longer one is answered 431.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Headers parsed on the first try; a head with more is parsed again with [`MAX_HEADERS`].
const USUAL_HEADERS: usize = 48;
/// The most headers a request may have: hyper's own limit, so both parsers agree.
const MAX_HEADERS: usize = 100;

/// Reads until the first request head is complete, `MAX_HEAD` bytes are in, or the head
/// is malformed. A client that sends no complete head within `timeout` is `Gone`, as hyper's
/// own header timeout would have had it.
pub(crate) async fn read(stream: &mut TcpStream, timeout: Duration) -> FirstHead {
    let mut buffer = Vec::with_capacity(FIRST_READ);
    let reading = async {
        loop {
            if buffer.len() == buffer.capacity() {
                buffer.reserve_exact(buffer.len().min(MAX_HEAD - buffer.len()));
            }
            match stream.read_buf(&mut buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            match classify(&buffer) {
                Classified::Partial if buffer.len() < MAX_HEAD => {}
                Classified::Partial => {
                    return Some(Classified::Rejected(ApiError::head_too_large(format!(
                        "{MAX_HEAD} bytes"
                    ))))
                }
                classified => return Some(classified),
            }
        }
    };
    match tokio::time::timeout(timeout, reading).await {
        Ok(Some(Classified::Stream(parts, route))) => FirstHead::Stream { parts, route },
        Ok(Some(Classified::Rejected(error))) => FirstHead::Rejected(error),
        Ok(Some(Classified::Partial | Classified::Other)) => FirstHead::Hyper(buffer),
        Ok(None) | Err(_) => FirstHead::Gone,
    }
}

enum Classified {
    Stream(Box<Parts>, StreamRoute),
    Partial,
    Other,
    Rejected(ApiError),
}

fn classify(buffer: &[u8]) -> Classified {
    let mut headers = [httparse::EMPTY_HEADER; USUAL_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buffer) {
        Err(httparse::Error::TooManyHeaders) => classify_long(buffer),
        parsed => classify_parsed(buffer, &request, parsed),
    }
}

/// [`classify`] for a head with more than [`USUAL_HEADERS`] headers.
#[cold]
fn classify_long(buffer: &[u8]) -> Classified {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(buffer);
    classify_parsed(buffer, &request, parsed)
}

fn classify_parsed(
    buffer: &[u8],
    request: &httparse::Request<'_, '_>,
    parsed: httparse::Result<usize>,
) -> Classified {
    match parsed {
        Ok(httparse::Status::Partial) => Classified::Partial,
        Ok(httparse::Status::Complete(length)) => {
            if let Some(error) = unusable(request) {
                return Classified::Rejected(error);
            }
            if length < buffer.len() {
                return Classified::Other;
            }
            stream_request(request).map_or(Classified::Other, |(parts, route)| {
                Classified::Stream(parts, route)
            })
        }
        Err(httparse::Error::TooManyHeaders) => Classified::Rejected(ApiError::head_too_large(
            format!("more than {MAX_HEADERS} headers"),
        )),
        Err(error) => Classified::Rejected(ApiError::bad_request(format!(
            "malformed request head: {error}"
        ))),
    }
}

/// Why hyper would refuse a well-formed head: a target that is not a URI (bytes outside
/// ASCII, say) or a `Content-Length` that is not one decimal number.
fn unusable(request: &httparse::Request<'_, '_>) -> Option<ApiError> {
    let target = request.path.unwrap_or_default();
    if target.parse::<Uri>().is_err() {
        return Some(ApiError::bad_request(
            "malformed request target: not a valid URI",
        ));
    }
    let mut lengths = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .flat_map(|h| h.value.split(|b| *b == b','))
        .map(|v| {
            std::str::from_utf8(v.trim_ascii())
                .ok()?
                .parse::<u64>()
                .ok()
        });
    let first = lengths.next()?;
    let consistent = first.is_some() && lengths.all(|next| next == first);
    (!consistent).then(|| ApiError::bad_request("invalid Content-Length header"))
}

/// The head as [`Parts`] when it is a bodiless HTTP/1.1 `GET` of a live-stream route.
fn stream_request(request: &httparse::Request<'_, '_>) -> Option<(Box<Parts>, StreamRoute)> {
    if request.method != Some("GET") || request.version != Some(1) {
        return None;
    }
    let uri: Uri = request.path?.parse().ok()?;
    if uri.scheme().is_some() || !uri.path().starts_with('/') {
        return None;
    }
    let route = Route::resolve(&Method::GET, uri.path()).ok()?.stream()?;
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        if !without_body(&name, &value) {
            return None;
        }
        headers.append(name, value);
    }
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = Method::GET;
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.headers = headers;
    Some((Box::new(parts), route))
}

/// Whether a header leaves the request a plain bodiless one: no body framing other than an
/// explicit zero length, no `Expect: 100-continue`, no protocol upgrade.
fn without_body(name: &HeaderName, value: &HeaderValue) -> bool {
    match name.as_str() {
        "content-length" => value.as_bytes().trim_ascii() == b"0",
        "transfer-encoding" | "expect" | "upgrade" => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(head: &str) -> &'static str {
        match classify(head.as_bytes()) {
            Classified::Stream(_, StreamRoute::Task) => "task",
            Classified::Stream(_, StreamRoute::Tasks) => "tasks",
            Classified::Stream(_, StreamRoute::Workflow(_)) => "workflow",
            Classified::Partial => "partial",
            Classified::Other => "other",
            Classified::Rejected(_) => "rejected",
        }
    }

    #[test]
    fn only_complete_bodiless_stream_gets_are_served_directly() {
        let task = "GET /api/subscribeToTask?taskId=x HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(kind(task), "task");
        assert_eq!(kind("GET /api/subscribeToTasks HTTP/1.1\r\n\r\n"), "tasks");
        assert_eq!(
            kind("GET /api/workflows/wf_1/events HTTP/1.1\r\nLast-Event-ID: 3\r\n\r\n"),
            "workflow"
        );
        assert_eq!(
            kind("GET /api/subscribeToTasks HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            "tasks"
        );
        for other in [
            "GET /api/tasks HTTP/1.1\r\n\r\n",
            "GET /api/workflows/wf_1 HTTP/1.1\r\n\r\n",
            "POST /api/subscribeToTasks HTTP/1.1\r\n\r\n",
            "GET /api/subscribeToTasks HTTP/1.0\r\n\r\n",
            "GET /api/subscribeToTasks HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "GET /api/subscribeToTasks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /api/subscribeToTasks HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /api/subscribeToTasks HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            // A pipelined second request: hyper answers both, in order.
            "GET /api/subscribeToTasks HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n",
            "GET http://elsewhere/api/subscribeToTasks HTTP/1.1\r\n\r\n",
            "POST /api/tasks HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        ] {
            assert_eq!(kind(other), "other", "{other:?}");
        }
        assert_eq!(
            kind("GET /api/subscribeToTasks HTTP/1.1\r\nHost:"),
            "partial"
        );
    }

    #[test]
    fn heads_hyper_would_refuse_are_rejected_here() {
        let many = "X-A: 1\r\n".repeat(60);
        assert_eq!(
            kind(&format!("GET /healthz HTTP/1.1\r\n{many}\r\n")),
            "other"
        );
        let too_many = "X-A: 1\r\n".repeat(101);
        assert_eq!(
            kind(&format!("GET /healthz HTTP/1.1\r\n{too_many}\r\n")),
            "rejected"
        );
        let rejected: [&[u8]; 6] = [
            b"NOT HTTP AT ALL\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nX-A: a\0b\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
            b"POST /api/tasks HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
            b"POST /api/tasks HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            b"POST /api/tasks HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        ];
        for head in rejected {
            assert!(
                matches!(classify(head), Classified::Rejected(_)),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn the_parts_carry_the_uri_and_every_header() {
        let head = "GET /api/subscribeToTask?taskId=abc HTTP/1.1\r\nAuthorization: Bearer t\r\n\
                    Accept: text/event-stream\r\nAccept: */*\r\n\r\n";
        let Classified::Stream(parts, _) = classify(head.as_bytes()) else {
            panic!("a stream request");
        };
        assert_eq!(parts.uri.path(), "/api/subscribeToTask");
        assert_eq!(parts.uri.query(), Some("taskId=abc"));
        assert_eq!(parts.headers["authorization"], "Bearer t");
        assert_eq!(parts.headers.get_all("accept").iter().count(), 2);
    }
}
