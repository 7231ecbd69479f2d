//! A bounded accept loop: at most N client connections at once; further clients wait in
//! the kernel's listen backlog until one closes (as mini-redis does).
//!
//! Owns only the accept side; it does not look at requests.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// An accepted connection holding one of the limited slots until it is dropped.
#[derive(Debug)]
pub struct LimitedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Connected for LimitedStream {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

/// Accept connections from `listener`, never more than `max` open at once.
pub fn incoming(
    listener: TcpListener,
    max: usize,
) -> impl Stream<Item = io::Result<LimitedStream>> + Send {
    let slots = Arc::new(Semaphore::new(max.max(1)));
    futures::stream::unfold((listener, slots), |(listener, slots)| async move {
        // The semaphore is never closed, so acquiring only waits for a free slot.
        let permit = slots.clone().acquire_owned().await.ok()?;
        let res = match listener.accept().await {
            Ok((s, _)) => {
                let _ = s.set_nodelay(true);
                Ok(LimitedStream {
                    inner: s,
                    _permit: permit,
                })
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                Err(e)
            }
        };
        Some((res, (listener, slots)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn second_connection_waits_for_a_free_slot() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut conns = Box::pin(incoming(listener, 1));
        let _c1 = TcpStream::connect(addr).await?;
        let _c2 = TcpStream::connect(addr).await?; // completes in the kernel backlog
        let s1 = conns.next().await.transpose()?;
        assert!(s1.is_some());
        // With the only slot taken, the second is not handed out.
        let blocked = tokio::time::timeout(Duration::from_millis(200), conns.next()).await;
        assert!(
            blocked.is_err(),
            "second connection accepted beyond the limit"
        );
        drop(s1);
        let s2 = tokio::time::timeout(Duration::from_secs(10), conns.next()).await;
        assert!(matches!(s2, Ok(Some(Ok(_)))));
        Ok(())
    }
}
