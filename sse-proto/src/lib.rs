//! Sans-IO Server-Sent Events: the `text/event-stream` format as pure state
//! machines, with no sockets, no clocks and no async.
//!
//! # Decoding
//!
//! [`Decoder`] implements the WHATWG HTML "event stream interpretation"
//! (section 9.2.6) exactly: one leading BOM skipped, CR, LF and CRLF line ends
//! (also when a CRLF is split across reads), comments, `data` lines joined with
//! LF, `event` reset after each dispatch, `id` persisting across events (and
//! ignored when it holds NUL), `retry` accepted only as ASCII digits, the
//! unfinished block discarded at end of input, and invalid UTF-8 replaced with
//! U+FFFD. Its output does not depend on how the input is split.
//!
//! The run loop is: hand the decoder what the transport read
//! ([`Decoder::handle_bytes`] or, without a copy, [`Decoder::handle_chunk`]),
//! then drain [`Decoder::poll_frame`] until it returns `Ok(None)`; at the end
//! of the body call [`Decoder::handle_eof`] and drain once more.
//!
//! ```
//! use sse_proto::{Decoder, Frame};
//!
//! let mut decoder = Decoder::new();
//! for chunk in [&b"data: hel"[..], b"lo\n\nid: 1\ndata: a\ndata: b\n", b"\n"] {
//!     decoder.handle_bytes(chunk);
//!     while let Some(frame) = decoder.poll_frame()? {
//!         if let Frame::Event(event) = frame {
//!             println!("{} {:?} (id {:?})", event.event_type(), event.data(), event.id());
//!         }
//!     }
//! }
//! decoder.handle_eof();
//! assert_eq!(decoder.poll_frame()?, None);
//! assert_eq!(decoder.last_event_id(), "1");
//! # Ok::<(), sse_proto::DecodeError>(())
//! ```
//!
//! Untrusted input cannot make the decoder panic or grow without bound:
//! [`Limits`] caps the line length and the event size, and a violation is a
//! typed [`DecodeError`] after which the decoder stays terminal.
//!
//! Decoded fields are [`Str`]s: short ones are stored inline, long ones share
//! the input chunk, so a small event costs no allocation and a large data
//! line no copy.
//!
//! # Encoding
//!
//! [`OutgoingEvent`], [`encode_comment`] and [`encode_retry`] write into a
//! caller-owned `BytesMut`. Ids and names are validated when built
//! ([`EventId`], [`EventName`]; a literal one by a `const fn` at compile
//! time, [`EventName::from_static`]) or when set from a borrowed string
//! ([`OutgoingEvent::try_id`], [`OutgoingEvent::try_event`]), so encoding
//! cannot fail and no field can inject another. `decode(encode(event))` gives the event back, with line
//! ends in the data normalised to LF.
//!
//! ```
//! use sse_proto::{Decoder, EventId, OutgoingEvent};
//!
//! let id = EventId::new("42")?;
//! let frame = OutgoingEvent::new("two\nlines").id(&id).to_bytes(); // encode once, share it
//!
//! let mut decoder = Decoder::new();
//! decoder.handle_chunk(frame);
//! let event = decoder.poll_event()?.unwrap();
//! assert_eq!((event.data(), event.id()), ("two\nlines", "42"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The reconnecting client
//!
//! [`client::EventSource`] is the WHATWG `EventSource` processing model as a
//! state machine: it says which request to make ([`client::Output::Connect`]),
//! judges each response head, decodes the body, and decides when and where to
//! reconnect (reconnection time from `retry`, exponential backoff with seeded
//! jitter, `Last-Event-ID`, redirects, an idle timeout). Time is passed in as
//! any instant type (`std::time::Instant`, tokio's, or a test clock); the
//! driver does the networking and the sleeping, following
//! [`client::EventSource::poll_timeout`]. With feature `http1`,
//! `client::Connection` adds HTTP/1.1 to it: sockets to open, request
//! bytes to write, response bytes to read.
//!
//! # The server side
//!
//! [`server`] holds what an SSE server needs besides the encoder: the
//! [`server::ReplayLog`] of pre-encoded frames for `Last-Event-ID` resumption,
//! the topic [`server::Selector`]s (exact, `*`, URI templates, and with
//! feature `urlpattern` URL patterns) and the [`server::Router`] of
//! subscribers, and the [`server::StreamWriter`] that turns
//! batches of frames into the body of a response (chunked, keep-alive,
//! `retry:`, gzip with feature `gzip`). With feature `broker`,
//! [`server::Broker`] ties them into a publish/subscribe hub shared by the
//! runtime adapters.
//!
//! # HTTP/1.1 (feature `http1`)
//!
//! [`http1`] is a sans-IO HTTP/1.1 codec shared by the runtime adapters: URL
//! parsing and `Location` resolution, a request head writer that cannot
//! inject headers, incremental response and request head parsers with size
//! limits, a body decoder for chunked, length-delimited and close-delimited
//! bodies, and SSE response framing for servers.
//!
//! # Drivers (feature `std`)
//!
//! Everything here is sans-IO: the `sse-driver` crate holds the driving
//! loops (the reconnecting client stream, the event-stream server loop),
//! written once over a small runtime abstraction, and `sse-tokio` and
//! `sse-async-std` bind them to their runtimes. Feature `std` adds what
//! needs the standard library (`std::io` errors of the server side) and
//! enables `http1`.
//!
//! # `no_std`
//!
//! Without the `std` feature the crate is `no_std` and needs only `alloc`,
//! with or without `http1`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![no_std]
#![warn(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// The core reads no clock (`clippy.toml` disallows the clock reads of
// `std::time`): the caller passes the time in.
#![deny(clippy::disallowed_methods)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod client;
mod decode;
mod encode;
mod event;
mod field;
#[cfg(feature = "http1")]
pub mod http1;
mod ip_block;
mod limits;
/// Without feature `http1`, only what the client and the server share with
/// the codec: field-value facts and chunk framing.
#[cfg(not(feature = "http1"))]
mod http1 {
    pub(crate) mod chunk;
    pub(crate) mod value;
}
mod scan;
pub mod server;
mod str;
#[cfg(test)]
mod test_support;

pub use client::{ClientConfig, EventSource};
pub use decode::{DecodeError, Decoder, Frame, Limits};
pub use encode::{OutgoingEvent, comment_len, encode_comment, encode_retry};
pub use event::{Event, EventRef};
pub use field::{EventId, EventName, InvalidField};
pub use ip_block::IpBlock;
pub use str::{FromUtf8Error, Str};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
