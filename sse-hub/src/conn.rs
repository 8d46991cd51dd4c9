//! A client's connection as the HTTP/1.1 path serves it: plain TCP, or
//! TLS over it (feature `tls`).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use sse_tokio::server::Closing;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Plain TCP or TLS; one type for the request and stream code.
pub(crate) enum Conn {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: its state is kilobytes, a plain one is not).
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Conn {
    /// Whether it is plain TCP.
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self, Conn::Plain(_))
    }

    /// The TCP socket of a plain connection, to move to another runtime;
    /// a TLS one is given back (its session cannot move).
    pub(crate) fn into_plain(self) -> Result<TcpStream, Conn> {
        match self {
            Conn::Plain(socket) => Ok(socket),
            #[cfg(feature = "tls")]
            tls @ Conn::Tls(_) => Err(tls),
        }
    }

    /// The socket of a plain connection, taken off this runtime's event
    /// loop so that another runtime can take it over
    /// (`TcpStream::from_std`); `None` for TLS (its session cannot move) or
    /// when the socket cannot be taken off (it is then closed).
    pub(crate) fn detach(self) -> Option<std::net::TcpStream> {
        self.into_plain().ok()?.into_std().ok()
    }

    /// Closes the connection after its stream, as `closing` says (the
    /// stream has done a graceful close already, if that was the way):
    /// on [`Closing::Reset`] (the client closed first) with a TCP reset,
    /// so that the client's port is not held in `TIME_WAIT`.
    pub(crate) fn close_as(self, closing: Closing) {
        if closing == Closing::Reset {
            // If it fails, the drop below is an ordinary close.
            let _ = self.tcp().set_zero_linger();
        }
        drop(self);
    }

    /// The TCP socket (under TLS, for a TLS connection).
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(socket) => socket,
            #[cfg(feature = "tls")]
            Conn::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
