//! [`Events`]: the events of any stream of byte chunks: a response body
//! from the HTTP client an application already has (reqwest's
//! `bytes_stream()`, a hyper body's data), a file, a pipe. The chunks go
//! through the same [`Decoder`] as everywhere else, without a copy when
//! they are [`Bytes`].

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_core::Stream;
use sse_proto::{DecodeError, Decoder, Event};

/// Why an [`Events`] stream failed. Both are terminal: the stream ends
/// after yielding one.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventsError<E> {
    /// The body failed (the connection dropped, say).
    Body(E),
    /// The bytes broke a decoder limit (see [`sse_proto::Limits`]).
    Decode(DecodeError),
}

impl<E: fmt::Display> fmt::Display for EventsError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventsError::Body(e) => write!(f, "reading the event stream failed: {e}"),
            EventsError::Decode(e) => write!(f, "{e}"),
        }
    }
}

impl<E> std::error::Error for EventsError<E>
where
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EventsError::Body(e) => Some(e),
            EventsError::Decode(e) => Some(e),
        }
    }
}

/// For codecs, which need their error to come from `io::Error`.
impl From<io::Error> for EventsError<io::Error> {
    fn from(e: io::Error) -> EventsError<io::Error> {
        EventsError::Body(e)
    }
}

/// The events of a stream of byte chunks (`Stream<Item = Result<B, E>>`
/// with `B: Buf`), decoded as the WHATWG algorithm says: a `Stream` of
/// `Result<Event, EventsError<E>>` that ends when the body does (an event
/// not ended by a blank line before then is dropped, as browsers do) or
/// after its first error.
///
/// ```
/// use bytes::Bytes;
/// use sse_driver::events::Events;
///
/// /// Some response body: two chunks, an event split between them.
/// struct Body(Vec<Bytes>);
///
/// impl futures_core::Stream for Body {
///     type Item = Result<Bytes, std::io::Error>;
///     fn poll_next(
///         mut self: std::pin::Pin<&mut Self>,
///         _: &mut std::task::Context<'_>,
///     ) -> std::task::Poll<Option<Self::Item>> {
///         let next = (!self.0.is_empty()).then(|| Ok(self.0.remove(0)));
///         std::task::Poll::Ready(next)
///     }
/// }
///
/// # async fn run() -> Result<(), sse_driver::events::EventsError<std::io::Error>> {
/// let body = Body(vec![Bytes::from("id: 1\ndata: hel"), Bytes::from("lo\n\ndata: unfinished")]);
/// let mut events = Events::new(body);
/// let first = events.next().await.unwrap()?;
/// assert_eq!((first.id(), first.data()), ("1", "hello"));
/// // The body ended before the second event's blank line: it is dropped.
/// assert!(events.next().await.is_none());
/// assert_eq!(events.decoder().last_event_id(), "1");
/// # Ok(())
/// # }
/// # let mut run = std::pin::pin!(run());
/// # let waker = std::task::Waker::noop();
/// # let std::task::Poll::Ready(done) = std::future::Future::poll(run.as_mut(), &mut std::task::Context::from_waker(waker)) else { unreachable!() };
/// # done.unwrap();
/// ```
#[derive(Debug)]
pub struct Events<S> {
    body: S,
    decoder: Decoder,
    /// The body ended (or failed): only what the decoder holds is left.
    body_done: bool,
    /// An error was yielded: nothing follows.
    failed: bool,
}

impl<S> Events<S> {
    /// The events of `body`, with the default [`sse_proto::Limits`].
    pub fn new(body: S) -> Events<S> {
        Events::with_decoder(body, Decoder::new())
    }

    /// The events of `body`, decoded by `decoder` (with limits of your
    /// own, or a last event ID to start from).
    pub fn with_decoder(body: S, decoder: Decoder) -> Events<S> {
        Events {
            body,
            decoder,
            body_done: false,
            failed: false,
        }
    }

    /// The decoder: the last event ID and the reconnection time (`retry:`)
    /// received so far.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The body.
    pub fn into_inner(self) -> S {
        self.body
    }

    /// The next event, or `None` once the stream has ended (a convenience
    /// for `StreamExt::next`).
    pub async fn next<B, E>(&mut self) -> Option<Result<Event, EventsError<E>>>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: Buf,
    {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Yields `error` and ends the stream.
    fn fail<E>(&mut self, error: EventsError<E>) -> Poll<Option<Result<Event, EventsError<E>>>> {
        self.failed = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl<S, B, E> Stream for Events<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: Buf,
{
    type Item = Result<Event, EventsError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.failed {
                return Poll::Ready(None);
            }
            match this.decoder.poll_event() {
                Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                Ok(None) => {}
                Err(e) => return this.fail(EventsError::Decode(e)),
            }
            if this.body_done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.body).poll_next(cx)) {
                Some(Ok(mut chunk)) => {
                    // Zero-copy for `Bytes` (its `copy_to_bytes` shares).
                    let len = chunk.remaining();
                    this.decoder.handle_chunk(chunk.copy_to_bytes(len));
                }
                Some(Err(e)) => {
                    this.body_done = true;
                    return this.fail(EventsError::Body(e));
                }
                None => {
                    this.body_done = true;
                    this.decoder.handle_eof();
                }
            }
        }
    }
}

