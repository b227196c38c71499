//! The least an SSE server can do, for scenario 2: it answers each `GET` with a chunked
//! `200` head and keeps the socket; to publish, ONE loop writes the frame to every socket with
//! non-blocking writes. No HTTP library, no routing, no per-connection task or wake-up, no
//! store and no encoding. Its latency, measured with the same clients as the real servers, is
//! what the machine allows an SSE fan-out of this size.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The head and opening chunk every subscriber gets (`retry: 3000`, as the real servers send).
const OPENING: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
    cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\nd\r\nretry: 3000\n\n\r\n";

/// The subscribers' sockets; publishing writes to all of them in one pass.
#[derive(Clone, Default)]
pub struct MinimalSse {
    subscribers: Arc<Mutex<Vec<TcpStream>>>,
}

impl MinimalSse {
    /// Listens on 127.0.0.1; every connection that sends a request head becomes a subscriber.
    pub async fn start() -> (MinimalSse, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let server = MinimalSse::default();
        let accepting = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let server = accepting.clone();
                tokio::spawn(async move {
                    if let Ok(tcp) = answer(tcp).await {
                        lock(&server.subscribers).push(tcp);
                    }
                });
            }
        });
        (server, addr)
    }

    /// Writes `frame` as one chunk to every subscriber, in one pass. A socket whose buffer is
    /// full (not expected: each subscriber reads every event long before the next) gets the
    /// rest with a waiting write after the pass.
    pub async fn publish(&self, frame: &[u8]) {
        let mut chunk = format!("{:x}\r\n", frame.len()).into_bytes();
        chunk.extend_from_slice(frame);
        chunk.extend_from_slice(b"\r\n");
        let mut subscribers = std::mem::take(&mut *lock(&self.subscribers));
        let mut behind = Vec::new();
        for (index, tcp) in subscribers.iter().enumerate() {
            match tcp.try_write(&chunk) {
                Ok(written) if written == chunk.len() => {}
                Ok(written) => behind.push((index, written)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => behind.push((index, 0)),
                Err(error) => panic!("a subscriber's socket failed: {error}"),
            }
        }
        for (index, written) in behind {
            subscribers[index]
                .write_all(&chunk[written..])
                .await
                .expect("finish a delayed frame");
        }
        lock(&self.subscribers).extend(subscribers);
    }

    /// Ends every stream as tasklane's direct path does (the last chunk, a shutdown, then the
    /// socket is closed) and forgets the subscribers.
    pub async fn close(&self) {
        let subscribers = std::mem::take(&mut *lock(&self.subscribers));
        for mut tcp in subscribers {
            let _ = tcp.write_all(b"0\r\n\r\n").await;
            let _ = tcp.shutdown().await;
        }
    }
}

/// Reads the request head and writes the response head with the opening chunk.
async fn answer(mut tcp: TcpStream) -> io::Result<TcpStream> {
    tcp.set_nodelay(true)?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = tcp.read(&mut buffer).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buffer[..read]);
    }
    tcp.write_all(OPENING).await?;
    Ok(tcp)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
