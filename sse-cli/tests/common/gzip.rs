//! Gunzipping a response body piece by piece, as it arrives.

use std::io::Write;

use flate2::write::GzDecoder;

/// An incremental gunzip: compressed pieces in, what they make available
/// out (each piece the hub flushed is readable at once).
pub struct Gunzip {
    decoder: GzDecoder<Vec<u8>>,
}

impl Gunzip {
    /// A gunzip waiting for a gzip header.
    pub fn new() -> Gunzip {
        Gunzip {
            decoder: GzDecoder::new(Vec::new()),
        }
    }

    /// Decompresses `input`; the bytes it makes available.
    pub fn push(&mut self, input: &[u8]) -> Vec<u8> {
        self.decoder
            .write_all(input)
            .expect("valid gzip data, and nothing after its end");
        self.decoder.flush().expect("valid gzip data");
        std::mem::take(self.decoder.get_mut())
    }

    /// Whether the gzip stream is complete: its deflate data ended and its
    /// trailer arrived and matches what was decompressed. To ask once the
    /// body has ended.
    pub fn finished(&mut self) -> bool {
        self.decoder.try_finish().is_ok()
    }
}
