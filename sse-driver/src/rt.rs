//! The runtime abstraction: what a driving loop needs from an async
//! runtime, and nothing more.
//!
//! * a [`Transport`]: a connected byte stream to read, write (vectored),
//!   flush and close;
//! * a [`Timer`] that can be re-armed for a new deadline without being
//!   rebuilt;
//! * a [`Runtime`]: the clock those timers follow, the timers themselves,
//!   and opening client TCP sockets. TLS is the driver's own (feature
//!   `rustls`), run over whatever socket the runtime opened.
//!
//! The traits take `&mut self` where the runtime's own traits take
//! `Pin<&mut Self>`: every implementation is `Unpin` (a binding boxes what
//! is not), which keeps the loops free of pinning.

/// Whole writes and reads on a [`Transport`], for one-off requests.
pub use crate::io::{read_buf, write_all};
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
    /// A client TCP socket.
    type Socket: Transport + Send + 'static;

    /// The time now, on the clock the runtime's timers follow (a runtime
    /// with a paused test clock answers with that clock).
    fn now(&self) -> Instant;

    /// A timer armed for `deadline`.
    fn timer(&self, deadline: Instant) -> Self::Timer;

    /// Opens a TCP connection to `host`:`port` (a DNS name or an IP
    /// address without brackets), with `TCP_NODELAY` set.
    fn connect(&self, host: String, port: u16) -> Connecting<Self::Socket>;
}

/// The client's TLS configuration: a `rustls::ClientConfig` with feature
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

    /// The default: the operating system's trusted certificates
    /// ([`native_roots`](TlsConfig::native_roots)), or, with feature
    /// `webpki-roots`, the Mozilla roots when the system has none. Built
    /// once per process and shared.
    ///
    /// # Errors
    /// What [`native_roots`](TlsConfig::native_roots) says, when nothing
    /// can stand in.
    pub fn platform_default() -> io::Result<TlsConfig> {
        static DEFAULT: std::sync::OnceLock<Result<TlsConfig, (io::ErrorKind, String)>> =
            std::sync::OnceLock::new();
        let built = DEFAULT.get_or_init(|| {
            let native = TlsConfig::native_roots();
            #[cfg(feature = "webpki-roots")]
            let native = native.or_else(|_| TlsConfig::webpki_roots());
            native.map_err(|e| (e.kind(), e.to_string()))
        });
        built
            .clone()
            .map_err(|(kind, message)| io::Error::new(kind, message))
    }

    /// Trusts the certificates of the operating system's store, read as
    /// OpenSSL does: `SSL_CERT_FILE` (a PEM bundle) and `SSL_CERT_DIR`
    /// replace the system's locations when set, so a private certificate
    /// authority is trusted by pointing `SSL_CERT_FILE` at its PEM file.
    /// The `ring` provider with its safe default protocol versions, no
    /// client certificate.
    ///
    /// # Errors
    /// `NotFound` when no usable certificate was found, naming what was
    /// tried (`SSL_CERT_FILE` or `SSL_CERT_DIR` when set).
    pub fn native_roots() -> io::Result<TlsConfig> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            let place = match (
                std::env::var_os("SSL_CERT_FILE"),
                std::env::var_os("SSL_CERT_DIR"),
            ) {
                (Some(file), _) => format!("SSL_CERT_FILE ({})", file.to_string_lossy()),
                (None, Some(dir)) => format!("SSL_CERT_DIR ({})", dir.to_string_lossy()),
                (None, None) => "the operating system's certificate store".to_owned(),
            };
            let why = found
                .errors
                .first()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no trusted root certificate found in {place}{why}; point SSL_CERT_FILE at a \
                     PEM bundle (or install the system's CA certificates)"
                ),
            ));
        }
        TlsConfig::with_roots(roots).map_err(io::Error::other)
    }

    /// Trusts the Mozilla roots of `webpki-roots` (compiled in), and
    /// nothing else: for systems without a certificate store (feature
    /// `webpki-roots`).
    ///
    /// # Errors
    /// What rustls says if the provider cannot be used.
    #[cfg(feature = "webpki-roots")]
    pub fn webpki_roots() -> io::Result<TlsConfig> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        TlsConfig::with_roots(roots).map_err(io::Error::other)
    }

    /// The `ring` provider, safe default versions, `roots`, no client
    /// certificate.
    fn with_roots(roots: rustls::RootCertStore) -> Result<TlsConfig, rustls::Error> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConfig::new(std::sync::Arc::new(config)))
    }

    /// The rustls configuration.
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
