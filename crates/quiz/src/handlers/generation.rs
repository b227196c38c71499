//! The `generation` handler: asks a provider for questions in batches, checks every one strictly,
//! asks again for the ones that were dropped (a bounded number of times), and saves the batch.
//!
//! Each request is streamed: every question is checked the moment the model has finished
//! writing it, and progress moves through the parsing band question by question ("3 of 10
//! questions received"). Questions beyond what a request asked for are dropped.

use std::sync::Arc;

use ai_providers::{ProviderError, Providers, TokenUsage};
use async_trait::async_trait;
use serde_json::{json, Value};
use task_core::Phase;
use task_runtime::{Handler, HandlerError, ProgressError, TaskContext};
use task_store::{StoreError, TaskEventLog};

use super::support::{
    display_name, provider, provider_error_noting, quiz_error, stream_call, CallError,
};
use crate::check::{
    shortfall_message, Candidate, Checked, QuestionChecker, QuestionSettings, Rejection, Verdict,
};
use crate::items::{Item, ItemSplitter};
use crate::requests::generation_request;
use crate::rules::Defect;
use crate::{GenerationParams, Provenance, QuestionStore, QuizError};

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
    events: Option<Arc<dyn TaskEventLog>>,
}

impl GenerationHandler {
    /// A handler that asks `providers` and saves into `questions`.
    pub fn new(providers: Arc<Providers>, questions: Arc<dyn QuestionStore>) -> Self {
        Self {
            providers,
            questions,
            events: None,
        }
    }

    /// Appends every accepted question to the task's event log (fenced by the attempt's
    /// lease) the moment it is accepted, and starts a retried attempt from the questions
    /// earlier attempts stored there.
    pub fn with_event_log(mut self, events: Arc<dyn TaskEventLog>) -> Self {
        self.events = Some(events);
        self
    }

    /// Stores the question `candidate` as the task's next event.
    async fn record(&self, ctx: &TaskContext, candidate: &Candidate) -> Result<(), HandlerError> {
        let Some(events) = &self.events else {
            return Ok(());
        };
        match events.append_event(ctx.lease(), candidate.to_json()).await {
            Ok(_) => Ok(()),
            Err(StoreError::LeaseLost) => Err(ProgressError::LeaseLost.into()),
            Err(error) => Err(quiz_error(QuizError::Store(error))),
        }
    }

