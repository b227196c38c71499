//! `"then"` on `POST /api/generateAIQuestions`: the generation followed by `validation` and/or
//! `emoji-regeneration`, each working on the questions of the task before it (see
//! `quiz::FROM_PARENTS`), created together as one workflow.

use serde_json::{json, Value};
use task_core::{NewTask, NewWorkflow, WorkflowEdge, WorkflowNode};

use crate::ApiError;

/// The steps `then` may name, in the order they may appear.
const STEPS: [&str; 2] = [quiz::VALIDATION, quiz::EMOJI_REGENERATION];

/// The workflow for a generation and its `then` steps, or `None` when `then` is absent or
/// empty. `accepts` says whether a task type has a handler here.
///
/// # Errors
/// 400 naming `then` when it is not an array of distinct known steps.
pub fn chain_workflow(
    generation: NewTask,
    then: Option<&Value>,
    accepts: impl Fn(&str) -> bool,
) -> Result<Option<NewWorkflow>, ApiError> {
    // The steps run at the generation's priority: a chain is one piece of work.
    let generation_priority = generation.priority;
    let bad = || {
        ApiError::invalid_field(
            "then",
            "must be an array of distinct steps from \"validation\", \"emoji-regeneration\"",
        )
    };
    let steps: Vec<&str> = match then {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().filter(|s| STEPS.contains(s)).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad()),
    };
    if steps.is_empty() {
        return Ok(None);
    }
    if steps
        .iter()
        .enumerate()
        .any(|(i, s)| steps[..i].contains(s))
    {
        return Err(bad());
    }
    if let Some(missing) = steps.iter().find(|step| !accepts(step)) {
        return Err(ApiError::invalid_field(
            "then",
            format!("{missing:?} is not a registered task type"),
        ));
    }
    let provider = generation
        .params
        .get("provider")
        .cloned()
        .unwrap_or(Value::Null);
    let user_id = generation.user_id.clone();
    let mut nodes = vec![WorkflowNode {
        key: quiz::GENERATION.to_owned(),
        task: generation,
    }];
    let mut edges = Vec::new();
    for step in steps {
        let label = if step == quiz::VALIDATION {
            "Validera nya frågor"
        } else {
            "Nya emojis för nya frågor"
        };
        let parent = nodes
            .last()
            .map(|node| node.key.clone())
            .unwrap_or_default();
        edges.push(WorkflowEdge {
            parent,
            child: step.to_owned(),
            run_on_failure: false,
        });
        nodes.push(WorkflowNode {
            key: step.to_owned(),
            task: NewTask::new(user_id.as_str(), step)
                .with_priority(generation_priority)
                .with_label(label)
                .with_params(json!({ quiz::FROM_PARENTS: true, "provider": provider })),
        });
    }
    Ok(Some(NewWorkflow {
        user_id,
        nodes,
        edges,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(then: Value, expected: Result<Vec<&str>, &str>) {
        let generation = NewTask::new("a@example.com", quiz::GENERATION)
            .with_params(json!({"provider": "openai"}));
        match (chain_workflow(generation, Some(&then), |_| true), expected) {
            (Ok(Some(workflow)), Ok(keys)) => {
                let got: Vec<&str> = workflow.nodes.iter().map(|n| n.key.as_str()).collect();
                assert_eq!(got, keys);
                assert_eq!(workflow.edges.len(), keys.len() - 1);
                assert!(workflow.plan().is_ok());
                assert_eq!(workflow.nodes[1].task.params["provider"], "openai");
            }
            (Ok(None), Ok(keys)) => assert!(keys.is_empty()),
            (Err(error), Err(text)) => assert!(error.message().contains(text), "{error:?}"),
            (other, expected) => panic!("{other:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn then_builds_a_chain_or_names_the_problem() {
        check(
            json!(["validation", "emoji-regeneration"]),
            Ok(vec!["generation", "validation", "emoji-regeneration"]),
        );
        check(
            json!(["emoji-regeneration"]),
            Ok(vec!["generation", "emoji-regeneration"]),
        );
        check(json!([]), Ok(vec![]));
        check(json!(["validation", "validation"]), Err("invalid then"));
        check(json!(["deploy"]), Err("invalid then"));
        check(json!("validation"), Err("invalid then"));
    }
}
