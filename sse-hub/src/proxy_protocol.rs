//! The PROXY protocol (HAProxy's, versions 1 and 2), as a load balancer in
//! front of the hub sends it at the start of each connection: the client's
//! address before the connection's own bytes. Read only from trusted
//! proxies; a connection that does not start with it is served as it is.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The version 2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version 1 line, CRLF included (the specification's bound).
const V1_MAX: usize = 107;

/// The longest version 2 header taken (addresses plus TLVs such as a load
/// balancer's connection id); longer is refused.
const V2_MAX: usize = 1024;

/// What the start of a connection is.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a PROXY protocol header: the connection's own bytes.
    NotProxy,
    /// A prefix of one: more bytes are needed.
    Incomplete,
    /// A whole header of `len` bytes; `source` is the client's address
    /// (`None` for `LOCAL`, `UNKNOWN` or an unspecified family: the
    /// connection is the proxy's own).
    Done {
        /// The client's address and port.
        source: Option<SocketAddr>,
        /// The header's length, to consume.
        len: usize,
    },
    /// A malformed header.
    Invalid(&'static str),
}

/// Parses the start of a connection.
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.len() < V2_SIGNATURE.len() && V2_SIGNATURE.starts_with(buf) && !buf.is_empty() {
        return Parsed::Incomplete;
    }
    if buf.starts_with(V2_SIGNATURE) {
        return parse_v2(buf);
    }
    let v1 = b"PROXY ";
    if buf.len() < v1.len() {
        return if v1.starts_with(buf) && !buf.is_empty() {
            Parsed::Incomplete
        } else {
            Parsed::NotProxy
        };
    }
    if buf.starts_with(v1) {
        return parse_v1(buf);
    }
    Parsed::NotProxy
}

fn parse_v1(buf: &[u8]) -> Parsed {
    let window = buf.get(..V1_MAX.min(buf.len())).unwrap_or(buf);
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Parsed::Invalid("a PROXY v1 line longer than 107 bytes")
        } else {
            Parsed::Incomplete
        };
    };
    let len = end + 2;
    let Ok(line) = std::str::from_utf8(&window[..end]) else {
        return Parsed::Invalid("a PROXY v1 line that is not ASCII");
    };
    let mut parts = line.split(' ').skip(1);
    let source = match parts.next() {
        Some("UNKNOWN") => None,
        Some(family @ ("TCP4" | "TCP6")) => {
            let (Some(src), Some(_dst), Some(sport), Some(_dport), None) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            ) else {
                return Parsed::Invalid("a PROXY v1 line without its four fields");
            };
            let ip: Option<IpAddr> = match family {
                "TCP4" => src.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
                _ => src.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            };
            let (Some(ip), Ok(port)) = (ip, sport.parse::<u16>()) else {
                return Parsed::Invalid("a PROXY v1 line with a bad address or port");
            };
            Some(SocketAddr::new(ip, port))
        }
        _ => return Parsed::Invalid("a PROXY v1 line with an unknown protocol"),
    };
    Parsed::Done { source, len }
}

fn parse_v2(buf: &[u8]) -> Parsed {
    let Some(&[ver_cmd, family, hi, lo]) = buf.get(12..16) else {
        return Parsed::Incomplete;
    };
    if ver_cmd >> 4 != 2 {
        return Parsed::Invalid("a PROXY v2 header of another version");
    }
    let len = 16 + usize::from(u16::from_be_bytes([hi, lo]));
    if len > V2_MAX {
        return Parsed::Invalid("a PROXY v2 header over 1 KiB");
    }
    let Some(body) = buf.get(16..len) else {
        return Parsed::Incomplete;
    };
    let source = match (ver_cmd & 0x0f, family) {
        // LOCAL: the proxy's own connection (a health check).
        (0, _) => None,
        // PROXY over TCP or UDP, IPv4.
        (1, 0x11 | 0x12) => match body.get(..12) {
            Some(a) => Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
                u16::from_be_bytes([a[8], a[9]]),
            )),
            None => return Parsed::Invalid("a PROXY v2 header too short for IPv4"),
        },
        // IPv6.
        (1, 0x21 | 0x22) => match body.get(..36) {
            Some(a) => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&a[..16]);
                Some(SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(octets)),
                    u16::from_be_bytes([a[32], a[33]]),
                ))
            }
            None => return Parsed::Invalid("a PROXY v2 header too short for IPv6"),
        },
        // Unspecified or Unix sockets: no address to use.
        (1, _) => None,
        _ => return Parsed::Invalid("a PROXY v2 header with an unknown command"),
    };
    Parsed::Done { source, len }
}

