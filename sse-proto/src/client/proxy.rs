//! Forward proxies: which proxy a URL goes through ([`Proxies`]: one for
//! `http`, one for `https`, and the `NO_PROXY` exceptions), read from the
//! usual environment variables or configured, and what to tell the proxy
//! ([`Proxy`]: where it is and its `Proxy-Authorization`).
//!
//! An `http` URL is fetched through the proxy with its absolute URL as the
//! request target; an `https` URL through a `CONNECT` tunnel, TLS running
//! end to end inside it. [`Connection`](super::Connection) does both.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

use super::http::Origin;
use crate::IpBlock;
use crate::http1::{Scheme, Url, UrlError};
use crate::str::Str;

/// Why a proxy setting cannot be used. `origin` names where it came from:
/// the environment variable (`HTTPS_PROXY`, ...) or "the configured proxy".
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// The proxy URL's scheme is not `http` or `https` (a SOCKS proxy, say).
    UnsupportedScheme {
        /// Where the setting came from.
        origin: Str,
        /// The scheme given.
        scheme: Str,
    },
    /// The proxy URL is malformed.
    InvalidUrl {
        /// Where the setting came from.
        origin: Str,
        /// What is wrong with it.
        error: UrlError,
    },
    /// The credentials in the proxy URL (`user:password@`) are not valid
    /// percent-encoded UTF-8.
    InvalidCredentials {
        /// Where the setting came from.
        origin: Str,
    },
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::UnsupportedScheme { origin, scheme } => write!(
                f,
                "{origin} names a {scheme:?} proxy, which is not supported: give an http:// or \
                 https:// proxy URL"
            ),
            ProxyError::InvalidUrl { origin, error } => {
                write!(f, "{origin} is not a usable proxy URL: {error}")
            }
            ProxyError::InvalidCredentials { origin } => write!(
                f,
                "{origin} holds credentials that are not valid percent-encoded UTF-8: \
                 percent-encode the user name and password"
            ),
        }
    }
}

impl core::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ProxyError::InvalidUrl { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// One forward proxy: its `http`/`https` URL and, when the URL holds
/// `user:password@`, the `Proxy-Authorization: Basic` value sent to it.
///
/// ```
/// use sse_proto::client::Proxy;
///
/// let proxy = Proxy::parse("http://alice:s%40cret@proxy.internal:3128")?;
/// assert_eq!((proxy.host(), proxy.port()), ("proxy.internal", 3128));
/// assert_eq!(proxy.authorization(), Some("Basic YWxpY2U6c0BjcmV0"));
/// // No scheme means http, as curl reads it.
/// assert_eq!(Proxy::parse("proxy.internal:3128")?.authority(), "proxy.internal:3128");
/// # Ok::<(), sse_proto::client::ProxyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    url: Url,
    authorization: Option<Str>,
    origin: Str,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The credentials stay out of logs.
        f.debug_struct("Proxy")
            .field("url", &self.url.to_string())
            .field("authorization", &self.authorization.as_ref().map(|_| "…"))
            .field("origin", &self.origin)
            .finish()
    }
}

impl Proxy {
    /// Parses a proxy URL: `http://host:port` or `https://host:port`, with
    /// optional `user:password@` (percent-encoded); without a scheme,
    /// `http://` is assumed; the port defaults to the scheme's.
    ///
    /// # Errors
    /// A [`ProxyError`] naming "the configured proxy".
    pub fn parse(url: &str) -> Result<Proxy, ProxyError> {
        Proxy::parse_from(url, Str::from_static("the configured proxy"))
    }

    /// Parses `url`, reporting errors as coming from `origin`.
    fn parse_from(url: &str, origin: Str) -> Result<Proxy, ProxyError> {
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme, rest),
            None => ("http", url),
        };
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(ProxyError::UnsupportedScheme {
                origin,
                scheme: Str::from(scheme.to_ascii_lowercase()),
            });
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, _) = rest.split_at(end);
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => (authority.get(..at), authority.get(at + 1..).unwrap_or("")),
            None => (None, authority),
        };
        let authorization = match userinfo {
            None => None,
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                let invalid = || ProxyError::InvalidCredentials {
                    origin: origin.clone(),
                };
                let user = percent_decode(user).ok_or_else(invalid)?;
                let password = percent_decode(password).ok_or_else(invalid)?;
                let credentials = format!("{user}:{password}");
                Some(Str::from(format!(
                    "Basic {}",
                    base64(credentials.as_bytes())
                )))
            }
        };
        let url = Url::parse(&format!("{scheme}://{host_port}/")).map_err(|error| {
            ProxyError::InvalidUrl {
                origin: origin.clone(),
                error,
            }
        })?;
        Ok(Proxy {
            url,
            authorization,
            origin,
        })
    }

    /// The proxy's host (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        self.url.host()
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.url.port()
    }

    /// `host:port`, as messages name the proxy.
    pub fn authority(&self) -> String {
        format!("{}:{}", bracketed(self.url.host()), self.url.port())
    }

    /// Whether the connection to the proxy itself is TLS (`https://`).
    pub fn is_https(&self) -> bool {
        self.url.scheme() == Scheme::Https
    }

    /// The `Proxy-Authorization` value (`Basic …`), when the URL held
    /// credentials.
    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
    }

    /// Where the setting came from: the environment variable's name, or
    /// "the configured proxy".
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// `host`, bracketed when it is an IPv6 address.
pub(crate) fn bracketed(host: &str) -> Cow<'_> {
    if host.contains(':') {
        Cow::Owned(format!("[{host}]"))
    } else {
        Cow::Borrowed(host)
    }
}

