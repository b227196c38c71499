//! The offline responder: answers generation, validation and emoji requests without a model,
//! from the built-in bank, deterministically from the seed the offline provider passes.

mod bank;
mod rng;
mod synthetic;

use std::collections::HashSet;

use ai_providers::{JsonRequest, OfflineResponder, ProviderError, OFFLINE};
use serde_json::{json, Value};

use crate::hints::{GenerationHints, Hints, ReviewHints, ReviewItem};
use crate::rules::{self, normalize_text};
use crate::QuizError;
use bank::{BankQuestion, OfflineBank};
use rng::SplitMix64;

/// Answers quiz requests offline. Generation serves real questions from the bank for its
/// categories (Historia, Geografi, Vetenskap, Sport, Natur, Musik; Swedish), shuffling the
/// options, and clearly labelled arithmetic questions for anything else; validation checks
/// answers against the bank (and the arithmetic), and says when it cannot judge a fact; emoji
/// requests get an emoji that fits the question's category.
#[derive(Debug, Clone)]
pub struct OfflineQuizResponder {
    bank: OfflineBank,
}

impl OfflineQuizResponder {
    /// A responder over the built-in bank.
    ///
    /// # Errors
    /// [`QuizError::Bank`] if the compiled-in bank is broken (the crate's tests prevent that).
    pub fn new() -> Result<Self, QuizError> {
        Ok(Self {
            bank: OfflineBank::builtin()?,
        })
    }

    /// The bank's model label, e.g. `offline-bank-v1`.
    pub fn bank_model(&self) -> &str {
        self.bank.model()
    }

    fn generate(&self, hints: GenerationHints, seed: u64) -> Value {
        let mut rng = SplitMix64::new(seed);
        let mut avoid: HashSet<String> = hints.avoid.into_iter().collect();
        let mut questions = Vec::with_capacity(hints.count);
        let bank_speaks = hints.language == self.bank.language()
            || hints
                .language
                .starts_with(&format!("{}-", self.bank.language()));
        if let Some(category) = self.bank.category(&hints.category).filter(|_| bank_speaks) {
            let fresh = |q: &&BankQuestion| !avoid.contains(&normalize_text(&q.text));
            let (mut wanted, mut others): (Vec<&BankQuestion>, Vec<&BankQuestion>) = category
                .questions
                .iter()
                .filter(fresh)
                .partition(|q| q.difficulty == hints.difficulty);
            rng.shuffle(&mut wanted);
            rng.shuffle(&mut others);
            // Questions of the asked difficulty first; the rest of the category before falling
            // back to arithmetic.
            for question in wanted.into_iter().chain(others).take(hints.count) {
                avoid.insert(normalize_text(&question.text));
                questions.push(shuffled(question, &mut rng));
            }
        }
        while questions.len() < hints.count {
            match synthetic::question(
                &hints.category,
                hints.difficulty,
                &hints.language,
                &mut rng,
                &mut avoid,
            ) {
                Some(question) => questions.push(question),
                None => break,
            }
        }
        json!({ "questions": questions })
    }

    fn validate(&self, hints: ReviewHints) -> Value {
        let verdicts: Vec<Value> = hints
            .questions
            .iter()
            .map(|item| {
                let (valid, notes) = self.verdict(item);
                json!({"questionId": item.question_id, "valid": valid, "notes": notes})
            })
            .collect();
        json!({ "verdicts": verdicts })
    }

