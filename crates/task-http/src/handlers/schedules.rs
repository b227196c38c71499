//! The schedule endpoints: list, create, read, edit, delete, pause, resume and run now. Each
//! schedule is shown with its next fire times and its last runs. Users see their own
//! schedules, the superuser everyone's; anyone else's id answers 404 like an unknown one.

use http::header::LOCATION;
use http::{HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::Value;
use task_core::{TaskId, TaskStatus, UnixMillis};
use task_runtime::{ScheduleError, Schedules};
use task_store::{Schedule, ScheduleRun, ScheduleSpec, StoreError};

use super::Ctx;
use crate::auth::Identity;
use crate::body::Body;
use crate::input::{read_json, Fields};
use crate::response::{json_response, ok};
use crate::ApiError;

/// The fields a schedule body may have; `POST` needs `name`, `expression` and `task_type`.
const FIELDS: &[&str] = &[
    "name",
    "expression",
    "timezone",
    "task_type",
    "params",
    "label",
    "overlap",
    "catch_up",
    "paused",
    "end_at",
];
/// How many upcoming fire times a schedule shows.
const NEXT_TIMES: usize = 5;
/// How many recent runs a schedule shows.
const LAST_RUNS: usize = 10;

/// A schedule as the API shows it.
#[derive(Serialize)]
struct View {
    id: String,
    user_id: String,
    name: String,
    expression: String,
    timezone: String,
    task_type: String,
    params: Value,
    label: Option<String>,
    overlap: &'static str,
    catch_up: &'static str,
    paused: bool,
    end_at: Option<UnixMillis>,
    version: i64,
    created_at: UnixMillis,
    updated_at: UnixMillis,
    /// Empty while paused or after the end date.
    next_fire_times: Vec<UnixMillis>,
    /// Newest first.
    last_runs: Vec<RunView>,
}

#[derive(Serialize)]
struct RunView {
    scheduled_at: UnixMillis,
    kind: &'static str,
    task_id: Option<TaskId>,
    status: Option<TaskStatus>,
    recorded_at: UnixMillis,
}

impl From<ScheduleRun> for RunView {
    fn from(run: ScheduleRun) -> Self {
        Self {
            scheduled_at: run.scheduled_at,
            kind: run.kind.as_str(),
            task_id: run.task_id,
            status: run.task_status,
            recorded_at: run.recorded_at,
        }
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("schedule not found")
}

fn api_error(error: ScheduleError) -> ApiError {
    match error {
        ScheduleError::Invalid { field, reason } => ApiError::invalid_field(field, reason),
        ScheduleError::Store(StoreError::NotFound) => not_found(),
        ScheduleError::Store(store) => store.into(),
        other => ApiError::internal(other),
    }
}

fn service(ctx: &Ctx) -> Result<Schedules, ApiError> {
    ctx.state
        .schedules()
        .cloned()
        .ok_or_else(ApiError::no_route)
}

async fn view(schedules: &Schedules, schedule: Schedule) -> Result<View, ApiError> {
    // A schedule whose expression stopped parsing (written by an older build) shows no times
    // rather than failing the whole listing.
    let next_fire_times = schedules
        .next_fire_times(&schedule, NEXT_TIMES)
        .unwrap_or_default();
    let last_runs = schedules
        .runs(&schedule.id, LAST_RUNS)
        .await
        .map_err(api_error)?
        .into_iter()
        .map(RunView::from)
        .collect();
    let spec = schedule.spec;
    Ok(View {
        id: schedule.id,
        user_id: schedule.user_id,
        name: spec.name,
        expression: spec.expression,
        timezone: spec.timezone,
        task_type: spec.task_type,
        params: spec.params,
        label: spec.label,
        overlap: spec.overlap.as_str(),
        catch_up: spec.catch_up.as_str(),
        paused: spec.paused,
        end_at: spec.end_at,
        version: schedule.version,
        created_at: schedule.created_at,
        updated_at: schedule.updated_at,
        next_fire_times,
        last_runs,
    })
}

/// The schedule `id`, if the caller may see it.
async fn visible(
    schedules: &Schedules,
    identity: &Identity,
    id: &str,
) -> Result<Schedule, ApiError> {
    let schedule = schedules.get(id).await.map_err(api_error)?;
    if identity.is_superuser() || schedule.user_id == identity.email {
        Ok(schedule)
    } else {
        Err(not_found())
    }
}

/// Applies the body's fields to `spec` (all optional: `POST` checks the required ones first).
fn apply(fields: &mut Fields, spec: &mut ScheduleSpec) -> Result<(), ApiError> {
    let parsed = |field: &str, error: task_core::CoreError| match error {
        task_core::CoreError::InvalidField { reason, .. } => ApiError::invalid_field(field, reason),
        other => ApiError::invalid_field(field, other),
    };
    if let Some(name) = fields.string("name")? {
        spec.name = name;
    }
    if let Some(expression) = fields.string("expression")? {
        spec.expression = expression;
    }
    if let Some(timezone) = fields.string("timezone")? {
        spec.timezone = timezone;
    }
    if let Some(task_type) = fields.string("task_type")? {
        spec.task_type = task_type;
    }
    match fields.value("params") {
        None => {}
        Some(params @ Value::Object(_)) => spec.params = params,
        Some(_) => return Err(ApiError::invalid_field("params", "must be a JSON object")),
    }
    if let Some(label) = fields.string("label")? {
        spec.label = Some(label);
    }
    if let Some(overlap) = fields.string("overlap")? {
        spec.overlap = overlap.parse().map_err(|e| parsed("overlap", e))?;
    }
    if let Some(catch_up) = fields.string("catch_up")? {
        spec.catch_up = catch_up.parse().map_err(|e| parsed("catch_up", e))?;
    }
    match fields.value("paused") {
        None => {}
        Some(Value::Bool(paused)) => spec.paused = paused,
        Some(_) => return Err(ApiError::invalid_field("paused", "must be true or false")),
    }
    if let Some(end_at) = fields.integer("end_at")? {
        spec.end_at = Some(end_at);
    }
    Ok(())
}

/// `GET /api/schedules`: the caller's schedules (a superuser's: everyone's), oldest first.
pub async fn list(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let schedules = service(ctx)?;
    let identity = ctx.require().await?;
    let owner = (!identity.is_superuser()).then_some(identity.email.as_str());
    let mut views = Vec::new();
    for schedule in schedules.list(owner).await.map_err(api_error)? {
        views.push(view(&schedules, schedule).await?);
    }
    Ok(ok(&serde_json::json!({ "schedules": views })))
}

/// `POST /api/schedules`: a new schedule owned by the caller; 201 with it and its `Location`.
pub async fn create(ctx: &mut Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let schedules = service(ctx)?;
    let identity = ctx.require_for_change().await?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let mut fields = Fields::new(input)?;
    fields.deny_unknown(FIELDS)?;
    let name = fields.required_string("name")?;
    let expression = fields.required_string("expression")?;
    let task_type = fields.required_string("task_type")?;
    let mut spec = ScheduleSpec::new(name, expression, task_type);
    apply(&mut fields, &mut spec)?;
    let schedule = schedules
        .create(&identity.email, spec)
        .await
        .map_err(api_error)?;
    tracing::info!(schedule = %schedule.id, user = %identity.email, "schedule created");
    let location = format!("/api/schedules/{}", schedule.id);
    let mut response = json_response(StatusCode::CREATED, &view(&schedules, schedule).await?);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// `GET /api/schedules/{id}`.
pub async fn get(ctx: &mut Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let schedules = service(ctx)?;
    let identity = ctx.require().await?;
    let schedule = visible(&schedules, &identity, id).await?;
    Ok(ok(&view(&schedules, schedule).await?))
}

/// `PATCH /api/schedules/{id}`: changes the fields the body names.
pub async fn update(ctx: &mut Ctx, id: &str, body: Incoming) -> Result<Response<Body>, ApiError> {
    let schedules = service(ctx)?;
    let identity = ctx.require_for_change().await?;
    let schedule = visible(&schedules, &identity, id).await?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let mut fields = Fields::new(input)?;
    fields.deny_unknown(FIELDS)?;
    let mut spec = schedule.spec;
    apply(&mut fields, &mut spec)?;
    let schedule = schedules.update(id, spec).await.map_err(api_error)?;
    tracing::info!(schedule = %schedule.id, user = %identity.email, "schedule updated");
    Ok(ok(&view(&schedules, schedule).await?))
}

/// `DELETE /api/schedules/{id}`: 204; the tasks it created stay.
pub async fn delete(ctx: &mut Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let schedules = service(ctx)?;
    let identity = ctx.require_for_change().await?;
    visible(&schedules, &identity, id).await?;
    schedules.delete(id).await.map_err(api_error)?;
    tracing::info!(schedule = %id, user = %identity.email, "schedule deleted");
    let mut response = Response::new(crate::body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// `POST /api/schedules/{id}/pause` and `…/resume`.
pub async fn pause(ctx: &mut Ctx, id: &str, paused: bool) -> Result<Response<Body>, ApiError> {
    let schedules = service(ctx)?;
    let identity = ctx.require_for_change().await?;
    visible(&schedules, &identity, id).await?;
    let schedule = schedules.set_paused(id, paused).await.map_err(api_error)?;
    tracing::info!(schedule = %id, user = %identity.email, paused, "schedule paused or resumed");
    Ok(ok(&view(&schedules, schedule).await?))
}

/// `POST /api/schedules/{id}/run-now`: creates the schedule's task now; 201 with the task.
pub async fn run_now(ctx: &mut Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let schedules = service(ctx)?;
    let identity = ctx.require_for_change().await?;
    visible(&schedules, &identity, id).await?;
    let task = schedules.run_now(id).await.map_err(api_error)?;
    tracing::info!(schedule = %id, task_id = %task.id, user = %identity.email, "schedule run now");
    Ok(json_response(StatusCode::CREATED, &task))
}
