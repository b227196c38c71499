//! The JSON Schemas of the three kinds of model output, built in one place. They use only the
//! subset every provider accepts: `type`, `properties`, `required` (every property, as OpenAI's
//! strict mode demands), `additionalProperties: false`, `items` and `description`. Limits the
//! subset cannot express (exactly four options, an index in 0..=3) are in the descriptions and
//! are enforced by [`crate::check`].

use serde_json::{json, Map, Value};

/// Schema name of the generation output.
pub const QUESTIONS_SCHEMA_NAME: &str = "quiz_questions";
/// Schema name of the validation output.
pub const VERDICTS_SCHEMA_NAME: &str = "question_verdicts";
/// Schema name of the emoji output.
pub const EMOJIS_SCHEMA_NAME: &str = "question_emojis";

/// `{"questions":[{"text","options","correctIndex","explanation","emoji"}]}`.
pub fn questions_schema() -> Value {
    object(
        "The generated quiz questions.",
        &[(
            "questions",
            array(
                "The questions, as many as were asked for.",
                object(
                    "One multiple-choice question.",
                    &[
                        ("text", string("The question.")),
                        (
                            "options",
                            array(
                                "Exactly four different answer options.",
                                string("An answer option."),
                            ),
                        ),
                        (
                            "correctIndex",
                            json!({"type": "integer", "description": "Position of the correct option, counting from 0 (0, 1, 2 or 3)."}),
                        ),
                        (
                            "explanation",
                            string("One or two sentences on why the answer is correct."),
                        ),
                        ("emoji", string("One emoji that fits the question.")),
                    ],
                ),
            ),
        )],
    )
}

/// `{"verdicts":[{"questionId","valid","notes"}]}`.
pub fn verdicts_schema() -> Value {
    object(
        "One verdict per question.",
        &[(
            "verdicts",
            array(
                "The verdicts, one per question.",
                object(
                    "The verdict on one question.",
                    &[
                        ("questionId", string("The question's id, copied exactly.")),
                        (
                            "valid",
                            json!({"type": "boolean", "description": "Whether the question is valid."}),
                        ),
                        ("notes", string("What was checked, or what is wrong.")),
                    ],
                ),
            ),
        )],
    )
}

/// `{"emojis":[{"questionId","emoji"}]}`.
pub fn emojis_schema() -> Value {
    object(
        "One new emoji per question.",
        &[(
            "emojis",
            array(
                "The new emojis, one per question.",
                object(
                    "The new emoji of one question.",
                    &[
                        ("questionId", string("The question's id, copied exactly.")),
                        ("emoji", string("One emoji.")),
                    ],
                ),
            ),
        )],
    )
}

fn object(description: &str, properties: &[(&str, Value)]) -> Value {
    let required: Vec<Value> = properties
        .iter()
        .map(|(name, _)| Value::from(*name))
        .collect();
    let properties: Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| ((*name).to_owned(), schema.clone()))
        .collect();
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn array(description: &str, items: Value) -> Value {
    json!({"type": "array", "description": description, "items": items})
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenAI's strict mode: every object closes its properties and requires all of them, and
    /// only the common keywords appear (so Anthropic and Gemini accept the schema too).
    fn check_strict(schema: &Value, path: &str) {
        const ALLOWED: &[&str] = &[
            "type",
            "description",
            "properties",
            "required",
            "additionalProperties",
            "items",
        ];
        let object = schema.as_object().unwrap();
        for key in object.keys() {
            assert!(ALLOWED.contains(&key.as_str()), "{path}: keyword {key}");
        }
        match object["type"].as_str().unwrap() {
            "object" => {
                assert_eq!(object["additionalProperties"], false, "{path}");
                let properties = object["properties"].as_object().unwrap();
                let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
                let mut required: Vec<&str> = object["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                names.sort_unstable();
                required.sort_unstable();
                assert_eq!(names, required, "{path}: all properties required");
                for (name, property) in properties {
                    check_strict(property, &format!("{path}.{name}"));
                }
            }
            "array" => check_strict(&object["items"], &format!("{path}[]")),
            "string" | "integer" | "boolean" => {}
            other => panic!("{path}: type {other}"),
        }
    }

    #[test]
    fn schemas_fit_strict_mode() {
        for schema in [questions_schema(), verdicts_schema(), emojis_schema()] {
            check_strict(&schema, "$");
        }
        let item = &questions_schema()["properties"]["questions"]["items"];
        assert_eq!(item["properties"]["correctIndex"]["type"], "integer");
    }
}
