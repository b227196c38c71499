//! The `emoji-regeneration` handler: asks a provider for a new emoji per question and stores it.

use std::sync::Arc;

use ai_providers::{JsonRequest, Providers};
use async_trait::async_trait;
use serde_json::{json, Value};
use task_core::Phase;
use task_runtime::{Handler, HandlerError, TaskContext};
use task_store::UserStore;

use super::review::{review, ApplyError, ReviewDeps, ReviewStep};
use super::support::{display_name, quiz_error};
use crate::rules::check_emoji;
use crate::{EmojiParams, Question, QuestionSelection, QuestionStore, QuizError};

/// Runs `emoji-regeneration` tasks.
#[derive(Clone, Debug)]
pub struct EmojiHandler {
    deps: ReviewDeps,
}

impl EmojiHandler {
    /// A handler that asks `providers`, reads and updates `questions`, and asks `users` whether
    /// a task's owner is a superuser (who may change anyone's questions).
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
impl Handler for EmojiHandler {
    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let params = super::chain::resolved_params(&ctx).await?;
        let params = EmojiParams::parse(&params).map_err(quiz_error)?;
        let selection = QuestionSelection::Ids(params.question_ids);
        let (provider, questions) = self
            .deps
            .prepare(&ctx, &params.provider, &selection)
            .await?;
        ctx.progress(
            Phase::Parsing.start(ctx.task().total),
            format!("Choosing emojis with {}...", display_name(provider.name())),
        )
        .await?;
        let step = Emojis {
            questions: self.deps.questions(),
        };
        let emojis = review(&ctx, provider.as_ref(), &questions, &step).await?;
        Ok(json!({
            "updated": emojis.len(),
            "emojis": emojis,
            "provider": provider.name(),
            "model": provider.model(),
        }))
    }
}

struct Emojis<'a> {
    questions: &'a dyn QuestionStore,
}

#[async_trait]
impl ReviewStep for Emojis<'_> {
    fn field(&self) -> &'static str {
        "emojis"
    }

    fn request(&self, batch: &[Question]) -> Result<JsonRequest, QuizError> {
        crate::requests::emoji_request(batch)
    }

    async fn apply(&self, question: &Question, item: &Value) -> Result<Value, ApplyError> {
        let emoji = item
            .get("emoji")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim();
        check_emoji(emoji).map_err(|defect| ApplyError::Rejected(defect.to_string()))?;
        if emoji == question.emoji {
            return Err(ApplyError::Rejected(format!(
                "{emoji} is the current emoji"
            )));
        }
        let updated = self
            .questions
            .update_emoji(&question.id, emoji)
            .await
            .map_err(|e| ApplyError::Failed(quiz_error(e)))?;
        Ok(json!({
            "questionId": updated.id,
            "text": updated.text,
            "oldEmoji": question.emoji,
            "newEmoji": updated.emoji,
        }))
    }

    fn progress_text(&self, done: usize, total: usize) -> String {
        format!("Updated emoji {done} of {total}...")
    }

    fn past_tense(&self) -> &'static str {
        "given a new emoji"
    }
}
