//! The one error type of test-support: what can go wrong starting the fake or waiting on it.

use std::path::PathBuf;
use std::time::Duration;

/// Starting the fake provider or waiting on one of its conditions failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    /// The folder with the official provider schemas is not where the repository layout puts it.
    /// Tests must not silently skip schema checks, so this is an error, never a fallback.
    #[error("provider schema folder {path} is missing: {source}")]
    SpecsMissing {
        /// The folder that was looked for.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A schema file could not be read or is not JSON.
    #[error("cannot load schema {path}: {message}")]
    SchemaUnreadable {
        /// The schema file.
        path: PathBuf,
        /// The I/O or JSON error.
        message: String,
    },
    /// A schema file is JSON but the `jsonschema` crate cannot compile it.
    #[error("schema {path} does not compile: {message}")]
    SchemaInvalid {
        /// The schema file.
        path: PathBuf,
        /// The compiler's message.
        message: String,
    },
    /// Binding the loopback listener failed.
    #[error("cannot bind the fake provider to 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// A condition the test waited for did not happen in time.
    #[error("timed out after {timeout:?} waiting for {what}: wanted {wanted}, saw {seen}")]
    WaitTimedOut {
        /// What was counted.
        what: &'static str,
        /// The count that was waited for.
        wanted: usize,
        /// The count when the wait gave up.
        seen: usize,
        /// How long the wait lasted.
        timeout: Duration,
    },
}
