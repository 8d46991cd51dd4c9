//! The client side's response head: [`ResponseParser`] and [`ResponseHead`].

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use super::body::BodyKind;
use super::field::{self, FramingError, Header};
use super::head::{self, HeadError, HeadKind, HeadLimits, HeadReader, Parsed, Version};
use super::value;
use crate::str::Str;

head::head_parser!(
    /// An incremental parser for a response head.
    ///
    /// Hand it the bytes read so far, each time with the new bytes appended,
    /// until it returns [`Parsed::Complete`]; the bytes after the head are the
    /// body. Only the bytes added since the last call are scanned for the end of
    /// the head, and the head is parsed once, when it is complete, so the cost
    /// is linear in the head's size. Heads longer than
    /// [`HeadLimits::head_len`] are refused.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use sse_proto::http1::{BodyKind, ResponseParser};
    ///
    /// let mut parser = ResponseParser::new();
    /// let mut buf = BytesMut::new();
    /// buf.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-st");
    /// assert!(parser.parse_buf(&mut buf)?.is_none());
    /// buf.extend_from_slice(b"ream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n");
    /// let head = parser.parse_buf(&mut buf)?.unwrap();
    /// assert_eq!(head.status(), 200);
    /// assert!(head.is_event_stream());
    /// assert_eq!(head.body_kind("GET")?, BodyKind::Chunked);
    /// assert_eq!(&buf[..], b"5\r\n"); // the start of the body is left in the buffer
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ResponseParser, ResponseKind, ResponseHead, Response
);

/// A parsed response head: status line and fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    version: Version,
    status: u16,
    reason: Str,
    headers: Vec<Header>,
}

/// A parsed `Retry-After` value.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `delay-seconds`: wait this long.
    Delay(Duration),
    /// An HTTP-date, not parsed (this crate has no clock): the value as
    /// sent, for the caller to parse or ignore.
    Date(Str),
}

impl ResponseHead {
    /// The version of the status line.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The status code (`100..=999`).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase (empty when missing or not UTF-8).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the status is `1xx`: an interim response, after which the
    /// final head follows (parse again from [`Parsed::Complete::len`]).
    /// `101 Switching Protocols` ends HTTP on the connection.
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// Whether the status is a redirect that carries a `Location` to follow:
    /// 301, 302, 303, 307 or 308.
    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }

    head::field_accessors!();

    /// The `Content-Type` value, if present and UTF-8.
    pub fn content_type(&self) -> Option<&str> {
        self.header_str("content-type")
    }

    /// Whether the media type is `text/event-stream` (ignoring case and
    /// parameters such as `charset`).
    pub fn is_event_stream(&self) -> bool {
        self.content_type().is_some_and(value::is_event_stream)
    }

    /// The `Location` value, if present and UTF-8; resolve it with
    /// [`Url::join`](super::Url::join).
    pub fn location(&self) -> Option<&str> {
        self.header_str("location")
    }

    /// The `Retry-After` value: a delay in seconds, or an HTTP-date left
    /// unparsed ([`RetryAfter::Date`]). `None` when absent or empty.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        let value = field::trim_ows(self.header("retry-after")?);
        if value.is_empty() {
            return None;
        }
        if let Some(delay) = value::delay_seconds(value) {
            return Some(RetryAfter::Delay(delay));
        }
        Some(RetryAfter::Date(Str::from_utf8_lossy(
            Bytes::copy_from_slice(value),
        )))
    }

    /// Whether `Transfer-Encoding` is a single `chunked` coding.
    pub fn is_chunked(&self) -> bool {
        field::transfer_encoding(&self.headers) == Some(true)
    }

    /// The `Content-Length`, if present.
    ///
    /// # Errors
    /// [`FramingError`] when a value is not a number, values differ (equal
    /// repeated values are accepted, as RFC 9110 8.6 allows), or
    /// `Transfer-Encoding` is present too.
    pub fn content_length(&self) -> Result<Option<u64>, FramingError> {
        let len = field::content_length(&self.headers)?;
        if len.is_some() && field::transfer_encoding(&self.headers).is_some() {
            return Err(FramingError::TransferEncodingWithContentLength);
        }
        Ok(len)
    }

    /// How the body is delimited (RFC 9112 6.3), given the method of the
    /// request it answers: no body (`Length(0)`) for `HEAD` and for `1xx`,
    /// `204` and `304`; otherwise `chunked`, `Content-Length`, or until the
    /// connection closes.
    ///
    /// # Errors
    /// [`FramingError`] when the framing fields are invalid, conflicting or
    /// unsupported: close the connection and discard the response.
    pub fn body_kind(&self, request_method: &str) -> Result<BodyKind, FramingError> {
        if request_method == "HEAD" || self.is_informational() || matches!(self.status, 204 | 304) {
            return Ok(BodyKind::Length(0));
        }
        framing(&self.headers, self.version, true)
    }

    /// Whether the connection may carry another request after this
    /// response: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`. A close-delimited body
    /// ([`BodyKind::CloseDelimited`]) always ends the connection.
    pub fn keep_alive(&self) -> bool {
        keep_alive(&self.headers, self.version)
    }
}

