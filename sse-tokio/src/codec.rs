//! Events from tokio byte sources (feature `codec`): [`read_events`] for
//! any `tokio::io::AsyncRead` (a child's stdout, a file, a socket whose
//! HTTP is someone else's), and [`EventCodec`] for `tokio_util`'s
//! `FramedRead`. Both decode with the same [`Decoder`] as the rest of the
//! crates, and fail with the same [`EventsError`].

use std::io;

use bytes::BytesMut;
use sse_driver::events::{Events, EventsError};
use sse_proto::{Decoder, Event};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

/// The events a tokio reader delivers (read in chunks of up to 16 KiB,
/// decoded without copying them again).
///
/// ```
/// use sse_tokio::codec::read_events;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let input: &[u8] = b"event: greeting\ndata: hello\n\n";
/// let mut events = read_events(input);
/// let event = events.next().await.unwrap()?;
/// assert_eq!((event.event_type(), event.data()), ("greeting", "hello"));
/// assert!(events.next().await.is_none());
/// # Ok(())
/// # }
/// ```
pub fn read_events<R: AsyncRead + Unpin>(reader: R) -> Events<ReaderStream<R>> {
    Events::new(ReaderStream::with_capacity(reader, 16 * 1024))
}

/// A `tokio_util` codec that turns bytes into events: use it with
/// `FramedRead` when the rest of the application speaks codecs.
///
/// ```
/// use futures_core::Stream;
/// use sse_tokio::codec::EventCodec;
/// use tokio_util::codec::FramedRead;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let input: &[u8] = b"data: one\n\ndata: two\n\n";
/// let mut frames = FramedRead::new(input, EventCodec::new());
/// let mut data = Vec::new();
/// while let Some(event) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut frames).poll_next(cx)).await {
///     data.push(event?.data().to_owned());
/// }
/// assert_eq!(data, ["one", "two"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct EventCodec {
    decoder: Decoder,
}

impl EventCodec {
    /// A codec with the default limits.
    pub fn new() -> EventCodec {
        EventCodec::default()
    }

    /// A codec decoding with `decoder` (limits of your own, or a last
    /// event ID to start from).
    pub fn with_decoder(decoder: Decoder) -> EventCodec {
        EventCodec { decoder }
    }

    /// The decoder: the last event ID and the reconnection time received
    /// so far.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The next event the decoder holds.
    fn next_event(&mut self) -> Result<Option<Event>, EventsError<io::Error>> {
        self.decoder.poll_event().map_err(EventsError::Decode)
    }
}

impl tokio_util::codec::Decoder for EventCodec {
    type Item = Event;
    type Error = EventsError<io::Error>;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Event>, Self::Error> {
        if !src.is_empty() {
            // The decoder keeps what it needs: the codec's buffer is
            // handed over whole, without a copy.
            self.decoder.handle_chunk(src.split().freeze());
        }
        self.next_event()
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Event>, Self::Error> {
        if let Some(event) = self.decode(src)? {
            return Ok(Some(event));
        }
        self.decoder.handle_eof();
        self.next_event()
    }
}
