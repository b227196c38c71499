//! The rules a question must satisfy, shared by stored questions and by the checking of model
//! output, so a question the model returns is accepted exactly when the store would accept it.

use std::fmt;

/// Longest question text, in characters.
pub const MAX_TEXT_CHARS: usize = 500;
/// Longest answer option, in characters.
pub const MAX_OPTION_CHARS: usize = 200;
/// Longest explanation, in characters.
pub const MAX_EXPLANATION_CHARS: usize = 1000;
/// Longest emoji string, in characters (a ZWJ family sequence is about 11).
pub const MAX_EMOJI_CHARS: usize = 16;
/// Longest category name, in characters.
pub const MAX_CATEGORY_CHARS: usize = 100;
/// Longest validation note, in characters.
pub const MAX_NOTES_CHARS: usize = 2000;
/// Every question has exactly this many answer options.
pub const OPTION_COUNT: usize = 4;

/// One way a question (or a model's attempt at one) breaks the rules. Its `Display` is the
/// reason shown to users when an item is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Defect {
    /// The item is not a JSON object.
    NotAnObject,
    /// A required field is absent.
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    WrongType {
        /// The field.
        field: &'static str,
        /// What it should have been.
        expected: &'static str,
    },
    /// The question text is empty.
    EmptyText,
    /// A text field is longer than allowed.
    TooLong {
        /// The field.
        field: &'static str,
        /// The limit in characters.
        max: usize,
    },
    /// Not exactly four options.
    WrongOptionCount(usize),
    /// The option at this index is empty.
    EmptyOption(usize),
    /// Two options say the same thing (compared normalised).
    DuplicateOptions {
        /// The first of the pair.
        first: usize,
        /// The second of the pair.
        second: usize,
    },
    /// The correct index does not point at one of the four options.
    IndexOutOfRange(i64),
    /// The explanation is empty.
    EmptyExplanation,
    /// The emoji is empty.
    MissingEmoji,
    /// The emoji field holds something that is not a short emoji.
    InvalidEmoji(String),
    /// The same question appears earlier in the same batch.
    DuplicateInBatch,
    /// The category already has this question.
    DuplicateOfExisting,
    /// The provider's answer as a whole was unusable (malformed JSON, text instead of JSON);
    /// the text says why.
    UnusableResponse(String),
}

impl Defect {
    /// The API name of the field the defect is about.
    pub fn field(&self) -> &'static str {
        match self {
            Defect::NotAnObject | Defect::DuplicateInBatch | Defect::DuplicateOfExisting => {
                "question"
            }
            Defect::UnusableResponse(_) => "response",
            Defect::MissingField(field)
            | Defect::WrongType { field, .. }
            | Defect::TooLong { field, .. } => field,
            Defect::EmptyText => "text",
            Defect::WrongOptionCount(_)
            | Defect::EmptyOption(_)
            | Defect::DuplicateOptions { .. } => "options",
            Defect::IndexOutOfRange(_) => "correctIndex",
            Defect::EmptyExplanation => "explanation",
            Defect::MissingEmoji | Defect::InvalidEmoji(_) => "emoji",
        }
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Defect::NotAnObject => f.write_str("not a JSON object"),
            Defect::MissingField(field) => write!(f, "missing {field}"),
            Defect::WrongType { field, expected } => write!(f, "{field} is not {expected}"),
            Defect::EmptyText => f.write_str("empty question text"),
            Defect::TooLong { field, max } => write!(f, "{field} is longer than {max} characters"),
            Defect::WrongOptionCount(count) => {
                write!(f, "expected {OPTION_COUNT} options, got {count}")
            }
            Defect::EmptyOption(index) => write!(f, "option {index} is empty"),
            Defect::DuplicateOptions { first, second } => {
                write!(f, "options {first} and {second} are the same")
            }
            Defect::IndexOutOfRange(index) => {
                write!(f, "correctIndex {index} is out of range 0..=3")
            }
            Defect::EmptyExplanation => f.write_str("empty explanation"),
            Defect::MissingEmoji => f.write_str("missing emoji"),
            Defect::InvalidEmoji(emoji) => write!(f, "{emoji:?} is not a short emoji"),
            Defect::DuplicateInBatch => f.write_str("duplicate of another question in this batch"),
            Defect::DuplicateOfExisting => {
                f.write_str("duplicate of an existing question in the category")
            }
            Defect::UnusableResponse(reason) => f.write_str(reason),
        }
    }
}

