//! Operational endpoints: liveness, readiness (the database answers) and Prometheus metrics.

use http::{Response, StatusCode};
use serde_json::json;

use super::Ctx;
use crate::body::Body;
use crate::response::{ok, text};
use crate::ApiError;

/// `GET /healthz`: the process is up and serving. Never touches the database, so a slow
/// database does not get a healthy process restarted.
pub fn healthz() -> Response<Body> {
    ok(&json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when the database answers and takes writes; 503 when it does not answer,
/// or when a request found the storage unavailable (a full disk fails writes while reads, and
/// so the ping, still work) within `DEGRADED_HOLD` with no successful write since.
pub async fn readyz(ctx: &Ctx) -> Response<Body> {
    match ctx.state.tasks().ping().await {
        Ok(()) if ctx.state.storage_health().degraded() => {
            tracing::warn!("readiness check failed: writes failed recently");
            ApiError::unavailable().into_response()
        }
        Ok(()) => ok(&json!({ "status": "ready" })),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            ApiError::unavailable().into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format. Superusers only: the numbers describe every user's
/// tasks (scrape with a superuser's bearer token).
pub async fn metrics(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    if !identity.is_superuser() {
        return Err(ApiError::forbidden("metrics are for superusers"));
    }
    let rendered = ctx.state.metrics().render().await?;
    Ok(text(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        rendered,
    ))
}
