//! The response body of every live stream: frames pulled one at a time from a compact async
//! state machine, with no buffer beyond the frame being written.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;

use crate::body::Body;

type Frames = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// A producer of SSE frames: `None` ends the stream (hyper then writes the final chunk).
pub(crate) trait FrameSource: Send + 'static {
    /// The next frame to write, waiting as long as needed.
    fn next_frame(&mut self) -> impl Future<Output = Option<Bytes>> + Send;
}

/// Adapts a [`FrameSource`] to `http_body::Body`.
///
/// The shared [`Body`] type must be `Sync`, but the futures a stream awaits need not be. The
/// frames sit behind a `Mutex` that is never locked: `Mutex::get_mut` proves exclusive
/// access through `&mut self`, which is all `poll_frame` ever has, so this costs nothing.
struct SseBody {
    frames: Mutex<Frames>,
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frames = self
            .get_mut()
            .frames
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        frames
            .as_mut()
            .poll_next(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// A `200 text/event-stream` response whose body is written by `source`.
pub(crate) fn sse_response(source: impl FrameSource) -> Response<Body> {
    let frames = stream::unfold(source, |mut source| async move {
        let frame = source.next_frame().await?;
        Some((frame, source))
    });
    let body = SseBody {
        frames: Mutex::new(Box::pin(frames)),
    };
    let mut response = Response::new(body.boxed());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to hold events back in a buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// `204 No Content`: the answer that makes an `EventSource` stop reconnecting.
pub(crate) fn no_content() -> Response<Body> {
    let mut response = Response::new(crate::body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}
