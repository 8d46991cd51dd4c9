//! [`BodyDecoder`]: the message body as a state machine over `chunked`,
//! `Content-Length` and close-delimited framing.

use core::fmt;

use bytes::{Buf, Bytes, BytesMut};

/// How a message body is delimited (RFC 9112 6.3); see
/// [`ResponseHead::body_kind`](super::ResponseHead::body_kind) and
/// [`RequestHead::body_kind`](super::RequestHead::body_kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// Exactly this many bytes (0: no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the peer closes the connection (responses only).
    CloseDelimited,
}

crate::limits::size_limits! {
    /// Bounds on the framing bytes of a chunked body (the data itself
    /// streams through and is not buffered).
    pub struct BodyLimits {
        /// Sets the longest chunk-size line accepted (size and extensions,
        /// without the CRLF; default 4 KiB).
        max_chunk_line_len: 4 * 1024, chunk_line_len, "The longest chunk-size line accepted.";
        /// Sets the most trailer bytes accepted (all trailer lines and the
        /// final CRLF; default 16 KiB). Trailers are skipped, not returned.
        max_trailers_len: 16 * 1024, trailers_len, "The most trailer bytes accepted.";
    }
}

/// Why a body cannot be decoded. After one, the decoder returns the same
/// error from then on; the connection cannot be reused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyError {
    /// A chunk-size line does not start with hex digits or holds a
    /// character that is not allowed there.
    InvalidChunkSize,
    /// A chunk size does not fit in 64 bits.
    ChunkSizeOverflow,
    /// A chunk-size line is longer than [`BodyLimits::chunk_line_len`].
    ChunkLineTooLong,
    /// A chunk-size line or chunk data is not followed by CRLF.
    MissingCrlf,
    /// A trailer line is malformed (bare CR or LF).
    InvalidTrailer,
    /// The trailers are longer than [`BodyLimits::trailers_len`].
    TrailersTooLarge,
    /// The connection ended before the body did (fewer bytes than
    /// `Content-Length`, or a chunked body without its last chunk).
    Truncated,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyError::InvalidChunkSize => "malformed chunk-size line in a chunked body",
            BodyError::ChunkSizeOverflow => "chunk size in a chunked body does not fit in 64 bits",
            BodyError::ChunkLineTooLong => {
                "chunk-size line is longer than the limit (huge chunk extensions?); raise BodyLimits::max_chunk_line_len if the peer is trusted"
            }
            BodyError::MissingCrlf => "chunked body: a chunk-size line or chunk data is not followed by CRLF",
            BodyError::InvalidTrailer => "chunked body: malformed trailer line",
            BodyError::TrailersTooLarge => {
                "chunked body: trailers are longer than the limit; raise BodyLimits::max_trailers_len if the peer is trusted"
            }
            BodyError::Truncated => {
                "the connection closed before the end of the body (the response is incomplete)"
            }
        })
    }
}

impl core::error::Error for BodyError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Length(u64),
    Close,
    /// Reading the hex digits of a chunk size (`digits`: any seen yet).
    Size {
        size: u64,
        digits: bool,
    },
    /// Whitespace after the size digits.
    SizeWs {
        size: u64,
    },
    /// A chunk extension (skipped).
    Ext {
        size: u64,
    },
    /// CR seen at the end of a size line.
    SizeLf {
        size: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line or of the final CRLF.
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
    Failed(BodyError),
}

impl State {
    /// States that consume framing bytes (rather than body data).
    fn is_framing(self) -> bool {
        !matches!(
            self,
            State::Length(_) | State::Close | State::Data(_) | State::Done | State::Failed(_)
        )
    }
}

/// Decodes a message body, handing out the body bytes as zero-copy slices
/// of the input.
///
/// Hand it the bytes read after the head, in a `BytesMut` you keep
/// appending to, and call [`BodyDecoder::decode`] until it returns
/// `Ok(None)`; at the end of the connection call
/// [`BodyDecoder::handle_eof`]. The output does not depend on how the input
/// is split (boundaries may fall anywhere, also inside a chunk-size line or
/// the CRLF after a chunk), and no input makes it panic. Chunk extensions
/// and trailers are checked for syntax and skipped.
///
/// ```
/// use bytes::BytesMut;
/// use sse_proto::http1::{BodyDecoder, BodyKind};
///
/// let mut decoder = BodyDecoder::new(BodyKind::Chunked);
/// let mut buf = BytesMut::from(&b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT"[..]);
/// let mut body = Vec::new();
/// while let Some(piece) = decoder.decode(&mut buf)? {
///     body.extend_from_slice(&piece);
/// }
/// assert_eq!(body, b"hello world");
/// assert!(decoder.is_done());
/// assert_eq!(&buf[..], b"NEXT"); // bytes after the body stay in the buffer
/// # Ok::<(), sse_proto::http1::BodyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: State,
    limits: BodyLimits,
    /// Bytes of the current chunk-size line, or of the trailers.
    count: usize,
}

