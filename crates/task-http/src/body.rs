//! The one response body type every handler returns, and constructors for the common cases.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};

/// A response body: a complete buffer for REST answers, a stream of frames for SSE.
pub type Body = BoxBody<Bytes, Infallible>;

/// A body holding `bytes` in full.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}
