//! Finding line ends: the decoder's innermost loop.
//!
//! Most event stream lines are short, and a general SIMD search such as
//! `memchr2` pays a fixed cost to start that exceeds the work on a 10 to 40
//! byte line. So the first 64 bytes are examined 16 at a time with one
//! compare-and-mask step each, and only longer lines fall through to
//! `memchr2`.
//!
//! Two implementations of the block steps exist: SSE2 and portable. The
//! build picks one at compile time (`Native`): SSE2 on x86_64 when the target
//! enables `sse2`, unless built with `--cfg sse_portable_scan` (how CI runs
//! the decoder's tests on the portable path); otherwise the portable one.
//! Tests compile both and compare them.
//!
//! The bytes of a long line (a chunk or appended bytes that continue one,
//! or the rest of a line that parsing found long) are searched by
//! [`find_line_end_ascii`], which also tells whether the bytes it passed are
//! all ASCII, so that the finished line needs no UTF-8 check of its own. It
//! skips 64 bytes at a time (128 with AVX2) with one compare per byte while
//! they are printable ASCII, with AVX2 when the CPU has it (checked once, at
//! run time, with `cpuid`: the build itself targets the x86_64 baseline).
//!
//! This module holds `unsafe` code of the crate: SSE2 intrinsics, which are
//! part of the x86_64 baseline and compiled in only when the build enables
//! `sse2`; and on those builds, `cpuid`/`xgetbv` and AVX2 intrinsics, called
//! only once the CPU and the operating system are known to support AVX2.
#![allow(unsafe_code)]

// The differential tests need both implementations: an SSE2 target.
#[cfg(test)]
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod differential;

/// Bytes examined block by block before `memchr2` takes over.
const PREFIX: usize = 64;

/// The positions of every LF and CR in up to 64 bytes of a buffer, as
/// bitmasks. Walking lines through a window costs a few register operations
/// each, where finding each line end separately makes every line wait for
/// the search of the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// Where the window starts in the buffer.
    pub(crate) start: usize,
    /// How many bytes of the buffer it covers (64 unless the buffer ends).
    pub(crate) len: usize,
    /// Bit `i` is set when byte `start + i` is LF.
    pub(crate) lf: u64,
    /// Bit `i` is set when byte `start + i` is CR.
    pub(crate) cr: u64,
}

impl Window {
    /// A window covering nothing.
    pub(crate) const EMPTY: Window = Window {
        start: 0,
        len: 0,
        lf: 0,
        cr: 0,
    };

    /// The window of `hay` that starts at `start`.
    #[inline]
    pub(crate) fn at(hay: &[u8], start: usize) -> Window {
        Window::at_with::<Native>(hay, start)
    }

    /// [`Window::at`] with the block steps of `B`.
    #[inline]
    pub(crate) fn at_with<B: Blocks>(hay: &[u8], start: usize) -> Window {
        let rest = hay.get(start..).unwrap_or_default();
        let (lf, cr) = match rest.get(..64).map(<&[u8; 64]>::try_from) {
            Some(Ok(block)) => B::masks(block),
            _ => {
                // The buffer ends within 64 bytes: pad with a byte that is
                // neither CR nor LF.
                let mut block = [0u8; 64];
                if let Some(dst) = block.get_mut(..rest.len()) {
                    dst.copy_from_slice(rest);
                }
                B::masks(&block)
            }
        };
        Window {
            start,
            len: rest.len().min(64),
            lf,
            cr,
        }
    }

    /// Whether buffer offset `at` lies inside the window.
    #[inline]
    pub(crate) fn covers(&self, at: usize) -> bool {
        at >= self.start && at - self.start < self.len
    }

    /// The first line end at or after buffer offset `from` (which the
    /// window covers), if the window holds one.
    #[inline]
    pub(crate) fn next_end(&self, from: usize) -> Option<usize> {
        let shift = from.wrapping_sub(self.start);
        let ends = (self.lf | self.cr).checked_shr(u32::try_from(shift).ok()?)?;
        (ends != 0).then(|| from + ends.trailing_zeros() as usize)
    }

