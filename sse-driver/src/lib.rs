//! The driving loops of the `sse` crates, written once over a small
//! runtime abstraction.
//!
//! `sse-proto` makes every decision of the protocol without I/O; this crate
//! is the one place where those decisions meet sockets and timers:
//!
//! * [`client::EventSource`]: the reconnecting client stream, a
//!   [`Stream`](futures_core::Stream) of events over
//!   [`sse_proto::client::Connection`];
//! * [`events::Events`]: the events of any stream of byte chunks (the body
//!   of a response from the HTTP client an application already has), and
//!   [`events::read_events`] for a `futures-io` reader;
//! * [`server`]: reading a request head and serving a
//!   [`Subscriber`](sse_proto::server::Subscriber) as an event stream over
//!   [`sse_proto::server::StreamFeed`].
//!
//! Both are generic over [`rt::Runtime`] (a clock, re-armable timers, and
//! opening TCP sockets) and [`rt::Transport`] (a connected byte stream).
//! TLS (feature `rustls`) and forward proxies are this crate's own, run
//! over whatever socket the runtime opened: [`tls::handshake`] starts TLS
//! over any transport, a proxy's `CONNECT` tunnel included.
//! The runtime crates are bindings of these traits: `sse-tokio` for tokio,
//! `sse-async-std` for smol and async-std (futures-io). Use one of them;
//! this crate is for writing another binding, or for code generic over the
//! runtime.
//!
//! ```
//! use std::io::{self, IoSlice};
//! use std::task::{Context, Poll};
//! use std::time::Instant;
//! use sse_driver::rt::{Connecting, Runtime, Timer, Transport};
//!
//! /// A binding for a runtime that never fires and has no sockets: the
//! /// shape every real binding fills in.
//! #[derive(Clone, Default)]
//! struct Inert;
//!
//! struct NoTimer;
//! impl Timer for NoTimer {
//!     fn reset(&mut self, _deadline: Instant) {}
//!     fn poll_fired(&mut self, _cx: &mut Context<'_>) -> Poll<()> { Poll::Pending }
//! }
//!
//! struct NoSocket;
//! impl Transport for NoSocket {
//!     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Ready(Ok(0)) }
//!     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
//!         Poll::Ready(Ok(b.iter().map(|s| s.len()).sum()))
//!     }
//!     fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
//!     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
//! }
//!
//! impl Runtime for Inert {
//!     type Timer = NoTimer;
//!     type Socket = NoSocket;
//!     fn now(&self) -> Instant { Instant::now() }
//!     fn timer(&self, _deadline: Instant) -> NoTimer { NoTimer }
//!     fn connect(&self, _host: String, _port: u16) -> Connecting<NoSocket> {
//!         Box::pin(std::future::ready(Ok(NoSocket)))
//!     }
//! }
//!
//! // Proxies set here, or read from the environment (`HTTPS_PROXY`, ...).
//! let config = sse_proto::ClientConfig::new("http://127.0.0.1:8080/events")
//!     .proxies(sse_proto::client::Proxies::none());
//! let source = sse_driver::client::EventSource::<Inert>::new(config)?;
//! # drop(source);
//! # Ok::<(), sse_driver::client::Error>(())
//! ```
//!
//! The decisions the loops make themselves are few and made once (module
//! `io`): `Interrupted` is retried, a write that takes nothing is
//! `WriteZero`, what a transport buffers (TLS records) is flushed after the
//! request and after every batch of events, and a served stream is closed
//! gracefully within a bounded grace unless its socket stopped taking
//! bytes.
//!
//! Features: `rustls` (https for the client, trusting the system's
//! certificates), `webpki-roots` (the Mozilla roots compiled in), `gzip`
//! (compressed event streams), `json` (`server::Message::json`), `tracing`
//! (reconnects, warnings and socket errors logged).

#![cfg_attr(docsrs, feature(doc_cfg))]
mod alarm;
pub mod client;
pub mod events;
mod io;
pub mod rt;
pub mod server;
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub mod tls;

#[cfg(feature = "rustls")]
pub use rustls;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
