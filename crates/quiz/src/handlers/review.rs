//! What the validation and emoji handlers share: [`ReviewDeps`], which picks the provider and
//! loads the questions a task may change, and the loop that asks a provider about those
//! questions in batches, applies each per-question answer as it arrives (with progress per
//! question), and asks again, a bounded number of times, about the questions that got no usable
//! answer.

use std::sync::Arc;

use ai_providers::{AiProvider, JsonRequest, ProviderError, Providers};
use async_trait::async_trait;
use serde_json::Value;
use task_core::Phase;
use task_runtime::{HandlerError, TaskContext};
use task_store::UserStore;

use super::support::{call, owner_filter, provider, quiz_error, CallError};
use crate::{
    Question, QuestionQuery, QuestionSelection, QuestionStore, QuizError, MAX_QUESTION_IDS,
};

/// The most questions sent in one provider request.
pub const MAX_REVIEWS_PER_REQUEST: usize = 10;
/// Rounds of requests before giving up on questions without a usable answer.
pub const MAX_REVIEW_ROUNDS: usize = 3;
/// The most reasons quoted in a failure message.
const MAX_LISTED_REASONS: usize = 5;

/// What a review handler works with: the providers it asks, the questions it reads and updates,
/// and the users, asked whether a task's owner is a superuser (who may change anyone's
/// questions).
#[derive(Clone)]
pub(crate) struct ReviewDeps {
    providers: Arc<Providers>,
    questions: Arc<dyn QuestionStore>,
    users: Arc<dyn UserStore>,
}

impl std::fmt::Debug for ReviewDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewDeps")
            .field("providers", &self.providers)
            .field("questions", &self.questions)
            .finish_non_exhaustive()
    }
}

