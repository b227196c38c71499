//! A direct-path task stream's socket, shared with the hub so that the hub writes a task's new
//! state to every idle subscriber in one pass, instead of waking one task per stream to write
//! the same frame.
//!
//! Why: with 1,000 subscribers of one task, each update woke 1,000 stream tasks, and the wake-ups
//! (scheduled across the runtime's workers, each followed by its own write) put the last client
//! about a third behind a server that writes every socket from one loop (`docs/benchmarks.md`,
//! "HTTP and SSE"). Here the hub is that loop; a stream's task wakes only for what the hub
//! leaves to it.
//!
//! **Who writes.** The socket carries one chunked body, so its bytes must never interleave:
//! - the stream's task writes only frames it has *claimed* (`busy`), and gives the socket back
//!   after each one;
//! - the hub writes only when the stream is not busy and nothing is half written, and never
//!   waits: a socket that takes only part of a chunk keeps the rest as `pending`, which the
//!   stream's task writes before anything else;
//! - versions only grow: `seen` is the highest version written or claimed, and neither side
//!   writes a version at or below it, so a client gets each version once, in order.
//!
//! What the hub leaves to the stream's task (it is woken for these): a frame it could not write
//! (busy, pending bytes, a full socket), a deletion, and a finished task's final state when a
//! partial output may have to go out before it (the task has partials in its log). Otherwise
//! the hub writes the final state in its pass like any update, then wakes every stream to end
//! (the wake-ups come after the pass: with 1,000 subscribers, reading the log and writing the
//! final event from each stream's task put the `complete` event twice as late as the updates,
//! `docs/benchmarks.md`, round 7). The stream's own frames (the opening, keep-alives, the
//! timeout event) are its task's as before; its keep-alive timer does not see the hub's writes,
//! so a busy stream also gets a `:` comment every keep-alive interval (a few bytes, harmless to
//! any SSE client).
//!
//! The hub writes its shared frame only while that frame is the stream's frame as it is: once
//! a stream has sent a partial output its update ids carry the partial's position
//! (`<version>.<seq>`), and from then on its task writes every frame (`plain` ends). A stream
//! served by hyper never gets a socket, and list and workflow streams wait on the hub's
//! channels as before.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use task_core::sync::lock;
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Where the connection layer puts a direct-path stream's socket: the response of a stream
/// that can take the hub's writes carries an empty slot as an extension, and the direct writer
/// fills it before it reads the body. A response served by hyper never gets it filled.
#[derive(Debug, Clone, Default)]
pub(crate) struct SinkSlot(Arc<OnceLock<Arc<DirectSink>>>);

impl SinkSlot {
    /// Shares `socket` with the stream; the writer keeps its own handle for its writes. A slot
    /// is filled once: a second call returns the first sink.
    pub(crate) fn fill(&self, socket: Arc<TcpStream>) -> Arc<DirectSink> {
        self.0
            .get_or_init(|| {
                Arc::new(DirectSink {
                    socket,
                    state: Mutex::new(SinkState::default()),
                    wake: Notify::new(),
                })
            })
            .clone()
    }

    /// The sink, once the direct writer filled the slot.
    pub(crate) fn get(&self) -> Option<&Arc<DirectSink>> {
        self.0.get()
    }
}

/// One stream's socket and who may write on it now (see the module doc).
#[derive(Debug)]
pub(crate) struct DirectSink {
    socket: Arc<TcpStream>,
    state: Mutex<SinkState>,
    /// Wakes the stream's task for what the hub left to it. A wake-up with nobody waiting is
    /// kept as a permit, so none is lost between two waits.
    wake: Notify,
}

#[derive(Debug, Default)]
struct SinkState {
    /// The highest task version written or claimed by either side.
    seen: i64,
    /// The stream's task is writing a frame.
    busy: bool,
    /// The rest of a chunk the hub began; the next writer writes it first.
    pending: Option<Bytes>,
    /// The stream ended or its socket failed: the hub writes nothing more.
    closed: bool,
    /// The client's frames are the hub's shared frames as they are (no partial output sent).
    plain: bool,
}

