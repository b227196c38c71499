//! Filters and keyset paging for [`crate::QuestionStore::list`], and parsing them from a URL's
//! query parameters.

use std::fmt;
use std::str::FromStr;

use task_core::UnixMillis;

use crate::question::category_key;
use crate::rules::normalize_text;
use crate::{AgeGroup, Difficulty, Question, QuestionId, QuizError, ValidationStatus};

/// Questions per page unless the caller asks for another number.
pub const DEFAULT_QUESTION_LIMIT: usize = 100;
/// The most questions one page may hold.
pub const MAX_QUESTION_LIMIT: usize = 1000;

/// Filters and paging for listing questions. Results are newest first (`created_at`, then `id`,
/// both descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionQuery {
    /// Only this owner's questions; `None` for everyone's (superusers).
    pub owner: Option<String>,
    /// Only this category (compared by [`category_key`]).
    pub category: Option<String>,
    /// Only this difficulty.
    pub difficulty: Option<Difficulty>,
    /// Only this age group.
    pub age_group: Option<AgeGroup>,
    /// Only this validation status.
    pub validation_status: Option<ValidationStatus>,
    /// Only questions whose normalised text contains this normalised string.
    pub search: Option<String>,
    /// Continue after this position (a previous page's `next`).
    pub after: Option<QuestionCursor>,
    /// Page size, `1..=1000`; defaults to 100.
    pub limit: usize,
}

impl Default for QuestionQuery {
    fn default() -> Self {
        Self {
            owner: None,
            category: None,
            difficulty: None,
            age_group: None,
            validation_status: None,
            search: None,
            after: None,
            limit: DEFAULT_QUESTION_LIMIT,
        }
    }
}

impl QuestionQuery {
    /// Parses URL query parameters: `category`, `difficulty`, `ageGroup`, `validationStatus`,
    /// `search`, `cursor` and `limit`. Empty values count as absent; unknown names are ignored
    /// (`userId` and similar belong to the caller's authorisation). `owner` stays `None`: the
    /// caller sets it from who is asking.
    ///
    /// # Errors
    /// [`QuizError::InvalidField`] naming the bad parameter.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, QuizError> {
        let mut query = Self::default();
        for (name, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name {
                "category" => query.category = Some(value.to_owned()),
                "difficulty" => query.difficulty = Some(value.parse()?),
                "ageGroup" => query.age_group = Some(value.parse()?),
                "validationStatus" => query.validation_status = Some(value.parse()?),
                "search" => query.search = Some(value.to_owned()),
                "cursor" => query.after = Some(value.parse()?),
                "limit" => {
                    query.limit = value.parse().map_err(|_| {
                        QuizError::invalid(
                            "limit",
                            format!("must be a whole number from 1 to {MAX_QUESTION_LIMIT}"),
                        )
                    })?
                }
                _ => {}
            }
        }
        query.validate()?;
        Ok(query)
    }

    /// Checks the limit.
    ///
    /// # Errors
    /// [`QuizError::InvalidField`] for `limit` outside `1..=1000`.
    pub fn validate(&self) -> Result<(), QuizError> {
        if (1..=MAX_QUESTION_LIMIT).contains(&self.limit) {
            Ok(())
        } else {
            Err(QuizError::invalid(
                "limit",
                format!("must be a whole number from 1 to {MAX_QUESTION_LIMIT}"),
            ))
        }
    }

    /// The category filter as stored (`category_key`), if any.
    pub(crate) fn category_key(&self) -> Option<String> {
        self.category.as_deref().map(category_key)
    }

    /// The search filter normalised; a search of only punctuation filters nothing.
    pub(crate) fn search_key(&self) -> Option<String> {
        self.search
            .as_deref()
            .map(normalize_text)
            .filter(|key| !key.is_empty())
    }

    /// Whether `question` passes every filter and lies after the cursor. The memory backend
    /// uses it; the SQLite backend says the same in SQL.
    pub(crate) fn matches(&self, question: &Question) -> bool {
        self.owner.as_ref().is_none_or(|o| *o == question.user_id)
            && self
                .category_key()
                .is_none_or(|c| c == category_key(&question.category))
            && self.difficulty.is_none_or(|d| d == question.difficulty)
            && self.age_group.is_none_or(|a| a == question.age_group)
            && self
                .validation_status
                .is_none_or(|s| s == question.validation_status)
            && self
                .search_key()
                .is_none_or(|s| normalize_text(&question.text).contains(&s))
            && self.after.as_ref().is_none_or(|cursor| {
                (question.created_at, &question.id) < (cursor.created_at, &cursor.id)
            })
    }
}

