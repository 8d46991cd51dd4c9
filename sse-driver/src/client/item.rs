//! What the client stream yields ([`Event`], [`Error`], [`Item`]), and the
//! bookkeeping that turns each [`ConnectionOutput`] that is not a socket
//! action into one ([`Reports`]): it remembers the error behind the next
//! reconnect or close.

use std::fmt;
use std::io;
use std::time::Duration;

use sse_proto::client::{
    CloseReason, ConnectionError, ConnectionOutput, ErrorResponse, ReconnectReason, excerpt,
};

/// What the client stream yields.
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

/// Why an event source cannot start, or stopped for good.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// A socket error (connection refused, reset, host not found, ...).
    Io(io::Error),
    /// The server's response broke HTTP or the configuration cannot be
    /// sent (see [`ConnectionError`]).
    Protocol(ConnectionError),
    /// The URL (or a redirect) is `https`, and the runtime binding was built
    /// without TLS (its `rustls` feature). Enable it, or use an `http` URL
    /// (for example behind a TLS-terminating proxy).
    TlsNotSupported {
        /// The host that asked for TLS.
        host: String,
        /// Its port.
        port: u16,
    },
    /// The server answered with something other than an event stream (a
    /// status other than 200, or a 200 that is not `text/event-stream`):
    /// the source closed, and this is what the server said (its status,
    /// headers and the first bytes of its body, such as an API's JSON
    /// error). Its [`reason`](ErrorResponse::reason) is the
    /// [`CloseReason`].
    Rejected(Box<ErrorResponse>),
    /// The source closed for good; `reason` says why (reconnecting
    /// disabled, too many failed attempts, ...).
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
            Error::Rejected(response) => {
                let status = response.status();
                let phrase = sse_proto::http1::reason_phrase(status).unwrap_or("");
                write!(f, "the server answered {status} {phrase}")?;
                if let CloseReason::BadContentType(_) = response.reason() {
                    write!(f, " ({})", response.reason())?;
                }
                let text = excerpt(&response.body_text(), 300);
                if !text.is_empty() {
                    write!(f, ": {text}")?;
                }
                Ok(())
            }
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
            Error::Rejected(response) => Some(response.reason()),
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

/// The item type of the client stream.
pub type Item = Result<Event, Error>;

/// A seed for the reconnect jitter, different on every call: the output of
/// a fresh `RandomState` (the standard library keys each from the operating
/// system's randomness).
pub(crate) fn jitter_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

/// What the stream does after an output that is not a socket action.
#[derive(Debug)]
pub(crate) enum Report {
    /// Yield this item; after an `Err`, the stream ends.
    Item(Item),
    /// End the stream without an error.
    End,
}

/// The bookkeeping between [`ConnectionOutput`]s and stream items: it
/// remembers the error behind the next reconnect or close.
///
/// A socket's `io::Error` (given to [`socket_error`](Reports::socket_error))
/// wins over the [`ConnectionError::Socket`] the connection reports for it;
/// any other [`ConnectionError`] replaces it.
#[derive(Debug, Default)]
pub(crate) struct Reports {
    /// The error behind the next `Reconnecting` or `Closed`.
    last_error: Option<Error>,
    /// The response behind the next `Closed`.
    rejected: Option<Box<ErrorResponse>>,
}

impl Reports {
    /// Records a socket error (opening, writing or reading failed): it
    /// becomes the `error` of the next [`Event::Reconnecting`] or the
    /// `cause` of the next [`Error::Closed`].
    pub(crate) fn socket_error(&mut self, error: io::Error) {
        self.last_error = Some(Error::Io(error));
    }

