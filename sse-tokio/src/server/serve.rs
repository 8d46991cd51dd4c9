//! The lean HTTP/1.1 path: read a request head, then write an event stream
//! straight to the socket.

use std::future::{Future as _, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use sse_proto::http1::{HeadLimits, RequestHead, RequestParser, Response};
use sse_proto::server::{
    BodyFraming, Encoding, Feed, MAX_WRITE_SLICES, StreamEnd, StreamFeed, StreamWriter, Subscriber,
    stream_response,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::{ServeConfig, ServeError};

/// Reads one request head from `io`. Returns the head and whatever was read
/// after it (the start of a body). Bound the time it may take with
/// `tokio::time::timeout` (slow or stalled clients).
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
        if io.read_buf(&mut buf).await? == 0 {
            return Err(ServeError::Closed);
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
    if let Err(e) = io.write_all(&head).await {
        return ServeError::closed_or(e);
    }
    if let Err(e) = io.flush().await {
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
    let mut feed = StreamFeed::new(subscriber, writer).with_limits(config, now);
    let mut sleep: Option<Pin<Box<Sleep>>> = None;
    let result = poll_fn(|cx| drive(cx, io, &mut feed, &mut sleep)).await;
    match result {
        // A socket that took nothing for the write timeout would not take
        // a graceful close either (TLS writes one): just drop it.
        Ok(StreamEnd::WriteTimeout) => Ok(StreamEnd::WriteTimeout),
        Ok(end) => {
            let _ = io.shutdown().await;
            Ok(end)
        }
        Err(e) => ServeError::closed_or(e),
    }
}

/// Sets `sleep` to fire at `at`.
fn arm(sleep: &mut Option<Pin<Box<Sleep>>>, at: Instant) {
    let timer = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
    if timer.deadline() != at {
        timer.as_mut().reset(at);
    }
}

/// One turn of the stream: take queued frames (when the socket keeps up),
/// write, run the feed's clocks (keep-alive, write timeout, lifetime,
/// grace), and watch for the client closing.
fn drive<IO>(
    cx: &mut Context<'_>,
    io: &mut IO,
    feed: &mut StreamFeed<Instant>,
    sleep: &mut Option<Pin<Box<Sleep>>>,
) -> Poll<io::Result<StreamEnd>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let now = Instant::now();
        if let Feed::Stop(end) = feed.feed(cx, now) {
            return Poll::Ready(Ok(end));
        }
        let mut progressed = false;
        while !feed.writer().is_idle() {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
                let slices = feed.writer().io_slices(&mut slices);
                Pin::new(&mut *io).poll_write_vectored(cx, slices)
            };
            match written {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    feed.advance(n, now);
                    progressed = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if feed.writer().is_idle() {
            if let Some(end) = feed.ending() {
                // The end is out: close once it is flushed (or when the
                // grace runs out, below).
                if Pin::new(&mut *io).poll_flush(cx).is_ready() {
                    return Poll::Ready(Ok(end));
                }
            } else if progressed {
                // The socket took everything: there may be room for more.
                continue;
            }
        }
        if let Some(deadline) = feed.poll_timeout() {
            arm(sleep, deadline);
            if let Some(timer) = sleep {
                if timer.as_mut().poll(cx).is_ready() {
                    // The timer fired: the deadline has passed.
                    if let Some(end) = feed.handle_timeout(Instant::now().max(deadline)) {
                        return Poll::Ready(Ok(end));
                    }
                    continue;
                }
            }
        }
        // The client sends nothing more after its request; reading tells
        // when it goes away even while no event is written.
        let mut scratch = [0u8; 64];
        let mut read = ReadBuf::new(&mut scratch);
        match Pin::new(&mut *io).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => {
                return Poll::Ready(Ok(StreamEnd::ClientClosed));
            }
            // Anything sent after the request is ignored (bounded: one read
            // per turn, and a turn ends here).
            Poll::Ready(Ok(())) => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Err(_)) => return Poll::Ready(Ok(StreamEnd::ClientClosed)),
            Poll::Pending => return Poll::Pending,
        }
    }
}
