//! Reading one task spec (the body of `POST /api/tasks`, or a node of `POST /api/workflows`)
//! into a `NewTask` for the caller, with `depends_on` naming existing tasks.

use serde_json::Value;
use task_core::{Dependency, NewTask, Priority, TaskId};

use crate::input::Fields;
use crate::state::AppState;
use crate::ApiError;

/// The fields a task spec accepts.
pub const TASK_FIELDS: &[&str] = &[
    "task_type",
    "params",
    "label",
    "description",
    "run_at",
    "max_attempts",
    "depends_on",
    "priority",
];

/// Reads the task spec in `fields` (unknown fields already refused) into a validated
/// `NewTask` owned by `owner`.
///
/// # Errors
/// 400 naming the bad field, including a task type no handler is registered for.
pub fn read_task_spec(
    state: &AppState,
    owner: &str,
    fields: &mut Fields,
) -> Result<NewTask, ApiError> {
    let task_type = fields.required_string("task_type")?;
    if !state.accepts_task_type(&task_type) {
        let known: Vec<&str> = state.task_types().collect();
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
    let mut new = NewTask::new(owner, task_type);
    match fields.value("params") {
        None => {}
        Some(params @ Value::Object(_)) => new = new.with_params(params),
        Some(_) => return Err(ApiError::invalid_field("params", "must be a JSON object")),
    }
    new.label = fields.string("label")?;
    new.description = fields.string("description")?;
    new.run_at = fields.integer("run_at")?;
    new.max_attempts = state.attempts_for(&new.task_type, fields.integer("max_attempts")?)?;
    new.depends_on = depends_on(fields.value("depends_on"))?;
    new.priority = read_priority(fields.value("priority").as_ref())?;
    new.validate()?;
    Ok(new)
}

/// `priority`: `"low"`, `"normal"` or `"high"`; left out or `null`, normal.
///
/// # Errors
/// 400 naming `priority` for anything else.
pub fn read_priority(value: Option<&Value>) -> Result<Priority, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Priority::Normal),
        Some(Value::String(name)) => name.parse().map_err(|_| bad_priority()),
        Some(_) => Err(bad_priority()),
    }
}

fn bad_priority() -> ApiError {
    ApiError::invalid_field("priority", "must be one of \"low\", \"normal\", \"high\"")
}

/// `depends_on`: task ids, or `{"task_id": …, "run_on_failure": true}` objects.
fn depends_on(value: Option<Value>) -> Result<Vec<Dependency>, ApiError> {
    let bad = || {
        ApiError::invalid_field(
            "depends_on",
            "must be an array of task ids or {\"task_id\", \"run_on_failure\"} objects",
        )
    };
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(bad());
    };
    let named: Vec<Dependency> = items
        .into_iter()
        .map(|item| {
            let (id, run_on_failure) = match &item {
                Value::String(id) => (id.as_str(), false),
                Value::Object(map) => (
                    map.get("task_id").and_then(Value::as_str).ok_or_else(bad)?,
                    match map.get("run_on_failure") {
                        None | Some(Value::Null) => false,
                        Some(Value::Bool(flag)) => *flag,
                        Some(_) => return Err(bad()),
                    },
                ),
                _ => return Err(bad()),
            };
            // A malformed id cannot name anyone's task: not found, like another user's.
            let parent = id
                .parse::<TaskId>()
                .map_err(|_| ApiError::task_not_found())?;
            Ok(Dependency {
                parent,
                run_on_failure,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    // Naming a parent twice is naming it once; the edge runs on failure if any mention says so.
    let mut merged: Vec<Dependency> = Vec::with_capacity(named.len());
    for dependency in named {
        match merged.iter_mut().find(|d| d.parent == dependency.parent) {
            Some(earlier) => earlier.run_on_failure |= dependency.run_on_failure,
            None => merged.push(dependency),
        }
    }
    Ok(merged)
}
