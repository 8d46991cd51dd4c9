//! The binding to `async-io`, the reactor under smol and async-std:
//! [`AsyncIo`] (the system clock, [`async_io::Timer`], [`async_net`]
//! sockets, and TLS through `futures-rustls` with feature `rustls`) and
//! [`FuturesIo`], which makes any `futures-io` socket a [`Transport`] for
//! the server functions.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_net::TcpStream;
use futures_io::{AsyncRead, AsyncWrite};
#[cfg(feature = "rustls")]
use sse_driver::rt::TlsConfig;
use sse_driver::rt::{Connecting, Runtime, Timer, Transport};

/// The `async-io` reactor, for the driving loops. It runs its own thread
/// when nothing else drives it, so it works under `smol::block_on`,
/// `async_std::task::block_on`, `futures::executor` or any other executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncIo;

/// An [`async_io::Timer`], re-armed in place.
#[derive(Debug)]
pub struct AsyncIoTimer(async_io::Timer);

impl Timer for AsyncIoTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // A fired `async_io::Timer` stays pending until it is set again:
        // the driver re-arms it for every wait.
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

/// Any `futures-io` socket (`AsyncRead + AsyncWrite`: an
/// [`async_net::TcpStream`], a `&mut` one, a TLS stream) as a
/// [`Transport`].
#[derive(Debug)]
pub struct FuturesIo<T>(T);

impl<T> FuturesIo<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> FuturesIo<T> {
        FuturesIo(io)
    }

    /// The socket.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Transport for FuturesIo<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// A client socket: plain TCP, or TLS over TCP.
pub type Socket = FuturesIo<Stream>;

/// The stream under a client [`Socket`].
#[derive(Debug)]
pub enum Stream {
    /// Plain `http`.
    Plain(TcpStream),
    /// `https` (boxed: the TLS state is large).
    #[cfg(feature = "rustls")]
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

/// Forwards one `futures-io` call to whichever stream this is.
macro_rules! either {
    ($stream:expr, $socket:ident => $call:expr) => {
        match $stream.get_mut() {
            Stream::Plain($socket) => {
                let $socket = Pin::new($socket);
                $call
            }
            #[cfg(feature = "rustls")]
            Stream::Tls($socket) => {
                let $socket = Pin::new(&mut **$socket);
                $call
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        either!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        either!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        either!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, s => s.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, s => s.poll_close(cx))
    }
}

impl Runtime for AsyncIo {
    type Timer = AsyncIoTimer;
    type Socket = Socket;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self, deadline: Instant) -> AsyncIoTimer {
        AsyncIoTimer(async_io::Timer::at(deadline))
    }

    fn connect(&self, host: String, port: u16) -> Connecting<Socket> {
        Box::pin(async move {
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            Ok(FuturesIo(Stream::Plain(tcp)))
        })
    }

    fn supports_tls(&self) -> bool {
        cfg!(feature = "rustls")
    }

    #[cfg(feature = "rustls")]
    fn connect_tls(&self, host: String, port: u16, tls: &TlsConfig) -> Connecting<Socket> {
        let connector = futures_rustls::TlsConnector::from(std::sync::Arc::clone(tls.rustls()));
        Box::pin(async move {
            let name = futures_rustls::rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            let tls = connector.connect(name, tcp).await?;
            Ok(FuturesIo(Stream::Tls(Box::new(tls))))
        })
    }
}
