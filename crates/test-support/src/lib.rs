//! Test support: a fake AI provider server speaking each provider's wire format and checking what
//! tasklane sends.
//!
//! [`FakeProvider`] listens on `127.0.0.1:0`, validates every request body against the official
//! request schema of its provider (`<repo>/../shared/provider-specs`), checks path, auth header and
//! model, records everything, and answers from a [`Scripted`] list wrapped in the provider's real
//! response envelope. Tests assert `schema_violations()` and `protocol_violations()` are empty.
//!
//! A request that asks for a stream (`"stream": true`, or Gemini's
//! `:streamGenerateContent?alt=sse`) is answered in the provider's streaming wire format, and a
//! [`StreamPlan`] can pace it, cut it or stall it mid-item, or put garbage between its events
//! (the sources of every shape are in `stream_body.rs`).
//!
//! [`postgres`] hands tests a throwaway schema on the PostgreSQL server named by
//! `TASKLANE_TEST_POSTGRES`, dropped when the test ends.

mod checks;
pub mod envelope;
mod error;
mod kind;
pub mod postgres;
mod schemas;
mod script;
mod server;
mod stream_body;
mod stream_plan;

pub use checks::ANTHROPIC_VERSION;
pub use error::FakeError;
pub use kind::ProviderKind;
pub use schemas::{specs_dir, ProviderSchemas};
pub use script::{Expectations, ExpectedKey, RecordedRequest, Scripted};
pub use server::FakeProvider;
pub use stream_body::event_data;
pub use stream_plan::{StreamFault, StreamPlan};

/// Locks `mutex`, ignoring poisoning: a test that panicked while holding a lock leaves the
/// fake's records intact, and the remaining tests should still see them.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
