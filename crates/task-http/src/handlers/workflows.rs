//! The workflow endpoints: create a graph of tasks in one request, read it with each node's
//! task, cancel every unfinished node.

use std::collections::BTreeMap;

use http::header::LOCATION;
use http::{HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::Value;
use task_core::{NewWorkflow, Task, Workflow, WorkflowEdge, WorkflowNode};

use super::task_spec::{read_task_spec, TASK_FIELDS};
use super::tasks::admit_creation;
use super::Ctx;
use crate::auth::Identity;
use crate::body::Body;
use crate::idempotency;
use crate::input::{read_json, Fields};
use crate::response::{json_response, ok};
use crate::ApiError;

/// The most nodes `POST /api/workflows` accepts (the store takes up to
/// `task_core::MAX_WORKFLOW_NODES`, 10,000, from embedders): one request's graph is checked and written
/// in one transaction, which holds the writer for its whole length.
pub const MAX_HTTP_WORKFLOW_NODES: usize = 1000;

/// The answer of `POST /api/workflows`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    workflow_id: String,
    tasks: BTreeMap<String, String>,
}

/// One node of `GET /api/workflows/{id}`.
#[derive(Serialize)]
struct NodeView {
    key: String,
    task: Option<Task>,
}

/// The answer of `GET /api/workflows/{id}` and `POST /api/workflows/{id}/cancel`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkflowView {
    id: String,
    user_id: String,
    created_at: i64,
    nodes: Vec<NodeView>,
    edges: Vec<WorkflowEdge>,
}

/// `POST /api/workflows`: `{"nodes": [{"key", <task spec>}...], "edges": [{"parent", "child",
/// "run_on_failure"}...]}`, created all together or not at all; answers 201 with
/// `{workflowId, tasks: {key: taskId}}`. An `Idempotency-Key` header replays that answer for
/// the same request instead of creating another workflow.
pub async fn create_workflow(ctx: &mut Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let guard = idempotency::guard_for(&ctx.parts, "POST /api/workflows", &input, None)?;
    let workflow = read_workflow(ctx, &identity, input)?;
    admit_creation(ctx, &identity.email, workflow.nodes.len() as u64).await?;
    let (record, replayed) =
        idempotency::create_workflow(ctx.state.tasks().as_ref(), workflow, guard).await?;
    if !replayed {
        tracing::info!(workflow_id = %record.id, nodes = record.nodes.len(), user = %identity.email, "workflow created");
    }
    let mut response = json_response(
        StatusCode::CREATED,
        &Created {
            workflow_id: record.id.clone(),
            tasks: record
                .nodes
                .iter()
                .map(|(key, id)| (key.clone(), id.to_string()))
                .collect(),
        },
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/api/workflows/{}", record.id)) {
        response.headers_mut().insert(LOCATION, location);
    }
    idempotency::mark_replayed(&mut response, replayed);
    Ok(response)
}

fn read_workflow(ctx: &Ctx, identity: &Identity, input: Value) -> Result<NewWorkflow, ApiError> {
    let mut fields = Fields::new(input)?;
    fields.deny_unknown(&["nodes", "edges"])?;
    let Some(Value::Array(nodes)) = fields.value("nodes") else {
        return Err(ApiError::invalid_field(
            "nodes",
            "must be a non-empty array",
        ));
    };
    if nodes.len() > MAX_HTTP_WORKFLOW_NODES {
        return Err(ApiError::invalid_field(
            "nodes",
            format!(
                "a workflow has at most {MAX_HTTP_WORKFLOW_NODES} nodes, this one has {}",
                nodes.len()
            ),
        ));
    }
    let nodes = nodes
        .into_iter()
        .enumerate()
        .map(|(index, node)| {
            let mut fields = Fields::new(node)
                .map_err(|_| ApiError::bad_request(format!("node {index} must be an object")))?;
            let key = fields
                .required_string("key")
                .map_err(|e| ApiError::bad_request(format!("node {index}: {}", e.message())))?;
            let in_node =
                |e: ApiError| ApiError::bad_request(format!("node {key:?}: {}", e.message()));
            let mut known = TASK_FIELDS.to_vec();
            known.push("key");
            fields.deny_unknown(&known).map_err(in_node)?;
            let task =
                read_task_spec(&ctx.state, identity.email.as_str(), &mut fields).map_err(|e| {
                    if e.status() == StatusCode::NOT_FOUND {
                        e
                    } else {
                        in_node(e)
                    }
                })?;
            Ok(WorkflowNode { key, task })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let edges = match fields.value("edges") {
        None => Vec::new(),
        Some(edges) => serde_json::from_value::<Vec<WorkflowEdge>>(edges).map_err(|_| {
            ApiError::invalid_field(
                "edges",
                "must be an array of {\"parent\": key, \"child\": key, \"run_on_failure\": bool}",
            )
        })?,
    };
    let workflow = NewWorkflow {
        user_id: identity.email.clone(),
        nodes,
        edges,
    };
    workflow.plan()?;
    Ok(workflow)
}

/// The workflow `raw_id`, if the caller may see it (its owner, or a superuser); anyone else
/// gets 404, as for a workflow that does not exist.
pub(super) async fn visible_workflow(
    ctx: &Ctx,
    identity: &Identity,
    raw_id: &str,
) -> Result<Workflow, ApiError> {
    let not_found = ApiError::workflow_not_found;
    if !raw_id.starts_with("wf_") || raw_id.len() > 80 {
        return Err(not_found());
    }
    let workflow = match ctx.state.tasks().get_workflow(raw_id).await {
        Err(task_store::StoreError::NotFound) => return Err(not_found()),
        other => other?,
    };
    if identity.is_superuser() || workflow.user_id == identity.email {
        Ok(workflow)
    } else {
        Err(not_found())
    }
}

async fn view(ctx: &Ctx, workflow: Workflow) -> Result<WorkflowView, ApiError> {
    let mut nodes = Vec::with_capacity(workflow.nodes.len());
    for (key, id) in workflow.nodes {
        let task = match ctx.state.tasks().get(&id).await {
            Ok(task) => Some(task),
            Err(task_store::StoreError::NotFound) => None,
            Err(error) => return Err(error.into()),
        };
        nodes.push(NodeView { key, task });
    }
    Ok(WorkflowView {
        id: workflow.id,
        user_id: workflow.user_id,
        created_at: workflow.created_at,
        nodes,
        edges: workflow.edges,
    })
}

/// `GET /api/workflows/{id}`: the nodes (each with its task, `null` once the cleaner purged
/// it) and the edges.
pub async fn get_workflow(ctx: &mut Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    let workflow = visible_workflow(ctx, &identity, id).await?;
    Ok(ok(&view(ctx, workflow).await?))
}

/// `POST /api/workflows/{id}/cancel`: cancels every unfinished node (a running one is asked to
/// stop); answers with the workflow after the request.
pub async fn cancel_workflow(ctx: &mut Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let workflow = visible_workflow(ctx, &identity, id).await?;
    task_store::cancel_workflow(ctx.state.tasks().as_ref(), &workflow.id).await?;
    tracing::info!(workflow_id = %workflow.id, user = %identity.email, "workflow cancelled");
    Ok(ok(&view(ctx, workflow).await?))
}
