//! Writing a live-stream response straight onto the socket, without hyper.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for every connection for as long
//! as it lives, neither configurable; for an SSE connection that idles for minutes they were
//! most of its memory. Here a live stream keeps only its socket and its frame source: the head
//! is written from a short-lived buffer, each frame as one chunk of `Transfer-Encoding:
//! chunked`, and the connection closes when the stream ends (`Connection: close`, so the client
//! never expects another request on it). Reading is only a watch for the client going away.
//!
//! Why hand-written: this path exists for a measured reason, idle-connection memory. 10,000
//! idle SSE connections cost 6.2 KiB each on it against 16.5 KiB before it and 11.3 KiB for a
//! bare hyper server holding the same responses (`docs/benchmarks.md`, "HTTP and SSE"); no
//! server crate lets a connection drop its buffers. Everything else still goes through hyper,
//! and both paths run the same `service.rs`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stall::within;
use crate::body::Body;
use crate::live::SinkSlot;

/// How the body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body at all (204, 304).
    None,
    /// `Content-Length`: a complete answer (an error, say).
    Length(u64),
    /// Chunks until the stream ends: a live stream.
    Chunked,
}

/// Writes `response` on `stream` and closes it. Returns when the body ended, the client went
/// away, a write failed or one waited longer than `stall` for the client to take data; errors
/// only say the client is gone (or stuck), so the caller just logs them.
pub(crate) async fn write_response(
    stream: TcpStream,
    response: Response<Body>,
    stall: Duration,
) -> io::Result<()> {
    let (parts, mut body) = response.into_parts();
    // The socket is shared with the live hub when the stream asks for it (a task stream: the
    // hub then writes its new versions to every idle subscriber in one pass, `live::sink`).
    let socket = Arc::new(stream);
    let sink = parts
        .extensions
        .get::<SinkSlot>()
        .map(|slot| slot.fill(socket.clone()));
    let mut stream = SharedSocket(&socket);
    let framing = if parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED
        || parts.status.is_informational()
    {
        Framing::None
    } else {
        match http_body::Body::size_hint(&body).exact() {
            Some(length) => Framing::Length(length),
            None => Framing::Chunked,
        }
    };
    let head = encode_head(&parts, framing);
    drop(parts);
    within(stall, stream.write_all(&head)).await?;
    drop(head);
    if framing != Framing::None {
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                () = client_gone(&socket) => return Ok(()),
            };
            let Some(Ok(frame)) = frame else { break };
            // Trailers are never sent by the live streams; there is nothing to write for them.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            // The stream claimed the socket for this frame; what the hub left half written
            // goes first.
            if let Some(rest) = sink.as_ref().and_then(|sink| sink.take_pending()) {
                within(stall, stream.write_all(&rest)).await?;
            }
            if framing == Framing::Chunked {
                within(stall, write_chunk(&mut stream, &data)).await?;
            } else {
                within(stall, stream.write_all(&data)).await?;
            }
            if let Some(sink) = &sink {
                sink.release();
            }
        }
        if framing == Framing::Chunked {
            within(stall, stream.write_all(b"0\r\n\r\n")).await?;
        }
    }
    within(stall, stream.shutdown()).await
}

/// Writes on a socket the live hub may also write on (between the stream's frames, see
/// `live::sink`); tokio's `TcpStream` writes through `&self` with readiness, so no lock is
/// needed for the bytes themselves.
struct SharedSocket<'a>(&'a TcpStream);

impl SharedSocket<'_> {
    /// Runs `write` once the socket is writable, again whenever readiness was stale (the
    /// hub may have filled the socket between the two), until it writes or fails.
    fn poll_when_ready(
        &self,
        cx: &mut Context<'_>,
        write: impl Fn(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match write(self.0) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                written => return Poll::Ready(written),
            }
        }
    }
}

impl AsyncWrite for SharedSocket<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_when_ready(cx, |socket| socket.try_write(data))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        parts: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_when_ready(cx, |socket| socket.try_write_vectored(parts))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Ends the sending side at once, whoever else still holds the socket.
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(self.0).shutdown(std::net::Shutdown::Write))
    }
}

/// The status line and headers, with the framing header, `Date` and `Connection: close`.
fn encode_head(parts: &http::response::Parts, framing: Framing) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or_default()
            .as_bytes(),
    );
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        // The framing is this writer's to decide.
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == "connection" {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::None => {}
        Framing::Length(length) => {
            head.extend_from_slice(format!("content-length: {length}\r\n").as_bytes());
        }
        Framing::Chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    head.extend_from_slice(b"connection: close\r\ndate: ");
    head.extend_from_slice(httpdate::fmt_http_date(SystemTime::now()).as_bytes());
    head.extend_from_slice(b"\r\n\r\n");
    head
}

