//! [`Str`]: an immutable UTF-8 string that is stored inline when short and
//! otherwise shares a [`Bytes`] buffer.
//!
//! This module's `unsafe` code is two calls to
//! `core::str::from_utf8_unchecked`, each on bytes that were validated as
//! UTF-8 when the `Str` was built (or, for a decoded line, found to be all
//! ASCII by the scan that searched it) and that cannot change afterwards.
#![allow(unsafe_code)]

use alloc::boxed::Box;
use alloc::string::String;
use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;

use bytes::Bytes;

/// Longest string kept inline (without a heap buffer or a reference count).
pub(crate) const INLINE_CAP: usize = 38;

/// An immutable, cheaply cloned UTF-8 string.
///
/// Decoded event fields are `Str`s. Short strings (up to 38 bytes: most
/// event names, ids and small payloads) live inline, so building, cloning and
/// dropping them touches no allocator and no reference count. Longer strings
/// share the buffer they were decoded from: a data line received as one
/// contiguous slice of a [`Bytes`] chunk becomes a view of that chunk, with no
/// copy. [`Str::into_bytes`] hands the bytes on (for example to re-encode or
/// forward them) without copying when they are shared.
///
/// `Str` dereferences to [`str`], so every `&str` method works on it, and it
/// compares, hashes and orders like the `str` it holds.
///
/// ```
/// use sse_proto::Str;
///
/// let s = Str::from("hello");
/// assert_eq!(s, "hello");
/// assert_eq!(s.len(), 5);
/// let shared = Str::from_utf8(bytes::Bytes::from_static(b"a longer string, held by reference")).unwrap();
/// assert!(shared.starts_with("a longer"));
/// ```
pub struct Str(Repr);

enum Repr {
    /// `buf[..len]` is valid UTF-8.
    Inline { len: u8, buf: [u8; INLINE_CAP] },
    /// The whole `Bytes` is valid UTF-8.
    Shared(Bytes),
}

/// The error returned by [`Str::from_utf8`] when the bytes are not UTF-8.
///
/// It carries the bytes back so the caller can decide what to do with them
/// (for example [`Str::from_utf8_lossy`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FromUtf8Error {
    bytes: Bytes,
    valid_up_to: usize,
}

impl FromUtf8Error {
    /// The bytes that were rejected.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The length of the longest valid UTF-8 prefix.
    pub fn valid_up_to(&self) -> usize {
        self.valid_up_to
    }
}

impl fmt::Display for FromUtf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bytes are not valid UTF-8 (the first invalid sequence starts at byte {})",
            self.valid_up_to
        )
    }
}

impl core::error::Error for FromUtf8Error {}

impl Str {
    /// The empty string.
    pub const fn new() -> Str {
        Str(Repr::Inline {
            len: 0,
            buf: [0; INLINE_CAP],
        })
    }

    /// Wraps a static string without copying it (a short one is stored
    /// inline). A `const fn`, so a `Str` can be a constant:
    ///
    /// ```
    /// use sse_proto::Str;
    ///
    /// const GREETING: Str = Str::from_static("hello");
    /// assert_eq!(GREETING, "hello");
    /// ```
    pub const fn from_static(s: &'static str) -> Str {
        let bytes = s.as_bytes();
        if bytes.len() > INLINE_CAP {
            return Str(Repr::Shared(Bytes::from_static(bytes)));
        }
        let mut buf = [0; INLINE_CAP];
        let mut i = 0;
        while i < bytes.len() {
            // In bounds: `i < bytes.len() <= INLINE_CAP`. (A `const fn`
            // cannot use `get` and `copy_from_slice` on this toolchain floor.)
            #[allow(clippy::indexing_slicing)]
            {
                buf[i] = bytes[i];
            }
            i += 1;
        }
        // `bytes.len() <= INLINE_CAP < 256`: the cast cannot truncate.
        Str(Repr::Inline {
            len: bytes.len() as u8,
            buf,
        })
    }

