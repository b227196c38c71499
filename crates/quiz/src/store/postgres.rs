//! [`PostgresQuestionStore`]: the `questions` table (the set
//! [`POSTGRES_MIGRATIONS`](crate::POSTGRES_MIGRATIONS)) in the task store's schema, on connections from its pool, so tasks,
//! users and questions share one database and one set of connection limits.

use std::collections::HashSet;

use async_trait::async_trait;
use task_postgres::tokio_postgres::types::{FromSql, Json, ToSql};
use task_postgres::tokio_postgres::Row;
use task_postgres::{map_postgres_error, PostgresStore};
use task_store::StoreError;

use super::raw::RawQuestion;
use super::{check_new_emoji, now_millis, QuestionPage, QuestionQuery, QuestionStore};
use crate::question::{category_key, check_notes};
use crate::rules::normalize_text;
use crate::{NewQuestion, Question, QuestionId, QuizError, ValidationStatus};

/// The columns [`read_row`] reads. `options` comes back as the JSON text SQLite stores, so both
/// backends decode it the same way.
const COLUMNS: &str = "id, user_id, text, options::text, correct_index, explanation, emoji, \
     category, age_group, difficulty, language, validation_status, validation_notes, task_id, \
     provider, model, created_at, updated_at";

const INSERT: &str = "INSERT INTO questions (id, user_id, text, text_key, options, \
     correct_index, explanation, emoji, category, category_key, age_group, difficulty, \
     language, validation_status, validation_notes, task_id, provider, model, created_at, \
     updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20)";

/// A statement parameter the list query owns until it runs.
type Param = Box<dyn ToSql + Sync + Send>;

/// A [`QuestionStore`] in a [`PostgresStore`]'s schema, whose `questions` table
/// [`POSTGRES_MIGRATIONS`](crate::POSTGRES_MIGRATIONS) creates: apply it first with
/// [`PostgresStore::apply_migrations`].
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresQuestionStore {
    store: PostgresStore,
}

impl PostgresQuestionStore {
    /// Questions in `store`'s schema.
    pub fn new(store: PostgresStore) -> Self {
        Self { store }
    }

    /// Runs `sql` with `params` and decodes every row it returns.
    async fn select(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Question>, QuizError> {
        let connection = self.store.connection().await?;
        let rows = connection
            .query(sql, params)
            .await
            .map_err(map_postgres_error)?;
        rows.iter().map(|row| read_row(row)?.decode()).collect()
    }

    /// Sets `assignments` (placeholders from `$3`, filled from `values`) on question `id`.
    async fn update(
        &self,
        id: &QuestionId,
        assignments: &str,
        values: &[&(dyn ToSql + Sync)],
    ) -> Result<Question, QuizError> {
        let sql = format!(
            "UPDATE questions SET {assignments}, updated_at = GREATEST(updated_at, $2) \
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let id_text = id.as_str();
        let now = now_millis();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id_text, &now];
        params.extend_from_slice(values);
        self.select(&sql, &params)
            .await?
            .pop()
            .ok_or_else(|| QuizError::NotFound(id.to_string()))
    }
}

#[async_trait]
impl QuestionStore for PostgresQuestionStore {
    async fn insert_many(&self, questions: Vec<NewQuestion>) -> Result<Vec<Question>, QuizError> {
        let stored = super::prepare_insert(questions)?;
        if stored.is_empty() {
            return Ok(stored);
        }
        let mut connection = self.store.connection().await?;
        let transaction = connection.transaction().await.map_err(map_postgres_error)?;
        let insert = transaction
            .prepare(INSERT)
            .await
            .map_err(map_postgres_error)?;
        for question in &stored {
            transaction
                .execute(&insert, &InsertRow::new(question).params())
                .await
                .map_err(map_postgres_error)?;
        }
        transaction.commit().await.map_err(map_postgres_error)?;
        Ok(stored)
    }