    /// The questions earlier attempts of this task stored, checked again (the category may
    /// have gained some since).
    async fn kept(
        &self,
        ctx: &TaskContext,
        checker: &mut QuestionChecker,
        amount: usize,
    ) -> Result<Vec<Candidate>, HandlerError> {
        let Some(events) = &self.events else {
            return Ok(Vec::new());
        };
        let stored = events
            .events_after(ctx.task_id(), 0)
            .await
            .map_err(|e| quiz_error(QuizError::Store(e)))?;
        let mut kept = Vec::new();
        for (index, event) in stored.iter().enumerate() {
            if let Verdict::Accepted(candidate) =
                checker.check_item(index, &event.item, kept.len(), amount)
            {
                kept.push(candidate);
            }
        }
        Ok(kept)
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
        let mut accepted: Vec<Candidate> = self.kept(&ctx, &mut checker, amount).await?;
        if !accepted.is_empty() {
            ctx.progress(
                parsed(accepted.len()),
                format!(
                    "Kept {} of {amount} questions from the previous attempt",
                    accepted.len()
                ),
            )
            .await?;
        }
        let mut rejected: Vec<Rejection> = Vec::new();
        let mut rounds = 0;
        let mut requests = 0;
        let mut usage: Option<TokenUsage> = None;
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
                let mut batch = Batch {
                    checker: &mut checker,
                    accepted: &mut accepted,
                    rejected: &mut rejected,
                    want,
                    taken: 0,
                    seen: 0,
                };
                let (tx, mut items) = tokio::sync::mpsc::unbounded_channel::<Item>();
                let mut splitter = ItemSplitter::new();
                let result = {
                    let mut on_text = |piece: &str| {
                        for item in splitter.push(piece) {
                            // The receiver lives until after the call: sending cannot fail.
                            let _ = tx.send(item);
                        }
                    };
                    let call = stream_call(&ctx, provider.as_ref(), &request, &mut on_text);
                    tokio::pin!(call);
                    loop {
                        tokio::select! {
                            // Items first: each is reported before the call's end is noticed.
                            biased;
                            Some(item) = items.recv() => {
                                if batch.take(item) {
                                    if let Some(question) = batch.accepted.last() {
                                        self.record(&ctx, question).await?;
                                    }
                                    received(&ctx, batch.accepted.len(), amount).await?;
                                }
                            }
                            result = &mut call => break result,
                        }
                    }
                };
                // Items the last piece completed, queued as the call returned.
                while let Ok(item) = items.try_recv() {
                    if batch.take(item) {
                        if let Some(question) = batch.accepted.last() {
                            self.record(&ctx, question).await?;
                        }
                        received(&ctx, batch.accepted.len(), amount).await?;
                    }
                }
                let kept = batch.taken;
                let checked = match result {
                    Ok(streamed) => {
                        add_usage(&mut usage, streamed.usage);
                        if splitter.found_array() {
                            Checked::default()
                        } else {
                            // No items array at all: the whole-answer check says what is wrong.
                            batch.checker.check(&streamed.answer, want - kept)
                        }
                    }
                    // Unusable output is the model's fault like an invalid item: regenerate.
                    // The questions that arrived before it stay.
                    Err(CallError::Provider(error @ ProviderError::InvalidOutput { .. })) => {
                        unusable(error)
                    }
                    Err(CallError::Provider(error)) => {
                        return Err(provider_error_noting(
                            error,
                            &format!(
                                " ({} of {amount} questions were received and checked before it)",
                                accepted.len()
                            ),
                        ))
                    }
                    Err(CallError::Cancelled) => return Err(HandlerError::Cancelled),
                };
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
            "usage": usage.map(|usage| usage.to_json()),
        }))
    }
}

/// Reports that `received` of `amount` questions have arrived and passed the checks.
async fn received(ctx: &TaskContext, received: usize, amount: usize) -> Result<(), HandlerError> {
    let total = ctx.task().total;
    let progress = Phase::Parsing.progress(received as u64, amount as u64, total);
    ctx.progress(
        progress,
        format!("{received} of {amount} questions received"),
    )
    .await?;
    Ok(())
}

/// One request's questions as they stream in, checked one at a time.
struct Batch<'a> {
    checker: &'a mut QuestionChecker,
    accepted: &'a mut Vec<Candidate>,
    rejected: &'a mut Vec<Rejection>,
    /// How many this request asked for.
    want: usize,
    /// How many of this request's questions were accepted.
    taken: usize,
    /// How many items this request has delivered.
    seen: usize,
}

impl Batch<'_> {
    /// Checks the next item; returns whether it was accepted.
    fn take(&mut self, item: Item) -> bool {
        let index = self.seen;
        self.seen += 1;
        let verdict = match item {
            Item::Parsed(value) => self
                .checker
                .check_item(index, &value, self.taken, self.want),
            Item::Unparsable(reason) => Verdict::Rejected(Rejection {
                position: Some(index + 1),
                text: None,
                defect: Defect::UnusableResponse(format!("the item is not JSON: {reason}")),
            }),
        };
        match verdict {
            Verdict::Accepted(candidate) => {
                self.accepted.push(candidate);
                self.taken += 1;
                true
            }
            Verdict::Rejected(rejection) => {
                self.rejected.push(rejection);
                false
            }
            Verdict::Surplus => false,
        }
    }
}

/// Adds one request's usage report to the task's total; a count no report gave stays `None`.
fn add_usage(total: &mut Option<TokenUsage>, report: Option<TokenUsage>) {
    let Some(report) = report else { return };
    let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    };
    let current = total.unwrap_or_default();
    *total = Some(TokenUsage {
        input_tokens: sum(current.input_tokens, report.input_tokens),
        output_tokens: sum(current.output_tokens, report.output_tokens),
    });
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
