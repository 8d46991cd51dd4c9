//! A reconnecting Server-Sent Events (`EventSource`) client for tokio.
//!
//! [`EventSource`] is a [`Stream`] of [`Result<Event, Error>`]. It opens the
//! stream, follows redirects, decodes the event stream, and reconnects after
//! the reconnection time (with backoff and jitter, sending `Last-Event-ID`)
//! whenever the connection drops, exactly as browsers do. Every protocol
//! decision is made by [`sse_proto::client::Connection`]; this crate only
//! moves bytes between it and a tokio `TcpStream` and
//! sleeps when it says so.
//!
//! What the stream yields:
//!
//! * `Ok(Event::Open)` each time a connection is established,
//! * `Ok(Event::Message(_))` for every event,
//! * `Ok(Event::Reconnecting { .. })` when the connection was lost and will
//!   be retried (with the error that caused it, if any): the stream goes on,
//! * `Err(_)` once, when the source fails for good (a status other than 200
//!   or 204, a wrong `Content-Type`, reconnecting disabled or given up, an
//!   `https` URL), after which the stream ends,
//! * the end of the stream (`None`) without an error when the server
//!   answers `204 No Content` or after [`EventSource::close`].
//!
//! ```no_run
//! use sse_tokio::{ClientConfig, Event, EventSource};
//!
//! # async fn run() -> Result<(), sse_tokio::Error> {
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
//! Only plain `http` is supported for now: an `https` URL (or a redirect to
//! one) is [`Error::TlsNotSupported`].
//!
//! With the `tracing` feature, reconnects, transport errors and warnings are
//! logged with [`tracing`](https://docs.rs/tracing).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use sse_proto::client::{Connection, ConnectionError, ConnectionOutput};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub use sse_proto::Limits;
pub use sse_proto::client::{
    ClientConfig, CloseReason, Jitter, ReconnectPolicy, ReconnectReason, RedirectTarget,
};
pub use sse_proto::http1::{BodyLimits, HeadLimits};
use sse_proto::http1::{Scheme, Url};

/// What an [`EventSource`] yields.
#[non_exhaustive]
#[derive(Debug)]
pub enum Event {
    /// A connection is open and the stream is flowing (the spec's `open`
    /// event). Yielded on every successful (re)connection.
    Open,
    /// A message. Its type (`event_type()`) can be anything the server
    /// sent, `"error"` and `"open"` included.
    Message(sse_proto::Event),
    /// The connection was lost and the next attempt starts after `delay`.
    /// Not an error: the stream goes on.
    Reconnecting {
        /// How long until the next attempt.
        delay: Duration,
        /// Why the connection was lost.
        reason: ReconnectReason,
        /// The transport or protocol error behind it, if there was one.
        error: Option<Error>,
    },
}

/// Why an [`EventSource`] cannot start, or stopped for good.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// A socket error (connection refused, reset, ...).
    Io(io::Error),
    /// The server's response broke HTTP or the configuration cannot be
    /// sent (see [`ConnectionError`]).
    Protocol(ConnectionError),
    /// The URL (or a redirect) is `https`, and this crate does not support
    /// TLS yet. Use an `http` URL (for example behind a TLS-terminating
    /// proxy).
    TlsNotSupported {
        /// The host that asked for TLS.
        host: String,
        /// Its port.
        port: u16,
    },
    /// The source closed for good; `reason` says why (a bad status or
    /// content type, reconnecting disabled, too many failed attempts).
    Closed {
        /// Why.
        reason: CloseReason,
        /// The error behind the last failed attempt, if any.
        cause: Option<Box<Error>>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "connection error: {e}"),
            Error::Protocol(e) => write!(f, "{e}"),
            Error::TlsNotSupported { host, port } => write!(
                f,
                "https ({host}:{port}) is not supported yet: sse-tokio speaks plain http only"
            ),
            Error::Closed { reason, .. } => write!(f, "event source closed: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::TlsNotSupported { .. } => None,
            Error::Closed {
                cause: Some(cause), ..
            } => Some(&**cause),
            Error::Closed { reason, .. } => Some(reason),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<ConnectionError> for Error {
    fn from(e: ConnectionError) -> Error {
        Error::Protocol(e)
    }
}

/// The item type of [`EventSource`].
pub type Item = Result<Event, Error>;

type Pending = Pin<Box<dyn Future<Output = (Driver, Option<Item>)> + Send>>;

enum State {
    Idle(Box<Driver>),
    Busy(Pending),
    Done,
}

/// A reconnecting Server-Sent Events client: a [`Stream`] of
/// [`Result<Event, Error>`](Item) (see the [crate docs](crate) for what it
/// yields and when it ends).
///
/// Nothing happens until it is polled. Dropping it (or calling
/// [`close`](EventSource::close)) closes the connection.
pub struct EventSource {
    state: State,
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle(_) => "idle",
            State::Busy(_) => "polling",
            State::Done => "done",
        };
        f.debug_struct("EventSource")
            .field("state", &state)
            .finish()
    }
}

