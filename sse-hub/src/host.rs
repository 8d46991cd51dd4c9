//! The `Host` check against DNS rebinding.
//!
//! A page on another site can make a browser send requests to a hub on
//! the browser's own machine by pointing a name it controls at 127.0.0.1
//! ("DNS rebinding"); the browser then treats the hub as part of that site.
//! Such requests carry the attacker's name in `Host`, so a hub bound to a
//! loopback address refuses (421) any request whose `Host` is not a
//! loopback name: `localhost`, `*.localhost`, `127.x.x.x` or `[::1]`, with
//! any port. `--allowed-host` adds names (a reverse proxy's public name,
//! say), and, on a hub bound to another address, turns the check on.
//!
//! Whatever the binding, an HTTP/1.1 request needs exactly one `Host`
//! (400 otherwise, as RFC 9112 requires); an HTTP/1.0 request may have
//! none (no browser sends one without it, so it cannot be a rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sse_proto::http1::{RequestHead, Version};

use super::http::Response;

/// Which `Host` values the hub accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCheck {
    mode: Mode,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// Any host (bound to a public address without `--allowed-host`, or
    /// `--allowed-host '*'`).
    Any,
    /// Loopback names and these (lowercase, without port or brackets).
    Only { extra: Vec<String>, loopback: bool },
}

impl HostCheck {
    /// The check for a hub bound to `listen`, with the `--allowed-host`
    /// values `allowed` (already normalized by [`normalize`]).
    pub fn new(listen: SocketAddr, allowed: &[String]) -> HostCheck {
        let mode = if allowed.iter().any(|a| a == "*") {
            Mode::Any
        } else if is_loopback_ip(listen.ip()) || !allowed.is_empty() {
            Mode::Only {
                extra: allowed.to_vec(),
                loopback: is_loopback_ip(listen.ip()),
            }
        } else {
            Mode::Any
        };
        HostCheck { mode }
    }

    /// Whether `Host` is checked at all.
    #[cfg(test)]
    fn is_on(&self) -> bool {
        matches!(self.mode, Mode::Only { .. })
    }

    /// Accepts the request, or says what to answer (400 or 421).
    pub fn check(&self, head: &RequestHead) -> Result<(), Response> {
        let mut hosts = head
            .headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case("host"));
        let value = match (hosts.next(), hosts.next()) {
            (Some(_), Some(_)) => {
                return Err(Response::text(
                    400,
                    "the request has more than one Host header; send exactly one",
                ));
            }
            (None, _) if head.version() == Version::Http10 => return Ok(()),
            (None, _) => {
                return Err(Response::text(
                    400,
                    "an HTTP/1.1 request needs a Host header (RFC 9112), such as `Host: 127.0.0.1:8080`",
                ));
            }
            (Some(host), None) => host
                .value_str()
                .ok_or_else(|| Response::text(400, "the Host header is not valid text"))?,
        };
        let Some(name) = host_name(value) else {
            return Err(Response::text(
                400,
                format!("the Host header {value:?} is not a host name with an optional port"),
            ));
        };
        let Mode::Only { extra, loopback } = &self.mode else {
            return Ok(());
        };
        if is_loopback_name(&name) || extra.contains(&name) {
            return Ok(());
        }
        let why = if *loopback {
            "this hub listens on a loopback address and answers only requests for a loopback \
             name (localhost, 127.0.0.1, [::1])"
        } else {
            "this hub answers only requests for the names given with --allowed-host and \
             loopback names"
        };
        Err(Response::text(
            421,
            format!(
                "refused: the request is for host {value:?}, and {why}, so that no web page can \
                 reach it by pointing its own domain name at this address (DNS rebinding); \
                 start the hub with --allowed-host {} to accept this name",
                shown(&name)
            ),
        ))
    }
}

/// The name as one writes it on the command line (brackets around an IPv6
/// address).
fn shown(name: &str) -> String {
    if name.contains(':') {
        format!("[{name}]")
    } else {
        name.to_owned()
    }
}

