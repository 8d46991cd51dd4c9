//! Encoding then decoding gives the events back.
//!
//! For arbitrary ids, event names, data, retry times and comments:
//! `EventId::new` / `EventName::new` reject exactly the values holding CR or
//! LF (or NUL, for ids) with the right error; `encoded_len` and
//! `comment_len` equal what `encode` and `encode_comment` write, and
//! `to_bytes` writes the same bytes; and a stream of several such events
//! (with comments and lone `retry` fields between them), decoded whole and
//! event by event, gives each event back: its type (`message` when unnamed),
//! its data with CRLF and CR turned into LF, the last id sent, and each retry
//! time in whole milliseconds (saturating at `u64::MAX`).
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sse_proto::{Decoder, Event, EventId, EventName, Frame, InvalidField, OutgoingEvent};

/// A retry time to encode.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Retry {
    /// Whole milliseconds plus a sub-millisecond part that the encoder drops.
    Millis(u64, u32),
    /// Whole seconds: beyond `u64::MAX` ms the encoder saturates.
    Secs(u64),
}

impl Retry {
    fn duration(self) -> Duration {
        match self {
            Retry::Millis(ms, nanos) => {
                Duration::from_millis(ms) + Duration::from_nanos(u64::from(nanos % 1_000_000))
            }
            Retry::Secs(secs) => Duration::from_secs(secs),
        }
    }

    /// The milliseconds a receiver reads.
    fn millis(self) -> u64 {
        match self {
            Retry::Millis(ms, _) => ms,
            Retry::Secs(secs) => secs.saturating_mul(1000),
        }
    }
}

/// One event to send, with what may come before it.
#[derive(Arbitrary, Debug)]
struct Spec<'a> {
    /// Written with `encode_comment` before the event.
    comment: Option<&'a str>,
    /// Written with `encode_retry` before the event.
    lone_retry: Option<Retry>,
    id: Option<&'a str>,
    name: Option<&'a str>,
    data: &'a str,
    retry: Option<Retry>,
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\r', '\n'])
}

/// CRLF and lone CR become LF, as a receiver sees them.
fn normalise(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

/// Decodes `chunks` to the end, returning every frame.
fn decode<I: IntoIterator<Item = Bytes>>(chunks: I) -> (Vec<Frame>, String) {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    let mut drain = |decoder: &mut Decoder| {
        while let Some(frame) = decoder.poll_frame().expect("no limit is near") {
            frames.push(frame);
        }
    };
    for chunk in chunks {
        decoder.handle_chunk(chunk);
        drain(&mut decoder);
    }
    decoder.handle_eof();
    drain(&mut decoder);
    let last_event_id = decoder.last_event_id().to_owned();
    (frames, last_event_id)
}

fuzz_target!(|specs: Vec<Spec<'_>>| {
    let mut stream = BytesMut::new();
    let mut pieces = Vec::new();
    let mut expected = Vec::new();
    let mut last_id = String::new();

    for spec in specs.iter().take(16) {
        let before = stream.len();
        if let Some(text) = spec.comment {
            sse_proto::encode_comment(text, &mut stream);
            assert_eq!(stream.len() - before, sse_proto::comment_len(text));
        }
        if let Some(retry) = spec.lone_retry {
            sse_proto::encode_retry(retry.duration(), &mut stream);
            expected.push(Frame::Retry(Duration::from_millis(retry.millis())));
        }

        let id = spec.id.and_then(|id| {
            let result = EventId::new(id);
            let want = if has_line_break(id) {
                Err(InvalidField::IdLineBreak)
            } else if id.contains('\0') {
                Err(InvalidField::IdNul)
            } else {
                Ok(id)
            };
            assert_eq!(result.as_ref().map(EventId::as_str).map_err(|e| *e), want);
            result.ok()
        });
        let name = spec.name.and_then(|name| {
            let result = EventName::new(name);
            if has_line_break(name) {
                assert_eq!(result, Err(InvalidField::NameLineBreak));
            } else {
                assert_eq!(result.as_ref().map(EventName::as_str), Ok(name));
            }
            result.ok()
        });

        let mut event = OutgoingEvent::new(spec.data);
        if let Some(id) = &id {
            event = event.id(id);
            last_id = id.as_str().to_owned();
        }
        if let Some(name) = &name {
            event = event.event(name);
        }
        if let Some(retry) = spec.retry {
            event = event.retry(retry.duration());
            expected.push(Frame::Retry(Duration::from_millis(retry.millis())));
        }

        let at = stream.len();
        event.encode(&mut stream);
        let written = &stream[at..];
        assert_eq!(event.encoded_len(), written.len());
        assert_eq!(event.to_bytes(), written);
        pieces.push(Bytes::copy_from_slice(&stream[before..]));

        let event_type = match &name {
            Some(name) if !name.is_empty() => name.as_str(),
            _ => "message",
        };
        expected.push(Frame::Event(Event::new(
            event_type,
            normalise(spec.data),
            last_id.as_str(),
        )));
    }

    let (whole, whole_id) = decode([stream.freeze()]);
    assert_eq!(whole, expected, "whole stream");
    assert_eq!(whole_id, last_id);
    let (split, split_id) = decode(pieces);
    assert_eq!(split, expected, "event by event");
    assert_eq!(split_id, last_id);
});