impl BodyDecoder {
    /// A decoder for a body framed as `kind`, with the default
    /// [`BodyLimits`].
    pub fn new(kind: BodyKind) -> BodyDecoder {
        BodyDecoder::with_limits(kind, BodyLimits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(kind: BodyKind, limits: BodyLimits) -> BodyDecoder {
        let state = match kind {
            BodyKind::Length(0) => State::Done,
            BodyKind::Length(n) => State::Length(n),
            BodyKind::Chunked => State::Size {
                size: 0,
                digits: false,
            },
            BodyKind::CloseDelimited => State::Close,
        };
        BodyDecoder {
            state,
            limits,
            count: 0,
        }
    }

    /// Whether the whole body has been decoded. Bytes left in the buffer
    /// then belong to the next message.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the next piece of body from the front of `buf`: `Ok(Some)`
    /// with a non-empty piece, or `Ok(None)` when `buf` holds no more body
    /// (read more, unless [`BodyDecoder::is_done`]). Framing bytes are
    /// consumed as they are read, so `buf` never needs to hold more than
    /// what has just arrived.
    ///
    /// # Errors
    /// A [`BodyError`] for malformed chunked framing; it is returned again
    /// by every later call.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, BodyError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Failed(e) => return Err(e),
                State::Close => {
                    return Ok((!buf.is_empty()).then(|| buf.split().freeze()));
                }
                State::Length(remaining) | State::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                    let left = remaining.saturating_sub(n as u64);
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), _) => State::Length(left),
                        (_, 0) => State::DataCr,
                        _ => State::Data(left),
                    };
                    return Ok(Some(buf.split_to(n).freeze()));
                }
                _ => {
                    let mut used = 0;
                    let mut result = Ok(());
                    while self.state.is_framing() {
                        let Some(&b) = buf.get(used) else { break };
                        used += 1;
                        result = self.step(b);
                        if result.is_err() {
                            break;
                        }
                    }
                    buf.advance(used);
                    if let Err(e) = result {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                    if self.state.is_framing() {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Consumes one framing byte.
    fn step(&mut self, b: u8) -> Result<(), BodyError> {
        let in_size_line = matches!(
            self.state,
            State::Size { .. } | State::SizeWs { .. } | State::Ext { .. }
        );
        if in_size_line && b != b'\r' {
            self.count += 1;
            if self.count > self.limits.max_chunk_line_len {
                return Err(BodyError::ChunkLineTooLong);
            }
        }
        let in_trailers = matches!(
            self.state,
            State::TrailerStart | State::TrailerLine | State::TrailerLf | State::EndLf
        );
        if in_trailers {
            self.count += 1;
            if self.count > self.limits.max_trailers_len {
                return Err(BodyError::TrailersTooLarge);
            }
        }
        self.state = match (self.state, b) {
            (State::Size { size, .. }, _) if b.is_ascii_hexdigit() => {
                let digit = u64::from(hex_value(b));
                let size = size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(BodyError::ChunkSizeOverflow)?;
                State::Size { size, digits: true }
            }
            (State::Size { digits: false, .. }, _) => return Err(BodyError::InvalidChunkSize),
            (State::Size { size, .. } | State::SizeWs { size }, b' ' | b'\t') => {
                State::SizeWs { size }
            }
            (State::Size { size, .. } | State::SizeWs { size }, b';') => State::Ext { size },
            (State::Size { size, .. } | State::SizeWs { size } | State::Ext { size }, b'\r') => {
                State::SizeLf { size }
            }
            (State::Size { .. } | State::SizeWs { .. }, _) => {
                return Err(BodyError::InvalidChunkSize);
            }
            (State::Ext { size }, _) => {
                if b != b'\t' && (b < b' ' || b == 0x7f) {
                    return Err(BodyError::InvalidChunkSize);
                }
                State::Ext { size }
            }
            (State::SizeLf { size }, b'\n') => {
                self.count = 0;
                if size == 0 {
                    State::TrailerStart
                } else {
                    State::Data(size)
                }
            }
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Size {
                size: 0,
                digits: false,
            },
            (State::SizeLf { .. } | State::DataCr | State::DataLf, _) => {
                return Err(BodyError::MissingCrlf);
            }
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart | State::TrailerLine, b'\n') => {
                return Err(BodyError::InvalidTrailer);
            }
            (State::TrailerLine, b'\r') => State::TrailerLf,
            (State::TrailerStart | State::TrailerLine, _) => State::TrailerLine,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            (State::TrailerLf | State::EndLf, _) => return Err(BodyError::InvalidTrailer),
            (state, _) => state,
        };
        Ok(())
    }

    /// Tells the decoder that the connection has ended. Decode all buffered
    /// input first.
    ///
    /// # Errors
    /// [`BodyError::Truncated`] when a `Content-Length` or chunked body had
    /// not ended (a close-delimited body ends normally here), or the error
    /// the decoder had already failed with.
    pub fn handle_eof(&mut self) -> Result<(), BodyError> {
        match self.state {
            State::Done | State::Close => {
                self.state = State::Done;
                Ok(())
            }
            State::Failed(e) => Err(e),
            _ => {
                self.state = State::Failed(BodyError::Truncated);
                Err(BodyError::Truncated)
            }
        }
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Decodes `input` fed one byte at a time; returns the body and the
    /// outcome after EOF.
    fn run(kind: BodyKind, input: &[u8]) -> (Vec<u8>, Result<(), BodyError>, bool) {
        let mut d = BodyDecoder::new(kind);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut outcome = Ok(());
        for &b in input {
            buf.extend_from_slice(&[b]);
            loop {
                match d.decode(&mut buf) {
                    Ok(Some(piece)) => body.extend_from_slice(&piece),
                    Ok(None) => break,
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
        }
        let done = d.is_done();
        (body, outcome.and_then(|()| d.handle_eof()), done)
    }

    #[test]
    fn chunked() {
        let (body, r, done) = run(
            BodyKind::Chunked,
            b"3\r\nabc\r\nA; x=\"y\"\r\n0123456789\r\n0\r\nT: v\r\n\r\n",
        );
        assert_eq!(
            (body.as_slice(), r, done),
            (&b"abc0123456789"[..], Ok(()), true)
        );
        let (_, r, _) = run(BodyKind::Chunked, b"3 \r\nabc\r\n0\r\n\r\n");
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn chunked_errors() {
        let cases: &[(&[u8], BodyError)] = &[
            (b"\r\n", BodyError::InvalidChunkSize),
            (b"x\r\n", BodyError::InvalidChunkSize),
            (b"3x\r\n", BodyError::InvalidChunkSize),
            (b"3\n", BodyError::InvalidChunkSize),
            (b"3\rx", BodyError::MissingCrlf),
            (b"3\r\nabcX", BodyError::MissingCrlf),
            (b"3\r\nabc\rX", BodyError::MissingCrlf),
            (b"10000000000000000\r\n", BodyError::ChunkSizeOverflow),
            (b"0\r\nT\n", BodyError::InvalidTrailer),
            (b"0\r\n\rX", BodyError::InvalidTrailer),
            (b"3\r\nab", BodyError::Truncated),
            (b"3;\x01\r\n", BodyError::InvalidChunkSize),
        ];
        for (input, want) in cases {
            assert_eq!(run(BodyKind::Chunked, input).1, Err(*want), "{input:?}");
        }
        let mut d = BodyDecoder::with_limits(
            BodyKind::Chunked,
            BodyLimits::default().max_chunk_line_len(3),
        );
        let mut buf = BytesMut::from(&b"0000\r\n"[..]);
        assert_eq!(d.decode(&mut buf), Err(BodyError::ChunkLineTooLong));
        assert_eq!(d.decode(&mut buf), Err(BodyError::ChunkLineTooLong));
    }

    #[test]
    fn length_and_close() {
        assert_eq!(
            run(BodyKind::Length(3), b"abc"),
            (b"abc".to_vec(), Ok(()), true)
        );
        assert_eq!(run(BodyKind::Length(3), b"ab").1, Err(BodyError::Truncated));
        assert_eq!(run(BodyKind::Length(0), b""), (Vec::new(), Ok(()), true));
        assert_eq!(
            run(BodyKind::CloseDelimited, b"xyz"),
            (b"xyz".to_vec(), Ok(()), false)
        );
        let mut d = BodyDecoder::new(BodyKind::Length(2));
        let mut buf = BytesMut::from(&b"abcd"[..]);
        assert_eq!(d.decode(&mut buf).unwrap().as_deref(), Some(&b"ab"[..]));
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], b"cd");
    }
}