    /// Checks that `bytes` are UTF-8 and wraps them without copying (short
    /// strings are copied inline instead, which is cheaper than sharing).
    ///
    /// # Errors
    /// [`FromUtf8Error`], holding the bytes, when they are not valid UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Str, FromUtf8Error> {
        match core::str::from_utf8(&bytes) {
            Ok(_) => Ok(Str::from_valid_bytes(bytes)),
            Err(e) => Err(FromUtf8Error {
                valid_up_to: e.valid_up_to(),
                bytes,
            }),
        }
    }

    /// Wraps `bytes`, replacing each invalid UTF-8 sequence with U+FFFD by the
    /// WHATWG "maximal subpart" rule (the rule of [`String::from_utf8_lossy`]).
    /// Valid input is not copied (short strings are stored inline).
    #[inline]
    pub fn from_utf8_lossy(bytes: Bytes) -> Str {
        if is_utf8(&bytes) {
            Str::from_valid_bytes(bytes)
        } else {
            Str::from(String::from_utf8_lossy(&bytes).into_owned())
        }
    }

    /// Wraps bytes the caller has checked to be ASCII (and so UTF-8),
    /// without checking them again; a debug build checks anyway.
    #[inline]
    pub(crate) fn from_ascii(ascii: Bytes) -> Str {
        debug_assert!(ascii.is_ascii());
        Str::from_valid_bytes(ascii)
    }

    /// Copies `bytes` into a new `Str`, replacing invalid UTF-8 as
    /// [`Str::from_utf8_lossy`] does.
    #[inline]
    pub fn copy_from_utf8_lossy(bytes: &[u8]) -> Str {
        if is_utf8(bytes) {
            Str::copy_from_valid(bytes)
        } else {
            Str::from(String::from_utf8_lossy(bytes).into_owned())
        }
    }

    /// Copies `window[..len]`, replacing invalid UTF-8 as
    /// [`Str::from_utf8_lossy`] does. `window` may run past `len`: when it
    /// holds a whole inline buffer's worth, a short value is copied with one
    /// fixed-size move, which is much cheaper than a variable-length copy.
    #[cfg(test)]
    fn copy_window_lossy(window: &[u8], len: usize) -> Str {
        let mut s = Str::new();
        s.assign_window_lossy(window, len);
        s
    }

    /// Replaces the contents with `window[..len]`, as
    /// [`copy_window_lossy`](Str::copy_window_lossy) builds them.
    ///
    /// It writes into `self` in place when `self` is stored inline: a value
    /// built elsewhere and then moved in would be written with narrow stores
    /// and read back at once with wide loads, which the CPU cannot forward,
    /// and that stall costs more than the whole copy.
    #[inline]
    pub(crate) fn assign_window_lossy(&mut self, window: &[u8], len: usize) {
        if let (Some(fixed), Ok(small)) = (window.get(..INLINE_CAP), u8::try_from(len)) {
            if len <= INLINE_CAP && self.assign_ascii(fixed, small) {
                return;
            }
        } else if let (Some(value), Ok(small)) = (window.get(..len), u8::try_from(len)) {
            // A short value at the very end of its buffer (a line completed
            // across chunks): padded to a whole inline buffer's worth.
            let mut padded = [0; INLINE_CAP];
            if let Some(start) = padded.get_mut(..len) {
                start.copy_from_slice(value);
                if self.assign_ascii(&padded, small) {
                    return;
                }
            }
        }
        *self = Str::copy_from_utf8_lossy(window.get(..len).unwrap_or_default());
    }

    /// Replaces the contents with `fixed[..len]` if it is ASCII (hence
    /// UTF-8), with one fixed-size copy of the whole inline buffer's worth;
    /// `false`, leaving `self` as it was, if it is not. The bytes of
    /// `fixed` after `len` are copied along but never read.
    #[inline]
    fn assign_ascii(&mut self, fixed: &[u8], len: u8) -> bool {
        if !ascii_prefix(fixed, usize::from(len)) {
            return false;
        }
        if let Repr::Inline { len: l, buf } = &mut self.0 {
            copy_inline(buf, fixed);
            *l = len;
        } else {
            let mut buf = [0; INLINE_CAP];
            copy_inline(&mut buf, fixed);
            self.0 = Repr::Inline { len, buf };
        }
        true
    }

    /// Moves the contents out, leaving `self` empty. An inline string is
    /// copied field by field (its length, then its bytes) and emptied by
    /// setting its length to zero, in the same widths
    /// [`assign_window_lossy`](Str::assign_window_lossy) wrote it in, so the
    /// copy reads what was just stored without a forwarding stall.
    #[inline]
    pub(crate) fn take_in_place(&mut self) -> Str {
        match &mut self.0 {
            Repr::Inline { len, buf } => {
                let mut copy = [0; INLINE_CAP];
                copy_inline(&mut copy, buf);
                let taken = Str(Repr::Inline {
                    len: *len,
                    buf: copy,
                });
                *len = 0;
                taken
            }
            Repr::Shared(_) => core::mem::take(self),
        }
    }

    /// Empties the string, in place when it is inline.
    #[inline]
    pub(crate) fn clear(&mut self) {
        match &mut self.0 {
            Repr::Inline { len, .. } => *len = 0,
            Repr::Shared(_) => *self = Str::new(),
        }
    }

    /// The string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, buf } => {
                let bytes = buf.get(..usize::from(*len)).unwrap_or_default();
                // SAFETY: `Repr::Inline` is only built by `Str::inline`, from
                // bytes that were valid UTF-8, copied into `buf[..len]`; the
                // fields are private and never mutated afterwards.
                unsafe { core::str::from_utf8_unchecked(bytes) }
            }
            Repr::Shared(bytes) => {
                // SAFETY: `Repr::Shared` is only built by `from_valid_bytes`
                // (whose callers validated the bytes) or from a `String`/`&str`;
                // `Bytes` is immutable, so the bytes are still valid UTF-8.
                unsafe { core::str::from_utf8_unchecked(bytes) }
            }
        }
    }

    /// The UTF-8 bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }

    /// Converts into [`Bytes`]: free when the string shares a buffer, one small
    /// copy when it is stored inline.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Inline { .. } => Bytes::copy_from_slice(self.as_bytes()),
            Repr::Shared(bytes) => bytes,
        }
    }

    /// Builds an inline `Str` when `valid` fits; `valid` must be UTF-8.
    #[inline]
    fn inline(valid: &[u8]) -> Option<Str> {
        let len = u8::try_from(valid.len())
            .ok()
            .filter(|&l| usize::from(l) <= INLINE_CAP)?;
        let mut buf = [0; INLINE_CAP];
        copy_short(&mut buf, valid);
        Some(Str(Repr::Inline { len, buf }))
    }

    /// Wraps bytes validated as UTF-8 (private: the invariant of `Repr`).
    #[inline]
    fn from_valid_bytes(valid: Bytes) -> Str {
        Str::inline(&valid).unwrap_or(Str(Repr::Shared(valid)))
    }

    /// Copies a slice validated as UTF-8 (private: the invariant of `Repr`).
    #[inline]
    fn copy_from_valid(valid: &[u8]) -> Str {
        Str::inline(valid).unwrap_or_else(|| Str(Repr::Shared(Bytes::copy_from_slice(valid))))
    }
}

