//! Field-value facts that need no parser: the `text/event-stream` media
//! type, `Retry-After` seconds, and what a field value may hold.
//!
//! Compiled with or without feature `http1`: the client state machine
//! ([`crate::client`]) uses them on the header values its adapter hands it,
//! and the codec on the heads it parses, so both judge a value alike.

use core::time::Duration;

/// Whether a `Content-Type` value's MIME type essence is
/// `text/event-stream`: parameters ignored, ASCII
/// case-insensitive, HTTP whitespace trimmed.
pub fn is_event_stream(content_type: &str) -> bool {
    let ws: &[char] = &[' ', '\t', '\r', '\n'];
    let essence = content_type.split(';').next().unwrap_or("");
    essence
        .trim_matches(ws)
        .eq_ignore_ascii_case("text/event-stream")
}

/// Parses a `Retry-After` value given in seconds (`delay-seconds`). HTTP
/// dates are the adapter's business (it has a clock).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    delay_seconds(trim_ows(value.as_bytes()))
}

/// `delay-seconds` (`1*DIGIT`, already trimmed) as a delay, saturating
/// absurdly long ones instead of failing; `None` for anything else.
pub(crate) fn delay_seconds(value: &[u8]) -> Option<Duration> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(Duration::from_secs(
        parse_decimal(value).unwrap_or(u64::MAX),
    ))
}

/// Whether `value` can be sent as an HTTP field value unchanged:
/// no control characters other than TAB, no DEL, and no leading or trailing
/// SP/TAB (HTTP would trim them).
pub(crate) fn is_header_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    trim_ows(bytes).len() == bytes.len() && bytes.iter().all(|&b| is_field_byte(b))
}

/// Whether `b` may appear in a field value: HTAB, visible ASCII, SP and
/// obs-text; not CR, LF, NUL, other controls or DEL.
pub(crate) fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// Removes leading and trailing spaces and tabs.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Parses `1*DIGIT` as a `u64` (no sign, no spaces); `None` on overflow.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_stream_essence() {
        for ok in [
            "text/event-stream",
            "text/event-stream;",
            "TEXT/Event-Stream",
            "text/event-stream;charset=windows-1252",
            "TEXT/EVENT-STREAM; charset=UTF-8",
            " text/event-stream ; x=y",
        ] {
            assert!(is_event_stream(ok), "{ok}");
        }
        for bad in [
            "text/x-bogus",
            "x bogus",
            "",
            "text/plain",
            "application/json",
            "text/event-streams",
            // Only HTTP whitespace is trimmed.
            "\u{a0}text/event-stream",
            "text/event-stream\u{b}",
        ] {
            assert!(!is_event_stream(bad), "{bad}");
        }
    }

    #[test]
    fn header_values() {
        assert!(is_header_value(""));
        assert!(is_header_value("abc"));
        assert!(is_header_value("\u{2026}"));
        assert!(is_header_value("a\tb c"));
        for bad in [
            " a", "a ", "\ta", "a\t", "a\u{1}", "a\u{7f}", "a\rb", "a\nb", "a\0",
        ] {
            assert!(!is_header_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("\t0"), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after(" "), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("+1"), None);
        assert_eq!(parse_retry_after("1 2"), None);
    }
}
