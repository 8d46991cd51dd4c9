//! The server side for tokio: event-stream responses fed by a [`Broker`].
//!
//! The [`Broker`] (from `sse-proto`, shared with the other runtime
//! adapters) holds the history and the topic routing: publish with
//! [`Broker::publish`], subscribe with [`Broker::subscribe`]. This module
//! serves a [`Subscriber`] as a `text/event-stream` response:
//!
//! * over any tokio socket wrapped in [`TokioIo`], with the lean HTTP/1.1
//!   path of `sse-driver` ([`read_request`], then [`serve_stream`], on the
//!   [`Tokio`] runtime): a few hundred bytes per idle connection, frames
//!   written with one vectored write per batch;
//! * as a hyper 1 body ([`EventStream`], feature `hyper`), or an axum
//!   response (feature `axum`: [`EventStream`] implements `IntoResponse`).
//!
//! Either way the stream sends `retry:` first when configured, a keep-alive
//! comment after [`StreamConfig::heartbeat`] of idleness, every batch of
//! queued frames at once, gzip with a flush per batch when the client
//! accepts it (feature `gzip`), and on [`Broker::shutdown`] a last `retry:`
//! before it ends. A subscriber whose socket does not keep up is ended by
//! the broker ([`Ended::Lagged`]) without slowing anyone else.
//!
//! ```no_run
//! use sse_tokio::server::{read_request, serve_stream, Broker, BrokerConfig, Closing, Cursor, ServeConfig, Subscription};
//! use sse_tokio::rt::{Tokio, TokioIo};
//! use std::time::Instant;
//! use tokio::net::TcpListener;
//!
//! # async fn run() -> std::io::Result<()> {
//! let broker = Broker::new(BrokerConfig::new());
//! let listener = TcpListener::bind("127.0.0.1:8080").await?;
//! loop {
//!     let (socket, _) = listener.accept().await?;
//!     let broker = broker.clone();
//!     tokio::spawn(async move {
//!         let mut socket = TokioIo::new(socket);
//!         let Ok((request, _body)) = read_request(&mut socket, Default::default()).await else { return };
//!         let cursor = Cursor::from_last_event_id(request.last_event_id());
//!         let subscriber = broker.subscribe(Subscription::new(["news"]), cursor, Instant::now());
//!         let end = serve_stream(&Tokio, &mut socket, &request, subscriber, &ServeConfig::new()).await;
//!         // The client closed first: a reset frees its port at once (see `Closing`).
//!         if end.is_ok_and(|end| end.closing() == Closing::Reset) {
//!             let _ = socket.into_inner().set_zero_linger();
//!         }
//!     });
//! }
//! # }
//! ```

#[cfg(feature = "hyper")]
mod body;

pub use crate::rt::{Tokio, TokioIo};
#[cfg(feature = "hyper")]
pub use body::EventStream;
#[cfg(feature = "axum")]
pub use body::LastEventId;
pub use sse_driver::server::*;
