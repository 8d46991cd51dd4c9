//! Building blocks of the `sse-load` tool, which drives a running hub over
//! loopback: the bits of HTTP/1.1 it speaks ([`http`]), the per-subscriber
//! bookkeeping of delivered events ([`track`]), and reading a process's
//! resident memory from `/proc`.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::time::{SystemTime, UNIX_EPOCH};

pub mod http;
pub mod track;

/// The resident set size (`VmRSS`) of process `pid`, in KiB.
///
/// # Errors
/// When `/proc/PID/status` cannot be read or has no `VmRSS` line (the
/// process is gone).
pub fn vm_rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

/// Nanoseconds since the Unix epoch (the wall clock, shared by every process
/// on the machine: publisher and subscribers compare their readings).
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A hub's base URL, `http://HOST:PORT`, resolved once.
#[derive(Clone, Debug)]
pub struct HubUrl {
    /// The socket address to connect to.
    pub addr: SocketAddr,
    /// The `Host` header value (`HOST:PORT` as given).
    pub host: String,
}

impl HubUrl {
    /// Parses `http://HOST:PORT` (a trailing `/` is allowed; no path, no TLS).
    ///
    /// # Errors
    /// A message when the URL is not of that form or does not resolve.
    pub fn parse(url: &str) -> Result<Self, String> {
        let host = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?
            .trim_end_matches('/');
        if host.contains('/') {
            return Err(format!("{url}: give the hub's base URL, without a path"));
        }
        let addr = host
            .to_socket_addrs()
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: does not resolve"))?;
        Ok(Self {
            addr,
            host: host.to_owned(),
        })
    }
}

/// Percent-encodes `value` for a query string or form body (everything but
/// unreserved characters).
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        assert_eq!(url_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(url_encode("x-1_2.3~"), "x-1_2.3~");
    }

    #[test]
    fn own_rss() {
        assert!(vm_rss_kib(std::process::id()).is_ok_and(|kib| kib > 0));
    }

    #[test]
    fn parses_url() {
        let url = HubUrl::parse("http://127.0.0.1:8080/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.host, "127.0.0.1:8080");
        assert_eq!(url.addr.port(), 8080);
        assert!(HubUrl::parse("https://x:1").is_err());
    }
}
