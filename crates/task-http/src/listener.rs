//! Binding the listening socket with a backlog that holds a reconnect storm. `std` and tokio's
//! `TcpListener::bind` ask for a backlog of 128 (1024 in newer std); when a thousand browsers
//! reconnect at once after a restart, the connections beyond it wait for a SYN retransmit, a
//! second or more. The kernel caps whatever is asked at `net.core.somaxconn`.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// The listen backlog asked for unless configured otherwise (the kernel may cap it lower).
pub const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

/// Where Linux keeps the cap on listen backlogs.
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";

/// Listens on `addr` with a backlog of `backlog` connections (capped by the kernel), with
/// `SO_REUSEADDR` so a restarted server can bind while old connections linger in `TIME_WAIT`.
///
/// # Errors
/// The socket cannot be created, bound or put into listening mode (address in use, no
/// permission, a zero backlog).
pub fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    if backlog == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the listen backlog must be at least 1",
        ));
    }
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(backlog)?;
    let effective = kernel_cap().map_or(backlog, |cap| backlog.min(cap));
    if effective < backlog {
        tracing::warn!(
            asked = backlog,
            effective,
            "listen backlog capped by net.core.somaxconn; raise it to hold larger reconnect storms"
        );
    }
    tracing::debug!(backlog = effective, "listening");
    Ok(listener)
}

/// The kernel's cap on listen backlogs, where the system says (Linux).
pub fn kernel_cap() -> Option<u32> {
    std::fs::read_to_string(SOMAXCONN)
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listens_with_the_asked_backlog_and_refuses_zero() {
        let listener = listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let error = listen("127.0.0.1:0".parse().unwrap(), 0).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
