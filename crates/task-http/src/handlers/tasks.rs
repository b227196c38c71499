//! The task endpoints beyond the contract: read one, list with filters, create any registered
//! type, cancel and retry.

use http::header::LOCATION;
use http::{HeaderValue, Response};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::Value;
use task_core::{NewTask, Task, TaskStatus};
use task_store::{Cursor, ListQuery, DEFAULT_LIST_LIMIT};

use super::{listing_owner, Ctx};
use crate::body::Body;
use crate::idempotency;
use crate::input::{read_json, Fields, Query};
use crate::response::{json_response, ok};
use crate::ApiError;

/// The fields `POST /api/tasks` accepts.
const CREATE_FIELDS: &[&str] = &[
    "task_type",
    "params",
    "label",
    "description",
    "run_at",
    "max_attempts",
    "unique_key",
];

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
    let query = Query::parse(ctx.parts.uri.query());
    let statuses = match query.get("status") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse::<TaskStatus>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                ApiError::invalid_field(
                    "status",
                    "must be a comma-separated list of pending, processing, completed, failed, cancelled",
                )
            })?,
    };
    let list = ListQuery {
        user_id: listing_owner(&identity, query.get("userId"))?,
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
    let input = read_json(&ctx.parts, body, ctx.state.config().body_limit).await?;
    let mut guard = idempotency::guard_for(&ctx.parts, "POST /api/tasks", &input, None)?;
    let mut fields = Fields::new(input)?;
    fields.deny_unknown(CREATE_FIELDS)?;
    let task_type = fields.required_string("task_type")?;
    if !ctx.state.accepts_task_type(&task_type) {
        let known: Vec<&str> = ctx.state.task_types().collect();
        return Err(ApiError::invalid_field(
            "task_type",
            format!(
                "{:?} is not a registered task type (registered: {})",
                task_type.chars().take(64).collect::<String>(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let mut new = NewTask::new(identity.email.as_str(), task_type);
    match fields.value("params") {
        None => {}
        Some(params @ Value::Object(_)) => new = new.with_params(params),
        Some(_) => return Err(ApiError::invalid_field("params", "must be a JSON object")),
    }
    new.label = fields.string("label")?;
    new.description = fields.string("description")?;
    new.run_at = fields.integer("run_at")?;
    if let Some(max_attempts) = fields.integer("max_attempts")? {
        new.max_attempts = max_attempts;
    }
    guard.unique_key = fields.string("unique_key")?;
    new.validate()?;
    let answer = ctx.state.creator().create_guarded(new, guard).await?;
    let task = &answer.task;
    if answer.created && !answer.replayed {
        tracing::info!(task_id = %task.id, task_type = %task.task_type, user = %identity.email, "task created");
    }
    let mut response = json_response(answer.status(), task);
    if let Ok(location) = HeaderValue::from_str(&format!("/api/tasks/{}", task.id)) {
        response.headers_mut().insert(LOCATION, location);
    }
    if answer.replayed {
        response.headers_mut().insert(
            idempotency::IDEMPOTENT_REPLAYED.clone(),
            HeaderValue::from_static("true"),
        );
    }
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

/// Fails with 429 unless `owner` can take `adding` more unfinished tasks.
///
/// # Errors
/// 429 with `Retry-After` when the queue is full; store errors otherwise.
pub async fn ensure_queue_room(ctx: &Ctx, owner: &str, adding: u64) -> Result<(), ApiError> {
    let max = ctx.state.config().max_queued_per_user;
    let unfinished = ctx.state.tasks().count_unfinished(owner).await?;
    if unfinished.saturating_add(adding) > max {
        return Err(ApiError::queue_full(max, ctx.state.config().retry_after));
    }
    Ok(())
}
