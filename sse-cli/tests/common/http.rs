//! A tiny HTTP/1.1 client over real sockets: requests written by hand,
//! responses parsed with sse-proto's `http1` module.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sse_proto::http1::{BodyDecoder, BodyKind, ResponseHead, ResponseParser};

use super::WAIT;

/// The hub's publish and subscribe path.
pub const HUB_PATH: &str = "/.well-known/mercure";
/// The content type of a publish.
pub const FORM_TYPE: &str = "application/x-www-form-urlencoded";

/// A loopback port that was free a moment ago (nothing listens on it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("the bound address")
        .port()
}

/// A connection to `addr` (within [`WAIT`]), with read and write timeouts
/// of [`WAIT`] and no Nagle delay.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let socket = TcpStream::connect_timeout(&addr, WAIT).expect("connect to the hub");
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket.set_write_timeout(Some(WAIT)).unwrap();
    let _ = socket.set_nodelay(true);
    socket
}

/// A request that closes its connection: the request line, `Host:
/// 127.0.0.1` (unless `headers` name their own `Host`), `headers`,
/// `Content-Length` when there is a body (or the method is POST),
/// `Connection: close`, then the body.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    build_request(method, target, headers, body, true)
}

/// [`request`] without `Connection: close`, for a connection that stays
/// open for the next request.
pub fn keep_alive_request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    build_request(method, target, headers, body, false)
}

/// The request of [`request`] and [`keep_alive_request`].
fn build_request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        out.push_str("Host: 127.0.0.1\r\n");
    }
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `headers` with a form `Content-Type` in front.
pub fn with_form_type<'a>(headers: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("Content-Type", FORM_TYPE)];
    all.extend_from_slice(headers);
    all
}

/// The method of a raw request (its first word).
pub fn method_of(request: &[u8]) -> &str {
    let end = request.iter().position(|&b| b == b' ').unwrap_or(0);
    std::str::from_utf8(&request[..end]).unwrap_or("GET")
}

