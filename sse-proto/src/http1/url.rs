//! [`Url`]: the minimal absolute `http`/`https` URL a client needs to
//! connect (host, port) and to write a request (origin-form target), and the
//! resolution of a `Location` value against it.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

/// Why a string is not a usable `http`/`https` URL.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UrlError {
    /// There is no scheme (`http://` or `https://`): the URL is relative.
    Relative,
    /// The scheme is neither `http` nor `https`.
    UnsupportedScheme,
    /// The scheme is not followed by `//` and a host.
    MissingHost,
    /// The host holds a character other than ASCII letters, digits, `-`,
    /// `.`, `_` and `~` (internationalised names must be given in their
    /// ASCII `xn--` form), or a bracketed IPv6 literal is malformed.
    InvalidHost,
    /// The port is not a number in `1..=65535`.
    InvalidPort,
    /// The URL holds credentials (`user:pass@host`), which this client does
    /// not send; use an `Authorization` header instead.
    UserInfo,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Relative => {
                "the URL is relative: give an absolute URL starting with http:// or https://"
            }
            UrlError::UnsupportedScheme => {
                "unsupported URL scheme: only http:// and https:// are supported"
            }
            UrlError::MissingHost => "the URL has no host: write it as scheme://host/path",
            UrlError::InvalidHost => {
                "invalid host in the URL: use a DNS name (IDNs in their xn-- form), an IPv4 address or a bracketed IPv6 address"
            }
            UrlError::InvalidPort => "invalid port in the URL: use a number in 1..=65535",
            UrlError::UserInfo => {
                "the URL holds credentials (user:pass@host); remove them and send an Authorization header instead"
            }
        })
    }
}

impl core::error::Error for UrlError {}

/// The scheme of a [`Url`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`: plain TCP, port 80 by default.
    Http,
    /// `https`: TLS, port 443 by default.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An absolute `http` or `https` URL, reduced to what a request needs.
///
/// Parsing is deliberately minimal: the scheme (case-insensitive), the host
/// (lowercased; a bracketed IPv6 literal is stored without its brackets),
/// an optional port and the path with its query. The fragment is dropped,
/// dot segments are removed from the path, and bytes not allowed in a
/// request-target (spaces, controls, non-ASCII, `"<>\^`{|}`) are
/// percent-encoded, so [`Url::target`] can be written into a request line
/// as it is. Credentials in the URL are rejected.
///
/// ```
/// use sse_proto::http1::{Scheme, Url};
///
/// let url: Url = "HTTPS://Example.com:8443/events?topic=a#frag".parse()?;
/// assert_eq!(url.scheme(), Scheme::Https);
/// assert_eq!((url.host(), url.port()), ("example.com", 8443));
/// assert_eq!(url.target(), "/events?topic=a");
/// assert_eq!(url.authority(), "example.com:8443");
/// assert_eq!(url.to_string(), "https://example.com:8443/events?topic=a");
///
/// let next = url.join("../other?x=1")?;
/// assert_eq!(next.to_string(), "https://example.com:8443/other?x=1");
/// # Ok::<(), sse_proto::http1::UrlError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Url {
    scheme: Scheme,
    /// Lowercase; IPv6 without brackets.
    host: Box<str>,
    port: u16,
    /// Starts with `/`; visible ASCII only.
    target: Box<str>,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL. Leading and trailing
    /// spaces and control characters are ignored.
    ///
    /// # Errors
    /// A [`UrlError`] saying what is wrong.
    pub fn parse(input: &str) -> Result<Url, UrlError> {
        let input = trim_c0(input);
        let Some((scheme, rest)) = split_scheme(input) else {
            return Err(UrlError::Relative);
        };
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(UrlError::UnsupportedScheme);
        };
        let rest = rest.strip_prefix("//").ok_or(UrlError::MissingHost)?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (host, port) = parse_authority(authority, scheme)?;
        Ok(Url {
            scheme,
            host,
            port,
            target: normalize_target(path),
        })
    }

    /// Resolves `reference` (for example a `Location` header value) against
    /// this URL: an absolute URL, a scheme-relative `//host/path`, an
    /// absolute path `/path`, a query `?q`, a relative path `a/b` or
    /// `../b` (dot segments removed; `..` never climbs above the root), or
    /// an empty reference or a bare fragment (this URL again). The
    /// reference's fragment is dropped.
    ///
    /// # Errors
    /// A [`UrlError`] when the result is not a usable `http`/`https` URL
    /// (for example `Location: ftp://host/`).
    pub fn join(&self, reference: &str) -> Result<Url, UrlError> {
        let reference = trim_c0(reference);
        let reference = reference.split('#').next().unwrap_or("");
        if split_scheme(reference).is_some() {
            return Url::parse(reference);
        }
        if reference.starts_with("//") {
            let mut absolute = String::with_capacity(reference.len() + 6);
            absolute.push_str(self.scheme.as_str());
            absolute.push(':');
            absolute.push_str(reference);
            return Url::parse(&absolute);
        }
        let base_path = self.path();
        let target = if reference.is_empty() {
            return Ok(self.clone());
        } else if reference.starts_with('/') {
            normalize_target(reference)
        } else if reference.starts_with('?') {
            let mut t = String::from(base_path);
            t.push_str(reference);
            normalize_target(&t)
        } else {
            let dir = base_path
                .rfind('/')
                .map_or("/", |i| base_path.get(..=i).unwrap_or("/"));
            let mut t = String::from(dir);
            t.push_str(reference);
            normalize_target(&t)
        };
        Ok(Url {
            scheme: self.scheme,
            host: self.host.clone(),
            port: self.port,
            target,
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host to connect to: a lowercase DNS name, an IPv4 address or an
    /// IPv6 address without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to connect to (the scheme's default when none is given).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request-target in origin form: the path and the query, starting
    /// with `/`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        split_target(&self.target).0
    }

    /// The query without its `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        split_target(&self.target).1
    }

    /// The `Host` header value: the host (bracketed if IPv6) and, when it
    /// is not the scheme's default, `:port`.
    pub fn authority(&self) -> String {
        let mut s = String::with_capacity(self.host.len() + 8);
        // Writing to a String cannot fail.
        let _ = write_authority(&mut s, self);
        s
    }

    /// Whether `other` has the same scheme, host and port (the same
    /// origin), for example to decide whether credentials may follow a
    /// redirect.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }
}

