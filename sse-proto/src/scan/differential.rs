//! The SSE2 and the portable block steps side by side: every scan the
//! decoder and the encoder make (`find_line_end`, `Window::at`, and the block
//! steps under them) must give the same answer with either, and the answer a
//! byte-by-byte scan gives. CI also runs the whole decoder suite on the
//! portable path (`--cfg sse_portable_scan`); this checks the two agree on
//! inputs chosen to break them.

use super::{
    Blocks, Portable, Sse2, Window, find_line_end_ascii, find_line_end_ascii_with,
    find_line_end_with,
};
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

fn is_end(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// The window a byte-by-byte reading gives.
fn plain_window(hay: &[u8], start: usize) -> Window {
    let rest = hay.get(start..).unwrap_or_default();
    let rest = &rest[..rest.len().min(64)];
    let mask = |want: u8| {
        rest.iter()
            .enumerate()
            .filter(|&(_, &b)| b == want)
            .fold(0u64, |m, (i, _)| m | 1 << i)
    };
    Window {
        start,
        len: rest.len(),
        lf: mask(b'\n'),
        cr: mask(b'\r'),
    }
}

/// Every scan from every start offset of `hay` (and one past its end), with
/// both implementations and the plain reading. Under Miri, which is slow,
/// only the starts around block boundaries and the end.
fn check_all(hay: &[u8]) {
    let len = hay.len();
    let all = (0..=len).collect::<Vec<_>>();
    let few = [0, 1, 15, 16, 17, 63, 64, 65, len.saturating_sub(1), len]
        .into_iter()
        .filter(|&start| start <= len)
        .collect::<Vec<_>>();
    for &start in if cfg!(miri) { &few } else { &all } {
        let rest = &hay[start..];
        let simd = find_line_end_with::<Sse2>(rest);
        let portable = find_line_end_with::<Portable>(rest);
        assert_eq!(simd, portable, "find_line_end, start {start}, {hay:02x?}");
        assert_eq!(
            simd,
            rest.iter().position(|&b| is_end(b)),
            "find_line_end, start {start}, {hay:02x?}"
        );

        // The fused search: the line end and whether the bytes before it
        // are ASCII, from both block steps and from the build's own path
        // (AVX2 where the CPU has it).
        let plain_end = rest.iter().position(|&b| is_end(b));
        let plain = (
            plain_end,
            rest[..plain_end.unwrap_or(rest.len())].is_ascii(),
        );
        for (path, found) in [
            ("SSE2", find_line_end_ascii_with::<Sse2>(rest)),
            ("portable", find_line_end_ascii_with::<Portable>(rest)),
            ("the build's", find_line_end_ascii(rest)),
        ] {
            assert_eq!(
                found, plain,
                "find_line_end_ascii ({path}), start {start}, {hay:02x?}"
            );
        }

        let simd = Window::at_with::<Sse2>(hay, start);
        let portable = Window::at_with::<Portable>(hay, start);
        assert_eq!(simd, portable, "Window::at, start {start}, {hay:02x?}");
        assert_eq!(simd, plain_window(hay, start), "Window::at, start {start}");

        // The block steps themselves, on the blocks starting here.
        if let Some(Ok(block)) = hay.get(start..start + 16).map(<&[u8; 16]>::try_from) {
            assert_eq!(
                Sse2::first_in_block(block),
                Portable::first_in_block(block),
                "first_in_block, start {start}, {hay:02x?}"
            );
        }
        if let Some(Ok(block)) = hay.get(start..start + 64).map(<&[u8; 64]>::try_from) {
            // Each 64-byte step, SSE2 against portable.
            macro_rules! agree {
                ($step:ident) => {
                    assert_eq!(
                        Sse2::$step(block),
                        Portable::$step(block),
                        concat!(stringify!($step), ", start {}, {:02x?}"),
                        start,
                        hay
                    )
                };
            }
            agree!(masks);
            agree!(high_bits);
            agree!(maybe_special);
            // What the fused search relies on: a block found plain holds no
            // line end and no byte outside ASCII.
            if !Sse2::maybe_special(block) {
                assert_eq!(
                    (Sse2::masks(block), Sse2::high_bits(block)),
                    ((0, 0), 0),
                    "a plain block, start {start}, {hay:02x?}"
                );
            }
        }
    }
}

/// Bytes that are not line ends but look like them to a careless trick:
/// neighbours of LF and CR, the same with the high bit set, the field colon,
/// and the padding byte.
const NEAR: [u8; 12] = [
    0x00, 0x09, 0x0b, 0x0c, 0x0e, 0x8a, 0x8d, 0x80, 0xff, b':', b' ', b'a',
];

/// One byte, biased towards CR, LF, `:` and bytes of 0x80 and above.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => Just(b'\r'),
        3 => Just(b'\n'),
        2 => Just(b':'),
        4 => 0x80u8..=0xff,
        2 => prop::sample::select(&NEAR[..]),
        2 => any::<u8>(),
    ]
}

