//! The `validation` handler: asks a provider for a verdict on each question and stores it.

use std::sync::Arc;

use ai_providers::{JsonRequest, Providers};
use async_trait::async_trait;
use serde_json::{json, Value};
use task_core::Phase;
use task_runtime::{Handler, HandlerError, TaskContext};
use task_store::UserStore;

use super::review::{review, ApplyError, ReviewDeps, ReviewStep};
use super::support::{display_name, quiz_error};
use crate::rules::MAX_NOTES_CHARS;
use crate::{Question, QuestionStore, QuizError, ValidationParams, ValidationStatus};

/// Runs `validation` tasks.
#[derive(Clone, Debug)]
pub struct ValidationHandler {
    deps: ReviewDeps,
}

impl ValidationHandler {
    /// A handler that asks `providers`, reads and updates `questions`, and asks `users` whether
    /// a task's owner is a superuser (who may validate anyone's questions).
    pub fn new(
        providers: Arc<Providers>,
        questions: Arc<dyn QuestionStore>,
        users: Arc<dyn UserStore>,
    ) -> Self {
        Self {
            deps: ReviewDeps::new(providers, questions, users),
        }
    }
}

#[async_trait]
impl Handler for ValidationHandler {
    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let params = super::chain::resolved_params(&ctx).await?;
        let params = ValidationParams::parse(&params).map_err(quiz_error)?;
        let (provider, questions) = self
            .deps
            .prepare(&ctx, &params.provider, &params.selection)
            .await?;
        ctx.progress(
            Phase::Parsing.start(ctx.task().total),
            format!("Validating with {}...", display_name(provider.name())),
        )
        .await?;
        let step = Verdicts {
            questions: self.deps.questions(),
        };
        let details = review(&ctx, provider.as_ref(), &questions, &step).await?;
        let valid = details.iter().filter(|d| d["valid"] == true).count();
        Ok(json!({
            "validated": details.len(),
            "valid": valid,
            "invalid": details.len() - valid,
            "details": details,
            "provider": provider.name(),
            "model": provider.model(),
        }))
    }
}

struct Verdicts<'a> {
    questions: &'a dyn QuestionStore,
}

#[async_trait]
impl ReviewStep for Verdicts<'_> {
    fn field(&self) -> &'static str {
        "verdicts"
    }

    fn request(&self, batch: &[Question]) -> Result<JsonRequest, QuizError> {
        crate::requests::validation_request(batch)
    }

    async fn apply(&self, question: &Question, item: &Value) -> Result<Value, ApplyError> {
        let valid = item
            .get("valid")
            .and_then(Value::as_bool)
            .ok_or_else(|| ApplyError::Rejected("valid is not a boolean".into()))?;
        // Notes are advice for a person: keep them, shortened, rather than drop a verdict.
        let notes: String = item
            .get("notes")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .chars()
            .take(MAX_NOTES_CHARS)
            .collect();
        let notes = Some(notes).filter(|n| !n.is_empty());
        let status = if valid {
            ValidationStatus::Valid
        } else {
            ValidationStatus::Invalid
        };
        let updated = self
            .questions
            .update_verdict(&question.id, status, notes)
            .await
            .map_err(|e| ApplyError::Failed(quiz_error(e)))?;
        Ok(json!({
            "questionId": updated.id,
            "text": updated.text,
            "valid": valid,
            "validationStatus": updated.validation_status,
            "notes": updated.validation_notes,
        }))
    }

    fn progress_text(&self, done: usize, total: usize) -> String {
        format!("Validated {done} of {total} questions...")
    }

    fn past_tense(&self) -> &'static str {
        "validated"
    }
}
