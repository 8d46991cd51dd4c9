//! The server side for smol, async-std and every other executor of the
//! `futures-io` world: event-stream responses fed by a [`Broker`].
//!
//! The [`Broker`] (from `sse-proto`, shared with the other runtime
//! adapters) holds the history and the topic routing: publish with
//! [`Broker::publish`], subscribe with [`Broker::subscribe`]. This module
//! serves a [`Subscriber`] as a `text/event-stream` response over any socket
//! that implements [`futures_io::AsyncRead`] and [`futures_io::AsyncWrite`]
//! (an [`async_net::TcpStream`], a TLS stream over it, ...), with a lean
//! HTTP/1.1 path: [`read_request`], then [`serve_stream`]. An idle
//! connection costs a few hundred bytes; frames are written with one
//! vectored write per batch.
//!
//! The stream sends `retry:` first when configured, a keep-alive comment
//! after [`StreamConfig::heartbeat`] of idleness (timed by an
//! [`async_io::Timer`]), every batch of queued frames at once, gzip with a
//! flush per batch when the client accepts it (feature `gzip`), and on
//! [`Broker::shutdown`] a last `retry:` before it ends. A subscriber whose
//! socket does not keep up is ended by the broker ([`Ended::Lagged`])
//! without slowing anyone else. Every protocol decision is made in
//! `sse-proto` ([`sse_proto::server::StreamWriter`]); this module only moves
//! its bytes to the socket.
//!
//! ```no_run
//! use async_net::TcpListener;
//! use sse_async_std::server::{read_request, serve_stream, Broker, BrokerConfig, Cursor, ServeConfig, Subscription};
//!
//! # async fn run() -> std::io::Result<()> {
//! let broker = Broker::new(BrokerConfig::new());
//! let listener = TcpListener::bind("127.0.0.1:8080").await?;
//! loop {
//!     let (mut socket, _) = listener.accept().await?;
//!     let broker = broker.clone();
//!     // `smol::spawn(..).detach()` or `async_std::task::spawn(..)`.
//!     let task = async move {
//!         let Ok((request, _body)) = read_request(&mut socket, Default::default()).await else { return };
//!         let cursor = Cursor::from_last_event_id(request.last_event_id());
//!         let subscriber = broker.subscribe(Subscription::new(["news"]), cursor);
//!         let _ = serve_stream(&mut socket, &request, subscriber, &ServeConfig::new()).await;
//!     };
//!     # drop(task);
//! }
//! # }
//! ```

mod serve;

use std::fmt;
use std::io;

pub use serve::{StreamEnd, read_request, serve_response, serve_stream};
pub use sse_proto::http1::{HeadError, HeadLimits, RequestHead, Response};
pub use sse_proto::server::{
    BodyFraming, Broker, BrokerConfig, CACHE_CONTROL, Cursor, Encoding, Ended, LOST_EVENT_TYPE,
    PublishError, Published, Replay, ReplayConfig, Selector, Stats, StreamConfig, Subscriber,
    Subscription, Update, stream_response,
};

/// How streams are served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    stream: StreamConfig,
    gzip: bool,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig::new()
    }
}

impl ServeConfig {
    /// Keep-alive after 15 s of idleness, no `retry:`, gzip when the client
    /// accepts it (with the `gzip` feature).
    pub fn new() -> ServeConfig {
        ServeConfig {
            stream: StreamConfig::new(),
            gzip: cfg!(feature = "gzip"),
        }
    }

    /// Keep-alive interval and the `retry:` sent first.
    pub fn stream(mut self, stream: StreamConfig) -> ServeConfig {
        self.stream = stream;
        self
    }

    /// Whether to compress for clients that accept gzip (ignored without
    /// the `gzip` feature).
    pub fn gzip(mut self, gzip: bool) -> ServeConfig {
        self.gzip = gzip && cfg!(feature = "gzip");
        self
    }

    /// The stream settings.
    pub fn stream_config(&self) -> &StreamConfig {
        &self.stream
    }

    /// Whether gzip may be used.
    pub fn gzip_enabled(&self) -> bool {
        self.gzip
    }
}

/// Why serving failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The socket failed.
    Io(io::Error),
    /// The request head is malformed or over the limits: answer 400 (or
    /// 431 for [`HeadError::TooLarge`] and [`HeadError::TooManyHeaders`])
    /// and close.
    Head(HeadError),
    /// The peer closed the connection before sending a whole request head.
    Closed,
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Io(e) => write!(f, "socket error while serving: {e}"),
            ServeError::Head(e) => write!(f, "bad request head: {e}"),
            ServeError::Closed => {
                f.write_str("the peer closed the connection before a whole request head")
            }
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Io(e) => Some(e),
            ServeError::Head(e) => Some(e),
            ServeError::Closed => None,
        }
    }
}

impl From<io::Error> for ServeError {
    fn from(e: io::Error) -> ServeError {
        ServeError::Io(e)
    }
}
