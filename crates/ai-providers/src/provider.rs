//! The trait every provider implements; callers hold an `Arc<dyn AiProvider>`.

use async_trait::async_trait;
use serde_json::Value;

use crate::{JsonRequest, ProviderError};

/// A source of structured JSON answers. Implementations are cheap to share and safe to call
/// concurrently; dropping the returned future aborts the call (the HTTP request is cancelled).
#[async_trait]
pub trait AiProvider: Send + Sync + std::fmt::Debug {
    /// The provider's name: `openai`, `anthropic`, `gemini`, `openai-compatible` or `offline`.
    fn name(&self) -> &str;

    /// The model the provider calls.
    fn model(&self) -> &str;

    /// Asks for one JSON object fitting `request.schema`. The returned value has been checked
    /// against that schema.
    async fn generate_json(&self, request: &JsonRequest) -> Result<Value, ProviderError>;
}