impl FromStr for Url {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Url, UrlError> {
        Url::parse(s)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme.as_str())?;
        f.write_str("://")?;
        write_authority(f, self)?;
        f.write_str(&self.target)
    }
}

fn write_authority(w: &mut impl fmt::Write, url: &Url) -> fmt::Result {
    if url.host.contains(':') {
        write!(w, "[{}]", url.host)?;
    } else {
        w.write_str(&url.host)?;
    }
    if url.port != url.scheme.default_port() {
        write!(w, ":{}", url.port)?;
    }
    Ok(())
}

/// Removes leading and trailing C0 controls and spaces (as browsers do).
fn trim_c0(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Splits `scheme:rest` when `s` starts with a syntactically valid scheme.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let colon = s.find(':')?;
    let scheme = s.get(..colon)?;
    let mut bytes = scheme.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    valid.then(|| (scheme, s.get(colon + 1..).unwrap_or("")))
}

fn parse_authority(authority: &str, scheme: Scheme) -> Result<(Box<str>, u16), UrlError> {
    if authority.contains('@') {
        return Err(UrlError::UserInfo);
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(UrlError::InvalidHost)?;
        let valid = v6.contains(':')
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !valid {
            return Err(UrlError::InvalidHost);
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlError::InvalidHost)?),
        };
        (v6, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let valid_host = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':'));
    if !valid_host {
        return Err(UrlError::InvalidHost);
    }
    let port = match port {
        None | Some("") => scheme.default_port(),
        Some(p) => {
            let n = super::field::parse_decimal(p.as_bytes()).ok_or(UrlError::InvalidPort)?;
            match u16::try_from(n) {
                Ok(port) if port != 0 => port,
                _ => return Err(UrlError::InvalidPort),
            }
        }
    };
    Ok((host.to_ascii_lowercase().into_boxed_str(), port))
}

