//! The `emoji-regeneration` handler: asks a provider for a new emoji per question and stores it.

use std::sync::Arc;

use ai_providers::{JsonRequest, Providers};
use async_trait::async_trait;
use serde_json::{json, Value};
use task_core::Phase;
use task_runtime::{Handler, HandlerError, TaskContext};
use task_store::UserStore;

use super::review::{load_by_ids, review, ApplyError, ReviewStep};
use super::support::{display_name, owner_filter, provider, quiz_error};
use crate::rules::check_emoji;
use crate::{EmojiParams, Question, QuestionStore, QuizError};

/// Runs `emoji-regeneration` tasks.
#[derive(Clone)]
pub struct EmojiHandler {
    providers: Arc<Providers>,
    questions: Arc<dyn QuestionStore>,
    users: Arc<dyn UserStore>,
}

impl std::fmt::Debug for EmojiHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmojiHandler")
            .field("providers", &self.providers)
            .field("questions", &self.questions)
            .finish_non_exhaustive()
    }
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
            providers,
            questions,
            users,
        }
    }
}

#[async_trait]
impl Handler for EmojiHandler {
    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let params = EmojiParams::parse(ctx.params()).map_err(quiz_error)?;
        let total = ctx.task().total;
        ctx.progress(Phase::RequestSent.start(total), "Preparing AI request...")
            .await?;
        let provider = provider(&self.providers, &params.provider)?;
        let owner = owner_filter(self.users.as_ref(), ctx.user_id()).await?;
        let questions = load_by_ids(
            self.questions.as_ref(),
            &params.question_ids,
            owner.as_deref(),
        )
        .await?;
        ctx.progress(
            Phase::Parsing.start(total),
            format!("Choosing emojis with {}...", display_name(provider.name())),
        )
        .await?;
        let step = Emojis {
            questions: self.questions.as_ref(),
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
