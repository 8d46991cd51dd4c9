//! Just enough HTTP/1.1 for the load tool: response heads, a de-chunker
//! and a scanner that pulls `data:` lines out of an event stream, without
//! allocating per event (the client must not be the bottleneck).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// The longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// What the load tool needs from a response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `Content-Length`, if any.
    pub content_length: Option<usize>,
}

/// Where the head in `buf` ends (the index after its blank line), if it is
/// complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4)
}

/// Parses a complete response head (status line and fields, up to and
/// including the blank line).
///
/// # Errors
/// A message for a malformed status line or `Content-Length`.
pub fn parse_head(head: &[u8]) -> Result<ResponseHead, String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked |= value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        }
    }
    Ok(ResponseHead {
        status,
        chunked,
        content_length,
    })
}

/// Reads from `io` into `buf` until `buf` holds a whole response head;
/// returns the parsed head and its length (what follows it in `buf` is the
/// start of the body).
///
/// # Errors
/// The peer closing first, an oversized or malformed head, or I/O errors.
pub async fn read_head<IO: AsyncRead + Unpin>(
    io: &mut IO,
    buf: &mut Vec<u8>,
) -> io::Result<(ResponseHead, usize)> {
    loop {
        if let Some(end) = head_end(buf) {
            let head = parse_head(buf.get(..end).unwrap_or_default()).map_err(io::Error::other)?;
            return Ok((head, end));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("response head too large"));
        }
        if io.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Where the de-chunker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// In a chunk-size line: the size so far, and whether an extension
    /// (after `;`) started.
    Size { size: u64, ext: bool },
    /// In chunk data: this many bytes left.
    Data(u64),
    /// After chunk data: the CRLF (this many bytes of it left).
    DataEnd(u8),
    /// The last chunk came: the body ended.
    Done,
}

/// Parses an event stream body (chunked or not) and hands the value of every
/// `data:` line (leading space stripped, CR stripped) to a callback.
#[derive(Debug)]
pub struct BodyScanner {
    chunk: Option<Chunk>,
    /// A line split across reads.
    partial: Vec<u8>,
}

impl BodyScanner {
    /// A scanner for a body with the given framing.
    pub fn new(chunked: bool) -> Self {
        Self {
            chunk: chunked.then_some(Chunk::Size {
                size: 0,
                ext: false,
            }),
            partial: Vec::new(),
        }
    }

    /// Feeds the next bytes of the body. Returns `Ok(true)` once the body has
    /// ended (the last chunk).
    ///
    /// # Errors
    /// A message for broken chunk framing.
    pub fn feed(
        &mut self,
        mut bytes: &[u8],
        on_data: &mut impl FnMut(&[u8]),
    ) -> Result<bool, String> {
        let Some(mut state) = self.chunk else {
            self.scan(bytes, on_data);
            return Ok(false);
        };
        while let Some((&first, rest)) = bytes.split_first() {
            match &mut state {
                Chunk::Size { size, ext } => {
                    bytes = rest;
                    match first {
                        b'\n' => {
                            state = if *size == 0 {
                                Chunk::Done
                            } else {
                                Chunk::Data(*size)
                            };
                        }
                        b'\r' => {}
                        b';' => *ext = true,
                        _ if *ext => {}
                        _ => {
                            let digit = char::from(first)
                                .to_digit(16)
                                .ok_or_else(|| format!("bad chunk size byte {first:#x}"))?;
                            *size = size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(u64::from(digit)))
                                .ok_or("chunk size overflows")?;
                        }
                    }
                }
                Chunk::Data(left) => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    let (data, rest) = bytes.split_at(take);
                    self.scan(data, on_data);
                    bytes = rest;
                    *left -= take as u64;
                    if *left == 0 {
                        state = Chunk::DataEnd(2);
                    }
                }
                Chunk::DataEnd(left) => {
                    let expected = if *left == 2 { b'\r' } else { b'\n' };
                    if first != expected {
                        return Err(format!("expected CRLF after chunk data, got {first:#x}"));
                    }
                    bytes = rest;
                    *left -= 1;
                    if *left == 0 {
                        state = Chunk::Size {
                            size: 0,
                            ext: false,
                        };
                    }
                }
                Chunk::Done => break,
            }
        }
        self.chunk = Some(state);
        Ok(state == Chunk::Done)
    }

    /// Splits body bytes into lines; hands on `data:` values.
    fn scan(&mut self, mut bytes: &[u8], on_data: &mut impl FnMut(&[u8])) {
        while let Some(i) = memchr::memchr(b'\n', bytes) {
            let (line, rest) = bytes.split_at(i);
            bytes = rest.get(1..).unwrap_or_default();
            if self.partial.is_empty() {
                line_data(line, on_data);
            } else {
                self.partial.extend_from_slice(line);
                line_data(&self.partial, on_data);
                self.partial.clear();
            }
        }
        self.partial.extend_from_slice(bytes);
    }
}

