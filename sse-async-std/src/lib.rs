//! A reconnecting Server-Sent Events (`EventSource`) client for smol,
//! async-std and every other executor of the `futures-io` world.
//!
//! [`EventSource`] is a [`Stream`](futures_core::Stream) of [`Result<Event, Error>`]. It opens the
//! stream, follows redirects, decodes the event stream, and reconnects after
//! the reconnection time (with backoff and jitter, sending `Last-Event-ID`)
//! whenever the connection drops, exactly as browsers do. Every protocol
//! decision is made by [`sse_proto::client::Connection`], and the driving
//! loop is `sse-driver`'s, written once for every runtime; this crate is
//! its binding to `async-io` ([`rt::AsyncIo`]): [`async_net::TcpStream`]s
//! (through the [`futures_io`] traits), [`async_io::Timer`]s and, with
//! feature `rustls`, `futures-rustls`.
//!
//! The sockets and timers are driven by the `async-io` reactor, which runs
//! on its own thread when nothing else drives it: the source works under
//! `smol::block_on`, `async_std::task::block_on`, `futures::executor` or any
//! other executor, without depending on async-std itself.
//!
//! What the stream yields:
//!
//! * `Ok(Event::Open)` each time a connection is established,
//! * `Ok(Event::Message(_))` for every event,
//! * `Ok(Event::Reconnecting { .. })` when the connection was lost and will
//!   be retried (with the error that caused it, if any): the stream goes on,
//! * `Err(_)` once, when the source fails for good (a status other than 200
//!   or 204, a wrong `Content-Type`, reconnecting disabled or given up, an
//!   `https` URL without the `rustls` feature), after which the stream ends,
//! * the end of the stream (`None`) without an error when the server
//!   answers `204 No Content`, after [`EventSource::close`], or when a
//!   one-shot stream (reconnecting off) ends cleanly.
//!
//! ```no_run
//! use sse_async_std::{ClientConfig, Event, EventSource};
//!
//! # async fn run() -> Result<(), sse_async_std::Error> {
//! let mut events = EventSource::new(ClientConfig::new("http://127.0.0.1:8080/events"))?;
//! while let Some(item) = events.next().await {
//!     match item? {
//!         Event::Open => println!("connected"),
//!         Event::Message(message) => println!("{}: {}", message.event_type(), message.data()),
//!         Event::Reconnecting { delay, .. } => println!("reconnecting in {delay:?}"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! `https` needs the `rustls` feature: with it, TLS runs through
//! [`futures-rustls`](https://docs.rs/futures-rustls) with the `ring` crypto
//! provider, trusting the Mozilla roots of
//! [`webpki-roots`](https://docs.rs/webpki-roots) unless
//! [`EventSource::tls_config`](sse_driver::client::EventSource::tls_config)
//! supplies a `rustls::ClientConfig` of its own; the server name (SNI) is the URL's host. Without the feature an
//! `https` URL (or a redirect to one) is [`Error::TlsNotSupported`]. A
//! failed handshake (an untrusted certificate, say) is a socket error: an
//! [`Error::Io`] whose inner error is the `rustls::Error`, behind the next
//! [`Event::Reconnecting`] or [`Error::Closed`].
//!
//! Polling the stream allocates nothing per event: the stream is a
//! hand-written state machine over the socket and one re-armed timer. Only opening a connection boxes its (DNS lookup, connect and TLS
//! handshake) future.
//!
//! The server side is in [`server`]: event-stream responses fed by a
//! publish/subscribe [`server::Broker`] (with history replay for
//! `Last-Event-ID`), served over any `futures-io` socket.
//!
//! What is this crate's own: [`rt`], the binding; everything else is
//! `sse-driver`'s loops and `sse-proto`'s machines.

#![cfg_attr(docsrs, feature(doc_cfg))]
pub mod rt;
pub mod server;

pub use sse_driver::events::{Events, EventsError, ReadChunks, read_events};

pub use sse_driver::client::{
    BodyLimits, ClientConfig, CloseReason, ERROR_BODY_LIMIT, Error, ErrorResponse, Event,
    HeadLimits, Item, Jitter, Limits, Proxies, Proxy, ProxyError, ReadyState, ReconnectPolicy,
    ReconnectReason, RedirectTarget,
};
/// The `rustls` this crate speaks TLS with (feature `rustls`), to build a
/// [`rustls::ClientConfig`] for
/// [`EventSource::tls_config`](sse_driver::client::EventSource::tls_config).
#[cfg(feature = "rustls")]
pub use sse_driver::rustls;

/// A reconnecting Server-Sent Events client on the `async-io` reactor: a
/// [`Stream`](futures_core::Stream) of [`Result<Event, Error>`](Item) (see
/// the [crate docs](crate) for what it yields and when it ends). It is
/// `Send` and `Unpin`; dropping it closes the connection.
pub type EventSource = sse_driver::client::EventSource<rt::AsyncIo>;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
