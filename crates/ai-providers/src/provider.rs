//! The trait every provider implements; callers hold an `Arc<dyn AiProvider>`.

use async_trait::async_trait;
use serde_json::Value;

use crate::{JsonRequest, ProviderError, Streamed, TextSink};

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

    /// [`AiProvider::generate_json`], with the provider's usage report when its answer carries
    /// one (the hosted providers' do), so a caller can count tokens without streaming.
    ///
    /// The default calls [`AiProvider::generate_json`] and reports no usage.
    async fn generate_json_with_usage(
        &self,
        request: &JsonRequest,
    ) -> Result<Streamed, ProviderError> {
        Ok(Streamed {
            answer: self.generate_json(request).await?,
            usage: None,
        })
    }

    /// Asks for the same answer as [`AiProvider::generate_json`], streamed: every piece of the
    /// answer's JSON text goes to `on_text` as it arrives (the pieces concatenate to the text of
    /// the answer), and the checked answer comes back with the provider's final usage report.
    /// On an error, what `on_text` already received stays received. Dropping the future closes
    /// the request.
    ///
    /// The default makes one non-streaming call and hands its whole text over at once, so a
    /// provider that cannot stream still works for streaming callers.
    async fn stream_json(
        &self,
        request: &JsonRequest,
        on_text: &mut TextSink<'_>,
    ) -> Result<Streamed, ProviderError> {
        let answer = self.generate_json(request).await?;
        on_text(&answer.to_string());
        Ok(Streamed {
            answer,
            usage: None,
        })
    }
}