type Cow<'a> = alloc::borrow::Cow<'a, str>;

/// The proxies a client uses: one for `http` URLs, one for `https` URLs,
/// and the hosts that are reached directly (`NO_PROXY`).
///
/// [`Proxies::from_env`] reads them as curl and most HTTP clients do;
/// drivers do so unless the application sets
/// [`ClientConfig::proxies`](super::ClientConfig::proxies).
///
/// ```
/// use sse_proto::client::Proxies;
/// use sse_proto::http1::Url;
///
/// let env = |name: &str| match name {
///     "HTTPS_PROXY" => Some("http://proxy.internal:3128".to_owned()),
///     "NO_PROXY" => Some("internal.example, 10.0.0.0/8".to_owned()),
///     _ => None,
/// };
/// let proxies = Proxies::from_env(env);
/// let via = |url: &str| proxies.for_url(&Url::parse(url).unwrap()).map(|p| p.authority());
/// assert_eq!(via("https://api.example.com/"), Some("proxy.internal:3128".to_owned()));
/// assert_eq!(via("http://api.example.com/"), None); // no HTTP_PROXY
/// assert_eq!(via("https://a.internal.example/"), None);
/// assert_eq!(via("https://10.1.2.3/"), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxies {
    /// The setting for `http` URLs: a proxy, or why the one named is
    /// unusable (told only when a URL would go through it).
    http: Option<Result<Proxy, ProxyError>>,
    https: Option<Result<Proxy, ProxyError>>,
    no_proxy: Vec<Exception>,
}

/// One `NO_PROXY` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Exception {
    /// `*`: every host.
    Any,
    /// A domain: the name itself and every name under it.
    Domain(Str),
    /// An address, or a block of them (`10.0.0.0/8`).
    Net(IpBlock),
}

impl Proxies {
    /// No proxy: every URL is fetched directly.
    pub fn none() -> Proxies {
        Proxies::default()
    }

    /// `proxy` for both `http` and `https` URLs.
    pub fn all(proxy: Proxy) -> Proxies {
        Proxies {
            http: Some(Ok(proxy.clone())),
            https: Some(Ok(proxy)),
            no_proxy: Vec::new(),
        }
    }

    /// The proxy for `http` URLs.
    #[must_use]
    pub fn http(mut self, proxy: Proxy) -> Proxies {
        self.http = Some(Ok(proxy));
        self
    }

    /// The proxy for `https` URLs.
    #[must_use]
    pub fn https(mut self, proxy: Proxy) -> Proxies {
        self.https = Some(Ok(proxy));
        self
    }

    /// Hosts reached directly, written as `NO_PROXY` is: a comma- or
    /// space-separated list of domain names (`example.com` and
    /// `.example.com` both cover the name and every name under it), IP
    /// addresses, CIDR blocks (`10.0.0.0/8`, `fd00::/8`), or `*` for every
    /// host. A `:port` after an entry is ignored (the entry covers every
    /// port); entries that are none of these are skipped.
    #[must_use]
    pub fn no_proxy(mut self, list: &str) -> Proxies {
        self.no_proxy = list
            .split([',', ' ', '\t'])
            .filter_map(parse_exception)
            .collect();
        self
    }

