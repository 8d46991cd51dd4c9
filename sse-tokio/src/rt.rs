//! The binding to tokio: [`Tokio`] (its clock, its timers and its TCP
//! sockets; TLS is the driver's, over them) and [`TokioIo`], which makes
//! any tokio socket a [`Transport`] for the server functions.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use sse_driver::rt::{Connecting, Runtime, Timer, Transport};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// The tokio runtime, for the driving loops: `tokio::time` (a paused test
/// clock included) and `tokio::net`. Use it inside a tokio runtime with
/// the `net` and `time` drivers enabled.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

/// A `tokio::time::Sleep`, re-armed in place (boxed: a `Sleep` is
/// `!Unpin`).
#[derive(Debug)]
pub struct TokioTimer(Pin<Box<Sleep>>);

impl Timer for TokioTimer {
    fn reset(&mut self, deadline: Instant) {
        let deadline = tokio::time::Instant::from_std(deadline);
        self.0.as_mut().reset(deadline);
    }

    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// Any tokio socket (`AsyncRead + AsyncWrite`: a `TcpStream`, a
/// `&mut TcpStream`, a TLS stream) as a [`Transport`].
#[derive(Debug)]
pub struct TokioIo<T>(T);

impl<T> TokioIo<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> TokioIo<T> {
        TokioIo(io)
    }

    /// The socket.
    pub fn into_inner(self) -> T {
        self.0
    }

    /// The socket, pinned for tokio's traits.
    fn pinned(&mut self) -> Pin<&mut T>
    where
        T: Unpin,
    {
        Pin::new(&mut self.0)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Transport for TokioIo<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        std::task::ready!(self.pinned().poll_read(cx, &mut read))?;
        Poll::Ready(Ok(read.filled().len()))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.pinned().poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pinned().poll_flush(cx)
    }

    /// tokio's `poll_shutdown`.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pinned().poll_shutdown(cx)
    }
}

impl Runtime for Tokio {
    type Timer = TokioTimer;
    type Socket = TokioIo<TcpStream>;

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn timer(&self, deadline: Instant) -> TokioTimer {
        let deadline = tokio::time::Instant::from_std(deadline);
        TokioTimer(Box::pin(tokio::time::sleep_until(deadline)))
    }

    /// A `TcpStream` with `TCP_NODELAY` (events are small writes that
    /// must leave at once).
    fn connect(&self, host: String, port: u16) -> Connecting<TokioIo<TcpStream>> {
        Box::pin(async move {
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            Ok(TokioIo(tcp))
        })
    }
}
