//! The prompts sent to models. The text lives in `crates/quiz/prompts/*.txt` (compiled in), with
//! `{placeholder}` fields filled here; `{{` and `}}` stand for literal braces.

use serde_json::{json, Value};

use crate::check::QuestionSettings;
use crate::{AgeGroup, Difficulty, Question, QuizError};

const GENERATION_SYSTEM: &str = include_str!("../prompts/generation.system.txt");
const GENERATION_USER: &str = include_str!("../prompts/generation.user.txt");
const VALIDATION_SYSTEM: &str = include_str!("../prompts/validation.system.txt");
const VALIDATION_USER: &str = include_str!("../prompts/validation.user.txt");
const EMOJI_SYSTEM: &str = include_str!("../prompts/emoji.system.txt");
const EMOJI_USER: &str = include_str!("../prompts/emoji.user.txt");

/// How many existing questions a generation prompt lists as "do not repeat". Enough to steer
/// the model away from the obvious ones without making the prompt long; the checker rejects
/// any duplicate regardless.
pub const MAX_AVOID_LISTED: usize = 30;

/// A system instruction and a user message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The system instruction.
    pub system: String,
    /// The user message.
    pub user: String,
}

/// Fills `{name}` placeholders in `template` from `values`. Every placeholder must have a value;
/// values are inserted as they are (not scanned for placeholders themselves).
///
/// # Errors
/// [`QuizError::Template`] for a placeholder without a value, an unclosed `{` or a stray `}`.
pub fn render(
    name: &'static str,
    template: &str,
    values: &[(&str, &str)],
) -> Result<String, QuizError> {
    let error = |reason: String| QuizError::Template {
        template: name,
        reason,
    };
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(position) = rest.find(['{', '}']) {
        out.push_str(&rest[..position]);
        let tail = &rest[position..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if tail.starts_with('}') {
            return Err(error("stray '}' (write '}}' for a literal brace)".into()));
        } else {
            let end = tail
                .find('}')
                .ok_or_else(|| error("unclosed '{' (write '{{' for a literal brace)".into()))?;
            let key = &tail[1..end];
            let value = values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .ok_or_else(|| error(format!("no value for {{{key}}}")))?;
            out.push_str(value);
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The prompt asking for `count` new questions. `avoid` lists texts already in the category
/// (at most [`MAX_AVOID_LISTED`] are included).
///
/// # Errors
/// [`QuizError::Template`] if a template is broken (a build defect; tests catch it).
pub fn generation_prompt<'a>(
    settings: &QuestionSettings,
    count: usize,
    avoid: impl IntoIterator<Item = &'a str>,
) -> Result<Prompt, QuizError> {
    let avoid: Vec<&str> = avoid.into_iter().take(MAX_AVOID_LISTED).collect();
    let avoid = if avoid.is_empty() {
        String::new()
    } else {
        let lines: Vec<String> = avoid.iter().map(|text| format!("- {text}")).collect();
        format!(
            "\nThese questions already exist. Do not repeat them or ask the same thing in other words:\n{}\n",
            lines.join("\n")
        )
    };
    let count = count.to_string();
    let user = render(
        "generation.user.txt",
        GENERATION_USER,
        &[
            ("count", &count),
            ("category", &settings.category),
            ("audience", audience(settings.age_group)),
            ("difficulty", difficulty(settings.difficulty)),
            ("language_name", language_name(&settings.language)),
            ("language", &settings.language),
            ("avoid", &avoid),
        ],
    )?;
    Ok(Prompt {
        system: render("generation.system.txt", GENERATION_SYSTEM, &[])?,
        user,
    })
}

/// The prompt asking for a verdict on each of `questions`.
///
/// # Errors
/// [`QuizError::Template`] if a template is broken.
pub fn validation_prompt(questions: &[Question]) -> Result<Prompt, QuizError> {
    let listed: Vec<Value> = questions
        .iter()
        .map(|q| {
            json!({
                "questionId": q.id.as_str(),
                "text": q.text,
                "options": q.options,
                "correctIndex": q.correct_index,
                "explanation": q.explanation,
                "category": q.category,
                "audience": audience(q.age_group),
                "difficulty": q.difficulty.as_str(),
                "language": q.language,
            })
        })
        .collect();
    let user = render(
        "validation.user.txt",
        VALIDATION_USER,
        &[
            ("count", &questions.len().to_string()),
            ("questions", &pretty(&listed)),
        ],
    )?;
    Ok(Prompt {
        system: render("validation.system.txt", VALIDATION_SYSTEM, &[])?,
        user,
    })
}

/// The prompt asking for a new emoji for each of `questions`.
///
/// # Errors
/// [`QuizError::Template`] if a template is broken.
pub fn emoji_prompt(questions: &[Question]) -> Result<Prompt, QuizError> {
    let listed: Vec<Value> = questions
        .iter()
        .map(|q| {
            json!({
                "questionId": q.id.as_str(),
                "text": q.text,
                "correctAnswer": q.correct_option(),
                "category": q.category,
                "currentEmoji": q.emoji,
            })
        })
        .collect();
    let user = render(
        "emoji.user.txt",
        EMOJI_USER,
        &[
            ("count", &questions.len().to_string()),
            ("questions", &pretty(&listed)),
        ],
    )?;
    Ok(Prompt {
        system: render("emoji.system.txt", EMOJI_SYSTEM, &[])?,
        user,
    })
}

fn pretty(values: &[Value]) -> String {
    serde_json::to_string_pretty(values).unwrap_or_default()
}

fn audience(age_group: AgeGroup) -> &'static str {
    match age_group {
        AgeGroup::Children => "children aged about 7 to 12: simple words, familiar topics",
        AgeGroup::Youth => "teenagers aged about 13 to 17",
        AgeGroup::Adults => "adults",
    }
}

fn difficulty(difficulty: Difficulty) -> &'static str {
    match difficulty {
        Difficulty::Easy => "easy: most people know the answer",
        Difficulty::Medium => "medium: needs some knowledge of the subject",
        Difficulty::Hard => "hard: for people who know the subject well",
    }
}

/// The English name of a language code, for the prompt; unknown codes are named as codes.
fn language_name(code: &str) -> &'static str {
    match code.split('-').next().unwrap_or(code) {
        "sv" => "Swedish",
        "en" => "English",
        "nb" | "nn" | "no" => "Norwegian",
        "da" => "Danish",
        "fi" => "Finnish",
        "de" => "German",
        "fr" => "French",
        "es" => "Spanish",
        "it" => "Italian",
        "nl" => "Dutch",
        "pl" => "Polish",
        "pt" => "Portuguese",
        _ => "the language whose code follows",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(template: &str, values: &[(&str, &str)], expected: Result<&str, &str>) {
        match (render("t.txt", template, values), expected) {
            (Ok(out), Ok(expected)) => assert_eq!(out, expected),
            (Err(QuizError::Template { reason, .. }), Err(expected)) => {
                assert!(reason.contains(expected), "{reason}")
            }
            (other, expected) => panic!("{other:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn rendering_fills_placeholders_strictly() {
        check("Hej {name}!", &[("name", "Sara")], Ok("Hej Sara!"));
        check("{a}{b}", &[("a", "1"), ("b", "2")], Ok("12"));
        check("{a}", &[("a", "{b}"), ("b", "x")], Ok("{b}"));
        check("{{\"json\": {n}}}", &[("n", "1")], Ok("{\"json\": 1}"));
        check("no placeholders", &[], Ok("no placeholders"));
        check("Hej {name}!", &[], Err("no value for {name}"));
        check("Hej {name", &[("name", "x")], Err("unclosed"));
        check("Hej }", &[], Err("stray"));
    }

    fn settings() -> QuestionSettings {
        QuestionSettings {
            user_id: "u".into(),
            category: "Historia".into(),
            age_group: AgeGroup::Children,
            difficulty: Difficulty::Hard,
            language: "sv".into(),
        }
    }

    #[test]
    fn every_template_renders() {
        let prompt = generation_prompt(&settings(), 7, ["vem var sveriges förste kung"]).unwrap();
        assert!(prompt.system.contains("exactly four answer options"));
        assert!(prompt.user.contains("Write 7 new quiz questions."));
        assert!(prompt.user.contains("Category: Historia"));
        assert!(prompt.user.contains("Swedish (language code \"sv\")"));
        assert!(prompt.user.contains("- vem var sveriges förste kung"));
        assert!(prompt.user.contains("children aged about 7 to 12"));
        let none = generation_prompt(&settings(), 1, []).unwrap();
        assert!(!none.user.contains("already exist"));
        let many: Vec<String> = (0..100).map(|i| format!("fråga {i}")).collect();
        let capped = generation_prompt(&settings(), 1, many.iter().map(String::as_str)).unwrap();
        assert_eq!(capped.user.matches("\n- fråga").count(), MAX_AVOID_LISTED);

        let question = crate::Question::from_new(
            "q_1_abcdef".parse().unwrap(),
            crate::NewQuestion {
                user_id: "u".into(),
                text: "Vad är 2 + 2?".into(),
                options: ["3".into(), "4".into(), "5".into(), "22".into()],
                correct_index: 1,
                explanation: "2 + 2 = 4.".into(),
                emoji: "🔢".into(),
                category: "Matte".into(),
                age_group: AgeGroup::Children,
                difficulty: Difficulty::Easy,
                language: "sv".into(),
                provenance: crate::Provenance {
                    task_id: None,
                    provider: "offline".into(),
                    model: "m".into(),
                },
            },
            1,
        );
        let validation = validation_prompt(std::slice::from_ref(&question)).unwrap();
        assert!(validation.user.contains("\"questionId\": \"q_1_abcdef\""));
        assert!(validation
            .system
            .contains("exactly one verdict per question"));
        let emoji = emoji_prompt(&[question]).unwrap();
        assert!(emoji.user.contains("\"currentEmoji\": \"🔢\""));
        assert!(emoji.user.contains("\"correctAnswer\": \"4\""));
    }
}
