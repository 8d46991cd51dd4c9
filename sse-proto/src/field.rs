//! Validated field values for encoding: [`EventId`] and [`EventName`].
//!
//! A line break inside a field would end the field early and let the rest of
//! the value be read as another field (`id: 1\ndata: forged`). These newtypes
//! reject such values when they are built, so encoding can never fail and can
//! never inject a field.

use core::fmt;
use core::ops::Deref;

use crate::str::Str;

/// Why a value cannot be used as an [`EventId`] or [`EventName`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InvalidField {
    /// The event id contains CR or LF, which would end the `id` field early.
    IdLineBreak,
    /// The event id contains U+0000 NUL; receivers ignore such ids (WHATWG
    /// HTML 9.2.6), so it would never reach them.
    IdNul,
    /// The event name contains CR or LF, which would end the `event` field early.
    NameLineBreak,
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidField::IdLineBreak => {
                "event id contains a line break (CR or LF); remove it, since it would end the id field and start another"
            }
            InvalidField::IdNul => {
                "event id contains a NUL character; receivers ignore such ids, so use an id without NUL"
            }
            InvalidField::NameLineBreak => {
                "event name contains a line break (CR or LF); remove it, since it would end the event field and start another"
            }
        })
    }
}

impl core::error::Error for InvalidField {}

/// Checks an event id the way [`EventId::new`] does, in a `const fn`
/// (byte by byte: [`from_static`](EventId::from_static) runs it at compile
/// time). A line break anywhere is reported before a NUL.
const fn check_id_const(bytes: &[u8]) -> Result<(), InvalidField> {
    if has_line_break_const(bytes) {
        return Err(InvalidField::IdLineBreak);
    }
    let mut i = 0;
    while i < bytes.len() {
        // In bounds: `i < bytes.len()` (`get` is not a `const fn` here).
        #[allow(clippy::indexing_slicing)]
        let b = bytes[i];
        if b == 0 {
            return Err(InvalidField::IdNul);
        }
        i += 1;
    }
    Ok(())
}

/// Checks an event name the way [`EventName::new`] does, in a `const fn`.
const fn check_name_const(bytes: &[u8]) -> Result<(), InvalidField> {
    if has_line_break_const(bytes) {
        return Err(InvalidField::NameLineBreak);
    }
    Ok(())
}

const fn has_line_break_const(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        // In bounds: `i < bytes.len()`.
        #[allow(clippy::indexing_slicing)]
        let b = bytes[i];
        if b == b'\r' || b == b'\n' {
            return true;
        }
        i += 1;
    }
    false
}

/// Checks an event id: the same answer as [`check_id_const`], found in one
/// pass whatever the length. Ids are usually short, and a call into a SIMD
/// search costs more than the search on a few bytes, so up to 16 bytes are
/// tested in two overlapping words.
#[inline]
pub(crate) fn check_id(bytes: &[u8]) -> Result<(), InvalidField> {
    if !any_forbidden(bytes, true) {
        return Ok(());
    }
    if memchr::memchr2(b'\r', b'\n', bytes).is_some() {
        Err(InvalidField::IdLineBreak)
    } else {
        Err(InvalidField::IdNul)
    }
}

/// Checks an event name: the same answer as [`check_name_const`].
#[inline]
pub(crate) fn check_name(bytes: &[u8]) -> Result<(), InvalidField> {
    if any_forbidden(bytes, false) {
        Err(InvalidField::NameLineBreak)
    } else {
        Ok(())
    }
}

/// Whether `bytes` hold CR or LF, or (with `nul`) NUL.
#[inline]
fn any_forbidden(bytes: &[u8], nul: bool) -> bool {
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    match bytes.len() {
        0..=7 => bytes
            .iter()
            .any(|&b| b == b'\r' || b == b'\n' || (nul && b == 0)),
        8..=16 => {
            // The first and the last eight bytes cover them all.
            let (first, last) = (word(0), word(bytes.len() - 8));
            let found = |w: u64| {
                let nul_bits = if nul { zero_byte(w) } else { 0 };
                zero_byte(w ^ (LO * u64::from(b'\r')))
                    | zero_byte(w ^ (LO * u64::from(b'\n')))
                    | nul_bits
            };
            found(first) | found(last) != 0
        }
        _ if nul => memchr::memchr3(b'\r', b'\n', 0, bytes).is_some(),
        _ => memchr::memchr2(b'\r', b'\n', bytes).is_some(),
    }
}