    /// Whether the byte at buffer offset `at` (covered) is CR.
    #[inline]
    pub(crate) fn is_cr(&self, at: usize) -> bool {
        bit(self.cr, at.wrapping_sub(self.start))
    }

    /// Whether the byte at buffer offset `at` (covered) is LF.
    #[inline]
    pub(crate) fn is_lf(&self, at: usize) -> bool {
        bit(self.lf, at.wrapping_sub(self.start))
    }
}

#[inline]
fn bit(mask: u64, i: usize) -> bool {
    u32::try_from(i)
        .ok()
        .and_then(|i| mask.checked_shr(i))
        .is_some_and(|m| m & 1 == 1)
}

/// The steps a scanner is built from, over fixed-size blocks.
pub(crate) trait Blocks {
    /// LF and CR bitmasks of a 64-byte block.
    fn masks(block: &[u8; 64]) -> (u64, u64);

    /// The index of the first CR or LF in a 16-byte block.
    fn first_in_block(block: &[u8; 16]) -> Option<usize>;

    /// Bit `i` is set when byte `i` of a 64-byte block is outside ASCII.
    fn high_bits(block: &[u8; 64]) -> u64;

    /// Whether a 64-byte block may hold a line end or a byte outside ASCII:
    /// `false` when every byte is above CR and below 0x80 (the usual text
    /// of a long line), settled with one compare per byte.
    fn maybe_special(block: &[u8; 64]) -> bool;
}

/// The block steps this build uses: chosen at compile time, so a call costs
/// the same as calling the implementation directly.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "sse2",
    not(sse_portable_scan)
))]
type Native = Sse2;

/// The block steps this build uses: chosen at compile time, so a call costs
/// the same as calling the implementation directly.
#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "sse2",
    not(sse_portable_scan)
)))]
type Native = Portable;

/// SSE2 block steps: compiled when the target enables `sse2` and either the
/// build uses them or tests compare them with the portable ones.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "sse2",
    any(test, not(sse_portable_scan))
))]
#[derive(Debug)]
pub(crate) enum Sse2 {}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "sse2",
    any(test, not(sse_portable_scan))
))]
impl Blocks for Sse2 {
    #[inline]
    fn masks(block: &[u8; 64]) -> (u64, u64) {
        use core::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let (mut lf, mut cr) = (0u64, 0u64);
        for (i, part) in block.chunks_exact(16).enumerate() {
            // SAFETY: the cfg above compiles this only when SSE2 is enabled,
            // so the intrinsics exist on the running CPU; `part` is 16 bytes
            // long (`chunks_exact(16)`), which is exactly what
            // `_mm_loadu_si128` reads, at any alignment.
            let (l, c) = unsafe {
                let v = _mm_loadu_si128(part.as_ptr().cast());
                (
                    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8))),
                    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8))),
                )
            };
            // Each mask has 16 meaningful bits.
            lf |= u64::from(l as u16) << (16 * i);
            cr |= u64::from(c as u16) << (16 * i);
        }
        (lf, cr)
    }

    #[inline]
    fn first_in_block(block: &[u8; 16]) -> Option<usize> {
        use core::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: the cfg above compiles this only when SSE2 is enabled, so
        // the intrinsics exist on the running CPU; `_mm_loadu_si128` reads
        // exactly the 16 bytes `block` refers to and allows any alignment.
        let mask = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            let lf = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
            let cr = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8));
            _mm_movemask_epi8(_mm_or_si128(lf, cr))
        };
        (mask != 0).then(|| mask.trailing_zeros() as usize)
    }

    #[inline]
    fn maybe_special(block: &[u8; 64]) -> bool {
        use core::arch::x86_64::{
            _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: the cfg above compiles this only when SSE2 is enabled, so
        // the intrinsics exist on the running CPU; the four loads read the
        // 16-byte quarters of the 64-byte `block`, at any alignment.
        let special = unsafe {
            let p = block.as_ptr();
            // Signed: bytes from 0x80 up are negative, so one compare flags
            // them and the control bytes up to CR.
            let above_cr = _mm_set1_epi8(0x0e);
            let a = _mm_cmplt_epi8(_mm_loadu_si128(p.cast()), above_cr);
            let b = _mm_cmplt_epi8(_mm_loadu_si128(p.add(16).cast()), above_cr);
            let c = _mm_cmplt_epi8(_mm_loadu_si128(p.add(32).cast()), above_cr);
            let d = _mm_cmplt_epi8(_mm_loadu_si128(p.add(48).cast()), above_cr);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)))
        };
        special != 0
    }

    #[inline]
    fn high_bits(block: &[u8; 64]) -> u64 {
        use core::arch::x86_64::{_mm_loadu_si128, _mm_movemask_epi8};
        let mut high = 0u64;
        for (i, part) in block.chunks_exact(16).enumerate() {
            // SAFETY: as in `masks`: SSE2 is enabled, and `part` is exactly
            // the 16 bytes `_mm_loadu_si128` reads, at any alignment.
            let h = unsafe { _mm_movemask_epi8(_mm_loadu_si128(part.as_ptr().cast())) };
            high |= u64::from(h as u16) << (16 * i);
        }
        high
    }
}

