//! Encoding: [`OutgoingEvent`], [`encode_comment`] and [`encode_retry`] write
//! `text/event-stream` bytes into a caller-owned [`BytesMut`].
//!
//! Encoding cannot fail: ids and names are validated when they are built
//! ([`EventId`], [`EventName`]), and data is split into one `data:` line per
//! line it holds, so no value can end its field early or inject another.

use core::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::field::{EventId, EventName, InvalidField, check_id, check_name};
use crate::scan::find_line_end;

/// An event to send, borrowing its parts.
///
/// Data that holds CR, LF or CRLF is written as several `data:` lines; a
/// receiver joins them with LF, so it sees the data with every line end
/// normalised to LF (CR cannot be carried by the format).
///
/// ```
/// use bytes::BytesMut;
/// use sse_proto::{EventId, EventName, OutgoingEvent};
///
/// let id = EventId::new("7").unwrap();
/// let name = EventName::new("update").unwrap();
/// let event = OutgoingEvent::new("line 1\nline 2").id(&id).event(&name);
///
/// let mut buf = BytesMut::new();
/// event.encode(&mut buf);
/// assert_eq!(&buf[..], b"id: 7\nevent: update\ndata: line 1\ndata: line 2\n\n");
/// assert_eq!(event.encoded_len(), buf.len());
/// ```
///
/// Ids and names can also be borrowed as plain strings, checked when set
/// ([`try_id`](OutgoingEvent::try_id), [`try_event`](OutgoingEvent::try_event)):
/// nothing is copied or allocated, and the check of a short value is a few
/// word operations.
///
/// ```
/// use sse_proto::{InvalidField, OutgoingEvent};
///
/// let event = OutgoingEvent::new("hello").try_id("42")?.try_event("greet")?;
/// assert_eq!(&event.to_bytes()[..], b"id: 42\nevent: greet\ndata: hello\n\n");
/// assert_eq!(OutgoingEvent::new("x").try_id("4\n2").unwrap_err(), InvalidField::IdLineBreak);
/// # Ok::<(), InvalidField>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct OutgoingEvent<'a> {
    data: &'a str,
    /// Checked: no CR, LF or NUL.
    id: Option<&'a str>,
    /// Checked: no CR or LF.
    event: Option<&'a str>,
    retry: Option<Duration>,
}

