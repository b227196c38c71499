//! The built-in question bank (`crates/quiz/data/offline_bank.json`): real questions with
//! checked answers, per category and difficulty, that the offline responder serves.

use std::collections::HashMap;

use serde::Deserialize;

use crate::question::category_key;
use crate::rules::{self, normalize_text, Defect};
use crate::{Difficulty, QuizError};

const BUILTIN: &str = include_str!("../../data/offline_bank.json");

/// One question of the bank.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BankQuestion {
    pub(crate) difficulty: Difficulty,
    pub(crate) text: String,
    pub(crate) options: [String; 4],
    pub(crate) correct_index: u8,
    pub(crate) explanation: String,
    pub(crate) emoji: String,
}

impl BankQuestion {
    pub(crate) fn correct_option(&self) -> &str {
        self.options
            .get(usize::from(self.correct_index))
            .map_or("", String::as_str)
    }
}

/// One category of the bank.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BankCategory {
    pub(crate) name: String,
    /// Other names that mean this category ("history" for "Historia").
    pub(crate) aliases: Vec<String>,
    /// Emojis that fit any question of the category.
    pub(crate) emojis: Vec<String>,
    pub(crate) questions: Vec<BankQuestion>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BankFile {
    model: String,
    language: String,
    fallback_emojis: Vec<String>,
    categories: Vec<BankCategory>,
}

/// The parsed, checked bank with lookups by category name and by question text.
#[derive(Debug, Clone)]
pub(crate) struct OfflineBank {
    file: BankFile,
    /// Category key (name or alias) → category index.
    categories: HashMap<String, usize>,
    /// Normalised question text → (category index, question index).
    texts: HashMap<String, (usize, usize)>,
}

impl OfflineBank {
    /// The bank compiled into the crate.
    pub(crate) fn builtin() -> Result<Self, QuizError> {
        Self::parse(BUILTIN)
    }

    /// Parses a bank and checks every question against the question rules, so the offline
    /// provider can never serve something the checker would drop.
    pub(crate) fn parse(json: &str) -> Result<Self, QuizError> {
        let file: BankFile = serde_json::from_str(json)
            .map_err(|e| QuizError::Bank(format!("does not parse: {e}")))?;
        if file.model.trim().is_empty() {
            return Err(QuizError::Bank("model name is empty".into()));
        }
        if file.fallback_emojis.is_empty() {
            return Err(QuizError::Bank("fallbackEmojis is empty".into()));
        }
        for emoji in &file.fallback_emojis {
            rules::check_emoji(emoji)
                .map_err(|d| QuizError::Bank(format!("fallback emoji: {d}")))?;
        }
        let mut categories = HashMap::new();
        let mut texts = HashMap::new();
        for (c, category) in file.categories.iter().enumerate() {
            let bad =
                |what: String| QuizError::Bank(format!("category {:?}: {what}", category.name));
            for name in std::iter::once(&category.name).chain(&category.aliases) {
                if categories.insert(category_key(name), c).is_some() {
                    return Err(bad(format!("name {name:?} is used twice")));
                }
            }
            if category.emojis.is_empty() {
                return Err(bad("has no emojis".into()));
            }
            for emoji in &category.emojis {
                rules::check_emoji(emoji).map_err(|d| bad(d.to_string()))?;
            }
            for difficulty in Difficulty::ALL {
                if !category
                    .questions
                    .iter()
                    .any(|q| q.difficulty == *difficulty)
                {
                    return Err(bad(format!("has no {difficulty} questions")));
                }
            }
            for (i, question) in category.questions.iter().enumerate() {
                check_question(question)
                    .map_err(|d| bad(format!("question {:?}: {d}", question.text)))?;
                if texts
                    .insert(normalize_text(&question.text), (c, i))
                    .is_some()
                {
                    return Err(bad(format!("question {:?} appears twice", question.text)));
                }
            }
        }
        Ok(Self {
            file,
            categories,
            texts,
        })
    }

    /// The model name the bank reports as.
    pub(crate) fn model(&self) -> &str {
        &self.file.model
    }

    /// The language the bank's questions are written in.
    pub(crate) fn language(&self) -> &str {
        &self.file.language
    }

    /// Emojis for questions of no known category.
    pub(crate) fn fallback_emojis(&self) -> &[String] {
        &self.file.fallback_emojis
    }

    /// All categories.
    #[cfg(test)]
    pub(crate) fn categories(&self) -> &[BankCategory] {
        &self.file.categories
    }

