//! The one error type answered to HTTP clients, and the single place where store errors become
//! statuses. 4xx answers tell the caller what to fix; 5xx answers say little and the cause is
//! logged instead.

use std::fmt;
use std::time::Duration;

use http::header::{ALLOW, CONNECTION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;
use task_core::CoreError;
use task_store::StoreError;

use crate::body::Body;
use crate::response::json_response;
use crate::HttpError;

/// How long a client should wait after a 503 before trying again.
const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// An HTTP error answer: a status and a JSON body `{"error":"..."}` (plus `"field"` when one
/// input field is to blame), with `Allow`, `Retry-After` or `WWW-Authenticate` where the status
/// calls for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
    allow: Option<&'static str>,
    retry_after: Option<Duration>,
    /// Whether a store call failed because the storage is unavailable (see `storage_health`).
    storage_down: bool,
    /// Whether the answer closes the connection (`Connection: close`).
    close: bool,
    limit: Option<&'static str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            allow: None,
            retry_after: None,
            storage_down: false,
            close: false,
            limit: None,
        }
    }

    /// 400: `field` is missing or invalid; the message says `invalid <field>: <reason>`.
    pub fn invalid_field(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        let field = field.into();
        Self {
            field: Some(field.clone()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                format!("invalid {field}: {reason}"),
            )
        }
    }

    /// 400 for input that is wrong as a whole (for example a body that is not JSON).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: no valid credentials.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication required")
    }

    /// 401 for a login with a token that is unknown, expired or revoked.
    pub fn invalid_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid token")
    }

    /// 403: authenticated, but not allowed to do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404 for a task that does not exist or belongs to someone else (the two look alike).
    pub fn task_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "task not found")
    }

    /// 404 for something else that does not exist or belongs to someone else.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 404 for a workflow that does not exist or that the caller may not see.
    pub fn workflow_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "workflow not found")
    }

    /// 404 for a path the server does not have.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no such endpoint")
    }

    /// 405 with the methods the path does accept.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed; use {allow}"),
            )
        }
    }

    /// 409: the task's state does not allow the operation.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 422: the request is well-formed but cannot be honoured as sent (for example an
    /// `Idempotency-Key` reused with a different body).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 413: the body is larger than `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 408: the body did not arrive within `timeout`. The answer closes the connection: the
    /// rest of the body is never read.
    pub fn body_timeout(timeout: Duration) -> Self {
        Self {
            close: true,
            ..Self::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("request body not received within {timeout:?}"),
            )
        }
    }

    /// 431: the request head is too large (`what`: its size limit or header count).
    pub fn head_too_large(what: impl fmt::Display) -> Self {
        Self {
            close: true,
            ..Self::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("request head too large: at most {what}"),
            )
        }
    }

    /// 415: the body is not `application/json`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request body must be application/json",
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(message: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }

    /// 429 for a user who created tasks faster than their rate limit allows; the body's
    /// `limit` is `"rate"`.
    pub fn rate_limited(message: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            limit: Some("rate"),
            ..Self::too_many_requests(message, retry_after)
        }
    }

    /// 429 for a user whose queue holds `max` unfinished tasks already.
    pub fn queue_full(max: u64, retry_after: Duration) -> Self {
        Self {
            limit: Some("max_queued"),
            ..Self::too_many_queued(max, retry_after)
        }
    }

    fn too_many_queued(max: u64, retry_after: Duration) -> Self {
        Self::too_many_requests(
            format!(
                "too many unfinished tasks: at most {max} may be pending or processing per user"
            ),
            retry_after,
        )
    }

    /// 503: the database cannot be used right now.
    pub fn unavailable() -> Self {
        Self {
            retry_after: Some(UNAVAILABLE_RETRY_AFTER),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }

    /// 503 for a store call that failed because of the storage, not the request.
    fn storage_down() -> Self {
        Self {
            storage_down: true,
            ..Self::unavailable()
        }
    }

    /// 500. The cause is logged here and never sent to the client.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "internal error answered with 500");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// Whether the storage failed (unavailable, or busy past its timeout), as opposed to
    /// anything about the request.
    pub fn is_storage_down(&self) -> bool {
        self.storage_down
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message sent as `error`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The response: JSON body and the headers the status calls for.
    pub fn into_response(self) -> Response<Body> {
        let body = ErrorBody {
            error: &self.message,
            field: self.field.as_deref(),
            limit: self.limit,
        };
        let mut response = json_response(self.status, &body);
        let headers = response.headers_mut();
        if let Some(allow) = self.allow {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(after) = self.retry_after {
            // Retry-After is whole seconds; round up so clients never come back too early.
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if self.close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::InvalidField { field, reason } => ApiError::invalid_field(field, reason),
            CoreError::InvalidTaskId(_) => ApiError::invalid_field("taskId", "not a task id"),
            CoreError::IllegalTransition { from, to } => {
                ApiError::conflict(format!("a {from} task cannot become {to}"))
            }
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

/// Every store error becomes a status here and nowhere else.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::task_not_found(),
            StoreError::Invalid(core) => core.into(),
            StoreError::IllegalTransition { from, to } => {
                ApiError::conflict(format!("a {from} task cannot become {to}"))
            }
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::Busy => {
                tracing::warn!("database busy; answering 503");
                ApiError::storage_down()
            }
            StoreError::Unavailable(cause) => {
                tracing::error!(%cause, "database unavailable; answering 503");
                ApiError::storage_down()
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<HttpError> for ApiError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Store(store) => store.into(),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn check(error: impl Into<ApiError>, status: u16, body: &str) {
        let response = error.into().into_response();
        assert_eq!(response.status().as_u16(), status);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(std::str::from_utf8(&bytes).unwrap(), body);
    }

    #[tokio::test]
    async fn store_errors_map_to_statuses_without_internals() {
        check(StoreError::NotFound, 404, r#"{"error":"task not found"}"#).await;
        check(
            StoreError::Unavailable("disk /var/db gone".into()),
            503,
            r#"{"error":"database unavailable"}"#,
        )
        .await;
        check(StoreError::Busy, 503, r#"{"error":"database unavailable"}"#).await;
        check(
            StoreError::Backend("SQL syntax near SELECT".into()),
            500,
            r#"{"error":"internal server error"}"#,
        )
        .await;
        check(
            StoreError::Invalid(CoreError::InvalidField {
                field: "label",
                reason: "too long".into(),
            }),
            400,
            r#"{"error":"invalid label: too long","field":"label"}"#,
        )
        .await;
        check(
            StoreError::IllegalTransition {
                from: task_core::TaskStatus::Completed,
                to: task_core::TaskStatus::Cancelled,
            },
            409,
            r#"{"error":"a completed task cannot become cancelled"}"#,
        )
        .await;
    }

    #[test]
    fn headers_follow_the_status() {
        let response = ApiError::method_not_allowed("GET, POST").into_response();
        assert_eq!(response.headers()[ALLOW], "GET, POST");
        let response =
            ApiError::too_many_requests("slow down", Duration::from_millis(1500)).into_response();
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        let response = ApiError::unauthorized().into_response();
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            ApiError::unavailable().into_response().headers()[RETRY_AFTER],
            "1"
        );
    }
}
