//! Strict checking of what a model returned for a generation request: every item is parsed into a
//! candidate question or dropped with a reason, and duplicates (within the task and of questions
//! already in the category) are rejected.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::rules::{self, normalize_text, Defect};
use crate::{NewQuestion, Provenance};

/// A question the model wrote that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The question, trimmed.
    pub text: String,
    /// The four options, trimmed.
    pub options: [String; 4],
    /// Which option is right.
    pub correct_index: u8,
    /// Why, trimmed.
    pub explanation: String,
    /// The emoji, trimmed.
    pub emoji: String,
}

impl Candidate {
    /// Parses and checks one item of the model's `questions` array.
    ///
    /// # Errors
    /// The first rule the item breaks.
    pub fn parse(item: &Value) -> Result<Self, Defect> {
        let object = item.as_object().ok_or(Defect::NotAnObject)?;
        let text = string_field(object, "text")?.trim().to_owned();
        rules::check_text(&text)?;
        let options = match object.get("options") {
            None | Some(Value::Null) => return Err(Defect::MissingField("options")),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(|s| s.trim().to_owned()))
                .collect::<Option<Vec<String>>>()
                .ok_or(Defect::WrongType {
                    field: "options",
                    expected: "an array of strings",
                })?,
            Some(_) => {
                return Err(Defect::WrongType {
                    field: "options",
                    expected: "an array of strings",
                })
            }
        };
        rules::check_options(&options)?;
        let correct_index = match object.get("correctIndex") {
            None | Some(Value::Null) => return Err(Defect::MissingField("correctIndex")),
            Some(value) => match (value.as_i64(), value.as_f64()) {
                (Some(index), _) => rules::check_correct_index(index)?,
                // A float such as 1.0 is a sloppy integer; 1.5 is not.
                (None, Some(float)) if float.fract() == 0.0 && float.abs() < 1e9 => {
                    rules::check_correct_index(float as i64)?
                }
                _ => {
                    return Err(Defect::WrongType {
                        field: "correctIndex",
                        expected: "an integer",
                    })
                }
            },
        };
        let explanation = string_field(object, "explanation")?.trim().to_owned();
        rules::check_explanation(&explanation)?;
        let emoji = match object.get("emoji") {
            None | Some(Value::Null) => return Err(Defect::MissingEmoji),
            Some(_) => string_field(object, "emoji")?.trim().to_owned(),
        };
        rules::check_emoji(&emoji)?;
        let options: [String; 4] = options
            .try_into()
            .map_err(|rest: Vec<String>| Defect::WrongOptionCount(rest.len()))?;
        Ok(Self {
            text,
            options,
            correct_index,
            explanation,
            emoji,
        })
    }

    /// The question as the model's item shape (`text`, `options`, `correctIndex`,
    /// `explanation`, `emoji`), trimmed: what a live stream shows and an event log keeps.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "text": self.text,
            "options": self.options,
            "correctIndex": self.correct_index,
            "explanation": self.explanation,
            "emoji": self.emoji,
        })
    }

    /// The question to store, with the task's settings and provenance.
    pub fn into_new_question(
        self,
        settings: &QuestionSettings,
        provenance: Provenance,
    ) -> NewQuestion {
        NewQuestion {
            user_id: settings.user_id.clone(),
            text: self.text,
            options: self.options,
            correct_index: self.correct_index,
            explanation: self.explanation,
            emoji: self.emoji,
            category: settings.category.clone(),
            age_group: settings.age_group,
            difficulty: settings.difficulty,
            language: settings.language.clone(),
            provenance,
        }
    }
}

/// What every question of one generation task shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionSettings {
    /// The owner.
    pub user_id: String,
    /// The category.
    pub category: String,
    /// The age group.
    pub age_group: crate::AgeGroup,
    /// The difficulty.
    pub difficulty: crate::Difficulty,
    /// The language code.
    pub language: String,
}

