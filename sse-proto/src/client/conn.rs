//! [`Connection`]: the [`EventSource`] machine plus HTTP/1.1, still sans-IO.
//!
//! The machine speaks in requests and response heads; a driver speaks in
//! sockets and bytes. `Connection` sits between them so that a driving loop
//! (async over any runtime, or a blocking one) only opens sockets, writes
//! what [`Connection::poll_transmit`] holds, reads and sleeps.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::ops::Add;
use core::time::Duration;

use bytes::{Buf, Bytes, BytesMut};

use super::config::ClientConfig;
use super::machine::{
    CloseReason, EventSource, Output, ReadyState, ReconnectReason, ResponseSummary, Warning,
};
use super::proxy::{Proxies, Proxy, ProxyError, bracketed};
use super::rejection::ErrorResponse;
use crate::event::Event;
use crate::http1::{
    self, BodyDecoder, BodyError, BodyLimits, BuildError, FramingError, HeadError, HeadLimits,
    ResponseParser, RetryAfter, Scheme, Url, UrlError,
};

/// Why a connection attempt, a response or the configuration is unusable.
///
/// [`Connection::new`] returns the configuration errors
/// ([`Url`](ConnectionError::Url), [`Request`](ConnectionError::Request));
/// the others arrive as [`ConnectionOutput::Error`] just before the machine
/// reconnects (or gives up), to say what went wrong on the wire.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionError {
    /// The configured URL, or a redirect's `Location`, is not a usable
    /// `http`/`https` URL.
    Url(UrlError),
    /// The request cannot be written: the configured method or a header is
    /// invalid, or a header is one the connection writes itself (`Host`,
    /// `Content-Length`, `Transfer-Encoding`).
    Request(BuildError),
    /// The response head is malformed or larger than the [`HeadLimits`].
    Head(HeadError),
    /// The response's framing headers (`Content-Length`,
    /// `Transfer-Encoding`) are invalid or conflicting.
    Framing(FramingError),
    /// The response body's chunked framing is broken, or the body was cut
    /// short.
    Body(BodyError),
    /// The server closed the connection before a complete response head.
    ClosedBeforeResponse,
    /// The server answered `101 Switching Protocols`, which ends HTTP on
    /// the connection.
    UnexpectedUpgrade,
    /// The adapter reported a socket error
    /// ([`Connection::handle_socket_error`]); the adapter has the details.
    Socket,
    /// The proxy setting cannot be used.
    Proxy(ProxyError),
    /// The proxy answered `CONNECT` with a status other than 2xx (407:
    /// it wants credentials, given as `user:password@` in its URL).
    ProxyRefused {
        /// The proxy's `host:port`.
        proxy: String,
        /// The target's `host:port`.
        target: String,
        /// The proxy's status.
        status: u16,
    },
    /// The proxy closed the connection before answering `CONNECT`.
    ProxyClosed {
        /// The proxy's `host:port`.
        proxy: String,
    },
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Url(e) => write!(f, "unusable URL: {e}"),
            ConnectionError::Request(e) => write!(f, "cannot write the request: {e}"),
            ConnectionError::Head(e) => write!(f, "bad response head: {e}"),
            ConnectionError::Framing(e) => write!(f, "bad response framing: {e}"),
            ConnectionError::Body(e) => write!(f, "bad response body: {e}"),
            ConnectionError::ClosedBeforeResponse => {
                f.write_str("the server closed the connection before sending a response")
            }
            ConnectionError::UnexpectedUpgrade => f.write_str(
                "the server switched protocols (101) instead of sending an event stream",
            ),
            ConnectionError::Socket => f.write_str("socket error"),
            ConnectionError::Proxy(e) => write!(f, "{e}"),
            ConnectionError::ProxyRefused {
                proxy,
                target,
                status,
            } => {
                let reason = http1::reason_phrase(*status).unwrap_or("");
                write!(
                    f,
                    "the proxy {proxy} refused a tunnel to {target}: {status} {reason}"
                )?;
                if *status == 407 {
                    f.write_str(" (give its credentials as user:password@ in the proxy URL)")?;
                }
                Ok(())
            }
            ConnectionError::ProxyClosed { proxy } => write!(
                f,
                "the proxy {proxy} closed the connection before answering CONNECT"
            ),
        }
    }
}

impl core::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ConnectionError::Url(e) => Some(e),
            ConnectionError::Request(e) => Some(e),
            ConnectionError::Head(e) => Some(e),
            ConnectionError::Framing(e) => Some(e),
            ConnectionError::Body(e) => Some(e),
            ConnectionError::Proxy(e) => Some(e),
            _ => None,
        }
    }
}

/// What a [`Connection`] asks of the driver, or tells the application.
/// Drain [`Connection::poll_output`] until `None` after every input, acting
/// on each output in order.
///
/// Not `#[non_exhaustive]`: a driver matches every variant, so that one
/// added later fails to compile there instead of being dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionOutput {
    /// Open a TCP connection to `host`:`port` (and start TLS on it when
    /// `tls`, the server name being `host`), then write what
    /// [`Connection::poll_transmit`] holds. Any previous socket has been
    /// closed with [`CloseSocket`](ConnectionOutput::CloseSocket) already.
    /// If the connection cannot be opened, call
    /// [`Connection::handle_socket_error`].
    Connect {
        /// A DNS name, an IPv4 address, or an IPv6 address without
        /// brackets.
        host: String,
        /// The TCP port.
        port: u16,
        /// Whether to start TLS on the new connection: the URL is `https`
        /// (or, through a proxy, the proxy's is).
        tls: bool,
        /// Whether `host`:`port` is a forward proxy (for messages: a
        /// failure to connect is the proxy's).
        proxy: bool,
    },
    /// The proxy opened the tunnel: start TLS with `server_name` over the
    /// open socket, then go on writing what
    /// [`Connection::poll_transmit`] holds. A failed handshake is a
    /// [`Connection::handle_socket_error`].
    StartTls {
        /// The server name to ask for (SNI) and to check the certificate
        /// against: the URL's host.
        server_name: String,
    },
    /// Close the socket and feed nothing more from it.
    CloseSocket,
    /// The stream is open ([`Output::Open`]).
    Open,
    /// A message event ([`Output::Event`]).
    Event(Event),
    /// A `retry` field changed the reconnection time ([`Output::Retry`]).
    Retry(Duration),
    /// The connection was lost; the next attempt starts after `delay`
    /// ([`Output::Reconnecting`]). Sleep until
    /// [`Connection::poll_timeout`].
    Reconnecting {
        /// How long the machine waits before the next attempt.
        delay: Duration,
        /// Why the connection was lost.
        reason: ReconnectReason,
    },
    /// The response that closes the source (a status other than 200, or
    /// no event stream): its status, headers and the first bytes of its
    /// body. Just before the [`Closed`](ConnectionOutput::Closed) it
    /// explains.
    Rejected(Box<ErrorResponse>),
    /// Closed for good ([`Output::Closed`]); nothing follows.
    Closed(CloseReason),
    /// Something worth logging ([`Output::Warning`]).
    Warning(Warning),
    /// What went wrong on the wire, just before the resulting
    /// [`Reconnecting`](ConnectionOutput::Reconnecting) or
    /// [`Closed`](ConnectionOutput::Closed). Informational.
    Error(ConnectionError),
}