/// Writes one chunk of a chunked body (size in hex, CRLF, the data, CRLF) with one vectored
/// write and no copy of the data: every live event passes here once per subscriber. An empty
/// `data` writes nothing, since an empty chunk would end the body.
async fn write_chunk<W: AsyncWrite + Unpin>(out: &mut W, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut size_line = [0u8; 18];
    let size_line = chunk_size_line(data.len(), &mut size_line);
    let parts: [&[u8]; 3] = [size_line, data, b"\r\n"];
    let mut written = out.write_vectored(&parts.map(io::IoSlice::new)).await?;
    // A full socket buffer takes only part of it: write the rest piece by piece.
    for part in parts {
        if written >= part.len() {
            written -= part.len();
            continue;
        }
        out.write_all(&part[written..]).await?;
        written = 0;
    }
    Ok(())
}

/// `len` in hex followed by CRLF, written into `buffer` (16 hex digits at most).
fn chunk_size_line(len: usize, buffer: &mut [u8; 18]) -> &[u8] {
    use std::io::Write;
    let mut rest = &mut buffer[..];
    // 18 bytes always hold a `usize` in hex and CRLF.
    let _ = write!(rest, "{len:x}\r\n");
    let used = 18 - rest.len();
    &buffer[..used]
}

/// Completes when the client closed its side or the socket failed. Anything the client sends
/// meanwhile is discarded: the response said `Connection: close`, so no request follows.
async fn client_gone(stream: &TcpStream) {
    let mut discard = [0u8; 64];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.try_read(&mut discard) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use http::header::CONTENT_TYPE;

    use super::*;

    fn head_of(response: Response<Body>, framing: Framing) -> String {
        let (parts, _) = response.into_parts();
        String::from_utf8(encode_head(&parts, framing)).expect("ASCII head")
    }

    #[test]
    fn the_head_names_the_framing_and_closes_the_connection() {
        let mut response = Response::new(crate::body::empty());
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, "application/json".parse().expect("value"));
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, "999".parse().expect("value"));
        let head = head_of(response, Framing::Length(17));
        assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\ncontent-length: 17\r\n"), "{head}");
        assert!(
            !head.contains("999"),
            "the handler's length is replaced: {head}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(head.contains("\r\ndate: "), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "{head}");

        let streaming = head_of(Response::new(crate::body::empty()), Framing::Chunked);
        assert!(streaming.contains("\r\ntransfer-encoding: chunked\r\n"));
        let empty = head_of(Response::new(crate::body::empty()), Framing::None);
        assert!(!empty.contains("content-length") && !empty.contains("transfer-encoding"));
    }

    async fn chunk_bytes(data: &[u8]) -> Vec<u8> {
        let mut encoded = Vec::new();
        write_chunk(&mut encoded, data)
            .await
            .expect("write to a Vec");
        encoded
    }

    #[tokio::test]
    async fn chunks_carry_their_size_in_hex() {
        let encoded = chunk_bytes(&[b'x'; 26]).await;
        assert_eq!(&encoded[..4], b"1a\r\n");
        assert_eq!(&encoded[encoded.len() - 2..], b"\r\n");
        assert_eq!(encoded.len(), 4 + 26 + 2);
        assert!(
            chunk_bytes(&[]).await.is_empty(),
            "an empty chunk would end the body"
        );
    }

    #[tokio::test]
    async fn a_chunk_written_in_pieces_arrives_whole() {
        // A duplex pipe with room for 8 bytes at a time takes the vectored write partly.
        let (mut writer, mut reader) = tokio::io::duplex(8);
        let data = vec![b'y'; 300];
        let sending = tokio::spawn(async move { write_chunk(&mut writer, &data).await });
        let mut received = Vec::new();
        let mut buffer = [0u8; 64];
        while received.len() < 3 + 2 + 300 + 2 {
            let n = tokio::io::AsyncReadExt::read(&mut reader, &mut buffer)
                .await
                .expect("read");
            received.extend_from_slice(&buffer[..n]);
        }
        sending.await.expect("no panic").expect("written");
        assert_eq!(&received[..5], b"12c\r\n");
        assert!(received[5..305].iter().all(|b| *b == b'y'));
        assert_eq!(&received[305..], b"\r\n");
    }
}
