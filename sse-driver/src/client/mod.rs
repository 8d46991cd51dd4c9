//! The reconnecting client stream, written once for every runtime:
//! [`EventSource`] moves bytes between a [`Runtime`]'s sockets and
//! [`sse_proto::client::Connection`], which makes every decision (what to
//! request, when to reconnect, what each response means).

mod item;

use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use sse_proto::client::{Connection, ConnectionOutput};
use sse_proto::http1::{Scheme, Url};

pub use item::{Error, Event, Item};
use item::{Report, Reports};
pub use sse_proto::Limits;
pub use sse_proto::client::{
    ClientConfig, CloseReason, ERROR_BODY_LIMIT, ErrorResponse, Jitter, Proxies, Proxy, ProxyError,
    ReadyState, ReconnectPolicy, ReconnectReason, RedirectTarget,
};
pub use sse_proto::http1::{BodyLimits, HeadLimits};

use crate::alarm::Alarm;
use crate::io::{poll_flush, poll_read, poll_write};
use crate::rt::{BoxTransport, Connecting, Runtime, TlsConfig};

/// How many socket steps one `poll_next` takes before yielding to the
/// executor when none of them produced an item.
const READ_BUDGET: u32 = 64;

/// The size of the read buffer at first: enough for any trickle of events.
const READ_BUFFER: usize = 16 * 1024;

/// The size the read buffer grows to, doubling each time a read fills it:
/// a fast stream is read in fewer, larger reads (about 7% more events/s in
/// the client bench) while an idle one keeps the small buffer.
const READ_BUFFER_MAX: usize = 64 * 1024;

/// The socket side of the loop.
enum Io {
    /// No socket: waiting for the timer, or closed.
    None,
    /// Opening a socket (and starting TLS on it).
    Connecting(Connecting<BoxTransport>),
    /// Open: the request (at the connection's `poll_transmit`) goes out
    /// first, then the response is read.
    Open {
        /// The socket.
        socket: BoxTransport,
        /// Bytes were written since the last flush.
        unflushed: bool,
    },
}

/// A reconnecting Server-Sent Events client over any [`Runtime`]: a
/// [`Stream`] of [`Result<Event, Error>`](Item).
///
/// What it yields:
///
/// * `Ok(Event::Open)` each time a connection is established,
/// * `Ok(Event::Message(_))` for every event,
/// * `Ok(Event::Reconnecting { .. })` when the connection was lost and will
///   be retried (with the error that caused it, if any): the stream goes on,
/// * `Err(_)` once, when the source fails for good (a status other than 200
///   or 204, a wrong `Content-Type`, reconnecting disabled or given up, an
///   `https` URL on a binding without TLS), after which the stream ends,
/// * the end of the stream (`None`) without an error when the server
///   answers `204 No Content`, after [`EventSource::close`], or when a
///   one-shot stream (reconnecting off) ends cleanly.
///
/// Nothing happens until it is polled. Dropping it (or calling
/// [`close`](EventSource::close)) closes the connection. Polling allocates
/// nothing per event: the stream is a hand-written state machine over the
/// socket and one re-armed timer; only opening a connection boxes its
/// (DNS lookup and) connect future.
pub struct EventSource<R: Runtime> {
    runtime: R,
    conn: Connection<Instant>,
    io: Io,
    /// The one timer, at the connection's deadline.
    alarm: Alarm<R::Timer>,
    /// The error behind the next `Reconnecting` or `Closed`.
    reports: Reports,
    buf: Box<[u8]>,
    done: bool,
    /// The TLS configuration: set by `tls_config`, or the default one
    /// built on the first `https` connect.
    tls: Option<TlsConfig>,
}

impl<R: Runtime> fmt::Debug for EventSource<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.io, self.done) {
            (_, true) => "done",
            (Io::None, false) => "waiting",
            (Io::Connecting(_), false) => "connecting",
            (Io::Open { .. }, false) => "open",
        };
        f.debug_struct("EventSource")
            .field("state", &state)
            .field("ready_state", &self.conn.ready_state())
            .finish()
    }
}

impl<R: Runtime + Default> EventSource<R> {
    /// A client for `config` with the default head and body limits.
    ///
    /// # Errors
    /// [`Error::Protocol`] when the URL or a configured header cannot be
    /// used, [`Error::TlsNotSupported`] for an `https` URL when the runtime
    /// binding has no TLS.
    pub fn new(config: ClientConfig) -> Result<EventSource<R>, Error> {
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
    ) -> Result<EventSource<R>, Error> {
        EventSource::with_runtime(R::default(), config, head_limits, body_limits)
    }
}

