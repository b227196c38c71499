//! The parameters of the three quiz tasks, parsed from a request body or a task's `params` with
//! an error naming the bad field. The HTTP edge parses before creating a task (a bad request is a
//! 400 at once); handlers parse again, so a task created by other means is checked too.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::question::{check_language, DEFAULT_LANGUAGE};
use crate::rules::{check_category, Defect};
use crate::{AgeGroup, Difficulty, QuestionId, QuizError};

/// Fewest questions one generation task makes.
pub const MIN_AMOUNT: u32 = 1;
/// Most questions one generation task makes.
pub const MAX_AMOUNT: u32 = 50;
/// Most questions one validation or emoji task works on.
pub const MAX_QUESTION_IDS: usize = 200;

/// Parameters of a `generation` task:
/// `{"amount":10,"category":"Historia","ageGroup":"adults","difficulty":"medium","provider":"openai","language":"sv"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationParams {
    /// How many questions, `1..=50`.
    pub amount: u32,
    /// The category, trimmed.
    pub category: String,
    /// Who the questions are for.
    pub age_group: AgeGroup,
    /// How hard they are.
    pub difficulty: Difficulty,
    /// Which provider writes them (one of `ai_providers::KNOWN_PROVIDERS`).
    pub provider: String,
    /// Language code; defaults to `sv`.
    pub language: String,
}

impl GenerationParams {
    /// Parses and checks the parameters. Unknown fields are ignored.
    ///
    /// # Errors
    /// [`QuizError::InvalidField`] naming the first missing or bad field.
    pub fn parse(params: &Value) -> Result<Self, QuizError> {
        let object = as_object(params)?;
        let amount = match object.get("amount") {
            None | Some(Value::Null) => return Err(QuizError::invalid("amount", "is required")),
            // JSON does not tell `5` from `5.0`; both are the whole number 5.
            Some(value) => value
                .as_u64()
                .or_else(|| {
                    value
                        .as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 1e6)
                        .map(|f| f as u64)
                })
                .filter(|n| (u64::from(MIN_AMOUNT)..=u64::from(MAX_AMOUNT)).contains(n))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    QuizError::invalid(
                        "amount",
                        format!("must be a whole number from {MIN_AMOUNT} to {MAX_AMOUNT}"),
                    )
                })?,
        };
        let category = required_str(object, "category")?.trim().to_owned();
        check_category(&category).map_err(|d| QuizError::invalid("category", d.to_string()))?;
        let age_group = required_str(object, "ageGroup")?.parse()?;
        let difficulty = required_str(object, "difficulty")?.parse()?;
        let provider = parse_provider(object)?;
        let language = match optional_str(object, "language")? {
            Some(language) => {
                check_language(language)?;
                language.to_owned()
            }
            None => DEFAULT_LANGUAGE.to_owned(),
        };
        Ok(Self {
            amount,
            category,
            age_group,
            difficulty,
            provider,
            language,
        })
    }

    /// The canonical JSON to store as the task's `params`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// A short title for the task, e.g. "10 questions about Historia".
    pub fn label(&self) -> String {
        format!("{} questions about {}", self.amount, self.category)
    }

    /// The description a new task shows until it starts, in the old system's words
    /// ("Genererar 10 frågor om Historia").
    pub fn initial_description(&self) -> String {
        format!("Genererar {} frågor om {}", self.amount, self.category)
    }
}

/// Which questions a validation task looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionSelection {
    /// These questions, in this order, without repeats.
    Ids(Vec<QuestionId>),
    /// Every question in this category the task's owner may see (up to [`MAX_QUESTION_IDS`],
    /// newest first).
    Category(String),
}

impl QuestionSelection {
    fn to_json(&self, object: &mut Map<String, Value>) {
        match self {
            QuestionSelection::Ids(ids) => {
                let ids = ids.iter().map(|id| Value::from(id.as_str())).collect();
                object.insert("questionIds".into(), Value::Array(ids));
            }
            QuestionSelection::Category(category) => {
                object.insert("category".into(), Value::from(category.as_str()));
            }
        }
    }
}

/// Parameters of a `validation` task: `{"questionIds":[...],"provider":"openai"}` or
/// `{"category":"Historia","provider":"openai"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationParams {
    /// The questions to validate.
    pub selection: QuestionSelection,
    /// Which provider judges them.
    pub provider: String,
}

