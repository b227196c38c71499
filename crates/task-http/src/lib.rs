//! The HTTP edge: REST and SSE endpoints on bare hyper 1.x, auth, limits, metrics and dashboard
//! assets.
//!
//! Start with [`AppState::new`] (stores, [`HttpConfig`], the task types the worker runtime
//! handles) and [`serve`] (a bound listener and a shutdown future). **Invariant: errors reach
//! clients only as [`ApiError`]**: JSON `{"error":"..."}` with the right status, details for
//! 4xx, nothing internal for 5xx.

mod api_error;
pub mod assets;
pub mod auth;
pub mod body;
mod chain;
mod cidr;
mod config;
mod connection;
mod creator;
mod error;
mod fold_metrics;
mod generation;
mod handlers;
mod idempotency;
mod input;
mod listener;
pub mod live;
pub mod metrics;
mod price_book;
mod queue_ledger;
mod rate_limit;
mod response;
mod router;
mod server;
mod service;
mod state;
mod storage_health;
mod stream_slots;
mod strict_json;
mod task_counts;
mod ws;

pub use api_error::ApiError;
pub use cidr::IpCidr;
pub use config::*;
pub use error::HttpError;
pub use fold_metrics::WAIT_BUCKETS;
pub use generation::GENERATION_TASK_TYPE;
pub use listener::{kernel_cap, listen, DEFAULT_LISTEN_BACKLOG};
pub use price_book::{default_prices, read_prices, PriceBook};
pub use server::serve;
pub use state::AppState;
pub use storage_health::DEGRADED_HOLD;
pub use task_counts::COUNTS_REFRESH_INTERVAL;