/// How long the body of a response that closes the source is read for
/// ([`ConnectionOutput::Rejected`]), at most.
pub const ERROR_BODY_WAIT: Duration = Duration::from_secs(5);

/// Where the current socket is in its exchange.
enum Socket<I> {
    /// No socket (waiting, closed, or the machine dropped the request).
    None,
    /// `CONNECT` sent to the proxy (or being sent); reading its answer.
    Tunnel {
        url: Url,
        method: String,
        /// The request to send once the tunnel is up.
        request: Bytes,
        /// The proxy's `host:port`.
        proxy: String,
        parser: ResponseParser,
    },
    /// Request sent (or being sent); reading the response head.
    Head {
        url: Url,
        method: String,
        parser: ResponseParser,
    },
    /// Reading the body of an open stream.
    Body { decoder: BodyDecoder },
    /// Reading the first bytes of a response that closes the source, the
    /// machine's outputs held until then.
    Rejected {
        decoder: BodyDecoder,
        response: ErrorResponse,
        held: Vec<Output>,
        deadline: I,
    },
}

/// The reconnecting `EventSource` client over HTTP/1.1, sans-IO: an
/// [`EventSource`] machine plus the request writer, the response parser and
/// the body decoder of [`http1`](crate::http1).
///
/// It turns each request of the machine into a socket to open and bytes to
/// write, and the bytes read back into response heads, body pieces, ends of
/// stream and errors for the machine. Redirect `Location`s are resolved
/// against the request URL, interim (1xx) responses skipped, chunked,
/// `Content-Length` and close-delimited bodies decoded, and every protocol
/// error turned into a reconnect. One socket carries one request; sockets
/// are never reused.
///
/// The driver's loop: drain [`poll_output`](Connection::poll_output) and
/// act on each [`ConnectionOutput`]; once the socket is open, write what
/// [`poll_transmit`](Connection::poll_transmit) holds (reporting what the
/// socket took with [`handle_written`](Connection::handle_written)); then
/// wait for whichever comes first of socket bytes ([`handle_socket_bytes`](Connection::handle_socket_bytes)),
/// end of file ([`handle_socket_eof`](Connection::handle_socket_eof)), a
/// socket error ([`handle_socket_error`](Connection::handle_socket_error))
/// and [`poll_timeout`](Connection::poll_timeout)
/// ([`handle_timeout`](Connection::handle_timeout)).
///
/// ```
/// use sse_proto::client::{ClientConfig, Connection, ConnectionOutput};
///
/// let t0 = std::time::Instant::now();
/// let mut conn = Connection::new(ClientConfig::new("http://localhost:8080/events"), t0, 1)?;
/// assert_eq!(
///     conn.poll_output(),
///     Some(ConnectionOutput::Connect {
///         host: "localhost".into(),
///         port: 8080,
///         tls: false,
///         proxy: false,
///     })
/// );
/// let request = conn.poll_transmit().unwrap_or_default();
/// assert!(request.starts_with(b"GET /events HTTP/1.1\r\nHost: localhost:8080\r\n"));
/// let n = request.len();
/// conn.handle_written(n);
/// assert_eq!(conn.poll_transmit(), None);
///
/// conn.handle_socket_bytes(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: hi\n\n", t0);
/// assert_eq!(conn.poll_output(), Some(ConnectionOutput::Open));
/// let Some(ConnectionOutput::Event(event)) = conn.poll_output() else { panic!() };
/// assert_eq!(event.data(), "hi");
/// # Ok::<(), sse_proto::client::ConnectionError>(())
/// ```
pub struct Connection<I> {
    es: EventSource<I>,
    out: VecDeque<ConnectionOutput>,
    socket: Socket<I>,
    proxies: Proxies,
    /// The request still to write to the current socket.
    transmit: Bytes,
    buf: BytesMut,
    head_limits: HeadLimits,
    body_limits: BodyLimits,
}

