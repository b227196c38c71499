//! The endpoints the existing front end calls, with its names and shapes:
//! `POST /api/generateAIQuestions` and `GET /api/getBackgroundTasks` (its live stream,
//! `GET /api/subscribeToTask`, is in [`super::streams`]).

use http::Response;
use hyper::body::Incoming;
use serde_json::json;
use task_store::{ListQuery, DEFAULT_LIST_LIMIT};

use super::tasks::ensure_queue_room;
use super::{listing_owner, Ctx};
use crate::body::Body;
use crate::chain::chain_workflow;
use crate::generation::generation_task;
use crate::input::{read_json, Query};
use crate::response::ok;
use crate::ApiError;

/// `POST /api/generateAIQuestions`: checks the request, creates a `generation` task and answers
/// `{"success":true,"taskId":"task_..."}` at once; a worker runs it in the background. With
/// `"then": ["validation", "emoji-regeneration"]` the steps follow it as one workflow, and the
/// answer adds `workflowId`.
pub async fn generate_ai_questions(
    ctx: &mut Ctx,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let mut new = generation_task(&input, &identity.email)?;
    new.max_attempts = ctx.state.attempts_for(&new.task_type, None)?;
    new.validate()?;
    let chain = chain_workflow(new.clone(), input.get("then"), |task_type| {
        ctx.state.accepts_task_type(task_type)
    })?;
    if let Some(workflow) = chain {
        ensure_queue_room(ctx, &identity.email, workflow.nodes.len() as u64).await?;
        let (record, tasks) = ctx.state.tasks().create_workflow(workflow).await?;
        let task = tasks
            .first()
            .ok_or_else(|| ApiError::internal("a workflow without its generation"))?;
        tracing::info!(task_id = %task.id, workflow_id = %record.id, user = %identity.email, "generation workflow created");
        return Ok(ok(
            &json!({ "success": true, "taskId": task.id, "workflowId": record.id }),
        ));
    }
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