    /// What `output` means for the stream: `None` when it yields nothing
    /// (socket actions are the caller's; retries, warnings and errors are
    /// remembered or dropped). Outputs must come in the connection's order.
    pub(crate) fn report(&mut self, output: ConnectionOutput) -> Option<Report> {
        let item = match output {
            ConnectionOutput::Connect { .. }
            | ConnectionOutput::StartTls { .. }
            | ConnectionOutput::CloseSocket => return None,
            ConnectionOutput::Rejected(response) => {
                self.rejected = Some(response);
                return None;
            }
            ConnectionOutput::Open => Ok(Event::Open),
            ConnectionOutput::Event(event) => Ok(Event::Message(event)),
            ConnectionOutput::Reconnecting { delay, reason } => Ok(Event::Reconnecting {
                delay,
                reason,
                error: self.last_error.take(),
            }),
            // Closed by the application, told to stop (204), or a one-shot
            // stream (reconnecting off) that ended cleanly: the end, not
            // an error.
            ConnectionOutput::Closed(
                CloseReason::User
                | CloseReason::NoContent
                | CloseReason::ReconnectDisabled(ReconnectReason::EndOfStream),
            ) => {
                self.last_error = None;
                return Some(Report::End);
            }
            ConnectionOutput::Closed(reason) if self.rejected.is_some() => {
                self.last_error = None;
                match self.rejected.take() {
                    Some(response) => Err(Error::Rejected(response)),
                    None => Err(Error::Closed {
                        reason,
                        cause: None,
                    }),
                }
            }
            ConnectionOutput::Closed(reason) => Err(Error::Closed {
                reason,
                cause: self.last_error.take().map(Box::new),
            }),
            // Keeps the io::Error recorded by the driver: it says more.
            ConnectionOutput::Error(ConnectionError::Socket) => return None,
            ConnectionOutput::Error(e) => {
                self.last_error = Some(Error::Protocol(e));
                return None;
            }
            ConnectionOutput::Retry(_) | ConnectionOutput::Warning(_) => return None,
        };
        Some(Report::Item(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sse_proto::http1::BodyError;
    use std::error::Error as _;

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
    fn events_are_yielded_and_socket_actions_are_not() {
        let mut reports = Reports::default();
        assert!(matches!(
            reports.report(ConnectionOutput::Open),
            Some(Report::Item(Ok(Event::Open)))
        ));
        let mut decoder = sse_proto::Decoder::new();
        decoder.handle_bytes(b"data: hi\n\n");
        let Ok(Some(event)) = decoder.poll_event() else {
            panic!("no event")
        };
        match reports.report(ConnectionOutput::Event(event)) {
            Some(Report::Item(Ok(Event::Message(m)))) => assert_eq!(m.data(), "hi"),
            other => panic!("{other:?}"),
        }
        let connect = ConnectionOutput::Connect {
            host: "example.com".into(),
            port: 80,
            tls: false,
            proxy: false,
        };
        for quiet in [
            ConnectionOutput::Retry(Duration::from_secs(1)),
            connect,
            ConnectionOutput::CloseSocket,
        ] {
            assert!(reports.report(quiet).is_none());
        }
    }

    #[test]
    fn an_io_error_wins_over_the_socket_error() {
        let mut reports = Reports::default();
        reports.socket_error(refused());
        assert!(
            reports
                .report(ConnectionOutput::Error(ConnectionError::Socket))
                .is_none()
        );
        match reports.report(reconnecting()) {
            Some(Report::Item(Ok(Event::Reconnecting {
                error: Some(Error::Io(e)),
                ..
            }))) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
            other => panic!("{other:?}"),
        }
        // Taken: the next reconnect has no error of its own.
        assert!(matches!(
            reports.report(reconnecting()),
            Some(Report::Item(Ok(Event::Reconnecting { error: None, .. })))
        ));
    }

    #[test]
    fn a_protocol_error_replaces_an_older_io_error() {
        let mut reports = Reports::default();
        reports.socket_error(refused());
        reports.report(ConnectionOutput::Error(
            ConnectionError::ClosedBeforeResponse,
        ));
        assert!(matches!(
            reports.report(reconnecting()),
            Some(Report::Item(Ok(Event::Reconnecting {
                error: Some(Error::Protocol(ConnectionError::ClosedBeforeResponse)),
                ..
            })))
        ));
    }

    #[test]
    fn closed_fails_with_the_last_error_as_cause() {
        let mut reports = Reports::default();
        reports.socket_error(refused());
        reports.report(ConnectionOutput::Error(ConnectionError::Socket));
        let closed = ConnectionOutput::Closed(CloseReason::BadStatus(500));
        match reports.report(closed) {
            Some(Report::Item(Err(
                err @ Error::Closed {
                    reason: CloseReason::BadStatus(500),
                    cause: Some(_),
                },
            ))) => {
                assert!(format!("{err}").starts_with("event source closed: "));
                assert!(matches!(
                    err.source().and_then(|s| s.downcast_ref::<Error>()),
                    Some(Error::Io(_))
                ));
            }
            other => panic!("{other:?}"),
        }
        match reports.report(ConnectionOutput::Closed(CloseReason::BadStatus(500))) {
            Some(Report::Item(Err(err @ Error::Closed { cause: None, .. }))) => {
                assert!(err.source().is_some_and(|s| s.is::<CloseReason>()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn user_no_content_and_a_clean_one_shot_end_end_the_stream_without_an_error() {
        let one_shot = CloseReason::ReconnectDisabled(ReconnectReason::EndOfStream);
        for reason in [CloseReason::User, CloseReason::NoContent, one_shot] {
            let mut reports = Reports::default();
            reports.socket_error(refused());
            assert!(matches!(
                reports.report(ConnectionOutput::Closed(reason)),
                Some(Report::End)
            ));
            assert!(reports.last_error.is_none());
        }
        // A one-shot stream that broke is still an error.
        let broken = CloseReason::ReconnectDisabled(ReconnectReason::NetworkError);
        assert!(matches!(
            reports_after_refusal().report(ConnectionOutput::Closed(broken)),
            Some(Report::Item(Err(Error::Closed { .. })))
        ));
    }

    fn reports_after_refusal() -> Reports {
        let mut reports = Reports::default();
        reports.socket_error(refused());
        reports
    }

    #[test]
    fn errors_convert_and_display() {
        let e = Error::from(refused());
        assert!(format!("{e}").starts_with("connection error: "));
        assert!(e.source().is_some());
        let e = Error::from(ConnectionError::Body(BodyError::Truncated));
        assert!(format!("{e}").starts_with("bad response body: "));
        let e = Error::TlsNotSupported {
            host: "example.com".into(),
            port: 443,
        };
        assert!(format!("{e}").contains("`rustls` feature"));
        assert!(e.source().is_none());
    }
}
