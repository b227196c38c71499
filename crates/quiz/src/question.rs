//! The question record, its id, and the input for creating one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use task_core::{TaskId, UnixMillis};

use crate::rules::{self, Defect, MAX_NOTES_CHARS};
use crate::{AgeGroup, Difficulty, QuizError, ValidationStatus};

/// The language of a question unless the caller picks another.
pub const DEFAULT_LANGUAGE: &str = "sv";
const ID_PREFIX: &str = "q_";
const RANDOM_BYTES: usize = 10;
const MAX_ID_LEN: usize = 100;
const MAX_USER_ID_LEN: usize = 320;

/// A question's id: `q_<unix-ms>_<random>` with 80 random bits, so ids cannot be guessed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuestionId(String);

impl QuestionId {
    /// A new id for a question created at `created_at`.
    ///
    /// # Errors
    /// Fails only if the operating system's random number generator is unavailable.
    pub fn generate(created_at: UnixMillis) -> Result<Self, QuizError> {
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::getrandom(&mut random).map_err(|e| {
            QuizError::invalid("id", format!("OS random number generator unavailable: {e}"))
        })?;
        let suffix: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        Ok(Self(format!("{ID_PREFIX}{}_{suffix}", created_at.max(0))))
    }

    /// The id as it appears in JSON and the database.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for QuestionId {
    type Err = QuizError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            QuizError::invalid(
                "questionIds",
                format!(
                    "{:?} is not a question id",
                    s.chars().take(80).collect::<String>()
                ),
            )
        };
        let rest = s.strip_prefix(ID_PREFIX).ok_or_else(invalid)?;
        let (millis, random) = rest.split_once('_').ok_or_else(invalid)?;
        let ok = s.len() <= MAX_ID_LEN
            && !millis.is_empty()
            && millis.bytes().all(|b| b.is_ascii_digit())
            && random.len() >= 6
            && random
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(invalid())
        }
    }
}

impl fmt::Display for QuestionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for QuestionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QuestionId({})", self.0)
    }
}

impl Serialize for QuestionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for QuestionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a question came from: the task that generated it and the model behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// The generation task, when a task made it.
    pub task_id: Option<TaskId>,
    /// The provider's name (`openai`, `offline`, ...).
    pub provider: String,
    /// The model's name.
    pub model: String,
}

/// A question to store. [`NewQuestion::validate`] runs before anything is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewQuestion {
    /// The owner: the user whose task created it.
    pub user_id: String,
    /// The question.
    pub text: String,
    /// Exactly four distinct answers.
    pub options: [String; 4],
    /// Which option is right, `0..=3`.
    pub correct_index: u8,
    /// Why the right answer is right.
    pub explanation: String,
    /// A short emoji illustrating the question.
    pub emoji: String,
    /// The category, e.g. "Historia".
    pub category: String,
    /// Who the question is for.
    pub age_group: AgeGroup,
    /// How hard it is.
    pub difficulty: Difficulty,
    /// Language code, e.g. `sv` (the default) or `en`.
    pub language: String,
    /// Where it came from.
    #[serde(flatten)]
    pub provenance: Provenance,
}

impl NewQuestion {
    /// Checks every field against the question rules.
    ///
    /// # Errors
    /// [`QuizError::InvalidField`] naming the first bad field.
    pub fn validate(&self) -> Result<(), QuizError> {
        let defect = |d: Defect| QuizError::invalid(d.field(), d.to_string());
        if self.user_id.trim().is_empty() || self.user_id.len() > MAX_USER_ID_LEN {
            return Err(QuizError::invalid(
                "userId",
                format!("must be 1 to {MAX_USER_ID_LEN} bytes"),
            ));
        }
        rules::check_text(&self.text).map_err(defect)?;
        rules::check_options(&self.options).map_err(defect)?;
        rules::check_correct_index(i64::from(self.correct_index)).map_err(defect)?;
        rules::check_explanation(&self.explanation).map_err(defect)?;
        rules::check_emoji(&self.emoji).map_err(defect)?;
        rules::check_category(&self.category).map_err(defect)?;
        check_language(&self.language)?;
        if self.provenance.provider.trim().is_empty() {
            return Err(QuizError::invalid("provider", "must not be empty"));
        }
        Ok(())
    }
}

