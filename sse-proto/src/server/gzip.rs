//! gzip for event streams (feature `gzip`): one deflate stream per
//! response, sync-flushed after every batch so the receiver can decompress
//! each event as soon as it arrives.
//!
//! The compressor uses a 4 KiB window at level 1: events are small and
//! similar, so a small window loses little ratio, and it keeps the state of
//! a compressed connection small (zlib's defaults take about 256 KiB per
//! connection; see `docs/DESIGN.md` for the measured cost).

use alloc::vec::Vec;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

/// The base-2 logarithm of the compression window.
const WINDOW_BITS: u8 = 12;
/// The compression level (fast: a stream is compressed as it is written).
const LEVEL: u32 = 1;

/// The compressor of one response.
pub(crate) struct GzipState {
    compress: Compress,
    out: Vec<u8>,
}

impl core::fmt::Debug for GzipState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GzipState")
            .field("total_in", &self.compress.total_in())
            .field("total_out", &self.compress.total_out())
            .finish()
    }
}

impl GzipState {
    pub(crate) fn new() -> GzipState {
        GzipState {
            compress: Compress::new_gzip(Compression::new(LEVEL), WINDOW_BITS),
            out: Vec::new(),
        }
    }

    /// Compresses `input` (output may stay buffered until a flush).
    pub(crate) fn write(&mut self, input: &[u8]) {
        self.run(input, FlushCompress::None);
    }

    /// Sync-flushes: everything written so far becomes decompressible.
    pub(crate) fn flush(&mut self) -> Bytes {
        self.run(&[], FlushCompress::Sync);
        Bytes::from(core::mem::take(&mut self.out))
    }

    /// Ends the gzip member (deflate end and the CRC/length trailer).
    pub(crate) fn finish(&mut self) -> Bytes {
        self.run(&[], FlushCompress::Finish);
        Bytes::from(core::mem::take(&mut self.out))
    }

    /// Feeds `input` with `flush`, growing the output buffer until zlib is
    /// done: all input taken and, as zlib signals a completed flush, spare
    /// room left in the output.
    fn run(&mut self, mut input: &[u8], flush: FlushCompress) {
        loop {
            if self.out.capacity() - self.out.len() < 64 {
                self.out.reserve(input.len() / 2 + 256);
            }
            let before = self.compress.total_in();
            let status = self.compress.compress_vec(input, &mut self.out, flush);
            let consumed = usize::try_from(self.compress.total_in() - before).unwrap_or(0);
            input = input.get(consumed..).unwrap_or(&[]);
            match status {
                // Errors cannot happen with valid arguments; stop rather than
                // loop.
                Err(_) | Ok(Status::StreamEnd) => return,
                Ok(Status::Ok | Status::BufError) => {}
            }
            if input.is_empty() && self.out.capacity() > self.out.len() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate_all(d: &mut Decompress, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() * 8 + 64);
        let mut input = input;
        loop {
            let before = d.total_in();
            d.decompress_vec(input, &mut out, FlushDecompress::None)
                .unwrap();
            input = &input[(d.total_in() - before) as usize..];
            if input.is_empty() {
                return out;
            }
            out.reserve(out.capacity());
        }
    }

    #[test]
    fn each_flush_is_decompressible_at_once() {
        let mut g = GzipState::new();
        let mut d = Decompress::new_gzip(15);
        let mut seen = Vec::new();
        for i in 0..200 {
            let event = alloc::format!("id: {i}\ndata: {}\n\n", "x".repeat(i % 50));
            g.write(event.as_bytes());
            let out = g.flush();
            let got = inflate_all(&mut d, &out);
            assert_eq!(got, event.as_bytes(), "event {i} not flushed whole");
            seen.extend_from_slice(&got);
        }
        let tail = g.finish();
        assert!(!tail.is_empty());
        assert!(inflate_all(&mut d, &tail).is_empty());
    }

    #[test]
    fn large_input_is_taken_whole() {
        let mut g = GzipState::new();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        g.write(&big);
        let mut out = g.flush().to_vec();
        out.extend_from_slice(&g.finish());
        let mut d = flate2::read::GzDecoder::new(&out[..]);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut back).unwrap();
        assert_eq!(back, big);
    }
}
