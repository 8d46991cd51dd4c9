//! The lean HTTP/1.1 path: read a request head, then write an event stream
//! straight to the socket.

use std::future::{Future as _, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Timer;
use bytes::BytesMut;
use futures_io::{AsyncRead, AsyncWrite};
use sse_proto::http1::{HeadLimits, RequestHead, RequestParser, Response};
use sse_proto::server::{
    BodyFraming, Encoding, Feed, MAX_WRITE_SLICES, StreamEnd, StreamFeed, StreamWriter, Subscriber,
    stream_response,
};

use super::{ServeConfig, ServeError};

/// Reads one request head from `io`. Returns the head and whatever was read
/// after it (the start of a body). Bound the time it may take (slow or
/// stalled clients), for example by racing it against an
/// [`async_io::Timer`] with `futures_lite::future::or`.
///
/// # Errors
/// [`ServeError::Head`] for a malformed or oversized head,
/// [`ServeError::Closed`] when the peer closes first, [`ServeError::Io`].
pub async fn read_request<IO>(
    io: &mut IO,
    limits: HeadLimits,
) -> Result<(RequestHead, BytesMut), ServeError>
where
    IO: AsyncRead + Unpin,
{
    let mut parser = RequestParser::with_limits(limits);
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if buf.capacity() == buf.len() {
            buf.reserve(buf.len().clamp(1024, limits.head_len().max(1024)));
        }
        let filled = buf.len();
        buf.resize(buf.capacity(), 0);
        let read = poll_fn(|cx| {
            let spare = buf.get_mut(filled..).unwrap_or_default();
            Pin::new(&mut *io).poll_read(cx, spare)
        })
        .await;
        buf.truncate(filled + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => return Err(ServeError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ServeError::Io(e)),
        }
        match parser.parse_buf(&mut buf) {
            Ok(Some(head)) => return Ok((head, buf)),
            Ok(None) => {}
            Err(e) => return Err(ServeError::Head(e)),
        }
    }
}

/// Answers `request` with an event stream fed by `subscriber`, on `io`,
/// until the subscriber ends (lag or shutdown) or the client goes away.
/// The response head is [`stream_response`]'s; use [`serve_response`] to
/// add fields.
///
/// # Errors
/// [`ServeError::Io`] when the socket fails other than by the client
/// closing it.
pub async fn serve_stream<IO>(
    io: &mut IO,
    request: &RequestHead,
    subscriber: Subscriber,
    config: &ServeConfig,
) -> Result<StreamEnd, ServeError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let (response, framing, encoding) = stream_response(request, config.gzip_enabled());
    serve_response(io, &response, framing, encoding, subscriber, config).await
}

/// [`serve_stream`] with a response head of the caller's: build it with
/// [`stream_response`] and add fields to it first. It is written at once,
/// before any event.
///
/// # Errors
/// As [`serve_stream`].
pub async fn serve_response<IO>(
    io: &mut IO,
    response: &Response,
    framing: BodyFraming,
    encoding: Encoding,
    subscriber: Subscriber,
    config: &ServeConfig,
) -> Result<StreamEnd, ServeError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = BytesMut::with_capacity(256);
    response.encode(&mut head);
    if let Err(e) = write_all(io, &head).await {
        return ServeError::closed_or(e);
    }
    if let Err(e) = poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx)).await {
        return ServeError::closed_or(e);
    }
    drop(head);
    serve_body(io, framing, encoding, subscriber, config).await
}

