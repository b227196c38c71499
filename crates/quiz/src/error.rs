//! The one error type of the quiz crate.

use task_store::StoreError;

/// Why a quiz operation failed. Input problems name the field the caller must fix, so the HTTP
/// edge can answer 400 with a precise message; storage problems keep the store's
/// database-neutral kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QuizError {
    /// A parameter or a question field is invalid; `field` is its name as the API spells it
    /// (`amount`, `ageGroup`, `options`, ...).
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field's name as the API spells it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No question with this id exists (or it belongs to someone else and the caller may not
    /// see it).
    #[error("question not found: {0}")]
    NotFound(String),
    /// The question store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored question could not be read back (a corrupt row or an unknown enum value).
    #[error("stored question {id} is unreadable: {reason}")]
    Corrupt {
        /// The question's id.
        id: String,
        /// What could not be read.
        reason: String,
    },
    /// A prompt template refers to a placeholder no value was given for, or is malformed.
    #[error("prompt template {template}: {reason}")]
    Template {
        /// The template's file name.
        template: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The built-in offline question bank does not parse or breaks a question rule.
    #[error("offline question bank: {0}")]
    Bank(String),
}

impl QuizError {
    /// An [`QuizError::InvalidField`] for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        QuizError::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}
