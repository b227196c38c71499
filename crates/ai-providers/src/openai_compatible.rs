//! OpenAI-compatible servers (local model servers, gateways): the OpenAI client at a configured
//! base URL, with an optional key.

use crate::http::{parse_base_url, HttpClient};
use crate::openai::OpenAiProvider;
use crate::{CompatibleSettings, ProviderError};

/// The provider name callers use.
pub const OPENAI_COMPATIBLE: &str = "openai-compatible";

/// Builds the client for a compatible server. Without a key no `Authorization` header is sent,
/// since a local server may accept none.
pub(crate) fn provider(
    settings: &CompatibleSettings,
    http: HttpClient,
) -> Result<OpenAiProvider, ProviderError> {
    let base = parse_base_url("OPENAI_COMPATIBLE_BASE_URL", &settings.base_url)?;
    if settings.model.trim().is_empty() {
        return Err(ProviderError::invalid_config(
            "OPENAI_COMPATIBLE_MODEL",
            "the model name is empty",
        ));
    }
    OpenAiProvider::new(
        OPENAI_COMPATIBLE,
        &base,
        settings.api_key.as_ref(),
        "OPENAI_COMPATIBLE_API_KEY",
        &settings.model,
        http,
    )
}
