//! The `generation` handler: asks a provider for questions in batches, checks every one strictly,
//! asks again for the ones that were dropped (a bounded number of times), and saves the batch.

use std::sync::Arc;

use ai_providers::{ProviderError, Providers};
use async_trait::async_trait;
use serde_json::{json, Value};
use task_core::Phase;
use task_runtime::{Handler, HandlerError, TaskContext};

use super::support::{call, display_name, provider, quiz_error, CallError};
use crate::check::{
    shortfall_message, Candidate, Checked, QuestionChecker, QuestionSettings, Rejection,
};
use crate::requests::generation_request;
use crate::rules::Defect;
use crate::{GenerationParams, Provenance, QuestionStore};

/// The most questions asked for in one provider request. Smaller requests come back sooner
/// (finer progress), are less often cut off, and lose less when one fails.
pub const MAX_QUESTIONS_PER_REQUEST: usize = 10;
/// Rounds of requests before giving up: the first, plus two that regenerate what was dropped.
pub const MAX_GENERATION_ROUNDS: usize = 3;

/// Runs `generation` tasks.
#[derive(Debug, Clone)]
pub struct GenerationHandler {
    providers: Arc<Providers>,
    questions: Arc<dyn QuestionStore>,
}

impl GenerationHandler {
    /// A handler that asks `providers` and saves into `questions`.
    pub fn new(providers: Arc<Providers>, questions: Arc<dyn QuestionStore>) -> Self {
        Self {
            providers,
            questions,
        }
    }
}

#[async_trait]
impl Handler for GenerationHandler {
    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let params = GenerationParams::parse(ctx.params()).map_err(quiz_error)?;
        let total = ctx.task().total;
        ctx.progress(Phase::RequestSent.start(total), "Preparing AI request...")
            .await?;
        let provider = provider(&self.providers, &params.provider)?;
        let name = display_name(provider.name()).to_owned();
        let settings = QuestionSettings {
            user_id: ctx.user_id().to_owned(),
            category: params.category.clone(),
            age_group: params.age_group,
            difficulty: params.difficulty,
            language: params.language.clone(),
        };
        let existing = self
            .questions
            .existing_texts(&params.category)
            .await
            .map_err(quiz_error)?;
        let mut checker = QuestionChecker::new(existing);
        ctx.progress(
            Phase::Parsing.start(total),
            format!("Generating with {name}..."),
        )
        .await?;

        let amount = params.amount as usize;
        let parsed =
            |accepted: usize| Phase::Parsing.progress(accepted as u64, amount as u64, total);
        let mut accepted: Vec<Candidate> = Vec::with_capacity(amount);
        let mut rejected: Vec<Rejection> = Vec::new();
        let mut rounds = 0;
        let mut requests = 0;
        while accepted.len() < amount && rounds < MAX_GENERATION_ROUNDS {
            rounds += 1;
            let missing = amount - accepted.len();
            let batches = missing.div_ceil(MAX_QUESTIONS_PER_REQUEST);
            for batch in 1..=batches {
                let want = (amount - accepted.len()).min(MAX_QUESTIONS_PER_REQUEST);
                requests += 1;
                if requests > 1 {
                    let description = if rounds == 1 {
                        format!("Generating with {name} (batch {batch} of {batches})...")
                    } else {
                        format!("Regenerating {missing} invalid questions with {name}...")
                    };
                    ctx.progress(parsed(accepted.len()), description).await?;
                }
                let request = generation_request(&settings, want, &checker).map_err(quiz_error)?;
                let checked = match call(&ctx, provider.as_ref(), &request).await {
                    Ok(answer) => checker.check(&answer, want),
                    // Unusable output is the model's fault like an invalid item: regenerate.
                    Err(CallError::Provider(error @ ProviderError::InvalidOutput { .. })) => {
                        unusable(error)
                    }
                    Err(other) => return Err(other.into()),
                };
                if !checked.rejected.is_empty() {
                    tracing::info!(
                        task_id = %ctx.task_id(),
                        dropped = checked.rejected.len(),
                        first = %checked.rejected[0],
                        "dropped invalid questions"
                    );
                }
                rejected.extend(checked.rejected);
                accepted.extend(checked.accepted);
                ctx.progress(
                    parsed(accepted.len()),
                    format!("Parsed {} of {amount} questions...", accepted.len()),
                )
                .await?;
            }
        }
        if accepted.len() < amount {
            return Err(HandlerError::permanent(shortfall_message(
                accepted.len(),
                amount,
                rounds,
                &rejected,
            )));
        }

        ctx.progress(Phase::Saving.start(total), "Saving to database...")
            .await?;
        let provenance = Provenance {
            task_id: Some(ctx.task_id().clone()),
            provider: provider.name().to_owned(),
            model: provider.model().to_owned(),
        };
        let new = accepted
            .into_iter()
            .map(|candidate| candidate.into_new_question(&settings, provenance.clone()))
            .collect();
        let saved = self.questions.insert_many(new).await.map_err(quiz_error)?;
        Ok(json!({
            "success": true,
            "questionsGenerated": saved.len(),
            "questions": saved,
            "provider": provider.name(),
            "model": provider.model(),
        }))
    }
}

fn unusable(error: ProviderError) -> Checked {
    Checked {
        rejected: vec![Rejection {
            position: None,
            text: None,
            defect: Defect::UnusableResponse(error.to_string()),
        }],
        ..Checked::default()
    }
}