    async fn get_many(
        &self,
        ids: &[QuestionId],
        owner: Option<&str>,
    ) -> Result<Vec<Question>, QuizError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let id_texts: Vec<&str> = ids.iter().map(QuestionId::as_str).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM questions WHERE id = ANY($1) \
             AND ($2::text IS NULL OR user_id = $2)"
        );
        let mut found = self.select(&sql, &[&id_texts, &owner]).await?;
        // ANY(...) returns rows in no particular order; callers want theirs.
        found.sort_by_key(|q| ids.iter().position(|id| *id == q.id));
        Ok(found)
    }

    async fn list(&self, query: &QuestionQuery) -> Result<QuestionPage, QuizError> {
        query.validate()?;
        let mut conditions: Vec<String> = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        // Each condition names its parameters by position, so they are added together.
        let mut add = |condition: &str, values: Vec<Param>| {
            let mut condition = condition.to_owned();
            for value in values {
                params.push(value);
                condition = condition.replacen("{}", &format!("${}", params.len()), 1);
            }
            conditions.push(condition);
        };
        if let Some(owner) = &query.owner {
            add("user_id = {}", vec![Box::new(owner.clone())]);
        }
        if let Some(category) = query.category_key() {
            add("category_key = {}", vec![Box::new(category)]);
        }
        if let Some(difficulty) = query.difficulty {
            add("difficulty = {}", vec![Box::new(difficulty.as_str())]);
        }
        if let Some(age_group) = query.age_group {
            add("age_group = {}", vec![Box::new(age_group.as_str())]);
        }
        if let Some(status) = query.validation_status {
            add("validation_status = {}", vec![Box::new(status.as_str())]);
        }
        if let Some(search) = query.search_key() {
            // strpos, not LIKE: no wildcard escaping, and the key is already normalised in Rust.
            add("strpos(text_key, {}) > 0", vec![Box::new(search)]);
        }
        if let Some(cursor) = &query.after {
            add(
                "(created_at < {} OR (created_at = {} AND id < {}))",
                vec![
                    Box::new(cursor.created_at),
                    Box::new(cursor.created_at),
                    Box::new(cursor.id.to_string()),
                ],
            );
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        params.push(Box::new(i64::try_from(query.limit + 1).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT {COLUMNS} FROM questions {filter} ORDER BY created_at DESC, id DESC LIMIT ${}",
            params.len()
        );
        let params: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|param| param.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let questions = self.select(&sql, &params).await?;
        Ok(QuestionPage::from_overfetch(questions, query.limit))
    }

    async fn existing_texts(&self, category: &str) -> Result<HashSet<String>, QuizError> {
        let key = category_key(category);
        let connection = self.store.connection().await?;
        let rows = connection
            .query(
                "SELECT text_key FROM questions WHERE category_key = $1",
                &[&key],
            )
            .await
            .map_err(map_postgres_error)?;
        rows.iter().map(|row| column(row, 0)).collect()
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
        self.update(
            id,
            "validation_status = $3, validation_notes = $4",
            &[&status.as_str(), &notes],
        )
        .await
    }

    async fn update_emoji(&self, id: &QuestionId, emoji: &str) -> Result<Question, QuizError> {
        check_new_emoji(emoji)?;
        self.update(id, "emoji = $3", &[&emoji]).await
    }
}

/// One question as the parameters of [`INSERT`], with the derived keys it stores.
struct InsertRow<'a> {
    question: &'a Question,
    id: &'a str,
    text_key: String,
    options: Json<&'a [String; 4]>,
    correct_index: i32,
    category_key: String,
    age_group: &'static str,
    difficulty: &'static str,
    validation_status: &'static str,
    task_id: Option<&'a str>,
}

impl<'a> InsertRow<'a> {
    fn new(question: &'a Question) -> Self {
        Self {
            question,
            id: question.id.as_str(),
            text_key: normalize_text(&question.text),
            options: Json(&question.options),
            correct_index: i32::from(question.correct_index),
            category_key: category_key(&question.category),
            age_group: question.age_group.as_str(),
            difficulty: question.difficulty.as_str(),
            validation_status: question.validation_status.as_str(),
            task_id: question.provenance.task_id.as_ref().map(|id| id.as_str()),
        }
    }

    /// The parameters, in [`INSERT`]'s column order.
    fn params(&self) -> [&(dyn ToSql + Sync); 20] {
        let q = self.question;
        [
            &self.id,
            &q.user_id,
            &q.text,
            &self.text_key,
            &self.options,
            &self.correct_index,
            &q.explanation,
            &q.emoji,
            &q.category,
            &self.category_key,
            &self.age_group,
            &self.difficulty,
            &q.language,
            &self.validation_status,
            &q.validation_notes,
            &self.task_id,
            &q.provenance.provider,
            &q.provenance.model,
            &q.created_at,
            &q.updated_at,
        ]
    }
}

/// Reads the columns in [`COLUMNS`] order.
fn read_row(row: &Row) -> Result<RawQuestion, QuizError> {
    let correct_index: i32 = column(row, 4)?;
    Ok(RawQuestion {
        id: column(row, 0)?,
        user_id: column(row, 1)?,
        text: column(row, 2)?,
        options: column(row, 3)?,
        correct_index: i64::from(correct_index),
        explanation: column(row, 5)?,
        emoji: column(row, 6)?,
        category: column(row, 7)?,
        age_group: column(row, 8)?,
        difficulty: column(row, 9)?,
        language: column(row, 10)?,
        validation_status: column(row, 11)?,
        validation_notes: column(row, 12)?,
        task_id: column(row, 13)?,
        provider: column(row, 14)?,
        model: column(row, 15)?,
        created_at: column(row, 16)?,
        updated_at: column(row, 17)?,
    })
}

/// Column `index` of `row`. A column of an unexpected type means the table is not the one the
/// migrations made, which the store reports as a backend error, as the task store does.
fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, QuizError> {
    row.try_get(index).map_err(|e| {
        QuizError::Store(StoreError::Backend(format!(
            "unreadable questions column {index} in the database: {e}"
        )))
    })
}