/// Checks a language code: a 2–3 letter lowercase code, optionally with a region or script
/// (`sv`, `en`, `pt-BR`, `zh-Hant`).
///
/// # Errors
/// [`QuizError::InvalidField`] for `language`.
pub fn check_language(language: &str) -> Result<(), QuizError> {
    let (primary, region) = match language.split_once('-') {
        Some((primary, region)) => (primary, Some(region)),
        None => (language, None),
    };
    let primary_ok =
        (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    let region_ok = region.is_none_or(|region| {
        (2..=8).contains(&region.len()) && region.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if primary_ok && region_ok {
        Ok(())
    } else {
        Err(QuizError::invalid(
            "language",
            format!(
                "{:?} is not a language code like \"sv\" or \"en\"",
                language.chars().take(20).collect::<String>()
            ),
        ))
    }
}

/// Checks a validation note's length.
///
/// # Errors
/// [`QuizError::InvalidField`] for `validationNotes`.
pub fn check_notes(notes: &str) -> Result<(), QuizError> {
    if notes.chars().count() > MAX_NOTES_CHARS {
        Err(QuizError::invalid(
            "validationNotes",
            format!("is longer than {MAX_NOTES_CHARS} characters"),
        ))
    } else {
        Ok(())
    }
}

/// A stored question, as served in JSON (camelCase field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Question {
    /// `q_<unix-ms>_<random>`.
    pub id: QuestionId,
    /// The owner.
    pub user_id: String,
    /// The question.
    pub text: String,
    /// Exactly four distinct answers.
    pub options: [String; 4],
    /// Which option is right, `0..=3`.
    pub correct_index: u8,
    /// Why the right answer is right.
    pub explanation: String,
    /// A short emoji illustrating the question.
    pub emoji: String,
    /// The category as it was given.
    pub category: String,
    /// Who the question is for.
    pub age_group: AgeGroup,
    /// How hard it is.
    pub difficulty: Difficulty,
    /// Language code.
    pub language: String,
    /// The latest validation verdict.
    pub validation_status: ValidationStatus,
    /// What the validator said, if it has run.
    pub validation_notes: Option<String>,
    /// Where it came from.
    #[serde(flatten)]
    pub provenance: Provenance,
    /// When it was stored.
    pub created_at: UnixMillis,
    /// When it last changed.
    pub updated_at: UnixMillis,
}

impl Question {
    /// The stored form of `new`, unvalidated, created at `now`.
    pub fn from_new(id: QuestionId, new: NewQuestion, now: UnixMillis) -> Self {
        Self {
            id,
            user_id: new.user_id,
            text: new.text,
            options: new.options,
            correct_index: new.correct_index,
            explanation: new.explanation,
            emoji: new.emoji,
            category: new.category,
            age_group: new.age_group,
            difficulty: new.difficulty,
            language: new.language,
            validation_status: ValidationStatus::Unvalidated,
            validation_notes: None,
            provenance: new.provenance,
            created_at: now,
            updated_at: now,
        }
    }

    /// The right answer's text.
    pub fn correct_option(&self) -> &str {
        self.options
            .get(usize::from(self.correct_index))
            .map_or("", String::as_str)
    }
}

/// The form category names are matched in: trimmed, lowercase, whitespace collapsed, so
/// "Historia" and " historia " are one category.
pub fn category_key(category: &str) -> String {
    category
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewQuestion {
        NewQuestion {
            user_id: "a@example.com".into(),
            text: "Vilket år landsteg människan på månen?".into(),
            options: ["1965".into(), "1969".into(), "1972".into(), "1959".into()],
            correct_index: 1,
            explanation: "Apollo 11 landade den 20 juli 1969.".into(),
            emoji: "🌕".into(),
            category: "Historia".into(),
            age_group: AgeGroup::Adults,
            difficulty: Difficulty::Easy,
            language: "sv".into(),
            provenance: Provenance {
                task_id: None,
                provider: "offline".into(),
                model: "offline-bank-v1".into(),
            },
        }
    }

    fn check(change: impl FnOnce(&mut NewQuestion), expected_field: Option<&str>) {
        let mut question = sample();
        change(&mut question);
        match (question.validate(), expected_field) {
            (Ok(()), None) => {}
            (Err(QuizError::InvalidField { field, .. }), Some(expected)) => {
                assert_eq!(field, expected)
            }
            (other, expected) => panic!("{other:?}, expected bad field {expected:?}"),
        }
    }

    #[test]
    fn validation_names_the_bad_field() {
        check(|_| {}, None);
        check(|q| q.user_id = " ".into(), Some("userId"));
        check(|q| q.text = "".into(), Some("text"));
        check(|q| q.options[2] = "1965".into(), Some("options"));
        check(|q| q.options[3] = "".into(), Some("options"));
        check(|q| q.correct_index = 4, Some("correctIndex"));
        check(|q| q.explanation = " ".into(), Some("explanation"));
        check(|q| q.emoji = "moon".into(), Some("emoji"));
        check(|q| q.category = "".into(), Some("category"));
        check(|q| q.language = "Swedish".into(), Some("language"));
        check(|q| q.language = "pt-BR".into(), None);
        check(|q| q.provenance.provider = "".into(), Some("provider"));
    }

    #[test]
    fn ids_parse_only_in_their_format() {
        let id = QuestionId::generate(1_700_000_000_000).unwrap();
        assert_eq!(id.as_str().parse::<QuestionId>().unwrap(), id);
        assert_ne!(id, QuestionId::generate(1_700_000_000_000).unwrap());
        for bad in [
            "",
            "q_",
            "q_1",
            "q_x_abcdef",
            "q_1_ABCDEF",
            "task_1_abcdef",
            "q_1_abc",
        ] {
            assert!(bad.parse::<QuestionId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn questions_serialise_in_camel_case_with_provenance_inline() {
        let id: QuestionId = "q_1_abcdef".parse().unwrap();
        let question = Question::from_new(id, sample(), 5);
        let json = serde_json::to_value(&question).unwrap();
        assert_eq!(json["correctIndex"], 1);
        assert_eq!(json["ageGroup"], "adults");
        assert_eq!(json["validationStatus"], "unvalidated");
        assert_eq!(json["provider"], "offline");
        assert_eq!(json["taskId"], serde_json::Value::Null);
        let back: Question = serde_json::from_value(json).unwrap();
        assert_eq!(back, question);
        assert_eq!(question.correct_option(), "1969");
    }

    #[test]
    fn category_keys_ignore_case_and_spacing() {
        assert_eq!(category_key("  Svensk   Historia "), "svensk historia");
        assert_eq!(category_key("SPRÅK"), "språk");
    }
}
