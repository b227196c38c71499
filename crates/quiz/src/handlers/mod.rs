//! The task handlers of the quiz domain and [`QuizHandlers`], which registers all three.

mod chain;
mod emoji;
mod generation;
mod review;
mod support;
mod validation;

use std::sync::Arc;

use ai_providers::Providers;
use task_runtime::{Registry, TaskTypeConfig};
use task_store::{TaskEventLog, UserStore};

use crate::QuestionStore;

pub use chain::FROM_PARENTS;
pub use emoji::EmojiHandler;
pub use generation::{GenerationHandler, MAX_GENERATION_ROUNDS, MAX_QUESTIONS_PER_REQUEST};
pub use review::{MAX_REVIEWS_PER_REQUEST, MAX_REVIEW_ROUNDS};
pub use validation::ValidationHandler;

/// The task type that generates questions.
pub const GENERATION: &str = "generation";
/// The task type that validates questions.
pub const VALIDATION: &str = "validation";
/// The task type that replaces questions' emojis.
pub const EMOJI_REGENERATION: &str = "emoji-regeneration";

/// The three quiz handlers with what they need, registered in one call:
/// `QuizHandlers::new(providers, questions, users).register(registry)`.
#[derive(Clone)]
pub struct QuizHandlers {
    providers: Arc<Providers>,
    questions: Arc<dyn QuestionStore>,
    users: Arc<dyn UserStore>,
    config: Option<TaskTypeConfig>,
    events: Option<Arc<dyn TaskEventLog>>,
}

impl std::fmt::Debug for QuizHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuizHandlers")
            .field("providers", &self.providers)
            .field("questions", &self.questions)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl QuizHandlers {
    /// Handlers that call `providers`, keep questions in `questions`, and ask `users` who is a
    /// superuser (superusers may validate and re-emoji anyone's questions; everyone else only
    /// their own).
    pub fn new(
        providers: Arc<Providers>,
        questions: Arc<dyn QuestionStore>,
        users: Arc<dyn UserStore>,
    ) -> Self {
        Self {
            providers,
            questions,
            users,
            config: None,
            events: None,
        }
    }

    /// Stores each question a generation accepts in `events` (the task's event log) as it
    /// arrives, so live streams can show it and a retried attempt keeps it.
    pub fn with_event_log(mut self, events: Arc<dyn TaskEventLog>) -> Self {
        self.events = Some(events);
        self
    }

    /// Runs the three task types under `config` instead of the runtime's default policy.
    pub fn with_task_config(mut self, config: TaskTypeConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Adds `generation`, `validation` and `emoji-regeneration` to `registry`.
    pub fn register(self, registry: Registry) -> Registry {
        let mut generation =
            GenerationHandler::new(Arc::clone(&self.providers), Arc::clone(&self.questions));
        if let Some(events) = self.events {
            generation = generation.with_event_log(events);
        }
        let generation = Arc::new(generation);
        let validation = Arc::new(ValidationHandler::new(
            Arc::clone(&self.providers),
            Arc::clone(&self.questions),
            Arc::clone(&self.users),
        ));
        let emoji = Arc::new(EmojiHandler::new(
            self.providers,
            self.questions,
            self.users,
        ));
        match self.config {
            Some(config) => registry
                .register_with(GENERATION, generation, config)
                .register_with(VALIDATION, validation, config)
                .register_with(EMOJI_REGENERATION, emoji, config),
            None => registry
                .register(GENERATION, generation)
                .register(VALIDATION, validation)
                .register(EMOJI_REGENERATION, emoji),
        }
    }
}
