//! The structured form of each request, sent alongside the prompt as `JsonRequest::hints`. Real
//! providers ignore it; the offline responder answers from it instead of reading prose. Both
//! sides use these types, so they cannot drift apart.

use serde::{Deserialize, Serialize};

use crate::{AgeGroup, Difficulty, Question};

/// The most known question texts a generation request carries, so the offline responder can
/// avoid repeating them without the hints growing without bound.
pub const MAX_AVOID_HINTS: usize = 2000;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "camelCase")]
pub enum Hints {
    /// New questions.
    Generation(GenerationHints),
    /// A verdict per question.
    Validation(ReviewHints),
    /// A new emoji per question.
    Emoji(ReviewHints),
}

/// The parameters of a generation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationHints {
    /// How many questions.
    pub count: usize,
    /// The category.
    pub category: String,
    /// Who they are for.
    pub age_group: AgeGroup,
    /// How hard.
    pub difficulty: Difficulty,
    /// The language code.
    pub language: String,
    /// Normalised texts that already exist and must not be repeated.
    pub avoid: Vec<String>,
}

/// The questions a validation or emoji request is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewHints {
    /// The questions, in the order of the prompt.
    pub questions: Vec<ReviewItem>,
}

/// One question under review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewItem {
    /// The question's id.
    pub question_id: String,
    /// The question.
    pub text: String,
    /// Its options.
    pub options: Vec<String>,
    /// The index marked correct.
    pub correct_index: u8,
    /// Its category.
    pub category: String,
    /// Its language.
    pub language: String,
    /// Its emoji now.
    pub current_emoji: String,
}

impl ReviewHints {
    /// The hints for a request about `questions`.
    pub fn for_questions(questions: &[Question]) -> Self {
        Self {
            questions: questions
                .iter()
                .map(|q| ReviewItem {
                    question_id: q.id.to_string(),
                    text: q.text.clone(),
                    options: q.options.to_vec(),
                    correct_index: q.correct_index,
                    category: q.category.clone(),
                    language: q.language.clone(),
                    current_emoji: q.emoji.clone(),
                })
                .collect(),
        }
    }
}

impl Hints {
    /// The JSON form, as sent in `JsonRequest::hints`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_round_trip_with_a_task_tag() {
        let hints = Hints::Generation(GenerationHints {
            count: 3,
            category: "Sport".into(),
            age_group: AgeGroup::Youth,
            difficulty: Difficulty::Hard,
            language: "sv".into(),
            avoid: vec!["vem vann".into()],
        });
        let json = hints.to_json();
        assert_eq!(json["task"], "generation");
        assert_eq!(json["ageGroup"], "youth");
        assert_eq!(serde_json::from_value::<Hints>(json).unwrap(), hints);
        let emoji = Hints::Emoji(ReviewHints { questions: vec![] }).to_json();
        assert_eq!(emoji["task"], "emoji");
    }
}