/// A byte that is no line end.
fn filler() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => 0x80u8..=0xff,
        2 => Just(b':'),
        3 => prop::sample::select(&NEAR[..]),
        3 => any::<u8>().prop_filter("no line end", |&b| !is_end(b)),
    ]
}

/// Dense inputs (line ends every few bytes), and sparse ones: no line end
/// but for a few, at any position, so the searches cross every 16-byte block
/// boundary and the hand-over to `memchr2`; the sparse ones either of any
/// bytes or of printable ASCII (the text of a long line, which the fused
/// search skips 64 bytes at a time).
fn haystack() -> impl Strategy<Value = Vec<u8>> {
    let dense = prop::collection::vec(byte(), 0..300);
    prop_oneof![dense, sprinkled(filler()), sprinkled(0x0eu8..0x80)]
}

/// Up to 300 bytes of `filler` with up to four bytes of [`byte`] put in at
/// any position.
fn sprinkled(filler: impl Strategy<Value = u8>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(filler, 0..300),
        prop::collection::vec((any::<prop::sample::Index>(), byte()), 0..4),
    )
        .prop_map(|(mut hay, ends)| {
            if !hay.is_empty() {
                for (at, b) in ends {
                    let i = at.index(hay.len());
                    hay[i] = b;
                }
            }
            hay
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    })]

    #[test]
    #[cfg_attr(miri, ignore = "too slow to interpret; the edge cases below run")]
    fn simd_and_portable_scans_agree(hay in haystack()) {
        check_all(&hay);
    }
}

/// Where a line end is put in the edge cases: the end and start of each
/// 16-byte block, and the 64-byte window and `memchr2` boundaries.
const PLACES: [usize; 14] = [0, 14, 15, 16, 31, 32, 47, 48, 63, 64, 65, 79, 127, 128];

#[test]
fn simd_and_portable_scans_agree_on_edge_cases() {
    // Fewer inputs under Miri, which is slow.
    let miri = cfg!(miri);

    // Empty, and nothing but line ends.
    check_all(&[]);
    let lens: &[usize] = if miri {
        &[15, 65]
    } else {
        &[1, 15, 16, 17, 63, 64, 65, 130]
    };
    for &len in lens {
        check_all(&vec![b'\r'; len]);
        check_all(&vec![b'\n'; len]);
        check_all(&b"\r\n".repeat(len));
    }

    // No line end at all, in every near-miss byte, past the hand-over.
    for &b in if miri { &NEAR[..2] } else { &NEAR[..] } {
        check_all(&[b; 150]);
    }

    // One line end (and a CRLF, split or not) at each place, and last; and
    // a byte outside ASCII, alone or before a line end, and a control byte.
    let lens: &[usize] = if miri {
        &[80]
    } else {
        &[1, 16, 17, 32, 63, 64, 65, 80, 128, 129, 200]
    };
    let fills: &[u8] = if miri { &[0x8d] } else { &[0x8d, b'a'] };
    let ends: &[&[u8]] = if miri {
        &[b"\r", b"\n", b"\r\n", b"\xc3\xa9\n"]
    } else {
        &[b"\r", b"\n", b"\r\n", b"\x80", b"\xc3\xa9\n", b"\x0b"]
    };
    for &len in lens {
        for &fill in fills {
            for at in PLACES.into_iter().chain([len - 1]).filter(|&at| at < len) {
                for &end in ends {
                    let mut hay = vec![fill; len];
                    let stop = (at + end.len()).min(len);
                    hay[at..stop].copy_from_slice(&end[..stop - at]);
                    check_all(&hay);
                }
            }
        }
    }

    // Every byte value at every place in a block, against every filler.
    let places: Vec<usize> = if miri {
        vec![0, 7, 8, 15]
    } else {
        (0..16).collect()
    };
    for &fill in if miri { &NEAR[..1] } else { &NEAR[..] } {
        for b in 0..=255u8 {
            for &at in &places {
                let mut block = [fill; 16];
                block[at] = b;
                assert_eq!(
                    Sse2::first_in_block(&block),
                    Portable::first_in_block(&block),
                    "{block:02x?}"
                );
                assert_eq!(
                    Sse2::first_in_block(&block),
                    block.iter().position(|&b| is_end(b)),
                    "{block:02x?}"
                );
            }
        }
    }
}