/// A keyset position: the `(created_at, id)` of the last question of a page. Its text form
/// (`<created_at>.<id>`) is opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionCursor {
    /// `created_at` of the last question seen.
    pub created_at: UnixMillis,
    /// `id` of the last question seen.
    pub id: QuestionId,
}

impl QuestionCursor {
    /// The position just after `question`.
    pub fn after(question: &Question) -> Self {
        Self {
            created_at: question.created_at,
            id: question.id.clone(),
        }
    }
}

impl fmt::Display for QuestionCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at, self.id)
    }
}

impl FromStr for QuestionCursor {
    type Err = QuizError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || QuizError::invalid("cursor", "is not a cursor returned by this API");
        let (created_at, id) = s.split_once('.').ok_or_else(invalid)?;
        Ok(Self {
            created_at: created_at.parse().map_err(|_| invalid())?,
            id: id.parse().map_err(|_| invalid())?,
        })
    }
}

/// One page of questions.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionPage {
    /// Newest first.
    pub questions: Vec<Question>,
    /// Where the next page starts, when there may be one.
    pub next: Option<QuestionCursor>,
}

impl QuestionPage {
    /// A page from `questions` fetched with `limit + 1` rows: the extra row only says that a
    /// next page exists.
    pub(crate) fn from_overfetch(mut questions: Vec<Question>, limit: usize) -> Self {
        let more = questions.len() > limit;
        questions.truncate(limit);
        let next = if more {
            questions.last().map(QuestionCursor::after)
        } else {
            None
        };
        Self { questions, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(params: &[(&str, &str)], expected: Result<QuestionQuery, &str>) {
        match (QuestionQuery::from_params(params.iter().copied()), expected) {
            (Ok(query), Ok(expected)) => assert_eq!(query, expected),
            (Err(QuizError::InvalidField { field, .. }), Err(expected)) => {
                assert_eq!(field, expected)
            }
            (other, expected) => panic!("{other:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn query_parameters_parse_or_name_the_bad_one() {
        check(&[], Ok(QuestionQuery::default()));
        check(
            &[
                ("category", "Historia"),
                ("difficulty", "hard"),
                ("ageGroup", "youth"),
                ("validationStatus", "invalid"),
                ("search", "kung"),
                ("cursor", "17.q_17_abcdef"),
                ("limit", "1000"),
                ("userId", "ignored@example.com"),
                ("search", ""),
            ],
            Ok(QuestionQuery {
                owner: None,
                category: Some("Historia".into()),
                difficulty: Some(Difficulty::Hard),
                age_group: Some(AgeGroup::Youth),
                validation_status: Some(ValidationStatus::Invalid),
                search: Some("kung".into()),
                after: Some("17.q_17_abcdef".parse().unwrap()),
                limit: 1000,
            }),
        );
        check(&[("limit", "0")], Err("limit"));
        check(&[("limit", "1001")], Err("limit"));
        check(&[("limit", "ten")], Err("limit"));
        check(&[("difficulty", "HARD")], Err("difficulty"));
        check(&[("ageGroup", "babies")], Err("ageGroup"));
        check(&[("validationStatus", "ok")], Err("validationStatus"));
        check(&[("cursor", "17")], Err("cursor"));
        check(&[("cursor", "x.q_17_abcdef")], Err("cursor"));
    }

    #[test]
    fn cursors_round_trip() {
        let cursor: QuestionCursor = "1700000000000.q_1700000000000_abcdef".parse().unwrap();
        assert_eq!(
            cursor.to_string().parse::<QuestionCursor>().unwrap(),
            cursor
        );
    }
}
