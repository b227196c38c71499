//! The offline provider: no network and no key. It waits a while, like a real model, then lets a
//! caller-supplied [`OfflineResponder`] build the answer from a seed derived from the request.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::output::check_answer;
use crate::{AiProvider, JsonRequest, ProviderError, Streamed, TextSink};

/// The provider name callers use.
pub const OFFLINE: &str = "offline";

/// Builds offline answers (the quiz crate's question bank is one).
pub trait OfflineResponder: Send + Sync + std::fmt::Debug {
    /// Answers `request`. The same `seed` must give the same answer, so offline runs are
    /// reproducible; different seeds should give different answers.
    fn respond(&self, request: &JsonRequest, seed: u64) -> Result<Value, ProviderError>;
}

/// A provider that answers through an [`OfflineResponder`] after `delay`.
#[derive(Debug, Clone)]
pub struct OfflineProvider {
    responder: Arc<dyn OfflineResponder>,
    delay: Duration,
}

impl OfflineProvider {
    /// A provider that waits `delay` before each answer. The wait is a tokio timer: dropping the
    /// future cancels it and the responder is never called.
    pub fn new(responder: Arc<dyn OfflineResponder>, delay: Duration) -> Self {
        OfflineProvider { responder, delay }
    }

    /// The wait before each answer.
    pub fn delay(&self) -> Duration {
        self.delay
    }
}

#[async_trait]
impl AiProvider for OfflineProvider {
    fn name(&self) -> &str {
        OFFLINE
    }

    fn model(&self) -> &str {
        OFFLINE
    }

    async fn generate_json(&self, request: &JsonRequest) -> Result<Value, ProviderError> {
        // Validated like every provider's request, so a request that works offline works online.
        request.validate(OFFLINE)?;
        tokio::time::sleep(self.delay).await;
        let answer = self.responder.respond(request, offline_seed(request))?;
        check_answer(OFFLINE, request, answer)
    }

    /// Emits the answer's array items one at a time, the delay spread evenly over them, as a
    /// model writing them would. An answer that is not `{"<name>": [items]}` comes whole after
    /// the delay.
    async fn stream_json(
        &self,
        request: &JsonRequest,
        on_text: &mut TextSink<'_>,
    ) -> Result<Streamed, ProviderError> {
        request.validate(OFFLINE)?;
        let answer = self.responder.respond(request, offline_seed(request))?;
        let answer = check_answer(OFFLINE, request, answer)?;
        let pieces = item_pieces(&answer);
        let steps = u32::try_from(pieces.len().max(1)).unwrap_or(u32::MAX);
        let step = self.delay / steps;
        for piece in &pieces {
            tokio::time::sleep(step).await;
            on_text(piece);
        }
        Ok(Streamed {
            answer,
            usage: None,
        })
    }
}

/// The answer's text cut after each array item: `{"questions":[` + item, `,` + item, …, `]}`
/// with the closing brackets on the last piece. Concatenated they are the answer's JSON.
fn item_pieces(answer: &Value) -> Vec<String> {
    let single_array = answer
        .as_object()
        .filter(|object| object.len() == 1)
        .and_then(|object| object.iter().next())
        .and_then(|(key, value)| value.as_array().map(|items| (key, items)));
    let Some((key, items)) = single_array.filter(|(_, items)| !items.is_empty()) else {
        return vec![answer.to_string()];
    };
    let last = items.len() - 1;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut piece = if i == 0 {
                format!("{{{}:[", Value::from(key.as_str()))
            } else {
                ",".to_owned()
            };
            piece.push_str(&item.to_string());
            if i == last {
                piece.push_str("]}");
            }
            piece
        })
        .collect()
}

/// The seed the offline provider passes to its responder: a hash of the prompt and the hints, so
/// the same request always gets the same answer. Key order in `hints` does not matter.
pub fn offline_seed(request: &JsonRequest) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update((request.prompt.len() as u64).to_le_bytes());
    hasher.update(request.prompt.as_bytes());
    let mut hints = String::new();
    write_canonical(&request.hints, &mut hints);
    hasher.update(hints.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// JSON with object keys sorted at every level. serde_json's own order depends on whether some
/// crate in the build enabled `preserve_order`, which must not change seeds.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
