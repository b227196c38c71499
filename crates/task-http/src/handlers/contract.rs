//! The endpoints the existing front end calls, with its names and shapes:
//! `POST /api/generateAIQuestions` and `GET /api/getBackgroundTasks` (its live stream,
//! `GET /api/subscribeToTask`, is in [`super::streams`]).

use http::Response;
use hyper::body::Incoming;
use serde_json::json;
use task_store::{ListQuery, DEFAULT_LIST_LIMIT};

use super::task_spec::read_priority;
use super::tasks::admit_creation;
use super::{listing_owner, Ctx};
use crate::body::Body;
use crate::chain::chain_workflow;
use crate::generation::generation_task;
use crate::idempotency;
use crate::input::{read_json, Query};
use crate::response::ok;
use crate::ApiError;

/// `POST /api/generateAIQuestions`: checks the request, creates a `generation` task and answers
/// `{"success":true,"taskId":"task_..."}` at once; a worker runs it in the background. With
/// `"then": ["validation", "emoji-regeneration"]` the steps follow it as one workflow, and the
/// answer adds `workflowId`. An `Idempotency-Key` header replays the first answer instead of
/// creating another task or workflow.
pub async fn generate_ai_questions(
    ctx: &mut Ctx,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let guard = idempotency::guard_for(&ctx.parts, "POST /api/generateAIQuestions", &input, None)?;
    let mut new = generation_task(&input, &identity.email)?;
    new.max_attempts = ctx.state.attempts_for(&new.task_type, None)?;
    new.priority = read_priority(input.get("priority"))?;
    new.validate()?;
    let chain = chain_workflow(new.clone(), input.get("then"), |task_type| {
        ctx.state.accepts_task_type(task_type)
    })?;
    if let Some(workflow) = chain {
        admit_creation(ctx, &identity.email, workflow.nodes.len() as u64).await?;
        let (record, replayed) =
            idempotency::create_workflow(ctx.state.tasks().as_ref(), workflow, guard).await?;
        let (_, task_id) = record
            .nodes
            .first()
            .ok_or_else(|| ApiError::internal("a workflow without its generation"))?;
        if !replayed {
            tracing::info!(task_id = %task_id, workflow_id = %record.id, user = %identity.email, "generation workflow created");
        }
        let mut response =
            ok(&json!({ "success": true, "taskId": task_id, "workflowId": record.id }));
        idempotency::mark_replayed(&mut response, replayed);
        return Ok(response);
    }
    let answer = ctx.state.creator().create_guarded(new, guard).await?;
    let task = &answer.task;
    let mut response = ok(&json!({ "success": true, "taskId": task.id }));
    if !answer.replayed {
        tracing::info!(task_id = %task.id, task_type = %task.task_type, user = %identity.email, "task created");
    }
    idempotency::mark_replayed(&mut response, answer.replayed);
    Ok(response)
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