    /// Reads the environment as curl does, through `var` (a lookup such as
    /// `|name| std::env::var(name).ok()`): `https_proxy` (or
    /// `HTTPS_PROXY`), `http_proxy` (or `HTTP_PROXY` as Go and Python read
    /// it, except in a CGI script, where a request could set it), and
    /// `all_proxy` (or `ALL_PROXY`) for a scheme without its own; then
    /// `no_proxy` (or `NO_PROXY`). The lower-case name wins, and a variable
    /// set to nothing means "no proxy" for its scheme.
    ///
    /// A value that is not a usable proxy URL (a SOCKS proxy, say) is not
    /// an error here: it is one for the URLs that would go through it
    /// ([`check`](Proxies::check)), so that a setting meant for other
    /// programs does not stop a client whose URLs never use it.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Proxies {
        // The first variable of `names` that is set, even to nothing.
        let get = |names: &[&'static str]| {
            names
                .iter()
                .find_map(|&name| var(name).map(|value| (name, value)))
        };
        let cgi = var("REQUEST_METHOD").is_some();
        let http_names: &[&'static str] = if cgi {
            &["http_proxy"]
        } else {
            &["http_proxy", "HTTP_PROXY"]
        };
        let setting = |found: Option<(&'static str, String)>| match found {
            None => None,
            Some((_, value)) if value.trim().is_empty() => Some(None),
            Some((name, value)) => Some(Some(Proxy::parse_from(&value, Str::from_static(name)))),
        };
        let all = || setting(get(&["all_proxy", "ALL_PROXY"])).flatten();
        let http = setting(get(http_names)).unwrap_or_else(all);
        let https = setting(get(&["https_proxy", "HTTPS_PROXY"])).unwrap_or_else(all);
        let mut proxies = Proxies {
            http,
            https,
            no_proxy: Vec::new(),
        };
        if let Some((_, list)) = get(&["no_proxy", "NO_PROXY"]) {
            proxies = proxies.no_proxy(&list);
        }
        proxies
    }

    /// The setting `url` goes by: `None` to connect directly (no proxy for
    /// its scheme, or `NO_PROXY` names its host).
    fn setting_for(&self, url: &Url) -> Option<&Result<Proxy, ProxyError>> {
        let setting = match url.scheme() {
            Scheme::Http => self.http.as_ref()?,
            Scheme::Https => self.https.as_ref()?,
        };
        let host = url.host().trim_end_matches('.');
        let ip = host.parse::<IpAddr>().ok();
        let excepted = self.no_proxy.iter().any(|rule| match (rule, ip) {
            (Exception::Any, _) => true,
            (Exception::Domain(domain), None) => {
                host == domain.as_str()
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|sub| sub.ends_with('.'))
            }
            (Exception::Net(block), Some(ip)) => block.contains(ip),
            _ => false,
        });
        (!excepted).then_some(setting)
    }

    /// The proxy to reach `url` through, or `None` to connect directly.
    /// `None` too when the proxy named for it is unusable: see
    /// [`check`](Proxies::check), which a client calls first.
    pub fn for_url(&self, url: &Url) -> Option<&Proxy> {
        self.setting_for(url)?.as_ref().ok()
    }

    /// Whether `url` can be fetched as configured.
    ///
    /// # Errors
    /// The [`ProxyError`] of the proxy setting `url` would go through,
    /// naming the variable it came from.
    pub fn check(&self, url: &Url) -> Result<(), ProxyError> {
        match self.setting_for(url) {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// Whether any proxy is set.
    pub fn is_empty(&self) -> bool {
        !matches!(self.http, Some(Ok(_))) && !matches!(self.https, Some(Ok(_)))
    }
}

/// One `NO_PROXY` entry, or `None` for an empty or unusable one.
fn parse_exception(entry: &str) -> Option<Exception> {
    let entry = entry.trim();
    if entry.is_empty() {
        return None;
    }
    if entry == "*" {
        return Some(Exception::Any);
    }
    let (address, bits) = match entry.split_once('/') {
        Some((address, bits)) => (address, Some(bits.parse::<u8>().ok()?)),
        None => (entry, None),
    };
    // `[::1]:8080`, `[::1]`, `::1`, `10.0.0.1:8080`, `10.0.0.1`.
    let bare = match address.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(inside, _)| inside),
        None if address.matches(':').count() == 1 => {
            address.split_once(':').map_or(address, |(h, _)| h)
        }
        None => address,
    };
    if let Ok(ip) = bare.parse::<IpAddr>() {
        let block = match bits {
            Some(bits) => IpBlock::new(ip, bits),
            None => Some(IpBlock::single(ip)),
        };
        return block.map(Exception::Net);
    }
    if bits.is_some() {
        return None;
    }
    let domain = bare
        .trim_start_matches(['.', '*'])
        .trim_end_matches('.')
        .to_ascii_lowercase();
    // A domain name is checked as a URL host would be.
    Origin::of(&format!("http://{domain}/"))?;
    Some(Exception::Domain(Str::from(domain)))
}

