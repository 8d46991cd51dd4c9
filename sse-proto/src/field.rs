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

/// The accessors and conversions of a validated string field (`$what`
/// names it in the docs): `as_str`, `into_str`, `Deref<Target = str>`,
/// `Display`, and `TryFrom<&str>` through its `new`.
macro_rules! validated_str {
    ($name:ident, $what:literal) => {
        impl $name {
            #[doc = concat!("The ", $what, " as a string slice.")]
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
    pub fn new(id: impl Into<Str>) -> Result<EventId, InvalidField> {
        let id = id.into();
        let bytes = id.as_bytes();
        if memchr::memchr2(b'\r', b'\n', bytes).is_some() {
            return Err(InvalidField::IdLineBreak);
        }
        if memchr::memchr(0, bytes).is_some() {
            return Err(InvalidField::IdNul);
        }
        Ok(EventId(id))
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
    pub fn new(name: impl Into<Str>) -> Result<EventName, InvalidField> {
        let name = name.into();
        if memchr::memchr2(b'\r', b'\n', name.as_bytes()).is_some() {
            return Err(InvalidField::NameLineBreak);
        }
        Ok(EventName(name))
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
    fn name_rejects_line_breaks_but_allows_nul() {
        assert_eq!(EventName::new("a\nb"), Err(InvalidField::NameLineBreak));
        assert_eq!(EventName::new("\r"), Err(InvalidField::NameLineBreak));
        assert!(EventName::new("a\0b").is_ok());
    }
}
