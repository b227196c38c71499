//! [`SqliteQuestionStore`]: the `questions` table (the set [`SQLITE_MIGRATIONS`](crate::SQLITE_MIGRATIONS))
//! in the task store's SQLite file, written through its connection helpers so reads and writes share its
//! pool, writer lock and busy handling.

use std::collections::HashSet;

use async_trait::async_trait;
use task_store::rusqlite::{self, params_from_iter, types::Value as SqlValue, Connection, Row};
use task_store::{map_sqlite_error, SqliteStore, StoreError};

use super::raw::RawQuestion;
use super::{check_new_emoji, now_millis, QuestionPage, QuestionQuery, QuestionStore};
use crate::question::{category_key, check_notes};
use crate::rules::normalize_text;
use crate::{NewQuestion, Question, QuestionId, QuizError, ValidationStatus};

const COLUMNS: &str = "id, user_id, text, options, correct_index, explanation, emoji, category, \
     age_group, difficulty, language, validation_status, validation_notes, task_id, provider, \
     model, created_at, updated_at";

/// A [`QuestionStore`] in the task store's SQLite database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteQuestionStore {
    store: SqliteStore,
}

impl SqliteQuestionStore {
    /// Questions in `store`'s database, whose `questions` table
    /// [`SQLITE_MIGRATIONS`](crate::SQLITE_MIGRATIONS) creates: apply it first with
    /// [`SqliteStore::apply_migrations`].
    pub fn new(store: SqliteStore) -> Self {
        Self { store }
    }

    async fn update(
        &self,
        id: &QuestionId,
        assignments: &'static str,
        values: Vec<SqlValue>,
    ) -> Result<Question, QuizError> {
        let id_text = id.to_string();
        let row = self
            .store
            .with_write_transaction(move |conn| {
                let sql = format!(
                    "UPDATE questions SET {assignments}, updated_at = MAX(updated_at, ?) \
                     WHERE id = ? RETURNING {COLUMNS}"
                );
                let mut values = values;
                values.push(SqlValue::Integer(now_millis()));
                values.push(SqlValue::Text(id_text));
                let mut statement = conn.prepare(&sql).map_err(map_sqlite_error)?;
                let mut rows = statement
                    .query_map(params_from_iter(values), read_row)
                    .map_err(map_sqlite_error)?;
                rows.next().transpose().map_err(map_sqlite_error)
            })
            .await?;
        row.ok_or_else(|| QuizError::NotFound(id.to_string()))?
            .decode()
    }
}

