//! What the request and response head parsers share: [`HeadLimits`],
//! [`HeadError`], [`Version`], [`Parsed`], and the incremental scan for the
//! blank line that ends a head.

use alloc::vec::Vec;
use core::fmt;

use bytes::{Bytes, BytesMut};

use super::field::Header;
use crate::str::Str;

crate::limits::size_limits! {
    /// Bounds on a message head, so a peer cannot make a parser buffer without
    /// limit.
    ///
    /// ```
    /// use sse_proto::http1::HeadLimits;
    ///
    /// let limits = HeadLimits::default().max_head_len(8 * 1024).max_headers(32);
    /// assert_eq!((limits.head_len(), limits.headers()), (8 * 1024, 32));
    /// ```
    pub struct HeadLimits {
        /// Sets the largest head accepted, in bytes: the start line, the
        /// fields and the blank line that ends them (default 16 KiB).
        max_head_len: 16 * 1024, head_len, "The largest head accepted, in bytes.";
        /// Sets the most header fields accepted (default 64).
        max_headers: 64, headers, "The most header fields accepted.";
    }
}

/// Why a request or response head cannot be parsed.
///
/// Every one of these is fatal for the connection: answer `400` (server) or
/// close it (client).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeadError {
    /// The head is longer than [`HeadLimits::head_len`] without ending.
    TooLarge,
    /// The head has more fields than [`HeadLimits::headers`].
    TooManyHeaders,
    /// The version is not `HTTP/1.0` or `HTTP/1.1`.
    InvalidVersion,
    /// The status line is malformed or the status code is not in
    /// `100..=999`.
    InvalidStatus,
    /// The request line's method or target is malformed.
    InvalidRequestLine,
    /// A field name is not a token, or a line is not a field.
    InvalidHeaderName,
    /// A field value holds a forbidden character (NUL or another control).
    InvalidHeaderValue,
    /// A line ends with CR not followed by LF.
    InvalidLineEnding,
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeadError::TooLarge => {
                "the HTTP head is larger than the limit; raise HeadLimits::max_head_len if the peer is trusted"
            }
            HeadError::TooManyHeaders => {
                "the HTTP head has more header fields than the limit; raise HeadLimits::max_headers if the peer is trusted"
            }
            HeadError::InvalidVersion => {
                "the peer does not speak HTTP/1.0 or HTTP/1.1 (is it HTTP/2 only, or not HTTP at all?)"
            }
            HeadError::InvalidStatus => "malformed HTTP status line",
            HeadError::InvalidRequestLine => "malformed HTTP request line (method or target)",
            HeadError::InvalidHeaderName => "malformed HTTP header line or header name",
            HeadError::InvalidHeaderValue => "HTTP header value holds a forbidden character",
            HeadError::InvalidLineEnding => "HTTP head line ends with CR not followed by LF",
        })
    }
}

impl core::error::Error for HeadError {}

impl HeadError {
    pub(crate) fn from_httparse(e: httparse::Error, request: bool) -> HeadError {
        match e {
            httparse::Error::HeaderName => HeadError::InvalidHeaderName,
            httparse::Error::HeaderValue => HeadError::InvalidHeaderValue,
            httparse::Error::NewLine => HeadError::InvalidLineEnding,
            httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
            httparse::Error::Version => HeadError::InvalidVersion,
            httparse::Error::Status | httparse::Error::Token if !request => {
                HeadError::InvalidStatus
            }
            _ => HeadError::InvalidRequestLine,
        }
    }
}

/// The HTTP version of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
}

impl Version {
    pub(crate) fn from_minor(minor: Option<u8>) -> Result<Version, HeadError> {
        match minor {
            Some(0) => Ok(Version::Http10),
            Some(1) => Ok(Version::Http11),
            _ => Err(HeadError::InvalidVersion),
        }
    }

    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// The outcome of feeding a head parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The head has not ended yet: read more and call again with the
    /// longer input.
    Partial,
    /// The head is complete.
    Complete {
        /// The parsed head.
        head: T,
        /// How many input bytes the head took; what follows is the body
        /// (or the next message).
        len: usize,
    },
}

/// How one kind of head (request or response) is parsed once complete, and
/// how an over-long one is diagnosed.
pub(crate) trait HeadKind {
    /// The parsed head.
    type Head;
    /// Parses a complete head (`bytes` ends with its blank line).
    fn build(bytes: Bytes, limits: HeadLimits) -> Result<Self::Head, HeadError>;
    /// The error for a head that did not end within the size limit: a
    /// syntax error in `window` (the bytes received, cut at the limit) if
    /// there is one, else [`HeadError::TooLarge`].
    fn diagnose(window: &[u8], limits: HeadLimits) -> HeadError;
}