/// Portable block steps, in plain registers: compiled when the build uses
/// them or tests compare them with the SSE2 ones.
#[cfg(any(
    test,
    sse_portable_scan,
    not(all(target_arch = "x86_64", target_feature = "sse2"))
))]
#[derive(Debug)]
pub(crate) enum Portable {}

#[cfg(any(
    test,
    sse_portable_scan,
    not(all(target_arch = "x86_64", target_feature = "sse2"))
))]
impl Blocks for Portable {
    /// Byte by byte.
    #[inline]
    fn masks(block: &[u8; 64]) -> (u64, u64) {
        block.iter().enumerate().fold((0, 0), |(lf, cr), (i, &b)| {
            (
                lf | (u64::from(b == b'\n') << i),
                cr | (u64::from(b == b'\r') << i),
            )
        })
    }

    /// Eight bytes at a time.
    #[inline]
    fn first_in_block(block: &[u8; 16]) -> Option<usize> {
        let (lo, hi) = block.split_at(8);
        for (base, word) in [(0, lo), (8, hi)] {
            let Ok(word) = <[u8; 8]>::try_from(word) else {
                continue;
            };
            let word = u64::from_le_bytes(word);
            let found = Portable::has_byte(word, b'\n') | Portable::has_byte(word, b'\r');
            if found != 0 {
                // The lowest flagged byte is a true match: flags only go wrong
                // in bytes above a true match.
                return Some(base + (found.trailing_zeros() / 8) as usize);
            }
        }
        None
    }

    /// Byte by byte.
    #[inline]
    fn maybe_special(block: &[u8; 64]) -> bool {
        block.iter().any(|&b| b <= b'\r' || b >= 0x80)
    }

    /// Byte by byte.
    #[inline]
    fn high_bits(block: &[u8; 64]) -> u64 {
        block
            .iter()
            .enumerate()
            .fold(0, |high, (i, &b)| high | (u64::from(b >> 7) << i))
    }
}

#[cfg(any(
    test,
    sse_portable_scan,
    not(all(target_arch = "x86_64", target_feature = "sse2"))
))]
impl Portable {
    /// Sets the high bit of every byte of `word` that equals `byte` (and,
    /// possibly, of bytes above such a match).
    #[inline]
    fn has_byte(word: u64, byte: u8) -> u64 {
        const LO: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        let x = word ^ (LO * u64::from(byte));
        x.wrapping_sub(LO) & !x & HI
    }
}

