//! The client side's request head: [`Request`], validated when built and
//! written by [`Request::encode`].

use alloc::vec::Vec;
use core::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::field::{self, BuildError, Header};
use super::url::Url;
use crate::str::Str;

/// A request head to send: method, URL, fields and body length.
///
/// Every part is validated when it is set, so [`Request::encode`] cannot
/// fail and no method, URL or field can inject a line. The request line
/// uses the URL's origin-form target; `Host` comes from the URL (with the
/// port when it is not the scheme's default) and `Content-Length` from
/// [`Request::content_length`]; those two and `Transfer-Encoding` cannot be
/// set as fields.
///
/// ```
/// use bytes::BytesMut;
/// use sse_proto::http1::{Request, Url};
///
/// let url = Url::parse("http://example.com:8080/events?since=1")?;
/// let mut request = Request::get(url);
/// request.header("Accept", "text/event-stream")?.header("Last-Event-ID", "41")?;
/// let mut buf = BytesMut::new();
/// request.encode(&mut buf);
/// assert_eq!(
///     &buf[..],
///     b"GET /events?since=1 HTTP/1.1\r\nHost: example.com:8080\r\n\
///       Accept: text/event-stream\r\nLast-Event-ID: 41\r\n\r\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    method: Str,
    url: Url,
    headers: Vec<Header>,
    content_length: Option<u64>,
    /// The request line carries the absolute URL (to a forward proxy).
    absolute_form: bool,
}

impl Request {
    /// A request with the given method.
    ///
    /// # Errors
    /// [`BuildError::InvalidMethod`] if `method` is not a token.
    pub fn new(method: &str, url: Url) -> Result<Request, BuildError> {
        if !field::is_token(method.as_bytes()) {
            return Err(BuildError::InvalidMethod);
        }
        Ok(Request {
            method: Str::from(method),
            url,
            headers: Vec::new(),
            content_length: None,
            absolute_form: false,
        })
    }

    /// A `GET` request.
    pub fn get(url: Url) -> Request {
        Request {
            method: Str::from_static("GET"),
            url,
            headers: Vec::new(),
            content_length: None,
            absolute_form: false,
        }
    }

    /// Adds a field (after the ones already added; repeated names are
    /// kept). Leading and trailing whitespace of the value is removed.
    ///
    /// # Errors
    /// [`BuildError::InvalidHeaderName`] or
    /// [`BuildError::InvalidHeaderValue`] (see [`Header::new`]), and
    /// [`BuildError::ReservedHeader`] for `Host`, `Content-Length` and
    /// `Transfer-Encoding`.
    pub fn header(
        &mut self,
        name: &str,
        value: impl AsRef<[u8]>,
    ) -> Result<&mut Request, BuildError> {
        let header = Header::new(name, value)?;
        self.push(header)
    }

    /// Adds a field built with [`Header::new`].
    ///
    /// # Errors
    /// [`BuildError::ReservedHeader`] for `Host`, `Content-Length` and
    /// `Transfer-Encoding`.
    pub fn push(&mut self, header: Header) -> Result<&mut Request, BuildError> {
        let reserved = ["host", "content-length", "transfer-encoding"];
        field::push_unreserved(&mut self.headers, header, &reserved)?;
        Ok(self)
    }

    /// Removes every field named `name` (ignoring ASCII case), for example
    /// `Authorization` before following a redirect to another origin.
    pub fn remove_header(&mut self, name: &str) -> &mut Request {
        self.headers.retain(|h| !h.is(name));
        self
    }

    /// Sets the body length, written as `Content-Length` (`None`, the
    /// default: no body and no `Content-Length`).
    pub fn content_length(&mut self, len: Option<u64>) -> &mut Request {
        self.content_length = len;
        self
    }

    /// Writes the whole URL as the request target (`GET http://host/path
    /// HTTP/1.1`, RFC 9112 3.2.2), as a request to a forward proxy must,
    /// instead of the origin-form `/path` (`false`, the default). `Host`
    /// stays the URL's authority.
    pub fn absolute_form(&mut self, absolute: bool) -> &mut Request {
        self.absolute_form = absolute;
        self
    }

    /// Replaces the URL (for example with a redirect target), keeping the
    /// method and fields.
    pub fn set_url(&mut self, url: Url) -> &mut Request {
        self.url = url;
        self
    }

    /// Replaces the method, for example with `GET` after a `303`.
    ///
    /// # Errors
    /// [`BuildError::InvalidMethod`] if `method` is not a token.
    pub fn set_method(&mut self, method: &str) -> Result<&mut Request, BuildError> {
        if !field::is_token(method.as_bytes()) {
            return Err(BuildError::InvalidMethod);
        }
        self.method = Str::from(method);
        Ok(self)
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL (its host and port say where to connect).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The fields added, in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Appends the head (request line, `Host`, the fields,
    /// `Content-Length` if set, and the blank line) to `dst`. The body, if
    /// any, is the caller's to write after it.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(
            self.method.len()
                + self.url.target().len()
                + self.url.host().len()
                + 40
                + self
                    .headers
                    .iter()
                    .map(|h| h.name().len() + h.value().len() + 4)
                    .sum::<usize>(),
        );
        dst.put_slice(self.method.as_bytes());
        dst.put_u8(b' ');
        if self.absolute_form {
            dst.put_slice(self.url.scheme().as_str().as_bytes());
            dst.put_slice(b"://");
            dst.put_slice(self.url.authority().as_bytes());
        }
        dst.put_slice(self.url.target().as_bytes());
        dst.put_slice(b" HTTP/1.1\r\nHost: ");
        dst.put_slice(self.url.authority().as_bytes());
        dst.put_slice(b"\r\n");
        for header in &self.headers {
            header.encode(dst);
        }
        if let Some(len) = self.content_length {
            // Writing to a BytesMut cannot fail.
            let _ = write!(dst, "Content-Length: {len}\r\n");
        }
        dst.put_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_post() {
        let url = Url::parse("https://[::1]/p").unwrap();
        let mut r = Request::new("POST", url).unwrap();
        r.content_length(Some(5));
        let mut buf = BytesMut::new();
        r.encode(&mut buf);
        assert_eq!(
            &buf[..],
            b"POST /p HTTP/1.1\r\nHost: [::1]\r\nContent-Length: 5\r\n\r\n"
        );
    }

    #[test]
    fn writes_the_absolute_form_for_a_proxy() {
        let url = Url::parse("http://example.com:8080/a?b=1").unwrap();
        let mut r = Request::get(url);
        r.absolute_form(true);
        let mut buf = BytesMut::new();
        r.encode(&mut buf);
        assert_eq!(
            &buf[..],
            b"GET http://example.com:8080/a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"
        );
    }

    #[test]
    fn rejects() {
        let url = Url::parse("http://h/").unwrap();
        assert_eq!(
            Request::new("GE T", url.clone()),
            Err(BuildError::InvalidMethod)
        );
        assert_eq!(
            Request::new("", url.clone()),
            Err(BuildError::InvalidMethod)
        );
        let mut r = Request::get(url);
        assert_eq!(
            r.header("host", "x").err(),
            Some(BuildError::ReservedHeader)
        );
        assert_eq!(
            r.header("Content-Length", "1").err(),
            Some(BuildError::ReservedHeader)
        );
        assert_eq!(
            r.header("X", "a\nB: c").err(),
            Some(BuildError::InvalidHeaderValue)
        );
        r.header("Authorization", "x").unwrap();
        r.remove_header("authorization");
        assert!(r.headers().is_empty());
    }
}
