//! What the runtime adapters' serving loops share (feature `broker`): the
//! serving options, the outcome and errors of a served stream, and
//! [`StreamFeed`], the step that moves a subscriber's frames into its
//! [`StreamWriter`] while the socket keeps up, and that decides when a
//! stream ends for its own limits (a socket that takes nothing for the
//! write timeout, the maximum lifetime). It reads no clock: the adapter
//! passes the time in.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Add;
use core::task::{Context, Poll};
use core::time::Duration;
use std::time::Instant;

use bytes::Bytes;

use super::broker::{Ended, Subscriber};
use super::stream::{StreamConfig, StreamWriter};
use crate::http1::HeadError;

/// How many pieces one vectored write should take at most.
pub const MAX_WRITE_SLICES: usize = 64;

/// New frames are taken from the subscriber's queue only while less than
/// this waits for the socket: a socket that does not keep up leaves them in
/// the (bounded) queue, where the broker sees the lag.
pub const WRITE_BACKLOG: usize = 64 * 1024;

/// How long the end of a stream (its last `retry:`) may take to go out at
/// shutdown before the connection is closed anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How streams are served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    stream: StreamConfig,
    gzip: bool,
    write_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    lifetime_retry: Option<Duration>,
    expires_after: Option<Duration>,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig::new()
    }
}

impl ServeConfig {
    /// Keep-alive after 15 s of idleness, no `retry:`, gzip when the client
    /// accepts it (with the `gzip` feature), no write timeout and no
    /// maximum lifetime.
    pub fn new() -> ServeConfig {
        ServeConfig {
            stream: StreamConfig::new(),
            gzip: cfg!(feature = "gzip"),
            write_timeout: None,
            max_lifetime: None,
            lifetime_retry: None,
            expires_after: None,
        }
    }

    /// Keep-alive interval and the `retry:` sent first.
    pub fn stream(mut self, stream: StreamConfig) -> ServeConfig {
        self.stream = stream;
        self
    }

    /// Whether to compress for clients that accept gzip (ignored without
    /// the `gzip` feature).
    pub fn gzip(mut self, gzip: bool) -> ServeConfig {
        self.gzip = gzip && cfg!(feature = "gzip");
        self
    }

    /// The stream settings.
    pub fn stream_config(&self) -> &StreamConfig {
        &self.stream
    }

    /// Whether gzip may be used.
    pub fn gzip_enabled(&self) -> bool {
        self.gzip
    }

    /// Closes a stream whose socket takes no byte for `timeout` while
    /// output waits for it ([`StreamEnd::WriteTimeout`]): a client that
    /// stopped reading holds its connection no longer than that. `None`
    /// (or zero): no such limit.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> ServeConfig {
        self.write_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// Ends every stream once it is `lifetime` old
    /// ([`StreamEnd::MaxLifetime`]), after a last `retry:` (see
    /// [`ServeConfig::lifetime_retry`]), so that the client reconnects and
    /// resumes with its last event ID. `None` (or zero): streams live on.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> ServeConfig {
        self.max_lifetime = lifetime.filter(|l| !l.is_zero());
        self
    }

    /// The `retry:` sent when a stream ends for its maximum lifetime. Give
    /// each stream its own (say a random delay of a few seconds), so that
    /// clients connected together do not all come back together.
    pub fn lifetime_retry(mut self, retry: Option<Duration>) -> ServeConfig {
        self.lifetime_retry = retry;
        self
    }

    /// Closes the stream `after` it starts, at once and with no last
    /// `retry:` ([`StreamEnd::Expired`]): for a stream authorized by a
    /// credential that expires then. `None`: no such end.
    pub fn expires_after(mut self, after: Option<Duration>) -> ServeConfig {
        self.expires_after = after;
        self
    }

    /// When the stream expires ([`ServeConfig::expires_after`]), if ever.
    pub fn expiry(&self) -> Option<Duration> {
        self.expires_after
    }

    /// The write timeout ([`ServeConfig::write_timeout`]), if any.
    pub fn write_timeout_limit(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// The maximum lifetime ([`ServeConfig::max_lifetime`]), if any.
    pub fn max_lifetime_limit(&self) -> Option<Duration> {
        self.max_lifetime
    }

    /// The `retry:` sent at the end of the lifetime, if any.
    pub fn lifetime_end_retry(&self) -> Option<Duration> {
        self.lifetime_retry
    }
}

