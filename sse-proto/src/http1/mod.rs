//! Sans-IO HTTP/1.1, just enough for Server-Sent Events (feature `http1`).
//!
//! Shared by the async adapters and a server, so that none of them writes
//! HTTP itself. Like the rest of the crate it owns no socket: it writes
//! into and reads from caller-owned buffers.
//!
//! Client side:
//! - [`Url`] parses an absolute `http`/`https` URL (the host and port to
//!   connect to, the origin-form target) and resolves `Location` values
//!   with [`Url::join`];
//! - [`Request`] writes a request head; names and values are validated when
//!   they are set, so header injection is impossible;
//! - [`ResponseParser`] parses a response head incrementally into a
//!   [`ResponseHead`], whose [`ResponseHead::body_kind`] applies RFC 9112
//!   6.3 (conflicting `Content-Length`, or `Transfer-Encoding` with
//!   `Content-Length`, are errors);
//! - [`BodyDecoder`] decodes a chunked, `Content-Length` or close-delimited
//!   body into zero-copy pieces.
//!
//! Server side: [`RequestParser`] and [`RequestHead`], [`Response`] for the
//! response head, and [`encode_chunk`] / [`LAST_CHUNK`] for chunk framing.
//!
//! ```
//! use bytes::BytesMut;
//! use sse_proto::http1::{BodyDecoder, Request, ResponseParser, Url};
//!
//! let url = Url::parse("http://localhost:8080/events")?;
//! let mut out = BytesMut::new();
//! Request::get(url.clone()).header("Accept", "text/event-stream")?.encode(&mut out);
//! // ... connect to (url.host(), url.port()), write `out`, read into `buf`:
//! let mut buf = BytesMut::from(
//!     &b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 12\r\n\r\ndata: hi\n\n"[..],
//! );
//! let head = ResponseParser::new().parse_buf(&mut buf)?.expect("complete head");
//! assert!(head.is_event_stream());
//! let mut body = BodyDecoder::new(head.body_kind("GET")?);
//! let piece = body.decode(&mut buf)?.expect("body bytes");
//! assert_eq!(&piece[..], b"data: hi\n\n");
//! // ... feed `piece` to an sse_proto::Decoder, read more, and at EOF:
//! assert!(body.handle_eof().is_err()); // 10 of 12 bytes: truncated
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Limits, all configurable: heads at most 16 KiB with at most 64 fields
//! ([`HeadLimits`]); chunk-size lines at most 4 KiB and trailers at most
//! 16 KiB ([`BodyLimits`]). Not supported: transfer codings other than
//! `chunked`, obsolete line folding, URLs with credentials or non-ASCII
//! hosts, and parsing HTTP-dates (`Retry-After` dates are returned as
//! text).

mod body;
pub(crate) mod chunk;
mod field;
mod head;
mod request;
mod response;
mod server;
mod url;
pub(crate) mod value;

pub use body::{BodyDecoder, BodyError, BodyKind, BodyLimits};
pub use chunk::{ChunkSize, LAST_CHUNK};
pub use field::{BuildError, FramingError, Header};
pub use head::{HeadError, HeadLimits, Parsed, Version};
pub use request::Request;
pub use response::{ResponseHead, ResponseParser, RetryAfter};
pub use server::{
    Framing, RequestHead, RequestParser, Response, encode_chunk, encode_chunk_head, reason_phrase,
};
pub use url::{Scheme, Url, UrlError};
