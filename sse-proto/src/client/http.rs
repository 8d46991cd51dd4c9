//! The HTTP facts the machine needs beyond the field values it shares with
//! the codec (`http1::value`): requests, origins and the headers a redirect
//! drops. No parsing beyond that.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::str::Str;

/// One fetch of the event stream (method, URL, headers, body) that the
/// machine asks for with [`Output::Connect`](crate::client::Output::Connect);
/// `Connection` turns it into HTTP/1.1 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The method (`GET` unless configured otherwise, or after a 303).
    pub method: Str,
    /// The absolute URL.
    pub url: Str,
    /// Header names and values, in order: `Accept`, `Cache-Control`,
    /// `Pragma`, `Last-Event-ID` when there is one, then the configured
    /// headers. Built afresh for every attempt.
    pub headers: Vec<(Str, Str)>,
    /// The body to send, if any.
    pub body: Option<Bytes>,
}

impl Fetch {
    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An http(s) URL's origin: lower-cased scheme and host, and the port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses the origin of an absolute `http` or `https` URL. `None` for
    /// any other scheme or a malformed authority.
    pub(crate) fn of(url: &str) -> Option<Origin> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = rest.get(..end)?;
        let host_port = match authority.rfind('@') {
            Some(at) => authority.get(at + 1..)?,
            None => authority,
        };
        let (host, port) = if host_port.starts_with('[') {
            let close = host_port.find(']')?;
            let host = host_port.get(..=close)?;
            match host_port.get(close + 1..)? {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':')?)),
            }
        } else {
            match host_port.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host_port, None),
            }
        };
        if host.is_empty()
            || host
                .bytes()
                .any(|b| b <= b' ' || matches!(b, b'<' | b'>' | b'\\' | b'^' | b'|' | 0x7F))
        {
            return None;
        }
        let port = match port {
            None | Some("") => default_port,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
        };
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The ASCII serialisation: `scheme://host[:port]` (port only when not
    /// the scheme's default).
    pub(crate) fn serialize(&self) -> String {
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            format!("{}://{}", self.scheme, self.host)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// Headers that carry credentials: never sent to another origin.
pub(crate) fn is_credential_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie")
}

/// Fetch's "request-body-header names": dropped with the body on a redirect
/// that turns the request into a GET.
pub(crate) fn is_body_header(name: &str) -> bool {
    [
        "content-type",
        "content-encoding",
        "content-language",
        "content-location",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let o = |u: &str| Origin::of(u).map(|o| o.serialize());
        for (url, origin) in [
            ("http://Example.COM/a?b#c", "http://example.com"),
            ("https://example.com:443/", "https://example.com"),
            ("https://u:p@example.com:8443", "https://example.com:8443"),
            ("http://[::1]:8080/x", "http://[::1]:8080"),
            ("HTTP://a", "http://a"),
        ] {
            assert_eq!(o(url).as_deref(), Some(origin), "{url}");
        }
        for bad in [
            "ftp://a/",
            "about:blank",
            "mailto:x@y",
            "javascript:alert(1)",
            "http://",
            "http://a:x/",
            "http://a b/",
            "/relative",
        ] {
            assert_eq!(o(bad), None, "{bad}");
        }
        assert_eq!(Origin::of("http://a/"), Origin::of("http://A:80/x"));
        assert_ne!(Origin::of("http://a/"), Origin::of("https://a/"));
        assert_ne!(Origin::of("http://a/"), Origin::of("http://a:81/"));
    }
}
