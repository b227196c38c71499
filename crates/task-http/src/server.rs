//! The accept loop: HTTP/1.1 connections (on bare hyper, live streams written directly; see
//! `crate::connection`) with a header read timeout (slowloris), a cap on concurrent
//! connections, and graceful shutdown with a time cap.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::connection;
use crate::state::AppState;
use crate::HttpError;

/// Pause after a failed `accept` (typically: out of file descriptors) before trying again, so
/// the loop does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `state` on `listener` until `shutdown` completes, then shuts down gracefully: stops
/// accepting, ends every live stream (they send nothing more and close), lets in-flight requests
/// finish, and after [`crate::HttpConfig::shutdown_grace`] stops waiting for stragglers.
///
/// # Errors
/// None today: failed accepts are logged and retried. The `Result` leaves room for fatal
/// listener errors.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> Result<(), HttpError> {
    let config = state.config().clone();
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        // The same head size limit as the first head's reader (`connection::first_head`).
        .max_buf_size(connection::MAX_HEAD)
        .keep_alive(true);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, max_connections = config.max_connections, "serving");
    }
    tokio::pin!(shutdown);
    loop {
        // Waiting for a free slot before accepting leaves excess clients in the kernel's
        // backlog instead of holding sockets we will not serve.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed; retrying shortly");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                    }
                }
            },
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        // `serve`'s future is the whole task, spawned as it is: an `async move` block that
        // captured it and awaited it would hold it twice (the captured value and the awaited
        // one), doubling every connection's task for its whole life (4.2 KB instead of 2.1).
        tokio::spawn(connection::serve(
            stream,
            peer,
            state.clone(),
            http.clone(),
            graceful.watcher(),
            permit,
        ));
    }
    drop(listener);
    tracing::info!(
        open_connections = graceful.count(),
        "shutting down: no longer accepting, ending live streams"
    );
    state.shutdown_token().cancel();
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!(grace = ?config.shutdown_grace, "connections still open after the grace period; dropping them");
        }
    }
    Ok(())
}
