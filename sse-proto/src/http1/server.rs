//! The server side: [`RequestParser`] and [`RequestHead`] for incoming
//! requests, [`Response`] for the response head, and chunk framing for the
//! event stream ([`encode_chunk`], [`LAST_CHUNK`](super::LAST_CHUNK)).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use super::body::BodyKind;
use super::chunk::ChunkSize;
use super::field::{self, BuildError, FramingError, Header};
use super::head::{self, HeadError, HeadKind, HeadLimits, HeadReader, Parsed, Version};
use super::response::{framing, keep_alive};
use crate::str::Str;

head::head_parser!(
    /// An incremental parser for a request head; the counterpart of
    /// [`ResponseParser`](super::ResponseParser), with the same contract and
    /// limits.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use sse_proto::http1::{RequestParser, Version};
    ///
    /// let mut parser = RequestParser::new();
    /// let mut buf = BytesMut::from(&b"GET /events HTTP/1.1\r\nHost: h\r\nLast-Event-ID: 7\r\n\r\n"[..]);
    /// let head = parser.parse_buf(&mut buf)?.unwrap();
    /// assert_eq!((head.method(), head.target(), head.version()), ("GET", "/events", Version::Http11));
    /// assert_eq!(head.last_event_id(), Some("7"));
    /// # Ok::<(), sse_proto::http1::HeadError>(())
    /// ```
    RequestParser, RequestKind, RequestHead, Request
);

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    method: Str,
    target: Str,
    version: Version,
    headers: Vec<Header>,
}

impl RequestHead {
    /// The method (case-sensitive: `GET`, not `get`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request-target as sent (usually origin form: `/path?query`).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The target's path (before any `?`).
    pub fn path(&self) -> &str {
        super::url::split_target(&self.target).0
    }

    /// The target's query (after the first `?`), if any.
    pub fn query(&self) -> Option<&str> {
        super::url::split_target(&self.target).1
    }

    /// The version of the request line.
    pub fn version(&self) -> Version {
        self.version
    }

    head::field_accessors!();

    /// The `Last-Event-ID` value a reconnecting EventSource sends, if
    /// present and UTF-8.
    pub fn last_event_id(&self) -> Option<&str> {
        self.header_str("last-event-id")
    }

    /// How the request body is delimited: `chunked`, `Content-Length`, or
    /// no body (`Length(0)`) when neither is present.
    ///
    /// # Errors
    /// [`FramingError`] when the framing fields are invalid, conflicting or
    /// unsupported: answer `400` and close the connection.
    pub fn body_kind(&self) -> Result<BodyKind, FramingError> {
        framing(&self.headers, self.version, false)
    }

    /// Whether the client will accept more responses on this connection
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
    /// `Connection: keep-alive`).
    pub fn keep_alive(&self) -> bool {
        keep_alive(&self.headers, self.version)
    }
}

/// How a [`Response`] body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`: frame each piece with [`encode_chunk`]
    /// and end with [`LAST_CHUNK`](super::LAST_CHUNK). Needs an HTTP/1.1 client.
    Chunked,
    /// `Connection: close`: the body is the raw bytes until the server
    /// closes the connection (for HTTP/1.0 clients).
    Close,
    /// `Content-Length`: exactly this many bytes (for example an error
    /// response).
    Length(u64),
}

impl Framing {
    /// What to use for an open-ended body (an event stream) answering
    /// `request`: chunked for HTTP/1.1, close-delimited for HTTP/1.0.
    pub fn for_stream(request: &RequestHead) -> Framing {
        match request.version() {
            Version::Http11 => Framing::Chunked,
            Version::Http10 => Framing::Close,
        }
    }
}

/// A response head to send, validated when built.
///
/// ```
/// use bytes::BytesMut;
/// use sse_proto::http1::{Framing, Response, encode_chunk, LAST_CHUNK};
///
/// let mut buf = BytesMut::new();
/// Response::event_stream().encode(&mut buf);
/// assert_eq!(
///     &buf[..],
///     b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
///       Transfer-Encoding: chunked\r\n\r\n"
/// );
/// buf.clear();
/// encode_chunk(&mut buf, b"data: hi\n\n");
/// buf.extend_from_slice(LAST_CHUNK);
/// assert_eq!(&buf[..], b"a\r\ndata: hi\n\n\r\n0\r\n\r\n");
///
/// let mut not_found = Response::new(404)?;
/// not_found.framing(Framing::Length(0));
/// buf.clear();
/// not_found.encode(&mut buf);
/// assert_eq!(&buf[..], b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
/// # Ok::<(), sse_proto::http1::BuildError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<Header>,
    framing: Framing,
}

impl Response {
    /// A response with this status, no fields, and [`Framing::Chunked`].
    /// The reason phrase is the standard one for common codes (empty for
    /// others).
    ///
    /// # Errors
    /// [`BuildError::InvalidStatus`] outside `100..=999`.
    pub fn new(status: u16) -> Result<Response, BuildError> {
        if !(100..=999).contains(&status) {
            return Err(BuildError::InvalidStatus);
        }
        Ok(Response {
            status,
            headers: Vec::new(),
            framing: Framing::Chunked,
        })
    }

    /// `200 OK` with `Content-Type: text/event-stream`,
    /// `Cache-Control: no-cache` and [`Framing::Chunked`] (use
    /// [`Response::framing`] with [`Framing::for_stream`] to serve HTTP/1.0
    /// clients too).
    pub fn event_stream() -> Response {
        Response {
            status: 200,
            headers: vec![
                Header::parsed(
                    Str::from_static("Content-Type"),
                    Bytes::from_static(b"text/event-stream"),
                ),
                Header::parsed(
                    Str::from_static("Cache-Control"),
                    Bytes::from_static(b"no-cache"),
                ),
            ],
            framing: Framing::Chunked,
        }
    }