#[async_trait]
impl QuestionStore for SqliteQuestionStore {
    async fn insert_many(&self, questions: Vec<NewQuestion>) -> Result<Vec<Question>, QuizError> {
        let stored = super::prepare_insert(questions)?;
        if stored.is_empty() {
            return Ok(stored);
        }
        let rows = stored
            .iter()
            .map(|q| {
                let options = serde_json::to_string(&q.options)
                    .map_err(|e| QuizError::invalid("options", e.to_string()))?;
                Ok(insert_values(q, options))
            })
            .collect::<Result<Vec<_>, QuizError>>()?;
        self.store
            .with_write_transaction(move |conn| {
                let mut statement = conn
                    .prepare(
                        "INSERT INTO questions (id, user_id, text, text_key, options, \
                         correct_index, explanation, emoji, category, category_key, age_group, \
                         difficulty, language, validation_status, validation_notes, task_id, \
                         provider, model, created_at, updated_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .map_err(map_sqlite_error)?;
                for row in rows {
                    statement
                        .execute(params_from_iter(row))
                        .map_err(map_sqlite_error)?;
                }
                Ok(())
            })
            .await?;
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
        let mut values: Vec<SqlValue> = ids
            .iter()
            .map(|id| SqlValue::Text(id.to_string()))
            .collect();
        let placeholders = vec!["?"; ids.len()].join(", ");
        let mut sql = format!("SELECT {COLUMNS} FROM questions WHERE id IN ({placeholders})");
        if let Some(owner) = owner {
            sql.push_str(" AND user_id = ?");
            values.push(SqlValue::Text(owner.to_owned()));
        }
        let rows = self.select(sql, values).await?;
        let mut found = rows
            .into_iter()
            .map(RawQuestion::decode)
            .collect::<Result<Vec<_>, _>>()?;
        // IN (...) returns rows in index order; callers want theirs.
        found.sort_by_key(|q| ids.iter().position(|id| *id == q.id));
        Ok(found)
    }

    async fn list(&self, query: &QuestionQuery) -> Result<QuestionPage, QuizError> {
        query.validate()?;
        let mut conditions: Vec<&str> = Vec::new();
        let mut values: Vec<SqlValue> = Vec::new();
        if let Some(owner) = &query.owner {
            conditions.push("user_id = ?");
            values.push(SqlValue::Text(owner.clone()));
        }
        if let Some(category) = query.category_key() {
            conditions.push("category_key = ?");
            values.push(SqlValue::Text(category));
        }
        if let Some(difficulty) = query.difficulty {
            conditions.push("difficulty = ?");
            values.push(SqlValue::Text(difficulty.as_str().to_owned()));
        }
        if let Some(age_group) = query.age_group {
            conditions.push("age_group = ?");
            values.push(SqlValue::Text(age_group.as_str().to_owned()));
        }
        if let Some(status) = query.validation_status {
            conditions.push("validation_status = ?");
            values.push(SqlValue::Text(status.as_str().to_owned()));
        }
        if let Some(search) = query.search_key() {
            // instr, not LIKE: no wildcard escaping, and the key is already lowercased in Rust,
            // which (unlike SQLite's LIKE) folds å, ä and ö too.
            conditions.push("instr(text_key, ?) > 0");
            values.push(SqlValue::Text(search));
        }
        if let Some(cursor) = &query.after {
            conditions.push("(created_at < ? OR (created_at = ? AND id < ?))");
            values.push(SqlValue::Integer(cursor.created_at));
            values.push(SqlValue::Integer(cursor.created_at));
            values.push(SqlValue::Text(cursor.id.to_string()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = i64::try_from(query.limit + 1).unwrap_or(i64::MAX);
        values.push(SqlValue::Integer(limit));
        let sql = format!(
            "SELECT {COLUMNS} FROM questions {filter} ORDER BY created_at DESC, id DESC LIMIT ?"
        );
        let questions = self
            .select(sql, values)
            .await?
            .into_iter()
            .map(RawQuestion::decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(QuestionPage::from_overfetch(questions, query.limit))
    }

    async fn existing_texts(&self, category: &str) -> Result<HashSet<String>, QuizError> {
        let key = category_key(category);
        Ok(self
            .store
            .with_connection(move |conn| {
                let mut statement = conn
                    .prepare_cached("SELECT text_key FROM questions WHERE category_key = ?")
                    .map_err(map_sqlite_error)?;
                let texts = statement
                    .query_map([key], |row| row.get::<_, String>(0))
                    .map_err(map_sqlite_error)?
                    .collect::<Result<HashSet<_>, _>>()
                    .map_err(map_sqlite_error)?;
                Ok(texts)
            })
            .await?)
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
            "validation_status = ?, validation_notes = ?",
            vec![
                SqlValue::Text(status.as_str().to_owned()),
                notes.map_or(SqlValue::Null, SqlValue::Text),
            ],
        )
        .await
    }

    async fn update_emoji(&self, id: &QuestionId, emoji: &str) -> Result<Question, QuizError> {
        check_new_emoji(emoji)?;
        self.update(id, "emoji = ?", vec![SqlValue::Text(emoji.to_owned())])
            .await
    }
}

impl SqliteQuestionStore {
    async fn select(
        &self,
        sql: String,
        values: Vec<SqlValue>,
    ) -> Result<Vec<RawQuestion>, StoreError> {
        self.store
            .with_connection(move |conn: &Connection| {
                let mut statement = conn.prepare(&sql).map_err(map_sqlite_error)?;
                let rows = statement
                    .query_map(params_from_iter(values), read_row)
                    .map_err(map_sqlite_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(map_sqlite_error)?;
                Ok(rows)
            })
            .await
    }
}

fn insert_values(q: &Question, options: String) -> Vec<SqlValue> {
    let text = |s: &str| SqlValue::Text(s.to_owned());
    vec![
        text(q.id.as_str()),
        text(&q.user_id),
        text(&q.text),
        SqlValue::Text(normalize_text(&q.text)),
        SqlValue::Text(options),
        SqlValue::Integer(i64::from(q.correct_index)),
        text(&q.explanation),
        text(&q.emoji),
        text(&q.category),
        SqlValue::Text(category_key(&q.category)),
        text(q.age_group.as_str()),
        text(q.difficulty.as_str()),
        text(&q.language),
        text(q.validation_status.as_str()),
        q.validation_notes.as_deref().map_or(SqlValue::Null, text),
        q.provenance
            .task_id
            .as_ref()
            .map_or(SqlValue::Null, |id| text(id.as_str())),
        text(&q.provenance.provider),
        text(&q.provenance.model),
        SqlValue::Integer(q.created_at),
        SqlValue::Integer(q.updated_at),
    ]
}

/// Reads the columns in [`COLUMNS`] order.
fn read_row(row: &Row<'_>) -> rusqlite::Result<RawQuestion> {
    Ok(RawQuestion {
        id: row.get(0)?,
        user_id: row.get(1)?,
        text: row.get(2)?,
        options: row.get(3)?,
        correct_index: row.get(4)?,
        explanation: row.get(5)?,
        emoji: row.get(6)?,
        category: row.get(7)?,
        age_group: row.get(8)?,
        difficulty: row.get(9)?,
        language: row.get(10)?,
        validation_status: row.get(11)?,
        validation_notes: row.get(12)?,
        task_id: row.get(13)?,
        provider: row.get(14)?,
        model: row.get(15)?,
        created_at: row.get(16)?,
        updated_at: row.get(17)?,
    })
}
