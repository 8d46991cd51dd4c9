//! A reconnecting Server-Sent Events (`EventSource`) client for smol,
//! async-std and every other executor of the `futures-io` world.
//!
//! [`EventSource`] is a [`Stream`] of [`Result<Event, Error>`]. It opens the
//! stream, follows redirects, decodes the event stream, and reconnects after
//! the reconnection time (with backoff and jitter, sending `Last-Event-ID`)
//! whenever the connection drops, exactly as browsers do. Every protocol
//! decision is made by [`sse_proto::client::Connection`]; this crate only
//! moves bytes between it and an [`async_net::TcpStream`] (through the
//! [`futures_io`] traits) and sleeps on an [`async_io::Timer`] when it says
//! so.
//!
//! The sockets and timers are driven by the `async-io` reactor, which runs
//! on its own thread when nothing else drives it: the source works under
//! `smol::block_on`, `async_std::task::block_on`, `futures::executor` or any
//! other executor, without depending on async-std itself.
//!
//! What the stream yields:
//!
//! * `Ok(Event::Open)` each time a connection is established,
//! * `Ok(Event::Message(_))` for every event,
//! * `Ok(Event::Reconnecting { .. })` when the connection was lost and will
//!   be retried (with the error that caused it, if any): the stream goes on,
//! * `Err(_)` once, when the source fails for good (a status other than 200
//!   or 204, a wrong `Content-Type`, reconnecting disabled or given up, an
//!   `https` URL without the `rustls` feature), after which the stream ends,
//! * the end of the stream (`None`) without an error when the server
//!   answers `204 No Content` or after [`EventSource::close`].
//!
//! ```no_run
//! use sse_async_std::{ClientConfig, Event, EventSource};
//!
//! # async fn run() -> Result<(), sse_async_std::Error> {
//! let mut events = EventSource::new(ClientConfig::new("http://127.0.0.1:8080/events"))?;
//! while let Some(item) = events.next().await {
//!     match item? {
//!         Event::Open => println!("connected"),
//!         Event::Message(message) => println!("{}: {}", message.event_type(), message.data()),
//!         Event::Reconnecting { delay, .. } => println!("reconnecting in {delay:?}"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! `https` needs the `rustls` feature: with it, TLS runs through
//! [`futures-rustls`](https://docs.rs/futures-rustls) with the `ring` crypto
//! provider, trusting the Mozilla roots of
//! [`webpki-roots`](https://docs.rs/webpki-roots) unless
//! `EventSource::tls_config` supplies a `rustls::ClientConfig` of its
//! own; the server name (SNI) is the URL's host. Without the feature an
//! `https` URL (or a redirect to one) is [`Error::TlsNotSupported`]. A
//! failed handshake (an untrusted certificate, say) is a socket error: an
//! [`Error::Io`] whose inner error is the `rustls::Error`, behind the next
//! [`Event::Reconnecting`] or [`Error::Closed`].
//!
//! Polling the stream allocates nothing per event: the stream is a
//! hand-written state machine over the socket, the pending write and the
//! timer. Only opening a connection boxes its (DNS lookup, connect and TLS
//! handshake) future.
//!
//! The server side is in [`server`]: event-stream responses fed by a
//! publish/subscribe [`server::Broker`] (with history replay for
//! `Last-Event-ID`), served over any `futures-io` socket.

pub mod server;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
#[cfg(feature = "rustls")]
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Timer;
use async_net::TcpStream;
use bytes::Bytes;
use futures_core::Stream;
use futures_io::{AsyncRead, AsyncWrite};
use sse_proto::client::Connection;
use sse_proto::client::adapter::{self, Outputs, Step};

pub use sse_proto::Limits;
pub use sse_proto::client::adapter::{Error, Event, Item};
pub use sse_proto::client::{
    ClientConfig, CloseReason, Jitter, ReconnectPolicy, ReconnectReason, RedirectTarget,
};
pub use sse_proto::http1::{BodyLimits, HeadLimits};