impl<'a> OutgoingEvent<'a> {
    /// An event of type `message` (the default) carrying `data`.
    #[inline]
    pub fn new(data: &'a str) -> OutgoingEvent<'a> {
        OutgoingEvent {
            data,
            id: None,
            event: None,
            retry: None,
        }
    }

    /// Sets the `id` field: the receiver's last event ID from this event on.
    /// An empty id resets it.
    #[inline]
    pub fn id(mut self, id: &'a EventId) -> OutgoingEvent<'a> {
        self.id = Some(id.as_str());
        self
    }

    /// Sets the `id` field from a borrowed string, checked as
    /// [`EventId::new`] checks it (the same answers, without building an
    /// `EventId`).
    ///
    /// # Errors
    /// [`InvalidField::IdLineBreak`] if `id` contains CR or LF,
    /// [`InvalidField::IdNul`] if it contains NUL; the event is unchanged
    /// then (it was moved in, so it is dropped).
    #[inline]
    pub fn try_id(mut self, id: &'a str) -> Result<OutgoingEvent<'a>, InvalidField> {
        check_id(id.as_bytes())?;
        self.id = Some(id);
        Ok(self)
    }

    /// Sets the `event` field: the event type the receiver dispatches.
    #[inline]
    pub fn event(mut self, name: &'a EventName) -> OutgoingEvent<'a> {
        self.event = Some(name.as_str());
        self
    }

    /// Sets the `event` field from a borrowed string, checked as
    /// [`EventName::new`] checks it.
    ///
    /// # Errors
    /// [`InvalidField::NameLineBreak`] if `name` contains CR or LF.
    #[inline]
    pub fn try_event(mut self, name: &'a str) -> Result<OutgoingEvent<'a>, InvalidField> {
        check_name(name.as_bytes())?;
        self.event = Some(name);
        Ok(self)
    }

    /// Sets the `retry` field: the receiver's reconnection time, in whole
    /// milliseconds (a sub-millisecond part is dropped; values above
    /// `u64::MAX` ms are written as `u64::MAX`).
    pub fn retry(mut self, retry: Duration) -> OutgoingEvent<'a> {
        self.retry = Some(retry);
        self
    }

    /// The exact number of bytes [`encode`](OutgoingEvent::encode) writes.
    pub fn encoded_len(&self) -> usize {
        let mut len = 1; // the blank line
        if let Some(retry) = self.retry {
            len += RETRY.len() + digits(retry_millis(retry)).len() + 1;
        }
        if let Some(id) = self.id {
            len += ID.len() + id.len() + 1;
        }
        if let Some(event) = self.event {
            len += EVENT.len() + event.len() + 1;
        }
        for_each_line(self.data.as_bytes(), |line| {
            len += DATA.len() + line.len() + 1
        });
        len
    }

    /// Appends the encoded event to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        // One reservation for the fields and the first data line; further
        // data lines are rare and reserve for themselves.
        let mut len = self.data.len() + DATA.len() + 2;
        if let Some(id) = self.id {
            len += ID.len() + id.len() + 1;
        }
        if let Some(event) = self.event {
            len += EVENT.len() + event.len() + 1;
        }
        if self.retry.is_some() {
            len += RETRY.len() + 21;
        }
        dst.reserve(len);
        if let Some(retry) = self.retry {
            put_field(dst, RETRY, &digits(retry_millis(retry)));
        }
        if let Some(id) = self.id {
            put_field(dst, ID, id.as_bytes());
        }
        if let Some(event) = self.event {
            put_field(dst, EVENT, event.as_bytes());
        }
        put_data_lines(dst, self.data.as_bytes());
    }

    /// Encodes into a new buffer of exactly the right size and freezes it:
    /// encode once, then share the frame with every subscriber by cloning
    /// the [`Bytes`] (a reference count, no copy).
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }
}

/// Appends a comment to `dst`: one `:` line per line of `text`, ignored by
/// receivers. An empty `text` writes the 2-byte keep-alive `:\n`.
///
/// ```
/// let mut buf = bytes::BytesMut::new();
/// sse_proto::encode_comment("", &mut buf);
/// sse_proto::encode_comment("hi\nthere", &mut buf);
/// assert_eq!(&buf[..], b":\n: hi\n: there\n");
/// assert_eq!(sse_proto::comment_len("hi\nthere"), 13);
/// ```
pub fn encode_comment(text: &str, dst: &mut BytesMut) {
    dst.reserve(text.len() + 3);
    for_each_line(text.as_bytes(), |line| {
        if line.is_empty() {
            dst.extend_from_slice(b":\n");
        } else {
            put_field(dst, b": ", line);
        }
    });
}

/// The exact number of bytes [`encode_comment`] writes for `text`.
pub fn comment_len(text: &str) -> usize {
    let mut len = 0;
    for_each_line(text.as_bytes(), |line| {
        len += if line.is_empty() {
            2
        } else {
            2 + line.len() + 1
        };
    });
    len
}

/// Appends a lone `retry:` field to `dst`, setting the receiver's
/// reconnection time without dispatching an event.
///
/// ```
/// let mut buf = bytes::BytesMut::new();
/// sse_proto::encode_retry(std::time::Duration::from_secs(3), &mut buf);
/// assert_eq!(&buf[..], b"retry: 3000\n");
/// ```
pub fn encode_retry(retry: Duration, dst: &mut BytesMut) {
    put_field(dst, RETRY, &digits(retry_millis(retry)));
}

const DATA: &[u8] = b"data: ";
const ID: &[u8] = b"id: ";
const EVENT: &[u8] = b"event: ";
const RETRY: &[u8] = b"retry: ";

/// Writes `prefix`, `value` and a line end (`BytesMut` grows if needed).
#[inline]
fn put_field(dst: &mut BytesMut, prefix: &[u8], value: &[u8]) {
    dst.extend_from_slice(prefix);
    dst.extend_from_slice(value);
    dst.extend_from_slice(b"\n");
}

fn retry_millis(retry: Duration) -> u64 {
    u64::try_from(retry.as_millis()).unwrap_or(u64::MAX)
}

/// Decimal digits of `n`, without allocating.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl core::ops::Deref for Digits {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

fn digits(mut n: u64) -> Digits {
    let mut buf = [b'0'; 20];
    let mut start = buf.len();
    loop {
        start -= 1;
        if let Some(slot) = buf.get_mut(start) {
            // `n % 10` is a single decimal digit, so the cast cannot truncate.
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    Digits { buf, start }
}

/// Writes `text` as `data:` lines (split on CRLF, CR or LF, as
/// [`for_each_line`] splits) and the blank line that ends the event. A line
/// that ends in LF is copied together with its LF; the last line and the
/// blank line end in one copy of `"\n\n"`.
#[inline]
fn put_data_lines(dst: &mut BytesMut, text: &[u8]) {
    let mut rest = text;
    while let Some(end) = find_line_end(rest) {
        dst.extend_from_slice(DATA);
        if rest.get(end) == Some(&b'\n') {
            dst.extend_from_slice(rest.get(..=end).unwrap_or_default());
            rest = rest.get(end + 1..).unwrap_or_default();
        } else {
            dst.extend_from_slice(rest.get(..end).unwrap_or_default());
            dst.extend_from_slice(b"\n");
            let skip = if rest.get(end + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            rest = rest.get(end + skip..).unwrap_or_default();
        }
    }
    dst.extend_from_slice(DATA);
    dst.extend_from_slice(rest);
    dst.extend_from_slice(b"\n\n");
}

/// Calls `f` with each line of `text`, split on CRLF, CR or LF. An empty
/// text is one empty line; a trailing line end leaves an empty last line.
#[inline]
fn for_each_line(text: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = text;
    while let Some(end) = find_line_end(rest) {
        let (line, tail) = rest.split_at(end);
        f(line);
        let skip = if tail.starts_with(b"\r\n") { 2 } else { 1 };
        rest = tail.get(skip..).unwrap_or_default();
    }
    f(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn encoded(event: &OutgoingEvent<'_>) -> Vec<u8> {
        let mut buf = BytesMut::new();
        event.encode(&mut buf);
        assert_eq!(event.encoded_len(), buf.len(), "encoded_len must be exact");
        assert_eq!(event.to_bytes(), buf);
        buf.to_vec()
    }

    #[test]
    fn every_line_end_starts_a_new_data_line() {
        assert_eq!(
            encoded(&OutgoingEvent::new("a\r\nb\rc\nd")),
            b"data: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        assert_eq!(encoded(&OutgoingEvent::new("")), b"data: \n\n");
        assert_eq!(encoded(&OutgoingEvent::new("\n")), b"data: \ndata: \n\n");
        assert_eq!(encoded(&OutgoingEvent::new("x\r")), b"data: x\ndata: \n\n");
    }

    #[test]
    fn all_fields() {
        let id = EventId::new("").unwrap();
        let name = EventName::new("n").unwrap();
        let event = OutgoingEvent::new(" lead")
            .id(&id)
            .event(&name)
            .retry(Duration::from_millis(1500));
        assert_eq!(
            encoded(&event),
            b"retry: 1500\nid: \nevent: n\ndata:  lead\n\n"
        );
    }

    #[test]
    fn retry_digits_and_saturation() {
        let mut buf = BytesMut::new();
        encode_retry(Duration::ZERO, &mut buf);
        encode_retry(Duration::from_millis(u64::MAX), &mut buf);
        encode_retry(Duration::MAX, &mut buf);
        assert_eq!(
            &buf[..],
            b"retry: 0\nretry: 18446744073709551615\nretry: 18446744073709551615\n"
        );
    }

    #[test]
    fn comments() {
        let mut buf = BytesMut::new();
        for text in ["", "a", "a\r\n\nb"] {
            let before = buf.len();
            encode_comment(text, &mut buf);
            assert_eq!(buf.len() - before, comment_len(text));
        }
        assert_eq!(&buf[..], b":\n: a\n: a\n:\n: b\n");
    }
}