/// The chunks a `futures-io` reader yields, as a `Stream` of `Bytes` (at
/// most [`ReadChunks::CHUNK`] bytes each), for [`Events`]:
/// [`read_events`] puts the two together.
#[derive(Debug)]
pub struct ReadChunks<R> {
    reader: R,
    buf: BytesMut,
    done: bool,
}

impl<R> ReadChunks<R> {
    /// The largest chunk read at once.
    pub const CHUNK: usize = 16 * 1024;

    /// The chunks of `reader`.
    pub fn new(reader: R) -> ReadChunks<R> {
        ReadChunks {
            reader,
            buf: BytesMut::new(),
            done: false,
        }
    }
}

impl<R: futures_io::AsyncRead + Unpin> Stream for ReadChunks<R> {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.buf.capacity() < ReadChunks::<R>::CHUNK {
            this.buf.reserve(ReadChunks::<R>::CHUNK);
        }
        this.buf.resize(ReadChunks::<R>::CHUNK, 0);
        let read = loop {
            match Pin::new(&mut this.reader).poll_read(cx, &mut this.buf) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                // The buffer stays zeroed and full length for the next
                // poll: no second memset of it.
                Poll::Pending => return Poll::Pending,
                Poll::Ready(read) => break read,
            }
        };
        match read {
            Ok(0) => {
                this.done = true;
                Poll::Ready(None)
            }
            Ok(n) => {
                this.buf.truncate(n);
                Poll::Ready(Some(Ok(this.buf.split().freeze())))
            }
            Err(e) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

/// The events a `futures-io` reader (an `async-net` or `async-std`
/// stream, a file) delivers.
pub fn read_events<R: futures_io::AsyncRead + Unpin>(reader: R) -> Events<ReadChunks<R>> {
    Events::new(ReadChunks::new(reader))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sse_proto::Limits;
    use std::collections::VecDeque;
    use std::future::Future;
    use std::task::Waker;

    /// A body that hands out scripted chunks (waiting once before each).
    struct Script {
        items: VecDeque<Result<&'static [u8], &'static str>>,
        waited: bool,
    }

    impl Stream for Script {
        type Item = Result<&'static [u8], &'static str>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            if !self.waited {
                self.waited = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.waited = false;
            Poll::Ready(self.items.pop_front())
        }
    }

    fn script(items: &[Result<&'static [u8], &'static str>]) -> Script {
        Script {
            items: items.iter().copied().collect(),
            waited: false,
        }
    }

    /// Every item of `stream`, polled to the end.
    fn collect<S: Stream + Unpin>(mut stream: S) -> Vec<S::Item> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut items = Vec::new();
        loop {
            match Pin::new(&mut stream).poll_next(&mut cx) {
                Poll::Ready(Some(item)) => items.push(item),
                Poll::Ready(None) => return items,
                Poll::Pending => {}
            }
        }
    }

    #[test]
    fn events_cross_chunks_and_an_unfinished_one_is_dropped() {
        let body = script(&[
            Ok(b"retry: 5\nid: 7\nda"),
            Ok(b"ta: a\n"),
            Ok(b"\ndata: b\n\ndata: c"),
        ]);
        let mut events = Events::new(body);
        let got: Vec<(String, String)> = collect(&mut events)
            .into_iter()
            .map(|e| e.map(|e| (e.id().to_owned(), e.data().to_owned())))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, [("7".into(), "a".into()), ("7".into(), "b".into())]);
        assert_eq!(
            events.decoder().retry(),
            Some(std::time::Duration::from_millis(5))
        );
    }

    #[test]
    fn a_body_error_is_yielded_once_then_the_stream_ends() {
        let body = script(&[Ok(b"data: a\n\n"), Err("reset"), Ok(b"data: b\n\n")]);
        let items = collect(Events::new(body));
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().map(|e| e.data()).ok(), Some("a"));
        assert!(matches!(items[1], Err(EventsError::Body("reset"))));
    }

    #[test]
    fn a_decode_limit_is_an_error_and_the_end() {
        let decoder = Decoder::with_limits(Limits::default().max_line_len(8));
        let body = script(&[
            Ok(b"data: ok\n\ndata: far too long\n\n"),
            Ok(b"data: x\n\n"),
        ]);
        let items = collect(Events::with_decoder(body, decoder));
        assert_eq!(items.len(), 2);
        assert!(matches!(
            items[1],
            Err(EventsError::Decode(DecodeError::LineTooLong { limit: 8 }))
        ));
    }

    #[test]
    fn a_reader_is_read_in_chunks() {
        let input: &[u8] = b"data: one\n\ndata: two\n\n";
        let mut read = std::pin::pin!(async {
            let mut events = read_events(input);
            let mut data = Vec::new();
            while let Some(event) = events.next().await {
                data.push(event.unwrap().data().to_owned());
            }
            data
        });
        let Poll::Ready(data) = read.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
            panic!("a slice never waits")
        };
        assert_eq!(data, ["one", "two"]);
    }
}