/// Checks httparse's verdict on a complete head of `len` bytes: it must
/// have parsed exactly those bytes.
pub(crate) fn complete(
    parsed: httparse::Result<usize>,
    len: usize,
    request: bool,
) -> Result<(), HeadError> {
    match parsed {
        Ok(httparse::Status::Complete(n)) if n == len => Ok(()),
        Ok(_) => Err(HeadError::InvalidLineEnding),
        Err(e) => Err(HeadError::from_httparse(e, request)),
    }
}

/// Defines an incremental head parser `$parser` for heads of type `$head`,
/// parsed by httparse's `$message` (`Request` or `Response`) and built by
/// the module's `build(bytes, parsed, version)` from a complete parse: the parser, its `HeadKind`
/// (`$kind`), and its four methods. The two parsers differ in nothing else.
macro_rules! head_parser {
    ($(#[$doc:meta])* $parser:ident, $kind:ident, $head:ty, $message:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default)]
        pub struct $parser {
            reader: HeadReader,
        }

        impl $parser {
            /// A parser with the default [`HeadLimits`].
            pub fn new() -> $parser {
                $parser::default()
            }

            /// A parser with the given limits.
            pub fn with_limits(limits: HeadLimits) -> $parser {
                $parser {
                    reader: HeadReader::new(limits),
                }
            }

            /// Parses the head at the start of `input` (all bytes received
            /// so far). On completion the parser is ready for the next head
            /// (the final response after a `100 Continue`, the next
            /// pipelined request), which the caller hands over from the
            /// first byte after the previous one.
            ///
            /// # Errors
            /// A [`HeadError`] when the head is malformed or exceeds the
            /// limits.
            pub fn parse(&mut self, input: &[u8]) -> Result<Parsed<$head>, HeadError> {
                self.reader.parse::<$kind>(input)
            }

            /// Like `parse`, but on completion removes the head from `buf`
            /// (without copying it: the fields share its memory), leaving
            /// what follows it there. `Ok(None)` means the head is not
            /// complete yet: append more bytes to `buf` and call again.
            ///
            /// # Errors
            /// A [`HeadError`] when the head is malformed or exceeds the
            /// limits (the content of `buf` is then unspecified).
            pub fn parse_buf(&mut self, buf: &mut BytesMut) -> Result<Option<$head>, HeadError> {
                self.reader.parse_buf::<$kind>(buf)
            }
        }

        /// How this kind of head is parsed.
        struct $kind;

        impl HeadKind for $kind {
            type Head = $head;

            fn build(bytes: Bytes, limits: HeadLimits) -> Result<$head, HeadError> {
                let mut headers = vec![httparse::EMPTY_HEADER; limits.headers()];
                let mut message = httparse::$message::new(&mut headers);
                let request = stringify!($message) == "Request";
                head::complete(message.parse(&bytes), bytes.len(), request)?;
                let version = Version::from_minor(message.version)?;
                build(&bytes, &message, version)
            }

            fn diagnose(window: &[u8], limits: HeadLimits) -> HeadError {
                let mut headers = vec![httparse::EMPTY_HEADER; limits.headers()];
                let request = stringify!($message) == "Request";
                match httparse::$message::new(&mut headers).parse(window) {
                    Err(e) => HeadError::from_httparse(e, request),
                    Ok(_) => HeadError::TooLarge,
                }
            }
        }
    };
}
pub(crate) use head_parser;

/// The field accessors of a parsed head (a struct with a `headers:
/// Vec<Header>` field): `headers`, `header`, `header_str`.
macro_rules! field_accessors {
    () => {
        /// All fields, in order.
        pub fn headers(&self) -> &[Header] {
            &self.headers
        }

        /// The value of the first field named `name` (ignoring ASCII case).
        pub fn header(&self, name: &str) -> Option<&Bytes> {
            field::first(&self.headers, name)
        }

        /// The value of the first field named `name`, if it is UTF-8.
        pub fn header_str(&self, name: &str) -> Option<&str> {
            self.header(name).and_then(|v| core::str::from_utf8(v).ok())
        }
    };
}
pub(crate) use field_accessors;

/// The incremental machinery both head parsers share: find the end of the
/// head in the bytes added since the last call, enforce the size limit, then
/// parse once.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeadReader {
    limits: HeadLimits,
    scanner: Scanner,
}

impl HeadReader {
    pub(crate) fn new(limits: HeadLimits) -> HeadReader {
        HeadReader {
            limits,
            scanner: Scanner::default(),
        }
    }