    /// The category called `name` (or one of its aliases), compared case-insensitively.
    pub(crate) fn category(&self, name: &str) -> Option<&BankCategory> {
        self.categories
            .get(&category_key(name))
            .and_then(|&c| self.file.categories.get(c))
    }

    /// The bank's question with this text (compared normalised), with its category.
    pub(crate) fn find(&self, text: &str) -> Option<(&BankCategory, &BankQuestion)> {
        let &(c, q) = self.texts.get(&normalize_text(text))?;
        let category = self.file.categories.get(c)?;
        Some((category, category.questions.get(q)?))
    }
}

fn check_question(question: &BankQuestion) -> Result<(), Defect> {
    rules::check_text(&question.text)?;
    rules::check_options(&question.options)?;
    rules::check_correct_index(i64::from(question.correct_index))?;
    rules::check_explanation(&question.explanation)?;
    rules::check_emoji(&question.emoji)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fewest questions per category and difficulty, so a task of ten questions in a known
    /// category is mostly served from real questions.
    const MIN_PER_DIFFICULTY: usize = 6;

    #[test]
    fn the_builtin_bank_is_valid_and_broad() {
        let bank = OfflineBank::builtin().unwrap();
        assert_eq!(bank.language(), "sv");
        let names: Vec<&str> = bank.categories().iter().map(|c| c.name.as_str()).collect();
        for expected in [
            "Historia",
            "Geografi",
            "Vetenskap",
            "Sport",
            "Natur",
            "Musik",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        for category in bank.categories() {
            assert!(category.questions.len() >= 15, "{}", category.name);
            for difficulty in Difficulty::ALL {
                let count = category
                    .questions
                    .iter()
                    .filter(|q| q.difficulty == *difficulty)
                    .count();
                assert!(
                    count >= MIN_PER_DIFFICULTY,
                    "{} {difficulty}: {count}",
                    category.name
                );
            }
            // The right answer should not always sit in the same place.
            let mut positions = [0usize; 4];
            for question in &category.questions {
                positions[usize::from(question.correct_index)] += 1;
            }
            assert!(
                positions.iter().all(|&n| n > 0),
                "{}: {positions:?}",
                category.name
            );
        }
    }

    #[test]
    fn lookups_ignore_case_and_accept_aliases() {
        let bank = OfflineBank::builtin().unwrap();
        assert_eq!(bank.category("historia").unwrap().name, "Historia");
        assert_eq!(bank.category(" History ").unwrap().name, "Historia");
        assert!(bank.category("Kvantfysik för katter").is_none());
        let (category, question) = bank.find("vad heter sveriges huvudstad").unwrap();
        assert_eq!(category.name, "Geografi");
        assert_eq!(question.correct_option(), "Stockholm");
    }

    fn check(json: &str, expected: &str) {
        match OfflineBank::parse(json) {
            Err(QuizError::Bank(message)) => assert!(message.contains(expected), "{message}"),
            other => panic!("{other:?}, expected an error containing {expected:?}"),
        }
    }

    #[test]
    fn broken_banks_are_refused() {
        let question = |text: &str, difficulty: &str, options: &str| {
            format!(
                r#"{{"difficulty":"{difficulty}","text":"{text}","options":{options},"correctIndex":0,"explanation":"x","emoji":"🎯"}}"#
            )
        };
        let bank = |questions: &[String]| {
            format!(
                r#"{{"model":"m","language":"sv","fallbackEmojis":["❓"],"categories":[{{"name":"A","aliases":[],"emojis":["🎯"],"questions":[{}]}}]}}"#,
                questions.join(",")
            )
        };
        let ok_options = r#"["a","b","c","d"]"#;
        let all = |first: String| {
            vec![
                first,
                question("Två?", "medium", ok_options),
                question("Tre?", "hard", ok_options),
            ]
        };
        assert!(OfflineBank::parse(&bank(&all(question("Ett?", "easy", ok_options)))).is_ok());
        check("{", "does not parse");
        check(
            &bank(&all(question("Ett?", "easy", r#"["a","b","a","d"]"#))),
            "options 0 and 2",
        );
        check(
            &bank(&all(question("Två!", "easy", ok_options))),
            "appears twice",
        );
        check(
            &bank(&[
                question("Ett?", "easy", ok_options),
                question("Två?", "medium", ok_options),
            ]),
            "no hard questions",
        );
    }
}