/// Percent-decodes `s` as UTF-8; `None` for a bad escape or bad UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(bytes.next()?).to_digit(16)?;
            let lo = char::from(bytes.next()?).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// Standard base64 with padding (RFC 4648 4), for `Basic` credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let index = usize::try_from((n >> shift) & 63).unwrap_or(0);
                out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::borrow::ToOwned;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("HTTP://Proxy:8080").unwrap();
        assert_eq!((p.host(), p.port(), p.is_https()), ("proxy", 8080, false));
        assert_eq!(p.authorization(), None);
        let p = Proxy::parse("https://[::1]").unwrap();
        assert_eq!((p.host(), p.port(), p.is_https()), ("::1", 443, true));
        assert_eq!(p.authority(), "[::1]:443");
        let p = Proxy::parse("http://user@h:1/ignored").unwrap();
        assert_eq!(p.authorization(), Some("Basic dXNlcjo="));
        assert!(matches!(
            Proxy::parse("socks5://h:1080"),
            Err(ProxyError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            Proxy::parse("http://h:99999"),
            Err(ProxyError::InvalidUrl {
                error: UrlError::InvalidPort,
                ..
            })
        ));
        assert!(matches!(
            Proxy::parse("http://a%zz@h"),
            Err(ProxyError::InvalidCredentials { .. })
        ));
        assert!(!format!("{:?}", Proxy::parse("http://u:secret@h").unwrap()).contains("secret"));
    }

    #[test]
    fn the_environment_is_read_as_curl_reads_it() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let p = Proxies::from_env(env(&[("HTTP_PROXY", "h1:1"), ("ALL_PROXY", "a:3")]));
        assert_eq!(p.for_url(&url("http://x/")).map(Proxy::port), Some(1));
        assert_eq!(p.for_url(&url("https://x/")).map(Proxy::port), Some(3));
        // Lower case first.
        let p = Proxies::from_env(env(&[("https_proxy", "a:1"), ("HTTPS_PROXY", "b:2")]));
        assert_eq!(p.for_url(&url("https://x/")).map(Proxy::port), Some(1));
        // An upper-case HTTP_PROXY is ignored in a CGI script.
        let p = Proxies::from_env(env(&[("HTTP_PROXY", "h:1"), ("REQUEST_METHOD", "GET")]));
        assert!(p.is_empty());
        // Set to nothing: no proxy for that scheme (the upper-case one
        // and ALL_PROXY are not read).
        let p = Proxies::from_env(env(&[
            ("https_proxy", " "),
            ("HTTPS_PROXY", "b:2"),
            ("ALL_PROXY", "c:3"),
        ]));
        assert_eq!(p.for_url(&url("https://x/")), None);
        assert_eq!(p.for_url(&url("http://x/")).map(Proxy::port), Some(3));
        // Errors name the variable, for the URLs that would use it only.
        let p = Proxies::from_env(env(&[("HTTPS_PROXY", "socks5://h")]));
        let e = p.check(&url("https://x/")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("HTTPS_PROXY names a \"socks5\" proxy"),
            "{e}"
        );
        assert_eq!(p.check(&url("http://x/")), Ok(()));
        let p = Proxies::from_env(env(&[("http_proxy", "http://h:0")]));
        let e = p.check(&url("http://x/")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("http_proxy is not a usable proxy URL"),
            "{e}"
        );
        // A SOCKS ALL_PROXY meant for other programs does not stop a URL
        // that NO_PROXY names, nor one whose scheme has its own proxy.
        let p = Proxies::from_env(env(&[
            ("ALL_PROXY", "socks5h://127.0.0.1:1080"),
            ("HTTPS_PROXY", "p:1"),
            ("NO_PROXY", "localhost"),
        ]));
        assert_eq!(p.check(&url("http://localhost/")), Ok(()));
        assert_eq!(p.check(&url("https://x/")), Ok(()));
        assert!(p.check(&url("http://x/")).is_err());
    }

    #[test]
    fn no_proxy_rules() {
        let proxies = Proxies::all(Proxy::parse("p:1").unwrap()).no_proxy(
            "example.com, .internal, 10.0.0.0/8,::1, [fd00::]/8, 192.168.1.5:8080, bad/x",
        );
        let direct = |u: &str| proxies.for_url(&url(u)).is_none();
        assert!(direct("http://example.com/"));
        assert!(direct("https://a.b.example.com/"));
        assert!(!direct("http://notexample.com/"));
        assert!(direct("http://internal/"));
        assert!(direct("http://x.internal/"));
        assert!(direct("http://10.200.0.1/"));
        assert!(!direct("http://11.0.0.1/"));
        assert!(direct("http://[::1]/"));
        assert!(direct("http://[fd12::1]/"));
        assert!(!direct("http://[fe80::1]/"));
        assert!(direct("http://192.168.1.5:9/"));
        // A trailing dot is the same name.
        assert!(direct("http://a.example.com./"));
        assert!(!direct("http://127.0.0.1/"));
        let all = Proxies::all(Proxy::parse("p:1").unwrap()).no_proxy("*");
        assert!(all.for_url(&url("http://anything/")).is_none());
        assert!(Proxies::none().for_url(&url("http://x/")).is_none());
    }
}