/// The `rustls` this crate speaks TLS with (feature `rustls`), to build a
/// [`rustls::ClientConfig`] for [`EventSource::tls_config`].
#[cfg(feature = "rustls")]
pub use futures_rustls::rustls;

/// How many socket steps one `poll_next` takes before yielding to the
/// executor when none of them produced an item.
const READ_BUDGET: u32 = 64;

/// A connection attempt in flight (boxed once per attempt, not per event).
type Connecting = Pin<Box<dyn Future<Output = io::Result<Socket>> + Send>>;

/// An open connection: plain TCP, or TLS over TCP.
enum Socket {
    /// Plain `http`.
    Plain(TcpStream),
    /// `https` (boxed: the TLS state is large).
    #[cfg(feature = "rustls")]
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(socket) => Pin::new(socket).poll_read(cx, buf),
            #[cfg(feature = "rustls")]
            Socket::Tls(socket) => Pin::new(&mut **socket).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(socket) => Pin::new(socket).poll_write(cx, buf),
            #[cfg(feature = "rustls")]
            Socket::Tls(socket) => Pin::new(&mut **socket).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(socket) => Pin::new(socket).poll_flush(cx),
            #[cfg(feature = "rustls")]
            Socket::Tls(socket) => Pin::new(&mut **socket).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(socket) => Pin::new(socket).poll_close(cx),
            #[cfg(feature = "rustls")]
            Socket::Tls(socket) => Pin::new(&mut **socket).poll_close(cx),
        }
    }
}

/// The socket side of the loop.
enum Io {
    /// No socket: waiting for the timer, or closed.
    None,
    /// Opening a socket; the request to write once it is open.
    Connecting(Connecting, Option<Bytes>),
    /// Writing the request: `bytes[written..]` is still to go.
    Writing {
        socket: Socket,
        bytes: Bytes,
        written: usize,
    },
    /// Reading the response.
    Reading(Socket),
}

/// A reconnecting Server-Sent Events client: a [`Stream`] of
/// [`Result<Event, Error>`](Item) (see the [crate docs](crate) for what it
/// yields and when it ends).
///
/// Nothing happens until it is polled. Dropping it (or calling
/// [`close`](EventSource::close)) closes the connection. It is `Send` and
/// `Unpin`.
pub struct EventSource {
    conn: Connection<Instant>,
    io: Io,
    /// Fires at `timer_at`, the last deadline it was set to.
    timer: Timer,
    timer_at: Option<Instant>,
    /// Maps the connection's outputs to items (and keeps the error behind
    /// the next `Reconnecting` or `Closed`).
    outputs: Outputs,
    buf: Box<[u8]>,
    done: bool,
    /// The TLS configuration: set by [`EventSource::tls_config`], or the
    /// default one built on the first `https` connect.
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.io, self.done) {
            (_, true) => "done",
            (Io::None, false) => "waiting",
            (Io::Connecting(..), false) => "connecting",
            (Io::Writing { .. }, false) => "writing",
            (Io::Reading(_), false) => "reading",
        };
        f.debug_struct("EventSource")
            .field("state", &state)
            .field("ready_state", &self.conn.ready_state())
            .finish()
    }
}

impl EventSource {
    /// A client for `config` with the default head and body limits.
    ///
    /// # Errors
    /// [`Error::Protocol`] when the URL or a configured header cannot be
    /// used, [`Error::TlsNotSupported`] for an `https` URL without the
    /// `rustls` feature.
    pub fn new(config: ClientConfig) -> Result<EventSource, Error> {
        EventSource::with_limits(config, HeadLimits::default(), BodyLimits::default())
    }