/// Copies an inline buffer in three pieces of 16, 16 and 6 bytes. Every
/// write and every read of an inline buffer goes through here, so each
/// read of a freshly written string meets exactly the store that wrote its
/// bytes. (A plain 38-byte copy is lowered to overlapping 16, 16 and 8-byte
/// moves; a load that spans two such stores cannot be forwarded from the
/// store buffer and waits for both to reach the cache, a stall that cost
/// more than the rest of a small event's dispatch.)
#[inline(always)]
fn copy_inline(dst: &mut [u8; INLINE_CAP], src: &[u8]) {
    let (d0, rest) = dst.split_at_mut(16);
    let (d1, d2) = rest.split_at_mut(16);
    if let (Some(s0), Some(s1), Some(s2)) =
        (src.get(..16), src.get(16..32), src.get(32..INLINE_CAP))
    {
        d0.copy_from_slice(s0);
        d1.copy_from_slice(s1);
        d2.copy_from_slice(s2);
    }
}

/// Copies `src` (at most `INLINE_CAP` bytes) to the front of `dst`. Short
/// strings (ids, names) are copied with two overlapping fixed-size moves
/// instead of a call to `memcpy`, whose set-up costs more than the copy.
#[inline(always)]
fn copy_short(dst: &mut [u8; INLINE_CAP], src: &[u8]) {
    fn pair<const N: usize>(dst: &mut [u8], src: &[u8]) {
        let n = src.len();
        let head = src.get(..N).and_then(|h| <[u8; N]>::try_from(h).ok());
        let tail = src.get(n - N..).and_then(|t| <[u8; N]>::try_from(t).ok());
        if let (Some(head), Some(tail)) = (head, tail) {
            if let Some(d) = dst.get_mut(..N) {
                d.copy_from_slice(&head);
            }
            if let Some(d) = dst.get_mut(n - N..n) {
                d.copy_from_slice(&tail);
            }
        }
    }
    match src.len() {
        0 => {}
        1..=3 => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }
        4..=7 => pair::<4>(dst, src),
        8..=15 => pair::<8>(dst, src),
        16..=32 => pair::<16>(dst, src),
        n => {
            if let Some(d) = dst.get_mut(..n) {
                d.copy_from_slice(src);
            }
        }
    }
}

