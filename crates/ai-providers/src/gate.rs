//! A gate in front of every provider call: [`GatedProvider`] wraps an [`AiProvider`] so that a
//! call starts only when its [`ProviderGate`] admits it (caps on calls in flight, calls and
//! tokens per minute, a hold after a provider's 429), reports the tokens it used when it ends,
//! and turns a provider's "wait" (429, or 503 with `Retry-After`) into a hold every caller sees.
//!
//! The gate is a trait so that this crate stays free of storage: the implementation that shares
//! limits between every worker and instance on one database lives with the code that knows
//! both sides (`quiz::StoreGate`, over `task_store::ProviderLimitStore`). A refused call ends
//! with [`ProviderError::RateLimited`] and the wait, which callers already treat as "hold the
//! task back without using an attempt".

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::{AiProvider, JsonRequest, ProviderError, Streamed, TextSink, TokenUsage};

/// A started call's admission, handed back to [`ProviderGate::leave`] when the call ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatePass {
    /// The provider's name.
    pub provider: String,
    /// The model.
    pub model: String,
    /// The gate's own id for the call (its slot).
    pub id: String,
    /// When the gate frees the slot by itself if the call is never left (a crash), in Unix
    /// milliseconds.
    pub expires_at: i64,
}

/// Decides when calls to a provider and model may start.
#[async_trait]
pub trait ProviderGate: Send + Sync + std::fmt::Debug {
    /// Admits one call now, or refuses it with [`ProviderError::RateLimited`] carrying how long
    /// to wait (a hold, or a full cap). A gate that cannot decide (its database is away) answers
    /// [`ProviderError::Transient`].
    async fn enter(&self, provider: &str, model: &str) -> Result<GatePass, ProviderError>;

    /// Ends an admitted call, with the tokens it used if the provider reported them.
    async fn leave(&self, pass: GatePass, usage: Option<TokenUsage>);

    /// The provider asked to wait `wait`: hold every call of `provider`'s `model` back until
    /// then.
    async fn hold(&self, provider: &str, model: &str, wait: Duration);
}

/// An [`AiProvider`] whose every call goes through a [`ProviderGate`].
#[derive(Debug)]
pub struct GatedProvider {
    inner: Arc<dyn AiProvider>,
    gate: Arc<dyn ProviderGate>,
}

impl GatedProvider {
    /// `inner` behind `gate`.
    pub fn new(inner: Arc<dyn AiProvider>, gate: Arc<dyn ProviderGate>) -> Self {
        Self { inner, gate }
    }

    async fn enter(&self) -> Result<Left, ProviderError> {
        let pass = self
            .gate
            .enter(self.inner.name(), self.inner.model())
            .await?;
        Ok(Left {
            gate: Arc::clone(&self.gate),
            pass: Some(pass),
        })
    }

    /// Ends the call: a wait the provider asked for becomes a hold, and the slot is left with
    /// the usage.
    async fn finish(
        &self,
        mut left: Left,
        result: Result<Streamed, ProviderError>,
    ) -> Result<Streamed, ProviderError> {
        if let Err(ProviderError::RateLimited {
            retry_after: Some(wait),
            ..
        }) = &result
        {
            self.gate
                .hold(self.inner.name(), self.inner.model(), *wait)
                .await;
        }
        let usage = result.as_ref().ok().and_then(|s| s.usage);
        if let Some(pass) = left.pass.take() {
            self.gate.leave(pass, usage).await;
        }
        result
    }
}

/// Leaves the gate if the call's future is dropped mid-call (a cancelled task), so its slot
/// frees at once rather than when the lease expires.
struct Left {
    gate: Arc<dyn ProviderGate>,
    pass: Option<GatePass>,
}

impl Drop for Left {
    fn drop(&mut self) {
        let Some(pass) = self.pass.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let gate = Arc::clone(&self.gate);
            runtime.spawn(async move { gate.leave(pass, None).await });
        }
    }
}

#[async_trait]
impl AiProvider for GatedProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn model(&self) -> &str {
        self.inner.model()
    }

    async fn generate_json(&self, request: &JsonRequest) -> Result<Value, ProviderError> {
        Ok(self.generate_json_with_usage(request).await?.answer)
    }

    async fn generate_json_with_usage(
        &self,
        request: &JsonRequest,
    ) -> Result<Streamed, ProviderError> {
        let left = self.enter().await?;
        let result = self.inner.generate_json_with_usage(request).await;
        self.finish(left, result).await
    }

    async fn stream_json(
        &self,
        request: &JsonRequest,
        on_text: &mut TextSink<'_>,
    ) -> Result<Streamed, ProviderError> {
        let left = self.enter().await?;
        let result = self.inner.stream_json(request, on_text).await;
        self.finish(left, result).await
    }
}