impl ValidationParams {
    /// Parses and checks the parameters. Exactly one of `questionIds` and `category` is given.
    ///
    /// # Errors
    /// [`QuizError::InvalidField`] naming the first missing or bad field.
    pub fn parse(params: &Value) -> Result<Self, QuizError> {
        let object = as_object(params)?;
        let has_ids = object.get("questionIds").is_some_and(|v| !v.is_null());
        let has_category = object.get("category").is_some_and(|v| !v.is_null());
        let selection = match (has_ids, has_category) {
            (true, false) => QuestionSelection::Ids(parse_ids(object)?),
            (false, true) => {
                let category = required_str(object, "category")?.trim().to_owned();
                check_category(&category)
                    .map_err(|d: Defect| QuizError::invalid("category", d.to_string()))?;
                QuestionSelection::Category(category)
            }
            (true, true) => {
                return Err(QuizError::invalid(
                    "questionIds",
                    "give either questionIds or category, not both",
                ))
            }
            (false, false) => {
                return Err(QuizError::invalid(
                    "questionIds",
                    "is required (or give a category)",
                ))
            }
        };
        Ok(Self {
            selection,
            provider: parse_provider(object)?,
        })
    }

    /// The canonical JSON to store as the task's `params`.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        self.selection.to_json(&mut object);
        object.insert("provider".into(), Value::from(self.provider.as_str()));
        Value::Object(object)
    }

    /// A short title for the task.
    pub fn label(&self) -> String {
        match &self.selection {
            QuestionSelection::Ids(ids) => format!("Validate {} questions", ids.len()),
            QuestionSelection::Category(category) => {
                format!("Validate questions about {category}")
            }
        }
    }
}

/// Parameters of an `emoji-regeneration` task: `{"questionIds":[...],"provider":"openai"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmojiParams {
    /// The questions whose emoji is replaced, in order, without repeats.
    pub question_ids: Vec<QuestionId>,
    /// Which provider picks the emojis.
    pub provider: String,
}

impl EmojiParams {
    /// Parses and checks the parameters.
    ///
    /// # Errors
    /// [`QuizError::InvalidField`] naming the first missing or bad field.
    pub fn parse(params: &Value) -> Result<Self, QuizError> {
        let object = as_object(params)?;
        Ok(Self {
            question_ids: parse_ids(object)?,
            provider: parse_provider(object)?,
        })
    }

    /// The canonical JSON to store as the task's `params`.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        QuestionSelection::Ids(self.question_ids.clone()).to_json(&mut object);
        object.insert("provider".into(), Value::from(self.provider.as_str()));
        Value::Object(object)
    }

    /// A short title for the task.
    pub fn label(&self) -> String {
        format!("New emojis for {} questions", self.question_ids.len())
    }
}

fn as_object(params: &Value) -> Result<&Map<String, Value>, QuizError> {
    params
        .as_object()
        .ok_or_else(|| QuizError::invalid("params", "must be a JSON object"))
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, QuizError> {
    optional_str(object, field)?.ok_or_else(|| QuizError::invalid(field, "is required"))
}

fn optional_str<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, QuizError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(QuizError::invalid(field, "must be a string")),
    }
}

fn parse_provider(object: &Map<String, Value>) -> Result<String, QuizError> {
    let provider = required_str(object, "provider")?.trim();
    if ai_providers::KNOWN_PROVIDERS.contains(&provider) {
        Ok(provider.to_owned())
    } else {
        Err(QuizError::invalid(
            "provider",
            format!(
                "unknown provider {:?}; known providers: {}",
                provider.chars().take(40).collect::<String>(),
                ai_providers::KNOWN_PROVIDERS.join(", ")
            ),
        ))
    }
}