    fn verdict(&self, item: &ReviewItem) -> (bool, String) {
        let swedish = item.language.starts_with("sv");
        let structure = rules::check_options(&item.options)
            .and_then(|()| rules::check_correct_index(i64::from(item.correct_index)).map(|_| ()));
        if let Err(defect) = structure {
            return (false, defect.to_string());
        }
        let marked = item
            .options
            .get(usize::from(item.correct_index))
            .map_or("", String::as_str);
        let expected = if let Some((_, question)) = self.bank.find(&item.text) {
            Some(question.correct_option().to_owned())
        } else {
            synthetic::evaluate(&item.text).map(|value| value.to_string())
        };
        match (expected, swedish) {
            (Some(expected), true) if normalize_text(&expected) == normalize_text(marked) => (
                true,
                format!("Rätt svar \"{marked}\" stämmer med offline-bankens facit."),
            ),
            (Some(expected), false) if normalize_text(&expected) == normalize_text(marked) => (
                true,
                format!("The marked answer \"{marked}\" matches the offline answer key."),
            ),
            (Some(expected), true) => (
                false,
                format!("Markerat svar \"{marked}\" är fel; enligt offline-bankens facit är rätt svar \"{expected}\"."),
            ),
            (Some(expected), false) => (
                false,
                format!("The marked answer \"{marked}\" is wrong; the offline answer key says \"{expected}\"."),
            ),
            (None, true) => (
                true,
                "Offline-leverantören kan inte faktagranska frågor utanför sin egen bank; bara formen är kontrollerad.".to_owned(),
            ),
            (None, false) => (
                true,
                "The offline provider cannot fact-check questions outside its own bank; only the form was checked.".to_owned(),
            ),
        }
    }

    fn emojis(&self, hints: ReviewHints, seed: u64) -> Value {
        let mut rng = SplitMix64::new(seed);
        let emojis: Vec<Value> = hints
            .questions
            .iter()
            .map(|item| {
                let found = self.bank.find(&item.text);
                let category = found
                    .map(|(category, _)| category)
                    .or_else(|| self.bank.category(&item.category));
                let mut pool: Vec<&str> = Vec::new();
                if let Some((_, question)) = found {
                    pool.push(&question.emoji);
                }
                let general = category.map_or(self.bank.fallback_emojis(), |c| &c.emojis);
                let start = rng.below(general.len());
                // Rotating from a seeded start varies the pick between questions and runs.
                pool.extend(
                    general[start..]
                        .iter()
                        .chain(&general[..start])
                        .map(String::as_str),
                );
                pool.extend(self.bank.fallback_emojis().iter().map(String::as_str));
                let emoji = pool
                    .into_iter()
                    .find(|emoji| *emoji != item.current_emoji)
                    .unwrap_or(synthetic::EMOJI);
                json!({"questionId": item.question_id, "emoji": emoji})
            })
            .collect();
        json!({ "emojis": emojis })
    }
}

/// A bank question as the model would return it, with its options in a seeded order.
fn shuffled(question: &BankQuestion, rng: &mut SplitMix64) -> Value {
    let mut order = [0usize, 1, 2, 3];
    rng.shuffle(&mut order);
    let options: Vec<&str> = order
        .iter()
        .filter_map(|&i| question.options.get(i).map(String::as_str))
        .collect();
    let correct_index = order
        .iter()
        .position(|&i| i == usize::from(question.correct_index))
        .unwrap_or(0);
    json!({
        "text": question.text,
        "options": options,
        "correctIndex": correct_index,
        "explanation": question.explanation,
        "emoji": question.emoji,
    })
}