impl DirectSink {
    /// The hub's side: writes `chunk` (version `version` of the task, chunk-framed) if the
    /// client has not got that version and nobody is writing; otherwise wakes the stream's task
    /// to deal with it. Never waits. Returns whether the hub wrote (all or the start of) it.
    pub(crate) fn offer(&self, version: i64, chunk: &Bytes) -> bool {
        let mut state = lock(&self.state);
        if state.closed || version <= state.seen {
            return false;
        }
        if state.busy || state.pending.is_some() || !state.plain {
            drop(state);
            self.wake.notify_one();
            return false;
        }
        match self.socket.try_write(chunk) {
            Ok(written) if written == chunk.len() => {
                state.seen = version;
                true
            }
            Ok(written) => {
                state.seen = version;
                state.pending = Some(chunk.slice(written..));
                drop(state);
                self.wake.notify_one();
                true
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                drop(state);
                self.wake.notify_one();
                false
            }
            // The stream's own read or write sees the failure and ends the stream.
            Err(_) => {
                state.closed = true;
                drop(state);
                self.wake.notify_one();
                false
            }
        }
    }

    /// The hub's side, for a state it leaves to the stream's task (a final state, a deletion).
    pub(crate) fn notify(&self) {
        self.wake.notify_one();
    }

    /// Waits for the hub to leave something to the stream's task. Cancel-safe.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The stream's side: claims the socket to write version `version`. `false` when the client
    /// has that version already (the hub wrote it), and then nothing is claimed.
    pub(crate) fn claim_version(&self, version: i64) -> bool {
        let mut state = lock(&self.state);
        if version <= state.seen {
            return false;
        }
        state.seen = version;
        state.busy = true;
        true
    }

    /// The stream's side: claims the socket for a frame that is not a task version (the
    /// opening, a keep-alive, a final event).
    pub(crate) fn claim(&self) {
        lock(&self.state).busy = true;
    }

    /// Whether the client has version `version` (or a newer one), or its writing is begun.
    pub(crate) fn has_version(&self, version: i64) -> bool {
        lock(&self.state).seen >= version
    }

    /// Whether the hub left half a chunk that only the stream's task can finish.
    pub(crate) fn has_pending(&self) -> bool {
        lock(&self.state).pending.is_some()
    }

    /// The writer's side, holding a claim: the bytes the hub left half written, to write before
    /// the claimed frame.
    pub(crate) fn take_pending(&self) -> Option<Bytes> {
        lock(&self.state).pending.take()
    }

    /// The writer's side: the claimed frame is written; the hub may write again.
    pub(crate) fn release(&self) {
        lock(&self.state).busy = false;
    }

    /// The stream ended: the hub writes nothing more on this socket.
    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
    }

    /// The stream's side, at attachment: the client has every version up to `seen`, and the
    /// stream's task is writing (its opening). `plain`: no partial output was sent (see
    /// [`DirectSink::end_plain`]).
    pub(crate) fn open(&self, seen: i64, plain: bool) {
        let mut state = lock(&self.state);
        state.seen = state.seen.max(seen);
        state.busy = true;
        state.plain = plain;
    }

    /// The stream's side, before its first partial output: the hub writes nothing more, and
    /// the returned version (the highest the client has, perhaps written by the hub) is the one
    /// the partials' ids must name.
    pub(crate) fn end_plain(&self) -> i64 {
        let mut state = lock(&self.state);
        state.plain = false;
        state.seen
    }
}

