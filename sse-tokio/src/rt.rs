//! The binding to tokio: [`Tokio`] (its clock, its timers, its sockets,
//! and TLS through `tokio-rustls` with feature `rustls`) and [`TokioIo`],
//! which makes any tokio socket a [`Transport`] for the server functions.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

#[cfg(feature = "rustls")]
use sse_driver::rt::TlsConfig;
use sse_driver::rt::{Connecting, Runtime, Timer, Transport};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// The tokio runtime, for the driving loops: `tokio::time` (a paused test
/// clock included) and `tokio::net`. Use it inside a tokio runtime with
/// the `net` and `time` drivers enabled.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

/// A `tokio::time::Sleep`, re-armed in place.
#[derive(Debug)]
pub struct TokioTimer(Pin<Box<Sleep>>);

impl Timer for TokioTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0
            .as_mut()
            .reset(tokio::time::Instant::from_std(deadline));
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
}

impl<T: AsyncRead + AsyncWrite + Unpin> Transport for TokioIo<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        std::task::ready!(Pin::new(&mut self.0).poll_read(cx, &mut read))?;
        Poll::Ready(Ok(read.filled().len()))
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
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A client socket: plain TCP, or TLS over TCP (boxed: its state is
/// large).
pub type Socket = TokioIo<Stream>;

/// The stream under a client [`Socket`].
#[derive(Debug)]
pub enum Stream {
    /// Plain `http`.
    Plain(TcpStream),
    /// `https`.
    #[cfg(feature = "rustls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// The stream as one `AsyncRead + AsyncWrite`.
    fn get(self: Pin<&mut Self>) -> Pin<&mut (dyn Duplex + Send)> {
        match self.get_mut() {
            Stream::Plain(socket) => Pin::new(socket),
            #[cfg(feature = "rustls")]
            Stream::Tls(socket) => Pin::new(&mut **socket),
        }
    }
}

/// Both halves of a tokio socket.
trait Duplex: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> Duplex for T {}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get().poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(socket) => socket.is_write_vectored(),
            #[cfg(feature = "rustls")]
            Stream::Tls(socket) => socket.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get().poll_shutdown(cx)
    }
}

/// Opens a TCP connection with `TCP_NODELAY`.
async fn tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect((host, port)).await?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

impl Runtime for Tokio {
    type Timer = TokioTimer;
    type Socket = Socket;

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn timer(&self, deadline: Instant) -> TokioTimer {
        TokioTimer(Box::pin(tokio::time::sleep_until(
            tokio::time::Instant::from_std(deadline),
        )))
    }

    fn connect(&self, host: String, port: u16) -> Connecting<Socket> {
        Box::pin(async move { Ok(TokioIo(Stream::Plain(tcp(&host, port).await?))) })
    }

    fn supports_tls(&self) -> bool {
        cfg!(feature = "rustls")
    }

    #[cfg(feature = "rustls")]
    fn connect_tls(&self, host: String, port: u16, tls: &TlsConfig) -> Connecting<Socket> {
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(tls.rustls()));
        Box::pin(async move {
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = connector.connect(name, tcp(&host, port).await?).await?;
            Ok(TokioIo(Stream::Tls(Box::new(tls))))
        })
    }
}
