//! Closing connections whose client stopped accepting data. A client that never reads (a
//! stuck tab, a dead peer behind a NAT that never answers) fills the socket buffers, and then
//! every write waits forever: its live stream, its stream slot and its connection slot stay
//! taken long after the task finished. A write that makes no progress for
//! [`crate::HttpConfig::write_stall_timeout`] fails with [`io::ErrorKind::TimedOut`] instead,
//! which ends the connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The error of a write that made no progress within `limit`.
pub(crate) fn stalled(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the client accepted no data for {limit:?}"),
    )
}

/// Runs one write of the direct live-stream path under the stall limit.
pub(crate) async fn within<T>(
    limit: Duration,
    write: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, write)
        .await
        .map_err(|_| stalled(limit))?
}

/// `inner` (the connection hyper serves), whose writes fail once one has waited `limit`
/// without the client taking a byte.
pub(crate) struct WriteStall<T> {
    inner: T,
    limit: Duration,
    /// Armed when a write first has to wait; dropped as soon as one makes progress.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteStall<T> {
    pub(crate) fn new(inner: T, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: None,
        }
    }

    /// Passes `poll`'s result on, tracking how long writing has been blocked.
    fn track<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Ready(result) => {
                self.deadline = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let limit = self.limit;
                let deadline = self
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                ready!(deadline.as_mut().poll(cx));
                Poll::Ready(Err(stalled(limit)))
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStall<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStall<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.track(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.track(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.track(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.track(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_takes_fails_after_the_limit() {
        let (client, _peer) = duplex(16);
        let mut io = WriteStall::new(client, Duration::from_secs(30));
        // The first 16 bytes fit the pipe; the rest waits for a reader that never comes.
        let started = tokio::time::Instant::now();
        let error = io.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn progress_restarts_the_clock() {
        let (client, mut peer) = duplex(16);
        let mut io = WriteStall::new(client, Duration::from_secs(30));
        let reader = tokio::spawn(async move {
            let mut buffer = [0u8; 16];
            let mut total = 0;
            // A slow reader: 16 bytes every 20 s, each wait shorter than the limit.
            while total < 64 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                total += tokio::io::AsyncReadExt::read(&mut peer, &mut buffer)
                    .await
                    .unwrap();
            }
        });
        io.write_all(&[0u8; 64]).await.unwrap();
        reader.await.unwrap();
    }
}