fn string_field<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, Defect> {
    match object.get(field) {
        None | Some(Value::Null) => Err(Defect::MissingField(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Defect::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// Why one item (or the whole response) was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The item's 1-based position in the response; `None` when the response as a whole is
    /// unusable.
    pub position: Option<usize>,
    /// The item's question text, when it had one (shortened).
    pub text: Option<String>,
    /// What was wrong.
    pub defect: Defect,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.position, &self.text) {
            (None, _) => write!(f, "response: {}", self.defect),
            (Some(position), Some(text)) => {
                write!(f, "question {position} ({text:?}): {}", self.defect)
            }
            (Some(position), None) => write!(f, "question {position}: {}", self.defect),
        }
    }
}

/// The outcome of checking one response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checked {
    /// Valid, new questions, in the model's order.
    pub accepted: Vec<Candidate>,
    /// Dropped items with their reasons.
    pub rejected: Vec<Rejection>,
    /// Valid items beyond what was asked for, ignored.
    pub surplus: usize,
}

/// What became of one item of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid, new question.
    Accepted(Candidate),
    /// Dropped, with the reason.
    Rejected(Rejection),
    /// Valid, but beyond what was asked for: ignored.
    Surplus,
}

/// Checks responses for one task, remembering what it accepted so a later round cannot repeat
/// an earlier one.
#[derive(Debug, Clone, Default)]
pub struct QuestionChecker {
    existing: HashSet<String>,
    accepted: HashSet<String>,
}

/// The longest question text quoted in a rejection.
const QUOTE_CHARS: usize = 60;

impl QuestionChecker {
    /// A checker that rejects anything whose normalised text is in `existing` (see
    /// [`normalize_text`]).
    pub fn new(existing: HashSet<String>) -> Self {
        Self {
            existing,
            accepted: HashSet::new(),
        }
    }

    /// The normalised texts of everything accepted so far and everything that existed, for
    /// telling a model what not to repeat.
    pub fn known_texts(&self) -> impl Iterator<Item = &str> {
        self.existing
            .iter()
            .chain(&self.accepted)
            .map(String::as_str)
    }

    /// Checks the item at zero-based `index` of a response, of which `accepted` items were
    /// accepted already and at most `want` may be: the same rules [`QuestionChecker::check`]
    /// applies to a whole response, for an answer read item by item as it streams in.
    pub fn check_item(
        &mut self,
        index: usize,
        item: &Value,
        accepted: usize,
        want: usize,
    ) -> Verdict {
        let text = item
            .get("text")
            .and_then(Value::as_str)
            .map(|text| text.trim().chars().take(QUOTE_CHARS).collect::<String>())
            .filter(|text| !text.is_empty());
        let reject = |defect| {
            Verdict::Rejected(Rejection {
                position: Some(index + 1),
                text: text.clone(),
                defect,
            })
        };
        let candidate = match Candidate::parse(item) {
            Ok(candidate) => candidate,
            Err(defect) => return reject(defect),
        };
        let key = normalize_text(&candidate.text);
        if self.existing.contains(&key) {
            reject(Defect::DuplicateOfExisting)
        } else if self.accepted.contains(&key) {
            reject(Defect::DuplicateInBatch)
        } else if accepted >= want {
            Verdict::Surplus
        } else {
            self.accepted.insert(key);
            Verdict::Accepted(candidate)
        }
    }

    /// Checks a response of the form `{"questions":[...]}`, accepting at most `want` items.
    pub fn check(&mut self, response: &Value, want: usize) -> Checked {
        let mut checked = Checked::default();
        let Some(items) = response.get("questions").and_then(Value::as_array) else {
            checked.rejected.push(Rejection {
                position: None,
                text: None,
                defect: if response.get("questions").is_some() {
                    Defect::WrongType {
                        field: "questions",
                        expected: "an array",
                    }
                } else {
                    Defect::MissingField("questions")
                },
            });
            return checked;
        };
        for (index, item) in items.iter().enumerate() {
            match self.check_item(index, item, checked.accepted.len(), want) {
                Verdict::Accepted(candidate) => checked.accepted.push(candidate),
                Verdict::Rejected(rejection) => checked.rejected.push(rejection),
                Verdict::Surplus => checked.surplus += 1,
            }
        }
        checked
    }
}

