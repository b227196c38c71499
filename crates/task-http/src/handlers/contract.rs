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
use crate::input::{read_json, Query};
use crate::response::ok;
use crate::ApiError;

/// `POST /api/generateAIQuestions`: checks the request, creates a `generation` task and answers
/// `{"success":true,"taskId":"task_..."}` at once; a worker runs it in the background.
pub async fn generate_ai_questions(
    ctx: &mut Ctx,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let mut new = generation_task(&input, &identity.email)?;
    new.max_attempts = ctx.state.attempts_for(&new.task_type, None)?;
    new.validate()?;
    let task = ctx.state.creator().create(new).await?;
    tracing::info!(task_id = %task.id, task_type = %task.task_type, user = %identity.email, "task created");
    Ok(ok(&json!({ "success": true, "taskId": task.id })))
}

/// `GET /api/getBackgroundTasks?userId=&limit=`: a JSON array of tasks, newest first.
pub async fn get_background_tasks(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    let query = Query::parse(ctx.parts.uri.query())?.once_each()?;
    let list = ListQuery {
        user_id: listing_owner(&identity, query.get("userId"), "tasks")?,
        limit: query
            .parse_value("limit", "a whole number from 1 to 1000")?
            .unwrap_or(DEFAULT_LIST_LIMIT),
        ..ListQuery::default()
    };
    list.validate()?;
    let page = ctx.state.tasks().list(&list).await?;
    Ok(ok(&page.tasks))
}
