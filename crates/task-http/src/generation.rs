//! The contract's `POST /api/generateAIQuestions` body turned into a `generation` task. The
//! rules for the parameters live in the quiz crate (`quiz::GenerationParams`), which the
//! generation handler applies again; checking them here makes a bad request a 400 at once.

use serde_json::Value;
use task_core::NewTask;

use crate::ApiError;

/// The task type the contract endpoint creates.
pub const GENERATION_TASK_TYPE: &str = quiz::GENERATION;

/// The `generation` task for `user_id` described by a request body: its checked parameters (with
/// the language defaulted) as `params`, a label such as "10 frågor om Historia", and the old
/// system's initial description ("Genererar 10 frågor om Historia"). Unknown fields are ignored,
/// as the old endpoint did.
///
/// # Errors
/// 400 naming the first missing or invalid field.
pub fn generation_task(body: &Value, user_id: &str) -> Result<NewTask, ApiError> {
    let params = quiz::GenerationParams::parse(body).map_err(|error| match error {
        quiz::QuizError::InvalidField { field, reason } => {
            // The quiz crate says "params" when the body as a whole is not an object.
            if field == "params" {
                ApiError::bad_request("request body must be a JSON object")
            } else {
                ApiError::invalid_field(field, reason)
            }
        }
        other => ApiError::internal(other),
    })?;
    Ok(NewTask::new(user_id, GENERATION_TASK_TYPE)
        .with_label(format!("{} frågor om {}", params.amount, params.category))
        .with_description(params.initial_description())
        .with_params(params.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"amount":10,"category":"Historia","ageGroup":"adults","difficulty":"medium","provider":"openai"})
    }

    fn check(change: impl FnOnce(&mut serde_json::Map<String, Value>), bad_field: Option<&str>) {
        let mut body = valid();
        change(body.as_object_mut().unwrap());
        match (generation_task(&body, "a@example.com"), bad_field) {
            (Ok(_), None) => {}
            (Err(error), Some(field)) => assert!(
                error.message().starts_with(&format!("invalid {field}:")),
                "{error:?}, expected {field}"
            ),
            (other, expected) => panic!("{other:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn every_field_is_checked_by_name() {
        check(|_| {}, None);
        check(|b| drop(b.insert("language".into(), json!("sv"))), None);
        check(|b| drop(b.insert("extra".into(), json!(true))), None);
        check(|b| drop(b.remove("amount")), Some("amount"));
        check(
            |b| drop(b.insert("amount".into(), json!(0))),
            Some("amount"),
        );
        check(
            |b| drop(b.insert("amount".into(), json!(51))),
            Some("amount"),
        );
        check(
            |b| drop(b.insert("amount".into(), json!("10"))),
            Some("amount"),
        );
        check(
            |b| drop(b.insert("category".into(), json!("  "))),
            Some("category"),
        );
        check(
            |b| drop(b.insert("category".into(), json!("x".repeat(101)))),
            Some("category"),
        );
        check(
            |b| drop(b.insert("ageGroup".into(), json!("seniors"))),
            Some("ageGroup"),
        );
        check(
            |b| drop(b.insert("difficulty".into(), json!("extreme"))),
            Some("difficulty"),
        );
        check(
            |b| drop(b.insert("provider".into(), json!("mistral"))),
            Some("provider"),
        );
        check(
            |b| drop(b.insert("language".into(), json!("Swedish"))),
            Some("language"),
        );
        let error = generation_task(&json!([1]), "a").unwrap_err();
        assert_eq!(error.message(), "request body must be a JSON object");
    }

    #[test]
    fn the_task_carries_the_request() {
        let task = generation_task(&valid(), "anna@example.com").unwrap();
        assert_eq!(task.task_type, "generation");
        assert_eq!(task.label.as_deref(), Some("10 frågor om Historia"));
        assert_eq!(
            task.description.as_deref(),
            Some("Genererar 10 frågor om Historia")
        );
        assert_eq!(
            task.params,
            json!({"amount":10,"category":"Historia","ageGroup":"adults","difficulty":"medium","provider":"openai","language":"sv"})
        );
        task.validate().unwrap();
    }
}