/// `frame` as one chunk of a chunked body: its size in hex, CRLF, the data, CRLF. Encoded once
/// per state for all of a task's sinks.
pub(crate) fn chunk(frame: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(frame.len() + 20);
    out.put_slice(format!("{:x}\r\n", frame.len()).as_bytes());
    out.put_slice(frame);
    out.put_slice(b"\r\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    async fn pair() -> (Arc<DirectSink>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("address"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let sink = SinkSlot::default().fill(Arc::new(server));
        sink.open(0, true);
        sink.release();
        (sink, client)
    }

    async fn read_some(client: &mut TcpStream) -> Vec<u8> {
        let mut buffer = vec![0u8; 4096];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), client.read(&mut buffer))
                .await
                .expect("data in time")
                .expect("read");
        buffer.truncate(read);
        buffer
    }

    #[test]
    fn a_chunk_carries_its_size_in_hex() {
        assert_eq!(
            &chunk(&[b'x'; 26])[..],
            [b"1a\r\n".as_slice(), &[b'x'; 26], b"\r\n"].concat()
        );
    }

    #[tokio::test]
    async fn the_hub_writes_an_idle_stream_once_per_version() {
        let (sink, mut client) = pair().await;
        sink.offer(2, &chunk(b"two"));
        sink.offer(2, &chunk(b"two again"));
        sink.offer(1, &chunk(b"older"));
        assert_eq!(read_some(&mut client).await, b"3\r\ntwo\r\n");
        assert!(
            !sink.claim_version(2),
            "the stream must not write version 2 again"
        );
        assert!(sink.claim_version(3));
    }

    #[tokio::test]
    async fn a_busy_stream_is_woken_instead_of_written() {
        let (sink, mut client) = pair().await;
        sink.claim();
        sink.offer(5, &chunk(b"five"));
        // The permit is kept: the stream's next wait returns at once.
        tokio::time::timeout(std::time::Duration::from_secs(1), sink.woken())
            .await
            .expect("woken");
        assert!(sink.claim_version(5), "the stream writes version 5 itself");
        sink.release();
        sink.offer(6, &chunk(b"six"));
        assert_eq!(read_some(&mut client).await, b"3\r\nsix\r\n");
    }

    #[tokio::test]
    async fn after_a_partial_output_the_stream_writes_every_frame() {
        let (sink, _client) = pair().await;
        sink.offer(3, &chunk(b"three"));
        assert_eq!(
            sink.end_plain(),
            3,
            "the partial's id names the version the hub wrote"
        );
        sink.offer(4, &chunk(b"four"));
        tokio::time::timeout(std::time::Duration::from_secs(1), sink.woken())
            .await
            .expect("woken for version 4");
        assert!(
            sink.claim_version(4),
            "the stream writes version 4 with its own id"
        );
    }

    #[tokio::test]
    async fn a_closed_stream_gets_nothing() {
        let (sink, mut client) = pair().await;
        sink.close();
        sink.offer(7, &chunk(b"seven"));
        drop(sink);
        let mut rest = Vec::new();
        client
            .read_to_end(&mut rest)
            .await
            .expect("read to the end");
        assert!(rest.is_empty(), "{rest:?}");
    }

    #[tokio::test]
    async fn a_full_socket_leaves_the_rest_to_the_stream() {
        let (sink, mut client) = pair().await;
        // Far more than the socket buffers hold while the client reads nothing.
        let big = chunk(&vec![b'y'; 8 << 20]);
        sink.offer(1, &big);
        assert!(sink.has_pending(), "the hub never waits for a full socket");
        sink.offer(2, &chunk(b"later"));
        assert!(
            sink.has_pending(),
            "version 2 is not written over the unfinished chunk"
        );
        assert!(sink.claim_version(2), "the stream writes version 2 itself");
        let pending = sink.take_pending().expect("the rest, first");
        assert!(pending.len() < big.len());
        assert_eq!(&big[big.len() - pending.len()..], &pending[..]);
        let head = read_some(&mut client).await;
        assert!(head.starts_with(b"800000\r\nyyyy"), "{:?}", &head[..16]);
    }
}