const LO: u64 = 0x0101_0101_0101_0101;

/// Sets the high bit of some byte of the result when a byte of `w` is zero
/// (and only then): exact as a test for "any zero byte".
#[inline]
fn zero_byte(w: u64) -> u64 {
    const HI: u64 = 0x8080_8080_8080_8080;
    w.wrapping_sub(LO) & !w & HI
}

/// The accessors and conversions of a validated string field (`$what`
/// names it in the docs): `as_str`, `into_str`, `Deref<Target = str>`,
/// `Display`, and `TryFrom<&str>` through its `new`.
macro_rules! validated_str {
    ($name:ident, $what:literal) => {
        impl $name {
            #[doc = concat!("The ", $what, " as a string slice.")]
            #[inline]
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            #[doc = concat!("The ", $what, " as a [`Str`].")]
            pub fn into_str(self) -> Str {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidField;
            fn try_from(s: &str) -> Result<$name, InvalidField> {
                $name::new(s)
            }
        }
    };
}

/// An event id that is safe to encode: no CR, LF or NUL.
///
/// The empty id is valid: sent as `id` with no value, it resets the
/// receiver's last event ID.
///
/// ```
/// use sse_proto::{EventId, InvalidField};
///
/// assert_eq!(EventId::new("42").unwrap().as_str(), "42");
/// assert_eq!(EventId::new("4\n2"), Err(InvalidField::IdLineBreak));
/// assert_eq!(EventId::new("4\02"), Err(InvalidField::IdNul));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(Str);

impl EventId {
    /// Validates `id`.
    ///
    /// # Errors
    /// [`InvalidField::IdLineBreak`] if it contains CR or LF,
    /// [`InvalidField::IdNul`] if it contains NUL.
    #[inline]
    pub fn new(id: impl Into<Str>) -> Result<EventId, InvalidField> {
        let id = id.into();
        check_id(id.as_bytes())?;
        Ok(EventId(id))
    }

    /// An id from a static string, checked by a `const fn`: in a `const`
    /// item the check runs at compile time, so an id used for every event
    /// costs nothing per event, and an invalid one does not build.
    ///
    /// ```
    /// use sse_proto::EventId;
    ///
    /// const START: EventId = EventId::from_static("start");
    /// assert_eq!(START.as_str(), "start");
    /// assert_eq!(START, EventId::new("start").unwrap());
    /// ```
    ///
    /// ```compile_fail
    /// use sse_proto::EventId;
    ///
    /// const BAD: EventId = EventId::from_static("two\nlines"); // a build error
    /// let _ = BAD;
    /// ```
    ///
    /// # Panics
    /// When `id` holds CR, LF or NUL: at compile time in a `const`, at run
    /// time otherwise. Use [`EventId::new`] for ids that are not literals.
    #[allow(clippy::panic)] // The documented contract of a compile-time check.
    pub const fn from_static(id: &'static str) -> EventId {
        match check_id_const(id.as_bytes()) {
            Ok(()) => EventId(Str::from_static(id)),
            Err(_) => panic!("EventId::from_static: the id holds CR, LF or NUL"),
        }
    }
}

/// Decimal ids (the common sequence number) hold only digits, so they need
/// no check.
///
/// ```
/// use sse_proto::EventId;
///
/// assert_eq!(EventId::from(1234u64).as_str(), "1234");
/// ```
impl From<u64> for EventId {
    fn from(n: u64) -> EventId {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        let mut rest = n;
        loop {
            start -= 1;
            if let Some(slot) = buf.get_mut(start) {
                // `rest % 10` is a single decimal digit: the cast cannot truncate.
                *slot = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
            if rest == 0 || start == 0 {
                break;
            }
        }
        let digits = core::str::from_utf8(buf.get(start..).unwrap_or_default()).unwrap_or_default();
        EventId(Str::from(digits))
    }
}

validated_str!(EventId, "id");

/// An event name (the `event` field) that is safe to encode: no CR or LF.
///
/// ```
/// use sse_proto::{EventName, InvalidField};
///
/// assert_eq!(EventName::new("update").unwrap().as_str(), "update");
/// assert_eq!(EventName::new("a\rb"), Err(InvalidField::NameLineBreak));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventName(Str);

impl EventName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`InvalidField::NameLineBreak`] if it contains CR or LF.
    #[inline]
    pub fn new(name: impl Into<Str>) -> Result<EventName, InvalidField> {
        let name = name.into();
        check_name(name.as_bytes())?;
        Ok(EventName(name))
    }

    /// A name from a static string, checked by a `const fn`: in a `const`
    /// item the check runs at compile time, so a name used for every event
    /// costs nothing per event, and an invalid one does not build.
    ///
    /// ```
    /// use sse_proto::{EventName, OutgoingEvent};
    ///
    /// const TICK: EventName = EventName::from_static("tick");
    /// let frame = OutgoingEvent::new("1").event(&TICK).to_bytes();
    /// assert_eq!(&frame[..], b"event: tick\ndata: 1\n\n");
    /// ```
    ///
    /// ```compile_fail
    /// use sse_proto::EventName;
    ///
    /// const BAD: EventName = EventName::from_static("a\rb"); // a build error
    /// let _ = BAD;
    /// ```
    ///
    /// # Panics
    /// When `name` holds CR or LF: at compile time in a `const`, at run
    /// time otherwise. Use [`EventName::new`] for names that are not
    /// literals.
    #[allow(clippy::panic)] // The documented contract of a compile-time check.
    pub const fn from_static(name: &'static str) -> EventName {
        match check_name_const(name.as_bytes()) {
            Ok(()) => EventName(Str::from_static(name)),
            Err(_) => panic!("EventName::from_static: the name holds CR or LF"),
        }
    }
}

