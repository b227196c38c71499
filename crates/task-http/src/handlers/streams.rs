//! The live endpoints: `GET /api/subscribeToTask` (one task, the contract's stream) and
//! `GET /api/subscribeToTasks` (every task the caller may see). This module decides who may
//! open which stream and enforces the per-user stream cap; `crate::live` writes the streams.

use http::header::HeaderName;
use http::Response;
use task_core::TaskId;

use super::{listing_owner, Ctx};
use crate::body::Body;
use crate::input::Query;
use crate::live::{self, StreamScope};
use crate::stream_slots::StreamSlot;
use crate::ApiError;

/// The header a reconnecting `EventSource` sends with the last event id it saw.
pub(super) const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// `GET /api/subscribeToTask?taskId=`: the task's state at once, then every change, until it
/// finishes or the monitoring limit runs out.
pub async fn subscribe_to_task(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    let query = Query::parse(ctx.parts.uri.query())?.once_each()?;
    let raw_id = query
        .get("taskId")
        .ok_or_else(|| ApiError::invalid_field("taskId", "is required"))?;
    let id: TaskId = raw_id
        .parse()
        .map_err(|_| ApiError::invalid_field("taskId", "is not a task id"))?;
    let task = ctx.visible_task(&identity, id.as_str()).await?;
    let resume = last_event_id(ctx)?;
    let slot = stream_slot(ctx, &identity.email)?;
    Ok(live::task_stream_with_partials(
        ctx.state.hub(),
        task,
        resume,
        ctx.state.events().cloned(),
        ctx.state.sse(),
        Box::new(slot),
    ))
}

/// `GET /api/subscribeToTasks[?userId=]`: changes to the caller's tasks (a superuser: everyone's,
/// or one user's).
pub async fn subscribe_to_tasks(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    let query = Query::parse(ctx.parts.uri.query())?.once_each()?;
    let scope = match listing_owner(&identity, query.get("userId"), "tasks")? {
        Some(owner) => StreamScope::User(owner),
        None => StreamScope::All,
    };
    let slot = stream_slot(ctx, &identity.email)?;
    Ok(live::tasks_stream(
        ctx.state.hub(),
        scope,
        ctx.state.sse(),
        Box::new(slot),
    ))
}

/// The `Last-Event-ID` a reconnecting client sent: the task version it saw last, and after
/// partial outputs `<version>.<seq>`, the last partial's number too.
fn last_event_id(ctx: &Ctx) -> Result<live::ResumePoint, ApiError> {
    let Some(value) = ctx.parts.headers.get(LAST_EVENT_ID) else {
        return Ok(live::ResumePoint::default());
    };
    value
        .to_str()
        .ok()
        .and_then(|v| live::ResumePoint::parse(v.trim()))
        .ok_or_else(|| {
            ApiError::invalid_field("Last-Event-ID", "must be an event id this server sent")
        })
}

/// A place under the per-user cap on live streams (SSE streams and WebSocket connections).
pub(super) fn stream_slot(ctx: &Ctx, user: &str) -> Result<StreamSlot, ApiError> {
    ctx.state.stream_slots().try_acquire(user).ok_or_else(|| {
        ApiError::too_many_requests(
            format!(
                "too many open live streams: at most {} per user",
                ctx.state.config().max_sse_per_user
            ),
            ctx.state.config().retry_after,
        )
    })
}
