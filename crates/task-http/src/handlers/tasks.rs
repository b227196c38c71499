//! The task endpoints beyond the contract: read one, list with filters, create any registered
//! type, cancel and retry.

use http::header::LOCATION;
use http::{HeaderValue, Response};
use hyper::body::Incoming;
use serde::Serialize;
use task_core::{Task, TaskStatus};
use task_store::{Cursor, ListQuery, DEFAULT_LIST_LIMIT};

use super::task_spec::{read_task_spec, TASK_FIELDS};
use super::{listing_owner, Ctx};
use crate::body::Body;
use crate::idempotency;
use crate::input::{read_json, Fields, Query};
use crate::response::{json_response, ok};
use crate::ApiError;

/// `GET /api/tasks/{id}`.
pub async fn get_task(ctx: &mut Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    let task = ctx.visible_task(&identity, id).await?;
    Ok(ok(&task))
}

/// One page of `GET /api/tasks`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    tasks: Vec<Task>,
    next_cursor: Option<String>,
}

/// `GET /api/tasks?status=&type=&userId=&q=&limit=&cursor=`: newest first, one page at a time.
pub async fn list_tasks(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    let query = Query::parse(ctx.parts.uri.query())?.once_each()?;
    let statuses = match query.get("status") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse::<TaskStatus>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                ApiError::invalid_field(
                    "status",
                    "must be a comma-separated list of waiting, pending, processing, completed, failed, cancelled",
                )
            })?,
    };
    let list = ListQuery {
        user_id: listing_owner(&identity, query.get("userId"), "tasks")?,
        statuses,
        task_type: query.get("type").map(str::to_owned),
        search: query.get("q").map(str::to_owned),
        after: query.parse_value::<Cursor>("cursor", "a cursor returned by this API")?,
        limit: query
            .parse_value("limit", "a whole number from 1 to 1000")?
            .unwrap_or(DEFAULT_LIST_LIMIT),
        ..ListQuery::default()
    };
    list.validate()?;
    let page = ctx.state.tasks().list(&list).await?;
    Ok(ok(&Page {
        tasks: page.tasks,
        next_cursor: page.next.map(|cursor| cursor.to_string()),
    }))
}

/// `POST /api/tasks`: creates a task of a registered type for the caller; answers 201 with the
/// task and its `Location`. An `Idempotency-Key` replays the first answer; a `unique_key`
/// whose task is unfinished answers 200 with that task instead of creating one.
pub async fn create_task(ctx: &mut Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let mut guard = idempotency::guard_for(&ctx.parts, "POST /api/tasks", &input, None)?;
    let mut fields = Fields::new(input)?;
    let mut known = TASK_FIELDS.to_vec();
    known.push("unique_key");
    fields.deny_unknown(&known)?;
    guard.unique_key = fields.string("unique_key")?;
    let new = read_task_spec(&ctx.state, identity.email.as_str(), &mut fields)?;
    let answer = if new.depends_on.is_empty() {
        ctx.state.creator().create_guarded(new, guard).await?
    } else {
        // Not batched with other requests: a parent that is not found must fail this request
        // alone.
        admit_creation(ctx, &identity.email, 1).await?;
        idempotency::settle(ctx.state.tasks().create_guarded(new, guard).await?)?
    };
    let task = &answer.task;
    if answer.created && !answer.replayed {
        tracing::info!(task_id = %task.id, task_type = %task.task_type, user = %identity.email, "task created");
    }
    let mut response = json_response(answer.status(), task);
    if let Ok(location) = HeaderValue::from_str(&format!("/api/tasks/{}", task.id)) {
        response.headers_mut().insert(LOCATION, location);
    }
    idempotency::mark_replayed(&mut response, answer.replayed);
    Ok(response)
}

/// `POST /api/tasks/{id}/cancel`: a pending task is cancelled at once, a running one is asked
/// to stop. Answers with the task after the request.
pub async fn cancel_task(ctx: &mut Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let task = ctx.visible_task(&identity, id).await?;
    let task = ctx.state.tasks().request_cancel(&task.id).await?;
    tracing::info!(task_id = %task.id, user = %identity.email, status = %task.status, "cancel requested");
    Ok(ok(&task))
}

/// `POST /api/tasks/{id}/retry`: a failed or cancelled task starts over with a full set of
/// attempts, if its owner has room in their queue.
pub async fn retry_task(ctx: &mut Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let task = ctx.visible_task(&identity, id).await?;
    ensure_queue_room(ctx, &task.user_id, 1).await?;
    let task = ctx.state.tasks().retry(&task.id, None).await?;
    tracing::info!(task_id = %task.id, user = %identity.email, "task retried");
    Ok(ok(&task))
}

/// Fails with 429 unless `owner` can take `adding` more unfinished tasks (their own queue cap
/// where set, the server's otherwise).
///
/// # Errors
/// 429 with `Retry-After` when the queue is full; store errors otherwise.
pub async fn ensure_queue_room(ctx: &Ctx, owner: &str, adding: u64) -> Result<(), ApiError> {
    let max = ctx
        .state
        .creator()
        .limits()
        .effective(owner)
        .await?
        .max_queued;
    queue_room(ctx, owner, adding, max).await
}

/// The admission of a creation that does not go through the creator (a workflow, a task with
/// parents): one creation from `owner`'s rate limit, then room for `adding` tasks in their
/// queue.
///
/// # Errors
/// 429 with `Retry-After` (`"limit": "rate"` or `"queue"`); store errors otherwise.
pub async fn admit_creation(ctx: &Ctx, owner: &str, adding: u64) -> Result<(), ApiError> {
    let limits = ctx.state.creator().limits().admit(owner).await?;
    queue_room(ctx, owner, adding, limits.max_queued).await
}

async fn queue_room(ctx: &Ctx, owner: &str, adding: u64, max: u64) -> Result<(), ApiError> {
    let unfinished = ctx.state.tasks().count_unfinished(owner).await?;
    if unfinished.saturating_add(adding) > max {
        return Err(ApiError::queue_full(max, ctx.state.config().retry_after));
    }
    Ok(())
}
