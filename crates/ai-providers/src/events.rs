//! Reading a provider's `text/event-stream` answer: the SSE framing is `eventsource-stream`'s
//! (a maintained WHATWG-conformant parser over reqwest's byte stream, UTF-8 split across network
//! chunks included); this file adds the per-event idle timeout and maps every failure to a
//! [`ProviderError`] variant.

use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};

use crate::error::truncate;
use crate::ProviderError;

type EventStream =
    Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// The events of one streamed answer. Dropping it drops the response, which closes the
/// connection: the provider stops generating (and billing) for a cancelled task.
pub(crate) struct ProviderEvents {
    provider: String,
    events: EventStream,
    idle_timeout: Duration,
    request_timeout: Duration,
}

impl std::fmt::Debug for ProviderEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderEvents")
            .field("provider", &self.provider)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl ProviderEvents {
    pub(crate) fn new(
        provider: &str,
        response: reqwest::Response,
        idle_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        ProviderEvents {
            provider: provider.to_owned(),
            events: Box::pin(response.bytes_stream().eventsource()),
            idle_timeout,
            request_timeout,
        }
    }

    /// The next event, `None` at the end of the stream. A stream silent for longer than the idle
    /// timeout, a broken connection and a body that is not UTF-8 SSE are errors.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>, ProviderError> {
        let next = tokio::time::timeout(self.idle_timeout, self.events.next()).await;
        match next {
            Err(_) => Err(ProviderError::transient(
                &self.provider,
                format!(
                    "the stream stalled: no event for {:?} (the idle timeout)",
                    self.idle_timeout
                ),
            )),
            Ok(None) => Ok(None),
            Ok(Some(Ok(event))) => Ok(Some(event)),
            Ok(Some(Err(EventStreamError::Transport(error)))) if error.is_timeout() => {
                Err(ProviderError::transient(
                    &self.provider,
                    format!("no complete answer within {:?}", self.request_timeout),
                ))
            }
            Ok(Some(Err(EventStreamError::Transport(error)))) => Err(ProviderError::transient(
                &self.provider,
                format!("the stream broke off: {}", crate::http::describe(&error)),
            )),
            Ok(Some(Err(error))) => Err(ProviderError::invalid_output(
                &self.provider,
                format!(
                    "the stream is not server-sent events: {}",
                    truncate(&error.to_string())
                ),
            )),
        }
    }
}

/// Parses one event's data as JSON; anything else is unusable output.
pub(crate) fn json_data(provider: &str, event: &Event) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_str(&event.data).map_err(|e| {
        ProviderError::invalid_output(
            provider,
            format!(
                "a stream event is not JSON ({e}): {}",
                truncate(&event.data)
            ),
        )
    })
}

/// The error for a stream that ended before the provider said the answer was complete.
pub(crate) fn ended_early(provider: &str, received: usize) -> ProviderError {
    ProviderError::transient(
        provider,
        format!("the stream ended before the answer was complete ({received} bytes received)"),
    )
}
