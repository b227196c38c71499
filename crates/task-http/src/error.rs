//! The one error type of task-http's library API (serving, configuration, account management).
//! Errors answered to HTTP clients are [`crate::ApiError`], built at the edge.

use task_store::StoreError;

/// Why a task-http operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A setting is unusable; `setting` names it as the config struct does.
    #[error("invalid setting {setting}: {reason}")]
    InvalidConfig {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An email given for a user is not usable as an identity.
    #[error("invalid email {0:?}: must be 1 to 320 characters without spaces")]
    InvalidEmail(String),
    /// The operating system's random number generator failed, so no secret could be made.
    #[error("random number generator unavailable: {0}")]
    Random(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listener failed in a way the server cannot recover from.
    #[error("listener failed: {0}")]
    Io(#[from] std::io::Error),
}
