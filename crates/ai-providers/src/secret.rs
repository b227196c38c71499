//! API keys, wrapped so they cannot end up in logs, errors or `Debug` output by accident, and
//! the redaction of every configured key from text a provider sent back (an error body that
//! echoes the request's `Authorization` header would otherwise carry the key into the task's
//! error, its event stream and the log).

use std::borrow::Cow;
use std::sync::RwLock;

/// What a configured key is replaced with in provider-supplied text.
pub const REDACTED: &str = "[redacted]";

/// Keys shorter than this are not redacted: they would match ordinary words in messages, and
/// no provider issues keys that short (theirs are 30 characters and more).
pub const MIN_REDACTED_LEN: usize = 8;

/// Every key this process was configured with, whichever provider it belongs to: a provider
/// (or a proxy in front of it) may echo any header it was sent.
static CONFIGURED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// An API key. Its `Debug` prints `ApiKey(<redacted>)`; it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, and from now on redacts it from provider-supplied text ([`redact`]).
    pub fn new(key: impl Into<String>) -> Self {
        let key = key.into();
        remember(&key);
        ApiKey(key)
    }

    /// The key itself, for the one place that needs it: the request header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

fn remember(key: &str) {
    if key.len() < MIN_REDACTED_LEN {
        return;
    }
    // A poisoned lock only means another thread panicked while pushing; the list is intact.
    let mut keys = CONFIGURED.write().unwrap_or_else(|e| e.into_inner());
    if !keys.iter().any(|known| known == key) {
        keys.push(key.to_owned());
    }
}

/// `text` with every configured API key replaced by [`REDACTED`]. Every excerpt of a provider's
/// answer passes through here before it is cut to length, so a key is never half kept.
pub fn redact(text: &str) -> Cow<'_, str> {
    let keys = CONFIGURED.read().unwrap_or_else(|e| e.into_inner());
    let mut text = Cow::Borrowed(text);
    for key in keys.iter() {
        if text.contains(key.as_str()) {
            text = Cow::Owned(text.replace(key.as_str(), REDACTED));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_keys_are_redacted_wherever_they_appear() {
        let _openai = ApiKey::new("sk-test-redaction-0123456789");
        let _gemini = ApiKey::new("AIza-test-redaction-abcdef");
        let _short = ApiKey::new("short");
        assert_eq!(
            redact("Bearer sk-test-redaction-0123456789 and key=AIza-test-redaction-abcdef."),
            "Bearer [redacted] and key=[redacted]."
        );
        assert_eq!(redact("a short note"), "a short note");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }
}
