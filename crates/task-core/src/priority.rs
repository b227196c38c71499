//! A task's priority: which due tasks a claim takes first (see `docs/runtime.md`, "Priorities").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// How urgent a task is. Claims take due `high` tasks before `normal` ones and `normal` before
/// `low`, each band shared fairly between users; stored as a small integer ([`Priority::rank`]).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Runs when no normal or high task is due.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Runs before every due normal and low task.
    High,
}

impl Priority {
    /// Every priority, in the order a claim walks them: highest first.
    pub const CLAIM_ORDER: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// The stored value: 0 low, 1 normal, 2 high.
    pub fn rank(self) -> i16 {
        match self {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
        }
    }

    /// The priority stored as `rank`.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] for a value outside 0..=2.
    pub fn from_rank(rank: i64) -> Result<Self, CoreError> {
        match rank {
            0 => Ok(Priority::Low),
            1 => Ok(Priority::Normal),
            2 => Ok(Priority::High),
            _ => Err(invalid()),
        }
    }

    /// The name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }
}

fn invalid() -> CoreError {
    CoreError::InvalidField {
        field: "priority",
        reason: "must be one of low, normal, high".to_owned(),
    }
}

impl FromStr for Priority {
    type Err = CoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "low" => Ok(Priority::Low),
            "normal" => Ok(Priority::Normal),
            "high" => Ok(Priority::High),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ranks_and_order_agree() {
        for priority in Priority::CLAIM_ORDER {
            assert_eq!(priority.as_str().parse::<Priority>().unwrap(), priority);
            assert_eq!(
                Priority::from_rank(priority.rank().into()).unwrap(),
                priority
            );
            assert_eq!(
                serde_json::to_value(priority).unwrap(),
                serde_json::json!(priority.as_str())
            );
        }
        assert!(Priority::High > Priority::Normal && Priority::Normal > Priority::Low);
        assert_eq!(Priority::default(), Priority::Normal);
        assert!("urgent".parse::<Priority>().is_err());
        assert!(Priority::from_rank(3).is_err());
    }
}