/// Why a served stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamEnd {
    /// The subscriber fell behind and was disconnected by the broker.
    Lagged,
    /// The broker shut down (the stream ended with its `retry:`).
    Shutdown,
    /// The client closed the connection.
    ClientClosed,
    /// The socket took no byte for the write timeout while output waited
    /// ([`ServeConfig::write_timeout`]): the client stopped reading.
    WriteTimeout,
    /// The stream reached its maximum lifetime
    /// ([`ServeConfig::max_lifetime`]) and ended with its `retry:`.
    MaxLifetime,
    /// The stream's credential expired ([`ServeConfig::expires_after`]):
    /// it was closed at once.
    Expired,
}

impl StreamEnd {
    /// How the connection is to be closed now that the stream has ended.
    ///
    /// ```
    /// use sse_proto::server::{Closing, StreamEnd};
    ///
    /// assert_eq!(StreamEnd::Shutdown.closing(), Closing::Graceful);
    /// assert_eq!(StreamEnd::WriteTimeout.closing(), Closing::Abandon);
    /// assert_eq!(StreamEnd::ClientClosed.closing(), Closing::Reset);
    /// ```
    pub fn closing(self) -> Closing {
        match self {
            StreamEnd::Shutdown | StreamEnd::MaxLifetime | StreamEnd::Expired => Closing::Graceful,
            StreamEnd::WriteTimeout | StreamEnd::Lagged => Closing::Abandon,
            StreamEnd::ClientClosed => Closing::Reset,
        }
    }
}

/// How a connection is closed after its stream ended
/// ([`StreamEnd::closing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Closing {
    /// Flush what is left, then close the writing side (a TLS
    /// `close_notify`, a TCP `FIN`), waiting at most [`SHUTDOWN_GRACE`]
    /// for it: the client is still reading and sees a clean end.
    Graceful,
    /// Drop the connection as it is: the client took no bytes for a while
    /// (or fell behind), so a graceful close would only wait.
    Abandon,
    /// Reset the connection (a TCP `RST`: `SO_LINGER` of zero, then close;
    /// just drop it where the transport cannot): the client closed its end
    /// first. Answering its `FIN` with one of ours would leave the client's
    /// side of the connection in `TIME_WAIT` for a minute, holding one of
    /// its ports. A client that reconnects often, or a proxy that opens one
    /// connection to the server per subscriber, runs out of ports that
    /// way; a reset frees the port at once. Nothing is lost: a client that
    /// closed its socket answers any byte still on its way with a reset
    /// anyway. (A client that only shut down its writing side, and reads
    /// on, sees the stream end with a reset rather than an end of file.)
    Reset,
}

impl fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamEnd::Lagged => "the subscriber fell behind and was disconnected",
            StreamEnd::Shutdown => "the broker shut down",
            StreamEnd::ClientClosed => "the client closed the connection",
            StreamEnd::WriteTimeout => "the client took no byte for the write timeout",
            StreamEnd::MaxLifetime => "the stream reached its maximum lifetime",
            StreamEnd::Expired => "the stream's credential expired",
        })
    }
}

/// A stream that ends this way is cut off rather than finished: an HTTP
/// server closes the connection instead of ending the body cleanly.
impl core::error::Error for StreamEnd {}

/// Why serving failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The socket failed.
    Io(std::io::Error),
    /// The request head is malformed or over the limits: answer 400 (or
    /// 431 for [`HeadError::TooLarge`] and [`HeadError::TooManyHeaders`])
    /// and close.
    Head(HeadError),
    /// The peer closed the connection before sending a whole request head.
    Closed,
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Io(e) => write!(f, "socket error while serving: {e}"),
            ServeError::Head(e) => write!(f, "bad request head: {e}"),
            ServeError::Closed => {
                f.write_str("the peer closed the connection before a whole request head")
            }
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Io(e) => Some(e),
            ServeError::Head(e) => Some(e),
            ServeError::Closed => None,
        }
    }
}

impl From<std::io::Error> for ServeError {
    fn from(e: std::io::Error) -> ServeError {
        ServeError::Io(e)
    }
}

