//! The `Idempotency-Key` header of the creating endpoints (issue #19): turning it into the
//! store's [`CreateGuard`], and turning the store's [`Guarded`] answer into a task and the
//! status the first request got.
//!
//! A request's fingerprint is the SHA-256 of the endpoint and its parsed JSON body (so
//! whitespace does not matter, but every value does): the same key with another fingerprint is
//! answered 422. Keys are scoped to the authenticated user and remembered for
//! [`DEFAULT_IDEMPOTENCY_WINDOW_MS`] (24 h).
//!
//! Endpoints that create tasks call [`guard_for`] and [`settle`]; the endpoints that create a
//! workflow (`POST /api/workflows`, `POST /api/generateAIQuestions` with `then`) call
//! [`guard_for`] and [`create_workflow`], each with its own endpoint name.

use http::request::Parts;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use task_core::{NewWorkflow, Task, Workflow};
use task_store::{
    CreateGuard, Guarded, GuardedWorkflow, IdempotencyClaim, TaskStore,
    DEFAULT_IDEMPOTENCY_WINDOW_MS, MAX_GUARD_KEY_BYTES,
};

use crate::body::Body;
use crate::ApiError;

/// The request header carrying the client's key.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header set on a replayed answer.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How a guarded create was answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The task the answer is about.
    pub task: Task,
    /// Whether this request (or, for a replay, the first one) created it; `false` when a
    /// `unique_key` twin was returned instead.
    pub created: bool,
    /// Whether this is the replay of an earlier request's answer.
    pub replayed: bool,
}

/// The guard for a create at `endpoint` with body `input`: the `Idempotency-Key` header, if
/// sent, and the task's `unique_key` option.
///
/// # Errors
/// 400 when the header is empty, not visible ASCII, or longer than 255 bytes.
pub fn guard_for(
    parts: &Parts,
    endpoint: &str,
    input: &Value,
    unique_key: Option<String>,
) -> Result<CreateGuard, ApiError> {
    let idempotency = match parts.headers.get(&IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .map_err(|_| bad_key("must be visible ASCII"))?;
            if key.is_empty() || key.len() > MAX_GUARD_KEY_BYTES {
                return Err(bad_key(&format!(
                    "must be 1 to {MAX_GUARD_KEY_BYTES} bytes"
                )));
            }
            Some(IdempotencyClaim {
                key: key.to_owned(),
                fingerprint: fingerprint(endpoint, input),
                window_ms: DEFAULT_IDEMPOTENCY_WINDOW_MS,
            })
        }
    };
    Ok(CreateGuard {
        idempotency,
        unique_key,
    })
}

/// The answer to send for the store's `outcome`.
///
/// # Errors
/// 422 when the key was used before with a different request.
pub fn settle(outcome: Guarded) -> Result<Answer, ApiError> {
    match outcome {
        Guarded::Created(task) => Ok(Answer {
            task,
            created: true,
            replayed: false,
        }),
        Guarded::Existing(task) => Ok(Answer {
            task,
            created: false,
            replayed: false,
        }),
        Guarded::Replayed { task, created } => Ok(Answer {
            task,
            created,
            replayed: true,
        }),
        Guarded::KeyReused => Err(key_reused()),
    }
}

/// Creates `workflow` under `guard`'s idempotency key, if any. Returns the workflow and
/// whether it is the replay of an earlier request's.
///
/// # Errors
/// 422 when the key was used before with a different request; the store's errors otherwise.
pub async fn create_workflow(
    store: &dyn TaskStore,
    workflow: NewWorkflow,
    guard: CreateGuard,
) -> Result<(Workflow, bool), ApiError> {
    let Some(claim) = guard.idempotency else {
        let (record, _) = store.create_workflow(workflow).await?;
        return Ok((record, false));
    };
    match store.create_workflow_guarded(workflow, claim).await? {
        GuardedWorkflow::Created(record, _) => Ok((record, false)),
        GuardedWorkflow::Replayed(record) => Ok((record, true)),
        GuardedWorkflow::KeyReused => Err(key_reused()),
    }
}

/// Marks a replayed answer with `Idempotent-Replayed: true`.
pub fn mark_replayed(response: &mut Response<Body>, replayed: bool) {
    if replayed {
        response.headers_mut().insert(
            IDEMPOTENT_REPLAYED.clone(),
            HeaderValue::from_static("true"),
        );
    }
}

fn key_reused() -> ApiError {
    ApiError::unprocessable(
        "this Idempotency-Key was already used with a different request; use a new key",
    )
}

impl Answer {
    /// 201 for a task this request created, 200 for one it found.
    pub fn status(&self) -> StatusCode {
        if self.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    }
}

fn bad_key(reason: &str) -> ApiError {
    ApiError::bad_request(format!("invalid Idempotency-Key header: {reason}"))
}

fn fingerprint(endpoint: &str, input: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(endpoint.as_bytes());
    hasher.update(b"\n");
    hasher.update(input.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts(key: Option<&str>) -> Parts {
        let mut builder = http::Request::builder();
        if let Some(key) = key {
            builder = builder.header("Idempotency-Key", key);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_header_becomes_a_claim_with_a_fingerprint_of_endpoint_and_body() {
        let body = json!({"a": 1});
        let guard = guard_for(&parts(Some("k")), "/api/tasks", &body, None).unwrap();
        let claim = guard.idempotency.unwrap();
        assert_eq!(claim.key, "k");
        let other_endpoint = guard_for(&parts(Some("k")), "/api/x", &body, None).unwrap();
        assert_ne!(
            other_endpoint.idempotency.unwrap().fingerprint,
            claim.fingerprint
        );
        let other_body = guard_for(&parts(Some("k")), "/api/tasks", &json!({"a": 2}), None);
        assert_ne!(
            other_body.unwrap().idempotency.unwrap().fingerprint,
            claim.fingerprint
        );
        assert!(guard_for(&parts(None), "/api/tasks", &body, None)
            .unwrap()
            .idempotency
            .is_none());
    }

    #[test]
    fn bad_keys_are_400() {
        let long = "k".repeat(256);
        for key in ["", long.as_str()] {
            let error = guard_for(&parts(Some(key)), "/api/tasks", &json!({}), None).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{key:?}");
        }
        let fits = "k".repeat(255);
        assert!(guard_for(&parts(Some(&fits)), "/api/tasks", &json!({}), None).is_ok());
    }
}
