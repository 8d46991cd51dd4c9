//! What every runtime adapter around a [`Connection`] would otherwise write
//! twice (feature `std`): the items its stream yields ([`Event`], [`Error`],
//! [`Item`]), the checks and seeding before the first connection
//! ([`new_connection`]), and the mapping from each [`ConnectionOutput`] to
//! what the adapter does next ([`Outputs`], [`Step`]).
//!
//! An adapter is then only the runtime-specific part: opening sockets,
//! reading, writing and sleeping. Its loop:
//!
//! 1. Drain [`Connection::poll_output`] through [`Outputs::step`] and act on
//!    each [`Step`] in order, until an item is ready or the queue is empty.
//! 2. Wait for the socket or [`Connection::poll_timeout`], hand what
//!    happened to the connection, and report socket errors to
//!    [`Outputs::socket_error`] as well, so that the next
//!    [`Event::Reconnecting`] or [`Error::Closed`] carries the `io::Error`.
//!
//! ```
//! use sse_proto::client::adapter::{self, Outputs, Step};
//! use sse_proto::client::ClientConfig;
//! use sse_proto::http1::{BodyLimits, HeadLimits};
//!
//! let config = ClientConfig::new("http://localhost:8080/events");
//! let t0 = std::time::Instant::now();
//! let mut conn = adapter::new_connection(config, HeadLimits::default(), BodyLimits::default(), t0)?;
//! let mut outputs = Outputs::new();
//! let Some(output) = conn.poll_output() else { unreachable!() };
//! match outputs.step(output) {
//!     Step::Connect { host, port } => assert_eq!((host.as_str(), port), ("localhost", 8080)),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), adapter::Error>(())
//! ```

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use core::fmt;
use core::ops::Add;
use core::time::Duration;
use std::io;

use bytes::Bytes;

use super::config::ClientConfig;
use super::conn::{Connection, ConnectionError, ConnectionOutput};
use super::machine::{CloseReason, ReconnectReason};
use crate::http1::{BodyLimits, HeadLimits, Scheme, Url};

/// What an adapter's event stream yields.
#[non_exhaustive]
#[derive(Debug)]
pub enum Event {
    /// A connection is open and the stream is flowing (the spec's `open`
    /// event). Yielded on every successful (re)connection.
    Open,
    /// A message. Its type (`event_type()`) can be anything the server
    /// sent, `"error"` and `"open"` included.
    Message(crate::Event),
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

/// Why an adapter's event source cannot start, or stopped for good.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// A socket error (connection refused, reset, host not found, ...).
    Io(io::Error),
    /// The server's response broke HTTP or the configuration cannot be
    /// sent (see [`ConnectionError`]).
    Protocol(ConnectionError),
    /// The URL (or a redirect) is `https`, and the adapter does not support
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
                "https ({host}:{port}) needs TLS, which this build leaves out: enable the \
                 adapter's `rustls` feature (sse-tokio or sse-async-std; `sse` itself: \
                 its `rustls` feature), or use an http URL"
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

/// The item type of an adapter's event stream.
pub type Item = Result<Event, Error>;

/// A seed for the reconnect jitter, different on every call: the output of
/// a fresh `RandomState` (the standard library keys each from the operating
/// system's randomness). No clock is read, as everywhere in this crate.
pub fn jitter_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

/// Starts a [`Connection`] at `now` for an adapter that speaks plain `http`
/// only, seeded with [`jitter_seed`].
///
/// # Errors
/// [`Error::TlsNotSupported`] for an `https` URL, [`Error::Protocol`] when
/// the URL or a configured header cannot be used (see
/// [`Connection::with_limits`]).
pub fn new_connection<I>(
    config: ClientConfig,
    head_limits: HeadLimits,
    body_limits: BodyLimits,
    now: I,
) -> Result<Connection<I>, Error>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    start(config, head_limits, body_limits, now, false)
}

/// Starts a [`Connection`] at `now` for an adapter that speaks `https` as
/// well as `http`, seeded with [`jitter_seed`]. Pair it with
/// [`Outputs::with_tls`], which turns a TLS connect into
/// [`Step::ConnectTls`].
///
/// # Errors
/// [`Error::Protocol`] when the URL or a configured header cannot be used
/// (see [`Connection::with_limits`]).
pub fn new_tls_connection<I>(
    config: ClientConfig,
    head_limits: HeadLimits,
    body_limits: BodyLimits,
    now: I,
) -> Result<Connection<I>, Error>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    start(config, head_limits, body_limits, now, true)
}

