//! `GET /api/workflows/{id}/events`: a workflow's live stream, every node's events on one
//! connection, resumable with `Last-Event-ID`. Who may open it is decided here (the workflow's
//! owner or a superuser, under the per-user stream cap); `crate::live` writes the stream.

use http::Response;

use super::streams::{stream_slot, LAST_EVENT_ID};
use super::workflows::visible_workflow;
use super::Ctx;
use crate::body::Body;
use crate::live::{self, WorkflowNodeState};
use crate::ApiError;

/// `GET /api/workflows/{id}/events`.
///
/// # Errors
/// 401 when anonymous, 404 for an unknown or foreign workflow, 400 for a `Last-Event-ID` that is
/// not a workflow stream's id at all (one this workflow did not send starts the stream over), 429 past the stream cap, store errors.
pub async fn workflow_events(ctx: &mut Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    let workflow = visible_workflow(ctx, &identity, id).await?;
    let resume = match ctx.parts.headers.get(LAST_EVENT_ID) {
        None => None,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| live::parse_workflow_event_id(v.trim(), workflow.nodes.len()))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "Last-Event-ID",
                    "must be an event id of a workflow stream (versions separated by dots)",
                )
            })?,
    };
    let mut nodes = Vec::with_capacity(workflow.nodes.len());
    for (key, task_id) in workflow.nodes {
        let task = match ctx.state.tasks().get(&task_id).await {
            Ok(task) => Some(task),
            Err(task_store::StoreError::NotFound) => None,
            Err(error) => return Err(error.into()),
        };
        nodes.push(WorkflowNodeState { key, task });
    }
    let slot = stream_slot(ctx, &identity.email)?;
    Ok(live::workflow_stream(
        ctx.state.hub(),
        nodes,
        resume,
        ctx.state.sse(),
        Box::new(slot),
    ))
}
