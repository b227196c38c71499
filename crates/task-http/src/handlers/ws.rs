//! `GET /api/ws`: who may open a WebSocket, and the hand-over of the upgraded connection to its
//! session (`crate::ws`).

use http::Response;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::streams::stream_slot;
use super::Ctx;
use crate::auth::csrf;
use crate::body::Body;
use crate::ws::session::{self, Session};
use crate::ws::{handshake, socket_config, UpgradeSlot};
use crate::ApiError;

/// Checks the upgrade (400), its `Origin` (403: browsers send it on every WebSocket handshake,
/// so a page of another site is refused whatever credentials ride along), the caller (401)
/// and the per-user cap on live connections (429), then answers `101` and hands the
/// connection to a [`Session`].
pub async fn websocket(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let key = handshake::validate(&ctx.parts.headers)?;
    csrf::check_origin_if_present(&ctx.parts.headers)?;
    let identity = ctx.require().await?;
    let slot = stream_slot(ctx, &identity.email)?;
    let on_upgrade = ctx.parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
        ApiError::bad_request("this connection cannot be upgraded (HTTP/1.1 only)")
    })?;
    let session = Session::new(ctx.state.clone(), identity, slot);
    let run = Box::pin(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(socket_config()),
                )
                .await;
                session::run(socket, session).await;
            }
            Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
        }
    });
    match ctx.parts.extensions.get::<UpgradeSlot>() {
        Some(slot) => slot.put(run),
        None => {
            tokio::spawn(run);
        }
    }
    Ok(handshake::accept(&key))
}
