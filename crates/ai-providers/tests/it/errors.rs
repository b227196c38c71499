//! The retry policy carried by each error variant, and the exact messages callers show.

use std::time::Duration;

use ai_providers::ProviderError;

fn check(error: ProviderError, retryable: bool, retry_after: Option<Duration>, display: &str) {
    assert_eq!(error.is_retryable(), retryable, "{error:?}");
    assert_eq!(error.retry_after(), retry_after, "{error:?}");
    assert_eq!(error.to_string(), display);
}

#[test]
fn each_variant_says_whether_and_when_to_retry() {
    let p = || "openai".to_owned();
    let m = || "HTTP 500: boom".to_owned();
    check(
        ProviderError::NotConfigured { provider: p() },
        false,
        None,
        "API key not configured for provider: openai",
    );
    check(
        ProviderError::UnknownProvider {
            provider: "acme".to_owned(),
        },
        false,
        None,
        "unknown AI provider: \"acme\"",
    );
    check(
        ProviderError::Unauthorized {
            provider: p(),
            message: m(),
        },
        false,
        None,
        "openai rejected the credentials: HTTP 500: boom",
    );
    check(
        ProviderError::RateLimited {
            provider: p(),
            retry_after: Some(Duration::from_secs(3)),
        },
        true,
        Some(Duration::from_secs(3)),
        "openai rate limit reached, retry after 3s",
    );
    check(
        ProviderError::RateLimited {
            provider: p(),
            retry_after: None,
        },
        true,
        None,
        "openai rate limit reached",
    );
    check(
        ProviderError::Transient {
            provider: p(),
            message: m(),
        },
        true,
        None,
        "openai is temporarily unavailable: HTTP 500: boom",
    );
    check(
        ProviderError::InvalidOutput {
            provider: p(),
            message: "not JSON".to_owned(),
        },
        true,
        None,
        "openai returned unusable output: not JSON",
    );
    check(
        ProviderError::Permanent {
            provider: p(),
            message: m(),
        },
        false,
        None,
        "openai rejected the request: HTTP 500: boom",
    );
    check(
        ProviderError::InvalidConfig {
            setting: "X".to_owned(),
            message: "bad".to_owned(),
        },
        false,
        None,
        "invalid setting X: bad",
    );
}
