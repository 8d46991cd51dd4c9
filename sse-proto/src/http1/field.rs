//! Header fields: the [`Header`] type, validation of names and values for
//! writing ([`BuildError`]), and the few list-valued fields HTTP/1.1 framing
//! depends on (`Content-Length`, `Transfer-Encoding`, `Connection`).

use alloc::vec::Vec;
use core::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::value::is_field_byte;
pub(crate) use super::value::{parse_decimal, trim_ows};
use crate::str::Str;

/// Why a request or response head cannot be built as asked.
///
/// Heads are validated when they are built, so encoding them cannot fail and
/// no caller-supplied name or value can inject a line into the head.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuildError {
    /// The method is empty or holds a character that is not a `tchar`
    /// (RFC 9110 5.6.2): letters, digits and ``!#$%&'*+-.^_`|~``.
    InvalidMethod,
    /// The status code is outside `100..=999`.
    InvalidStatus,
    /// The header name is empty or holds a character that is not a `tchar`.
    InvalidHeaderName,
    /// The header value holds CR, LF, NUL or another control character
    /// (only horizontal tab is allowed); such a value could end the field
    /// early and inject another.
    InvalidHeaderValue,
    /// The header is written by this module from the head's framing or URL
    /// (`Host`, `Content-Length`, `Transfer-Encoding`, and for responses
    /// `Connection`); set the URL or the framing instead.
    ReservedHeader,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildError::InvalidMethod => {
                "invalid HTTP method: use a non-empty token (letters, digits and !#$%&'*+-.^_`|~)"
            }
            BuildError::InvalidStatus => "invalid HTTP status code: use a code in 100..=999",
            BuildError::InvalidHeaderName => {
                "invalid header name: use a non-empty token (letters, digits and !#$%&'*+-.^_`|~)"
            }
            BuildError::InvalidHeaderValue => {
                "invalid header value: it contains CR, LF, NUL or another control character; remove or percent-encode it"
            }
            BuildError::ReservedHeader => {
                "this header is derived from the URL or the body framing (Host, Content-Length, Transfer-Encoding, Connection); set those instead of the header"
            }
        })
    }
}

impl core::error::Error for BuildError {}

/// One header field: a name (a token, compared case-insensitively) and a
/// value (bytes without CR, LF or NUL, surrounding whitespace removed).
///
/// Parsed heads hold their fields as `Header`s sharing the head's buffer;
/// [`Header::new`] validates a field for writing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    name: Str,
    value: Bytes,
}

impl Header {
    /// Validates a field for writing. Leading and trailing spaces and tabs
    /// of the value are removed (they are not part of a field value).
    ///
    /// # Errors
    /// [`BuildError::InvalidHeaderName`] if `name` is not a token,
    /// [`BuildError::InvalidHeaderValue`] if `value` holds a control
    /// character other than horizontal tab (CR, LF and NUL included).
    ///
    /// ```
    /// use sse_proto::http1::{BuildError, Header};
    ///
    /// let h = Header::new("Accept", "text/event-stream")?;
    /// assert_eq!(h.value_str(), Some("text/event-stream"));
    /// assert_eq!(Header::new("X-A", "1\r\nX-Forged: 2"), Err(BuildError::InvalidHeaderValue));
    /// assert_eq!(Header::new("X A", "1"), Err(BuildError::InvalidHeaderName));
    /// # Ok::<(), BuildError>(())
    /// ```
    pub fn new(name: &str, value: impl AsRef<[u8]>) -> Result<Header, BuildError> {
        if !is_token(name.as_bytes()) {
            return Err(BuildError::InvalidHeaderName);
        }
        let value = trim_ows(value.as_ref());
        if !value.iter().all(|&b| is_field_byte(b)) {
            return Err(BuildError::InvalidHeaderValue);
        }
        Ok(Header {
            name: Str::from(name),
            value: Bytes::copy_from_slice(value),
        })
    }

    /// Wraps a field that a parser has already validated.
    pub(crate) fn parsed(name: Str, value: Bytes) -> Header {
        Header { name, value }
    }

    /// The name, as written (compare it with `eq_ignore_ascii_case`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value bytes.
    pub fn value(&self) -> &Bytes {
        &self.value
    }

    /// The value as a string, or `None` if it is not UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.value).ok()
    }

    /// Whether the name is `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// Writes `name: value\r\n`.
    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.name.len() + self.value.len() + 4);
        dst.put_slice(self.name.as_bytes());
        dst.put_slice(b": ");
        dst.put_slice(&self.value);
        dst.put_slice(b"\r\n");
    }
}

/// Whether `b` is a `tchar` (RFC 9110 5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `s` is a non-empty token.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// The non-empty, trimmed elements of a comma-separated list value.
pub(crate) fn list_items(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

/// Whether any `name` field lists `token` (ignoring ASCII case).
pub(crate) fn any_lists(headers: &[Header], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.is(name))
        .flat_map(|h| list_items(h.value()))
        .any(|item| item.eq_ignore_ascii_case(token.as_bytes()))
}

/// The first `name` field's value.
pub(crate) fn first<'a>(headers: &'a [Header], name: &str) -> Option<&'a Bytes> {
    headers.iter().find(|h| h.is(name)).map(Header::value)
}