    /// A client with limits on response heads and chunked framing.
    ///
    /// # Errors
    /// As [`new`](EventSource::new).
    pub fn with_limits(
        config: ClientConfig,
        head_limits: HeadLimits,
        body_limits: BodyLimits,
    ) -> Result<EventSource, Error> {
        #[cfg(feature = "rustls")]
        let (conn, outputs) = (
            adapter::new_tls_connection(config, head_limits, body_limits, Instant::now())?,
            Outputs::with_tls(),
        );
        #[cfg(not(feature = "rustls"))]
        let (conn, outputs) = (
            adapter::new_connection(config, head_limits, body_limits, Instant::now())?,
            Outputs::new(),
        );
        Ok(EventSource {
            conn,
            io: Io::None,
            timer: Timer::never(),
            timer_at: None,
            outputs,
            buf: vec![0; 16 * 1024].into_boxed_slice(),
            done: false,
            #[cfg(feature = "rustls")]
            tls: None,
        })
    }

    /// Uses `config` for `https` connections instead of the default (the
    /// `ring` provider trusting the [`webpki-roots`](https://docs.rs/webpki-roots)):
    /// for a private certificate authority, a self-signed certificate, or
    /// client certificates. The server name is still the URL's host. Call it
    /// before the first poll.
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> EventSource {
        self.tls = Some(config);
        self
    }

    /// Opens `host`:`port` over plain TCP.
    fn connect(&mut self, host: String, port: u16) {
        let connect = async move {
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            Ok(Socket::Plain(tcp))
        };
        self.io = Io::Connecting(Box::pin(connect), None);
    }

    /// Opens `host`:`port` and runs the TLS handshake on it, with `host` as
    /// the server name, in the one boxed future of the attempt. Without the
    /// `rustls` feature the outputs never ask for this: they fail the
    /// stream with `TlsNotSupported` instead.
    #[cfg(feature = "rustls")]
    fn connect_tls(&mut self, host: String, port: u16) {
        let config = match &self.tls {
            Some(config) => Ok(Arc::clone(config)),
            None => default_tls_config().map(|config| Arc::clone(self.tls.insert(config))),
        };
        let connect = async move {
            let config = config.map_err(io::Error::other)?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            let tls = futures_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(Socket::Tls(Box::new(tls)))
        };
        self.io = Io::Connecting(Box::pin(connect), None);
    }

    /// The next item, or `None` once the stream has ended (a convenience for
    /// `StreamExt::next`).
    pub async fn next(&mut self) -> Option<Item> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Closes the connection and ends the stream: the next poll returns
    /// `None`.
    pub fn close(&mut self) {
        self.finish();
    }

    /// Closes the connection and drops the socket and the timer; every
    /// later poll returns `None`.
    fn finish(&mut self) {
        self.conn.close();
        while self.conn.poll_output().is_some() {}
        self.io = Io::None;
        self.timer = Timer::never();
        self.timer_at = None;
        self.done = true;
    }

    /// Records a socket error for the machine.
    fn socket_error(&mut self, e: io::Error) {
        self.io = Io::None;
        self.outputs.socket_error(e);
        self.conn.handle_socket_error(Instant::now());
    }