/// Reads a PROXY protocol header from the start of `socket` if there is
/// one, consuming exactly its bytes: the client's address, or `None`
/// (no header, or one without an address). Bytes that are not a header
/// stay unread.
///
/// # Errors
/// A malformed header (`InvalidData`), or the socket's error.
pub async fn read(socket: &mut TcpStream) -> io::Result<Option<SocketAddr>> {
    let mut buf = [0u8; V2_MAX];
    loop {
        let n = socket.peek(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        match parse(buf.get(..n).unwrap_or_default()) {
            Parsed::NotProxy => return Ok(None),
            Parsed::Invalid(why) => return Err(io::Error::new(io::ErrorKind::InvalidData, why)),
            Parsed::Done { source, len } => {
                let mut header = vec![0u8; len];
                socket.read_exact(&mut header).await?;
                return Ok(source);
            }
            // A header split over segments: wait for the rest (the
            // caller bounds the wait; peeking again at once would spin).
            Parsed::Incomplete => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(source: &str, len: usize) -> Parsed {
        Parsed::Done {
            source: Some(source.parse().unwrap()),
            len,
        }
    }

    #[test]
    fn version_1() {
        let line = b"PROXY TCP4 198.51.100.4 10.0.0.1 5555 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(parse(line), done("198.51.100.4:5555", 43));
        let line = b"PROXY TCP6 2001:db8::1 fd00::1 7 443\r\n";
        assert_eq!(parse(line), done("[2001:db8::1]:7", line.len()));
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Done {
                source: None,
                len: 15
            }
        );
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4"), Parsed::Incomplete);
        assert_eq!(parse(b"PRO"), Parsed::Incomplete);
        assert!(matches!(
            parse(b"PROXY TCP4 x y 1 2\r\n"),
            Parsed::Invalid(_)
        ));
        assert!(matches!(
            parse(b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"),
            Parsed::Invalid(_)
        ));
        assert!(matches!(parse(&[b'P'; 200][..]), Parsed::NotProxy));
        let long = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(parse(&long), Parsed::Invalid(_)));
    }

    #[test]
    fn version_2() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0, 12]);
        h.extend_from_slice(&[198, 51, 100, 4, 10, 0, 0, 1, 0x15, 0xb3, 1, 187]);
        assert_eq!(parse(&h), done("198.51.100.4:5555", 28));
        assert_eq!(parse(&h[..20]), Parsed::Incomplete);
        assert_eq!(parse(&h[..5]), Parsed::Incomplete);
        // LOCAL.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(
            parse(&local),
            Parsed::Done {
                source: None,
                len: 16
            }
        );
        // IPv6 with a TLV after the addresses.
        let mut v6 = V2_SIGNATURE.to_vec();
        v6.extend_from_slice(&[0x21, 0x21, 0, 40]);
        let mut src = [0u8; 16];
        src[0] = 0x20;
        src[1] = 0x01;
        src[15] = 1;
        v6.extend_from_slice(&src);
        v6.extend_from_slice(&[0u8; 16]);
        v6.extend_from_slice(&[0, 9, 1, 187, 4, 0, 1, 7]);
        assert_eq!(parse(&v6), done("[2001::1]:9", 56));
        // Too long, another version.
        let mut big = V2_SIGNATURE.to_vec();
        big.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(parse(&big), Parsed::Invalid(_)));
        let mut v3 = V2_SIGNATURE.to_vec();
        v3.extend_from_slice(&[0x31, 0x11, 0, 12]);
        assert!(matches!(parse(&v3), Parsed::Invalid(_)));
        // Short for its family.
        let mut short = V2_SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert!(matches!(parse(&short), Parsed::Invalid(_)));
    }

    #[test]
    fn plain_requests_are_not_headers() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Parsed::NotProxy);
        assert_eq!(parse(&[0x16, 0x03, 0x01]), Parsed::NotProxy);
        assert_eq!(parse(b""), Parsed::NotProxy);
    }
}