/// The failure message when too few questions survived, e.g. "Only 7 of 10 questions were valid
/// after 3 attempts: question 2 ("..."): expected 4 options, got 3; ...". At most `MAX_LISTED`
/// reasons are spelled out.
pub fn shortfall_message(
    valid: usize,
    wanted: usize,
    attempts: usize,
    reasons: &[Rejection],
) -> String {
    const MAX_LISTED: usize = 5;
    let listed: Vec<String> = reasons
        .iter()
        .take(MAX_LISTED)
        .map(ToString::to_string)
        .collect();
    let mut message = format!(
        "Only {valid} of {wanted} questions were valid after {attempts} attempts: {}",
        listed.join("; ")
    );
    if reasons.len() > MAX_LISTED {
        message.push_str(&format!(" (and {} more)", reasons.len() - MAX_LISTED));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(text: &str) -> Value {
        json!({
            "text": text,
            "options": ["Stockholm", "Göteborg", "Malmö", "Uppsala"],
            "correctIndex": 0,
            "explanation": "Stockholm är Sveriges huvudstad.",
            "emoji": "🏙️"
        })
    }

    fn with(mut value: Value, field: &str, new: Value) -> Value {
        value[field] = new;
        value
    }

    fn without(mut value: Value, field: &str) -> Value {
        if let Value::Object(object) = &mut value {
            object.remove(field);
        }
        value
    }

    /// Checks `items` against a checker that knows `existing`, asking for `want`; `expected`
    /// lists per item `Ok(())` for accepted or the defect it was dropped for.
    fn check(existing: &[&str], items: Vec<Value>, want: usize, expected: &[Result<(), Defect>]) {
        let existing = existing.iter().map(|t| normalize_text(t)).collect();
        let mut checker = QuestionChecker::new(existing);
        let checked = checker.check(&json!({ "questions": items }), want);
        let accepted = expected.iter().filter(|e| e.is_ok()).count();
        assert_eq!(checked.accepted.len(), accepted, "{checked:?}");
        let defects: Vec<(usize, Defect)> = expected
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.clone().err().map(|d| (i + 1, d)))
            .collect();
        let got: Vec<(usize, Defect)> = checked
            .rejected
            .iter()
            .map(|r| (r.position.unwrap_or(0), r.defect.clone()))
            .collect();
        assert_eq!(got, defects);
    }

    #[test]
    fn valid_items_are_accepted_and_trimmed() {
        check(
            &[],
            vec![item("Vad heter Sveriges huvudstad?")],
            10,
            &[Ok(())],
        );
        let mut checker = QuestionChecker::default();
        let checked = checker.check(
            &json!({"questions": [with(item("  Vad heter Sveriges huvudstad?  "), "emoji", json!(" 🏙️ "))]}),
            1,
        );
        assert_eq!(checked.accepted[0].text, "Vad heter Sveriges huvudstad?");
        assert_eq!(checked.accepted[0].emoji, "🏙️");
    }

    #[test]
    fn broken_items_are_dropped_with_their_reason() {
        let q = || item("Vad heter Sveriges huvudstad?");
        check(
            &[],
            vec![
                with(q(), "options", json!(["a", "b", "c"])),
                with(q(), "options", json!(["a", "b", "c", "d", "e"])),
                with(q(), "options", json!(["a", "b", "a", "d"])),
                with(q(), "options", json!(["a", "", "c", "d"])),
                with(q(), "options", json!(["a", 2, "c", "d"])),
                with(q(), "correctIndex", json!(4)),
                with(q(), "correctIndex", json!(-1)),
                with(q(), "correctIndex", json!("1")),
                with(q(), "correctIndex", json!(1.5)),
                with(q(), "text", json!("   ")),
                without(q(), "text"),
                without(q(), "emoji"),
                with(q(), "emoji", json!("")),
                with(q(), "emoji", json!("city")),
                with(q(), "explanation", json!("")),
                json!("not an object"),
            ],
            10,
            &[
                Err(Defect::WrongOptionCount(3)),
                Err(Defect::WrongOptionCount(5)),
                Err(Defect::DuplicateOptions {
                    first: 0,
                    second: 2,
                }),
                Err(Defect::EmptyOption(1)),
                Err(Defect::WrongType {
                    field: "options",
                    expected: "an array of strings",
                }),
                Err(Defect::IndexOutOfRange(4)),
                Err(Defect::IndexOutOfRange(-1)),
                Err(Defect::WrongType {
                    field: "correctIndex",
                    expected: "an integer",
                }),
                Err(Defect::WrongType {
                    field: "correctIndex",
                    expected: "an integer",
                }),
                Err(Defect::EmptyText),
                Err(Defect::MissingField("text")),
                Err(Defect::MissingEmoji),
                Err(Defect::MissingEmoji),
                Err(Defect::InvalidEmoji("city".into())),
                Err(Defect::EmptyExplanation),
                Err(Defect::NotAnObject),
            ],
        );
    }

    #[test]
    fn duplicates_within_the_batch_and_of_existing_questions_are_rejected() {
        check(
            &["Vem skrev Röda rummet?"],
            vec![
                item("Vad heter Sveriges huvudstad?"),
                item("vad heter sveriges  huvudstad"),
                item("VEM skrev 'Röda rummet'?"),
                item("Vilken är Sveriges största stad?"),
            ],
            10,
            &[
                Ok(()),
                Err(Defect::DuplicateInBatch),
                Err(Defect::DuplicateOfExisting),
                Ok(()),
            ],
        );
    }

    #[test]
    fn a_later_round_cannot_repeat_an_earlier_one() {
        let mut checker = QuestionChecker::default();
        let first = checker.check(&json!({"questions": [item("Fråga ett?")]}), 5);
        assert_eq!(first.accepted.len(), 1);
        let second = checker.check(
            &json!({"questions": [item("Fråga ett!"), item("Fråga två?")]}),
            5,
        );
        assert_eq!(second.accepted.len(), 1);
        assert_eq!(second.rejected[0].defect, Defect::DuplicateInBatch);
        assert_eq!(checker.known_texts().count(), 2);
    }

    #[test]
    fn items_beyond_the_wanted_count_are_surplus() {
        let mut checker = QuestionChecker::default();
        let checked = checker.check(
            &json!({"questions": [item("Ett?"), item("Två?"), item("Tre?")]}),
            2,
        );
        assert_eq!((checked.accepted.len(), checked.surplus), (2, 1));
    }

    #[test]
    fn an_unusable_response_is_one_rejection() {
        for (response, defect) in [
            (json!({}), Defect::MissingField("questions")),
            (
                json!({"questions": {}}),
                Defect::WrongType {
                    field: "questions",
                    expected: "an array",
                },
            ),
            (json!([]), Defect::MissingField("questions")),
        ] {
            let checked = QuestionChecker::default().check(&response, 3);
            assert_eq!(checked.accepted.len(), 0);
            assert_eq!(
                checked.rejected,
                vec![Rejection {
                    position: None,
                    text: None,
                    defect
                }]
            );
        }
    }

    #[test]
    fn the_shortfall_message_reads_well() {
        let reasons: Vec<Rejection> = (1..=7)
            .map(|i| Rejection {
                position: Some(i),
                text: Some(format!("Fråga {i}?")),
                defect: Defect::WrongOptionCount(3),
            })
            .collect();
        let message = shortfall_message(7, 10, 3, &reasons);
        assert!(
            message.starts_with(
                "Only 7 of 10 questions were valid after 3 attempts: question 1 (\"Fråga 1?\"): expected 4 options, got 3; "
            ),
            "{message}"
        );
        assert!(message.ends_with(" (and 2 more)"), "{message}");
    }
}
