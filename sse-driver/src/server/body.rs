//! [`BodyStream`]: an event stream as a sequence of body chunks, for HTTP
//! servers that frame and write bodies themselves (hyper and what is built
//! on it).

use std::fmt;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use sse_proto::server::{
    BodyFraming, Encoding, Feed, ServeConfig, StreamEnd, StreamFeed, StreamWriter, Subscriber,
};

use crate::alarm::Alarm;
use crate::rt::Runtime;

/// The most bytes of queued events copied together into one chunk: an
/// HTTP/2 `DATA` frame's default largest size. (One event larger than
/// this is a chunk of its own, not copied.) The server frames each chunk
/// it is given, and framing costs more than copying small events.
pub(super) const CHUNK_LIMIT: usize = 16 * 1024;

/// The chunks of an event-stream body fed by a [`Subscriber`]: each batch
/// of queued events (one chunk for all that are queued, up to 16 KiB),
/// keep-alive comments after the configured idle time, gzip output flushed
/// per batch when the request accepted gzip, and a last `retry:` on
/// shutdown or at the end of the lifetime.
///
/// The server frames and writes the chunks, and polls for the next one
/// only when it can write: a client that does not read lets the
/// subscriber's queue fill, and the broker cuts it off. The stream then
/// fails with [`StreamEnd::Lagged`] (or [`StreamEnd::Expired`] at the
/// configured expiry), which tells the server to drop the connection
/// rather than end the body cleanly.
pub struct BodyStream<R: Runtime> {
    core: Core<R>,
    feed: StreamFeed<Instant>,
}

/// What every body of chunks holds besides its source: the runtime, the
/// chosen coding, the one timer, and whether the last chunk went out.
pub(super) struct Core<R: Runtime> {
    pub(super) runtime: R,
    pub(super) encoding: Encoding,
    pub(super) alarm: Alarm<R::Timer>,
    /// The last chunk went out (or the stream failed): nothing follows.
    pub(super) done: bool,
}

impl<R: Runtime> Core<R> {
    /// A body for a request that sent `accept_encoding`: its core and the
    /// writer of its chunks (raw framing: the server frames them), started
    /// now.
    pub(super) fn start(
        runtime: R,
        accept_encoding: Option<&str>,
        config: &ServeConfig,
    ) -> (Core<R>, StreamWriter<Instant>) {
        let encoding = Encoding::negotiate(accept_encoding, config.gzip_enabled());
        let now = runtime.now();
        let writer = StreamWriter::new(config.stream_config(), BodyFraming::Raw, encoding, now);
        let core = Core {
            runtime,
            encoding,
            alarm: Alarm::new(),
            done: false,
        };
        (core, writer)
    }
}

impl<R: Runtime> fmt::Debug for BodyStream<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream")
            .field("encoding", &self.core.encoding)
            .field("done", &self.core.done)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> BodyStream<R> {
    /// A body for a request that sent `accept_encoding` (its
    /// `Accept-Encoding` value, if any), timed on `runtime`.
    pub fn new(
        runtime: R,
        accept_encoding: Option<&str>,
        subscriber: Subscriber,
        config: &ServeConfig,
    ) -> BodyStream<R> {
        let (core, writer) = Core::start(runtime, accept_encoding, config);
        let now = core.runtime.now();
        let feed = StreamFeed::new(subscriber, writer).with_limits(config, now);
        BodyStream { core, feed }
    }

    /// The content coding chosen for the body.
    pub fn encoding(&self) -> Encoding {
        self.core.encoding
    }

    /// Whether the body has ended (its last chunk was taken, or it failed).
    pub fn is_done(&self) -> bool {
        self.core.done
    }

    /// The next chunk: `Ready(None)` once the stream has ended cleanly
    /// (after its last `retry:`), `Ready(Some(Err(end)))` when it is cut
    /// off (drop the connection).
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, StreamEnd>>> {
        loop {
            if self.core.done {
                return Poll::Ready(None);
            }
            if let Some(bytes) = self.feed.writer().poll_batch(CHUNK_LIMIT) {
                return Poll::Ready(Some(Ok(bytes)));
            }
            if self.feed.ending().is_some() {
                // The end went out with the last chunk.
                self.core.done = true;
                return Poll::Ready(None);
            }
            let now = self.core.runtime.now();
            match self.feed.poll_feed(cx, now) {
                Feed::Stop(end) => return Poll::Ready(Some(Err(self.cut_off(end)))),
                Feed::Finishing => continue,
                Feed::Open => {}
            }
            if !self.feed.writer().is_idle() {
                continue;
            }
            let Some(deadline) = self.feed.poll_timeout() else {
                return Poll::Pending;
            };
            let now = std::task::ready!(self.core.alarm.poll_at(&self.core.runtime, deadline, cx));
            if let Some(end) = self.feed.handle_timeout(now) {
                return Poll::Ready(Some(Err(self.cut_off(end))));
            }
        }
    }

    /// Ends the body with `end`.
    fn cut_off(&mut self, end: StreamEnd) -> StreamEnd {
        self.core.done = true;
        self.core.alarm.clear();
        end
    }
}
