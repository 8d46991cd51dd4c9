//! [`EventStream`]: an event stream as a hyper 1 body (feature `hyper`) and
//! an axum response (feature `axum`).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use sse_driver::server::{BodyStream, Message, MessageBody};

use super::{Encoding, ServeConfig, StreamEnd, Subscriber};
use crate::rt::Tokio;

/// A handler's own messages, boxed once per stream.
type Messages = Pin<Box<dyn Stream<Item = Message> + Send>>;

/// Where the body's chunks come from.
enum Source {
    /// A broker subscriber.
    Broker(BodyStream<Tokio>),
    /// A handler's stream of messages.
    Messages(MessageBody<Tokio, Messages>),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Broker(body) => body.fmt(f),
            Source::Messages(body) => body.fmt(f),
        }
    }
}

/// An event-stream response body fed by a [`Subscriber`]: an
/// `http_body::Body` for hyper 1 (and anything built on it), and with the
/// `axum` feature an `axum::response::IntoResponse`.
///
/// hyper frames the body (chunked for HTTP/1.1) and writes the frames;
/// this body hands it the chunks of `sse-driver`'s [`BodyStream`]: each
/// batch of queued events, keep-alive comments after the configured idle
/// time, gzip output flushed per batch when the request accepted gzip, and
/// a last `retry:` on shutdown. hyper polls the body only when it can
/// write, so a client that does not read lets the subscriber's queue fill,
/// and the broker disconnects it: the body then fails with
/// [`StreamEnd::Lagged`], which makes hyper close the connection.
///
/// ```no_run
/// # #[cfg(feature = "axum")]
/// # mod example {
/// use axum::{extract::State, http::HeaderMap, routing::get, Router};
/// use sse_tokio::server::{Broker, BrokerConfig, Cursor, EventStream, ServeConfig, Subscription};
/// use std::time::Instant;
///
/// async fn events(State(broker): State<Broker>, headers: HeaderMap) -> EventStream {
///     let cursor = Cursor::from_last_event_id(
///         headers.get("last-event-id").and_then(|v| v.to_str().ok()),
///     );
///     let subscriber = broker.subscribe(Subscription::new(["chat"]), cursor, Instant::now());
///     EventStream::new(&headers, subscriber, &ServeConfig::new())
/// }
///
/// fn app() -> Router {
///     Router::new().route("/events", get(events)).with_state(Broker::new(BrokerConfig::new()))
/// }
/// # }
/// ```
///
/// A handler that produces its own events (a job's progress, a model's
/// tokens) returns [`EventStream::from_stream`] instead, with the same
/// keep-alive, first `retry:` and gzip:
///
/// ```no_run
/// # #[cfg(feature = "axum")]
/// # mod example {
/// use axum::http::HeaderMap;
/// use sse_tokio::server::{EventStream, LastEventId, Message, ServeConfig};
///
/// async fn progress(headers: HeaderMap, LastEventId(last): LastEventId) -> EventStream {
///     let from: u32 = last.and_then(|id| id.parse().ok()).unwrap_or(0);
///     let steps = (from + 1..=5).map(|n| {
///         Message::new(format!("step {n}")).id(sse_proto::EventId::new(n.to_string()).unwrap_or_default())
///     });
///     EventStream::from_stream(&headers, Steps(steps), &ServeConfig::new())
/// }
///
/// /// An iterator as a stream (any `futures` stream will do).
/// struct Steps<I>(I);
/// impl<I: Iterator + Unpin> futures_core::Stream for Steps<I> {
///     type Item = I::Item;
///     fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<I::Item>> {
///         std::task::Poll::Ready(self.0.next())
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct EventStream(Source);

impl EventStream {
    /// A body for a request with these `headers` (for `Accept-Encoding`).
    /// Must be polled inside a tokio runtime with the time driver.
    pub fn new(
        request_headers: &HeaderMap,
        subscriber: Subscriber,
        config: &ServeConfig,
    ) -> EventStream {
        let accept = request_headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        EventStream(Source::Broker(BodyStream::new(
            Tokio, accept, subscriber, config,
        )))
    }

    /// A body of the handler's own `messages`, for a request with these
    /// `headers` (for `Accept-Encoding`): each batch of ready messages in
    /// one chunk, `retry:` first and keep-alive comments after idleness as
    /// `config` says, gzip when accepted. It ends after `messages` does.
    pub fn from_stream<S>(
        request_headers: &HeaderMap,
        messages: S,
        config: &ServeConfig,
    ) -> EventStream
    where
        S: Stream<Item = Message> + Send + 'static,
    {
        let accept = request_headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let messages: Messages = Box::pin(messages);
        EventStream(Source::Messages(MessageBody::new(
            Tokio, accept, messages, config,
        )))
    }

    /// The content coding chosen for the body.
    pub fn encoding(&self) -> Encoding {
        match &self.0 {
            Source::Broker(body) => body.encoding(),
            Source::Messages(body) => body.encoding(),
        }
    }

    /// The response: `200` with the event-stream fields
    /// (`Content-Type: text/event-stream`, `Cache-Control`
    /// ([`CACHE_CONTROL`](super::CACHE_CONTROL)), `X-Accel-Buffering: no`, and
    /// `Content-Encoding: gzip` with `Vary` when compressed) and this body.
    pub fn into_http(self) -> http::Response<EventStream> {
        let encoding = self.encoding();
        let mut response = http::Response::new(self);
        let headers = response.headers_mut();
        for (name, value) in encoding.stream_headers() {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
        response
    }
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = StreamEnd;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamEnd>>> {
        match &mut self.get_mut().0 {
            Source::Broker(body) => body
                .poll_chunk(cx)
                .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data))),
            Source::Messages(body) => body
                .poll_chunk(cx)
                .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Source::Broker(body) => body.is_done(),
            Source::Messages(body) => body.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for EventStream {
    fn into_response(self) -> axum_core::response::Response {
        self.into_http().map(axum_core::body::Body::new)
    }
}

/// The `Last-Event-ID` a reconnecting client sent, if any (and if it is
/// UTF-8): an axum extractor that never rejects.
#[cfg(feature = "axum")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastEventId(pub Option<String>);

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for LastEventId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<LastEventId, Self::Rejection> {
        let value = parts
            .headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(LastEventId(value))
    }
}
