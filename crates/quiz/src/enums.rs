//! The closed vocabularies of a question: age group, difficulty and validation status, each with
//! a stable `as_str()` for the database column and JSON, and a `FromStr` that names the field on
//! failure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::QuizError;

/// Declares a string enum with `ALL`, `as_str`, `Display`, `FromStr` and lowercase serde.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, field = $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name used in the database and in JSON.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = QuizError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        QuizError::invalid(
                            $field,
                            format!(
                                "{:?} is not one of {}",
                                s.chars().take(40).collect::<String>(),
                                names.join(", ")
                            ),
                        )
                    })
            }
        }
    };
}

string_enum! {
    /// Who the question is written for.
    AgeGroup, field = "ageGroup" {
        /// Younger children: simple words, familiar topics.
        Children => "children",
        /// Teenagers.
        Youth => "youth",
        /// Adults.
        Adults => "adults",
    }
}

string_enum! {
    /// How hard the question is.
    Difficulty, field = "difficulty" {
        /// Most people know the answer.
        Easy => "easy",
        /// Needs some knowledge of the subject.
        Medium => "medium",
        /// For enthusiasts.
        Hard => "hard",
    }
}

string_enum! {
    /// What a validation run decided about a question.
    ValidationStatus, field = "validationStatus" {
        /// Not validated yet (every new question).
        Unvalidated => "unvalidated",
        /// A validation run found the question correct and clear.
        Valid => "valid",
        /// A validation run found a problem; the notes say which.
        Invalid => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_name_the_field() {
        for value in AgeGroup::ALL {
            assert_eq!(value.as_str().parse::<AgeGroup>().unwrap(), *value);
            assert_eq!(
                serde_json::to_value(value).unwrap(),
                serde_json::Value::from(value.as_str())
            );
        }
        for value in Difficulty::ALL {
            assert_eq!(value.to_string().parse::<Difficulty>().unwrap(), *value);
        }
        for value in ValidationStatus::ALL {
            assert_eq!(value.as_str().parse::<ValidationStatus>().unwrap(), *value);
        }
        match "Adults".parse::<AgeGroup>() {
            Err(QuizError::InvalidField { field, reason }) => {
                assert_eq!(field, "ageGroup");
                assert!(reason.contains("children, youth, adults"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            "extreme".parse::<Difficulty>(),
            Err(QuizError::InvalidField {
                field: "difficulty",
                ..
            })
        ));
    }
}