impl OfflineResponder for OfflineQuizResponder {
    fn respond(&self, request: &JsonRequest, seed: u64) -> Result<Value, ProviderError> {
        let hints: Hints = serde_json::from_value(request.hints.clone()).map_err(|e| {
            ProviderError::Permanent {
                provider: OFFLINE.to_owned(),
                message: format!(
                    "the request carries no quiz hints the offline provider understands: {e}"
                ),
            }
        })?;
        Ok(match hints {
            Hints::Generation(hints) => self.generate(hints, seed),
            Hints::Validation(hints) => self.validate(hints),
            Hints::Emoji(hints) => self.emojis(hints, seed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::QuestionChecker;
    use crate::hints::ReviewItem;
    use crate::{AgeGroup, Difficulty};

    fn responder() -> OfflineQuizResponder {
        OfflineQuizResponder::new().unwrap()
    }

    fn generation(
        category: &str,
        difficulty: Difficulty,
        count: usize,
        avoid: Vec<String>,
    ) -> JsonRequest {
        JsonRequest::new("s", "p", "quiz_questions", json!({"type": "object"})).with_hints(
            Hints::Generation(GenerationHints {
                count,
                category: category.into(),
                age_group: AgeGroup::Adults,
                difficulty,
                language: "sv".into(),
                avoid,
            })
            .to_json(),
        )
    }

    /// Generates and checks: every item must pass the strict checker.
    fn check(
        category: &str,
        difficulty: Difficulty,
        count: usize,
        seed: u64,
    ) -> Vec<crate::check::Candidate> {
        let answer = responder()
            .respond(&generation(category, difficulty, count, vec![]), seed)
            .unwrap();
        let checked = QuestionChecker::default().check(&answer, count);
        assert!(checked.rejected.is_empty(), "{:?}", checked.rejected);
        assert_eq!(checked.accepted.len(), count);
        checked.accepted
    }

    #[test]
    fn known_categories_get_real_questions_of_the_asked_difficulty() {
        let bank = OfflineBank::builtin().unwrap();
        for category in [
            "Historia",
            "Geografi",
            "Vetenskap",
            "Sport",
            "Natur",
            "Musik",
        ] {
            for difficulty in Difficulty::ALL {
                let questions = check(category, *difficulty, 5, 1);
                for question in questions {
                    let (found, original) = bank.find(&question.text).unwrap();
                    assert_eq!(found.name, category);
                    assert_eq!(original.difficulty, *difficulty);
                    assert_eq!(
                        question.options[usize::from(question.correct_index)],
                        original.correct_option(),
                        "shuffling keeps the right answer right"
                    );
                }
            }
        }
    }

    #[test]
    fn answers_are_deterministic_per_seed_and_vary_across_seeds() {
        let request = generation("Historia", Difficulty::Medium, 4, vec![]);
        let a = responder().respond(&request, 11).unwrap();
        assert_eq!(a, responder().respond(&request, 11).unwrap());
        let different = (12..20).any(|seed| responder().respond(&request, seed).unwrap() != a);
        assert!(different);
    }

    #[test]
    fn a_large_request_uses_the_whole_category_then_arithmetic() {
        let questions = check("Sport", Difficulty::Easy, 25, 3);
        let synthetic = questions
            .iter()
            .filter(|q| q.text.starts_with("[Offline"))
            .count();
        assert_eq!(synthetic, 25 - 18, "all 18 Sport questions first");
    }

    #[test]
    fn known_texts_are_avoided() {
        let bank = OfflineBank::builtin().unwrap();
        let avoid: Vec<String> = bank
            .category("Musik")
            .unwrap()
            .questions
            .iter()
            .filter(|q| q.difficulty == Difficulty::Hard)
            .map(|q| normalize_text(&q.text))
            .collect();
        let answer = responder()
            .respond(&generation("Musik", Difficulty::Hard, 3, avoid.clone()), 5)
            .unwrap();
        let checked = QuestionChecker::new(avoid.into_iter().collect()).check(&answer, 3);
        assert_eq!(checked.accepted.len(), 3, "{:?}", checked.rejected);
    }

    #[test]
    fn unknown_categories_and_languages_get_labelled_arithmetic() {
        for question in check("Kvantfysik för katter", Difficulty::Hard, 10, 9) {
            assert!(
                question.text.contains("Kvantfysik för katter"),
                "{}",
                question.text
            );
        }
        let mut request = generation("Historia", Difficulty::Easy, 2, vec![]);
        request.hints["language"] = json!("en");
        let answer = responder().respond(&request, 1).unwrap();
        assert!(answer["questions"][0]["text"]
            .as_str()
            .unwrap()
            .contains("What is"));
    }

    fn review(items: Vec<ReviewItem>, task: &str) -> JsonRequest {
        let hints = ReviewHints { questions: items };
        let hints = if task == "validation" {
            Hints::Validation(hints)
        } else {
            Hints::Emoji(hints)
        };
        JsonRequest::new("s", "p", "x", json!({"type": "object"})).with_hints(hints.to_json())
    }

    fn item(id: &str, text: &str, options: [&str; 4], correct_index: u8) -> ReviewItem {
        ReviewItem {
            question_id: id.into(),
            text: text.into(),
            options: options.iter().map(|s| (*s).to_owned()).collect(),
            correct_index,
            category: "Geografi".into(),
            language: "sv".into(),
            current_emoji: "🏙️".into(),
        }
    }

    #[test]
    fn validation_checks_against_the_answer_key() {
        let answer = responder()
            .respond(
                &review(
                    vec![
                        item(
                            "q_1_aaaaaa",
                            "Vad heter Sveriges huvudstad?",
                            ["Malmö", "Stockholm", "Lund", "Kiruna"],
                            1,
                        ),
                        item(
                            "q_2_aaaaaa",
                            "Vad heter Sveriges huvudstad?",
                            ["Malmö", "Stockholm", "Lund", "Kiruna"],
                            0,
                        ),
                        item(
                            "q_3_aaaaaa",
                            "[Offline · X] Vad är 2 + 3?",
                            ["5", "6", "4", "15"],
                            0,
                        ),
                        item(
                            "q_4_aaaaaa",
                            "[Offline · X] Vad är 2 + 3?",
                            ["5", "6", "4", "15"],
                            1,
                        ),
                        item("q_5_aaaaaa", "Vem är bäst?", ["Jag", "Du", "Hon", "Han"], 2),
                        item("q_6_aaaaaa", "Trasig?", ["a", "a", "b", "c"], 0),
                    ],
                    "validation",
                ),
                0,
            )
            .unwrap();
        let valid: Vec<bool> = answer["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["valid"].as_bool().unwrap())
            .collect();
        assert_eq!(valid, [true, false, true, false, true, false]);
        assert_eq!(answer["verdicts"][1]["questionId"], "q_2_aaaaaa");
        assert!(answer["verdicts"][1]["notes"]
            .as_str()
            .unwrap()
            .contains("\"Stockholm\""));
        assert!(answer["verdicts"][4]["notes"]
            .as_str()
            .unwrap()
            .contains("kan inte faktagranska"));
    }

    #[test]
    fn emojis_change_and_fit_the_category() {
        let answer = responder()
            .respond(
                &review(
                    vec![
                        item(
                            "q_1_aaaaaa",
                            "Vad heter Sveriges huvudstad?",
                            ["Malmö", "Stockholm", "Lund", "Kiruna"],
                            1,
                        ),
                        item("q_2_aaaaaa", "Okänd fråga?", ["a", "b", "c", "d"], 0),
                    ],
                    "emoji",
                ),
                4,
            )
            .unwrap();
        for entry in answer["emojis"].as_array().unwrap() {
            let emoji = entry["emoji"].as_str().unwrap();
            assert_ne!(emoji, "🏙️", "the current emoji is never returned");
            rules::check_emoji(emoji).unwrap();
        }
        let geografi = &OfflineBank::builtin().unwrap();
        let pool = &geografi.category("Geografi").unwrap().emojis;
        assert!(pool
            .iter()
            .any(|e| e == answer["emojis"][1]["emoji"].as_str().unwrap()));
    }

    #[test]
    fn requests_without_hints_are_refused() {
        let request = JsonRequest::new("s", "p", "x", json!({"type": "object"}));
        assert!(matches!(
            responder().respond(&request, 0),
            Err(ProviderError::Permanent { .. })
        ));
    }
}