/// The index of the first CR or LF in `hay`.
#[inline]
pub(crate) fn find_line_end(hay: &[u8]) -> Option<usize> {
    find_line_end_with::<Native>(hay)
}

/// [`find_line_end`] with the block steps of `B`.
#[inline]
pub(crate) fn find_line_end_with<B: Blocks>(hay: &[u8]) -> Option<usize> {
    let mut offset = 0;
    while offset < PREFIX {
        let Some(block) = hay.get(offset..offset + 16) else {
            return find_in_tail::<B>(hay, offset);
        };
        if let Ok(block) = <&[u8; 16]>::try_from(block) {
            if let Some(i) = B::first_in_block(block) {
                return Some(offset + i);
            }
        }
        offset += 16;
    }
    memchr::memchr2(b'\n', b'\r', hay.get(offset..).unwrap_or_default()).map(|i| offset + i)
}

/// The index of the first CR or LF in `hay`, and whether every byte before
/// it (every byte of `hay`, if it holds none) is ASCII: one pass that
/// settles both, for the bytes of a long line (the line's value then needs
/// no UTF-8 check of its own when it is all ASCII).
#[inline]
pub(crate) fn find_line_end_ascii(hay: &[u8]) -> (Option<usize>, bool) {
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "sse2",
        not(sse_portable_scan),
        not(miri)
    ))]
    if avx2::available() {
        // SAFETY: the CPU and the operating system support AVX2
        // (`avx2::available`).
        return unsafe { avx2::find_line_end_ascii(hay) };
    }
    find_line_end_ascii_with::<Native>(hay)
}

/// The AVX2 path of [`find_line_end_ascii`], taken when the CPU has AVX2
/// (checked once, at run time: the build targets the x86_64 baseline).
/// AVX2 settles 64 bytes in two compares, about twice as fast as SSE2.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "sse2",
    not(sse_portable_scan),
    not(miri)
))]
mod avx2 {
    use core::arch::x86_64::{
        __cpuid, __cpuid_count, __m256i, _mm256_cmpgt_epi8, _mm256_loadu_si256,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8, _xgetbv,
    };
    use core::sync::atomic::{AtomicU8, Ordering};

    use super::{Sse2, find_line_end_ascii_with};

    /// Whether AVX2 may be used: 0 not yet known, 1 no, 2 yes.
    static STATE: AtomicU8 = AtomicU8::new(0);