/// `fields` percent-encoded as a form body or a query string.
pub fn form(fields: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// The value of the field `name` (any case) among `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A whole response.
#[derive(Debug)]
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Resp {
    /// A response made of `head` and `body`.
    pub fn new(head: &ResponseHead, body: Vec<u8>) -> Resp {
        let headers = head
            .headers()
            .iter()
            .map(|h| {
                (
                    h.name().to_owned(),
                    String::from_utf8_lossy(h.value()).into_owned(),
                )
            })
            .collect();
        Resp {
            status: head.status(),
            headers,
            body,
        }
    }

    /// The value of the header field `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Fails unless the `Content-Type` starts with `prefix`.
    pub fn assert_content_type(&self, prefix: &str) {
        let content_type = self.header("content-type");
        assert!(
            content_type.is_some_and(|c| c.starts_with(prefix)),
            "Content-Type {content_type:?}, not {prefix}"
        );
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What one read from a connection gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Fill {
    /// Bytes arrived.
    Data,
    /// Nothing arrived before the deadline.
    Quiet,
    /// The connection ended (closed or reset).
    Closed,
}

/// A connection to the hub, with what was read past the last response.
pub struct Conn {
    /// The socket.
    pub socket: TcpStream,
    /// Bytes read and not parsed yet.
    pub buf: BytesMut,
    /// How many bytes were read from the socket in all.
    pub received: usize,
}

impl Conn {
    /// Connects to `addr`.
    pub fn open(addr: SocketAddr) -> Conn {
        Conn {
            socket: connect(addr),
            buf: BytesMut::new(),
            received: 0,
        }
    }

    /// Writes `bytes` (a request, or part of one).
    pub fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).expect("write the request");
    }

    /// Reads once into [`Conn::buf`], waiting until `deadline` at most.
    pub fn fill(&mut self, deadline: Instant) -> Fill {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Fill::Quiet;
        }
        self.socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut chunk = [0u8; 64 * 1024];
        match self.socket.read(&mut chunk) {
            Ok(0) => Fill::Closed,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                self.received += n;
                Fill::Data
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Fill::Quiet
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Fill::Data,
            Err(_) => Fill::Closed,
        }
    }

    /// Reads until [`Conn::buf`] holds at least `len` bytes; panics if they
    /// do not come by `deadline`.
    pub fn fill_to(&mut self, len: usize, deadline: Instant) {
        while self.buf.len() < len {
            assert_eq!(
                self.fill(deadline),
                Fill::Data,
                "fewer than {len} bytes came"
            );
        }
    }

    /// The next response head; panics unless one comes within [`WAIT`].
    pub fn head(&mut self) -> ResponseHead {
        let deadline = Instant::now() + WAIT;
        let mut parser = ResponseParser::new();
        loop {
            if let Some(head) = parser
                .parse_buf(&mut self.buf)
                .expect("a well-formed response head")
            {
                return head;
            }
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Quiet => panic!(
                    "no response head within {WAIT:?} (got {:?})",
                    String::from_utf8_lossy(&self.buf)
                ),
                Fill::Closed => panic!(
                    "the connection ended before a response head (got {:?})",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// The whole body that follows `head` (of a response to `method`);
    /// panics unless it ends within [`WAIT`] (or, for a body delimited by
    /// the connection's end, the connection ends).
    pub fn body(&mut self, head: &ResponseHead, method: &str) -> Vec<u8> {
        let kind = head.body_kind(method).expect("valid framing");
        let mut decoder = BodyDecoder::new(kind);
        let mut body = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            while let Some(piece) = decoder.decode(&mut self.buf).expect("a well-formed body") {
                body.extend_from_slice(&piece);
            }
            if decoder.is_done() {
                return body;
            }
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Quiet => panic!("the body did not end within {WAIT:?}"),
                Fill::Closed => {
                    assert_eq!(kind, BodyKind::CloseDelimited, "the body was cut short");
                    return body;
                }
            }
        }
    }

    /// The next whole response, to a request made with `method`.
    pub fn response(&mut self, method: &str) -> Resp {
        let head = self.head();
        let body = self.body(&head, method);
        Resp::new(&head, body)
    }

    /// Sends a keep-alive request and reads its response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        self.send(&keep_alive_request(method, target, headers, body));
        self.response(method)
    }

    /// `POST` of this (already encoded) form body to the hub's path, on
    /// this connection.
    pub fn post(&mut self, body: &[u8]) -> Resp {
        self.request("POST", HUB_PATH, &with_form_type(&[]), body)
    }

    /// The value of the sample `name` of `/metrics`, asked on this
    /// connection.
    pub fn metric(&mut self, name: &str) -> u64 {
        let resp = self.request("GET", "/metrics", &[], b"");
        assert_eq!(resp.status, 200, "/metrics: {}", resp.text());
        metric(&resp.text(), name)
    }
}

/// Sends `request` on a new connection to `addr` and reads the response.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut conn = Conn::open(addr);
    conn.send(request);
    conn.response(method_of(request))
}

/// The value of the sample `name` (without labels) in a Prometheus text.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// Reads `response`'s body until it holds `needle` (within [`WAIT`](super::WAIT)).
pub async fn read_until(response: &mut reqwest::Response, seen: &mut String, needle: &str) {
    let deadline = tokio::time::Instant::now() + super::WAIT;
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("{needle:?} did not arrive; got {seen:?}"))
            .expect("the stream failed")
            .unwrap_or_else(|| panic!("the stream ended before {needle:?}; got {seen:?}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The client's ends of loopback connections to `hub_port` from `ports`
/// that the kernel still holds, with their states (from `/proc/net/tcp`;
/// `06` is `TIME_WAIT`).
pub fn client_ends(hub_port: u16, ports: &[u16]) -> Vec<(u16, String)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port_of = |address: &str| {
        address
            .rsplit(':')
            .next()
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, state) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
            let local = port_of(local)?;
            (ports.contains(&local) && port_of(remote) == Some(hub_port))
                .then(|| (local, (*state).to_owned()))
        })
        .collect()
}

/// Waits (at most [`WAIT`](super::WAIT)) until the kernel holds none of the
/// client's ends of the connections to `hub_port` from `ports`; what is
/// still held then.
pub fn client_ends_left(hub_port: u16, ports: &[u16]) -> Vec<(u16, String)> {
    let deadline = Instant::now() + super::WAIT;
    let mut left = client_ends(hub_port, ports);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = client_ends(hub_port, ports);
    }
    left
}
