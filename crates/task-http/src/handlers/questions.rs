//! The quiz endpoints beside the contract's `POST /api/generateAIQuestions`:
//! `POST /api/validateQuestions` and `POST /api/regenerateEmojis` start a task on stored
//! questions, and `GET /api/questions` pages through the caller's questions (everyone's for a
//! superuser).
//!
//! The parameter rules are the quiz crate's, which its handlers apply again; checking them here
//! makes a bad request, an unknown provider included, a 400 at once. A known provider without a
//! key is not refused here: which keys a worker holds is the worker's business, so that task
//! fails with the provider's own message, delivered on the task's event stream.

use http::Response;
use hyper::body::Incoming;
use quiz::{EmojiParams, QuestionQuery, QuizError, ValidationParams};
use serde::Serialize;
use serde_json::json;
use task_core::NewTask;

use super::{listing_owner, Ctx};
use crate::body::Body;
use crate::input::{read_json, Query};
use crate::response::ok;
use crate::ApiError;

/// The description a quiz task shows until a worker picks it up.
const QUEUED: &str = "Waiting for a worker...";

/// Query parameters of `GET /api/questions` that [`QuestionQuery::from_params`] reads under the
/// same name. The text search is `q`, as on `GET /api/tasks` (the quiz crate's `search` is
/// accepted too).
const FILTERS: &[&str] = &[
    "category",
    "difficulty",
    "ageGroup",
    "validationStatus",
    "cursor",
    "limit",
];

/// `POST /api/validateQuestions` with `{"questionIds":[...],"provider"}` or
/// `{"category","provider"}`: creates a `validation` task and answers
/// `{"success":true,"taskId":"task_..."}` at once.
pub async fn validate_questions(ctx: &mut Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let params = ValidationParams::parse(&input).map_err(from_quiz)?;
    let new = NewTask::new(&identity.email, quiz::VALIDATION)
        .with_label(params.label())
        .with_description(QUEUED)
        .with_params(params.to_json());
    start(ctx, new).await
}

/// `POST /api/regenerateEmojis` with `{"questionIds":[...],"provider"}`: creates an
/// `emoji-regeneration` task and answers `{"success":true,"taskId":"task_..."}` at once.
pub async fn regenerate_emojis(ctx: &mut Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require_for_change().await?;
    let input = read_json(&ctx.parts, body, ctx.state.config()).await?;
    let params = EmojiParams::parse(&input).map_err(from_quiz)?;
    let new = NewTask::new(&identity.email, quiz::EMOJI_REGENERATION)
        .with_label(params.label())
        .with_description(QUEUED)
        .with_params(params.to_json());
    start(ctx, new).await
}

/// Creates `new` through the task creator, which applies the owner's queue limit.
async fn start(ctx: &Ctx, mut new: NewTask) -> Result<Response<Body>, ApiError> {
    new.max_attempts = ctx.state.attempts_for(&new.task_type, None)?;
    new.validate()?;
    let task = ctx.state.creator().create(new).await?;
    tracing::info!(task_id = %task.id, task_type = %task.task_type, user = %task.user_id, "task created");
    Ok(ok(&json!({ "success": true, "taskId": task.id })))
}

/// One page of `GET /api/questions`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    questions: Vec<quiz::Question>,
    next_cursor: Option<String>,
}

/// `GET /api/questions?category=&difficulty=&ageGroup=&validationStatus=&q=&userId=&limit=&cursor=`:
/// the caller's questions (a superuser's: everyone's, or one user's), newest first, one page at
/// a time. A server without a question store has no such endpoint (404).
pub async fn list_questions(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let store = ctx
        .state
        .questions()
        .cloned()
        .ok_or_else(ApiError::no_route)?;
    let identity = ctx.require().await?;
    let query = Query::parse(ctx.parts.uri.query())?.once_each()?;
    let search = query.get("q").or_else(|| query.get("search"));
    let params = FILTERS
        .iter()
        .filter_map(|name| query.get(name).map(|value| (*name, value)))
        .chain(search.map(|value| ("search", value)));
    let mut filter = QuestionQuery::from_params(params).map_err(from_quiz)?;
    filter.owner = listing_owner(&identity, query.get("userId"), "questions")?;
    let page = store.list(&filter).await.map_err(from_quiz)?;
    Ok(ok(&Page {
        questions: page.questions,
        next_cursor: page.next.map(|cursor| cursor.to_string()),
    }))
}

/// The answer for a quiz error: bad input names its field (400), store failures map as
/// everywhere else, anything else is a 500 whose cause is logged.
fn from_quiz(error: QuizError) -> ApiError {
    match error {
        // The quiz crate says "params" when the body as a whole is not an object.
        QuizError::InvalidField {
            field: "params", ..
        } => ApiError::bad_request("request body must be a JSON object"),
        QuizError::InvalidField { field, reason } => ApiError::invalid_field(field, reason),
        QuizError::Store(store) => store.into(),
        other => ApiError::internal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Identity;
    use task_store::Role;

    fn identity(email: &str, role: Role) -> Identity {
        Identity {
            email: email.to_owned(),
            role,
            method: crate::auth::AuthMethod::Bearer,
        }
    }

    fn check(role: Role, requested: Option<&str>, expected: Result<Option<&str>, u16>) {
        let got = listing_owner(&identity("ann@example.com", role), requested, "questions");
        match (got, expected) {
            (Ok(owner), Ok(expected)) => assert_eq!(owner.as_deref(), expected),
            (Err(error), Err(status)) => assert_eq!(error.status().as_u16(), status),
            (got, expected) => panic!("{role:?} {requested:?}: {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn users_list_their_own_questions_and_superusers_anyones() {
        check(Role::User, None, Ok(Some("ann@example.com")));
        check(
            Role::User,
            Some("ANN@example.com"),
            Ok(Some("ann@example.com")),
        );
        check(Role::User, Some("bob@example.com"), Err(403));
        check(Role::User, Some("   "), Err(403));
        check(Role::User, Some("a\u{2}b"), Err(403));
        check(Role::Superuser, None, Ok(None));
        check(Role::Superuser, Some("a\u{2}B"), Ok(Some("a\u{2}B")));
        check(
            Role::Superuser,
            Some("bob@example.com"),
            Ok(Some("bob@example.com")),
        );
    }

    #[test]
    fn quiz_errors_become_answers() {
        let answer = from_quiz(QuizError::invalid("provider", "unknown provider \"x\""));
        assert_eq!(answer.status().as_u16(), 400);
        assert_eq!(answer.message(), "invalid provider: unknown provider \"x\"");
        let answer = from_quiz(QuizError::invalid("params", "must be a JSON object"));
        assert_eq!(answer.message(), "request body must be a JSON object");
        let answer = from_quiz(QuizError::Store(task_store::StoreError::Busy));
        assert_eq!(answer.status().as_u16(), 503);
        let answer = from_quiz(QuizError::Corrupt {
            id: "q_1_abcdef".into(),
            reason: "bad row".into(),
        });
        assert_eq!(answer.status().as_u16(), 500);
        assert_eq!(answer.message(), "internal server error");
    }
}