impl ServeError {
    /// How a socket error while writing a stream counts: the client going
    /// away is [`StreamEnd::ClientClosed`], anything else an error.
    ///
    /// # Errors
    /// [`ServeError::Io`] for errors other than the peer closing.
    pub fn closed_or(e: std::io::Error) -> Result<StreamEnd, ServeError> {
        use std::io::ErrorKind;
        match e.kind() {
            ErrorKind::BrokenPipe
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::UnexpectedEof
            | ErrorKind::WriteZero => Ok(StreamEnd::ClientClosed),
            _ => Err(ServeError::Io(e)),
        }
    }
}

/// What [`StreamFeed::poll_feed`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Nothing ended: write what the writer holds, keep the keep-alive
    /// timer, watch the socket.
    Open,
    /// The stream is ending (the broker shut down, or the stream reached
    /// its maximum lifetime): the writer holds the stream's end. Write it,
    /// then close; [`StreamFeed::poll_timeout`] includes the bounded grace
    /// after which [`StreamFeed::handle_timeout`] closes anyway.
    Finishing,
    /// Stop now and close the connection (the subscriber was cut off for
    /// lagging: its socket is backed up, nothing more is worth writing;
    /// the write timeout passed; the stream expired).
    Stop(StreamEnd),
}

/// The receiving half of a served stream: moves the subscriber's queued
/// frames into the [`StreamWriter`] while less than [`WRITE_BACKLOG`]
/// waits for the socket, and keeps the task registered with the queue
/// either way, so that a frame, the end of the stream, or being cut off
/// wakes it. It also keeps the stream's clocks: the keep-alive, the write
/// timeout, the maximum lifetime and the grace of a finishing stream.
///
/// An adapter calls [`StreamFeed::poll_feed`] at the top of each turn of its
/// poll loop, writes [`StreamFeed::writer`]'s output and reports what the
/// socket took with [`StreamFeed::handle_written`], arms one timer at
/// [`StreamFeed::poll_timeout`] and calls [`StreamFeed::handle_timeout`]
/// when it fires. Once [`StreamFeed::ending`] says why the stream ends and
/// the writer is idle, it flushes and closes.
#[derive(Debug)]
pub struct StreamFeed<I> {
    subscriber: Subscriber,
    writer: StreamWriter<I>,
    frames: Vec<Bytes>,
    /// Once the stream is ending: why, and when to close even if its end
    /// has not gone out.
    finishing: Option<(StreamEnd, I)>,
    write_timeout: Option<Duration>,
    /// Since when output has waited with the socket taking none of it.
    stalled_since: Option<I>,
    /// When the stream reaches its maximum lifetime, and the `retry:` to
    /// send then.
    lifetime_end: Option<(I, Option<Duration>)>,
    /// When the stream expires.
    expires_at: Option<I>,
}

