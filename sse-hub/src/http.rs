//! Requests and plain responses on the hub's connections: reading a head
//! and a bounded body within the header timeout, and writing a response
//! with a known length.

use bytes::{Bytes, BytesMut};
use sse_proto::http1::{
    BodyDecoder, BodyKind, Framing, HeadError, HeadLimits, RequestHead, RequestParser, Version,
};
use sse_tokio::server::{ServeError, TokioIo, read_request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use std::sync::Arc;

use super::budget::{ALLOWANCE, Charge, RequestMemory};
use crate::config::Config;

/// A request: its head and its whole body.
pub struct WholeRequest {
    pub head: RequestHead,
    pub body: Bytes,
}

/// A response with a body of known length.
#[derive(Clone, Debug)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    head_only: bool,
    /// Announced framing other than the body's length (`HEAD` on a stream).
    framing: Option<Framing>,
}

impl Response {
    /// A response with no body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            head_only: false,
            framing: None,
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        let mut text = text.into();
        if !text.ends_with('\n') && status >= 400 {
            text.push('\n');
        }
        Response::new(status)
            .content_type("text/plain; charset=utf-8")
            .body(text)
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The value of the first field named `name` (any case).
    #[cfg(test)]
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(self, value: &str) -> Response {
        self.header("Content-Type", value)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn headers(mut self, headers: Vec<(&'static str, String)>) -> Response {
        for (name, value) in headers {
            self.headers.push((name.to_owned(), value));
        }
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Response {
        self.body = body.into();
        self
    }

    /// Announces this framing instead of the body's length: for the head
    /// of an open-ended body (a stream) answering `HEAD`, which has none.
    pub fn framing(mut self, framing: Framing) -> Response {
        self.framing = Some(framing);
        self
    }

    /// For `HEAD`: the same head, no body.
    pub fn head_only(mut self) -> Response {
        self.head_only = true;
        self
    }

    /// The status, the fields and the body (empty for `HEAD`), for a
    /// server that writes responses itself.
    #[cfg(feature = "axum")]
    pub fn into_parts(self) -> (u16, Vec<(String, String)>, Bytes) {
        let body = if self.head_only {
            Bytes::new()
        } else {
            self.body
        };
        (self.status, self.headers, body)
    }

    /// The response as bytes on the wire.
    pub fn encode(&self, keep_alive: bool) -> Bytes {
        let mut response = match sse_proto::http1::Response::new(self.status) {
            Ok(r) => r,
            Err(_) => {
                return Bytes::from_static(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
                );
            }
        };
        for (name, value) in &self.headers {
            // Names and values are the hub's own; a bad one is dropped.
            let _ = response.header(name, value);
        }
        response.framing(
            self.framing
                .unwrap_or(Framing::Length(self.body.len() as u64)),
        );
        let mut buf = BytesMut::with_capacity(256 + self.body.len());
        response.encode(&mut buf);
        if !keep_alive {
            // `Connection` is a framing field the head builder reserves:
            // add it before the blank line.
            let len = buf.len();
            buf.truncate(len - 2);
            buf.extend_from_slice(b"Connection: close\r\n\r\n");
        }
        if !self.head_only {
            buf.extend_from_slice(&self.body);
        }
        buf.freeze()
    }
}

/// Writes `response`; the connection stays usable when `keep_alive`.
pub async fn write<S: AsyncWrite + Unpin>(
    socket: &mut S,
    response: &Response,
    keep_alive: bool,
) -> std::io::Result<()> {
    socket.write_all(&response.encode(keep_alive)).await
}

/// The answer to a client over the connection limits (in all, or per
/// address): 429, retry in a few seconds.
pub(crate) fn too_many_connections() -> Response {
    Response::text(429, "too many connections, try again later").header("Retry-After", "5")
}

/// The answer to a request that the request memory budget cannot hold.
pub(crate) fn short_of_memory() -> Response {
    Response::text(
        503,
        "the hub is receiving too many large requests at once; try again shortly",
    )
    .header("Retry-After", "1")
}

/// Why a head was not read.
enum HeadRead {
    /// The connection or the head failed.
    Failed(ServeError),
    /// The request memory budget cannot hold it.
    Memory,
    /// The client speaks HTTP/2 with prior knowledge.
    Http2,
}

/// The first bytes of an HTTP/2 connection with prior knowledge (h2c,
/// RFC 9113 section 3.3): a client (or a proxy) that sends them speaks
/// HTTP/2 from the first byte.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What came next on a connection.
pub enum Next {
    /// A whole request.
    Request(WholeRequest),
    /// The client closed the connection between requests.
    Closed,
    /// The HTTP/2 preface (still in the buffer): the connection speaks
    /// HTTP/2 from here on.
    Http2,
}

/// Reads the next request within the header timeout, its buffers charged
/// to `memory`. With `h2c`, the HTTP/2 preface is recognized (only ever
/// as a connection's first bytes: callers pass `h2c` for its first read).
/// `Err(response)`: answer this and close (400, 408, 413, 431, 503).
pub async fn read<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut S,
    buf: &mut BytesMut,
    config: &Config,
    memory: &Arc<RequestMemory>,
    h2c: bool,
) -> Result<Next, Response> {
    let mut charge = Charge::new(memory);
    // What was read ahead (a pipelined request) counts too.
    charge.set(buf.capacity()).map_err(|_| short_of_memory())?;
    let deadline = tokio::time::Instant::now() + config.header_timeout;
    let head =
        match tokio::time::timeout_at(deadline, read_head(socket, buf, &mut charge, h2c)).await {
            Err(_) => return Err(Response::text(408, "the request took too long to arrive")),
            Ok(Err(HeadRead::Memory)) => return Err(short_of_memory()),
            Ok(Err(HeadRead::Failed(ServeError::Closed))) => return Ok(Next::Closed),
            Ok(Err(HeadRead::Http2)) => return Ok(Next::Http2),
            Ok(Err(HeadRead::Failed(ServeError::Head(
                HeadError::TooLarge | HeadError::TooManyHeaders,
            )))) => {
                return Err(Response::text(431, "the request head is too large"));
            }
            Ok(Err(HeadRead::Failed(ServeError::Head(e)))) => {
                return Err(Response::text(400, format!("malformed request: {e}")));
            }
            Ok(Err(HeadRead::Failed(_))) => return Ok(Next::Closed),
            Ok(Ok(head)) => head,
        };
    let rest = buf;
    let kind = head
        .body_kind()
        .map_err(|e| Response::text(400, format!("malformed request framing: {e}")))?;
    let body = match kind {
        BodyKind::Length(0) => Bytes::new(),
        BodyKind::Length(n) if n > config.max_body as u64 => {
            return Err(Response::text(
                413,
                format!("the body is larger than {} bytes", config.max_body),
            ));
        }
        kind => {
            // A client that asked to be told before it sends its body
            // (`Expect: 100-continue`, as curl and others do for large
            // bodies) would otherwise wait for its own timeout.
            let expects = head
                .header_str("expect")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
            if expects && rest.is_empty() && head.version() == Version::Http11 {
                socket
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .await
                    .map_err(|_| Response::text(400, "the connection failed"))?;
            }
            let read = read_body(socket, rest, kind, config.max_body, &mut charge);
            match timeout(
                deadline.saturating_duration_since(tokio::time::Instant::now()),
                read,
            )
            .await
            {
                Err(_) => {
                    return Err(Response::text(
                        408,
                        "the request body took too long to arrive",
                    ));
                }
                Ok(result) => result?,
            }
        }
    };
    // An emptied buffer that a large request grew is given back: an idle
    // keep-alive connection holds no more than an ordinary one.
    if rest.is_empty() && rest.capacity() > ALLOWANCE {
        *rest = BytesMut::new();
    }
    Ok(Next::Request(WholeRequest { head, body }))
}

/// The most bytes a request head may take: enough for 1000 topic
/// selectors of realistic length in a subscribe URL.
const MAX_HEAD: usize = 128 * 1024;

/// The limits a request head is parsed with.
pub fn head_limits() -> HeadLimits {
    HeadLimits::default().max_head_len(MAX_HEAD).max_headers(64)
}

/// Reads until `buf` holds a whole request head, which is taken out of it;
/// bytes after the head (a body, a pipelined request) stay in `buf`.
async fn read_head<S: AsyncRead + Unpin>(
    socket: &mut S,
    buf: &mut BytesMut,
    charge: &mut Charge,
    h2c: bool,
) -> Result<RequestHead, HeadRead> {
    let mut parser = RequestParser::with_limits(head_limits());
    loop {
        if h2c && buf.starts_with(H2_PREFACE) {
            return Err(HeadRead::Http2);
        }
        // The start of the preface parses as a (bad) HTTP/1 head of its
        // own: wait for the whole preface before reading it as one.
        let preface_so_far = h2c && buf.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(buf);
        if !buf.is_empty() && !preface_so_far {
            match parser.parse_buf(buf) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(HeadRead::Failed(ServeError::Head(e))),
            }
        }
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(buf.len().clamp(1024, MAX_HEAD));
            charge.set(buf.capacity()).map_err(|_| HeadRead::Memory)?;
        }
        match socket.read_buf(buf).await {
            Ok(0) => return Err(HeadRead::Failed(ServeError::Closed)),
            Ok(_) => {}
            Err(e) => return Err(HeadRead::Failed(ServeError::Io(e))),
        }
    }
}