    /// Whether the CPU has AVX2 and the operating system saves its
    /// registers (what `std::is_x86_feature_detected!("avx2")` answers,
    /// read here without the standard library).
    #[inline]
    pub(super) fn available() -> bool {
        match STATE.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let yes = detect();
                STATE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
        }
    }

    #[cold]
    fn detect() -> bool {
        // `cpuid` exists on every x86_64 CPU; leaf 7 is read only when
        // leaf 0 reports it.
        let (leaf1, max_leaf) = (__cpuid(1), __cpuid(0).eax);
        let os_saves = leaf1.ecx & (1 << 27) != 0;
        let avx = leaf1.ecx & (1 << 28) != 0;
        if !(os_saves && avx) || max_leaf < 7 {
            return false;
        }
        let avx2 = __cpuid_count(7, 0).ebx & (1 << 5) != 0;
        // SAFETY: `xgetbv` exists when CPUID reports OSXSAVE (checked above).
        let xcr0 = unsafe { xcr0() };
        // The OS saves SSE (bit 1) and AVX (bit 2) register state.
        avx2 && xcr0 & 0b110 == 0b110
    }

    /// The XCR0 register.
    ///
    /// # Safety
    /// The CPU must have `xgetbv` (CPUID leaf 1 reports OSXSAVE).
    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        // SAFETY: the caller's promise.
        unsafe { _xgetbv(0) }
    }

    /// [`super::find_line_end_ascii`] with AVX2: 128 bytes, then 64, are
    /// skipped at a time while every byte is printable ASCII (above CR,
    /// below 0x80); the first other block and the tail go to the SSE2 steps.
    ///
    /// # Safety
    /// The CPU and the operating system must support AVX2 ([`available`]).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn find_line_end_ascii(hay: &[u8]) -> (Option<usize>, bool) {
        let mut offset = 0;
        // Two blocks at a time while both are plain: one mask test for 128
        // bytes.
        for pair in hay.chunks_exact(128) {
            // SAFETY: the caller's promise.
            if unsafe { special_pair(pair) } {
                break;
            }
            offset += 128;
        }
        for block in hay.get(offset..).unwrap_or_default().chunks_exact(64) {
            // SAFETY: the caller's promise.
            if unsafe { special(block) } {
                break;
            }
            offset += 64;
        }
        let left = hay.len() - offset;
        if left == 0 {
            return (None, true);
        }
        if let (1..64, Some(last)) = (left, hay.len().checked_sub(64)) {
            // Every block was plain and a tail shorter than a block is
            // left: check the last 64 bytes, which overlap bytes already
            // found plain.
            // SAFETY: the caller's promise.
            if !unsafe { special(hay.get(last..).unwrap_or_default()) } {
                return (None, true);
            }
        }
        let rest = hay.get(offset..).unwrap_or_default();
        let (end, ascii) = find_line_end_ascii_with::<Sse2>(rest);
        (end.map(|i| offset + i), ascii)
    }

    /// [`special`] for the first 128 bytes of `pair` (a shorter `pair`
    /// counts as holding such a byte): one mask test for two blocks.
    ///
    /// # Safety
    /// As [`find_line_end_ascii`].
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn special_pair(pair: &[u8]) -> bool {
        let (Some(Ok(first)), Some(Ok(second))) = (
            pair.get(..64).map(<&[u8; 64]>::try_from),
            pair.get(64..128).map(<&[u8; 64]>::try_from),
        ) else {
            return true;
        };
        // SAFETY: the caller's promise.
        let flags = unsafe { _mm256_or_si256(flagged(first), flagged(second)) };
        _mm256_movemask_epi8(flags) != 0
    }

    /// Whether the first 64 bytes of `block` hold a line end, a control
    /// byte or a byte outside ASCII (any byte up to CR, or from 0x80). A
    /// shorter `block` counts as holding one.
    ///
    /// # Safety
    /// As [`find_line_end_ascii`].
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn special(block: &[u8]) -> bool {
        let Some(Ok(block)) = block.get(..64).map(<&[u8; 64]>::try_from) else {
            return true;
        };
        // SAFETY: the caller's promise.
        _mm256_movemask_epi8(unsafe { flagged(block) }) != 0
    }

    /// The bytes of `block` up to CR or from 0x80, as the set bytes of a
    /// vector (its two 32-byte halves compared, then joined).
    ///
    /// # Safety
    /// As [`find_line_end_ascii`].
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn flagged(block: &[u8; 64]) -> __m256i {
        let above_cr = _mm256_set1_epi8(0x0e);
        // SAFETY: AVX2 is enabled in this function and supported (the
        // caller's promise); the two loads read the two 32-byte halves of
        // the 64 bytes of `block`, at any alignment.
        let (a, b) = unsafe {
            let p = block.as_ptr();
            (
                _mm256_loadu_si256(p.cast()),
                _mm256_loadu_si256(p.add(32).cast()),
            )
        };
        // Signed compares: bytes from 0x80 up are negative.
        _mm256_or_si256(
            _mm256_cmpgt_epi8(above_cr, a),
            _mm256_cmpgt_epi8(above_cr, b),
        )
    }
}

