//! gzip for event streams (feature `gzip`): one gzip member per response,
//! sync-flushed after every batch so the receiver can decompress each event
//! as soon as it arrives.
//!
//! The gzip header and trailer are written here around a raw deflate
//! stream, which lets an idle stream give its compressor back: after a sync
//! flush the deflate stream is at a block boundary, so a new compressor can
//! continue it (its blocks only refer back to their own data), and a
//! keep-alive can be sent as a stored block without any compressor. A
//! compressor takes about 200 KiB (zlib's hash tables at its default memory
//! level); a stream holds one only while events flow, and drops it at the
//! first keep-alive after it went idle, so an idle compressed stream costs
//! a few hundred bytes.

use alloc::vec::Vec;

use bytes::Bytes;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// The base-2 logarithm of the compression window: events are small and
/// similar, so a 4 KiB window loses little ratio.
const WINDOW_BITS: u8 = 12;
/// The compression level (fast: a stream is compressed as it is written).
const LEVEL: u32 = 1;

/// A gzip header: magic, deflate, no flags, no time, no extra flags,
/// unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// An empty final deflate block (fixed Huffman, just the end-of-block
/// code): ends the deflate stream when no compressor is at hand.
const EMPTY_FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// The compressor of one response.
pub(crate) struct GzipState {
    compress: Option<Compress>,
    crc: Crc,
    header_sent: bool,
    out: Vec<u8>,
}

impl core::fmt::Debug for GzipState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GzipState")
            .field("compressor", &self.compress.is_some())
            .field("total_in", &self.crc.amount())
            .finish()
    }
}

impl GzipState {
    pub(crate) fn new() -> GzipState {
        GzipState {
            compress: None,
            crc: Crc::new(),
            header_sent: false,
            out: Vec::new(),
        }
    }

    fn start(&mut self) {
        if !self.header_sent {
            self.header_sent = true;
            self.out.extend_from_slice(&HEADER);
        }
    }

    /// Compresses `input` (output may stay buffered until a flush).
    pub(crate) fn write(&mut self, input: &[u8]) {
        self.start();
        self.crc.update(input);
        let compress = self.compress.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(LEVEL), false, WINDOW_BITS)
        });
        run(compress, &mut self.out, input, FlushCompress::None);
    }

    /// Sync-flushes: everything written so far becomes decompressible.
    pub(crate) fn flush(&mut self) -> Bytes {
        self.start();
        if let Some(compress) = &mut self.compress {
            run(compress, &mut self.out, &[], FlushCompress::Sync);
        }
        Bytes::from(core::mem::take(&mut self.out))
    }

    /// Drops the compressor (its memory, about 200 KiB) between batches:
    /// every batch ends with a sync flush, so the deflate stream is at a
    /// block boundary and the next batch can start a new compressor.
    pub(crate) fn release(&mut self) {
        self.compress = None;
    }

    /// Whether a compressor is held (events flowed since the last
    /// [`GzipState::idle_keep_alive`]).
    #[cfg(test)]
    pub(crate) fn has_compressor(&self) -> bool {
        self.compress.is_some()
    }

    /// Drops the compressor (the stream is idle) and returns `data` as a
    /// stored deflate block: for keep-alives, which need no compression.
    pub(crate) fn idle_keep_alive(&mut self, data: &'static [u8]) -> Bytes {
        self.start();
        if let Some(mut compress) = self.compress.take() {
            // Whatever is still buffered goes out before the stored block.
            run(&mut compress, &mut self.out, &[], FlushCompress::Sync);
        }
        self.crc.update(data);
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        // A non-final stored block: three zero header bits, padded to the
        // byte boundary the last sync flush left, then LEN and NLEN.
        self.out.push(0);
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(&(!len).to_le_bytes());
        self.out
            .extend_from_slice(data.get(..usize::from(len)).unwrap_or(data));
        Bytes::from(core::mem::take(&mut self.out))
    }

    /// Ends the gzip member: the final deflate block and the CRC/length
    /// trailer.
    pub(crate) fn finish(&mut self) -> Bytes {
        self.start();
        match self.compress.take() {
            Some(mut compress) => run(&mut compress, &mut self.out, &[], FlushCompress::Finish),
            None => self.out.extend_from_slice(&EMPTY_FINAL_BLOCK),
        }
        self.out.extend_from_slice(&self.crc.sum().to_le_bytes());
        self.out.extend_from_slice(&self.crc.amount().to_le_bytes());
        Bytes::from(core::mem::take(&mut self.out))
    }
}

