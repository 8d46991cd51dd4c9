//! A per-request event stream from an axum handler: each client gets its
//! own five events, ids `1` to `5`, about 100 ms apart, then the stream
//! ends. A client that reconnects with `Last-Event-ID` gets the rest.
//!
//! ```text
//! cargo run -p sse-tokio --features axum --example axum_stream [127.0.0.1:3000]
//! curl -N localhost:3000/
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use futures_core::Stream;
use sse_proto::EventId;
use sse_tokio::server::{EventStream, LastEventId, Message, ServeConfig, StreamConfig};
use tokio::sync::mpsc;

/// The events of one client: a task of its own sends them.
async fn events(headers: HeaderMap, LastEventId(last): LastEventId) -> EventStream {
    let after: u32 = last.and_then(|id| id.parse().ok()).unwrap_or(0);
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        for n in after + 1..=5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Ok(id) = EventId::new(n.to_string()) else {
                return;
            };
            let message = Message::new(format!("event {n} of 5")).id(id);
            if tx.send(message).await.is_err() {
                return; // The client went away.
            }
        }
    });
    let config = ServeConfig::new().stream(StreamConfig::new().retry(Some(Duration::from_secs(1))));
    EventStream::from_stream(&headers, Received(rx), &config)
}

/// A channel's receiver as a stream of messages.
struct Received(mpsc::Receiver<Message>);

impl Stream for Received {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let app = Router::new().route("/", get(events));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