validated_str!(EventName, "name");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rejects_each_breaking_character() {
        for bad in ["\r", "\n", "a\r\nb", "x\n"] {
            assert_eq!(EventId::new(bad), Err(InvalidField::IdLineBreak), "{bad:?}");
        }
        assert_eq!(EventId::new("a\0"), Err(InvalidField::IdNul));
        assert!(EventId::new("").is_ok());
        assert!(EventId::new("ünïcödé 🙂").is_ok());
    }

    #[test]
    fn the_checks_agree_at_every_length_and_position() {
        // Every length across the word and SIMD thresholds, each forbidden
        // byte (and a harmless one) at every position.
        for len in 0..40 {
            for pos in 0..len.max(1) {
                for b in [b'\r', b'\n', 0, b'x', 0x8d] {
                    let mut bytes = alloc::vec![b'a'; len];
                    if let Some(slot) = bytes.get_mut(pos) {
                        *slot = b;
                    }
                    assert_eq!(check_id(&bytes), check_id_const(&bytes), "{bytes:?}");
                    assert_eq!(check_name(&bytes), check_name_const(&bytes), "{bytes:?}");
                }
            }
        }
        assert_eq!(check_id(b"\0\n"), Err(InvalidField::IdLineBreak));
    }

    #[test]
    fn numeric_ids() {
        for n in [0, 7, 10, 1234, u64::MAX] {
            assert_eq!(EventId::from(n).as_str(), alloc::format!("{n}"));
        }
    }

    #[test]
    fn name_rejects_line_breaks_but_allows_nul() {
        assert_eq!(EventName::new("a\nb"), Err(InvalidField::NameLineBreak));
        assert_eq!(EventName::new("\r"), Err(InvalidField::NameLineBreak));
        assert!(EventName::new("a\0b").is_ok());
    }
}