/// Calls `on_data` with the value if `line` is a `data` field.
fn line_data(line: &[u8], on_data: &mut impl FnMut(&[u8])) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(value) = line.strip_prefix(b"data:") {
        on_data(value.strip_prefix(b" ").unwrap_or(value));
    }
}

/// Parses the load tool's event data, `{seq} {unix_nanos}`.
pub fn parse_stamp(data: &[u8]) -> Option<(u64, u64)> {
    let space = memchr::memchr(b' ', data)?;
    let (seq, stamp) = data.split_at(space);
    Some((parse_u64(seq)?, parse_u64(stamp.get(1..)?)?))
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(scanner: &mut BodyScanner, pieces: &[&[u8]]) -> (Vec<String>, bool) {
        let mut out = Vec::new();
        let mut ended = false;
        for piece in pieces {
            ended = scanner
                .feed(piece, &mut |d| {
                    out.push(String::from_utf8_lossy(d).into_owned())
                })
                .unwrap();
        }
        (out, ended)
    }

    #[test]
    fn head() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nxx";
        let end = head_end(raw).unwrap();
        assert_eq!(&raw[end..], b"xx");
        let head = parse_head(&raw[..end]).unwrap();
        assert_eq!(head.status, 200);
        assert!(head.chunked);
        assert_eq!(head.content_length, None);
        let head = parse_head(b"HTTP/1.1 429 Too Many\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!((head.status, head.content_length), (429, Some(12)));
    }

    #[test]
    fn chunked_split_everywhere() {
        let body =
            b"13\r\nid: 1\ndata: 0 123\n\n\r\n13;x=y\r\nid: 2\r\ndata:1 456\n\n\r\n0\r\n\r\n";
        for split in 0..body.len() {
            let mut scanner = BodyScanner::new(true);
            let (out, ended) = collect(&mut scanner, &[&body[..split], &body[split..]]);
            assert_eq!(out, ["0 123", "1 456"], "split at {split}");
            assert!(ended);
        }
        let mut scanner = BodyScanner::new(true);
        let pieces: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(collect(&mut scanner, &pieces).0, ["0 123", "1 456"]);
    }

    #[test]
    fn plain_body() {
        let mut scanner = BodyScanner::new(false);
        let (out, ended) = collect(&mut scanner, &[b": hi\nid: 1\nda", b"ta: 7 8\n\n"]);
        assert_eq!(out, ["7 8"]);
        assert!(!ended);
    }

    #[test]
    fn bad_chunk() {
        let mut scanner = BodyScanner::new(true);
        assert!(scanner.feed(b"zz\r\n", &mut |_| {}).is_err());
    }

    #[test]
    fn stamps() {
        assert_eq!(
            parse_stamp(b"12 1700000000000000000"),
            Some((12, 1_700_000_000_000_000_000))
        );
        assert_eq!(parse_stamp(b"12"), None);
        assert_eq!(parse_stamp(b"a 1"), None);
        assert_eq!(parse_stamp(b"1 "), None);
    }
}