/// RFC 9112 6.3 for a message that has a body (`response` selects the rule
/// for a message without framing fields).
pub(crate) fn framing(
    headers: &[Header],
    version: Version,
    response: bool,
) -> Result<BodyKind, FramingError> {
    let te = field::transfer_encoding(headers);
    let cl = field::content_length(headers)?;
    match te {
        Some(_) if version == Version::Http10 => Err(FramingError::TransferEncodingInHttp10),
        Some(_) if cl.is_some() => Err(FramingError::TransferEncodingWithContentLength),
        Some(true) => Ok(BodyKind::Chunked),
        Some(false) => Err(FramingError::UnsupportedTransferCoding),
        None => Ok(match cl {
            Some(n) => BodyKind::Length(n),
            None if response => BodyKind::CloseDelimited,
            None => BodyKind::Length(0),
        }),
    }
}

pub(crate) fn keep_alive(headers: &[Header], version: Version) -> bool {
    if field::any_lists(headers, "connection", "close") {
        return false;
    }
    version == Version::Http11 || field::any_lists(headers, "connection", "keep-alive")
}

/// The head from httparse's complete parse of `bytes`.
fn build(
    bytes: &Bytes,
    res: &httparse::Response<'_, '_>,
    version: Version,
) -> Result<ResponseHead, HeadError> {
    let status = match res.code {
        Some(code @ 100..=999) => code,
        _ => return Err(HeadError::InvalidStatus),
    };
    let reason = Str::from(res.reason.unwrap_or(""));
    let headers = head::convert_headers(bytes, res.headers);
    Ok(ResponseHead {
        version,
        status,
        reason,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Parsed<ResponseHead>, HeadError> {
        ResponseParser::new().parse(input)
    }

    fn head(input: &[u8]) -> ResponseHead {
        match parse(input) {
            Ok(Parsed::Complete { head, .. }) => head,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_a_head() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nX: 1\r\n\r\nbody";
        let Ok(Parsed::Complete { head, len }) = parse(input) else {
            panic!()
        };
        assert_eq!(len, input.len() - 4);
        assert_eq!(
            (head.status(), head.reason(), head.version()),
            (200, "OK", Version::Http11)
        );
        assert!(head.is_event_stream());
        assert_eq!(head.header("x").map(|v| &v[..]), Some(&b"1"[..]));
        assert_eq!(head.body_kind("GET"), Ok(BodyKind::CloseDelimited));
        assert!(head.keep_alive());
    }

    #[test]
    fn partial_then_complete() {
        let input = b"HTTP/1.0 204 No Content\r\n\r\n";
        let mut p = ResponseParser::new();
        for n in 0..input.len() {
            assert_eq!(p.parse(&input[..n]), Ok(Parsed::Partial), "{n}");
        }
        let Ok(Parsed::Complete { head, len }) = p.parse(input) else {
            panic!()
        };
        assert_eq!((len, head.status()), (input.len(), 204));
        assert!(!head.keep_alive());
        assert_eq!(head.body_kind("GET"), Ok(BodyKind::Length(0)));
    }

    #[test]
    fn helpers() {
        let h = head(b"HTTP/1.1 503 x\r\nRetry-After: 120\r\nConnection: close\r\n\r\n");
        assert_eq!(
            h.retry_after(),
            Some(RetryAfter::Delay(Duration::from_secs(120)))
        );
        assert!(!h.keep_alive());
        let h = head(b"HTTP/1.1 503 x\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n\r\n");
        assert_eq!(
            h.retry_after(),
            Some(RetryAfter::Date(Str::from("Fri, 31 Dec 1999 23:59:59 GMT")))
        );
        let h = head(b"HTTP/1.1 307 x\r\nLocation: /next\r\n\r\n");
        assert!(h.is_redirect());
        assert_eq!(h.location(), Some("/next"));
        let h = head(b"HTTP/1.0 200 x\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(h.keep_alive());
    }

    #[test]
    fn errors_and_limits() {
        assert_eq!(
            parse(b"HTTP/2 200 OK\r\n\r\n"),
            Err(HeadError::InvalidVersion)
        );
        assert_eq!(
            parse(b"HTTP/1.1 20 OK\r\n\r\n"),
            Err(HeadError::InvalidStatus)
        );
        assert_eq!(
            parse(b"HTTP/1.1 099 OK\r\n\r\n"),
            Err(HeadError::InvalidStatus)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nA B: c\r\n\r\n"),
            Err(HeadError::InvalidHeaderName)
        );
        let limits = HeadLimits::default().max_head_len(20);
        assert_eq!(
            ResponseParser::with_limits(limits).parse(b"HTTP/1.1 200 OK\r\nAAAAAAAA"),
            Err(HeadError::TooLarge)
        );
        let limits = HeadLimits::default().max_headers(1);
        assert_eq!(
            ResponseParser::with_limits(limits).parse(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n"),
            Err(HeadError::TooManyHeaders)
        );
    }
}