impl<I> fmt::Debug for Connection<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    /// Only states and sizes: the pending request may hold credentials
    /// (`Authorization`, a proxy's `Proxy-Authorization`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let socket = match &self.socket {
            Socket::None => "none",
            Socket::Tunnel { .. } => "tunnel",
            Socket::Head { .. } => "head",
            Socket::Body { .. } => "body",
            Socket::Rejected { .. } => "rejected",
        };
        f.debug_struct("Connection")
            .field("ready_state", &self.es.ready_state())
            .field("socket", &socket)
            .field("outputs", &self.out.len())
            .field("transmit", &self.transmit.len())
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl<I> Connection<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    /// Starts the client at `now` with the default [`HeadLimits`] and
    /// [`BodyLimits`]; the first output is
    /// [`Connect`](ConnectionOutput::Connect), with the request at
    /// [`poll_transmit`](Connection::poll_transmit). `seed` drives the reconnect
    /// jitter (see [`EventSource::new`]).
    ///
    /// # Errors
    /// [`ConnectionError::Url`] when the configured URL is not a usable
    /// absolute `http`/`https` URL, and [`ConnectionError::Request`] when
    /// the configured method or headers cannot be written.
    pub fn new(config: ClientConfig, now: I, seed: u64) -> Result<Connection<I>, ConnectionError> {
        Connection::with_limits(
            config,
            HeadLimits::default(),
            BodyLimits::default(),
            now,
            seed,
        )
    }

    /// Like [`new`](Connection::new), with limits on response heads and
    /// chunked framing.
    ///
    /// # Errors
    /// As [`new`](Connection::new).
    pub fn with_limits(
        config: ClientConfig,
        head_limits: HeadLimits,
        body_limits: BodyLimits,
        now: I,
        seed: u64,
    ) -> Result<Connection<I>, ConnectionError> {
        let url = Url::parse(config.url()).map_err(ConnectionError::Url)?;
        let proxies = config.proxies.clone().unwrap_or_default();
        proxies.check(&url).map_err(ConnectionError::Proxy)?;
        let mut es = EventSource::new(config, now, seed);
        let mut early = VecDeque::new();
        // The first request shows whether the configuration can be written:
        // every later request has the same method and headers (or fewer).
        while let Some(output) = es.poll_output() {
            if let Output::Connect(request) = &output {
                encode_request(request, None)?;
            }
            early.push_back(output);
        }
        let mut conn = Connection {
            es,
            out: VecDeque::new(),
            socket: Socket::None,
            proxies,
            transmit: Bytes::new(),
            buf: BytesMut::new(),
            head_limits,
            body_limits,
        };
        for output in early {
            conn.translate(output);
        }
        Ok(conn)
    }

    /// The next output, or `None` until the next input.
    pub fn poll_output(&mut self) -> Option<ConnectionOutput> {
        self.out.pop_front()
    }

    /// The bytes to write to the open socket now (the rest of the
    /// request), or `None` when nothing is to be written. Write what the
    /// socket takes and report it with
    /// [`handle_written`](Connection::handle_written); after the last byte,
    /// flush the socket (a TLS layer may still hold records).
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        (!self.transmit.is_empty()).then_some(&self.transmit[..])
    }

    /// The socket took the first `n` bytes of
    /// [`poll_transmit`](Connection::poll_transmit) (more than it holds
    /// counts as all of it).
    pub fn handle_written(&mut self, n: usize) {
        self.transmit.advance(n.min(self.transmit.len()));
    }

    /// When [`handle_timeout`](Connection::handle_timeout) is due: the end
    /// of a reconnect wait or the idle deadline. `None`: no timer.
    pub fn poll_timeout(&self) -> Option<I> {
        let machine = self.es.poll_timeout();
        match (&self.socket, machine) {
            (Socket::Rejected { deadline, .. }, Some(t)) => Some(t.min(*deadline)),
            (Socket::Rejected { deadline, .. }, None) => Some(*deadline),
            (_, t) => t,
        }
    }

    /// The time is `now`: starts the next attempt after a wait, or gives up
    /// on an idle connection. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: I) {
        if let Socket::Rejected {
            deadline, response, ..
        } = &mut self.socket
        {
            if now >= *deadline {
                response.set_truncated();
                self.finish_rejected();
            }
        }
        self.es.handle_timeout(now);
        self.pump();
    }

    /// Bytes read from the socket (the response head, then the body).
    pub fn handle_socket_bytes(&mut self, bytes: &[u8], now: I) {
        if matches!(self.socket, Socket::None) || bytes.is_empty() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        self.process(now);
    }

    /// The socket reached end of file (the server closed its side).
    pub fn handle_socket_eof(&mut self, now: I) {
        match &mut self.socket {
            Socket::None => {}
            Socket::Tunnel { proxy, .. } => {
                let proxy = core::mem::take(proxy);
                self.fail(ConnectionError::ProxyClosed { proxy }, now);
            }
            Socket::Head { .. } => self.fail(ConnectionError::ClosedBeforeResponse, now),
            Socket::Rejected {
                decoder, response, ..
            } => {
                if decoder.handle_eof().is_err() {
                    response.set_truncated();
                }
                self.finish_rejected();
            }
            Socket::Body { decoder } => match decoder.handle_eof() {
                Ok(()) => {
                    self.drop_socket();
                    self.es.handle_eof(now);
                    self.pump();
                }
                Err(e) => self.fail(ConnectionError::Body(e), now),
            },
        }
    }

    /// Opening, writing to or reading from the socket failed. The adapter
    /// keeps the details (an `io::Error`); the machine reconnects.
    pub fn handle_socket_error(&mut self, now: I) {
        // The request for a socket that never opened is moot.
        self.transmit = Bytes::new();
        match &mut self.socket {
            Socket::None => {}
            Socket::Rejected { response, .. } => {
                response.set_truncated();
                self.finish_rejected();
            }
            _ => self.fail(ConnectionError::Socket, now),
        }
    }

    /// Closes the source for good: a [`CloseSocket`](ConnectionOutput::CloseSocket)
    /// if a socket is open, then `Closed(CloseReason::User)`; outputs not
    /// yet polled are dropped.
    pub fn close(&mut self) {
        if matches!(self.socket, Socket::Rejected { .. }) {
            // Closed already, still reading what the server said: that
            // and the held outputs are dropped.
            self.out.clear();
            self.drop_socket();
            self.out
                .push_back(ConnectionOutput::Closed(CloseReason::User));
            return;
        }
        if self.es.ready_state() == ReadyState::Closed {
            return;
        }
        self.out.clear();
        self.drop_socket();
        self.es.close();
        self.pump();
    }

    /// The machine's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        self.es.ready_state()
    }

    /// The machine, for its read-only accessors (last event ID, URLs,
    /// reconnection time).
    pub fn event_source(&self) -> &EventSource<I> {
        &self.es
    }

    /// Parses what the buffer holds for the current socket.
    fn process(&mut self, now: I) {
        loop {
            match &mut self.socket {
                Socket::None => {
                    self.buf.clear();
                    return;
                }
                Socket::Tunnel { parser, .. } => match parser.parse_buf(&mut self.buf) {
                    Ok(None) => return,
                    Ok(Some(head)) => self.handle_tunnel(&head, now),
                    Err(e) => return self.fail(ConnectionError::Head(e), now),
                },
                Socket::Head { parser, .. } => match parser.parse_buf(&mut self.buf) {
                    Ok(None) => return,
                    Ok(Some(head)) => self.handle_head(head, now),
                    Err(e) => return self.fail(ConnectionError::Head(e), now),
                },
                Socket::Rejected {
                    decoder, response, ..
                } => {
                    let more = match decoder.decode(&mut self.buf) {
                        Ok(Some(piece)) => {
                            let room = response.push_body(&piece);
                            let whole = decoder.is_done() && self.buf.is_empty();
                            if !room && !whole {
                                // Full, and the body goes on (or may: a
                                // close-delimited one, or bytes not yet
                                // decoded).
                                let ended = matches!(decoder.decode(&mut self.buf), Ok(None))
                                    && decoder.is_done();
                                if !ended {
                                    response.set_truncated();
                                }
                            }
                            room
                        }
                        Ok(None) => {
                            if !decoder.is_done() {
                                return;
                            }
                            false
                        }
                        Err(_) => {
                            response.set_truncated();
                            false
                        }
                    };
                    if !more {
                        return self.finish_rejected();
                    }
                }
                Socket::Body { decoder } => match decoder.decode(&mut self.buf) {
                    Ok(Some(piece)) => {
                        self.es.handle_chunk(piece, now);
                        self.pump();
                    }
                    Ok(None) if decoder.is_done() => {
                        self.drop_socket();
                        self.es.handle_eof(now);
                        return self.pump();
                    }
                    Ok(None) => return,
                    Err(e) => return self.fail(ConnectionError::Body(e), now),
                },
            }
        }
    }

    /// The proxy's answer to `CONNECT`: on a 2xx the tunnel is up, and
    /// TLS with the server starts in it.
    fn handle_tunnel(&mut self, head: &http1::ResponseHead, now: I) {
        if head.is_informational() {
            return;
        }
        let socket = core::mem::replace(&mut self.socket, Socket::None);
        let Socket::Tunnel {
            url,
            method,
            request,
            proxy,
            ..
        } = socket
        else {
            return;
        };
        if !(200..300).contains(&head.status()) {
            self.socket = Socket::Head {
                url: url.clone(),
                method,
                parser: ResponseParser::with_limits(self.head_limits),
            };
            let target = format!("{}:{}", bracketed(url.host()), url.port());
            let status = head.status();
            return self.fail(
                ConnectionError::ProxyRefused {
                    proxy,
                    target,
                    status,
                },
                now,
            );
        }
        // What follows the proxy's head is the tunnel's: the server speaks
        // only after the TLS client hello, so nothing is lost.
        self.buf.clear();
        self.out.push_back(ConnectionOutput::StartTls {
            server_name: String::from(url.host()),
        });
        self.transmit = request;
        self.socket = Socket::Head {
            url,
            method,
            parser: ResponseParser::with_limits(self.head_limits),
        };
    }

    /// The end of a response that closed the source: the socket closes,
    /// the response is told, then the machine's held outputs.
    fn finish_rejected(&mut self) {
        let socket = core::mem::replace(&mut self.socket, Socket::None);
        let Socket::Rejected { response, held, .. } = socket else {
            self.socket = socket;
            return;
        };
        self.buf.clear();
        self.transmit = Bytes::new();
        self.out.push_back(ConnectionOutput::CloseSocket);
        self.out
            .push_back(ConnectionOutput::Rejected(Box::new(response)));
        for output in held {
            self.translate(output);
        }
    }

    /// A complete response head for the current request.
    fn handle_head(&mut self, head: http1::ResponseHead, now: I) {
        let Socket::Head { url, method, .. } = &self.socket else {
            return;
        };
        if head.status() == 101 {
            return self.fail(ConnectionError::UnexpectedUpgrade, now);
        }
        if head.is_informational() {
            // 100 Continue and friends: the parser is ready for the real head.
            return;
        }
        let kind = match head.body_kind(method) {
            Ok(kind) => kind,
            Err(e) => return self.fail(ConnectionError::Framing(e), now),
        };
        let mut location = None;
        if head.is_redirect() {
            if let Some(value) = head.location() {
                location = Some(match url.join(value) {
                    Ok(target) => target.to_string(),
                    Err(e) => {
                        self.out
                            .push_back(ConnectionOutput::Error(ConnectionError::Url(e)));
                        // Not an absolute URL: the machine calls it a bad
                        // redirect.
                        String::new()
                    }
                });
            }
        }
        let mut machine_head = ResponseSummary::new(head.status());
        if let Some(ct) = head.content_type() {
            machine_head = machine_head.content_type(ct);
        }
        if let Some(location) = &location {
            machine_head = machine_head.location(location);
        }
        if let Some(RetryAfter::Delay(delay)) = head.retry_after() {
            machine_head = machine_head.retry_after(delay);
        }
        self.es.handle_response(machine_head, now);
        match self.es.ready_state() {
            ReadyState::Open => {
                self.socket = Socket::Body {
                    decoder: BodyDecoder::with_limits(kind, self.body_limits),
                };
            }
            ReadyState::Closed => {
                let held: Vec<Output> = core::iter::from_fn(|| self.es.poll_output()).collect();
                let reason = held.iter().find_map(|output| match output {
                    Output::Closed(
                        reason @ (CloseReason::BadStatus(_) | CloseReason::BadContentType(_)),
                    ) => Some(reason.clone()),
                    _ => None,
                });
                let Some(reason) = reason else {
                    for output in held {
                        self.translate(output);
                    }
                    return;
                };
                // Read what the server said, up to a bound, before telling.
                let mut response = ErrorResponse::new(reason, head.status());
                for header in head.headers() {
                    response.push_header(header.name(), header.value());
                }
                self.socket = Socket::Rejected {
                    decoder: BodyDecoder::with_limits(kind, self.body_limits),
                    response,
                    held,
                    deadline: now + ERROR_BODY_WAIT,
                };
                return;
            }
            ReadyState::Connecting => {}
        }
        self.pump();
    }

    /// Closes the socket over a wire error and tells the machine.
    fn fail(&mut self, error: ConnectionError, now: I) {
        self.out.push_back(ConnectionOutput::Error(error));
        self.drop_socket();
        self.es.handle_error(now);
        self.pump();
    }

    /// Forgets the socket, asking the adapter to close it.
    fn drop_socket(&mut self) {
        self.transmit = Bytes::new();
        if !matches!(self.socket, Socket::None) {
            self.socket = Socket::None;
            self.buf.clear();
            self.out.push_back(ConnectionOutput::CloseSocket);
        }
    }

    /// Moves the machine's outputs to ours.
    fn pump(&mut self) {
        while let Some(output) = self.es.poll_output() {
            self.translate(output);
        }
    }

    fn translate(&mut self, output: Output) {
        // No wildcard arm: `#[non_exhaustive]` binds other crates only, so a
        // variant added to `Output` fails to compile here until handled.
        let translated = match output {
            Output::Connect(request) => {
                self.drop_socket();
                let url = Url::parse(&request.url).ok();
                if let Some(Err(e)) = url.as_ref().map(|url| self.proxies.check(url)) {
                    // A redirect to a URL whose proxy is unusable: going
                    // around the proxy is not an option, retrying cannot
                    // help.
                    self.out
                        .push_back(ConnectionOutput::Error(ConnectionError::Proxy(e)));
                    self.es.close();
                    self.pump();
                    return;
                }
                let proxy = url.and_then(|url| self.proxies.for_url(&url).cloned());
                let (url, bytes) = match encode_request(&request, proxy.as_ref()) {
                    Ok(encoded) => encoded,
                    Err(e) => {
                        // Unreachable for requests the machine builds from a
                        // configuration `new` accepted (the machine checks
                        // `Last-Event-ID` more strictly than the writer).
                        // Retrying could not help: stop.
                        self.out.push_back(ConnectionOutput::Error(e));
                        self.es.close();
                        return;
                    }
                };
                let https = url.scheme() == Scheme::Https;
                let method = String::from(request.method.as_str());
                let parser = ResponseParser::with_limits(self.head_limits);
                match proxy {
                    None => {
                        self.socket = Socket::Head {
                            url: url.clone(),
                            method,
                            parser,
                        };
                        self.transmit = bytes;
                        ConnectionOutput::Connect {
                            host: String::from(url.host()),
                            port: url.port(),
                            tls: https,
                            proxy: false,
                        }
                    }
                    Some(proxy) => {
                        if https {
                            self.transmit = connect_request(&url, &proxy);
                            self.socket = Socket::Tunnel {
                                url,
                                method,
                                request: bytes,
                                proxy: proxy.authority(),
                                parser,
                            };
                        } else {
                            self.transmit = bytes;
                            self.socket = Socket::Head {
                                url,
                                method,
                                parser,
                            };
                        }
                        ConnectionOutput::Connect {
                            host: String::from(proxy.host()),
                            port: proxy.port(),
                            tls: proxy.is_https(),
                            proxy: true,
                        }
                    }
                }
            }
            Output::Disconnect(_) => {
                self.drop_socket();
                return;
            }
            Output::Open => ConnectionOutput::Open,
            Output::Event(event) => ConnectionOutput::Event(event),
            Output::Retry(delay) => ConnectionOutput::Retry(delay),
            Output::Reconnecting { delay, reason } => {
                self.drop_socket();
                ConnectionOutput::Reconnecting { delay, reason }
            }
            Output::Closed(reason) => {
                self.drop_socket();
                ConnectionOutput::Closed(reason)
            }
            Output::Warning(warning) => ConnectionOutput::Warning(warning),
        };
        self.out.push_back(translated);
    }
}

