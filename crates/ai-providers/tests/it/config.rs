//! Reading settings from an environment lookup, and which providers the registry then offers.

use std::collections::HashMap;
use std::time::Duration;

use ai_providers::{
    ApiKey, ProviderError, Providers, ProvidersConfig, DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_GEMINI_MODEL, DEFAULT_OPENAI_BASE_URL, DEFAULT_OPENAI_MODEL, KNOWN_PROVIDERS,
};

use crate::support::echo;

fn from(vars: &[(&str, &str)]) -> Result<ProvidersConfig, ProviderError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ProvidersConfig::from_env(|name| vars.get(name).cloned())
}

fn invalid(setting: &str, error: ProviderError) {
    assert!(
        matches!(&error, ProviderError::InvalidConfig { setting: s, .. } if s == setting),
        "expected InvalidConfig for {setting}, got {error:?}"
    );
}

#[test]
fn an_empty_environment_gives_the_documented_defaults() {
    let config = from(&[]).unwrap();
    assert_eq!(config, ProvidersConfig::default());
    assert_eq!(config.openai.base_url, DEFAULT_OPENAI_BASE_URL);
    assert_eq!(config.openai.model, DEFAULT_OPENAI_MODEL);
    assert_eq!(config.anthropic.model, DEFAULT_ANTHROPIC_MODEL);
    assert_eq!(config.gemini.model, DEFAULT_GEMINI_MODEL);
    assert_eq!(config.offline_delay, Duration::from_millis(2000));
    assert_eq!(config.request_timeout, Duration::from_secs(120));
    assert_eq!(config.connect_timeout, Duration::from_secs(10));
    assert!(config.openai.api_key.is_none() && config.openai_compatible.is_none());
}

#[test]
fn variables_override_defaults_and_blank_means_unset() {
    let config = from(&[
        ("OPENAI_API_KEY", " sk-1 "),
        ("OPENAI_MODEL", "gpt-x"),
        ("ANTHROPIC_API_KEY", "   "),
        ("GEMINI_BASE_URL", "http://127.0.0.1:9/"),
        ("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:11434/v1"),
        ("OPENAI_COMPATIBLE_MODEL", "llama3"),
        ("TASKLANE_OFFLINE_DELAY_MS", "0"),
        ("TASKLANE_PROVIDER_TIMEOUT_SECS", "30"),
        ("TASKLANE_PROVIDER_CONNECT_TIMEOUT_SECS", "2"),
    ])
    .unwrap();
    assert_eq!(config.openai.api_key, Some(ApiKey::new("sk-1")));
    assert_eq!(config.openai.model, "gpt-x");
    assert_eq!(config.anthropic.api_key, None);
    assert_eq!(config.gemini.base_url, "http://127.0.0.1:9/");
    let compatible = config.openai_compatible.unwrap();
    assert_eq!(compatible.model, "llama3");
    assert_eq!(compatible.api_key, None);
    assert_eq!(config.offline_delay, Duration::ZERO);
    assert_eq!(config.request_timeout, Duration::from_secs(30));
    assert_eq!(config.connect_timeout, Duration::from_secs(2));
}

#[test]
fn bad_values_name_their_variable() {
    for (name, value) in [
        ("TASKLANE_OFFLINE_DELAY_MS", "soon"),
        ("TASKLANE_PROVIDER_TIMEOUT_SECS", "0"),
        ("TASKLANE_PROVIDER_TIMEOUT_SECS", "-5"),
        ("TASKLANE_PROVIDER_CONNECT_TIMEOUT_SECS", "1.5"),
    ] {
        invalid(name, from(&[(name, value)]).unwrap_err());
    }
    invalid(
        "OPENAI_COMPATIBLE_MODEL",
        from(&[("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:1/v1")]).unwrap_err(),
    );
}

#[test]
fn bad_base_urls_and_models_fail_when_the_registry_is_built() {
    for (vars, setting) in [
        (
            vec![("OPENAI_API_KEY", "k"), ("OPENAI_BASE_URL", "not a url")],
            "OPENAI_BASE_URL",
        ),
        (
            vec![
                ("ANTHROPIC_API_KEY", "k"),
                ("ANTHROPIC_BASE_URL", "ftp://x"),
            ],
            "ANTHROPIC_BASE_URL",
        ),
        (
            vec![
                ("GEMINI_API_KEY", "k"),
                ("GEMINI_BASE_URL", "http://x/?key=1"),
            ],
            "GEMINI_BASE_URL",
        ),
        (
            vec![("GEMINI_API_KEY", "k"), ("GEMINI_MODEL", "a/b")],
            "GEMINI_MODEL",
        ),
        (vec![("OPENAI_API_KEY", "bad\nkey")], "OPENAI_API_KEY"),
        (
            vec![
                ("OPENAI_COMPATIBLE_BASE_URL", "localhost:11434"),
                ("OPENAI_COMPATIBLE_MODEL", "m"),
            ],
            "OPENAI_COMPATIBLE_BASE_URL",
        ),
    ] {
        let config = from(&vars).unwrap();
        invalid(setting, Providers::new(&config, echo()).unwrap_err());
    }
}

#[test]
fn known_providers_without_keys_are_not_configured() {
    let providers = Providers::new(&from(&[]).unwrap(), echo()).unwrap();
    assert_eq!(
        KNOWN_PROVIDERS,
        [
            "openai",
            "anthropic",
            "gemini",
            "openai-compatible",
            "offline"
        ]
    );
    for name in ["openai", "anthropic", "gemini", "openai-compatible"] {
        let error = providers.get(name).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("API key not configured for provider: {name}")
        );
        assert_eq!(
            error,
            ProviderError::NotConfigured {
                provider: name.to_owned()
            }
        );
        assert!(providers.is_known(name));
    }
    assert_eq!(providers.configured(), ["offline"]);
    assert_eq!(providers.get("offline").unwrap().name(), "offline");
    assert!(!providers.is_known("acme"));
    assert_eq!(
        providers.get("acme").unwrap_err(),
        ProviderError::UnknownProvider {
            provider: "acme".to_owned()
        }
    );
}

#[test]
fn configured_providers_report_their_name_and_model() {
    let config = from(&[
        ("OPENAI_API_KEY", "k1"),
        ("ANTHROPIC_API_KEY", "k2"),
        ("GEMINI_API_KEY", "k3"),
        ("GEMINI_MODEL", "models/gemini-2.5-pro"),
        ("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:11434/v1"),
        ("OPENAI_COMPATIBLE_MODEL", "llama3"),
    ])
    .unwrap();
    let providers = Providers::new(&config, echo()).unwrap();
    for (name, model) in [
        ("openai", DEFAULT_OPENAI_MODEL),
        ("anthropic", DEFAULT_ANTHROPIC_MODEL),
        ("gemini", "gemini-2.5-pro"),
        ("openai-compatible", "llama3"),
        ("offline", "offline"),
    ] {
        let provider = providers.get(name).unwrap();
        assert_eq!((provider.name(), provider.model()), (name, model));
    }
    assert_eq!(providers.configured().len(), KNOWN_PROVIDERS.len());
}