impl EventSource {
    /// A client for `config` with the default head and body limits.
    ///
    /// # Errors
    /// [`Error::Protocol`] when the URL or a configured header cannot be
    /// used, [`Error::TlsNotSupported`] for an `https` URL.
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
        if let Ok(url) = Url::parse(config.url()) {
            if url.scheme() == Scheme::Https {
                return Err(Error::TlsNotSupported {
                    host: url.host().to_owned(),
                    port: url.port(),
                });
            }
        }
        let conn =
            Connection::with_limits(config, head_limits, body_limits, Instant::now(), seed())?;
        let driver = Driver {
            conn,
            socket: None,
            last_error: None,
            buf: vec![0; 16 * 1024].into_boxed_slice(),
        };
        Ok(EventSource {
            state: State::Idle(Box::new(driver)),
        })
    }

    /// The next item, or `None` once the stream has ended (a convenience for
    /// `StreamExt::next`).
    pub async fn next(&mut self) -> Option<Item> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Closes the connection and ends the stream: the next poll returns
    /// `None`.
    pub fn close(&mut self) {
        self.state = State::Done;
    }
}

impl Stream for EventSource {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Idle(mut driver) => {
                    self.state = State::Busy(Box::pin(async move {
                        let item = driver.next().await;
                        (*driver, item)
                    }));
                }
                State::Busy(mut pending) => match pending.as_mut().poll(cx) {
                    Poll::Pending => {
                        self.state = State::Busy(pending);
                        return Poll::Pending;
                    }
                    Poll::Ready((driver, item)) => {
                        if item.is_some() {
                            self.state = State::Idle(Box::new(driver));
                        }
                        return Poll::Ready(item);
                    }
                },
            }
        }
    }
}

/// The jitter seed: whatever the standard library's hasher keys are mixed
/// with the time.
fn seed() -> u64 {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new().hash_one(nanos)
}

/// The I/O loop around a [`Connection`].
struct Driver {
    conn: Connection<Instant>,
    socket: Option<TcpStream>,
    /// The error behind the next `Reconnecting` or `Closed`.
    last_error: Option<Error>,
    buf: Box<[u8]>,
}

/// How a wait ended.
enum Wake<T> {
    Done(T),
    Timeout,
}

impl Driver {
    /// Runs `fut` until it finishes or the connection's timer is due.
    async fn until_timeout<F: Future>(&self, fut: F) -> Wake<F::Output> {
        match self.conn.poll_timeout() {
            Some(deadline) => match tokio::time::timeout_at(deadline, fut).await {
                Ok(out) => Wake::Done(out),
                Err(_) => Wake::Timeout,
            },
            None => Wake::Done(fut.await),
        }
    }