/// The host of a `Host` value (`name`, `name:port`, `[v6]:port`):
/// lowercase, without port, brackets or one trailing dot (an IPv6 address
/// in its canonical form). `None` when it is
/// not of that shape.
pub fn host_name(value: &str) -> Option<String> {
    let value = value.trim();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ip = inside.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => "",
            _ => after.strip_prefix(':')?,
        };
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // One spelling per address.
        return Some(ip.to_string());
    } else {
        match value.split_once(':') {
            Some((host, port)) => (host, port),
            None => (value, ""),
        }
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    // A reg-name, an IPv4 address or (bracketed above) an IPv6 address.
    let valid = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:".contains(&b);
    if !host.bytes().all(valid) {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

/// Whether `name` (from [`host_name`]) is a loopback name.
fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || name
            .parse::<Ipv6Addr>()
            .is_ok_and(|ip| is_loopback_ip(IpAddr::V6(ip)))
}

/// Whether the hub is bound to a loopback address (127.0.0.0/8, `::1`, or
/// an IPv4-mapped 127.x.x.x).
pub fn is_loopback_ip(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// An `--allowed-host` value as compared: lowercase, without port,
/// brackets or trailing dot; `*` stays `*`.
pub fn normalize(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value == "*" {
        return Ok("*".to_owned());
    }
    if value.contains("://") || value.contains('/') {
        return Err(format!(
            "--allowed-host {value}: give a host name (like hub.example.com), not a URL"
        ));
    }
    // An IPv6 address may be written without brackets.
    if let Ok(ip) = value.parse::<Ipv6Addr>() {
        return Ok(ip.to_string());
    }
    let name = host_name(value).filter(|n| !n.is_empty()).ok_or_else(|| {
        format!("--allowed-host {value}: not a host name (like hub.example.com or 10.0.0.5)")
    })?;
    Ok(match name.parse::<Ipv6Addr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sse_proto::http1::RequestParser;

    fn head(raw: &str) -> RequestHead {
        let mut buf = bytes::BytesMut::from(raw.as_bytes());
        RequestParser::new().parse_buf(&mut buf).unwrap().unwrap()
    }

    fn get(host: &str) -> RequestHead {
        head(&format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"))
    }

    fn status(check: &HostCheck, head: &RequestHead) -> u16 {
        check.check(head).err().map_or(200, |r| r.status())
    }

    #[test]
    fn loopback_binding_accepts_only_loopback_names() {
        let check = HostCheck::new("127.0.0.1:8080".parse().unwrap(), &[]);
        assert!(check.is_on());
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "127.1.2.3:1",
            "localhost",
            "LOCALHOST:8080",
            "localhost.:8080",
            "app.localhost:3000",
            "[::1]:8080",
            "[::1]",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert_eq!(status(&check, &get(ok)), 200, "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:8080",
            "[::2]:8080",
            "",
            "notlocalhost",
        ] {
            assert_eq!(status(&check, &get(refused)), 421, "{refused}");
        }
        let refusal = check.check(&get("evil.example:8080")).unwrap_err();
        let text = format!("{refusal:?}");
        assert!(text.contains("--allowed-host evil.example"), "{text}");
    }

    #[test]
    fn allowed_hosts_widen_the_list() {
        let allowed = vec![normalize("Hub.Example.COM:443").unwrap()];
        let check = HostCheck::new("127.0.0.1:8080".parse().unwrap(), &allowed);
        assert_eq!(status(&check, &get("hub.example.com")), 200);
        assert_eq!(status(&check, &get("HUB.example.com:8080")), 200);
        assert_eq!(status(&check, &get("localhost")), 200);
        assert_eq!(status(&check, &get("other.example.com")), 421);
        // Any port of an IPv6 name, with or without brackets in the flag.
        let v6 = vec![
            normalize("fd00::1").unwrap(),
            normalize("[fd00::2]:9").unwrap(),
        ];
        let check = HostCheck::new("127.0.0.1:8080".parse().unwrap(), &v6);
        assert_eq!(status(&check, &get("[fd00::1]:80")), 200);
        assert_eq!(status(&check, &get("[fd00:0::2]")), 200);
    }

    #[test]
    fn public_binding_checks_only_with_allowed_hosts() {
        let open = HostCheck::new("0.0.0.0:8080".parse().unwrap(), &[]);
        assert!(!open.is_on());
        assert_eq!(status(&open, &get("anything.example")), 200);
        let listed = HostCheck::new("0.0.0.0:8080".parse().unwrap(), &["hub.example".to_owned()]);
        assert_eq!(status(&listed, &get("hub.example:8080")), 200);
        assert_eq!(status(&listed, &get("127.0.0.1:8080")), 200);
        assert_eq!(status(&listed, &get("evil.example")), 421);
        // `*`: no check, even on loopback.
        let any = HostCheck::new("127.0.0.1:8080".parse().unwrap(), &["*".to_owned()]);
        assert!(!any.is_on());
        assert_eq!(status(&any, &get("evil.example")), 200);
        // An IPv6 loopback binding is loopback too.
        assert!(HostCheck::new("[::1]:8080".parse().unwrap(), &[]).is_on());
    }

    #[test]
    fn host_header_shape() {
        let open = HostCheck::new("0.0.0.0:8080".parse().unwrap(), &[]);
        // HTTP/1.1 without Host, or with two: 400 whatever the binding.
        assert_eq!(status(&open, &head("GET / HTTP/1.1\r\n\r\n")), 400);
        assert_eq!(
            status(&open, &head("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")),
            400
        );
        assert_eq!(status(&open, &get("a b")), 400);
        assert_eq!(status(&open, &get("a:80x")), 400);
        assert_eq!(status(&open, &get("[nope]:80")), 400);
        // HTTP/1.0 without Host is accepted, even on loopback.
        let loopback = HostCheck::new("127.0.0.1:8080".parse().unwrap(), &[]);
        assert_eq!(status(&loopback, &head("GET / HTTP/1.0\r\n\r\n")), 200);
        assert_eq!(
            status(
                &loopback,
                &head("GET / HTTP/1.0\r\nHost: evil.example\r\n\r\n")
            ),
            421
        );
    }

    #[test]
    fn flag_values_are_normalized_or_refused() {
        assert_eq!(normalize(" Example.COM. ").unwrap(), "example.com");
        assert_eq!(normalize("example.com:8080").unwrap(), "example.com");
        assert_eq!(normalize("[::1]:80").unwrap(), "::1");
        assert_eq!(normalize("*").unwrap(), "*");
        assert!(
            normalize("https://example.com")
                .unwrap_err()
                .contains("not a URL")
        );
        assert!(normalize("exa mple").is_err());
        assert!(normalize("").is_err());
    }
}
