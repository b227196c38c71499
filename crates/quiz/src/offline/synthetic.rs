//! Clearly synthetic questions for categories (or languages) the bank does not cover: arithmetic
//! that is always correct, labelled with the category, so the offline provider never fails and
//! never pretends to know facts it does not have.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::rng::SplitMix64;
use crate::rules::normalize_text;
use crate::Difficulty;

/// The emoji of every synthetic question.
pub(crate) const EMOJI: &str = "🔢";
/// Draws tried before giving up on finding a text not in `avoid` (the space holds thousands).
const MAX_DRAWS: usize = 500;

/// An arithmetic expression with its operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sum {
    Add(i64, i64),
    Multiply(i64, i64),
    MultiplyAdd(i64, i64, i64),
}

impl Sum {
    fn draw(difficulty: Difficulty, rng: &mut SplitMix64) -> Self {
        match difficulty {
            Difficulty::Easy => Sum::Add(rng.between(2, 40), rng.between(2, 40)),
            Difficulty::Medium => Sum::Multiply(rng.between(3, 15), rng.between(3, 15)),
            Difficulty::Hard => {
                Sum::MultiplyAdd(rng.between(11, 40), rng.between(3, 12), rng.between(2, 99))
            }
        }
    }

    fn value(self) -> i64 {
        match self {
            Sum::Add(a, b) => a + b,
            Sum::Multiply(a, b) => a * b,
            Sum::MultiplyAdd(a, b, c) => a * b + c,
        }
    }

    fn expression(self) -> String {
        match self {
            Sum::Add(a, b) => format!("{a} + {b}"),
            Sum::Multiply(a, b) => format!("{a} × {b}"),
            Sum::MultiplyAdd(a, b, c) => format!("{a} × {b} + {c}"),
        }
    }
}

/// Whether `language` gets the Swedish wording (everything else gets English).
fn swedish(language: &str) -> bool {
    language == "sv" || language.starts_with("sv-")
}

/// A synthetic question as the model would return it, whose normalised text is not in `avoid`
/// (which it is added to). `None` only if no free text was found.
pub(crate) fn question(
    category: &str,
    difficulty: Difficulty,
    language: &str,
    rng: &mut SplitMix64,
    avoid: &mut HashSet<String>,
) -> Option<Value> {
    for _ in 0..MAX_DRAWS {
        let sum = Sum::draw(difficulty, rng);
        let answer = sum.value();
        let expression = sum.expression();
        let (text, explanation) = if swedish(language) {
            (
                format!("[Offline · {category}] Vad är {expression}?"),
                format!(
                    "{expression} = {answer}. Offline-leverantören har inga riktiga frågor om {category}, så den ger räkneuppgifter."
                ),
            )
        } else {
            (
                format!("[Offline · {category}] What is {expression}?"),
                format!(
                    "{expression} = {answer}. The offline provider has no real questions about {category}, so it asks sums."
                ),
            )
        };
        if !avoid.insert(normalize_text(&text)) {
            continue;
        }
        let mut options = [answer, answer + 1, answer - 1, answer + 10];
        rng.shuffle(&mut options);
        let correct_index = options.iter().position(|&o| o == answer).unwrap_or(0);
        return Some(json!({
            "text": text,
            "options": options.iter().map(i64::to_string).collect::<Vec<_>>(),
            "correctIndex": correct_index,
            "explanation": explanation,
            "emoji": EMOJI,
        }));
    }
    None
}

/// The value of the sum a synthetic question asks for, or `None` if `text` is not one.
pub(crate) fn evaluate(text: &str) -> Option<i64> {
    let rest = text.strip_prefix("[Offline · ")?;
    let (_, question) = rest.rsplit_once("] ")?;
    let expression = question
        .strip_prefix("Vad är ")
        .or_else(|| question.strip_prefix("What is "))?
        .strip_suffix('?')?;
    let tokens: Vec<&str> = expression.split(' ').collect();
    let number = |i: usize| tokens.get(i).and_then(|t| t.parse::<i64>().ok());
    let sum = match tokens.as_slice() {
        [_, "+", _] => Sum::Add(number(0)?, number(2)?),
        [_, "×", _] => Sum::Multiply(number(0)?, number(2)?),
        [_, "×", _, "+", _] => Sum::MultiplyAdd(number(0)?, number(2)?, number(4)?),
        _ => return None,
    };
    Some(sum.value())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Candidate;

    #[test]
    fn synthetic_questions_are_valid_correct_and_labelled() {
        let mut rng = SplitMix64::new(42);
        let mut avoid = HashSet::new();
        for difficulty in Difficulty::ALL {
            for language in ["sv", "en"] {
                for _ in 0..20 {
                    let value = question("Kvantfysik", *difficulty, language, &mut rng, &mut avoid)
                        .unwrap();
                    let candidate = Candidate::parse(&value).unwrap();
                    assert!(candidate.text.contains("Kvantfysik"), "{}", candidate.text);
                    let answer = evaluate(&candidate.text).unwrap();
                    assert_eq!(
                        candidate.options[usize::from(candidate.correct_index)],
                        answer.to_string()
                    );
                }
            }
        }
        assert_eq!(avoid.len(), 120, "no text repeats");
    }

    #[test]
    fn evaluation_reads_only_synthetic_questions() {
        for (text, expected) in [
            ("[Offline · X] Vad är 2 + 3?", Some(5)),
            ("[Offline · Kött & fisk] What is 4 × 5?", Some(20)),
            ("[Offline · X] Vad är 11 × 3 + 4?", Some(37)),
            ("[Offline · X] Vad är 2 - 3?", None),
            ("Vad är 2 + 3?", None),
            ("[Offline · X] Vad är två + 3?", None),
        ] {
            assert_eq!(evaluate(text), expected, "{text}");
        }
    }
}
