//! `POST /api/tasks/bulk`: cancel, retry or delete many tasks in one request, with an outcome
//! for every id (one failure does not stop the others).

use http::Response;
use hyper::body::Incoming;
use serde::Serialize;
use task_core::Task;

use super::tasks::ensure_queue_room;
use super::Ctx;
use crate::auth::Identity;
use crate::body::Body;
use crate::config::MAX_BULK_IDS;
use crate::input::{read_json, Fields};
use crate::response::ok;
use crate::ApiError;

/// What to do with every listed task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Cancel,
    Retry,
    Delete,
}

/// The answer: the action and one outcome per distinct id, in request order.
#[derive(Serialize)]
struct BulkResponse {
    action: Action,
    results: Vec<Outcome>,
}

/// One id's outcome: `ok` with the task after the change (none after a delete), or the status
/// and message a single request would have got.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    task_id: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<Task>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `POST /api/tasks/bulk` `{"action":"cancel"|"retry"|"delete","taskIds":[...]}`.
pub async fn bulk(ctx: &mut Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let mut fields = Fields::new(input)?;
    fields.deny_unknown(&["action", "taskIds"])?;
    let action = match fields.required_string("action")?.as_str() {
        "cancel" => Action::Cancel,
        "retry" => Action::Retry,
        "delete" => Action::Delete,
        _ => {
            return Err(ApiError::invalid_field(
                "action",
                "must be one of cancel, retry, delete",
            ))
        }
    };
    let mut ids = fields.string_array("taskIds")?;
    if ids.is_empty() || ids.len() > MAX_BULK_IDS {
        return Err(ApiError::invalid_field(
            "taskIds",
            format!("must hold 1 to {MAX_BULK_IDS} task ids"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        let outcome = match apply(ctx, &identity, action, &id).await {
            Ok(task) => Outcome {
                task_id: id,
                ok: true,
                task,
                status: None,
                error: None,
            },
            Err(error) => Outcome {
                task_id: id,
                ok: false,
                task: None,
                status: Some(error.status().as_u16()),
                error: Some(error.message().to_owned()),
            },
        };
        results.push(outcome);
    }
    let succeeded = results.iter().filter(|outcome| outcome.ok).count();
    tracing::info!(?action, user = %identity.email, requested = results.len(), succeeded, "bulk action");
    Ok(ok(&BulkResponse { action, results }))
}

async fn apply(
    ctx: &Ctx,
    identity: &Identity,
    action: Action,
    id: &str,
) -> Result<Option<Task>, ApiError> {
    let task = ctx.visible_task(identity, id).await?;
    let store = ctx.state.tasks();
    match action {
        Action::Cancel => Ok(Some(store.request_cancel(&task.id).await?)),
        Action::Retry => {
            ensure_queue_room(ctx, &task.user_id, 1).await?;
            Ok(Some(store.retry(&task.id, None).await?))
        }
        Action::Delete => {
            store.delete(&task.id).await?;
            Ok(None)
        }
    }
}
