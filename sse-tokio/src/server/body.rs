//! [`EventStream`]: an event stream as a hyper 1 body (feature `hyper`) and
//! an axum response (feature `axum`).

use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use sse_proto::server::{BodyFraming, Encoding, Ended, StreamWriter, Subscriber};
use tokio::time::{Instant, Sleep};

use super::ServeConfig;

/// An event-stream response body fed by a [`Subscriber`]: an
/// `http_body::Body` for hyper 1 (and anything built on it), and with the
/// `axum` feature an `axum::response::IntoResponse`.
///
/// hyper frames the body (chunked for HTTP/1.1) and writes the frames;
/// this body hands it each batch of queued events, keep-alive comments
/// after the configured idle time, gzip output flushed per batch when the
/// request accepted gzip, and a last `retry:` on shutdown. hyper polls the
/// body only when it can write, so a client that does not read lets the
/// subscriber's queue fill, and the broker disconnects it: the body then
/// fails with [`Ended::Lagged`], which makes hyper close the connection.
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
pub struct EventStream {
    subscriber: Subscriber,
    writer: StreamWriter<Instant>,
    encoding: Encoding,
    sleep: Option<Pin<Box<Sleep>>>,
    frames: Vec<Bytes>,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("subscriber", &self.subscriber)
            .field("encoding", &self.encoding)
            .field("finished", &self.writer.is_finished())
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// A body for a request with these `headers` (for `Accept-Encoding`).
    /// Must be created inside a tokio runtime with the time driver.
    pub fn new(
        request_headers: &HeaderMap,
        subscriber: Subscriber,
        config: &ServeConfig,
    ) -> EventStream {
        let accept = request_headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let encoding = Encoding::negotiate(accept, config.gzip_enabled());
        EventStream {
            subscriber,
            writer: StreamWriter::new(
                config.stream_config(),
                BodyFraming::Raw,
                encoding,
                Instant::now(),
            ),
            encoding,
            sleep: None,
            frames: Vec::new(),
        }
    }

    /// The content coding chosen for the body.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The response: `200` with the event-stream fields
    /// (`Content-Type: text/event-stream`, `Cache-Control`
    /// ([`CACHE_CONTROL`](super::CACHE_CONTROL)), `X-Accel-Buffering: no`, and
    /// `Content-Encoding: gzip` with `Vary` when compressed) and this body.
    pub fn into_http(self) -> http::Response<EventStream> {
        let mut response = http::Response::new(self);
        let encoding = response.body().encoding;
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
    type Error = Ended;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Ended>>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.writer.poll_chunk() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.writer.is_finished() {
                return Poll::Ready(None);
            }
            // The body reads the clock; the broker is given the time.
            let now = Instant::now();
            match this
                .subscriber
                .poll_recv(cx, &mut this.frames, now.into_std())
            {
                Poll::Ready(Ok(())) => {
                    this.writer.push_frames(this.frames.drain(..), now);
                    continue;
                }
                // An error makes hyper drop the connection at once: a
                // lagging client's socket is backed up.
                Poll::Ready(Err(Ended::Lagged)) => return Poll::Ready(Some(Err(Ended::Lagged))),
                Poll::Ready(Err(Ended::Shutdown { retry })) => {
                    this.writer.finish(retry, now);
                    continue;
                }
                Poll::Pending => {}
            }
            if let Some(deadline) = this.writer.poll_timeout() {
                let timer = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    this.writer.handle_timeout(Instant::now());
                    continue;
                }
            }
            return Poll::Pending;
        }
    }

    fn is_end_stream(&self) -> bool {
        self.writer.is_finished() && self.writer.is_idle()
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
