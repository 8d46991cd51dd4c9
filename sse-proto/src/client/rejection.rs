//! [`ErrorResponse`]: what a server said when it answered with something
//! other than an event stream (a status other than 200, or a 200 that is
//! not `text/event-stream`): its status, its headers and the first bytes
//! of its body, bounded by [`ERROR_BODY_LIMIT`].

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bytes::{Bytes, BytesMut};

use super::machine::CloseReason;
use crate::str::Str;

/// The most bytes of an error response's body kept: enough for any API's
/// JSON error, bounded so that a huge (or endless) error body is never
/// read whole.
pub const ERROR_BODY_LIMIT: usize = 8 * 1024;

/// A response that closed the source instead of opening a stream: the
/// status, the headers and up to [`ERROR_BODY_LIMIT`] bytes of the body,
/// for an application (or a person) to see what the server said, such as
/// an API's `{"error": {"message": "Incorrect API key"}}` with a 401.
///
/// ```
/// use sse_proto::client::{CloseReason, ErrorResponse};
///
/// let mut response = ErrorResponse::new(CloseReason::BadStatus(401), 401);
/// response.push_header("Content-Type", b"application/json");
/// response.push_body(br#"{"error":{"message":"bad key"}}"#);
/// assert_eq!(response.header("content-type"), Some("application/json"));
/// assert_eq!(response.body_text(), r#"{"error":{"message":"bad key"}}"#);
/// assert!(!response.is_truncated());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    reason: CloseReason,
    status: u16,
    headers: Vec<(Str, Bytes)>,
    body: BytesMut,
    truncated: bool,
}

impl ErrorResponse {
    /// A response with `status` that closed the source for `reason`, with
    /// no headers and an empty body yet.
    pub fn new(reason: CloseReason, status: u16) -> ErrorResponse {
        ErrorResponse {
            reason,
            status,
            headers: Vec::new(),
            body: BytesMut::new(),
            truncated: false,
        }
    }

    /// Adds a header, as received.
    pub fn push_header(&mut self, name: &str, value: &[u8]) {
        self.headers
            .push((Str::from(name), Bytes::copy_from_slice(value)));
    }

    /// Appends body bytes up to [`ERROR_BODY_LIMIT`] in all; what does not
    /// fit is dropped and marks the body truncated. `false` once the limit
    /// is reached (read no more).
    pub fn push_body(&mut self, bytes: &[u8]) -> bool {
        let room = ERROR_BODY_LIMIT - self.body.len();
        if bytes.len() > room {
            self.truncated = true;
        }
        let take = bytes.get(..room).unwrap_or(bytes);
        self.body.extend_from_slice(take);
        self.body.len() < ERROR_BODY_LIMIT
    }

    /// Why the source closed: [`CloseReason::BadStatus`] or
    /// [`CloseReason::BadContentType`].
    pub fn reason(&self) -> &CloseReason {
        &self.reason
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers, in order, with their raw values.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), &v[..]))
    }

    /// The value of the first header named `name` (ASCII case-insensitive),
    /// if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| core::str::from_utf8(v).ok())
    }

    /// The body's first bytes (at most [`ERROR_BODY_LIMIT`]).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text, invalid UTF-8 replaced (a character cut at the
    /// limit included).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Whether the body was longer than what is kept (or its end did not
    /// arrive in time).
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Marks the body as cut short.
    pub fn set_truncated(&mut self) {
        self.truncated = true;
    }
}

impl fmt::Debug for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorResponse")
            .field("reason", &self.reason)
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .field("body", &self.body_text())
            .field("truncated", &self.truncated)
            .finish()
    }
}

/// The first line of `text`'s content, whitespace collapsed and at most
/// `max` characters (an ellipsis marks a cut): a body excerpt fit for a
/// one-line error message, control characters left out.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in text.trim().chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if count == max {
            out.push('…');
            return out;
        }
        if space {
            out.push(' ');
            count += 1;
            space = false;
        }
        out.push(c);
        count += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_bounded() {
        let mut r = ErrorResponse::new(CloseReason::BadStatus(500), 500);
        assert!(r.push_body(&[b'a'; 8000]));
        assert!(!r.push_body(&[b'b'; 1000]));
        assert_eq!(r.body().len(), ERROR_BODY_LIMIT);
        assert!(r.is_truncated());
        assert!(!r.push_body(b"c"));
        assert_eq!(r.body().len(), ERROR_BODY_LIMIT);
    }

    #[test]
    fn an_exact_fit_is_not_truncated() {
        let mut r = ErrorResponse::new(CloseReason::BadStatus(500), 500);
        assert!(!r.push_body(&[b'a'; ERROR_BODY_LIMIT]));
        assert!(!r.is_truncated());
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("  {\"a\":\n\t 1}\r\n", 100), "{\"a\": 1}");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("ab\u{1b}[31mc", 10), "ab [31mc");
        assert_eq!(excerpt("", 10), "");
    }
}