/// The `CONNECT` request that asks `proxy` for a tunnel to `url`'s host
/// and port.
fn connect_request(url: &Url, proxy: &Proxy) -> Bytes {
    // The host is a checked URL host and the credentials base64: neither
    // can hold a line break.
    let target = format!("{}:{}", bracketed(url.host()), url.port());
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(credentials) = proxy.authorization() {
        head.push_str("Proxy-Authorization: ");
        head.push_str(credentials);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    Bytes::from(head)
}

/// The URL to connect to and the bytes to write for a machine request;
/// through a plain-http `proxy`, with the absolute URL as the target and
/// the proxy's credentials.
fn encode_request(
    request: &super::Fetch,
    proxy: Option<&Proxy>,
) -> Result<(Url, Bytes), ConnectionError> {
    let url = Url::parse(&request.url).map_err(ConnectionError::Url)?;
    let mut head =
        http1::Request::new(&request.method, url.clone()).map_err(ConnectionError::Request)?;
    if let Some(proxy) = proxy.filter(|_| url.scheme() == Scheme::Http) {
        head.absolute_form(true);
        if let Some(credentials) = proxy.authorization() {
            head.header("Proxy-Authorization", credentials)
                .map_err(ConnectionError::Request)?;
        }
    }
    for (name, value) in &request.headers {
        head.header(name, value.as_bytes())
            .map_err(ConnectionError::Request)?;
    }
    let body = request.body.as_ref();
    head.content_length(body.map(|b| b.len() as u64));
    let mut out = BytesMut::new();
    head.encode(&mut out);
    if let Some(body) = body {
        out.extend_from_slice(body);
    }
    Ok((url, out.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ReconnectPolicy;
    use alloc::format;
    use alloc::vec::Vec;

    type Conn = Connection<Duration>;

    const T0: Duration = Duration::ZERO;
    const OK_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn config() -> ClientConfig {
        ClientConfig::new("http://example.com:8080/events")
            .reconnect(ReconnectPolicy::default().initial_delay(ms(50)))
    }

    /// Every output as a short line: `connect host:port`, `close`,
    /// `open`, `event <data>`, ..., and then `write <first line>` when a
    /// request waits at `poll_transmit` (which this takes).
    fn drain(conn: &mut Conn) -> Vec<String> {
        let mut out: Vec<String> = core::iter::from_fn(|| conn.poll_output())
            .map(|o| match o {
                ConnectionOutput::Connect {
                    host,
                    port,
                    tls,
                    proxy,
                } => format!(
                    "connect {host}:{port}{}{}",
                    if tls { " tls" } else { "" },
                    if proxy { " proxy" } else { "" }
                ),
                ConnectionOutput::StartTls { server_name } => format!("start tls {server_name}"),
                ConnectionOutput::Rejected(r) => {
                    format!("rejected {} {:?}", r.status(), r.body_text())
                }
                ConnectionOutput::CloseSocket => "close".into(),
                ConnectionOutput::Open => "open".into(),
                ConnectionOutput::Event(e) => format!("event {}", e.data()),
                ConnectionOutput::Retry(d) => format!("retry {}", d.as_millis()),
                ConnectionOutput::Reconnecting { delay, reason } => {
                    format!("reconnecting {} {reason:?}", delay.as_millis())
                }
                ConnectionOutput::Closed(reason) => format!("closed {reason:?}"),
                ConnectionOutput::Warning(w) => format!("warning {w:?}"),
                ConnectionOutput::Error(e) => format!("error {e:?}"),
            })
            .collect();
        if let Some(bytes) = conn.poll_transmit() {
            let text = String::from_utf8_lossy(bytes);
            out.push(format!("write {}", text.lines().next().unwrap_or("")));
            let n = bytes.len();
            conn.handle_written(n);
        }
        out
    }

    fn started(config: ClientConfig) -> Conn {
        let mut conn = Conn::new(config, T0, 3).unwrap();
        assert_eq!(
            drain(&mut conn),
            ["connect example.com:8080", "write GET /events HTTP/1.1"]
        );
        conn
    }

    fn response(head_rest: &str, body: &str) -> Vec<u8> {
        let mut r = OK_HEAD.to_vec();
        r.extend_from_slice(head_rest.as_bytes());
        r.extend_from_slice(b"\r\n");
        r.extend_from_slice(body.as_bytes());
        r
    }

    /// Feeds `parts` in order and returns the outputs, then the outputs of
    /// EOF.
    fn exchange(parts: &[&[u8]]) -> (Vec<String>, Vec<String>) {
        let mut conn = started(config());
        let mut out = Vec::new();
        for part in parts {
            conn.handle_socket_bytes(part, T0);
            out.extend(drain(&mut conn));
        }
        conn.handle_socket_eof(T0);
        (out, drain(&mut conn))
    }

    #[test]
    fn the_request_head_is_complete() {
        let config = ClientConfig::new("http://[::1]:9/a%20b?q=1")
            .method("POST")
            .header("X-Topic", "a")
            .body(Bytes::from_static(b"{}"))
            .last_event_id("7");
        let mut conn = Conn::new(config, T0, 0).unwrap();
        assert_eq!(
            conn.poll_output(),
            Some(ConnectionOutput::Connect {
                host: "::1".into(),
                port: 9,
                tls: false,
                proxy: false,
            })
        );
        assert_eq!(conn.poll_output(), None);
        let bytes = conn.poll_transmit().unwrap_or_default();
        assert_eq!(
            bytes,
            &b"POST /a%20b?q=1 HTTP/1.1\r\nHost: [::1]:9\r\nAccept: text/event-stream\r\n\
               Cache-Control: no-cache\r\nPragma: no-cache\r\nLast-Event-ID: 7\r\n\
               X-Topic: a\r\nContent-Length: 2\r\n\r\n{}"[..]
        );
        // What the socket takes is gone; the rest stays.
        conn.handle_written(5);
        assert!(
            conn.poll_transmit()
                .unwrap_or_default()
                .starts_with(b"/a%20b")
        );
        conn.handle_written(usize::MAX);
        assert_eq!(conn.poll_transmit(), None);
    }

    #[test]
    fn https_is_a_tls_connect() {
        let mut conn = Conn::new(ClientConfig::new("https://example.com/s"), T0, 0).unwrap();
        assert_eq!(drain(&mut conn)[0], "connect example.com:443 tls");
    }

    #[test]
    fn configuration_errors_are_typed() {
        for (url, err) in [
            ("ftp://a/", UrlError::UnsupportedScheme),
            ("/relative", UrlError::Relative),
            ("http://u:p@a/", UrlError::UserInfo),
        ] {
            assert_eq!(
                Conn::new(ClientConfig::new(url), T0, 0).err(),
                Some(ConnectionError::Url(err)),
                "{url}"
            );
        }
        let host = ClientConfig::new("http://a/").header("Host", "b");
        assert_eq!(
            Conn::new(host, T0, 0).err(),
            Some(ConnectionError::Request(BuildError::ReservedHeader))
        );
        let bad = ClientConfig::new("http://a/").header("X-A", "1\r\nX-B: 2");
        assert_eq!(
            Conn::new(bad, T0, 0).err(),
            Some(ConnectionError::Request(BuildError::InvalidHeaderValue))
        );
        let method = ClientConfig::new("http://a/").method("GE T");
        assert_eq!(
            Conn::new(method, T0, 0).err(),
            Some(ConnectionError::Request(BuildError::InvalidMethod))
        );
    }

    #[test]
    fn a_response_split_at_every_byte_gives_the_same_outputs() {
        let whole = response(
            "",
            "id: 1\ndata: a\n\r\ndata: b\rdata: c\n\n: ping\n\ndata: tail",
        );
        let (expected, at_eof) = exchange(&[&whole]);
        assert_eq!(expected, ["open", "event a", "event b\nc"]);
        assert_eq!(at_eof, ["close", "reconnecting 50 EndOfStream"]);
        // Miri is slow: there, every 16th split.
        let step = if cfg!(miri) { 16 } else { 1 };
        for i in (0..=whole.len()).step_by(step) {
            let (a, b) = whole.split_at(i);
            assert_eq!(
                exchange(&[a, b]),
                (expected.clone(), at_eof.clone()),
                "split at {i}"
            );
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(exchange(&bytes), (expected, at_eof));
    }

    #[test]
    fn chunked_bodies_with_boundaries_anywhere() {
        let whole = response(
            "Transfer-Encoding: chunked\r\n",
            "5\r\ndata:\r\n4;ext=1\r\n a\n\n\r\n3\r\n: x\r\nA\r\n\ndata: b\n\n\r\n0\r\n\r\n",
        );
        let (expected, at_eof) = exchange(&[&whole]);
        assert_eq!(
            expected,
            [
                "open",
                "event a",
                "event b",
                "close",
                "reconnecting 50 EndOfStream"
            ]
        );
        assert_eq!(at_eof, Vec::<String>::new());
        // Every pair of cut points (three-way splits); under miri, which is
        // slow, only two-way splits just after each CR.
        let cuts: Vec<usize> = (0..=whole.len()).collect();
        for &i in &cuts {
            if cfg!(miri) && !(i > 0 && whole[i - 1] == b'\r') {
                continue;
            }
            let ends = if cfg!(miri) {
                &cuts[cuts.len() - 1..]
            } else {
                &cuts[i..]
            };
            for &j in ends {
                let parts = [&whole[..i], &whole[i..j], &whole[j..]];
                assert_eq!(exchange(&parts), (expected.clone(), at_eof.clone()));
            }
        }
    }

    #[test]
    fn a_content_length_body_ends_the_stream_when_complete() {
        let (out, at_eof) = exchange(&[&response("Content-Length: 10\r\n", "data: x\n\nIGNORED")]);
        assert_eq!(
            out,
            ["open", "event x", "close", "reconnecting 50 EndOfStream"]
        );
        assert!(at_eof.is_empty());
    }

    #[test]
    fn a_truncated_chunked_body_is_a_network_error() {
        let (out, at_eof) = exchange(&[&response(
            "Transfer-Encoding: chunked\r\n",
            "9\r\ndata: x\n\n\r\n5\r\nda",
        )]);
        assert_eq!(out, ["open", "event x"]);
        assert_eq!(
            at_eof,
            [
                "error Body(Truncated)",
                "close",
                "reconnecting 50 NetworkError"
            ]
        );
    }

    #[test]
    fn broken_chunk_framing_reconnects() {
        let (out, _) = exchange(&[&response("Transfer-Encoding: chunked\r\n", "zz\r\n")]);
        assert_eq!(
            out,
            [
                "open",
                "error Body(InvalidChunkSize)",
                "close",
                "reconnecting 50 NetworkError"
            ]
        );
    }

    #[test]
    fn redirects_are_resolved_and_followed_on_a_new_socket() {
        let mut conn = started(config());
        conn.handle_socket_bytes(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /moved?x=1\r\nContent-Length: 3\r\n\r\nabc",
            T0,
        );
        assert_eq!(
            drain(&mut conn),
            [
                "close",
                "connect example.com:8080",
                "write GET /moved?x=1 HTTP/1.1"
            ]
        );
        conn.handle_socket_bytes(
            b"HTTP/1.1 301 Moved\r\nLocation: http://other:81/s\r\n\r\n",
            T0,
        );
        assert_eq!(
            drain(&mut conn),
            ["close", "connect other:81", "write GET /s HTTP/1.1"]
        );
        conn.handle_socket_bytes(&response("", "data: here\n\n"), T0);
        assert_eq!(drain(&mut conn), ["open", "event here"]);
        assert_eq!(
            conn.event_source().response_url(),
            Some("http://other:81/s")
        );
    }

    #[test]
    fn a_redirect_to_an_unusable_url_is_a_bad_redirect() {
        let mut conn = started(config());
        conn.handle_socket_bytes(b"HTTP/1.1 302 Found\r\nLocation: ftp://x/\r\n\r\n", T0);
        assert_eq!(
            drain(&mut conn),
            [
                "error Url(UnsupportedScheme)",
                "close",
                "reconnecting 50 BadRedirect"
            ]
        );
    }

    #[test]
    fn no_content_closes_for_good() {
        let mut conn = started(config());
        conn.handle_socket_bytes(b"HTTP/1.1 204 No Content\r\n\r\n", T0);
        assert_eq!(drain(&mut conn), ["close", "closed NoContent"]);
        assert_eq!(conn.poll_timeout(), None);
        conn.handle_socket_bytes(b"more", T0);
        conn.handle_socket_eof(T0);
        conn.handle_socket_error(T0);
        conn.handle_timeout(ms(100_000));
        assert!(drain(&mut conn).is_empty());
    }

    #[test]
    fn bad_status_and_content_type_are_fatal() {
        let mut conn = started(config());
        conn.handle_socket_bytes(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", T0);
        assert_eq!(
            drain(&mut conn),
            ["close", "rejected 500 \"\"", "closed BadStatus(500)"]
        );

        // A close-delimited body is read until the end of the stream.
        let mut conn = started(config());
        conn.handle_socket_bytes(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>",
            T0,
        );
        assert!(drain(&mut conn).is_empty());
        conn.handle_socket_eof(T0);
        assert_eq!(
            drain(&mut conn),
            [
                "close",
                "rejected 200 \"<html>\"",
                "closed BadContentType(Some(\"text/html\"))"
            ]
        );
    }

    #[test]
    fn a_rejection_carries_the_head_and_the_first_bytes_of_the_body() {
        let mut conn = started(config());
        conn.handle_socket_bytes(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
              Transfer-Encoding: chunked\r\n\r\n5\r\n{\"err\r\n",
            T0,
        );
        assert!(drain(&mut conn).is_empty());
        assert_eq!(conn.poll_timeout(), Some(ERROR_BODY_WAIT));
        conn.handle_socket_bytes(b"4\r\nor\"}\r\n0\r\n\r\n", T0);
        let mut outputs = core::iter::from_fn(|| conn.poll_output());
        assert_eq!(outputs.next(), Some(ConnectionOutput::CloseSocket));
        let Some(ConnectionOutput::Rejected(response)) = outputs.next() else {
            panic!("no rejection");
        };
        assert_eq!(response.status(), 401);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.body(), b"{\"error\"}");
        assert!(!response.is_truncated());
        assert_eq!(response.reason(), &CloseReason::BadStatus(401));
        assert_eq!(
            outputs.next(),
            Some(ConnectionOutput::Closed(CloseReason::BadStatus(401)))
        );
        assert_eq!(outputs.next(), None);
    }

    #[test]
    fn an_error_body_is_read_up_to_its_bound_never_whole() {
        let mut conn = started(config());
        conn.handle_socket_bytes(b"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n", T0);
        let chunk = [b'x'; 4096];
        let mut fed = 0;
        while drain(&mut conn).is_empty() {
            conn.handle_socket_bytes(&chunk, T0);
            fed += chunk.len();
            assert!(fed <= 3 * chunk.len(), "read past the bound");
        }
        let mut conn = started(config());
        conn.handle_socket_bytes(b"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n", T0);
        conn.handle_socket_bytes(&[b'y'; 20_000], T0);
        let Some(ConnectionOutput::Rejected(response)) = conn.poll_output().and(conn.poll_output())
        else {
            panic!("no rejection");
        };
        assert_eq!(response.body().len(), crate::client::ERROR_BODY_LIMIT);
        assert!(response.is_truncated());
    }

    #[test]
    fn a_body_cut_at_exactly_the_limit_is_marked_truncated() {
        let limit = crate::client::ERROR_BODY_LIMIT;
        let mut conn = started(config());
        let head = format!(
            "HTTP/1.1 500 Oops\r\nContent-Length: {}\r\n\r\n",
            limit + 100
        );
        conn.handle_socket_bytes(head.as_bytes(), T0);
        conn.handle_socket_bytes(&alloc::vec![b'x'; limit], T0);
        let Some(ConnectionOutput::Rejected(response)) = conn.poll_output().and(conn.poll_output())
        else {
            panic!("no rejection");
        };
        assert_eq!(response.body().len(), limit);
        assert!(response.is_truncated(), "100 bytes were left out");
        // A body of exactly the limit is whole.
        let mut conn = started(config());
        let head = format!("HTTP/1.1 500 Oops\r\nContent-Length: {limit}\r\n\r\n");
        conn.handle_socket_bytes(head.as_bytes(), T0);
        conn.handle_socket_bytes(&alloc::vec![b'x'; limit], T0);
        let Some(ConnectionOutput::Rejected(response)) = conn.poll_output().and(conn.poll_output())
        else {
            panic!("no rejection");
        };
        assert!(!response.is_truncated());
    }

    #[test]
    fn close_while_reading_an_error_body_is_the_end() {
        let mut conn = started(config());
        conn.handle_socket_bytes(b"HTTP/1.1 403 No\r\nContent-Length: 10\r\n\r\nab", T0);
        assert!(drain(&mut conn).is_empty());
        conn.close();
        assert_eq!(drain(&mut conn), ["close", "closed User"]);
        conn.handle_socket_bytes(b"cdefghij", T0);
        conn.handle_socket_eof(T0);
        conn.handle_timeout(ERROR_BODY_WAIT);
        assert!(drain(&mut conn).is_empty(), "nothing follows Closed");
    }

    #[test]
    fn debug_output_holds_no_credentials() {
        let proxy = Proxy::parse("http://user:secret@proxy.test:3128").unwrap();
        let config = ClientConfig::new("https://example.com/")
            .header("Authorization", "Bearer sk-123")
            .proxies(Proxies::all(proxy));
        let conn = Conn::new(config, T0, 0).unwrap();
        let shown = format!("{conn:?}");
        assert!(
            !shown.contains("dXNlcjpzZWNyZXQ") && !shown.contains("sk-123"),
            "{shown}"
        );
    }

    #[test]
    fn an_unusable_proxy_is_an_error_for_the_urls_that_use_it() {
        let env = |name: &str| (name == "HTTPS_PROXY").then(|| String::from("socks5://h:1"));
        let proxies = Proxies::from_env(env);
        let https = ClientConfig::new("https://example.com/").proxies(proxies.clone());
        assert!(matches!(
            Conn::new(https, T0, 0).err(),
            Some(ConnectionError::Proxy(ProxyError::UnsupportedScheme { .. }))
        ));
        // Plain http does not use it; a redirect to https would, and stops.
        let http = ClientConfig::new("http://example.com/").proxies(proxies);
        let mut conn = Conn::new(http, T0, 0).unwrap();
        drain(&mut conn);
        conn.handle_socket_bytes(
            b"HTTP/1.1 302 Found\r\nLocation: https://example.com/\r\n\r\n",
            T0,
        );
        let out = drain(&mut conn);
        assert!(out.iter().any(|o| o.starts_with("error Proxy(")), "{out:?}");
        assert_eq!(
            out.last().map(String::as_str),
            Some("closed User"),
            "{out:?}"
        );
    }

    #[test]
    fn a_slow_or_broken_error_body_is_cut_short() {
        // The deadline.
        let mut conn = started(config());
        conn.handle_socket_bytes(b"HTTP/1.1 403 No\r\nContent-Length: 10\r\n\r\nab", T0);
        conn.handle_timeout(ERROR_BODY_WAIT - ms(1));
        assert!(drain(&mut conn).is_empty());
        conn.handle_timeout(ERROR_BODY_WAIT);
        assert_eq!(
            drain(&mut conn),
            ["close", "rejected 403 \"ab\"", "closed BadStatus(403)"]
        );
        // A socket error, and an end of stream short of the length.
        for end in [Conn::handle_socket_error, Conn::handle_socket_eof] {
            let mut conn = started(config());
            conn.handle_socket_bytes(b"HTTP/1.1 403 No\r\nContent-Length: 10\r\n\r\nab", T0);
            end(&mut conn, T0);
            let out: Vec<_> = core::iter::from_fn(|| conn.poll_output()).collect();
            let ConnectionOutput::Rejected(response) = &out[1] else {
                panic!("{out:?}");
            };
            assert!(response.is_truncated());
            assert_eq!(response.body(), b"ab");
        }
    }

    #[test]
    fn redirects_and_retried_statuses_are_not_rejections() {
        let mut conn = started(config().retry_on_server_error(true));
        conn.handle_socket_bytes(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", T0);
        let out = drain(&mut conn);
        assert!(out.iter().all(|o| !o.starts_with("rejected")), "{out:?}");
        assert!(out.iter().any(|o| o.starts_with("reconnecting")), "{out:?}");
    }

    fn proxied(url: &str) -> Conn {
        let proxy = Proxy::parse("http://u:p@proxy.test:3128").unwrap();
        let config = ClientConfig::new(url)
            .reconnect(ReconnectPolicy::default().initial_delay(ms(50)))
            .proxies(Proxies::all(proxy).no_proxy("direct.test"));
        Conn::new(config, T0, 1).unwrap()
    }

    #[test]
    fn http_goes_to_the_proxy_in_absolute_form() {
        let mut conn = proxied("http://example.com:8080/events?a=1");
        assert_eq!(
            drain(&mut conn),
            [
                "connect proxy.test:3128 proxy",
                "write GET http://example.com:8080/events?a=1 HTTP/1.1"
            ]
        );
        let mut conn = proxied("http://example.com/");
        conn.poll_output();
        let request =
            String::from_utf8_lossy(conn.poll_transmit().unwrap_or_default()).into_owned();
        assert!(request.contains("\r\nHost: example.com\r\n"), "{request}");
        assert!(
            request.contains("\r\nProxy-Authorization: Basic dTpw\r\n"),
            "{request}"
        );
        // NO_PROXY hosts are reached directly.
        let mut conn = proxied("http://direct.test/");
        assert_eq!(drain(&mut conn)[0], "connect direct.test:80");
    }

    #[test]
    fn https_goes_through_a_connect_tunnel() {
        let mut conn = proxied("https://example.com/events");
        conn.poll_output();
        let connect =
            String::from_utf8_lossy(conn.poll_transmit().unwrap_or_default()).into_owned();
        assert_eq!(
            connect,
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
             Proxy-Authorization: Basic dTpw\r\n\r\n"
        );
        conn.handle_written(connect.len());
        conn.handle_socket_bytes(b"HTTP/1.1 200 Connection established\r\n\r\n", T0);
        // Credentials for the proxy stay out of the tunnel.
        let request = {
            let out = drain(&mut conn);
            assert_eq!(out, ["start tls example.com", "write GET /events HTTP/1.1"]);
            conn.poll_transmit()
        };
        assert_eq!(request, None);
        conn.handle_socket_bytes(&response("", "data: through\n\n"), T0);
        assert_eq!(drain(&mut conn), ["open", "event through"]);
    }

    #[test]
    fn a_refused_or_closed_tunnel_is_a_reconnect_that_names_the_proxy() {
        let mut conn = proxied("https://example.com/");
        drain(&mut conn);
        conn.handle_socket_bytes(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", T0);
        let out: Vec<_> = core::iter::from_fn(|| conn.poll_output()).collect();
        let ConnectionOutput::Error(error) = &out[0] else {
            panic!("{out:?}");
        };
        assert_eq!(
            error.to_string(),
            "the proxy proxy.test:3128 refused a tunnel to example.com:443: 407 Proxy \
             Authentication Required (give its credentials as user:password@ in the proxy URL)"
        );
        assert!(
            matches!(out[2], ConnectionOutput::Reconnecting { .. }),
            "{out:?}"
        );

        let mut conn = proxied("https://example.com/");
        drain(&mut conn);
        conn.handle_socket_eof(T0);
        assert_eq!(
            conn.poll_output(),
            Some(ConnectionOutput::Error(ConnectionError::ProxyClosed {
                proxy: "proxy.test:3128".into()
            }))
        );
    }

    #[test]
    fn interim_responses_are_skipped_and_upgrades_refused() {
        let mut conn = started(config());
        let mut bytes = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
        bytes.extend_from_slice(&response("", "data: x\n\n"));
        conn.handle_socket_bytes(&bytes, T0);
        assert_eq!(drain(&mut conn), ["open", "event x"]);

        let mut conn = started(config());
        conn.handle_socket_bytes(b"HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n", T0);
        assert_eq!(
            drain(&mut conn),
            [
                "error UnexpectedUpgrade",
                "close",
                "reconnecting 50 NetworkError"
            ]
        );
    }

    #[test]
    fn head_and_framing_errors_reconnect() {
        let mut conn = started(config());
        conn.handle_socket_bytes(b"SSH-2.0-OpenSSH\r\n\r\n", T0);
        assert_eq!(
            drain(&mut conn),
            [
                "error Head(InvalidVersion)",
                "close",
                "reconnecting 50 NetworkError"
            ]
        );

        let mut conn = started(config());
        conn.handle_socket_bytes(
            &response("Content-Length: 1\r\nContent-Length: 2\r\n", ""),
            T0,
        );
        assert_eq!(
            drain(&mut conn),
            [
                "error Framing(ConflictingContentLength)",
                "close",
                "reconnecting 50 NetworkError"
            ]
        );

        let limits = HeadLimits::default().max_head_len(64);
        let mut conn = Conn::with_limits(config(), limits, BodyLimits::default(), T0, 0).unwrap();
        drain(&mut conn);
        conn.handle_socket_bytes(b"HTTP/1.1 200 OK\r\n", T0);
        for _ in 0..10 {
            conn.handle_socket_bytes(b"X-Padding: 0123456789\r\n", T0);
        }
        assert_eq!(
            drain(&mut conn),
            [
                "error Head(TooLarge)",
                "close",
                "reconnecting 50 NetworkError"
            ]
        );
    }

    #[test]
    fn eof_before_the_head_is_a_network_error() {
        let mut conn = started(config());
        conn.handle_socket_bytes(b"HTTP/1.1 200", T0);
        conn.handle_socket_eof(T0);
        assert_eq!(
            drain(&mut conn),
            [
                "error ClosedBeforeResponse",
                "close",
                "reconnecting 50 NetworkError"
            ]
        );
    }

    #[test]
    fn connection_refused_then_success_resumes_with_the_last_event_id() {
        let mut conn = started(config());
        conn.handle_socket_bytes(&response("", "id: 41\ndata: x\n\n"), T0);
        conn.handle_socket_eof(ms(1));
        assert_eq!(
            drain(&mut conn),
            ["open", "event x", "close", "reconnecting 50 EndOfStream"]
        );
        assert_eq!(conn.poll_timeout(), Some(ms(51)));
        conn.handle_timeout(ms(51));
        let out: Vec<ConnectionOutput> = core::iter::from_fn(|| conn.poll_output()).collect();
        let [ConnectionOutput::Connect { .. }] = &out[..] else {
            panic!("{out:?}")
        };
        let request = conn.poll_transmit().unwrap_or_default().to_vec();
        conn.handle_written(request.len());
        assert!(
            String::from_utf8_lossy(&request).contains("\r\nLast-Event-ID: 41\r\n"),
            "{request:?}"
        );
        // Refused: the adapter reports it without polling further.
        conn.handle_socket_error(ms(52));
        let out = drain(&mut conn);
        assert_eq!(out[..2], ["error Socket", "close"]);
        assert!(out[2].starts_with("reconnecting ") && out[2].ends_with(" NetworkError"));
        assert_eq!(out.len(), 3);
        let at = conn.poll_timeout().unwrap();
        conn.handle_timeout(at);
        assert_eq!(
            drain(&mut conn),
            ["connect example.com:8080", "write GET /events HTTP/1.1"]
        );
        conn.handle_socket_bytes(&response("", "data: again\n\n"), at);
        assert_eq!(drain(&mut conn), ["open", "event again"]);
    }

    #[test]
    fn a_refused_connect_drops_the_pending_write() {
        let mut conn = Conn::new(config(), T0, 0).unwrap();
        assert!(matches!(
            conn.poll_output(),
            Some(ConnectionOutput::Connect { .. })
        ));
        conn.handle_socket_error(T0);
        assert_eq!(conn.poll_transmit(), None);
        let out = drain(&mut conn);
        assert!(!out.iter().any(|o| o.starts_with("write")), "{out:?}");
    }

    #[test]
    fn idle_timeout_closes_the_socket_and_reconnects() {
        let mut conn = started(config().idle_timeout(Some(ms(500))));
        assert_eq!(conn.poll_timeout(), Some(ms(500)));
        conn.handle_socket_bytes(&response("", ""), ms(100));
        assert_eq!(drain(&mut conn), ["open"]);
        conn.handle_socket_bytes(b": keep-alive\n", ms(300));
        assert_eq!(conn.poll_timeout(), Some(ms(800)));
        conn.handle_timeout(ms(799));
        assert!(drain(&mut conn).is_empty());
        conn.handle_timeout(ms(800));
        assert_eq!(drain(&mut conn), ["close", "reconnecting 50 IdleTimeout"]);
        conn.handle_timeout(ms(850));
        assert_eq!(
            drain(&mut conn),
            ["connect example.com:8080", "write GET /events HTTP/1.1"]
        );
    }

    #[test]
    fn an_oversized_line_reconnects() {
        let config = config().limits(crate::Limits::default().max_line_len(16));
        let mut conn = started(config);
        conn.handle_socket_bytes(&response("", "data: ok\n\ndata: 0123456789abcdef\n"), T0);
        let out = drain(&mut conn);
        assert_eq!(out[..3], ["open", "event ok", "close"]);
        assert!(out[3].starts_with("reconnecting 50 Decode("), "{out:?}");
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn retry_and_close() {
        let mut conn = started(config());
        conn.handle_socket_bytes(&response("", "retry: 20\n\n"), T0);
        assert_eq!(drain(&mut conn), ["open", "retry 20"]);
        conn.close();
        assert_eq!(drain(&mut conn), ["close", "closed User"]);
        conn.close();
        assert!(drain(&mut conn).is_empty());
        assert_eq!(conn.ready_state(), ReadyState::Closed);
    }

    #[test]
    fn errors_display_and_chain() {
        use core::error::Error as _;
        let e = ConnectionError::Body(BodyError::Truncated);
        assert!(format!("{e}").starts_with("bad response body: "));
        assert!(e.source().is_some());
        assert!(ConnectionError::Socket.source().is_none());
        assert!(!format!("{}", ConnectionError::ClosedBeforeResponse).is_empty());
    }
}
