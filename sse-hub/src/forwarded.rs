//! Real client addresses behind proxies (`--trusted-proxy`): from a
//! trusted peer only, the client is the rightmost hop of `Forwarded`
//! (RFC 7239) or, without it, `X-Forwarded-For` that is not itself a
//! trusted proxy. From anyone else these headers are ignored: a client
//! cannot choose the address its limits and logs are counted under.

use std::net::IpAddr;

use sse_proto::IpBlock;
use sse_proto::http1::RequestHead;

/// The trusted proxies: addresses and CIDR blocks.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Vec<IpBlock>,
}

impl TrustedProxies {
    /// Parses `--trusted-proxy` values: `10.0.0.0/8`, `192.0.2.7`,
    /// `fd00::/8`, `::1`.
    ///
    /// # Errors
    /// A sentence naming the value that is neither an address nor a block.
    pub fn parse(values: &[String]) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for value in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            let invalid = || {
                format!(
                    "--trusted-proxy {value:?} is not an IP address or CIDR block (write e.g. \
                     10.0.0.0/8, 192.0.2.7 or fd00::/8)"
                )
            };
            nets.push(IpBlock::parse(value).ok_or_else(invalid)?);
        }
        Ok(TrustedProxies { nets })
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|block| block.contains(ip))
    }

    /// The client of a request that `peer` sent: `peer` itself unless it is
    /// a trusted proxy; then, right to left through the forwarded hops, the
    /// first that is not a trusted proxy. A hop that names no address
    /// (`unknown`, an obfuscated `_name`) ends the walk at the proxy that
    /// reported it.
    pub fn client(&self, peer: IpAddr, head: &RequestHead) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded = joined(head, "forwarded");
        let hops: Vec<Option<IpAddr>> = match &forwarded {
            Some(value) => forwarded_for(value),
            None => match joined(head, "x-forwarded-for") {
                Some(value) => value.split(',').map(|hop| parse_node(hop.trim())).collect(),
                None => Vec::new(),
            },
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) if self.trusts(*ip) => client = *ip,
                Some(ip) => return *ip,
                None => return client,
            }
        }
        client
    }
}

/// Every value of the header `name`, joined with commas (a list split
/// over several lines is one list).
fn joined(head: &RequestHead, name: &str) -> Option<String> {
    let values: Vec<&str> = head
        .headers()
        .iter()
        .filter(|h| h.is(name))
        .filter_map(|h| h.value_str())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The `for=` of each element of a `Forwarded` value, in order; `None`
/// for an element without a usable one.
fn forwarded_for(value: &str) -> Vec<Option<IpAddr>> {
    split_outside_quotes(value, ',')
        .into_iter()
        .map(|element| {
            split_outside_quotes(element, ';')
                .into_iter()
                .find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| value.trim().trim_matches('"'))
                })
                .and_then(parse_node)
        })
        .collect()
}

/// `value` split at `separator` where it is not inside a quoted string.
fn split_outside_quotes(value: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// A node as proxies write it: `192.0.2.1`, `192.0.2.1:4711`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`, `2001:db8::1`. `None` for
/// `unknown`, obfuscated names and anything else.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    // `a.b.c.d:port`.
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use sse_proto::http1::RequestParser;

    fn head(fields: &str) -> RequestHead {
        let mut buf = BytesMut::from(format!("GET / HTTP/1.1\r\nHost: h\r\n{fields}\r\n").as_str());
        RequestParser::new().parse_buf(&mut buf).unwrap().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.7".into(), "fd00::/8".into()])
            .unwrap()
    }

    #[test]
    fn a_mapped_proxy_address_is_that_ipv4_address_only() {
        // Once a panic in debug builds and every IPv4 peer trusted in
        // release builds (the bit count of the mapped form was kept).
        let t = TrustedProxies::parse(&["::ffff:10.0.0.1".into()]).unwrap();
        assert!(t.trusts(ip("10.0.0.1")));
        assert!(t.trusts(ip("::ffff:10.0.0.1")));
        assert!(!t.trusts(ip("10.0.0.2")));
        assert!(!t.trusts(ip("192.0.2.1")));
    }

    #[test]
    fn headers_from_anyone_else_are_ignored() {
        let h = head("X-Forwarded-For: 1.2.3.4\r\nForwarded: for=5.6.7.8\r\n");
        assert_eq!(trusted().client(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = trusted();
        // A client that forges a first hop does not get it.
        let h = head("X-Forwarded-For: 6.6.6.6, 198.51.100.4, 10.1.1.1\r\n");
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("198.51.100.4"));
        // Split over two lines, with ports and brackets.
        let h = head("X-Forwarded-For: 198.51.100.4:5555\r\nX-Forwarded-For: [fd00::1]\r\n");
        assert_eq!(t.client(ip("192.0.2.7"), &h), ip("198.51.100.4"));
        // Every hop trusted: the leftmost.
        let h = head("X-Forwarded-For: 10.9.9.9, 10.1.1.1\r\n");
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(t.client(ip("10.0.0.1"), &head("")), ip("10.0.0.1"));
        // IPv4-mapped peers are trusted as their IPv4 address.
        let h = head("X-Forwarded-For: 198.51.100.4\r\n");
        assert_eq!(t.client(ip("::ffff:10.0.0.1"), &h), ip("198.51.100.4"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let t = trusted();
        let h = head(
            "X-Forwarded-For: 1.1.1.1\r\nForwarded: for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.2.2.2;by=\"x;y\"\r\n",
        );
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("2001:db8:cafe::17"));
        // An obfuscated or unknown hop ends the walk at the proxy that saw it.
        let h = head("Forwarded: for=198.51.100.4, for=_hidden, for=10.2.2.2\r\n");
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.2.2.2"));
        let h = head("Forwarded: for=unknown\r\n");
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn trusted_proxy_values() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["nonsense".into()]).is_err());
        assert!(TrustedProxies::parse(&["10.0.0.0/x".into()]).is_err());
        let t = TrustedProxies::parse(&["0.0.0.0/0".into()]).unwrap();
        assert!(t.trusts(ip("203.0.113.1")));
        assert!(!t.trusts(ip("2001:db8::1")));
    }
}