/// Whether `buf[..len]` is ASCII (`buf` holds `INLINE_CAP` bytes), tested a
/// word at a time.
#[inline]
fn ascii_prefix(buf: &[u8], len: usize) -> bool {
    const HI: u64 = 0x8080_8080_8080_8080;
    /// Overlapping words that cover the whole inline buffer.
    const STARTS: [usize; 5] = [0, 8, 16, 24, INLINE_CAP - 8];
    let word = |start: usize| {
        let mut bytes = [0; 8];
        if let Some(src) = buf.get(start..start + 8) {
            bytes.copy_from_slice(src);
        }
        u64::from_le_bytes(bytes)
    };
    let words = STARTS.map(word);
    // Usually the bytes after the value (the next lines) are ASCII too, and
    // one test of the whole buffer settles it.
    if words.iter().fold(0, |acc, w| acc | w) & HI == 0 {
        return true;
    }
    let keep = |start: usize| match len.saturating_sub(start) {
        0 => 0,
        n if n >= 8 => u64::MAX,
        n => (1u64 << (n * 8)) - 1,
    };
    STARTS
        .iter()
        .zip(words)
        .fold(0, |acc, (&start, w)| acc | (w & keep(start)))
        & HI
        == 0
}

/// Whether `bytes` are UTF-8. ASCII, the common case for event fields, is
/// settled by `is_ascii`, which runs several times faster than the general
/// validator (and, on short strings, skips its fixed cost); other text stops
/// that check at its first non-ASCII byte.
#[inline]
fn is_utf8(bytes: &[u8]) -> bool {
    bytes.is_ascii() || core::str::from_utf8(bytes).is_ok()
}

impl Clone for Str {
    #[inline]
    fn clone(&self) -> Str {
        match &self.0 {
            Repr::Inline { len, buf } => {
                let mut copy = [0; INLINE_CAP];
                copy_inline(&mut copy, buf);
                Str(Repr::Inline {
                    len: *len,
                    buf: copy,
                })
            }
            Repr::Shared(bytes) => Str(Repr::Shared(bytes.clone())),
        }
    }

    /// Copies field by field in place when both are inline. A whole-value
    /// copy of a string written moments ago reads it back in wider pieces
    /// than it was written in, which stalls store-to-load forwarding.
    #[inline]
    fn clone_from(&mut self, source: &Str) {
        match (&mut self.0, &source.0) {
            (Repr::Inline { len, buf }, Repr::Inline { len: l, buf: b }) => {
                *len = *l;
                copy_inline(buf, b);
            }
            _ => *self = source.clone(),
        }
    }
}

impl Default for Str {
    fn default() -> Str {
        Str::new()
    }
}

