//! What the three handlers share: calling a provider so that a cancel aborts the HTTP request,
//! mapping provider and quiz errors onto the runtime's retry policy by variant, and deciding
//! whose questions a task may touch.

use std::sync::Arc;

use ai_providers::{AiProvider, JsonRequest, ProviderError, Providers, Streamed, TextSink};
use serde_json::Value;
use task_runtime::{HandlerError, TaskContext};
use task_store::{Role, StoreError, UserStore};

use crate::QuizError;

/// How a provider call ended without an answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The task was cancelled (or timed out, or the runtime is shutting down) while the call was
    /// under way; the request future was dropped, which closes its connection.
    Cancelled,
    /// The provider failed.
    Provider(ProviderError),
}

impl From<CallError> for HandlerError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Cancelled => HandlerError::Cancelled,
            CallError::Provider(error) => provider_error(error),
        }
    }
}

/// Calls `provider`, racing it against the task's cancellation token.
pub(crate) async fn call(
    ctx: &TaskContext,
    provider: &dyn AiProvider,
    request: &JsonRequest,
) -> Result<Value, CallError> {
    let cancelled = ctx.cancellation();
    tokio::select! {
        // Checked first, so an already cancelled task sends nothing.
        biased;
        () = cancelled.cancelled() => Err(CallError::Cancelled),
        answer = provider.generate_json(request) => answer.map_err(CallError::Provider),
    }
}

/// Calls `provider` streaming, racing it against the task's cancellation token; every piece of
/// the answer goes to `on_text`. A cancel drops the stream, which closes the request.
pub(crate) async fn stream_call(
    ctx: &TaskContext,
    provider: &dyn AiProvider,
    request: &JsonRequest,
    on_text: &mut TextSink<'_>,
) -> Result<Streamed, CallError> {
    let cancelled = ctx.cancellation();
    tokio::select! {
        biased;
        () = cancelled.cancelled() => Err(CallError::Cancelled),
        answer = provider.stream_json(request, on_text) => answer.map_err(CallError::Provider),
    }
}

/// The runtime's view of a provider error, decided by its variant: retryable ones are retried
/// (after the provider's `Retry-After` when it gave one), the rest fail the task with the
/// error's message (for a missing key exactly "API key not configured for provider: <name>").
pub(crate) fn provider_error(error: ProviderError) -> HandlerError {
    provider_error_noting(error, "")
}

/// [`provider_error`] with `note` appended to the message (what was kept, for instance).
///
/// A provider that asked to wait for a stated time (429, or 503 with `Retry-After`) holds the
/// task back without using an attempt ([`HandlerError::Postponed`]).
pub(crate) fn provider_error_noting(error: ProviderError, note: &str) -> HandlerError {
    if let ProviderError::RateLimited {
        provider,
        retry_after: Some(after),
    } = &error
    {
        return HandlerError::postponed(format!("provider {provider}"), *after);
    }
    let message = format!("{error}{note}");
    match (error.is_retryable(), error.retry_after()) {
        (true, Some(after)) => HandlerError::retry_after(message, after),
        (true, None) => HandlerError::retryable(message),
        (false, _) => HandlerError::permanent(message),
    }
}

/// The runtime's view of a quiz error: a database that is busy or away may come back; bad
/// input, a missing question or a broken row will not.
pub(crate) fn quiz_error(error: QuizError) -> HandlerError {
    match error {
        QuizError::Store(StoreError::Busy | StoreError::Unavailable(_)) => {
            HandlerError::retryable(error.to_string())
        }
        other => HandlerError::permanent(other.to_string()),
    }
}

/// The configured provider called `name`.
pub(crate) fn provider(
    providers: &Providers,
    name: &str,
) -> Result<Arc<dyn AiProvider>, HandlerError> {
    providers.get(name).map_err(provider_error)
}

/// How the task's progress text names a provider: "Generating with OpenAI...".
pub(crate) fn display_name(provider: &str) -> &str {
    match provider {
        "openai" => "OpenAI",
        "anthropic" => "Anthropic",
        "gemini" => "Gemini",
        "openai-compatible" => "OpenAI-compatible server",
        "offline" => "offline provider",
        other => other,
    }
}

/// Whose questions the task's owner may work on: `Some(owner)` for an ordinary user, `None`
/// (everyone's) for a superuser. A user the store does not know is an ordinary user.
pub(crate) async fn owner_filter(
    users: &dyn UserStore,
    user_id: &str,
) -> Result<Option<String>, HandlerError> {
    match users.get_user(user_id).await {
        Ok(user) if user.role == Role::Superuser => Ok(None),
        Ok(_) | Err(StoreError::NotFound) => Ok(Some(user_id.to_owned())),
        Err(error) => Err(quiz_error(QuizError::Store(error))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(error: ProviderError, expected: HandlerError) {
        assert_eq!(provider_error(error), expected);
    }

    #[test]
    fn provider_errors_map_by_variant() {
        check(
            ProviderError::NotConfigured {
                provider: "openai".into(),
            },
            HandlerError::permanent("API key not configured for provider: openai"),
        );
        check(
            ProviderError::RateLimited {
                provider: "openai".into(),
                retry_after: Some(Duration::from_secs(2)),
            },
            HandlerError::postponed("provider openai", Duration::from_secs(2)),
        );
        check(
            ProviderError::RateLimited {
                provider: "gemini".into(),
                retry_after: None,
            },
            HandlerError::retryable("gemini rate limit reached"),
        );
        assert!(matches!(
            provider_error(ProviderError::Transient {
                provider: "x".into(),
                message: "503".into()
            }),
            HandlerError::Retryable { after: None, .. }
        ));
        assert!(matches!(
            provider_error(ProviderError::Unauthorized {
                provider: "x".into(),
                message: "401".into()
            }),
            HandlerError::Permanent { .. }
        ));
    }

    #[test]
    fn quiz_errors_map_by_kind() {
        assert!(matches!(
            quiz_error(QuizError::Store(StoreError::Busy)),
            HandlerError::Retryable { .. }
        ));
        assert!(matches!(
            quiz_error(QuizError::invalid("amount", "x")),
            HandlerError::Permanent { .. }
        ));
        assert!(matches!(
            quiz_error(QuizError::NotFound("q".into())),
            HandlerError::Permanent { .. }
        ));
    }
}