/// Builds an origin-form target from a path (and query) that may be empty,
/// start with `?`, or hold dot segments and bytes needing percent-encoding.
fn normalize_target(path_and_query: &str) -> Box<str> {
    let path_and_query = path_and_query.split('#').next().unwrap_or("");
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let mut out = String::with_capacity(path_and_query.len() + 1);
    if !path.starts_with('/') {
        out.push('/');
    }
    out.push_str(path);
    let mut out = remove_dot_segments(&out);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    percent_encode(&out).into_boxed_str()
}

/// RFC 3986 5.2.4 on an absolute path (starting with `/`).
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.get(1..).unwrap_or("").split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        let is_dot = *seg == "." || seg.eq_ignore_ascii_case("%2e");
        let is_dot_dot = matches!(
            seg.to_ascii_lowercase().as_str(),
            ".." | ".%2e" | "%2e." | "%2e%2e"
        );
        if is_dot_dot {
            out.pop();
        }
        if is_dot || is_dot_dot {
            if i == last {
                out.push("");
            }
        } else {
            out.push(seg);
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

fn percent_encode(s: &str) -> String {
    let needs = |b: u8| {
        b <= b' '
            || b >= 0x7f
            || matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
    };
    if !s.bytes().any(needs) {
        return s.to_owned();
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() + 16);
    for b in s.bytes() {
        if needs(b) {
            out.push('%');
            for nibble in [b >> 4, b & 0xf] {
                out.push(char::from(
                    HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
                ));
            }
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// A request-target's path and query (after the first `?`, if any).
pub(crate) fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn parses() {
        let u = Url::parse("http://a.example").unwrap();
        assert_eq!((u.host(), u.port(), u.target()), ("a.example", 80, "/"));
        let u = Url::parse("http://[::1]:8080?x").unwrap();
        assert_eq!((u.host(), u.port(), u.target()), ("::1", 8080, "/?x"));
        assert_eq!(u.authority(), "[::1]:8080");
        let u = Url::parse("https://h:443/a b/ü\"").unwrap();
        assert_eq!(u.authority(), "h");
        assert_eq!(u.target(), "/a%20b/%C3%BC%22");
        let u = Url::parse("http://h:/x/./y/../z").unwrap();
        assert_eq!((u.port(), u.target()), (80, "/x/z"));
    }

    #[test]
    fn rejects() {
        assert_eq!(Url::parse("/x"), Err(UrlError::Relative));
        assert_eq!(Url::parse("ftp://h/"), Err(UrlError::UnsupportedScheme));
        assert_eq!(Url::parse("http:/h"), Err(UrlError::MissingHost));
        assert_eq!(Url::parse("http:///p"), Err(UrlError::MissingHost));
        assert_eq!(Url::parse("http://u:p@h/"), Err(UrlError::UserInfo));
        assert_eq!(Url::parse("http://h:0/"), Err(UrlError::InvalidPort));
        assert_eq!(Url::parse("http://h:65536/"), Err(UrlError::InvalidPort));
        assert_eq!(Url::parse("http://h:+80/"), Err(UrlError::InvalidPort));
        assert_eq!(Url::parse("http://h\r\nX: y/"), Err(UrlError::InvalidHost));
        assert_eq!(Url::parse("http://[zz]/"), Err(UrlError::InvalidHost));
        assert_eq!(Url::parse("http://[::1/"), Err(UrlError::InvalidHost));
    }

    #[test]
    fn joins() {
        let base = Url::parse("http://h:81/a/b/c?q").unwrap();
        let cases = [
            ("https://o/x", "https://o/x"),
            ("//o2/y", "http://o2/y"),
            ("/p?z", "http://h:81/p?z"),
            ("?r", "http://h:81/a/b/c?r"),
            ("d", "http://h:81/a/b/d"),
            ("../d", "http://h:81/a/d"),
            ("../../../../d", "http://h:81/d"),
            ("./", "http://h:81/a/b/"),
            ("..", "http://h:81/a/"),
            ("", "http://h:81/a/b/c?q"),
            ("#f", "http://h:81/a/b/c?q"),
            ("d#f", "http://h:81/a/b/d"),
        ];
        for (reference, want) in cases {
            assert_eq!(
                base.join(reference).unwrap().to_string(),
                want,
                "{reference:?}"
            );
        }
        assert_eq!(base.join("mailto:x@y"), Err(UrlError::UnsupportedScheme));
    }
}
