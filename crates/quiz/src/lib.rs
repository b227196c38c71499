//! The quiz domain: questions and their store, the prompts and output schemas sent to models,
//! strict checking of what models return, an offline responder with a built-in question bank,
//! and the `generation`, `validation` and `emoji-regeneration` task handlers.
//!
//! **Invariant: nothing a model returns is stored unchecked.** Every question passes the rules in
//! [`rules`] (the same ones [`NewQuestion::validate`] applies), and duplicates within a task or of
//! questions already in the category are rejected before anything is saved.

pub mod check;
mod enums;
mod error;
mod handlers;
pub mod hints;
pub mod items;
mod offline;
mod params;
pub mod prompts;
mod provider_gate;
mod question;
pub mod requests;
pub mod rules;
pub mod schemas;
mod store;

pub use enums::{AgeGroup, Difficulty, ValidationStatus};
pub use error::QuizError;
pub use handlers::{
    EmojiHandler, GenerationHandler, QuizHandlers, ValidationHandler, EMOJI_REGENERATION,
    FROM_PARENTS, GENERATION, MAX_GENERATION_ROUNDS, MAX_QUESTIONS_PER_REQUEST,
    MAX_REVIEWS_PER_REQUEST, MAX_REVIEW_ROUNDS, VALIDATION,
};
pub use offline::OfflineQuizResponder;
pub use params::{
    EmojiParams, GenerationParams, QuestionSelection, ValidationParams, MAX_AMOUNT,
    MAX_QUESTION_IDS, MIN_AMOUNT,
};
pub use provider_gate::{StoreGate, DEFAULT_PROVIDER_LEASE};
pub use question::{
    category_key, check_language, check_notes, NewQuestion, Provenance, Question, QuestionId,
    DEFAULT_LANGUAGE,
};
#[cfg(feature = "postgres")]
pub use store::PostgresQuestionStore;
pub use store::{
    MemoryQuestionStore, QuestionCursor, QuestionPage, QuestionQuery, QuestionStore,
    SqliteQuestionStore, DEFAULT_QUESTION_LIMIT, MAX_QUESTION_LIMIT,
};
pub use store::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
