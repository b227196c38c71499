//! `GET /api/ws`: every live subscription of a page over one WebSocket.
//!
//! The upgrade goes through hyper (`hyper::upgrade`, the connection is served
//! `with_upgrades`); the framing is done by `tokio-tungstenite`, the most used and longest
//! maintained WebSocket crate for Tokio. `fastwebsockets` was the other candidate: it is faster
//! per frame, but our frames are a few hundred bytes of JSON each, where framing costs nothing
//! beside the fan-out, while tungstenite's read and write buffers can be sized down for idle
//! connections (see [`socket_config`]), which is what decides memory per connection.
//!
//! The protocol (see `docs/api.md`, "Live updates (WebSocket)") carries the same events as SSE:
//! [`protocol`] parses what clients send and writes what the server sends, [`session`] runs one
//! connection's subscriptions, [`handshake`] checks and answers the upgrade request.
//!
//! **Invariants:** like SSE, a slow client gets the newest state of a task, never a queue that
//! grows (the session writes one batch at a time and subscriptions coalesce meanwhile); an idle
//! connection costs no database query.

pub(crate) mod handshake;
pub(crate) mod protocol;
pub(crate) mod session;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The largest message a client may send. Client messages are small commands; anything bigger
/// is refused by the framing layer, which closes the connection.
pub const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// The longest subscription id a client may choose.
pub const MAX_SUBSCRIPTION_ID: usize = 64;

/// Framing settings: a read buffer sized for small client commands instead of tungstenite's
/// 128 KiB, which it allocates up front for every connection (1 KiB: a command fits in one
/// read, a rare bigger one takes several; measured in benchmarks.md, memory per idle
/// connection); writes go out as they are made (the session flushes after each batch anyway).
pub(crate) fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}

/// A session waiting for its connection to be handed over by hyper.
pub(crate) type PendingSession = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Put in each request's extensions by the connection that serves it, so a WebSocket session
/// runs on that connection's own task once hyper lets go of the socket: it keeps holding the
/// connection's place under the server's connection cap for as long as it lives.
#[derive(Clone, Default)]
pub(crate) struct UpgradeSlot(Arc<Mutex<Option<PendingSession>>>);

impl UpgradeSlot {
    /// Hands `session` to the connection.
    pub(crate) fn put(&self, session: PendingSession) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(session);
    }

    /// The session to run after hyper finished with the connection, if a request upgraded it.
    pub(crate) fn take(&self) -> Option<PendingSession> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}
