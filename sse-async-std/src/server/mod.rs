//! The server side for smol, async-std and every other executor of the
//! `futures-io` world: event-stream responses fed by a [`Broker`].
//!
//! The [`Broker`] (from `sse-proto`, shared with the other runtime
//! adapters) holds the history and the topic routing: publish with
//! [`Broker::publish`], subscribe with [`Broker::subscribe`]. This module
//! serves a [`Subscriber`] as a `text/event-stream` response over any socket
//! that implements [`futures_io::AsyncRead`] and [`futures_io::AsyncWrite`]
//! (an [`async_net::TcpStream`], a TLS stream over it, ...) wrapped in
//! [`FuturesIo`], with the lean HTTP/1.1 path of `sse-driver`:
//! [`read_request`], then [`serve_stream`] on the [`AsyncIo`] runtime. An idle
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
//! `sse-proto` ([`sse_proto::server::StreamFeed`]); the loop that moves its
//! bytes to the socket is `sse-driver`'s.
//!
//! ```no_run
//! use async_net::TcpListener;
//! use sse_async_std::server::{read_request, serve_stream, AsyncIo, Broker, BrokerConfig, Cursor, FuturesIo, ServeConfig, Subscription};
//! use std::time::Instant;
//!
//! # async fn run() -> std::io::Result<()> {
//! let broker = Broker::new(BrokerConfig::new());
//! let listener = TcpListener::bind("127.0.0.1:8080").await?;
//! loop {
//!     let (socket, _) = listener.accept().await?;
//!     let broker = broker.clone();
//!     // `smol::spawn(..).detach()` or `async_std::task::spawn(..)`.
//!     let task = async move {
//!         let mut socket = FuturesIo::new(socket);
//!         let Ok((request, _body)) = read_request(&mut socket, Default::default()).await else { return };
//!         let cursor = Cursor::from_last_event_id(request.last_event_id());
//!         let subscriber = broker.subscribe(Subscription::new(["news"]), cursor, Instant::now());
//!         let _ = serve_stream(&AsyncIo, &mut socket, &request, subscriber, &ServeConfig::new()).await;
//!     };
//!     # drop(task);
//! }
//! # }
//! ```

pub use crate::rt::{AsyncIo, FuturesIo};
pub use sse_driver::server::*;
