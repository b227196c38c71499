//! The endpoints the existing front end calls, with its names and shapes:
//! `POST /api/generateAIQuestions` and `GET /api/getBackgroundTasks` (its live stream,
//! `GET /api/subscribeToTask`, is in [`super::streams`]).

use http::Response;
use hyper::body::Incoming;
use serde_json::json;
use task_store::{ListQuery, DEFAULT_LIST_LIMIT};

use super::{listing_owner, Ctx};
use crate::body::Body;
use crate::generation::generation_task;
use crate::idempotency;
use crate::input::{read_json, Query};
use crate::response::ok;
use crate::ApiError;

/// `POST /api/generateAIQuestions`: checks the request, creates a `generation` task and answers
/// `{"success":true,"taskId":"task_..."}` at once; a worker runs it in the background. An
/// `Idempotency-Key` header replays the first answer instead of creating another task.
pub async fn generate_ai_questions(
    ctx: &mut Ctx,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let input = read_json(&ctx.parts, body, ctx.state.config().body_limit).await?;
    let guard = idempotency::guard_for(&ctx.parts, "POST /api/generateAIQuestions", &input, None)?;
    let new = generation_task(&input, &identity.email)?;
    new.validate()?;
    let answer = ctx.state.creator().create_guarded(new, guard).await?;
    let task = &answer.task;
    let mut response = ok(&json!({ "success": true, "taskId": task.id }));
    if answer.replayed {
        response.headers_mut().insert(
            idempotency::IDEMPOTENT_REPLAYED.clone(),
            http::HeaderValue::from_static("true"),
        );
    } else {
        tracing::info!(task_id = %task.id, task_type = %task.task_type, user = %identity.email, "task created");
    }
    Ok(response)
}

/// `GET /api/getBackgroundTasks?userId=&limit=`: a JSON array of tasks, newest first.
pub async fn get_background_tasks(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    let query = Query::parse(ctx.parts.uri.query());
    let list = ListQuery {
        user_id: listing_owner(&identity, query.get("userId"))?,
        limit: query
            .parse_value("limit", "a whole number from 1 to 1000")?
            .unwrap_or(DEFAULT_LIST_LIMIT),
        ..ListQuery::default()
    };
    list.validate()?;
    let page = ctx.state.tasks().list(&list).await?;
    Ok(ok(&page.tasks))
}