impl<R: Runtime> EventSource<R> {
    /// A client on `runtime`, with limits on response heads and chunked
    /// framing.
    ///
    /// # Errors
    /// As [`new`](EventSource::new).
    pub fn with_runtime(
        runtime: R,
        config: ClientConfig,
        head_limits: HeadLimits,
        body_limits: BodyLimits,
    ) -> Result<EventSource<R>, Error> {
        if let Ok(url) = Url::parse(config.url()) {
            if url.scheme() == Scheme::Https && !cfg!(feature = "rustls") {
                return Err(Error::TlsNotSupported {
                    host: url.host().to_string(),
                    port: url.port(),
                });
            }
        }
        let config = match config.proxy_settings() {
            Some(_) => config,
            None => config.proxies(Proxies::from_env(|name| std::env::var(name).ok())),
        };
        let now = runtime.now();
        let seed = item::jitter_seed();
        let conn = Connection::with_limits(config, head_limits, body_limits, now, seed)?;
        Ok(EventSource {
            runtime,
            conn,
            io: Io::None,
            alarm: Alarm::new(),
            reports: Reports::default(),
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            done: false,
            tls: None,
        })
    }

    /// Uses `config` for `https` connections instead of the default (the
    /// `ring` provider trusting the operating system's certificates, see
    /// [`TlsConfig::platform_default`]): for a private certificate
    /// authority, a self-signed certificate, or client certificates. The
    /// server name is still the URL's host. Call it before the first poll.
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> EventSource<R> {
        self.tls = Some(TlsConfig::new(config));
        self
    }

    /// The `readyState` of the source.
    pub fn ready_state(&self) -> ReadyState {
        self.conn.ready_state()
    }

    /// The last event ID received so far (empty before any): what the
    /// next reconnection sends as `Last-Event-ID`, and what to store to
    /// resume after a restart of the application.
    pub fn last_event_id(&self) -> &str {
        self.conn.event_source().last_event_id()
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
        self.alarm.clear();
        self.done = true;
    }

    /// Starts opening `host`:`port`, and TLS on it when `tls`. `Err`
    /// when the driver was built without TLS.
    fn connect(&mut self, host: String, port: u16, tls: bool, proxy: bool) -> Result<(), Error> {
        let tcp = self.runtime.connect(host.clone(), port);
        let what = if proxy { "the proxy " } else { "" };
        let name = host.clone();
        let opening = async move {
            match tcp.await {
                Ok(socket) => Ok(Box::new(socket) as BoxTransport),
                Err(e) => Err(context(e, format!("cannot connect to {what}{name}:{port}"))),
            }
        };
        if !tls {
            self.io = Io::Connecting(Box::pin(opening));
            return Ok(());
        }
        let config = self.tls_or_default(&host, port)?;
        self.io = Io::Connecting(Box::pin(async move {
            let socket = opening.await?;
            start_tls(socket, host, config).await
        }));
        Ok(())
    }

    /// Starts TLS with `server_name` on the open socket (a proxy's
    /// tunnel).
    fn start_tls(&mut self, server_name: String) -> Result<(), Error> {
        let Io::Open { socket, .. } = std::mem::replace(&mut self.io, Io::None) else {
            return Ok(());
        };
        let config = self.tls_or_default(&server_name, 443)?;
        self.io = Io::Connecting(start_tls(socket, server_name, config));
        Ok(())
    }

    /// The configured TLS configuration, or the default one (built once);
    /// `Err` when the driver has no TLS. A default that cannot be built
    /// (no trusted certificates) is a socket error.
    fn tls_or_default(&mut self, host: &str, port: u16) -> Result<Option<TlsConfig>, Error> {
        if let Some(config) = &self.tls {
            return Ok(Some(config.clone()));
        }
        #[cfg(feature = "rustls")]
        {
            let _ = (host, port);
            match TlsConfig::platform_default() {
                Ok(config) => Ok(Some(self.tls.insert(config).clone())),
                Err(e) => {
                    self.socket_error(e);
                    Ok(None)
                }
            }
        }
        #[cfg(not(feature = "rustls"))]
        Err(Error::TlsNotSupported {
            host: host.to_owned(),
            port,
        })
    }

    /// Records a socket error for the connection.
    fn socket_error(&mut self, e: io::Error) {
        #[cfg(feature = "tracing")]
        tracing::debug!(error = %e, "socket error");
        self.io = Io::None;
        self.reports.socket_error(e);
        self.conn.handle_socket_error(self.runtime.now());
    }