    /// Adds a field.
    ///
    /// # Errors
    /// [`BuildError::InvalidHeaderName`] or
    /// [`BuildError::InvalidHeaderValue`] (see [`Header::new`]), and
    /// [`BuildError::ReservedHeader`] for `Content-Length`,
    /// `Transfer-Encoding` and `Connection` (set by the framing).
    pub fn header(
        &mut self,
        name: &str,
        value: impl AsRef<[u8]>,
    ) -> Result<&mut Response, BuildError> {
        let header = Header::new(name, value)?;
        let reserved = ["content-length", "transfer-encoding", "connection"];
        field::push_unreserved(&mut self.headers, header, &reserved)?;
        Ok(self)
    }

    /// Sets a field, replacing every field of that name added before (for
    /// example the `Cache-Control` of [`Response::event_stream`]).
    ///
    /// # Errors
    /// As [`Response::header`].
    pub fn replace_header(
        &mut self,
        name: &str,
        value: impl AsRef<[u8]>,
    ) -> Result<&mut Response, BuildError> {
        let header = Header::new(name, value)?;
        self.headers.retain(|h| !h.is(name));
        self.header(name, header.value())
    }

    /// Sets the framing (default [`Framing::Chunked`]).
    pub fn framing(&mut self, framing: Framing) -> &mut Response {
        self.framing = framing;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The fields added, in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Appends the head (status line, fields, the framing field and the
    /// blank line) to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        // Writing to a BytesMut cannot fail.
        let _ = write!(
            dst,
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status).unwrap_or("")
        );
        for header in &self.headers {
            header.encode(dst);
        }
        match self.framing {
            Framing::Chunked => dst.put_slice(b"Transfer-Encoding: chunked\r\n"),
            Framing::Close => dst.put_slice(b"Connection: close\r\n"),
            Framing::Length(n) => {
                let _ = write!(dst, "Content-Length: {n}\r\n");
            }
        }
        dst.put_slice(b"\r\n");
    }
}

/// The standard reason phrase of a status code (RFC 9110), for the
/// common ones; `None` for the others.
pub fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

/// Appends `data` framed as one HTTP chunk: `{len:x}\r\n`, the data, `\r\n`.
/// Empty `data` writes nothing (an empty chunk would end the body; send
/// [`LAST_CHUNK`](super::LAST_CHUNK) for that).
pub fn encode_chunk(dst: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    dst.reserve(data.len() + 20);
    encode_chunk_head(dst, data.len());
    dst.put_slice(data);
    dst.put_slice(b"\r\n");
}

/// Appends only the size line of a chunk of `len` bytes (`{len:x}\r\n`),
/// for writing the data from its own buffer without a copy: send the size
/// line, the data, then `\r\n`. `len` must not be 0 (see
/// [`encode_chunk`]); for 0 nothing is written.
pub fn encode_chunk_head(dst: &mut BytesMut, len: usize) {
    if len != 0 {
        dst.put_slice(ChunkSize::new(len).as_ref());
    }
}

/// The head from httparse's complete parse of `bytes`.
fn build(
    bytes: &Bytes,
    req: &httparse::Request<'_, '_>,
    version: Version,
) -> Result<RequestHead, HeadError> {
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(HeadError::InvalidRequestLine);
    };
    Ok(RequestHead {
        method: Str::from(method),
        target: Str::from(target),
        version,
        headers: head::convert_headers(bytes, req.headers),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Parsed<RequestHead>, HeadError> {
        RequestParser::new().parse(input)
    }

    #[test]
    fn parses_requests() {
        let input = b"GET /a?b=c HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi";
        let Ok(Parsed::Complete { head, len }) = parse(input) else {
            panic!()
        };
        assert_eq!(len, input.len() - 2);
        assert_eq!((head.path(), head.query()), ("/a", Some("b=c")));
        assert!(head.keep_alive());
        assert_eq!(head.body_kind(), Ok(BodyKind::Length(2)));
        assert_eq!(Framing::for_stream(&head), Framing::Close);
    }

    #[test]
    fn request_errors() {
        assert_eq!(
            parse(b"GET /a HTTP/3\r\n\r\n"),
            Err(HeadError::InvalidVersion)
        );
        assert_eq!(
            parse(b"G(T /a HTTP/1.1\r\n\r\n"),
            Err(HeadError::InvalidRequestLine)
        );
        assert_eq!(
            parse(b"GET /a HTTP/1.1\r\nA\0: b\r\n\r\n"),
            Err(HeadError::InvalidHeaderName)
        );
        let Ok(Parsed::Complete { head, .. }) =
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
        else {
            panic!()
        };
        assert_eq!(
            head.body_kind(),
            Err(FramingError::TransferEncodingWithContentLength)
        );
    }

    #[test]
    fn chunks() {
        let mut buf = BytesMut::new();
        encode_chunk(&mut buf, &[]);
        assert!(buf.is_empty());
        encode_chunk(&mut buf, &[b'x'; 300]);
        assert!(buf.starts_with(b"12c\r\nxxx"));
        assert!(buf.ends_with(b"x\r\n"));
        assert_eq!(Response::new(99), Err(BuildError::InvalidStatus));
        let mut r = Response::new(599).unwrap();
        assert_eq!(
            r.header("connection", "x").err(),
            Some(BuildError::ReservedHeader)
        );
    }
}