async fn read_body<S: AsyncRead + Unpin>(
    socket: &mut S,
    buf: &mut BytesMut,
    kind: BodyKind,
    max: usize,
    charge: &mut Charge,
) -> Result<Bytes, Response> {
    if matches!(kind, BodyKind::CloseDelimited) {
        // A request body needs a length or chunked coding.
        return Ok(Bytes::new());
    }
    let mut decoder = BodyDecoder::new(kind);
    // A declared length (within the limit, checked before) is taken at
    // once: charged in full, and no copy as the body grows.
    let mut body = match kind {
        BodyKind::Length(n) => BytesMut::with_capacity(usize::try_from(n).unwrap_or(max).min(max)),
        _ => BytesMut::new(),
    };
    charge
        .set(buf.capacity() + body.capacity())
        .map_err(|_| short_of_memory())?;
    loop {
        while let Some(piece) = decoder
            .decode(buf)
            .map_err(|e| Response::text(400, format!("malformed request body: {e}")))?
        {
            if body.len() + piece.len() > max {
                return Err(Response::text(
                    413,
                    format!("the body is larger than {max} bytes"),
                ));
            }
            body.extend_from_slice(&piece);
            charge
                .set(buf.capacity() + body.capacity())
                .map_err(|_| short_of_memory())?;
        }
        if decoder.is_done() {
            return Ok(body.freeze());
        }
        buf.reserve(8192);
        charge
            .set(buf.capacity() + body.capacity())
            .map_err(|_| short_of_memory())?;
        match socket.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(Response::text(400, "the request body ended early")),
            Ok(_) => {}
        }
    }
}

/// Answers a connection over the limits: 429 with `Retry-After`, after
/// reading its request head (so the client sees the answer, not a reset).
pub async fn reject_busy(socket: &mut TcpStream, wait: std::time::Duration) {
    let response = too_many_connections();
    refuse(
        socket,
        wait.min(std::time::Duration::from_secs(2)),
        &response,
    )
    .await;
}

/// Answers a connection accepted while the hub is out of file
/// descriptors: 503 with `Retry-After`, after reading its request head
/// (within `wait`), then closes it.
pub async fn reject_unavailable(socket: &mut TcpStream, wait: std::time::Duration) {
    let response = Response::text(503, "the hub is out of file descriptors, try again later")
        .header("Retry-After", "5");
    refuse(socket, wait, &response).await;
}

/// Reads a request head (within `wait`), answers `response` and closes.
async fn refuse(socket: &mut TcpStream, wait: std::time::Duration, response: &Response) {
    let _ = timeout(
        wait,
        read_request(&mut TokioIo::new(&mut *socket), HeadLimits::default()),
    )
    .await;
    // Bounded too: a client that reads nothing must not hold the socket.
    let _ = timeout(wait, write(socket, response, false)).await;
    let _ = socket.shutdown().await;
}