/// The form two texts are compared in to detect duplicates: lowercase, punctuation and symbols
/// removed, runs of whitespace collapsed to one space, trimmed.
pub fn normalize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if c.is_alphanumeric() {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Checks a question text: non-empty after trimming and not too long.
pub fn check_text(text: &str) -> Result<(), Defect> {
    if text.trim().is_empty() {
        return Err(Defect::EmptyText);
    }
    check_len("text", text, MAX_TEXT_CHARS)
}

/// Checks the answer options: exactly four, each non-empty and not too long, no two the same
/// once normalised ("Paris" and "paris." count as the same answer).
pub fn check_options<S: AsRef<str>>(options: &[S]) -> Result<(), Defect> {
    if options.len() != OPTION_COUNT {
        return Err(Defect::WrongOptionCount(options.len()));
    }
    let mut normalized: Vec<String> = Vec::with_capacity(OPTION_COUNT);
    for (index, option) in options.iter().enumerate() {
        let option = option.as_ref();
        let key = normalize_text(option);
        // An option of only punctuation ("?") is as useless as an empty one.
        if option.trim().is_empty() || key.is_empty() {
            return Err(Defect::EmptyOption(index));
        }
        check_len("options", option, MAX_OPTION_CHARS)?;
        if let Some(first) = normalized.iter().position(|seen| *seen == key) {
            return Err(Defect::DuplicateOptions {
                first,
                second: index,
            });
        }
        normalized.push(key);
    }
    Ok(())
}

/// Checks that the correct index points at one of the four options.
pub fn check_correct_index(index: i64) -> Result<u8, Defect> {
    match u8::try_from(index) {
        Ok(index) if usize::from(index) < OPTION_COUNT => Ok(index),
        _ => Err(Defect::IndexOutOfRange(index)),
    }
}

/// Checks an explanation: non-empty and not too long.
pub fn check_explanation(explanation: &str) -> Result<(), Defect> {
    if explanation.trim().is_empty() {
        return Err(Defect::EmptyExplanation);
    }
    check_len("explanation", explanation, MAX_EXPLANATION_CHARS)
}

/// Checks an emoji: one short emoji sequence (joiners, variation selectors, skin tones, flags
/// and keycaps allowed), no letters, no spaces.
pub fn check_emoji(emoji: &str) -> Result<(), Defect> {
    if emoji.is_empty() {
        return Err(Defect::MissingEmoji);
    }
    let invalid = || Defect::InvalidEmoji(emoji.chars().take(MAX_EMOJI_CHARS + 4).collect());
    if emoji.chars().count() > MAX_EMOJI_CHARS {
        return Err(invalid());
    }
    let mut pictographs = 0;
    for c in emoji.chars() {
        if is_pictograph(c) {
            pictographs += 1;
        } else if !is_emoji_modifier(c) {
            return Err(invalid());
        }
    }
    if pictographs == 0 {
        return Err(invalid());
    }
    Ok(())
}

fn is_pictograph(c: char) -> bool {
    matches!(u32::from(c),
        0x00A9 | 0x00AE
        | 0x203C..=0x3299
        | 0x1F000..=0x1FAFF)
}

/// Characters that only make sense inside an emoji sequence: ZWJ, variation selectors, the
/// keycap mark and its base characters, and tag characters (subdivision flags).
fn is_emoji_modifier(c: char) -> bool {
    matches!(
        c,
        '\u{200D}' | '\u{FE0E}' | '\u{FE0F}' | '\u{20E3}' | '0'..='9' | '#' | '*'
    ) || ('\u{E0020}'..='\u{E007F}').contains(&c)
}

/// Checks a category name: non-empty after trimming and not too long.
pub fn check_category(category: &str) -> Result<(), Defect> {
    if category.trim().is_empty() {
        return Err(Defect::MissingField("category"));
    }
    check_len("category", category, MAX_CATEGORY_CHARS)
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), Defect> {
    if value.chars().count() > max {
        Err(Defect::TooLong { field, max })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_normalized(input: &str, expected: &str) {
        assert_eq!(normalize_text(input), expected, "{input:?}");
    }

    #[test]
    fn normalisation_ignores_case_space_and_punctuation() {
        check_normalized(
            "Vem var Sveriges förste kung?",
            "vem var sveriges förste kung",
        );
        check_normalized(
            "  VEM  var\tSveriges\nförste kung ?!",
            "vem var sveriges förste kung",
        );
        check_normalized("Vad är H₂O?", "vad är h₂o");
        check_normalized("ÅÄÖ — åäö...", "åäö åäö");
        check_normalized("¿?!", "");
        check_normalized("", "");
    }

    fn check_emoji_rule(input: &str, ok: bool) {
        assert_eq!(check_emoji(input).is_ok(), ok, "{input:?}");
    }

    #[test]
    fn emoji_rule_accepts_sequences_and_rejects_words() {
        check_emoji_rule("🏛️", true);
        check_emoji_rule("⚽", true);
        check_emoji_rule("👨‍👩‍👧", true);
        check_emoji_rule("🇸🇪", true);
        check_emoji_rule("👍🏽", true);
        check_emoji_rule("1️⃣", true);
        check_emoji_rule("🎵🎶", true);
        check_emoji_rule("", false);
        check_emoji_rule("ok", false);
        check_emoji_rule("🎵 music", false);
        check_emoji_rule("1", false);
        check_emoji_rule(&"🎵".repeat(17), false);
    }

    fn check_option_rule(options: &[&str], expected: Result<(), Defect>) {
        assert_eq!(check_options(options), expected, "{options:?}");
    }

    #[test]
    fn option_rules() {
        check_option_rule(&["a", "b", "c", "d"], Ok(()));
        check_option_rule(&["a", "b", "c"], Err(Defect::WrongOptionCount(3)));
        check_option_rule(&["a", "b", "c", "d", "e"], Err(Defect::WrongOptionCount(5)));
        check_option_rule(&["a", " ", "c", "d"], Err(Defect::EmptyOption(1)));
        check_option_rule(&["a", "b", "?", "d"], Err(Defect::EmptyOption(2)));
        check_option_rule(
            &["Paris", "Rom", "paris.", "Oslo"],
            Err(Defect::DuplicateOptions {
                first: 0,
                second: 2,
            }),
        );
        let long = "x".repeat(MAX_OPTION_CHARS + 1);
        check_option_rule(
            &["a", "b", "c", &long],
            Err(Defect::TooLong {
                field: "options",
                max: MAX_OPTION_CHARS,
            }),
        );
    }

    #[test]
    fn correct_index_must_point_at_an_option() {
        for (input, expected) in [
            (0, Ok(0)),
            (3, Ok(3)),
            (4, Err(Defect::IndexOutOfRange(4))),
            (-1, Err(Defect::IndexOutOfRange(-1))),
            (300, Err(Defect::IndexOutOfRange(300))),
        ] {
            assert_eq!(check_correct_index(input), expected, "{input}");
        }
    }

    #[test]
    fn defects_name_their_field_and_read_well() {
        assert_eq!(Defect::IndexOutOfRange(4).field(), "correctIndex");
        assert_eq!(
            Defect::IndexOutOfRange(4).to_string(),
            "correctIndex 4 is out of range 0..=3"
        );
        assert_eq!(
            Defect::WrongOptionCount(3).to_string(),
            "expected 4 options, got 3"
        );
        assert_eq!(Defect::MissingEmoji.field(), "emoji");
        assert_eq!(check_text("   "), Err(Defect::EmptyText));
        assert_eq!(check_explanation(""), Err(Defect::EmptyExplanation));
        assert_eq!(check_category(" "), Err(Defect::MissingField("category")));
    }
}
