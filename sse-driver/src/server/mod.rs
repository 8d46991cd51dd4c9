//! The server side, written once for every runtime: read a request head,
//! then serve a [`Subscriber`] as a `text/event-stream` response on any
//! [`Transport`], with the crate's own lean HTTP/1.1 path (a few hundred
//! bytes per idle connection, each batch of frames written with one
//! vectored write).
//!
//! The stream sends `retry:` first when configured, a keep-alive comment
//! after [`StreamConfig::heartbeat`](sse_proto::server::StreamConfig::heartbeat)
//! of idleness, every batch of queued frames at once (flushed, for
//! transports that buffer), gzip when the client accepts it (feature
//! `gzip`), and on [`Broker::shutdown`](sse_proto::server::Broker::shutdown)
//! a last `retry:` before it ends. Every decision (what to write, when the
//! keep-alive, write timeout, lifetime, expiry and shutdown grace are due)
//! is [`StreamFeed`]'s; the loop here only
//! writes, reads and waits on one timer.

mod body;
mod message;
mod stream;

use std::future::{Future as _, poll_fn};
use std::io;
use std::task::Poll;

use bytes::BytesMut;
use sse_proto::http1::RequestParser;
pub use sse_proto::http1::{HeadError, HeadLimits, RequestHead, Response};
pub use sse_proto::server::{
    BodyFraming, Broker, BrokerConfig, CACHE_CONTROL, Closing, Cursor, Encoding, Ended,
    LOST_EVENT_TYPE, PublishError, Published, Replay, ReplayConfig, SHUTDOWN_GRACE, Selector,
    ServeConfig, ServeError, Stats, StreamConfig, StreamEnd, SubscribeError, Subscriber,
    Subscription, Update, stream_response,
};
use sse_proto::server::{StreamFeed, StreamWriter};

use crate::io::{close, poll_read, write_all};
use crate::rt::{Runtime, Timer, Transport};
pub use body::BodyStream;
pub use message::{Message, MessageBody};
use stream::StreamLoop;

/// Reads one request head from `io`. Returns the head and whatever was read
/// after it (the start of a body). Bound the time it may take (slow or
/// stalled clients) with the runtime's timeout.
///
/// # Errors
/// [`ServeError::Head`] for a malformed or oversized head,
/// [`ServeError::Closed`] when the peer closes first, [`ServeError::Io`].
pub async fn read_request<T>(
    io: &mut T,
    limits: HeadLimits,
) -> Result<(RequestHead, BytesMut), ServeError>
where
    T: Transport + ?Sized,
{
    let mut parser = RequestParser::with_limits(limits);
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if buf.capacity() == buf.len() {
            buf.reserve(buf.len().clamp(1024, limits.head_len().max(1024)));
        }
        let filled = buf.len();
        buf.resize(buf.capacity(), 0);
        let read = poll_fn(|cx| poll_read(io, cx, buf.get_mut(filled..).unwrap_or_default())).await;
        buf.truncate(filled + read.as_ref().map_or(0, |n| *n));
        match read {
            Ok(0) => return Err(ServeError::Closed),
            Ok(_) => {}
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
/// The response head is [`stream_response`]'s; to add fields to it, write
/// it with [`write_head`] and serve the body with [`serve_body`].
///
/// # Errors
/// [`ServeError::Io`] when the socket fails other than by the client
/// closing it.
pub async fn serve_stream<R: Runtime, T: Transport + ?Sized>(
    runtime: &R,
    io: &mut T,
    request: &RequestHead,
    subscriber: Subscriber,
    config: &ServeConfig,
) -> Result<StreamEnd, ServeError> {
    let (response, framing, encoding) = stream_response(request, config.gzip_enabled());
    if let Err(e) = write_head(io, &response).await {
        return ServeError::closed_or(e);
    }
    drop(response);
    serve_body(runtime, io, framing, encoding, subscriber, config).await
}

/// Writes a response head (and flushes it): build it with
/// [`stream_response`] and add fields to it, then serve the body with
/// [`serve_body`].
///
/// # Errors
/// What the socket says.
pub async fn write_head<T>(io: &mut T, response: &Response) -> io::Result<()>
where
    T: Transport + ?Sized,
{
    let mut head = BytesMut::with_capacity(256);
    response.encode(&mut head);
    write_all(io, &head).await
}

/// The body of an event stream whose response head the caller has already
/// written ([`write_head`], say on another task, before handing the
/// connection over). `framing` and `encoding` must be
/// the head's, as [`stream_response`] gave them.
///
/// How the connection is closed follows [`StreamEnd::closing`]: a stream
/// that ends with [`Closing::Graceful`] is closed here (a TLS
/// `close_notify`, a TCP `FIN`), waiting at most [`SHUTDOWN_GRACE`] for
/// it. Otherwise nothing is written or waited for, and the caller drops the
/// transport; on [`Closing::Reset`] (the client closed first) a caller that
/// holds the TCP socket resets it first (`set_zero_linger` in tokio), so
/// that the client's port is not held in `TIME_WAIT`.
///
/// # Errors
/// As [`serve_stream`].
pub async fn serve_body<R, T>(
    runtime: &R,
    io: &mut T,
    framing: BodyFraming,
    encoding: Encoding,
    subscriber: Subscriber,
    config: &ServeConfig,
) -> Result<StreamEnd, ServeError>
where
    R: Runtime,
    T: Transport + ?Sized,
{
    let now = runtime.now();
    let writer = StreamWriter::new(config.stream_config(), framing, encoding, now);
    let feed = StreamFeed::new(subscriber, writer).with_limits(config, now);
    let mut stream = StreamLoop::new(runtime.clone(), feed);
    let result = poll_fn(|cx| stream.poll(cx, io)).await;
    // Unsubscribe before waiting on the socket's close.
    drop(stream);
    match result {
        // Closing::Abandon (a socket that took nothing for a while would
        // not take a graceful close either) and Closing::Reset (the
        // caller, who holds the socket, resets it): nothing to wait for.
        Ok(end) if end.closing() != Closing::Graceful => Ok(end),
        Ok(end) => {
            let mut grace = runtime.timer(runtime.now() + SHUTDOWN_GRACE);
            let closing = close(io);
            let mut closing = std::pin::pin!(closing);
            poll_fn(|cx| {
                if closing.as_mut().poll(cx).is_ready() || grace.poll_fired(cx).is_ready() {
                    return Poll::Ready(());
                }
                Poll::Pending
            })
            .await;
            Ok(end)
        }
        Err(e) => ServeError::closed_or(e),
    }
}