impl<I> StreamFeed<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    /// Feeds `writer` from `subscriber`, with no write timeout and no
    /// maximum lifetime (see [`StreamFeed::with_limits`]).
    pub fn new(subscriber: Subscriber, writer: StreamWriter<I>) -> StreamFeed<I> {
        StreamFeed {
            subscriber,
            writer,
            frames: Vec::new(),
            finishing: None,
            write_timeout: None,
            stalled_since: None,
            lifetime_end: None,
            expires_at: None,
        }
    }

    /// Applies `config`'s write timeout, maximum lifetime and expiry to a
    /// stream that started at `now`.
    #[must_use]
    pub fn with_limits(mut self, config: &ServeConfig, now: I) -> StreamFeed<I> {
        self.write_timeout = config.write_timeout;
        self.lifetime_end = config
            .max_lifetime
            .map(|lifetime| (now + lifetime, config.lifetime_retry));
        self.expires_at = config.expires_after.map(|after| now + after);
        self
    }

    /// The writer, to write out and to keep alive.
    pub fn writer(&mut self) -> &mut StreamWriter<I> {
        &mut self.writer
    }

    /// Whether the stream is ending (the broker's shutdown was seen, or
    /// the maximum lifetime reached): the writer is finishing.
    pub fn is_finishing(&self) -> bool {
        self.finishing.is_some()
    }

    /// Why the stream is ending, once it is ([`StreamEnd::Shutdown`] or
    /// [`StreamEnd::MaxLifetime`]): what to report when the writer is idle
    /// (its end written) or the grace runs out.
    pub fn ending(&self) -> Option<StreamEnd> {
        self.finishing.map(|(end, _)| end)
    }

    /// Takes what is queued, as far as the socket keeps up. Returns
    /// [`Feed::Finishing`] once, when the shutdown or the end of the
    /// lifetime is first seen, and [`Feed::Open`] after it;
    /// [`Feed::Stop`] when the subscriber was cut off for lagging or the
    /// write timeout has passed or the stream expired. `now` is also the time at which the
    /// subscriber receives ([`Subscriber::poll_recv`]).
    pub fn poll_feed(&mut self, cx: &mut Context<'_>, now: I) -> Feed
    where
        I: Into<Instant>,
    {
        if let Some(end) = self.stop_due(now) {
            return Feed::Stop(end);
        }
        if self.lifetime_reached(now).is_some() {
            return Feed::Finishing;
        }
        while self.finishing.is_none() {
            if self.writer.pending_bytes() >= WRITE_BACKLOG {
                // Backed up: hold no compressor while the client does not
                // read (the next batch starts a new one).
                self.writer.release_compressor();
                if self.subscriber.poll_lagged(cx) {
                    return Feed::Stop(StreamEnd::Lagged);
                }
                break;
            }
            match self.subscriber.poll_recv(cx, &mut self.frames, now.into()) {
                Poll::Ready(Ok(())) => {
                    self.writer.push_frames(self.frames.drain(..), now);
                    // Give back what a replay or a burst grew.
                    if self.frames.capacity() > 256 {
                        self.frames = Vec::new();
                    }
                }
                Poll::Ready(Err(Ended::Lagged)) => return Feed::Stop(StreamEnd::Lagged),
                Poll::Ready(Err(Ended::Shutdown { retry })) => {
                    self.finish(StreamEnd::Shutdown, retry, now);
                    return Feed::Finishing;
                }
                Poll::Pending => break,
            }
        }
        self.note_output(now);
        Feed::Open
    }

    /// Reports that the socket took `n` bytes of the writer's output at
    /// `now` (instead of [`StreamWriter::handle_written`], so that the write
    /// timeout counts from the last byte taken).
    pub fn handle_written(&mut self, n: usize, now: I) {
        self.writer.handle_written(n);
        if n > 0 {
            self.stalled_since = None;
        }
        self.note_output(now);
    }

    /// When [`StreamFeed::handle_timeout`] is next due: the earliest of the
    /// keep-alive, the write timeout (while output waits), the expiry, the
    /// end of the lifetime and, once finishing, the grace. `None`: nothing
    /// is timed.
    pub fn poll_timeout(&self) -> Option<I> {
        let mut due = self.writer.poll_timeout();
        let mut earliest = |at: Option<I>| {
            if let Some(at) = at {
                due = Some(due.map_or(at, |d| d.min(at)));
            }
        };
        earliest(self.stall_deadline());
        earliest(self.expires_at);
        match self.finishing {
            Some((_, close_by)) => earliest(Some(close_by)),
            None => earliest(self.lifetime_end.map(|(at, _)| at)),
        }
        due
    }

    /// Handles what is due at `now`: `Some(end)` when the stream must be
    /// closed now (its write timeout passed, it expired, or its end did
    /// not go out within the grace); otherwise writes a keep-alive or begins the end
    /// of the lifetime when due (the writer then holds output). Early or
    /// spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: I) -> Option<StreamEnd> {
        if let Some(end) = self.stop_due(now) {
            return Some(end);
        }
        if let Some((end, close_by)) = self.finishing {
            if now >= close_by {
                return Some(end);
            }
        }
        if self.lifetime_reached(now).is_none() {
            self.writer.handle_timeout(now);
        }
        self.note_output(now);
        None
    }

    /// The end that closes the stream at once at `now`, if one is due:
    /// the write timeout or the expiry.
    fn stop_due(&self, now: I) -> Option<StreamEnd> {
        if self.write_timed_out(now) {
            Some(StreamEnd::WriteTimeout)
        } else if self.expires_at.is_some_and(|at| now >= at) {
            Some(StreamEnd::Expired)
        } else {
            None
        }
    }

    /// Ends the writer with `retry`; the grace's deadline.
    fn finish(&mut self, end: StreamEnd, retry: Option<Duration>, now: I) -> I {
        self.writer.finish(retry, now);
        let close_by = now + SHUTDOWN_GRACE;
        self.finishing = Some((end, close_by));
        self.note_output(now);
        close_by
    }

    /// Begins the end of the lifetime if it is due at `now` and the stream
    /// is not ending yet; the grace's deadline when it begins.
    fn lifetime_reached(&mut self, now: I) -> Option<I> {
        match self.lifetime_end {
            Some((at, retry)) if self.finishing.is_none() && now >= at => {
                Some(self.finish(StreamEnd::MaxLifetime, retry, now))
            }
            _ => None,
        }
    }

    /// Starts the write timeout's clock when output waits, and stops it
    /// when none does.
    fn note_output(&mut self, now: I) {
        if self.writer.is_idle() {
            self.stalled_since = None;
        } else if self.stalled_since.is_none() {
            self.stalled_since = Some(now);
        }
    }

    /// When the write timeout passes, if output waits.
    fn stall_deadline(&self) -> Option<I> {
        Some(self.stalled_since? + self.write_timeout?)
    }

    fn write_timed_out(&self, now: I) -> bool {
        self.stall_deadline().is_some_and(|at| now >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::broker::{Broker, BrokerConfig, Cursor, Update};
    use crate::server::route::Subscription;
    use crate::server::stream::{BodyFraming, Encoding};
    use core::task::Waker;

    /// Time as a plain duration since the stream started; the broker gets
    /// it as an instant after a fixed start.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct At(Duration);

    impl At {
        const ZERO: At = At(Duration::ZERO);
    }

    impl Add<Duration> for At {
        type Output = At;
        fn add(self, d: Duration) -> At {
            At(self.0 + d)
        }
    }

    impl From<At> for Instant {
        #[allow(clippy::disallowed_methods)]
        fn from(at: At) -> Instant {
            static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
            *START.get_or_init(Instant::now) + at.0
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    fn feed(broker: &Broker, config: &ServeConfig) -> StreamFeed<At> {
        let sub = broker.subscribe(Subscription::new(["t"]), Cursor::Live, At::ZERO.into());
        let writer = StreamWriter::new(
            config.stream_config(),
            BodyFraming::Raw,
            Encoding::Identity,
            At::ZERO,
        );
        StreamFeed::new(sub, writer).with_limits(config, At::ZERO)
    }

    fn wire(feed: &mut StreamFeed<At>) -> Vec<u8> {
        feed.writer().chunks().flatten().copied().collect()
    }

    #[test]
    fn a_socket_that_takes_nothing_for_the_write_timeout_ends_the_stream() {
        let broker = Broker::new(BrokerConfig::new());
        let config = ServeConfig::new()
            .stream(StreamConfig::new().heartbeat(None))
            .write_timeout(Some(10 * SECOND));
        let mut feed = feed(&broker, &config);
        let mut cx = Context::from_waker(Waker::noop());
        // Idle: nothing waits, nothing is timed.
        assert_eq!(feed.poll_feed(&mut cx, At::ZERO), Feed::Open);
        assert_eq!(feed.poll_timeout(), None);
        // An event at 5 s that the socket takes only in part at 12 s: the
        // clock restarts at the byte taken.
        broker
            .publish(Update::new("t", "hello"), At::ZERO.into())
            .unwrap();
        assert_eq!(feed.poll_feed(&mut cx, At(5 * SECOND)), Feed::Open);
        assert_eq!(feed.poll_timeout(), Some(At(15 * SECOND)));
        feed.handle_written(1, At(12 * SECOND));
        assert_eq!(feed.poll_timeout(), Some(At(22 * SECOND)));
        assert_eq!(feed.handle_timeout(At(21 * SECOND)), None);
        assert_eq!(
            feed.handle_timeout(At(22 * SECOND)),
            Some(StreamEnd::WriteTimeout)
        );
        assert_eq!(
            feed.poll_feed(&mut cx, At(22 * SECOND)),
            Feed::Stop(StreamEnd::WriteTimeout)
        );
        // Once all is taken the clock stops, however long the stream idles.
        let mut feed = self::feed(&broker, &config);
        broker
            .publish(Update::new("t", "hello"), At::ZERO.into())
            .unwrap();
        assert_eq!(feed.poll_feed(&mut cx, At(SECOND)), Feed::Open);
        let len = feed.writer().pending_bytes();
        feed.handle_written(len, At(2 * SECOND));
        assert_eq!(feed.poll_timeout(), None);
        assert_eq!(feed.poll_feed(&mut cx, At(100 * SECOND)), Feed::Open);
    }

    #[test]
    fn a_stream_ends_at_its_maximum_lifetime_with_its_retry() {
        let broker = Broker::new(BrokerConfig::new());
        let config = ServeConfig::new()
            .stream(StreamConfig::new().heartbeat(Some(4 * SECOND)))
            .max_lifetime(Some(10 * SECOND))
            .lifetime_retry(Some(Duration::from_millis(2500)));
        let mut feed = feed(&broker, &config);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(feed.poll_feed(&mut cx, At::ZERO), Feed::Open);
        // The keep-alive comes first, the end of the lifetime later.
        assert_eq!(feed.poll_timeout(), Some(At(4 * SECOND)));
        assert_eq!(feed.handle_timeout(At(4 * SECOND)), None);
        assert_eq!(wire(&mut feed), b":\n");
        let len = feed.writer().pending_bytes();
        feed.handle_written(len, At(4 * SECOND));
        assert_eq!(feed.poll_timeout(), Some(At(8 * SECOND)));
        feed.handle_timeout(At(8 * SECOND));
        let len = feed.writer().pending_bytes();
        feed.handle_written(len, At(8 * SECOND));
        assert_eq!(feed.poll_timeout(), Some(At(10 * SECOND)));
        assert_eq!(feed.handle_timeout(At(10 * SECOND)), None);
        assert_eq!(feed.ending(), Some(StreamEnd::MaxLifetime));
        assert!(feed.writer().is_finished());
        assert_eq!(wire(&mut feed), b"retry: 2500\n");
        // Now only the grace is timed.
        assert_eq!(feed.poll_timeout(), Some(At(10 * SECOND) + SHUTDOWN_GRACE));
        assert_eq!(
            feed.handle_timeout(At(10 * SECOND) + SHUTDOWN_GRACE),
            Some(StreamEnd::MaxLifetime)
        );
        // Seen by `feed` first, it says so once.
        let mut feed = self::feed(&broker, &config);
        assert_eq!(feed.poll_feed(&mut cx, At(11 * SECOND)), Feed::Finishing);
        assert_eq!(feed.poll_timeout(), Some(At(11 * SECOND) + SHUTDOWN_GRACE));
        assert_eq!(feed.poll_feed(&mut cx, At(11 * SECOND)), Feed::Open);
        // Without a limit nothing ends.
        let mut feed = self::feed(
            &broker,
            &ServeConfig::new().max_lifetime(Some(Duration::ZERO)),
        );
        assert_eq!(feed.poll_feed(&mut cx, At(1000 * SECOND)), Feed::Open);
        assert_eq!(feed.ending(), None);
    }

    #[test]
    fn an_expiring_stream_closes_at_its_expiry_within_one_timer() {
        let broker = Broker::new(BrokerConfig::new());
        let config = ServeConfig::new()
            .stream(StreamConfig::new().heartbeat(Some(4 * SECOND)))
            .expires_after(Some(6 * SECOND));
        let mut feed = feed(&broker, &config);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(feed.poll_feed(&mut cx, At::ZERO), Feed::Open);
        // One timer: the keep-alive, then the expiry.
        assert_eq!(feed.poll_timeout(), Some(At(4 * SECOND)));
        assert_eq!(feed.handle_timeout(At(4 * SECOND)), None);
        let len = feed.writer().pending_bytes();
        feed.handle_written(len, At(4 * SECOND));
        assert_eq!(feed.poll_timeout(), Some(At(6 * SECOND)));
        assert_eq!(feed.handle_timeout(At(5 * SECOND)), None);
        assert_eq!(
            feed.handle_timeout(At(6 * SECOND)),
            Some(StreamEnd::Expired)
        );
        // No `retry:` goes out: the stream just closes.
        assert!(feed.writer().is_idle());
        assert_eq!(
            feed.poll_feed(&mut cx, At(7 * SECOND)),
            Feed::Stop(StreamEnd::Expired)
        );
    }
}