/// [`find_line_end_ascii`] with the block steps of `B`.
#[inline]
pub(crate) fn find_line_end_ascii_with<B: Blocks>(hay: &[u8]) -> (Option<usize>, bool) {
    let mut offset = 0;
    // For the tail: padded with a byte that is plain ASCII.
    let mut padded = [b' '; 64];
    while offset < hay.len() {
        let block = match hay.get(offset..offset + 64).map(<&[u8; 64]>::try_from) {
            Some(Ok(block)) => block,
            _ => {
                let tail = hay.get(offset..).unwrap_or_default();
                if let Some(dst) = padded.get_mut(..tail.len()) {
                    dst.copy_from_slice(tail);
                }
                &padded
            }
        };
        if B::maybe_special(block) {
            let (lf, cr) = B::masks(block);
            let ends = lf | cr;
            let high = B::high_bits(block);
            if ends != 0 {
                let at = ends.trailing_zeros();
                let before = (1u64 << at) - 1;
                return (Some(offset + at as usize), high & before == 0);
            }
            if high != 0 {
                // Not ASCII: only the line end is left to find.
                let rest = hay.get(offset + 64..).unwrap_or_default();
                let end = memchr::memchr2(b'\n', b'\r', rest).map(|i| offset + 64 + i);
                return (end, false);
            }
        }
        offset += 64;
    }
    (None, true)
}

/// Searches `hay[offset..]`, shorter than 16 bytes, knowing `hay[..offset]`
/// holds no line end.
#[inline]
fn find_in_tail<B: Blocks>(hay: &[u8], offset: usize) -> Option<usize> {
    if offset == hay.len() {
        return None;
    }
    // With 16 bytes or more in all, search the last 16: they overlap bytes
    // already searched, which hold no match, so the first match is new.
    if let Some(start) = hay.len().checked_sub(16) {
        if let Some(Ok(block)) = hay.get(start..).map(<&[u8; 16]>::try_from) {
            return B::first_in_block(block).map(|i| start + i);
        }
    }
    // A short input: copy it into a block padded with a byte that is no line end.
    let tail = hay.get(offset..).unwrap_or_default();
    let mut block = [0u8; 16];
    block.get_mut(..tail.len())?.copy_from_slice(tail);
    B::first_in_block(&block).map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_masks_match_the_bytes() {
        let mut hay = [b'x'; 150];
        for (i, b) in hay.iter_mut().enumerate() {
            if i % 7 == 0 {
                *b = b'\n';
            } else if i % 11 == 0 {
                *b = b'\r';
            }
        }
        for start in [0, 1, 63, 64, 90, 149, 150] {
            let w = Window::at(&hay, start);
            assert_eq!(w.len, (150 - start).min(64));
            for at in start..start + w.len {
                assert!(w.covers(at));
                assert_eq!(w.is_lf(at), hay[at] == b'\n', "{start} {at}");
                assert_eq!(w.is_cr(at), hay[at] == b'\r', "{start} {at}");
                let want = hay[at..start + w.len]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r');
                assert_eq!(w.next_end(at), want.map(|i| at + i), "{start} {at}");
            }
            assert!(!w.covers(start + w.len));
            assert!(start == 0 || !w.covers(start - 1));
        }
    }

    #[test]
    fn agrees_with_a_plain_scan_at_every_length_and_position() {
        // Every length and position up to 200 natively; a shorter range
        // (still crossing the 64-byte handover) under Miri, which is slow.
        let max = if cfg!(miri) { 82 } else { 200 };
        let mut hay = [b'a'; 200];
        for len in 0..max {
            hay.fill(0x8d);
            assert_eq!(find_line_end(&hay[..len]), None, "len {len}");
            for pos in 0..len {
                for end in [b'\n', b'\r'] {
                    hay.fill(b'a');
                    hay[pos] = end;
                    // A second line end, and bytes that trip word tricks.
                    if pos + 1 < len {
                        hay[pos + 1] = 0x0b;
                    }
                    if pos + 2 < len {
                        hay[pos + 2] = b'\n';
                    }
                    assert_eq!(find_line_end(&hay[..len]), Some(pos), "len {len} pos {pos}");
                }
            }
        }
    }
}
