//! The runtime abstraction: what a driving loop needs from an async
//! runtime, and nothing more.
//!
//! * a [`Transport`]: a connected byte stream to read, write (vectored),
//!   flush and close;
//! * a [`Timer`] that can be re-armed for a new deadline without being
//!   rebuilt;
//! * a [`Runtime`]: the clock those timers follow, the timers themselves,
//!   and opening client sockets (plain TCP, and TLS where the binding has
//!   it).
//!
//! The traits take `&mut self` where the runtime's own traits take
//! `Pin<&mut Self>`: every implementation is `Unpin` (a binding boxes what
//! is not), which keeps the loops free of pinning.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A connected byte stream (a TCP socket, TLS over one, or anything a
/// binding wraps): what the driving loops read from and write to.
///
/// The methods have the meaning of the runtime's own I/O traits
/// (`tokio::io::AsyncRead`/`AsyncWrite`, `futures_io::AsyncRead`/
/// `AsyncWrite`): `Pending` registers the task's waker, `Ok(0)` from a
/// read is the end of the stream.
pub trait Transport: Unpin {
    /// Reads into `buf`: how many bytes were read, `0` at the end of the
    /// stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Writes from `bufs` in order: how many bytes were taken.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Pushes out whatever the transport buffers (TLS records, say).
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Flushes and closes the writing side (a TLS `close_notify`, then a
    /// TCP `FIN`).
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        (**self).poll_read(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        (**self).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_flush(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_close(cx)
    }
}

/// A client socket as a runtime hands it over: any transport, boxed once
/// per connection (plain TCP and TLS are one type).
pub type BoxTransport = Box<dyn Transport + Send>;

/// Any `futures-io` stream (`AsyncRead + AsyncWrite`: an `async-net` or
/// `async-std` `TcpStream`, a `&mut` one, a `futures-rustls` stream) as a
/// [`Transport`]. `futures-io` holds only the traits, so this is no
/// runtime's: the smol/async-std binding and any other `futures-io`
/// runtime use it.
#[derive(Debug)]
pub struct FuturesIo<T>(T);

impl<T> FuturesIo<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> FuturesIo<T> {
        FuturesIo(io)
    }

    /// The stream.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Transport for FuturesIo<T>
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
{
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

/// A timer that fires once its deadline has passed, and can be re-armed.
pub trait Timer: Unpin {
    /// Arms the timer for `deadline` (replacing any earlier deadline).
    fn reset(&mut self, deadline: Instant);

    /// `Ready` when the armed deadline has passed; `Pending` registers the
    /// task's waker. Once it has answered `Ready`, it need not answer so
    /// again before it is re-armed (the loops re-arm it for every wait).
    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// A socket being opened: boxed once per connection attempt.
pub type Connecting<S> = Pin<Box<dyn Future<Output = io::Result<S>> + Send>>;

/// An async runtime, as the driving loops use it: its clock, its timers
/// and its client sockets. A binding is usually a unit struct (or one that
/// holds a TLS configuration) and cheap to clone.
pub trait Runtime: Clone + Send + Sync + Unpin + 'static {
    /// The runtime's timer.
    type Timer: Timer + Send + 'static;
    /// A client socket: plain TCP, or TLS over TCP.
    type Socket: Transport + Send + 'static;

    /// The time now, on the clock the runtime's timers follow (a runtime
    /// with a paused test clock answers with that clock).
    fn now(&self) -> Instant;

    /// A timer armed for `deadline`.
    fn timer(&self, deadline: Instant) -> Self::Timer;

    /// Opens a TCP connection to `host`:`port` (a DNS name or an IP
    /// address without brackets), with `TCP_NODELAY` set.
    fn connect(&self, host: String, port: u16) -> Connecting<Self::Socket>;

    /// Whether [`connect_tls`](Runtime::connect_tls) can open TLS
    /// connections. `false` by default.
    fn supports_tls(&self) -> bool {
        false
    }

    /// Opens a TCP connection to `host`:`port` and starts TLS on it with
    /// `tls`, `host` being the server name. A binding without TLS keeps
    /// this default, which fails the attempt.
    fn connect_tls(&self, host: String, port: u16, tls: &TlsConfig) -> Connecting<Self::Socket> {
        let _ = tls;
        let error = io::Error::new(
            io::ErrorKind::Unsupported,
            format!("no TLS in this runtime binding (connecting to {host}:{port})"),
        );
        Box::pin(std::future::ready(Err(error)))
    }
}

/// The client's TLS configuration, as handed to
/// [`Runtime::connect_tls`]: a `rustls::ClientConfig` with feature
/// `rustls` (without it no value of this type exists).
#[derive(Clone, Debug)]
pub struct TlsConfig {
    #[cfg(feature = "rustls")]
    config: std::sync::Arc<rustls::ClientConfig>,
    #[cfg(not(feature = "rustls"))]
    _never: std::convert::Infallible,
}

#[cfg(feature = "rustls")]
impl TlsConfig {
    /// Wraps a rustls client configuration.
    pub fn new(config: std::sync::Arc<rustls::ClientConfig>) -> TlsConfig {
        TlsConfig { config }
    }

    /// The default one: the `ring` provider with its safe default
    /// protocol versions, trusting the Mozilla roots of `webpki-roots`, no
    /// client certificate.
    ///
    /// # Errors
    /// What rustls says if the provider cannot be used.
    pub fn webpki_roots() -> Result<TlsConfig, rustls::Error> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConfig::new(std::sync::Arc::new(config)))
    }

    /// The rustls configuration, for the binding's TLS connector.
    pub fn rustls(&self) -> &std::sync::Arc<rustls::ClientConfig> {
        &self.config
    }

    /// `host` as the server name to ask for (SNI) and to check the
    /// certificate against.
    ///
    /// # Errors
    /// `InvalidInput` when `host` is neither a DNS name nor an IP address.
    pub fn server_name(host: &str) -> io::Result<rustls::pki_types::ServerName<'static>> {
        rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }
}
