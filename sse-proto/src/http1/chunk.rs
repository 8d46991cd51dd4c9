//! Chunked transfer coding on the writing side: the size line of a chunk
//! and the last chunk.
//!
//! Compiled with or without feature `http1`: the server's `StreamWriter`
//! frames event-stream bodies with them, and the codec's `encode_chunk`
//! writes the same bytes.

/// The end of a chunked body: the last (empty) chunk and an empty trailer
/// section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A chunk-size line, `{len:x}\r\n`, without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSize {
    buf: [u8; 18],
    len: u8,
}

impl ChunkSize {
    /// The size line for a chunk of `len` bytes.
    pub fn new(len: usize) -> ChunkSize {
        let mut buf = [0u8; 18];
        let mut digits = [0u8; 16];
        let mut n = len;
        let mut count = 0;
        loop {
            if let (Some(d), Some(hex)) = (digits.get_mut(count), HEX.get(n & 15)) {
                *d = *hex;
            }
            count += 1;
            n >>= 4;
            if n == 0 || count == digits.len() {
                break;
            }
        }
        for (dst, src) in buf.iter_mut().zip(digits.iter().take(count).rev()) {
            *dst = *src;
        }
        if let Some(end) = buf.get_mut(count..count + 2) {
            end.copy_from_slice(b"\r\n");
        }
        ChunkSize {
            buf,
            len: (count + 2) as u8,
        }
    }
}

impl AsRef<[u8]> for ChunkSize {
    fn as_ref(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes() {
        assert_eq!(ChunkSize::new(0).as_ref(), b"0\r\n");
        assert_eq!(ChunkSize::new(10).as_ref(), b"a\r\n");
        assert_eq!(ChunkSize::new(0x1234abc).as_ref(), b"1234abc\r\n");
        assert_eq!(ChunkSize::new(usize::MAX).as_ref(), b"ffffffffffffffff\r\n");
    }
}
