//! `GET /api/providers` (superusers only): each provider and model's configured limits, calls
//! in flight, this minute's calls and tokens and any hold (a provider's 429), as every instance
//! on the database sees them (`task_store::ProviderLimitStore`).

use http::Response;
use serde::Serialize;
use task_core::UnixMillis;
use task_store::{ProviderCaps, ProviderLimit};

use super::{now_millis, Ctx};
use crate::body::Body;
use crate::response::ok;
use crate::ApiError;

/// Caps as JSON: `null` is no cap.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Caps {
    concurrency: Option<u32>,
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u64>,
}

impl From<ProviderCaps> for Caps {
    fn from(caps: ProviderCaps) -> Self {
        Self {
            concurrency: caps.concurrency,
            requests_per_minute: caps.requests_per_minute,
            tokens_per_minute: caps.tokens_per_minute,
        }
    }
}

/// One configured limit (`model` is `*` for every model of the provider).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Limit {
    provider: String,
    model: String,
    #[serde(flatten)]
    caps: Caps,
}

impl From<&ProviderLimit> for Limit {
    fn from(limit: &ProviderLimit) -> Self {
        Self {
            provider: limit.provider.clone(),
            model: limit.model.clone().unwrap_or_else(|| "*".to_owned()),
            caps: limit.caps.into(),
        }
    }
}

/// One provider and model the database has seen calls (or a hold) for.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Usage {
    provider: String,
    model: String,
    /// The caps that apply to it (its own limit, else its provider's wildcard).
    limits: Caps,
    in_flight: u64,
    window_start: UnixMillis,
    requests: u64,
    tokens: u64,
    hold_until: Option<UnixMillis>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    now: UnixMillis,
    limits: Vec<Limit>,
    providers: Vec<Usage>,
}

/// `GET /api/providers` (superusers only).
///
/// # Errors
/// 401 when anonymous, 403 for a normal user, 404 when the server has no provider limits
/// store, 503 when the store cannot be read.
pub async fn providers(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    if !identity.is_superuser() {
        return Err(ApiError::forbidden(
            "only a superuser may read the provider limits",
        ));
    }
    let (store, limits) = ctx
        .state
        .provider_limits()
        .ok_or_else(|| ApiError::not_found("provider limits are not enabled on this server"))?;
    let now = now_millis();
    let usage = store.provider_usage(now).await?;
    Ok(ok(&Answer {
        now,
        limits: limits.limits().iter().map(Limit::from).collect(),
        providers: usage
            .into_iter()
            .map(|u| Usage {
                limits: limits.caps_for(&u.key.provider, &u.key.model).into(),
                provider: u.key.provider,
                model: u.key.model,
                in_flight: u.in_flight,
                window_start: u.window_start,
                requests: u.requests,
                tokens: u.tokens,
                hold_until: u.hold_until,
            })
            .collect(),
    }))
}