    async fn next(&mut self) -> Option<Item> {
        loop {
            while let Some(output) = self.conn.poll_output() {
                if let Some(item) = self.act(output).await {
                    return item;
                }
            }
            if let Some(socket) = self.socket.as_mut() {
                let deadline = self.conn.poll_timeout();
                let read = socket.read(&mut self.buf);
                let result = match deadline {
                    Some(d) => tokio::time::timeout_at(d, read).await.ok(),
                    None => Some(read.await),
                };
                let now = Instant::now();
                match result {
                    None => self.conn.handle_timeout(now),
                    Some(Ok(0)) => self.conn.handle_socket_eof(now),
                    Some(Ok(n)) => {
                        let bytes = self.buf.get(..n).unwrap_or_default();
                        self.conn.handle_socket_bytes(bytes, now);
                    }
                    Some(Err(e)) => {
                        self.last_error = Some(Error::Io(e));
                        self.conn.handle_socket_error(now);
                    }
                }
            } else if let Some(deadline) = self.conn.poll_timeout() {
                tokio::time::sleep_until(deadline).await;
                self.conn.handle_timeout(Instant::now());
            } else {
                // Nothing to read and no timer: the connection is closed.
                return None;
            }
        }
    }

    /// Acts on one output: `Some(Some(item))` to yield, `Some(None)` to end
    /// the stream, `None` to go on.
    async fn act(&mut self, output: ConnectionOutput) -> Option<Option<Item>> {
        match output {
            ConnectionOutput::Connect { host, port, tls } => {
                if tls {
                    self.conn.close();
                    while self.conn.poll_output().is_some() {}
                    return Some(Some(Err(Error::TlsNotSupported { host, port })));
                }
                let connect = TcpStream::connect((host.as_str(), port));
                match self.until_timeout(connect).await {
                    Wake::Done(Ok(socket)) => {
                        let _ = socket.set_nodelay(true);
                        self.socket = Some(socket);
                    }
                    Wake::Done(Err(e)) => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(%host, port, error = %e, "connect failed");
                        self.last_error = Some(Error::Io(e));
                        self.conn.handle_socket_error(Instant::now());
                    }
                    Wake::Timeout => self.conn.handle_timeout(Instant::now()),
                }
                None
            }
            ConnectionOutput::Write(bytes) => {
                let mut socket = self.socket.take()?;
                let result = self.until_timeout(socket.write_all(&bytes)).await;
                self.socket = Some(socket);
                match result {
                    Wake::Done(Ok(())) => {}
                    Wake::Done(Err(e)) => {
                        self.last_error = Some(Error::Io(e));
                        self.conn.handle_socket_error(Instant::now());
                    }
                    Wake::Timeout => self.conn.handle_timeout(Instant::now()),
                }
                None
            }
            ConnectionOutput::CloseSocket => {
                self.socket = None;
                None
            }
            ConnectionOutput::Open => Some(Some(Ok(Event::Open))),
            ConnectionOutput::Event(event) => Some(Some(Ok(Event::Message(event)))),
            ConnectionOutput::Reconnecting { delay, reason } => {
                #[cfg(feature = "tracing")]
                tracing::info!(?delay, %reason, error = ?self.last_error, "reconnecting");
                Some(Some(Ok(Event::Reconnecting {
                    delay,
                    reason,
                    error: self.last_error.take(),
                })))
            }
            ConnectionOutput::Closed(reason) => {
                self.socket = None;
                match reason {
                    CloseReason::User | CloseReason::NoContent => Some(None),
                    reason => Some(Some(Err(Error::Closed {
                        reason,
                        cause: self.last_error.take().map(Box::new),
                    }))),
                }
            }
            ConnectionOutput::Error(e) => {
                // A socket error keeps the io::Error recorded by the loop.
                if e != ConnectionError::Socket {
                    self.last_error = Some(Error::Protocol(e));
                }
                None
            }
            #[cfg(feature = "tracing")]
            ConnectionOutput::Warning(warning) => {
                tracing::warn!(%warning, "event source warning");
                None
            }
            _ => None,
        }
    }
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
