//! A minimal SSE client straight on a TCP socket, for the latency scenario: one task per
//! subscriber reading its socket, so the 1,000 in-process clients cost as little CPU as
//! possible and the measurement reflects the servers. It speaks just enough HTTP/1.1: one
//! `GET`, a `200` head, and a chunked body, which it de-chunks before the SSE parser sees it.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An open event stream.
pub struct RawStream {
    tcp: TcpStream,
    chunks: Dechunker,
    /// Body bytes that arrived with the response head.
    early: Vec<u8>,
}

impl RawStream {
    /// Sends the request and reads the response head; panics unless it is a chunked `200`.
    pub async fn open(addr: SocketAddr, path: &str, token: &str) -> RawStream {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\n\r\n"
        );
        tcp.write_all(request.as_bytes())
            .await
            .expect("send the request");
        let mut head = Vec::new();
        let mut buffer = [0u8; 4096];
        let end = loop {
            let read = tcp.read(&mut buffer).await.expect("read the head");
            assert!(
                read > 0,
                "the server closed the connection before answering"
            );
            head.extend_from_slice(&buffer[..read]);
            if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200"), "not a stream: {text}");
        assert!(
            text.contains("transfer-encoding: chunked"),
            "expected a chunked body: {text}"
        );
        RawStream {
            tcp,
            chunks: Dechunker::default(),
            early: head[end..].to_vec(),
        }
    }

    /// The next piece of the body (de-chunked), or `None` when the body or connection ended.
    pub async fn next(&mut self, buffer: &mut [u8]) -> Option<Vec<u8>> {
        loop {
            if self.chunks.done {
                return None;
            }
            let early = std::mem::take(&mut self.early);
            let payload = if early.is_empty() {
                let read = self.tcp.read(buffer).await.ok()?;
                if read == 0 {
                    return None;
                }
                self.chunks.feed(&buffer[..read])
            } else {
                self.chunks.feed(&early)
            };
            if !payload.is_empty() {
                return Some(payload);
            }
        }
    }
}

/// Undoes `Transfer-Encoding: chunked`: `<hex size>[;ext]\r\n<data>\r\n`, ending with a zero
/// size.
#[derive(Default)]
struct Dechunker {
    /// The size line being read.
    size_line: Vec<u8>,
    /// Data bytes left in the current chunk.
    remaining: usize,
    /// The CRLF after a chunk's data is being skipped: bytes left of it.
    skip: usize,
    done: bool,
}

impl Dechunker {
    fn feed(&mut self, mut input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while !input.is_empty() && !self.done {
            if self.skip > 0 {
                let n = self.skip.min(input.len());
                self.skip -= n;
                input = &input[n..];
            } else if self.remaining > 0 {
                let n = self.remaining.min(input.len());
                out.extend_from_slice(&input[..n]);
                self.remaining -= n;
                input = &input[n..];
                if self.remaining == 0 {
                    self.skip = 2;
                }
            } else {
                let byte = input[0];
                input = &input[1..];
                if byte != b'\n' {
                    self.size_line.push(byte);
                    continue;
                }
                let line = String::from_utf8_lossy(&self.size_line).into_owned();
                self.size_line.clear();
                let hex = line.trim().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(hex, 16).expect("a chunk size");
                if size == 0 {
                    self.done = true;
                } else {
                    self.remaining = size;
                }
            }
        }
        out
    }
}
