//! Task ids in the existing front end's format, `task_<unix-ms>_<random>`, with an unguessable
//! random part.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{CoreError, UnixMillis};

/// Bytes of OS randomness in a generated id: 80 bits, so ids cannot be guessed or enumerated.
const RANDOM_BYTES: usize = 10;
/// Ids created by the old backend used short base-36 suffixes; we accept those when parsing so
/// existing rows stay addressable, but never generate them.
const MIN_RANDOM_LEN: usize = 6;
const MAX_RANDOM_LEN: usize = 64;

/// A task's id: `task_<unix-ms>_<random>`, where the random part is lowercase ASCII letters and
/// digits. [`TaskId::generate`] draws 80 bits from the OS random number generator.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(String);

impl TaskId {
    /// A new id for a task created at `created_at`, with 80 random bits from the OS.
    ///
    /// # Errors
    /// Fails only if the operating system's random number generator is unavailable; an id must
    /// never be built from weak randomness.
    pub fn generate(created_at: UnixMillis) -> Result<Self, CoreError> {
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::getrandom(&mut random).map_err(|e| CoreError::InvalidField {
            field: "id",
            reason: format!("OS random number generator unavailable: {e}"),
        })?;
        let mut suffix = String::with_capacity(RANDOM_BYTES * 2);
        for byte in random {
            suffix.push_str(&format!("{byte:02x}"));
        }
        Ok(Self(format!("task_{}_{suffix}", created_at.max(0))))
    }

    /// The id as it appears in URLs, JSON and the database.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The creation time encoded in the id.
    pub fn created_at(&self) -> UnixMillis {
        self.0
            .split('_')
            .nth(1)
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_default()
    }
}

impl FromStr for TaskId {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || CoreError::InvalidTaskId(s.chars().take(80).collect());
        let rest = s.strip_prefix("task_").ok_or_else(invalid)?;
        let (millis, random) = rest.split_once('_').ok_or_else(invalid)?;
        let millis_ok =
            (1..=16).contains(&millis.len()) && millis.bytes().all(|b| b.is_ascii_digit());
        let random_ok = (MIN_RANDOM_LEN..=MAX_RANDOM_LEN).contains(&random.len())
            && random
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if millis_ok && random_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(invalid())
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.0)
    }
}

impl Serialize for TaskId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, valid: bool) {
        assert_eq!(input.parse::<TaskId>().is_ok(), valid, "{input:?}");
    }

    #[test]
    fn parsing_accepts_only_the_documented_format() {
        check("task_1732890000000_3f9a0c11d2e4b5a6c7d8", true);
        check("task_1732890000000_k3j9x2abc", true);
        check("task_1_abcdef", true);
        check("task_1234", false);
        check("task__abcdef", false);
        check("task_12a_abcdef", false);
        check("task_123_ABCDEF", false);
        check("task_123_abc", false);
        check("task_123_abc-def", false);
        check("job_123_abcdef", false);
        check("", false);
        check("task_123_abcdef_x", false);
        check(&format!("task_1_{}", "a".repeat(65)), false);
    }

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = TaskId::generate(1_732_890_000_000).unwrap();
        let b = TaskId::generate(1_732_890_000_000).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<TaskId>().unwrap(), a);
        assert_eq!(a.created_at(), 1_732_890_000_000);
        let random = a.as_str().rsplit('_').next().unwrap();
        assert_eq!(random.len(), RANDOM_BYTES * 2, "80 bits of hex");
    }

    #[test]
    fn serde_rejects_malformed_ids() {
        assert!(serde_json::from_str::<TaskId>("\"nope\"").is_err());
        let id: TaskId = serde_json::from_str("\"task_5_abcdef\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"task_5_abcdef\"");
    }
}