    /// See `ResponseParser::parse`.
    pub(crate) fn parse<K: HeadKind>(
        &mut self,
        input: &[u8],
    ) -> Result<Parsed<K::Head>, HeadError> {
        match self.end::<K>(input)? {
            Some(end) => {
                let bytes = Bytes::copy_from_slice(input.get(..end).unwrap_or(input));
                let head = K::build(bytes, self.limits)?;
                Ok(Parsed::Complete { head, len: end })
            }
            None => Ok(Parsed::Partial),
        }
    }

    /// See `ResponseParser::parse_buf`.
    pub(crate) fn parse_buf<K: HeadKind>(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<K::Head>, HeadError> {
        match self.end::<K>(buf)? {
            Some(end) => K::build(buf.split_to(end).freeze(), self.limits).map(Some),
            None => Ok(None),
        }
    }

    fn end<K: HeadKind>(&mut self, input: &[u8]) -> Result<Option<usize>, HeadError> {
        match self.scanner.scan(input, self.limits.head_len()) {
            Scan::End(end) => {
                self.scanner = Scanner::default();
                Ok(Some(end))
            }
            Scan::NeedMore => Ok(None),
            Scan::TooLarge => {
                self.scanner = Scanner::default();
                let window = input.get(..self.limits.head_len()).unwrap_or(input);
                Err(K::diagnose(window, self.limits))
            }
        }
    }
}

/// Where the scan for the end of a head stands.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scanner {
    /// Index to resume the search at.
    pos: usize,
    /// Whether a non-empty line has begun (leading empty lines are skipped,
    /// as httparse does).
    started: bool,
}

/// What a scan found.
pub(crate) enum Scan {
    /// The head ends just before this index.
    End(usize),
    NeedMore,
    TooLarge,
}

impl Scanner {
    /// Looks for the blank line ending the head in the part of `input` not
    /// yet scanned. Each byte is looked at a bounded number of times over
    /// all calls, as long as `input` only grows at its end between calls.
    pub(crate) fn scan(&mut self, input: &[u8], max: usize) -> Scan {
        let window = input.get(..max).unwrap_or(input);
        if self.pos > window.len() {
            *self = Scanner::default();
        }
        if !self.started {
            while let Some(b'\r' | b'\n') = window.get(self.pos) {
                self.pos += 1;
            }
            self.started = self.pos < window.len();
        }
        if self.started {
            while let Some(i) = window
                .get(self.pos..)
                .and_then(|rest| memchr::memchr(b'\n', rest))
                .map(|i| i + self.pos)
            {
                match (window.get(i + 1), window.get(i + 2)) {
                    (Some(b'\n'), _) => return Scan::End(i + 2),
                    (Some(b'\r'), Some(b'\n')) => return Scan::End(i + 3),
                    (None, _) | (Some(b'\r'), None) => {
                        self.pos = i;
                        return self.need_more(input, max);
                    }
                    _ => self.pos = i + 1,
                }
            }
            self.pos = window.len();
        }
        self.need_more(input, max)
    }

    fn need_more(&self, input: &[u8], max: usize) -> Scan {
        if input.len() >= max {
            Scan::TooLarge
        } else {
            Scan::NeedMore
        }
    }
}

/// A subslice of `whole` as a shared `Bytes` (copied if, unexpectedly, it is
/// not inside `whole`).
pub(crate) fn sub_bytes(whole: &Bytes, part: &[u8]) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= whole.len() => whole.slice(start..end),
        _ => Bytes::copy_from_slice(part),
    }
}

/// Converts httparse's fields, sharing `whole`.
pub(crate) fn convert_headers(whole: &Bytes, parsed: &[httparse::Header<'_>]) -> Vec<Header> {
    parsed
        .iter()
        .map(|h| Header::parsed(Str::from(h.name), sub_bytes(whole, h.value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(input: &[u8], max: usize) -> Option<usize> {
        match Scanner::default().scan(input, max) {
            Scan::End(n) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn finds_the_blank_line() {
        assert_eq!(scan_all(b"A\r\n\r\nrest", 100), Some(5));
        assert_eq!(scan_all(b"A\n\nrest", 100), Some(3));
        assert_eq!(scan_all(b"A\n\r\nrest", 100), Some(4));
        assert_eq!(scan_all(b"\r\n\r\nA\r\n\r\n", 100), Some(9));
        assert_eq!(scan_all(b"A\r\nB\r\n", 100), None);
        assert!(matches!(
            Scanner::default().scan(b"A\r\nB\r\n", 5),
            Scan::TooLarge
        ));
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let input = b"\r\nHTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        let mut s = Scanner::default();
        let mut found = None;
        for n in 0..=input.len() {
            if let Scan::End(e) = s.scan(&input[..n], 100) {
                found = Some(e);
                break;
            }
        }
        assert_eq!(found, Some(input.len() - 4));
    }
}
