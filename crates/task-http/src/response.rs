//! Building JSON answers.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;

use crate::body::{self, Body};

/// The body sent if a value cannot be serialised (which our types never cause).
const SERIALISATION_FAILED: &str = r#"{"error":"internal server error"}"#;

/// A JSON response with `status`. Answers are never cached: they describe live task state.
pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let (status, bytes) = match serde_json::to_vec(value) {
        Ok(bytes) => (status, bytes),
        Err(error) => {
            tracing::error!(%error, "response serialisation failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                SERIALISATION_FAILED.as_bytes().to_vec(),
            )
        }
    };
    let mut response = Response::new(body::full(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A `200 OK` JSON response.
pub fn ok(value: &impl Serialize) -> Response<Body> {
    json_response(StatusCode::OK, value)
}

/// A plain-text response (health checks, metrics).
pub fn text(status: StatusCode, content_type: &'static str, text: String) -> Response<Body> {
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Marks `response` `X-Content-Type-Options: nosniff`. Every answer gets it, JSON and event
/// streams included, not only pages: a browser must never guess a type for a body an attacker
/// may have shaped (a task's label, an error message).
pub fn nosniff(response: &mut Response<Body>) {
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}
