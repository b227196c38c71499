//! The [`QuestionStore`] trait, its query types, and the backends: memory, SQLite and (with
//! the `postgres` feature) PostgreSQL.

mod memory;
mod migrations;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
mod raw;
mod sqlite;

use std::collections::HashSet;

use async_trait::async_trait;

use crate::{NewQuestion, Question, QuestionId, QuizError, ValidationStatus};

pub use memory::MemoryQuestionStore;
pub use migrations::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
#[cfg(feature = "postgres")]
pub use postgres::PostgresQuestionStore;
pub use query::{
    QuestionCursor, QuestionPage, QuestionQuery, DEFAULT_QUESTION_LIMIT, MAX_QUESTION_LIMIT,
};
pub use sqlite::SqliteQuestionStore;

/// Durable question storage. Object-safe: use it as `Arc<dyn QuestionStore>`.
///
/// Rules every implementation keeps (the conformance tests in `tests/it/store.rs` run against
/// every backend):
/// - Every write validates its input first and writes nothing on error.
/// - Lists are newest first: `created_at` descending, then `id` descending.
/// - Category filters and duplicate checks compare [`crate::category_key`]s; search matches a
///   substring of the normalised text ([`crate::rules::normalize_text`]).
#[async_trait]
pub trait QuestionStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores the questions in one transaction (all or none), unvalidated, with fresh ids and
    /// `created_at = updated_at = now`; returned in input order.
    async fn insert_many(&self, questions: Vec<NewQuestion>) -> Result<Vec<Question>, QuizError>;

    /// The questions with these ids, in the order of `ids`; ids that do not exist (or, with
    /// `owner`, belong to someone else) are left out. `owner: None` sees everyone's (superusers).
    async fn get_many(
        &self,
        ids: &[QuestionId],
        owner: Option<&str>,
    ) -> Result<Vec<Question>, QuizError>;

    /// One page of questions matching `query`, newest first.
    async fn list(&self, query: &QuestionQuery) -> Result<QuestionPage, QuizError>;

    /// The normalised texts of every question in `category` (all owners), for rejecting
    /// duplicates.
    async fn existing_texts(&self, category: &str) -> Result<HashSet<String>, QuizError>;

    /// Records a validation verdict and its notes.
    ///
    /// # Errors
    /// [`QuizError::NotFound`] for an unknown id; [`QuizError::InvalidField`] for notes that are
    /// too long.
    async fn update_verdict(
        &self,
        id: &QuestionId,
        status: ValidationStatus,
        notes: Option<String>,
    ) -> Result<Question, QuizError>;

    /// Replaces a question's emoji.
    ///
    /// # Errors
    /// [`QuizError::NotFound`] for an unknown id; [`QuizError::InvalidField`] for something
    /// that is not a short emoji.
    async fn update_emoji(&self, id: &QuestionId, emoji: &str) -> Result<Question, QuizError>;
}

use task_core::now_millis;

/// Checks an emoji for [`QuestionStore::update_emoji`].
fn check_new_emoji(emoji: &str) -> Result<(), QuizError> {
    crate::rules::check_emoji(emoji).map_err(|d| QuizError::invalid("emoji", d.to_string()))
}

/// What every backend's `insert_many` does before writing: checks every question (nothing is
/// written if one is bad) and gives each an id and the same creation time.
pub(crate) fn prepare_insert(questions: Vec<NewQuestion>) -> Result<Vec<Question>, QuizError> {
    for question in &questions {
        question.validate()?;
    }
    let now = now_millis();
    questions
        .into_iter()
        .map(|new| Ok(Question::from_new(QuestionId::generate(now)?, new, now)))
        .collect()
}
