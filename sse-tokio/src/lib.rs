//! Server-Sent Events for tokio: a reconnecting `EventSource` client, and
//! (in [`server`]) event-stream responses fed by a publish/subscribe broker
//! with topics, history replay, keep-alive, gzip and backpressure, over any
//! socket or as a hyper/axum body.
//!
//! # The client
//!
//!
//! [`EventSource`] is a [`Stream`](futures_core::Stream) of [`Result<Event, Error>`]. It opens the
//! stream, follows redirects, decodes the event stream, and reconnects after
//! the reconnection time (with backoff and jitter, sending `Last-Event-ID`)
//! whenever the connection drops, exactly as browsers do. Every protocol
//! decision is made by [`sse_proto::client::Connection`], and the driving
//! loop is `sse-driver`'s, written once for every runtime; this crate is
//! its binding to tokio ([`rt::Tokio`]): tokio's sockets, timers and, with
//! feature `rustls`, `tokio-rustls`.
//!
//! What the stream yields:
//!
//! * `Ok(Event::Open)` each time a connection is established,
//! * `Ok(Event::Message(_))` for every event,
//! * `Ok(Event::Reconnecting { .. })` when the connection was lost and will
//!   be retried (with the error that caused it, if any): the stream goes on,
//! * `Err(_)` once, when the source fails for good (a status other than 200
//!   or 204, a wrong `Content-Type`, reconnecting disabled or given up, an
//!   `https` URL), after which the stream ends,
//! * the end of the stream (`None`) without an error when the server
//!   answers `204 No Content`, after [`EventSource::close`], or when a
//!   one-shot stream (reconnecting off) ends cleanly.
//!
//! ```no_run
//! use sse_tokio::{ClientConfig, Event, EventSource};
//!
//! # async fn run() -> Result<(), sse_tokio::Error> {
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
//! [`tokio-rustls`](https://docs.rs/tokio-rustls) with the `ring` crypto
//! provider, trusting the Mozilla roots of
//! [`webpki-roots`](https://docs.rs/webpki-roots) unless
//! [`EventSource::tls_config`](sse_driver::client::EventSource::tls_config)
//! supplies a `rustls::ClientConfig` of its own; the server name (SNI) is the URL's host. Without the feature an
//! `https` URL (or a redirect to one) is [`Error::TlsNotSupported`]. A
//! failed handshake (an untrusted certificate, say) is a socket error: an
//! [`Error::Io`] whose inner error is the `rustls::Error`, behind the next
//! [`Event::Reconnecting`] or [`Error::Closed`].
//!
//! With the `tracing` feature, reconnects, transport errors and warnings are
//! logged with [`tracing`](https://docs.rs/tracing).
//!
//! Polling the stream allocates nothing per event: the stream is a
//! hand-written state machine over the socket and one reusable
//! [`tokio::time::Sleep`]. Only opening a connection boxes its (DNS lookup
//! and) connect future.
//!
//! With feature `reqwest`, [`reqwest::EventSource`] is the same client
//! stream (the same items, the same machine deciding) over your own
//! `reqwest::Client`: its proxies, TLS, HTTP/2, cookie store, default
//! headers, timeouts and connector layers apply to every attempt.
//!
//! What is tokio's own here: [`rt`] (the binding) and, in [`server`], the
//! hyper body and axum response ([`server::EventStream`]).

#![cfg_attr(docsrs, feature(doc_cfg))]
#[cfg(feature = "codec")]
pub mod codec;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod rt;
pub mod server;

pub use sse_driver::events::{Events, EventsError};

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

/// A reconnecting Server-Sent Events client on tokio: a
/// [`Stream`](futures_core::Stream) of [`Result<Event, Error>`](Item) (see
/// the [crate docs](crate) for what it yields and when it ends).
///
/// Nothing happens until it is polled (inside a tokio runtime, with the
/// `net` and `time` drivers enabled). Dropping it (or calling
/// [`close`](sse_driver::client::EventSource::close)) closes the
/// connection. It is `Send` and `Unpin`.
pub type EventSource = sse_driver::client::EventSource<rt::Tokio>;

#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
