//! [`MemoryQuestionStore`]: questions in a map, for tests and for running without a database.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{check_new_emoji, now_millis, QuestionPage, QuestionQuery, QuestionStore};
use crate::question::{category_key, check_notes};
use crate::rules::normalize_text;
use crate::{NewQuestion, Question, QuestionId, QuizError, ValidationStatus};

/// A [`QuestionStore`] in memory. Share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryQuestionStore {
    questions: Mutex<HashMap<QuestionId, Question>>,
}

impl MemoryQuestionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<QuestionId, Question>> {
        // Every operation below leaves the map consistent before it can panic.
        task_core::sync::lock(&self.questions)
    }

    fn update(
        &self,
        id: &QuestionId,
        change: impl FnOnce(&mut Question),
    ) -> Result<Question, QuizError> {
        let mut questions = self.lock();
        let question = questions
            .get_mut(id)
            .ok_or_else(|| QuizError::NotFound(id.to_string()))?;
        change(question);
        question.updated_at = now_millis().max(question.updated_at);
        Ok(question.clone())
    }
}

#[async_trait]
impl QuestionStore for MemoryQuestionStore {
    async fn insert_many(&self, questions: Vec<NewQuestion>) -> Result<Vec<Question>, QuizError> {
        let stored = super::prepare_insert(questions)?;
        let mut map = self.lock();
        for question in &stored {
            map.insert(question.id.clone(), question.clone());
        }
        Ok(stored)
    }

    async fn get_many(
        &self,
        ids: &[QuestionId],
        owner: Option<&str>,
    ) -> Result<Vec<Question>, QuizError> {
        let map = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| map.get(id))
            .filter(|q| owner.is_none_or(|owner| q.user_id == owner))
            .cloned()
            .collect())
    }

    async fn list(&self, query: &QuestionQuery) -> Result<QuestionPage, QuizError> {
        query.validate()?;
        let mut matching: Vec<Question> = self
            .lock()
            .values()
            .filter(|q| query.matches(q))
            .cloned()
            .collect();
        matching.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        matching.truncate(query.limit + 1);
        Ok(QuestionPage::from_overfetch(matching, query.limit))
    }

    async fn existing_texts(&self, category: &str) -> Result<HashSet<String>, QuizError> {
        let key = category_key(category);
        Ok(self
            .lock()
            .values()
            .filter(|q| category_key(&q.category) == key)
            .map(|q| normalize_text(&q.text))
            .collect())
    }

    async fn update_verdict(
        &self,
        id: &QuestionId,
        status: ValidationStatus,
        notes: Option<String>,
    ) -> Result<Question, QuizError> {
        if let Some(notes) = &notes {
            check_notes(notes)?;
        }
        self.update(id, |q| {
            q.validation_status = status;
            q.validation_notes = notes;
        })
    }

    async fn update_emoji(&self, id: &QuestionId, emoji: &str) -> Result<Question, QuizError> {
        check_new_emoji(emoji)?;
        self.update(id, |q| q.emoji = emoji.to_owned())
    }
}
