//! A raw HTTP/2 client over TLS (ALPN `h2`), frame by frame: for the
//! tests that abuse the protocol (floods, resets, too many streams),
//! which a well-behaved client library will not send.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, StreamOwned};

/// Frame types.
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

/// Flags.
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// One frame as read.
#[derive(Clone, Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// A TLS connection speaking HTTP/2 (after the preface and an empty
/// SETTINGS).
pub struct H2 {
    tls: StreamOwned<ClientConnection, TcpStream>,
    authority: String,
    /// Bytes read but not yet a whole frame.
    pending: Vec<u8>,
    /// Whether a read found the connection closed (end of stream, or an
    /// error such as a reset).
    closed: bool,
}

impl H2 {
    /// Connects to `localhost:port`, trusting `ca`, and sends the preface.
    pub fn connect(port: u16, ca: &CertificateDer<'static>) -> H2 {
        let config = super::pki::client_config(ca, &[b"h2"]);
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(config, name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        tcp.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut h2 = H2 {
            tls: StreamOwned::new(conn, tcp),
            authority: format!("localhost:{port}"),
            pending: Vec::new(),
            closed: false,
        };
        h2.tls
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .unwrap();
        h2.send(SETTINGS, 0, 0, &[]).unwrap();
        assert_eq!(
            h2.tls.conn.alpn_protocol(),
            Some(&b"h2"[..]),
            "h2 negotiated"
        );
        h2
    }

    /// Writes one frame.
    pub fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> io::Result<()> {
        self.tls.write_all(&frame(kind, flags, stream, payload))
    }

    /// Writes many frames at once.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tls.write_all(bytes)
    }

    /// A `GET path` header block (HPACK literals, no Huffman).
    pub fn get_headers(&self, path: &str) -> Vec<u8> {
        self.headers("GET", path, &[])
    }

    /// A header block for `method path` with `extra` fields (HPACK
    /// literals, no Huffman).
    pub fn headers(&self, method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let fields = [
            (":method", method),
            (":scheme", "https"),
            (":path", path),
            (":authority", self.authority.as_str()),
        ];
        header_block(fields.iter().chain(extra))
    }

    /// Reads frames until `done` says so, the peer closes, or `limit`
    /// passes; every frame read.
    pub fn read_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Frame) -> bool,
    ) -> Vec<Frame> {
        let deadline = Instant::now() + limit;
        let mut frames = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while Instant::now() < deadline {
            while let Some(frame) = self.take_frame() {
                let stop = done(&frame);
                frames.push(frame);
                if stop {
                    return frames;
                }
            }
            match self.tls.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    break;
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        while let Some(frame) = self.take_frame() {
            frames.push(frame);
        }
        frames
    }

    /// Whether a read has found the connection closed by the other side
    /// (its last frames may be lost when it resets the connection).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn take_frame(&mut self) -> Option<Frame> {
        if self.pending.len() < 9 {
            return None;
        }
        let len = usize::from(self.pending[0]) << 16
            | usize::from(self.pending[1]) << 8
            | usize::from(self.pending[2]);
        if self.pending.len() < 9 + len {
            return None;
        }
        let rest = self.pending.split_off(9 + len);
        let bytes = std::mem::replace(&mut self.pending, rest);
        Some(Frame {
            kind: bytes[3],
            flags: bytes[4],
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
            payload: bytes[9..].to_vec(),
        })
    }
}

/// A frame's bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = Vec::with_capacity(9 + len);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A header block of these fields, in order (HPACK literals, no Huffman).
pub fn header_block<'a>(fields: impl IntoIterator<Item = &'a (&'a str, &'a str)>) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        literal(&mut block, name, value);
    }
    block
}

/// An HPACK literal header field without indexing, new name.
fn literal(block: &mut Vec<u8>, name: &str, value: &str) {
    block.push(0);
    string(block, name.as_bytes());
    string(block, value.as_bytes());
}

/// An HPACK string literal (no Huffman).
fn string(block: &mut Vec<u8>, bytes: &[u8]) {
    integer(block, 7, 0, bytes.len());
    block.extend_from_slice(bytes);
}

/// An HPACK integer with an `n`-bit prefix.
fn integer(block: &mut Vec<u8>, n: u32, first: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        block.push(first | value as u8);
        return;
    }
    block.push(first | max as u8);
    value -= max;
    while value >= 128 {
        block.push((value % 128 + 128) as u8);
        value /= 128;
    }
    block.push(value as u8);
}

/// The value of `setting` in a SETTINGS frame's payload.
pub fn setting(payload: &[u8], setting: u16) -> Option<u32> {
    payload.chunks_exact(6).find_map(|s| {
        (u16::from_be_bytes([s[0], s[1]]) == setting)
            .then(|| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
    })
}

/// The resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
