//! The crate's client as the tests drive it: the settings every test starts
//! from, the response head of a scripted event stream, and what the stream
//! must yield next.

use std::time::Duration;

use sse_driver::client::{
    ClientConfig, Error, Event, EventSource, Jitter, ReconnectPolicy, ReconnectReason,
};
use sse_driver::rt::Runtime;

use super::ms;

/// The head of a scripted event-stream response.
pub const OK: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";

/// [`OK`] followed by `body`.
pub fn ok(body: &str) -> String {
    format!("{OK}{body}")
}

/// A client configuration for `url` with fast reconnects (20 ms, at most
/// 80 ms) and no jitter, so that timings are predictable.
pub fn config(url: &str) -> ClientConfig {
    ClientConfig::new(url.to_owned()).reconnect(
        ReconnectPolicy::default()
            .initial_delay(ms(20))
            .backoff_cap(ms(80))
            .jitter(Jitter::None),
    )
}

/// The next item, which must be an event.
pub async fn next<D: Runtime>(es: &mut EventSource<D>) -> Event {
    match es.next().await {
        Some(Ok(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// The next item, which must be a message.
pub async fn message<D: Runtime>(es: &mut EventSource<D>) -> sse_proto::Event {
    match next(es).await {
        Event::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The next item, which must be `Open`.
pub async fn open<D: Runtime>(es: &mut EventSource<D>) {
    match next(es).await {
        Event::Open => {}
        other => panic!("expected open, got {other:?}"),
    }
}

/// The next item, which must be `Reconnecting`: its delay, reason and
/// error.
pub async fn reconnecting<D: Runtime>(
    es: &mut EventSource<D>,
) -> (Duration, ReconnectReason, Option<Error>) {
    match next(es).await {
        Event::Reconnecting {
            delay,
            reason,
            error,
        } => (delay, reason, error),
        other => panic!("expected reconnecting, got {other:?}"),
    }
}