/// Feeds `input` with `flush`, growing `out` until zlib is done: all input
/// taken and, as zlib signals a completed flush, spare room left in the
/// output.
fn run(compress: &mut Compress, out: &mut Vec<u8>, mut input: &[u8], flush: FlushCompress) {
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(input.len() / 2 + 256);
        }
        let before = compress.total_in();
        let status = compress.compress_vec(input, out, flush);
        let consumed = usize::try_from(compress.total_in() - before).unwrap_or(0);
        input = input.get(consumed..).unwrap_or(&[]);
        match status {
            // Errors cannot happen with valid arguments; stop rather than
            // loop.
            Err(_) | Ok(Status::StreamEnd) => return,
            Ok(Status::Ok | Status::BufError) => {}
        }
        if input.is_empty() && out.capacity() > out.len() {
            return;
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

    fn gunzip(all: &[u8]) -> Vec<u8> {
        let mut d = flate2::read::GzDecoder::new(all);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut back).unwrap();
        back
    }

    /// A gzip stream as a client reads it: each piece inflated as it
    /// arrives (it must hold exactly what was sent since the last one),
    /// and the whole checked by a strict reader at the end.
    struct Reader {
        inflate: Decompress,
        whole: Vec<u8>,
        sent: Vec<u8>,
    }

    impl Reader {
        fn new() -> Reader {
            Reader {
                inflate: Decompress::new_gzip(15),
                whole: Vec::new(),
                sent: Vec::new(),
            }
        }

        /// `piece` arrived; it must inflate to `plain` at once.
        fn piece(&mut self, piece: &[u8], plain: &[u8]) {
            assert_eq!(inflate_all(&mut self.inflate, piece), plain);
            self.whole.extend_from_slice(piece);
            self.sent.extend_from_slice(plain);
        }

        /// Writes and flushes `plain` through `g`, then reads the piece.
        fn event(&mut self, g: &mut GzipState, plain: &[u8]) {
            g.write(plain);
            let piece = g.flush();
            self.piece(&piece, plain);
        }

        /// Ends the stream; the whole must be valid gzip (a strict reader
        /// checks the trailer's CRC and length) of everything sent.
        fn end(mut self, g: &mut GzipState) {
            let tail = g.finish();
            self.piece(&tail, b"");
            assert_eq!(gunzip(&self.whole), self.sent);
        }
    }

    #[test]
    fn each_flush_is_decompressible_at_once() {
        let mut g = GzipState::new();
        let mut reader = Reader::new();
        for i in 0..200 {
            let event = alloc::format!("id: {i}\ndata: {}\n\n", "x".repeat(i % 50));
            reader.event(&mut g, event.as_bytes());
        }
        reader.end(&mut g);
    }

    #[test]
    fn idle_streams_drop_the_compressor_and_resume_with_a_new_one() {
        let mut g = GzipState::new();
        let mut reader = Reader::new();
        // A keep-alive first (no compressor yet), then events and
        // keep-alives in turn.
        for round in 0..5 {
            let keep_alive = g.idle_keep_alive(b":\n");
            assert!(!g.has_compressor());
            reader.piece(&keep_alive, b":\n");
            for i in 0..3 {
                let event =
                    alloc::format!("data: round {round} event {i} {}\n\n", "ab".repeat(i * 20));
                reader.event(&mut g, event.as_bytes());
                assert!(g.has_compressor());
            }
        }
        let keep_alive = g.idle_keep_alive(b":\n");
        reader.piece(&keep_alive, b":\n");
        // Finished without a compressor: the hand-written final block.
        reader.end(&mut g);
    }

    #[test]
    fn releasing_the_compressor_between_batches_keeps_one_valid_stream() {
        let mut g = GzipState::new();
        let mut reader = Reader::new();
        for i in 0..6 {
            let event = alloc::format!("data: batch {i} {}\n\n", "xy".repeat(i * 30));
            reader.event(&mut g, event.as_bytes());
            if i % 2 == 0 {
                g.release();
                assert!(!g.has_compressor());
            }
        }
        reader.end(&mut g);
    }

    #[test]
    fn a_stream_with_nothing_in_it_is_valid() {
        let mut g = GzipState::new();
        assert!(gunzip(&g.finish()).is_empty());
    }

    #[test]
    fn large_input_is_taken_whole() {
        let mut g = GzipState::new();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        g.write(&big);
        let mut out = g.flush().to_vec();
        out.extend_from_slice(&g.finish());
        assert_eq!(gunzip(&out), big);
    }
}
