//! The serve loop: one served stream between polls.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};
use std::time::Instant;

use sse_proto::server::{Feed, MAX_WRITE_SLICES, StreamEnd, StreamFeed};

use crate::alarm::Alarm;
use crate::io::{poll_flush, poll_read, poll_write};
use crate::rt::{Runtime, Transport};

/// How many bytes a read for the client's close takes at a time (a client
/// sends nothing after its request; what it does send is dropped).
const PROBE: usize = 64;

/// The state of one served stream: the feed (subscriber, writer and the
/// stream's clocks), its one timer, and whether written bytes still need a
/// flush.
pub(super) struct StreamLoop<R: Runtime> {
    runtime: R,
    feed: StreamFeed<Instant>,
    /// The one timer, at the feed's deadline.
    alarm: Alarm<R::Timer>,
    /// Bytes were written since the last completed flush.
    unflushed: bool,
}

impl<R: Runtime> StreamLoop<R> {
    /// A loop for `feed`, timed on `runtime`.
    pub(super) fn new(runtime: R, feed: StreamFeed<Instant>) -> StreamLoop<R> {
        StreamLoop {
            runtime,
            feed,
            alarm: Alarm::new(),
            unflushed: false,
        }
    }

    /// One turn of the stream: take queued frames (when the socket keeps
    /// up), write them, flush each batch, run the feed's clocks, and watch
    /// for the client closing. `Ready` with why the stream ended.
    pub(super) fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut T,
    ) -> Poll<io::Result<StreamEnd>>
    where
        T: Transport + ?Sized,
    {
        loop {
            let now = self.runtime.now();
            if let Feed::Stop(end) = self.feed.poll_feed(cx, now) {
                return Poll::Ready(Ok(end));
            }
            let progressed = match self.write(cx, io, now) {
                Ok(progressed) => progressed,
                Err(e) => return Poll::Ready(Err(e)),
            };
            if self.feed.writer().is_idle() {
                // A transport that buffers (TLS) gets each batch on its way.
                if self.unflushed {
                    match poll_flush(io, cx) {
                        Poll::Ready(Ok(())) => self.unflushed = false,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {}
                    }
                }
                if let Some(end) = self.feed.ending() {
                    // The end is out: close once it is flushed (or when
                    // the grace runs out, below).
                    if !self.unflushed {
                        return Poll::Ready(Ok(end));
                    }
                } else if progressed {
                    // The socket took everything: there may be room for
                    // more.
                    continue;
                }
            }
            match self.poll_timer(cx) {
                Poll::Ready(Some(end)) => return Poll::Ready(Ok(end)),
                Poll::Ready(None) => continue,
                Poll::Pending => {}
            }
            // The client sends nothing more after its request; reading
            // tells when it goes away even while no event is written.
            let mut scratch = [0u8; PROBE];
            return match poll_read(io, cx, &mut scratch) {
                Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(Ok(StreamEnd::ClientClosed)),
                // Anything sent after the request is ignored (bounded:
                // one read per turn, and a turn ends here).
                Poll::Ready(Ok(_)) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Pending => Poll::Pending,
            };
        }
    }

    /// Writes what the writer holds while the socket takes it: whether
    /// anything was written.
    fn write<T>(&mut self, cx: &mut Context<'_>, io: &mut T, now: Instant) -> io::Result<bool>
    where
        T: Transport + ?Sized,
    {
        let mut progressed = false;
        while !self.feed.writer().is_idle() {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
                let slices = self.feed.writer().io_slices(&mut slices);
                poll_write(io, cx, slices)
            };
            match written {
                Poll::Ready(Ok(n)) => {
                    self.feed.handle_written(n, now);
                    self.unflushed = true;
                    progressed = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        Ok(progressed)
    }

    /// Polls the timer at the feed's deadline: `Ready(Some(end))` when the
    /// stream must close now, `Ready(None)` when the feed handled what was
    /// due (it may have output), `Pending` while nothing is due.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<Option<StreamEnd>> {
        let Some(deadline) = self.feed.poll_timeout() else {
            return Poll::Pending;
        };
        let now = std::task::ready!(self.alarm.poll_at(&self.runtime, deadline, cx));
        Poll::Ready(self.feed.handle_timeout(now))
    }
}
