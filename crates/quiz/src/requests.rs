//! Builds the provider requests of the three tasks: prompt, schema, output budget and the hints
//! the offline responder reads, from one place each.

use ai_providers::JsonRequest;

use crate::check::{QuestionChecker, QuestionSettings};
use crate::hints::{GenerationHints, Hints, ReviewHints, MAX_AVOID_HINTS};
use crate::{prompts, schemas, Question, QuizError};

/// Output tokens per generated question (text, four options, explanation, JSON overhead), with
/// room to spare: a cut-off answer is worse than a generous budget.
const TOKENS_PER_QUESTION: u32 = 400;
/// Output tokens per verdict or emoji.
const TOKENS_PER_REVIEW: u32 = 200;
/// Fixed output overhead of any answer.
const TOKENS_BASE: u32 = 1000;

/// The request for `count` new questions, telling the model (and the offline responder) what
/// already exists.
///
/// # Errors
/// [`QuizError::Template`] if a prompt template is broken.
pub fn generation_request(
    settings: &QuestionSettings,
    count: usize,
    checker: &QuestionChecker,
) -> Result<JsonRequest, QuizError> {
    let prompt = prompts::generation_prompt(settings, count, checker.known_texts())?;
    let hints = Hints::Generation(GenerationHints {
        count,
        category: settings.category.clone(),
        age_group: settings.age_group,
        difficulty: settings.difficulty,
        language: settings.language.clone(),
        avoid: checker
            .known_texts()
            .take(MAX_AVOID_HINTS)
            .map(str::to_owned)
            .collect(),
    });
    Ok(JsonRequest::new(
        prompt.system,
        prompt.user,
        schemas::QUESTIONS_SCHEMA_NAME,
        schemas::questions_schema(),
    )
    .with_hints(hints.to_json())
    .with_max_output_tokens(budget(TOKENS_PER_QUESTION, count)))
}

/// The request for a verdict on each of `questions`.
///
/// # Errors
/// [`QuizError::Template`] if a prompt template is broken.
pub fn validation_request(questions: &[Question]) -> Result<JsonRequest, QuizError> {
    let prompt = prompts::validation_prompt(questions)?;
    Ok(JsonRequest::new(
        prompt.system,
        prompt.user,
        schemas::VERDICTS_SCHEMA_NAME,
        schemas::verdicts_schema(),
    )
    .with_hints(Hints::Validation(ReviewHints::for_questions(questions)).to_json())
    .with_max_output_tokens(budget(TOKENS_PER_REVIEW, questions.len())))
}

/// The request for a new emoji for each of `questions`.
///
/// # Errors
/// [`QuizError::Template`] if a prompt template is broken.
pub fn emoji_request(questions: &[Question]) -> Result<JsonRequest, QuizError> {
    let prompt = prompts::emoji_prompt(questions)?;
    Ok(JsonRequest::new(
        prompt.system,
        prompt.user,
        schemas::EMOJIS_SCHEMA_NAME,
        schemas::emojis_schema(),
    )
    .with_hints(Hints::Emoji(ReviewHints::for_questions(questions)).to_json())
    .with_max_output_tokens(budget(TOKENS_PER_REVIEW, questions.len())))
}

fn budget(per_item: u32, items: usize) -> u32 {
    let items = u32::try_from(items).unwrap_or(u32::MAX);
    TOKENS_BASE.saturating_add(per_item.saturating_mul(items))
}
