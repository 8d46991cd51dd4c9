//! The decoder's output must not depend on how its input is split: the
//! fuzzer picks the limits, the split points, which pieces go through
//! `handle_bytes` or `handle_chunk`, and after which pieces the frames are
//! polled (not polling makes the decoder queue input); the events, retries,
//! final last event ID, reconnection time and error must equal those of the
//! whole input fed at once. The same split run again, each poll lending
//! its event (`poll_event_ref`) or giving it (`poll_frame`) as further bits
//! say, must give the same events.
//!
//! Input layout (read with `arbitrary::Unstructured`, all from the front):
//! limits (u8), number of cuts (u8, up to 32), the cuts (u16 each, modulo
//! the input length + 1), feed bits (u64), poll bits (u64), then the stream.
#![no_main]

use std::time::Duration;

use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sse_proto::{DecodeError, Decoder, Event, Frame, Limits};

mod common;

use common::{fit_cuts, pieces, read_cuts};

/// One frame, as recorded for comparison.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    Event(Event),
    Retry(Duration),
}

/// Everything a run produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Out>,
    last_event_id: String,
    retry: Option<Duration>,
    error: Option<DecodeError>,
}

/// Polls until `Ok(None)` or an error (kept in `error`, which stops all
/// later polling).
fn drain(decoder: &mut Decoder, frames: &mut Vec<Out>, error: &mut Option<DecodeError>) {
    while error.is_none() {
        match decoder.poll_frame() {
            Ok(None) => return,
            Ok(Some(Frame::Event(event))) => frames.push(Out::Event(event)),
            Ok(Some(Frame::Retry(retry))) => frames.push(Out::Retry(retry)),
            Ok(Some(_)) => unreachable!("no other frame kinds exist"),
            Err(err) => *error = Some(err),
        }
    }
}

fn finish(mut decoder: Decoder, mut frames: Vec<Out>, mut error: Option<DecodeError>) -> Outcome {
    decoder.handle_eof();
    drain(&mut decoder, &mut frames, &mut error);
    if let Some(err) = error {
        assert_eq!(decoder.poll_frame(), Err(err), "an error must be terminal");
    } else {
        assert_eq!(decoder.poll_frame(), Ok(None), "nothing after the end");
    }
    Outcome {
        frames,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
        error,
    }
}

fn whole(input: &[u8], limits: Limits) -> Outcome {
    let mut decoder = Decoder::with_limits(limits);
    let (mut frames, mut error) = (Vec::new(), None);
    decoder.handle_bytes(input);
    drain(&mut decoder, &mut frames, &mut error);
    finish(decoder, frames, error)
}

fn split(input: &[u8], limits: Limits, cuts: &[usize], feed_bits: u64, poll_bits: u64) -> Outcome {
    let mut decoder = Decoder::with_limits(limits);
    let (mut frames, mut error) = (Vec::new(), None);
    for (i, piece) in pieces(input, cuts).enumerate() {
        if feed_bits >> (i % 64) & 1 == 0 {
            decoder.handle_bytes(piece);
        } else {
            decoder.handle_chunk(Bytes::copy_from_slice(piece));
        }
        if poll_bits >> (i % 64) & 1 == 0 {
            drain(&mut decoder, &mut frames, &mut error);
        }
    }
    finish(decoder, frames, error)
}

/// `split`, each poll lending or giving per `lend_bits`; events only (a
/// lending poll passes retries by).
fn split_lent(
    input: &[u8],
    limits: Limits,
    cuts: &[usize],
    feed_bits: u64,
    lend_bits: u64,
) -> Outcome {
    let mut decoder = Decoder::with_limits(limits);
    let (mut frames, mut error) = (Vec::new(), None);
    let mut polls = 0u32;
    let mut drain_lent =
        |decoder: &mut Decoder, frames: &mut Vec<Out>, error: &mut Option<DecodeError>| {
            while error.is_none() {
                polls = polls.wrapping_add(1);
                let next = if lend_bits >> (polls % 64) & 1 == 1 {
                    decoder
                        .poll_event_ref()
                        .map(|e| e.map(|e| Some(e.to_event())))
                } else {
                    decoder.poll_frame().map(|f| {
                        f.map(|f| match f {
                            Frame::Event(event) => Some(event),
                            _ => None,
                        })
                    })
                };
                match next {
                    Ok(None) => return,
                    Ok(Some(Some(event))) => frames.push(Out::Event(event)),
                    Ok(Some(None)) => {}
                    Err(err) => *error = Some(err),
                }
            }
        };
    for (i, piece) in pieces(input, cuts).enumerate() {
        if feed_bits >> (i % 64) & 1 == 0 {
            decoder.handle_bytes(piece);
        } else {
            decoder.handle_chunk(Bytes::copy_from_slice(piece));
        }
        drain_lent(&mut decoder, &mut frames, &mut error);
    }
    decoder.handle_eof();
    drain_lent(&mut decoder, &mut frames, &mut error);
    Outcome {
        frames,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
        error,
    }
}

fn check(data: &[u8]) -> Result<()> {
    let u = &mut Unstructured::new(data);
    let pick = u8::arbitrary(u)?;
    let limits = match pick % 5 {
        0 => Limits::default(),
        _ => Limits::default()
            .max_line_len([4, 16, 100, 1000][usize::from(pick >> 3 & 3)])
            .max_event_size([8, 32, 300, 3000][usize::from(pick >> 5 & 3)]),
    };
    let mut cuts = read_cuts(u)?;
    let feed_bits = u64::arbitrary(u)?;
    let poll_bits = u64::arbitrary(u)?;
    let input = u.bytes(u.len())?;
    fit_cuts(&mut cuts, input.len());

    let reference = whole(input, limits);
    let chunked = split(input, limits, &cuts, feed_bits, poll_bits);
    assert_eq!(chunked, reference, "cuts {cuts:?}");

    let lend_bits = poll_bits.rotate_left(17) ^ feed_bits;
    let lent = split_lent(input, limits, &cuts, feed_bits, lend_bits);
    let events = Outcome {
        frames: reference
            .frames
            .into_iter()
            .filter(|f| matches!(f, Out::Event(_)))
            .collect(),
        ..reference
    };
    assert_eq!(lent, events, "lent, cuts {cuts:?}");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
});