impl ReviewDeps {
    /// Bundles what [`EmojiHandler::new`](super::EmojiHandler::new) and
    /// [`ValidationHandler::new`](super::ValidationHandler::new) are given.
    pub(crate) fn new(
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

    /// The store the handlers apply their answers to.
    pub(crate) fn questions(&self) -> &dyn QuestionStore {
        self.questions.as_ref()
    }

    /// The start every review task shares: reports that the request is being prepared, then
    /// returns the provider called `provider_name` and the questions `selection` picks among
    /// those the task's owner may change.
    pub(crate) async fn prepare(
        &self,
        ctx: &TaskContext,
        provider_name: &str,
        selection: &QuestionSelection,
    ) -> Result<(Arc<dyn AiProvider>, Vec<Question>), HandlerError> {
        ctx.progress(
            Phase::RequestSent.start(ctx.task().total),
            "Preparing AI request...",
        )
        .await?;
        let provider = provider(&self.providers, provider_name)?;
        let owner = owner_filter(self.users.as_ref(), ctx.user_id()).await?;
        let questions = match selection {
            QuestionSelection::Ids(ids) => {
                load_by_ids(self.questions.as_ref(), ids, owner.as_deref()).await?
            }
            QuestionSelection::Category(category) => {
                let query = QuestionQuery {
                    owner,
                    category: Some(category.clone()),
                    limit: MAX_QUESTION_IDS,
                    ..QuestionQuery::default()
                };
                self.questions
                    .list(&query)
                    .await
                    .map_err(quiz_error)?
                    .questions
            }
        };
        Ok((provider, questions))
    }
}

/// Why one answer was not applied.
pub(crate) enum ApplyError {
    /// The answer is unusable (wrong type, not an emoji...); ask again.
    Rejected(String),
    /// Applying failed in a way asking again cannot fix here (the store failed).
    Failed(HandlerError),
}

/// What a review task does with each question.
#[async_trait]
pub(crate) trait ReviewStep: Send + Sync {
    /// The answer's array field holding one item per question (`verdicts`, `emojis`).
    fn field(&self) -> &'static str;
    /// The request about `batch`.
    fn request(&self, batch: &[Question]) -> Result<JsonRequest, QuizError>;
    /// Applies one answer item (already matched to `question` by `questionId`) and returns the
    /// detail to report.
    async fn apply(&self, question: &Question, item: &Value) -> Result<Value, ApplyError>;
    /// The progress text once `done` of `total` questions are through ("Validated 3 of 10
    /// questions...").
    fn progress_text(&self, done: usize, total: usize) -> String;
    /// What happened to a question, for the failure message ("validated").
    fn past_tense(&self) -> &'static str;
}

/// Runs `step` over `questions`; returns the details in the order of `questions`.
pub(crate) async fn review(
    ctx: &TaskContext,
    provider: &dyn AiProvider,
    questions: &[Question],
    step: &dyn ReviewStep,
) -> Result<Vec<Value>, HandlerError> {
    let total = ctx.task().total;
    let count = questions.len();
    let mut details: Vec<Option<Value>> = vec![None; count];
    let mut done = 0;
    let mut pending: Vec<usize> = (0..count).collect();
    let mut reasons: Vec<String> = Vec::new();
    let mut rounds = 0;
    while !pending.is_empty() && rounds < MAX_REVIEW_ROUNDS {
        rounds += 1;
        let mut unanswered = Vec::new();
        for chunk in pending.chunks(MAX_REVIEWS_PER_REQUEST) {
            let batch: Vec<Question> = chunk.iter().map(|&i| questions[i].clone()).collect();
            let request = step.request(&batch).map_err(quiz_error)?;
            let answer = match call(ctx, provider, &request).await {
                Ok(answer) => answer,
                Err(CallError::Provider(error @ ProviderError::InvalidOutput { .. })) => {
                    reasons.push(error.to_string());
                    unanswered.extend_from_slice(chunk);
                    continue;
                }
                Err(other) => return Err(other.into()),
            };
            let items = answer
                .get(step.field())
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for &index in chunk {
                let question = &questions[index];
                let item = items.iter().find(|item| {
                    item.get("questionId").and_then(Value::as_str) == Some(question.id.as_str())
                });
                let Some(item) = item else {
                    reasons.push(format!("{}: no answer", question.id));
                    unanswered.push(index);
                    continue;
                };
                match step.apply(question, item).await {
                    Ok(detail) => {
                        details[index] = Some(detail);
                        done += 1;
                        ctx.progress(
                            Phase::Parsing.progress(done as u64, count as u64, total),
                            step.progress_text(done, count),
                        )
                        .await?;
                    }
                    Err(ApplyError::Rejected(reason)) => {
                        reasons.push(format!("{}: {reason}", question.id));
                        unanswered.push(index);
                    }
                    Err(ApplyError::Failed(error)) => return Err(error),
                }
            }
        }
        pending = unanswered;
    }
    if !pending.is_empty() {
        let mut message = format!(
            "Only {done} of {count} questions were {} after {rounds} attempts: {}",
            step.past_tense(),
            reasons
                .iter()
                .take(MAX_LISTED_REASONS)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
        if reasons.len() > MAX_LISTED_REASONS {
            message.push_str(&format!(
                " (and {} more)",
                reasons.len() - MAX_LISTED_REASONS
            ));
        }
        return Err(HandlerError::permanent(message));
    }
    Ok(details.into_iter().flatten().collect())
}

/// The questions with `ids` that `owner` may see (everyone's for `None`), in the order of
/// `ids`; any missing one fails the task, naming them.
async fn load_by_ids(
    store: &dyn QuestionStore,
    ids: &[crate::QuestionId],
    owner: Option<&str>,
) -> Result<Vec<Question>, HandlerError> {
    let found = store.get_many(ids, owner).await.map_err(quiz_error)?;
    if found.len() < ids.len() {
        let missing: Vec<&str> = ids
            .iter()
            .filter(|id| !found.iter().any(|q| q.id == **id))
            .map(crate::QuestionId::as_str)
            .collect();
        return Err(HandlerError::permanent(format!(
            "Questions not found: {}",
            missing.join(", ")
        )));
    }
    Ok(found)
}