fn parse_ids(object: &Map<String, Value>) -> Result<Vec<QuestionId>, QuizError> {
    let items = match object.get("questionIds") {
        None | Some(Value::Null) => return Err(QuizError::invalid("questionIds", "is required")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(QuizError::invalid("questionIds", "must be an array")),
    };
    if items.is_empty() || items.len() > MAX_QUESTION_IDS {
        return Err(QuizError::invalid(
            "questionIds",
            format!("must hold 1 to {MAX_QUESTION_IDS} ids"),
        ));
    }
    let mut ids: Vec<QuestionId> = Vec::with_capacity(items.len());
    for item in items {
        let id: QuestionId = item
            .as_str()
            .ok_or_else(|| QuizError::invalid("questionIds", "must hold strings"))?
            .parse()?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check<T: std::fmt::Debug>(result: Result<T, QuizError>, expected_field: Option<&str>) {
        match (result, expected_field) {
            (Ok(_), None) => {}
            (Err(QuizError::InvalidField { field, .. }), Some(expected)) => {
                assert_eq!(field, expected)
            }
            (other, expected) => panic!("{other:?}, expected bad field {expected:?}"),
        }
    }

    fn generation(
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<GenerationParams, QuizError> {
        let mut params = json!({
            "amount": 10, "category": "Historia", "ageGroup": "adults",
            "difficulty": "medium", "provider": "openai"
        });
        if let Value::Object(object) = &mut params {
            change(object);
        }
        GenerationParams::parse(&params)
    }

    #[test]
    fn generation_params_name_the_bad_field() {
        check(generation(|_| {}), None);
        check(
            generation(|p| {
                p.remove("amount");
            }),
            Some("amount"),
        );
        check(
            generation(|p| {
                p.insert("amount".into(), json!(0));
            }),
            Some("amount"),
        );
        check(
            generation(|p| {
                p.insert("amount".into(), json!(51));
            }),
            Some("amount"),
        );
        check(
            generation(|p| {
                p.insert("amount".into(), json!(2.5));
            }),
            Some("amount"),
        );
        check(
            generation(|p| {
                p.insert("amount".into(), json!("10"));
            }),
            Some("amount"),
        );
        check(
            generation(|p| {
                p.insert("amount".into(), json!(50));
            }),
            None,
        );
        check(
            generation(|p| {
                p.insert("amount".into(), json!(5.0));
            }),
            None,
        );
        check(
            generation(|p| {
                p.insert("amount".into(), json!(51.0));
            }),
            Some("amount"),
        );
        check(
            generation(|p| {
                p.insert("category".into(), json!("  "));
            }),
            Some("category"),
        );
        check(
            generation(|p| {
                p.insert("category".into(), json!(7));
            }),
            Some("category"),
        );
        check(
            generation(|p| {
                p.insert("ageGroup".into(), json!("seniors"));
            }),
            Some("ageGroup"),
        );
        check(
            generation(|p| {
                p.remove("difficulty");
            }),
            Some("difficulty"),
        );
        check(
            generation(|p| {
                p.insert("provider".into(), json!("skynet"));
            }),
            Some("provider"),
        );
        check(
            generation(|p| {
                p.insert("provider".into(), json!("offline"));
            }),
            None,
        );
        check(
            generation(|p| {
                p.insert("language".into(), json!("svenska"));
            }),
            Some("language"),
        );
        check(GenerationParams::parse(&json!([1])), Some("params"));
    }

    #[test]
    fn generation_params_default_the_language_and_round_trip() {
        let params = generation(|p| {
            p.insert("category".into(), json!(" Historia "));
        })
        .unwrap();
        assert_eq!(params.language, "sv");
        assert_eq!(params.category, "Historia");
        assert_eq!(GenerationParams::parse(&params.to_json()).unwrap(), params);
        assert_eq!(params.to_json()["ageGroup"], "adults");
        assert_eq!(
            params.initial_description(),
            "Genererar 10 frågor om Historia"
        );
    }

    #[test]
    fn validation_params_take_ids_or_a_category() {
        let ids = ValidationParams::parse(&json!({
            "questionIds": ["q_1_abcdef", "q_2_abcdef", "q_1_abcdef"], "provider": "gemini"
        }))
        .unwrap();
        assert_eq!(
            ids.selection,
            QuestionSelection::Ids(vec![
                "q_1_abcdef".parse().unwrap(),
                "q_2_abcdef".parse().unwrap()
            ]),
            "repeats are dropped"
        );
        assert_eq!(ValidationParams::parse(&ids.to_json()).unwrap(), ids);
        let category =
            ValidationParams::parse(&json!({"category": "Sport", "provider": "offline"})).unwrap();
        assert_eq!(
            category.selection,
            QuestionSelection::Category("Sport".into())
        );
        assert_eq!(
            ValidationParams::parse(&category.to_json()).unwrap(),
            category
        );
        check(
            ValidationParams::parse(&json!({"provider": "openai"})),
            Some("questionIds"),
        );
        check(
            ValidationParams::parse(
                &json!({"questionIds": ["q_1_abcdef"], "category": "x", "provider": "openai"}),
            ),
            Some("questionIds"),
        );
        check(
            ValidationParams::parse(&json!({"questionIds": [], "provider": "openai"})),
            Some("questionIds"),
        );
        check(
            ValidationParams::parse(&json!({"questionIds": ["nope"], "provider": "openai"})),
            Some("questionIds"),
        );
        check(
            ValidationParams::parse(&json!({"questionIds": [1], "provider": "openai"})),
            Some("questionIds"),
        );
        check(
            ValidationParams::parse(&json!({"questionIds": ["q_1_abcdef"]})),
            Some("provider"),
        );
    }

    #[test]
    fn emoji_params_need_ids_and_a_provider() {
        let params =
            EmojiParams::parse(&json!({"questionIds": ["q_1_abcdef"], "provider": "anthropic"}))
                .unwrap();
        assert_eq!(EmojiParams::parse(&params.to_json()).unwrap(), params);
        check(
            EmojiParams::parse(&json!({"category": "x", "provider": "openai"})),
            Some("questionIds"),
        );
        let too_many: Vec<String> = (0..=MAX_QUESTION_IDS)
            .map(|i| format!("q_{i}_abcdef"))
            .collect();
        check(
            EmojiParams::parse(&json!({"questionIds": too_many, "provider": "openai"})),
            Some("questionIds"),
        );
        check(
            EmojiParams::parse(&json!({"questionIds": ["q_1_abcdef"], "provider": 3})),
            Some("provider"),
        );
    }
}