    /// Advances the socket side: `Ready(())` when something was handed to
    /// the connection (or the socket is idle), `Pending` when waiting on
    /// the socket (with the waker registered).
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let result = match &mut self.io {
            Io::None => return Poll::Ready(()),
            Io::Connecting(connecting) => match connecting.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(socket)) => {
                    self.io = Io::Open {
                        socket,
                        unflushed: false,
                    };
                    return Poll::Ready(());
                }
                Poll::Ready(Err(e)) => Err(e),
            },
            Io::Open { socket, unflushed } => {
                match transmit(&mut self.conn, socket, unflushed, cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Ready(Ok(())) => match poll_read(socket, cx, &mut self.buf) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(read) => read,
                    },
                }
            }
        };
        let now = self.runtime.now();
        match result {
            Ok(0) => {
                self.io = Io::None;
                self.conn.handle_socket_eof(now);
            }
            Ok(n) => {
                let full = n == self.buf.len();
                let bytes = self.buf.get(..n).unwrap_or_default();
                self.conn.handle_socket_bytes(bytes, now);
                if full && self.buf.len() < READ_BUFFER_MAX {
                    self.buf = vec![0; self.buf.len() * 2].into_boxed_slice();
                }
            }
            Err(e) => self.socket_error(e),
        }
        Poll::Ready(())
    }

    /// Polls the timer at the connection's deadline: `Ready` once it is due
    /// (after handing it to the connection).
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.conn.poll_timeout() else {
            return Poll::Pending;
        };
        let now = std::task::ready!(self.alarm.poll_at(&self.runtime, deadline, cx));
        self.conn.handle_timeout(now);
        Poll::Ready(())
    }

    /// Acts on one output of the connection: `Some` when the stream yields
    /// (or ends) with it.
    fn act(&mut self, output: ConnectionOutput) -> Option<Option<Item>> {
        match output {
            ConnectionOutput::Connect {
                host,
                port,
                tls,
                proxy,
            } => {
                if let Err(error) = self.connect(host, port, tls, proxy) {
                    self.finish();
                    return Some(Some(Err(error)));
                }
                None
            }
            ConnectionOutput::StartTls { server_name } => {
                if let Err(error) = self.start_tls(server_name) {
                    self.finish();
                    return Some(Some(Err(error)));
                }
                None
            }
            ConnectionOutput::CloseSocket => {
                self.io = Io::None;
                None
            }
            output => {
                #[cfg(feature = "tracing")]
                log(&output);
                match self.reports.report(output)? {
                    Report::Item(Ok(event)) => Some(Some(Ok(event))),
                    Report::Item(Err(error)) => {
                        self.finish();
                        Some(Some(Err(error)))
                    }
                    Report::End => {
                        self.finish();
                        Some(None)
                    }
                }
            }
        }
    }
}

/// `e` with `what` said first (`cannot connect to host:port: …`), its kind
/// and source kept.
fn context(e: io::Error, what: String) -> io::Error {
    #[derive(Debug)]
    struct Context {
        what: String,
        source: io::Error,
    }
    impl fmt::Display for Context {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}: {}", self.what, self.source)
        }
    }
    impl std::error::Error for Context {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }
    io::Error::new(e.kind(), Context { what, source: e })
}

/// Starts TLS with `server_name` over `socket` when there is a
/// configuration (`None`: the error is recorded already, and the attempt
/// fails).
fn start_tls(
    socket: BoxTransport,
    server_name: String,
    config: Option<TlsConfig>,
) -> Connecting<BoxTransport> {
    #[cfg(feature = "rustls")]
    if let Some(config) = config {
        return crate::tls::handshake(socket, server_name, &config);
    }
    let _ = (socket, server_name, config);
    Box::pin(std::future::ready(Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no TLS configuration",
    ))))
}

/// Writes what the connection holds for the socket, then flushes it.
/// `Ready(Ok)` once nothing waits to be written.
fn transmit<I, S>(
    conn: &mut Connection<I>,
    socket: &mut S,
    unflushed: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>>
where
    I: Copy + Ord + std::ops::Add<std::time::Duration, Output = I>,
    S: crate::rt::Transport,
{
    while let Some(bytes) = conn.poll_transmit() {
        let n = std::task::ready!(poll_write(socket, cx, &[IoSlice::new(bytes)]))?;
        conn.handle_written(n);
        *unflushed = true;
    }
    if *unflushed {
        // A TLS layer may still hold records of the request.
        std::task::ready!(poll_flush(socket, cx))?;
        *unflushed = false;
    }
    Poll::Ready(Ok(()))
}

/// Logs warnings and reconnects.
#[cfg(feature = "tracing")]
fn log(output: &ConnectionOutput) {
    match output {
        ConnectionOutput::Warning(warning) => tracing::warn!(%warning, "event source warning"),
        ConnectionOutput::Reconnecting { delay, reason } => {
            tracing::info!(?delay, %reason, "reconnecting");
        }
        ConnectionOutput::Error(error) => tracing::debug!(%error, "connection error"),
        _ => {}
    }
}

impl<R: Runtime> Stream for EventSource<R> {
    type Item = Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = self.get_mut();
        let mut budget = READ_BUDGET;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            // Outputs are acted on in order (the request waits for the
            // socket being opened).
            if let Some(output) = this.conn.poll_output() {
                // The hot path: an event is handed on as it is (no error
                // to remember, nothing to log).
                let output = match output {
                    ConnectionOutput::Event(event) => {
                        return Poll::Ready(Some(Ok(Event::Message(event))));
                    }
                    output => output,
                };
                if let Some(item) = this.act(output) {
                    return Poll::Ready(item);
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
