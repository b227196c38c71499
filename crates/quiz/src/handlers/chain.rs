//! Chained quiz tasks: a `validation` or `emoji-regeneration` task created with
//! `{"fromParents": true, "provider": …}` works on the questions its parent tasks produced (a
//! generation's `questions[].id`, a validation's `details[].questionId`, an emoji task's
//! `emojis[].questionId`), so the caller never copies ids from one task to the next.

use serde_json::{Map, Value};
use task_runtime::{HandlerError, TaskContext};

use crate::params::MAX_QUESTION_IDS;

/// The field that asks for the parents' questions.
pub const FROM_PARENTS: &str = "fromParents";

/// The params a handler parses: its own, or, with `fromParents: true`, its own with
/// `questionIds` taken from its parents' results.
///
/// # Errors
/// Permanent when the parents produced no question; retryable when the store failed.
pub(crate) async fn resolved_params(ctx: &TaskContext) -> Result<Value, HandlerError> {
    let params = ctx.params();
    if params.get(FROM_PARENTS) != Some(&Value::Bool(true)) {
        return Ok(params.clone());
    }
    let results = ctx.parent_results().await?;
    let ids = question_ids(&results);
    if ids.is_empty() {
        return Err(HandlerError::permanent(
            "the parent tasks produced no questions to work on",
        ));
    }
    let mut object: Map<String, Value> = params.as_object().cloned().unwrap_or_default();
    object.remove(FROM_PARENTS);
    object.insert(
        "questionIds".into(),
        Value::Array(ids.into_iter().map(Value::from).collect()),
    );
    Ok(Value::Object(object))
}

/// The question ids in `results`, in order, without repeats, at most [`MAX_QUESTION_IDS`].
fn question_ids(results: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let lists = [
        ("questions", "id"),
        ("details", "questionId"),
        ("emojis", "questionId"),
    ];
    for result in results {
        for (list, field) in lists {
            let items = result.get(list).and_then(Value::as_array);
            for item in items.into_iter().flatten() {
                if let Some(id) = item.get(field).and_then(Value::as_str) {
                    if !ids.iter().any(|known| known == id) && ids.len() < MAX_QUESTION_IDS {
                        ids.push(id.to_owned());
                    }
                }
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_come_from_every_kind_of_parent_result_once() {
        let results = [
            json!({"questions": [{"id": "q_1"}, {"id": "q_2"}]}),
            json!({"details": [{"questionId": "q_2"}, {"questionId": "q_3"}]}),
            json!({"emojis": [{"questionId": "q_4"}], "other": 1}),
            json!("not an object"),
        ];
        assert_eq!(question_ids(&results), ["q_1", "q_2", "q_3", "q_4"]);
        assert!(question_ids(&[json!({"questions": []})]).is_empty());
    }
}