/// Why a head's body framing (RFC 9112 6.3) is invalid or unsupported.
///
/// Any of these means the message length cannot be trusted: a client must
/// close the connection and discard the response, a server must answer
/// `400 Bad Request` and close.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FramingError {
    /// A `Content-Length` value is not a decimal number of at most
    /// `u64::MAX`.
    InvalidContentLength,
    /// Several `Content-Length` values differ.
    ConflictingContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` are present (a request
    /// smuggling vector; RFC 9112 6.1).
    TransferEncodingWithContentLength,
    /// `Transfer-Encoding` is anything but a single `chunked` (compressed
    /// transfer codings are not supported).
    UnsupportedTransferCoding,
    /// An HTTP/1.0 message carries `Transfer-Encoding`, which HTTP/1.0 does
    /// not define (RFC 9112 6.1: the framing is faulty).
    TransferEncodingInHttp10,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FramingError::InvalidContentLength => {
                "invalid Content-Length: it must be a decimal number of bytes; the message length cannot be trusted, close the connection"
            }
            FramingError::ConflictingContentLength => {
                "several Content-Length values differ; the message length cannot be trusted, close the connection"
            }
            FramingError::TransferEncodingWithContentLength => {
                "both Transfer-Encoding and Content-Length are present (RFC 9112 6.1); the message length cannot be trusted, close the connection"
            }
            FramingError::UnsupportedTransferCoding => {
                "unsupported Transfer-Encoding: only a single `chunked` coding is supported; ask the peer not to compress transfers"
            }
            FramingError::TransferEncodingInHttp10 => {
                "an HTTP/1.0 message carries Transfer-Encoding, which HTTP/1.0 does not define; the framing is faulty, close the connection"
            }
        })
    }
}

impl core::error::Error for FramingError {}

/// The `Content-Length`, if any: all values (across fields and list
/// elements) must be the same decimal number.
pub(crate) fn content_length(headers: &[Header]) -> Result<Option<u64>, FramingError> {
    let mut found = None;
    for h in headers.iter().filter(|h| h.is("content-length")) {
        for item in h.value().split(|&b| b == b',').map(trim_ows) {
            let n = parse_decimal(item).ok_or(FramingError::InvalidContentLength)?;
            match found {
                Some(prev) if prev != n => return Err(FramingError::ConflictingContentLength),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// What `Transfer-Encoding` says: `None` when absent, `Some(true)` for a
/// single final `chunked`, `Some(false)` for anything else.
pub(crate) fn transfer_encoding(headers: &[Header]) -> Option<bool> {
    let mut present = false;
    let (mut chunked, mut other) = (0usize, false);
    for h in headers.iter().filter(|h| h.is("transfer-encoding")) {
        present = true;
        for item in list_items(h.value()) {
            if item.eq_ignore_ascii_case(b"chunked") {
                chunked += 1;
            } else {
                other = true;
            }
        }
    }
    present.then_some(chunked == 1 && !other)
}

/// Appends `header` unless its name is one of `reserved` (fields the
/// writer sets itself, from the framing).
pub(crate) fn push_unreserved(
    headers: &mut Vec<Header>,
    header: Header,
    reserved: &[&str],
) -> Result<(), BuildError> {
    if reserved.iter().any(|name| header.is(name)) {
        return Err(BuildError::ReservedHeader);
    }
    headers.push(header);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn header_validation() {
        assert!(Header::new("x-ok", "a\tb c \u{e9}").is_ok());
        assert_eq!(Header::new("", "v"), Err(BuildError::InvalidHeaderName));
        assert_eq!(Header::new("a:b", "v"), Err(BuildError::InvalidHeaderName));
        for bad in ["a\rb", "a\nb", "a\0b", "a\x7fb", "a\x01b"] {
            assert_eq!(
                Header::new("x", bad),
                Err(BuildError::InvalidHeaderValue),
                "{bad:?}"
            );
        }
        let h = Header::new("x", "  v  ").unwrap();
        assert_eq!(h.value().as_ref(), b"v");
    }

    #[test]
    fn content_length_rules() {
        let h = |v: &str| vec![Header::new("Content-Length", v).unwrap()];
        assert_eq!(content_length(&h("42")), Ok(Some(42)));
        assert_eq!(content_length(&h("42, 42")), Ok(Some(42)));
        assert_eq!(
            content_length(&h("42, 43")),
            Err(FramingError::ConflictingContentLength)
        );
        assert_eq!(
            content_length(&h("+4")),
            Err(FramingError::InvalidContentLength)
        );
        assert_eq!(
            content_length(&h("")),
            Err(FramingError::InvalidContentLength)
        );
        assert_eq!(
            content_length(&h("99999999999999999999")),
            Err(FramingError::InvalidContentLength)
        );
        assert_eq!(content_length(&[]), Ok(None));
    }

    #[test]
    fn transfer_encoding_rules() {
        let h = |v: &str| vec![Header::new("Transfer-Encoding", v).unwrap()];
        assert_eq!(transfer_encoding(&h("chunked")), Some(true));
        assert_eq!(transfer_encoding(&h("Chunked")), Some(true));
        assert_eq!(transfer_encoding(&h("gzip, chunked")), Some(false));
        assert_eq!(transfer_encoding(&h("chunked, chunked")), Some(false));
        assert_eq!(transfer_encoding(&[]), None);
    }
}
