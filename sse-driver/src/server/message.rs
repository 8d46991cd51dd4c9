//! Per-request event streams: [`Message`], an owned event to send, and
//! [`MessageBody`], the body chunks of a stream of them (with the same
//! keep-alive, first `retry:` and gzip as broker streams), for handlers
//! that produce their own events (a job's progress, a model's tokens).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use sse_proto::server::{Encoding, ServeConfig, StreamWriter};
use sse_proto::{EventId, EventName, OutgoingEvent, encode_comment};

use super::body::Core;
use crate::rt::Runtime;

/// The most messages taken from the stream into one chunk.
const BATCH: usize = 64;

/// One event to send (or a comment): owned, so that a handler's stream can
/// yield it. Fields are validated when set ([`EventId`], [`EventName`]:
/// no line breaks), so encoding cannot inject one field into another.
///
/// ```
/// use sse_driver::server::Message;
/// use sse_proto::EventId;
///
/// let message = Message::new("line 1\nline 2").id(EventId::new("7")?);
/// assert_eq!(&message.to_bytes()[..], b"id: 7\ndata: line 1\ndata: line 2\n\n");
/// assert_eq!(&Message::comment("ping").to_bytes()[..], b": ping\n");
/// # Ok::<(), sse_proto::InvalidField>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    data: String,
    id: Option<EventId>,
    event: Option<EventName>,
    retry: Option<Duration>,
    /// A comment line instead of an event.
    comment: bool,
}

impl Message {
    /// An event of type `message` carrying `data` (split into `data:`
    /// lines at CR, LF and CRLF).
    pub fn new(data: impl Into<String>) -> Message {
        Message {
            data: data.into(),
            ..Message::default()
        }
    }

    /// An event whose data is `value` as JSON (feature `json`).
    ///
    /// # Errors
    /// What `serde_json` says of a value it cannot serialize.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Message, serde_json::Error> {
        serde_json::to_string(value).map(Message::new)
    }

    /// A comment line (`: text`), which clients ignore: a heartbeat of
    /// your own, or a note for whoever reads the stream raw.
    pub fn comment(text: impl Into<String>) -> Message {
        Message {
            data: text.into(),
            comment: true,
            ..Message::default()
        }
    }

    /// Sets the `id` field: the client's last event ID from this event on.
    #[must_use]
    pub fn id(mut self, id: EventId) -> Message {
        self.id = Some(id);
        self
    }

    /// Sets the `event` field: the type the client dispatches.
    #[must_use]
    pub fn event(mut self, name: EventName) -> Message {
        self.event = Some(name);
        self
    }

    /// Sets the `retry` field: the client's reconnection time.
    #[must_use]
    pub fn retry(mut self, retry: Duration) -> Message {
        self.retry = Some(retry);
        self
    }

    /// The message as it goes on the wire.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        if self.comment {
            encode_comment(&self.data, &mut buf);
            return buf.freeze();
        }
        let mut event = OutgoingEvent::new(&self.data);
        if let Some(id) = &self.id {
            event = event.id(id);
        }
        if let Some(name) = &self.event {
            event = event.event(name);
        }
        if let Some(retry) = self.retry {
            event = event.retry(retry);
        }
        event.to_bytes()
    }
}

/// The body chunks of a stream of [`Message`]s, for servers that frame and
/// write bodies themselves (hyper and what is built on it): each batch of
/// ready messages in one chunk, `retry:` first and keep-alive comments
/// after idleness as configured, gzip (flushed per batch) when the request
/// accepted it. The body ends after the stream does.
///
/// It is a [`Stream`] of `Result<Bytes, Infallible>`, the body type of
/// actix-web's `HttpResponseBuilder::streaming`, poem's
/// `Body::from_bytes_stream`, warp's `Body::wrap_stream` and axum's
/// `Body::from_stream`. Send `Content-Type: text/event-stream`,
/// `Cache-Control: no-cache`, and `Content-Encoding` when
/// [`encoding`](MessageBody::encoding) has one.
pub struct MessageBody<R: Runtime, S> {
    core: Core<R>,
    messages: S,
    writer: StreamWriter<Instant>,
}

impl<R: Runtime, S> fmt::Debug for MessageBody<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageBody")
            .field("encoding", &self.core.encoding)
            .field("done", &self.core.done)
            .finish_non_exhaustive()
    }
}

impl<R, S> MessageBody<R, S>
where
    R: Runtime,
    S: Stream<Item = Message> + Unpin,
{
    /// A body of `messages` for a request that sent `accept_encoding` (its
    /// `Accept-Encoding` value, if any), timed on `runtime`. Of `config`,
    /// the stream settings and gzip apply.
    pub fn new(
        runtime: R,
        accept_encoding: Option<&str>,
        messages: S,
        config: &ServeConfig,
    ) -> MessageBody<R, S> {
        let (core, writer) = Core::start(runtime, accept_encoding, config);
        MessageBody {
            core,
            messages,
            writer,
        }
    }

    /// The content coding chosen for the body.
    pub fn encoding(&self) -> Encoding {
        self.core.encoding
    }

    /// Whether the body has ended (its last chunk was taken).
    pub fn is_done(&self) -> bool {
        self.core.done
    }

    /// The next chunk, or `None` once the messages have ended and
    /// everything was handed out.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if let Some(bytes) = self.writer.poll_batch(super::body::CHUNK_LIMIT) {
                return Poll::Ready(Some(bytes));
            }
            if self.writer.is_finished() {
                self.core.done = true;
                self.core.alarm.clear();
                return Poll::Ready(None);
            }
            let mut batch = Vec::new();
            let mut ended = false;
            while batch.len() < BATCH {
                match Pin::new(&mut self.messages).poll_next(cx) {
                    Poll::Ready(Some(message)) => batch.push(message.to_bytes()),
                    Poll::Ready(None) => {
                        ended = true;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            let now = self.core.runtime.now();
            if !batch.is_empty() {
                self.writer.push_frames(batch, now);
            }
            if ended {
                self.writer.finish(None, now);
            }
            if !self.writer.is_idle() || self.writer.is_finished() {
                continue;
            }
            let Some(deadline) = self.writer.poll_timeout() else {
                return Poll::Pending;
            };
            let now = ready!(self.core.alarm.poll_at(&self.core.runtime, deadline, cx));
            self.writer.handle_timeout(now);
        }
    }
}

impl<R, S> Stream for MessageBody<R, S>
where
    R: Runtime,
    S: Stream<Item = Message> + Unpin,
{
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx).map(|chunk| chunk.map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_encoded_and_data_lines_split() {
        let message = Message::new("a\r\nb\rc")
            .id(EventId::new("9").unwrap())
            .event(EventName::new("tick").unwrap())
            .retry(Duration::from_millis(1500));
        assert_eq!(
            &message.to_bytes()[..],
            b"retry: 1500\nid: 9\nevent: tick\ndata: a\ndata: b\ndata: c\n\n"
        );
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_data_is_one_line() {
        let message = Message::json(&serde_json::json!({"delta": "a\nb"})).unwrap();
        assert_eq!(&message.to_bytes()[..], b"data: {\"delta\":\"a\\nb\"}\n\n");
    }
}