    /// Advances the socket side: `Ready(())` when something was handed to
    /// the connection (or the socket is idle), `Pending` when waiting on
    /// the socket (with the waker registered).
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.io {
            Io::None => Poll::Ready(()),
            Io::Connecting(connecting, request) => match connecting.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(socket)) => {
                    self.io = match request.take() {
                        Some(bytes) => Io::Writing {
                            socket,
                            bytes,
                            written: 0,
                        },
                        None => Io::Reading(socket),
                    };
                    Poll::Ready(())
                }
                Poll::Ready(Err(e)) => {
                    self.socket_error(e);
                    Poll::Ready(())
                }
            },
            Io::Writing {
                socket,
                bytes,
                written,
            } => {
                while let Some(rest) = bytes.get(*written..).filter(|r| !r.is_empty()) {
                    match Pin::new(&mut *socket).poll_write(cx, rest) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(0)) => {
                            self.socket_error(io::ErrorKind::WriteZero.into());
                            return Poll::Ready(());
                        }
                        Poll::Ready(Ok(n)) => *written += n,
                        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                        Poll::Ready(Err(e)) => {
                            self.socket_error(e);
                            return Poll::Ready(());
                        }
                    }
                }
                // TLS may still hold records the socket would not take.
                match Pin::new(&mut *socket).poll_flush(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        self.socket_error(e);
                        return Poll::Ready(());
                    }
                }
                if let Io::Writing { socket, .. } = std::mem::replace(&mut self.io, Io::None) {
                    self.io = Io::Reading(socket);
                }
                Poll::Ready(())
            }
            Io::Reading(socket) => match Pin::new(socket).poll_read(cx, &mut self.buf) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.io = Io::None;
                    self.conn.handle_socket_eof(Instant::now());
                    Poll::Ready(())
                }
                Poll::Ready(Ok(n)) => {
                    let bytes = self.buf.get(..n).unwrap_or_default();
                    self.conn.handle_socket_bytes(bytes, Instant::now());
                    Poll::Ready(())
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Poll::Ready(()),
                Poll::Ready(Err(e)) => {
                    self.socket_error(e);
                    Poll::Ready(())
                }
            },
        }
    }

    /// Polls the timer at the connection's deadline: `Ready` once it is due
    /// (after handing it to the connection).
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.conn.poll_timeout() else {
            return Poll::Pending;
        };
        if self.timer_at != Some(deadline) {
            self.timer.set_at(deadline);
            self.timer_at = Some(deadline);
        }
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                self.timer_at = None;
                self.conn.handle_timeout(Instant::now());
                Poll::Ready(())
            }
        }
    }

    /// Queues `bytes` for the socket (being opened, or open).
    fn write(&mut self, bytes: Bytes) {
        self.io = match std::mem::replace(&mut self.io, Io::None) {
            Io::Connecting(connecting, None) => Io::Connecting(connecting, Some(bytes)),
            Io::Connecting(connecting, Some(queued)) => {
                Io::Connecting(connecting, Some(concat(&queued, &bytes)))
            }
            Io::Reading(socket) => Io::Writing {
                socket,
                bytes,
                written: 0,
            },
            Io::Writing {
                socket,
                bytes: queued,
                written,
            } => Io::Writing {
                socket,
                bytes: concat(queued.get(written..).unwrap_or_default(), &bytes),
                written: 0,
            },
            // No socket to write to: the attempt already failed.
            Io::None => Io::None,
        };
    }
}

impl Stream for EventSource {
    type Item = Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = self.get_mut();
        let mut budget = READ_BUDGET;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            // Outputs are acted on in order (a write to a socket still
            // being opened waits for it).
            if let Some(output) = this.conn.poll_output() {
                match this.outputs.step(output) {
                    Step::Yield(event) => return Poll::Ready(Some(Ok(event))),
                    Step::Fail(error) => {
                        this.finish();
                        return Poll::Ready(Some(Err(error)));
                    }
                    Step::End => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Step::Connect { host, port } => this.connect(host, port),
                    #[cfg(feature = "rustls")]
                    Step::ConnectTls { host, port } => this.connect_tls(host, port),
                    Step::Write(bytes) => this.write(bytes),
                    Step::CloseSocket => this.io = Io::None,
                    _ => {}
                }
                continue;
            }
            let idle = matches!(this.io, Io::None);
            if this.poll_io(cx).is_ready() && !idle {
                budget -= 1;
                if budget == 0 {
                    // A stream of bytes that yields no item (comments,
                    // keep-alives) must not starve the executor.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                continue;
            }
            if this.poll_timer(cx).is_ready() {
                continue;
            }
            if idle && this.conn.poll_timeout().is_none() {
                // Nothing to read and no timer: the connection is closed.
                this.finish();
                return Poll::Ready(None);
            }
            return Poll::Pending;
        }
    }
}

/// The default TLS configuration: the `ring` provider, its safe default
/// protocol versions, the webpki roots, no client certificate.
#[cfg(feature = "rustls")]
fn default_tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `a` then `b` in one buffer (only if the connection ever asks for two
/// writes in a row, which it does not today).
fn concat(a: &[u8], b: &[u8]) -> Bytes {
    let mut joined = Vec::with_capacity(a.len() + b.len());
    joined.extend_from_slice(a);
    joined.extend_from_slice(b);
    Bytes::from(joined)
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
