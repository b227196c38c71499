//! The provider registry: every configured provider by name, built once from [`ProvidersConfig`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::anthropic::{AnthropicProvider, ANTHROPIC};
use crate::gemini::{GeminiProvider, GEMINI};
use crate::http::{parse_base_url, HttpClient};
use crate::offline::OFFLINE;
use crate::openai::{OpenAiProvider, OPENAI};
use crate::openai_compatible::{self, OPENAI_COMPATIBLE};
use crate::{
    AiProvider, GatedProvider, OfflineProvider, OfflineResponder, ProviderError, ProviderGate,
    ProvidersConfig,
};

/// Every provider name tasklane knows, configured or not.
pub const KNOWN_PROVIDERS: &[&str] = &[OPENAI, ANTHROPIC, GEMINI, OPENAI_COMPATIBLE, OFFLINE];

/// The configured providers. Cheap to share behind an `Arc`; all providers share one HTTP
/// connection pool.
#[derive(Debug, Clone)]
pub struct Providers {
    configured: BTreeMap<String, Arc<dyn AiProvider>>,
}

impl Providers {
    /// Reads [`ProvidersConfig`] from the process environment and builds the registry.
    pub fn from_env(offline: Arc<dyn OfflineResponder>) -> Result<Self, ProviderError> {
        let config = ProvidersConfig::from_env(|name| std::env::var(name).ok())?;
        Self::new(&config, offline)
    }

    /// Builds every provider `config` has settings for; the offline provider is always there.
    /// A malformed base URL, model name or key is an error here, not at the first call.
    pub fn new(
        config: &ProvidersConfig,
        offline: Arc<dyn OfflineResponder>,
    ) -> Result<Self, ProviderError> {
        let http = HttpClient::new(
            config.connect_timeout,
            config.request_timeout,
            config.stream_idle_timeout,
        )?;
        let mut configured: BTreeMap<String, Arc<dyn AiProvider>> = BTreeMap::new();
        let mut add = |provider: Arc<dyn AiProvider>| {
            configured.insert(provider.name().to_owned(), provider);
        };
        if let Some(key) = &config.openai.api_key {
            let base = parse_base_url("OPENAI_BASE_URL", &config.openai.base_url)?;
            add(Arc::new(OpenAiProvider::new(
                OPENAI,
                &base,
                Some(key),
                "OPENAI_API_KEY",
                &config.openai.model,
                http.clone(),
            )?));
        }
        if let Some(key) = &config.anthropic.api_key {
            let base = parse_base_url("ANTHROPIC_BASE_URL", &config.anthropic.base_url)?;
            add(Arc::new(AnthropicProvider::new(
                &base,
                key,
                &config.anthropic.model,
                http.clone(),
            )?));
        }
        if let Some(key) = &config.gemini.api_key {
            let base = parse_base_url("GEMINI_BASE_URL", &config.gemini.base_url)?;
            add(Arc::new(GeminiProvider::new(
                &base,
                key,
                &config.gemini.model,
                http.clone(),
            )?));
        }
        if let Some(settings) = &config.openai_compatible {
            add(Arc::new(openai_compatible::provider(
                settings,
                http.clone(),
            )?));
        }
        add(Arc::new(OfflineProvider::new(
            offline,
            config.offline_delay,
        )));
        Ok(Providers { configured })
    }

    /// Adds `provider` under its own name, replacing any provider of that name. For wiring a
    /// custom or instrumented provider in tests and embeddings.
    pub fn with_provider(mut self, provider: Arc<dyn AiProvider>) -> Self {
        self.configured.insert(provider.name().to_owned(), provider);
        self
    }

    /// Puts every configured provider except the offline one (which calls nobody) behind
    /// `gate` ([`GatedProvider`]): each call waits for the gate's admission, reports its token
    /// usage, and a provider's 429 becomes a hold for every caller. Providers added later with
    /// [`Providers::with_provider`] are not gated.
    pub fn with_gate(mut self, gate: Arc<dyn ProviderGate>) -> Self {
        for (name, provider) in &mut self.configured {
            if name != OFFLINE {
                *provider = Arc::new(GatedProvider::new(Arc::clone(provider), Arc::clone(&gate)));
            }
        }
        self
    }

    /// The provider called `name`: [`ProviderError::NotConfigured`] if it is known but has no
    /// key, [`ProviderError::UnknownProvider`] if no provider has that name.
    pub fn get(&self, name: &str) -> Result<Arc<dyn AiProvider>, ProviderError> {
        match self.configured.get(name) {
            Some(provider) => Ok(Arc::clone(provider)),
            None if KNOWN_PROVIDERS.contains(&name) => Err(ProviderError::NotConfigured {
                provider: name.to_owned(),
            }),
            None => Err(ProviderError::UnknownProvider {
                provider: name.to_owned(),
            }),
        }
    }

    /// Whether `name` is a provider name, configured or not.
    pub fn is_known(&self, name: &str) -> bool {
        KNOWN_PROVIDERS.contains(&name) || self.configured.contains_key(name)
    }

    /// The names of the usable providers, sorted.
    pub fn configured(&self) -> Vec<&str> {
        self.configured.keys().map(String::as_str).collect()
    }
}
