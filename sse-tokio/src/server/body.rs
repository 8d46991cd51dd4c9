//! [`EventStream`]: an event stream as a hyper 1 body (feature `hyper`) and
//! an axum response (feature `axum`).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use sse_driver::server::BodyStream;

use super::{Encoding, ServeConfig, StreamEnd, Subscriber};
use crate::rt::Tokio;

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
#[derive(Debug)]
pub struct EventStream(BodyStream<Tokio>);

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
        EventStream(BodyStream::new(Tokio, accept, subscriber, config))
    }

    /// The content coding chosen for the body.
    pub fn encoding(&self) -> Encoding {
        self.0.encoding()
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
        self.get_mut()
            .0
            .poll_chunk(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_done()
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
