//! What the targets that feed one input in pieces share: the split points,
//! read from the front of the fuzzer's data, and the pieces they make.

use arbitrary::{Arbitrary, Result, Unstructured};

/// Reads the split points: their number (a u8, modulo 33, so up to 32),
/// then each one (a u16). They may lie beyond the input until [`fit_cuts`]
/// brings them inside it.
pub fn read_cuts(u: &mut Unstructured<'_>) -> Result<Vec<usize>> {
    let n = usize::from(u8::arbitrary(u)? % 33);
    (0..n).map(|_| u16::arbitrary(u).map(usize::from)).collect()
}

/// Brings each cut inside an input of `len` bytes (modulo `len + 1`) and
/// sorts them.
pub fn fit_cuts(cuts: &mut [usize], len: usize) {
    for cut in cuts.iter_mut() {
        *cut %= len + 1;
    }
    cuts.sort_unstable();
}

/// The pieces of `input` between consecutive `cuts` (sorted, inside the
/// input), the last one running to the end: one more piece than cuts, and
/// any of them may be empty.
pub fn pieces<'a>(input: &'a [u8], cuts: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    let mut start = 0;
    cuts.iter().copied().chain([input.len()]).map(move |end| {
        let piece = &input[start..end];
        start = end;
        piece
    })
}
