//! [`RawQuestion`]: a stored question row in the shape every SQL backend reads it, and its
//! checked conversion into a [`Question`], so the backends agree on what a corrupt row is.

use crate::{Provenance, Question, QuizError};

/// A stored question as the database returns it, before the typed fields are parsed (parse
/// failures are [`QuizError::Corrupt`], not driver errors). `options` is the JSON text of the
/// array.
pub(super) struct RawQuestion {
    pub(super) id: String,
    pub(super) user_id: String,
    pub(super) text: String,
    pub(super) options: String,
    pub(super) correct_index: i64,
    pub(super) explanation: String,
    pub(super) emoji: String,
    pub(super) category: String,
    pub(super) age_group: String,
    pub(super) difficulty: String,
    pub(super) language: String,
    pub(super) validation_status: String,
    pub(super) validation_notes: Option<String>,
    pub(super) task_id: Option<String>,
    pub(super) provider: String,
    pub(super) model: String,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

impl RawQuestion {
    /// The typed question.
    pub(super) fn decode(self) -> Result<Question, QuizError> {
        let corrupt = |reason: String| QuizError::Corrupt {
            id: self.id.clone(),
            reason,
        };
        let id = self
            .id
            .parse()
            .map_err(|e: QuizError| corrupt(e.to_string()))?;
        let options: [String; 4] =
            serde_json::from_str(&self.options).map_err(|e| corrupt(format!("options: {e}")))?;
        let correct_index = u8::try_from(self.correct_index)
            .map_err(|_| corrupt(format!("correct_index {}", self.correct_index)))?;
        let task_id = self
            .task_id
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: task_core::CoreError| corrupt(e.to_string()))?;
        Ok(Question {
            id,
            user_id: self.user_id,
            text: self.text,
            options,
            correct_index,
            explanation: self.explanation,
            emoji: self.emoji,
            age_group: self
                .age_group
                .parse()
                .map_err(|e: QuizError| corrupt(e.to_string()))?,
            difficulty: self
                .difficulty
                .parse()
                .map_err(|e: QuizError| corrupt(e.to_string()))?,
            validation_status: self
                .validation_status
                .parse()
                .map_err(|e: QuizError| corrupt(e.to_string()))?,
            category: self.category,
            language: self.language,
            validation_notes: self.validation_notes,
            provenance: Provenance {
                task_id,
                provider: self.provider,
                model: self.model,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}