/// [`new_connection`] or [`new_tls_connection`], as `tls_supported` says.
fn start<I>(
    config: ClientConfig,
    head_limits: HeadLimits,
    body_limits: BodyLimits,
    now: I,
    tls_supported: bool,
) -> Result<Connection<I>, Error>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    if let Ok(url) = Url::parse(config.url()) {
        if url.scheme() == Scheme::Https && !tls_supported {
            return Err(Error::TlsNotSupported {
                host: url.host().to_string(),
                port: url.port(),
            });
        }
    }
    Ok(Connection::with_limits(
        config,
        head_limits,
        body_limits,
        now,
        jitter_seed(),
    )?)
}

/// What the adapter does with one [`ConnectionOutput`] (from
/// [`Outputs::step`]).
#[non_exhaustive]
#[derive(Debug)]
pub enum Step {
    /// Yield this event; the stream goes on.
    Yield(Event),
    /// Yield `Err(error)`, then end the stream: the source is closed for
    /// good (the connection has nothing more to say, or the adapter cannot
    /// follow it, as with [`Error::TlsNotSupported`]). Drop the socket and
    /// the timer.
    Fail(Error),
    /// End the stream without an error (`204 No Content`, or
    /// [`Connection::close`]). Drop the socket and the timer.
    End,
    /// Open a plain TCP connection to `host`:`port`; the request follows
    /// as a [`Write`](Step::Write). If it cannot be opened, report the
    /// error to [`Outputs::socket_error`] and
    /// [`Connection::handle_socket_error`].
    Connect {
        /// A DNS name, an IPv4 address, or an IPv6 address without
        /// brackets.
        host: String,
        /// The TCP port.
        port: u16,
    },
    /// Open a TCP connection to `host`:`port` and start TLS on it, with
    /// `host` as the server name (SNI, and the name the certificate must
    /// be valid for); the request follows as a [`Write`](Step::Write).
    /// Only from an [`Outputs::with_tls`]. A failed handshake is reported
    /// like any socket error.
    ConnectTls {
        /// A DNS name, an IPv4 address, or an IPv6 address without
        /// brackets.
        host: String,
        /// The TCP port.
        port: u16,
    },
    /// Write these bytes to the socket (once it is open).
    Write(Bytes),
    /// Close the socket and read nothing more from it.
    CloseSocket,
    /// Nothing to do: poll the next output.
    Continue,
}

/// The adapter-side bookkeeping between [`ConnectionOutput`]s and stream
/// items: it remembers the error behind the next reconnect or close.
///
/// A socket's `io::Error` (given to [`socket_error`](Outputs::socket_error))
/// wins over the [`ConnectionError::Socket`] the connection reports for it;
/// any other [`ConnectionError`] replaces it.
#[derive(Debug, Default)]
pub struct Outputs {
    /// The error behind the next `Reconnecting` or `Closed`.
    last_error: Option<Error>,
    /// Whether the adapter speaks TLS (a TLS connect is a
    /// [`Step::ConnectTls`], not [`Error::TlsNotSupported`]).
    tls_supported: bool,
}

impl Outputs {
    /// No error recorded yet, for an adapter that speaks plain `http` only:
    /// a TLS connect fails the stream with [`Error::TlsNotSupported`].
    pub fn new() -> Outputs {
        Outputs::default()
    }

    /// No error recorded yet, for an adapter that speaks TLS: a TLS connect
    /// is a [`Step::ConnectTls`].
    pub fn with_tls() -> Outputs {
        Outputs {
            last_error: None,
            tls_supported: true,
        }
    }

    /// Records a socket error (opening, writing or reading failed): it
    /// becomes the `error` of the next [`Event::Reconnecting`] or the
    /// `cause` of the next [`Error::Closed`]. Call
    /// [`Connection::handle_socket_error`] too.
    pub fn socket_error(&mut self, error: io::Error) {
        self.last_error = Some(Error::Io(error));
    }