/// The body of an event stream whose response head the caller has already
/// written (say on another task, before handing the connection over):
/// [`serve_response`] without the head. `framing` and `encoding` must be
/// the head's, as [`stream_response`] gave them.
///
/// # Errors
/// As [`serve_stream`].
pub async fn serve_body<IO>(
    io: &mut IO,
    framing: BodyFraming,
    encoding: Encoding,
    subscriber: Subscriber,
    config: &ServeConfig,
) -> Result<StreamEnd, ServeError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let now = Instant::now();
    let writer = StreamWriter::new(config.stream_config(), framing, encoding, now);
    let mut driver = Driver {
        feed: StreamFeed::new(subscriber, writer).with_limits(config, now),
        timer: Timer::never(),
        timer_at: None,
        unflushed: false,
    };
    let result = poll_fn(|cx| driver.poll(cx, io)).await;
    // Unsubscribe before waiting on the socket's close.
    drop(driver);
    match result {
        // A socket that took nothing for the write timeout would not take
        // a graceful close either (TLS writes one): just drop it.
        Ok(StreamEnd::WriteTimeout) => Ok(StreamEnd::WriteTimeout),
        Ok(end) => {
            let _ = poll_fn(|cx| Pin::new(&mut *io).poll_close(cx)).await;
            Ok(end)
        }
        Err(e) => ServeError::closed_or(e),
    }
}

/// Writes all of `bytes`.
async fn write_all<IO: AsyncWrite + Unpin>(io: &mut IO, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, bytes)).await {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The state of one served stream between polls.
struct Driver {
    /// The subscriber and the writer it feeds (with the stream's clocks).
    feed: StreamFeed<Instant>,
    /// The feed's timer: it fires at `timer_at`, the last deadline it was
    /// set to (`None`: not set, or spent).
    timer: Timer,
    timer_at: Option<Instant>,
    /// Bytes were written since the last completed flush.
    unflushed: bool,
}

impl Driver {
    /// One turn of the stream: take queued frames (when the socket keeps
    /// up), write, run the feed's clocks (keep-alive, write timeout,
    /// lifetime, grace), and watch for the client closing.
    fn poll<IO>(&mut self, cx: &mut Context<'_>, io: &mut IO) -> Poll<io::Result<StreamEnd>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            let now = Instant::now();
            if let Feed::Stop(end) = self.feed.feed(cx, now) {
                return Poll::Ready(Ok(end));
            }
            let mut progressed = false;
            while !self.feed.writer().is_idle() {
                let written = {
                    let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
                    let slices = self.feed.writer().io_slices(&mut slices);
                    Pin::new(&mut *io).poll_write_vectored(cx, slices)
                };
                match written {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.feed.advance(n, now);
                        self.unflushed = true;
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
            if self.feed.writer().is_idle() {
                if let Some(end) = self.feed.ending() {
                    // The end is out: close once it is flushed (or when the
                    // grace runs out, below).
                    if Pin::new(&mut *io).poll_flush(cx).is_ready() {
                        return Poll::Ready(Ok(end));
                    }
                } else {
                    // A socket that buffers (TLS) gets each batch on its way.
                    if self.unflushed {
                        match Pin::new(&mut *io).poll_flush(cx) {
                            Poll::Ready(Ok(())) => self.unflushed = false,
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                            Poll::Pending => {}
                        }
                    }
                    if progressed {
                        // The socket took everything: there may be room for more.
                        continue;
                    }
                }
            }
            if let Some(deadline) = self.feed.poll_timeout() {
                if self.timer_at != Some(deadline) {
                    self.timer.set_at(deadline);
                    self.timer_at = Some(deadline);
                }
                if Pin::new(&mut self.timer).poll(cx).is_ready() {
                    // A fired timer is spent until it is set again; its
                    // deadline has passed.
                    self.timer_at = None;
                    if let Some(end) = self.feed.handle_timeout(Instant::now().max(deadline)) {
                        return Poll::Ready(Ok(end));
                    }
                    continue;
                }
            }
            // The client sends nothing more after its request; reading tells
            // when it goes away even while no event is written.
            let mut scratch = [0u8; 64];
            return match Pin::new(&mut *io).poll_read(cx, &mut scratch) {
                Poll::Ready(Ok(0)) => Poll::Ready(Ok(StreamEnd::ClientClosed)),
                // Anything sent after the request is ignored (bounded: one
                // read per turn, and a turn ends here).
                Poll::Ready(Ok(_)) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(Err(_)) => Poll::Ready(Ok(StreamEnd::ClientClosed)),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}
