//! One accepted connection, from its first request head to its close.
//!
//! The first head decides who serves the connection: a bodiless `GET` of a live stream is
//! answered directly ([`direct`]), so an idle SSE connection holds only its socket and its
//! stream; every other connection goes to hyper with the bytes already read replayed
//! ([`rewind`]), with upgrades enabled so `GET /api/ws` can take the socket over. Both run the same service (routing, auth, handlers, log, metrics) and both
//! are watched by the server's graceful shutdown.

mod direct;
mod first_head;
mod rewind;
mod stall;

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::response::nosniff;
use crate::service::{handle, handle_stream};
use crate::state::AppState;
use crate::ws::UpgradeSlot;
use first_head::FirstHead;
pub(crate) use first_head::MAX_HEAD;
use rewind::Rewind;
use stall::WriteStall;

/// Serves `stream` until it closes. `shutdown` keeps the server's graceful shutdown waiting
/// for this connection; `place` is the connection's place under the server's cap, given back
/// when this returns.
pub(crate) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: AppState,
    http: http1::Builder,
    shutdown: Watcher,
    place: OwnedSemaphorePermit,
) {
    let _place = place;
    let header_timeout = state.config().header_read_timeout;
    let write_stall = state.config().write_stall_timeout;
    match first_head::read(&mut stream, header_timeout).await {
        FirstHead::Gone => {}
        FirstHead::Stream { parts, route } => {
            // Boxed so the handler's state (large, and only needed until the response exists)
            // is freed before the stream starts, instead of sizing this task for good.
            let response = Box::pin(handle_stream(state, *parts, peer.ip(), route)).await;
            if let Err(error) = direct::write_response(stream, response, write_stall).await {
                tracing::debug!(%error, %peer, "live stream ended with an error");
            }
            drop(shutdown);
        }
        FirstHead::Rejected(error) => {
            tracing::debug!(%peer, status = error.status().as_u16(), error = error.message(), "request head refused");
            let mut response = error.into_response();
            nosniff(&mut response);
            if let Err(error) = direct::write_response(stream, response, write_stall).await {
                tracing::debug!(%error, %peer, "refusal not delivered");
            }
            drop(shutdown);
        }
        FirstHead::Hyper(read) => {
            // Boxed: hyper's connection state is most of this function's future, and every
            // connection's task is sized for its largest branch; a live stream's connection
            // would otherwise carry it for its whole life.
            Box::pin(serve_hyper(read, stream, peer, state, http)).await;
            drop(shutdown);
        }
    }
}

/// Serves a connection through hyper, with upgrades (`GET /api/ws`), until it closes or the
/// server shuts it down gracefully; a WebSocket session then runs here.
async fn serve_hyper(
    read: Vec<u8>,
    stream: TcpStream,
    peer: SocketAddr,
    state: AppState,
    http: http1::Builder,
) {
    let write_stall = state.config().write_stall_timeout;
    let stop = state.shutdown_token().clone();
    let upgrades = UpgradeSlot::default();
    let slot = upgrades.clone();
    let service = service_fn(move |mut request: hyper::Request<_>| {
        let state = state.clone();
        request.extensions_mut().insert(slot.clone());
        async move { Ok::<_, Infallible>(handle(state, request, peer.ip()).await) }
    });
    let io = TokioIo::new(WriteStall::new(Rewind::new(read, stream), write_stall));
    // hyper-util's `Watcher::watch` takes no upgradeable connection, so the graceful
    // shutdown is done here: the server cancels `stop` when it starts shutting down, and
    // the caller holding its watcher keeps it waiting for this connection (and its session).
    let connection = http.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
    // A WebSocket session runs here, after hyper handed the socket over, so it keeps
    // the connection's place under the server's cap. It ends on server shutdown.
    if let Some(session) = upgrades.take() {
        session.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection's task is `serve`'s future (the server spawns it as it is), a live
    /// stream's connection for its whole life; hyper's connection state (about 900 bytes of it
    /// in a debug build) is boxed in its own branch so that idle streams do not carry it. 2,920
    /// bytes before that in a debug build, 2,024 after (2,000 in a release build).
    #[tokio::test]
    async fn a_connection_task_does_not_carry_hypers_state() {
        let store = std::sync::Arc::new(task_store::MemoryStore::new());
        let state = AppState::new(store.clone(), store, crate::HttpConfig::default(), ["noop"])
            .expect("a valid config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("address"))
            .await
            .expect("connect");
        let (server, peer) = listener.accept().await.expect("accept");
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let place = std::sync::Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .expect("a free place");
        let future = serve(
            server,
            peer,
            state,
            http1::Builder::new(),
            graceful.watcher(),
            place,
        );
        let size = std::mem::size_of_val(&future);
        assert!(
            size <= 2400,
            "serve's future is {size} bytes: did hyper's connection state come back inline?"
        );
        drop(client);
    }
}