impl Deref for Str {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Str {
    #[inline]
    fn from(s: &str) -> Str {
        Str::copy_from_valid(s.as_bytes())
    }
}

impl From<String> for Str {
    fn from(s: String) -> Str {
        Str::inline(s.as_bytes()).unwrap_or_else(|| Str(Repr::Shared(Bytes::from(s))))
    }
}

impl From<Box<str>> for Str {
    fn from(s: Box<str>) -> Str {
        Str::from(String::from(s))
    }
}

impl From<Str> for Bytes {
    fn from(s: Str) -> Bytes {
        s.into_bytes()
    }
}

impl From<Str> for String {
    fn from(s: Str) -> String {
        String::from(s.as_str())
    }
}

impl TryFrom<Bytes> for Str {
    type Error = FromUtf8Error;
    fn try_from(bytes: Bytes) -> Result<Str, FromUtf8Error> {
        Str::from_utf8(bytes)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str {}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Str {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Str> for str {
    fn eq(&self, other: &Str) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Str> for &str {
    fn eq(&self, other: &Str) -> bool {
        *self == other.as_str()
    }
}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Str) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Str) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Str {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn size_is_five_words() {
        assert_eq!(core::mem::size_of::<Str>(), 40);
    }

    #[test]
    fn short_strings_are_inline_long_ones_shared() {
        let short = Str::from_utf8(Bytes::from_static(
            b"exactly-38-bytes-long-exactly-38-bytes",
        ))
        .unwrap();
        assert!(matches!(short.0, Repr::Inline { len: 38, .. }));
        let long = Bytes::from(vec![b'x'; 39]);
        let ptr = long.as_ptr();
        let s = Str::from_utf8(long).unwrap();
        assert!(matches!(s.0, Repr::Shared(_)));
        assert_eq!(s.as_ptr(), ptr, "a long valid string must not be copied");
        assert_eq!(s.into_bytes().as_ptr(), ptr);
    }

    #[test]
    fn short_copies_are_exact_at_every_length() {
        let src: alloc::vec::Vec<u8> = (1..=INLINE_CAP as u8).collect();
        for len in 0..=INLINE_CAP {
            let mut dst = [0; INLINE_CAP];
            copy_short(&mut dst, &src[..len]);
            assert_eq!(&dst[..len], &src[..len], "len {len}");
            assert!(dst[len..].iter().all(|&b| b == 0), "len {len}");
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            assert_eq!(Str::from(text.as_str()), *text);
        }
    }

    #[test]
    fn window_copies_only_the_prefix() {
        let window = b"abc\xffdefghijklmnopqrstuvwxyz";
        for len in 0..window.len() {
            let want = String::from_utf8_lossy(&window[..len]);
            assert_eq!(Str::copy_window_lossy(window, len), *want, "len {len}");
            assert_eq!(
                Str::copy_window_lossy(&window[..len], len),
                *want,
                "len {len}"
            );
        }
        // A value that ends its buffer (shorter than an inline buffer):
        // ASCII is padded and copied whole, anything else checked.
        let ascii = b"abcdefghijklmnopqrstuvwxyz0123456789AB";
        for len in 0..=ascii.len() {
            let want = core::str::from_utf8(&ascii[..len]).unwrap();
            assert_eq!(Str::copy_window_lossy(&ascii[..len], len), *want);
        }
        assert_eq!(
            Str::copy_window_lossy("h\u{e9}llo".as_bytes(), 6),
            "h\u{e9}llo"
        );
        // Non-ASCII beyond `len` does not count; non-ASCII inside does.
        let tail = "abcdefgh\u{e9}zzzzzzzzzzzzzzzzz";
        assert_eq!(Str::copy_window_lossy(tail.as_bytes(), 8), "abcdefgh");
        assert_eq!(
            Str::copy_window_lossy(tail.as_bytes(), 10),
            "abcdefgh\u{e9}"
        );
        assert_eq!(
            Str::copy_window_lossy(tail.as_bytes(), 9),
            "abcdefgh\u{fffd}"
        );
    }

    #[test]
    fn lossy_uses_maximal_subparts() {
        let cases: &[&[u8]] = &[
            b"\xff",
            b"a\xe2\x82",
            b"\xf0\x9f\x98",
            b"\xed\xa0\x80x",
            b"ok",
        ];
        for &case in cases {
            let want = String::from_utf8_lossy(case);
            assert_eq!(Str::copy_from_utf8_lossy(case), *want);
            assert_eq!(Str::from_utf8_lossy(Bytes::copy_from_slice(case)), *want);
        }
    }

    #[test]
    fn from_utf8_rejects_and_returns_bytes() {
        let err = Str::from_utf8(Bytes::from_static(b"ab\xff")).unwrap_err();
        assert_eq!(err.valid_up_to(), 2);
        assert_eq!(err.into_bytes(), Bytes::from_static(b"ab\xff"));
    }

    #[test]
    fn equality_hash_and_order_follow_str() {
        let a = Str::from("abc");
        let b = Str::from(String::from("abc"));
        assert_eq!(a, b);
        assert_eq!(a, "abc");
        assert_eq!(Str::from("abd").cmp(&a), Ordering::Greater);
        assert_eq!(Str::default(), "");
        assert_eq!(
            Str::from_static("a static string that is long"),
            "a static string that is long"
        );
    }
}