    /// What to do with `output`. Outputs must be stepped in the order the
    /// connection gives them.
    pub fn step(&mut self, output: ConnectionOutput) -> Step {
        match output {
            ConnectionOutput::Connect { host, port, tls } => {
                if tls && self.tls_supported {
                    Step::ConnectTls { host, port }
                } else if tls {
                    Step::Fail(Error::TlsNotSupported { host, port })
                } else {
                    Step::Connect { host, port }
                }
            }
            ConnectionOutput::Write(bytes) => Step::Write(bytes),
            ConnectionOutput::CloseSocket => Step::CloseSocket,
            ConnectionOutput::Open => Step::Yield(Event::Open),
            ConnectionOutput::Event(event) => Step::Yield(Event::Message(event)),
            ConnectionOutput::Reconnecting { delay, reason } => Step::Yield(Event::Reconnecting {
                delay,
                reason,
                error: self.last_error.take(),
            }),
            ConnectionOutput::Closed(CloseReason::User | CloseReason::NoContent) => {
                self.last_error = None;
                Step::End
            }
            ConnectionOutput::Closed(reason) => Step::Fail(Error::Closed {
                reason,
                cause: self.last_error.take().map(Box::new),
            }),
            ConnectionOutput::Error(ConnectionError::Socket) => {
                // Keeps the io::Error recorded by the adapter: it says more.
                Step::Continue
            }
            ConnectionOutput::Error(e) => {
                self.last_error = Some(Error::Protocol(e));
                Step::Continue
            }
            ConnectionOutput::Retry(_) | ConnectionOutput::Warning(_) => Step::Continue,
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests may read the clock.
mod tests {
    use super::*;
    use crate::http1::BodyError;
    use alloc::format;
    use alloc::vec::Vec;
    use std::error::Error as _;
    use std::time::Instant;

    fn refused() -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionRefused, "refused")
    }

    fn reconnecting() -> ConnectionOutput {
        ConnectionOutput::Reconnecting {
            delay: Duration::from_millis(50),
            reason: ReconnectReason::NetworkError,
        }
    }

    #[test]
    fn events_are_yielded() {
        let mut outputs = Outputs::new();
        assert!(matches!(
            outputs.step(ConnectionOutput::Open),
            Step::Yield(Event::Open)
        ));
        let mut decoder = crate::Decoder::new();
        decoder.handle_bytes(b"data: hi\n\n");
        let Ok(Some(event)) = decoder.poll_event() else {
            panic!("no event")
        };
        match outputs.step(ConnectionOutput::Event(event)) {
            Step::Yield(Event::Message(m)) => assert_eq!(m.data(), "hi"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            outputs.step(ConnectionOutput::Retry(Duration::from_secs(1))),
            Step::Continue
        ));
    }

    #[test]
    fn socket_outputs_become_socket_steps() {
        let mut outputs = Outputs::new();
        let connect = ConnectionOutput::Connect {
            host: "example.com".into(),
            port: 80,
            tls: false,
        };
        match outputs.step(connect) {
            Step::Connect { host, port } => assert_eq!((host.as_str(), port), ("example.com", 80)),
            other => panic!("{other:?}"),
        }
        match outputs.step(ConnectionOutput::Write(Bytes::from_static(b"GET"))) {
            Step::Write(bytes) => assert_eq!(&bytes[..], b"GET"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            outputs.step(ConnectionOutput::CloseSocket),
            Step::CloseSocket
        ));
    }

    #[test]
    fn a_tls_connect_fails_the_stream() {
        let mut outputs = Outputs::new();
        let connect = ConnectionOutput::Connect {
            host: "example.com".into(),
            port: 443,
            tls: true,
        };
        match outputs.step(connect) {
            Step::Fail(Error::TlsNotSupported { host, port: 443 }) => {
                assert_eq!(host, "example.com");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_tls_connect_is_a_tls_step_when_supported() {
        let mut outputs = Outputs::with_tls();
        let connect = |tls| ConnectionOutput::Connect {
            host: "example.com".into(),
            port: 443,
            tls,
        };
        match outputs.step(connect(true)) {
            Step::ConnectTls { host, port: 443 } => assert_eq!(host, "example.com"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            outputs.step(connect(false)),
            Step::Connect { port: 443, .. }
        ));
    }

    #[test]
    fn https_starts_when_tls_is_supported() {
        let config = ClientConfig::new("https://example.com/events");
        let limits = (HeadLimits::default(), BodyLimits::default());
        let mut conn = match new_tls_connection(config, limits.0, limits.1, Instant::now()) {
            Ok(conn) => conn,
            Err(e) => panic!("{e}"),
        };
        let mut outputs = Outputs::with_tls();
        let steps: Vec<Step> = core::iter::from_fn(|| conn.poll_output())
            .map(|o| outputs.step(o))
            .collect();
        match &steps[..] {
            [Step::ConnectTls { host, port: 443 }, Step::Write(_)] => {
                assert_eq!(host, "example.com");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_io_error_wins_over_the_socket_error() {
        let mut outputs = Outputs::new();
        outputs.socket_error(refused());
        assert!(matches!(
            outputs.step(ConnectionOutput::Error(ConnectionError::Socket)),
            Step::Continue
        ));
        match outputs.step(reconnecting()) {
            Step::Yield(Event::Reconnecting {
                error: Some(Error::Io(e)),
                ..
            }) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
            other => panic!("{other:?}"),
        }
        // Taken: the next reconnect has no error of its own.
        assert!(matches!(
            outputs.step(reconnecting()),
            Step::Yield(Event::Reconnecting { error: None, .. })
        ));
    }

    #[test]
    fn a_protocol_error_replaces_an_older_io_error() {
        let mut outputs = Outputs::new();
        outputs.socket_error(refused());
        outputs.step(ConnectionOutput::Error(
            ConnectionError::ClosedBeforeResponse,
        ));
        assert!(matches!(
            outputs.step(reconnecting()),
            Step::Yield(Event::Reconnecting {
                error: Some(Error::Protocol(ConnectionError::ClosedBeforeResponse)),
                ..
            })
        ));
    }

    #[test]
    fn closed_fails_with_the_last_error_as_cause() {
        let mut outputs = Outputs::new();
        outputs.socket_error(refused());
        outputs.step(ConnectionOutput::Error(ConnectionError::Socket));
        let closed = ConnectionOutput::Closed(CloseReason::BadStatus(500));
        match outputs.step(closed) {
            Step::Fail(
                err @ Error::Closed {
                    reason: CloseReason::BadStatus(500),
                    cause: Some(_),
                },
            ) => {
                assert!(format!("{err}").starts_with("event source closed: "));
                assert!(matches!(
                    err.source().and_then(|s| s.downcast_ref::<Error>()),
                    Some(Error::Io(_))
                ));
            }
            other => panic!("{other:?}"),
        }
        match outputs.step(ConnectionOutput::Closed(CloseReason::BadStatus(500))) {
            Step::Fail(err @ Error::Closed { cause: None, .. }) => {
                assert!(err.source().is_some_and(|s| s.is::<CloseReason>()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn user_and_no_content_end_the_stream_without_an_error() {
        for reason in [CloseReason::User, CloseReason::NoContent] {
            let mut outputs = Outputs::new();
            outputs.socket_error(refused());
            assert!(matches!(
                outputs.step(ConnectionOutput::Closed(reason)),
                Step::End
            ));
        }
    }

    #[test]
    fn https_is_refused_before_connecting() {
        let config = ClientConfig::new("https://example.com/events");
        let limits = (HeadLimits::default(), BodyLimits::default());
        match new_connection(config, limits.0, limits.1, Instant::now()) {
            Err(err @ Error::TlsNotSupported { port: 443, .. }) => {
                assert!(format!("{err}").contains("`rustls` feature"));
                assert!(err.source().is_none());
            }
            other => panic!("{other:?}"),
        }
        let config = ClientConfig::new("not a url");
        let limits = (HeadLimits::default(), BodyLimits::default());
        match new_connection(config, limits.0, limits.1, Instant::now()) {
            Err(err @ Error::Protocol(ConnectionError::Url(_))) => {
                assert!(err.source().is_some());
            }
            other => panic!("{other:?}"),
        }
        let config = ClientConfig::new("http://example.com/events");
        let limits = (HeadLimits::default(), BodyLimits::default());
        let mut conn = match new_connection(config, limits.0, limits.1, Instant::now()) {
            Ok(conn) => conn,
            Err(e) => panic!("{e}"),
        };
        let mut outputs = Outputs::new();
        let steps: Vec<Step> = core::iter::from_fn(|| conn.poll_output())
            .map(|o| outputs.step(o))
            .collect();
        assert!(matches!(
            &steps[..],
            [Step::Connect { port: 80, .. }, Step::Write(_)]
        ));
    }

    #[test]
    fn errors_convert_and_display() {
        let e = Error::from(refused());
        assert!(format!("{e}").starts_with("connection error: "));
        assert!(e.source().is_some());
        let e = Error::from(ConnectionError::Body(BodyError::Truncated));
        assert!(format!("{e}").starts_with("bad response body: "));
    }
}
