//! Arbitrary bytes through the decoder, with small limits, fed whole and in
//! pieces through both `handle_bytes` (copying) and `handle_chunk`
//! (zero-copy).
//!
//! Checks: no panic; all four ways give the same output; decoded fields hold
//! no line break (ids no NUL either); after a limit error the decoder is
//! terminal and has freed its buffers; and, measured with a counting global
//! allocator, a decoder fed in small pieces never holds more heap than a bound
//! derived from its limits and the piece size, however long the input.
//!
//! Input layout: byte 0 picks the limits, byte 1 the piece size, the rest is
//! the stream.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sse_proto::{DecodeError, Decoder, Frame, Limits};

/// The system allocator, counting the bytes live on the heap and their peak.
struct Counting;

/// Bytes currently allocated through Rust's global allocator.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The highest value `LIVE` reached since the last [`reset_peak`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

fn shrank(by: usize) {
    LIVE.fetch_sub(by, Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are
// updated around it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Count both blocks for a moment: a moving realloc holds both.
            grew(new_size);
            shrank(layout.size());
        }
        new
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Restarts peak tracking; returns the bytes live now.
fn reset_peak() -> usize {
    let live = LIVE.load(Relaxed);
    PEAK.store(live, Relaxed);
    live
}

/// What a run produced, compact enough to hold without disturbing the heap
/// measurement: a hash of every frame, in order.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: u64,
    events: usize,
    last_event_id: String,
    retry: Option<std::time::Duration>,
    error: Option<DecodeError>,
}

#[derive(Clone, Copy)]
enum Feed {
    Bytes,
    Chunk,
}

/// Polls every ready frame into `hasher`; returns the error if one occurs.
fn drain(
    decoder: &mut Decoder,
    limits: Limits,
    hasher: &mut DefaultHasher,
    events: &mut usize,
) -> Option<DecodeError> {
    loop {
        match decoder.poll_frame() {
            Ok(None) => return None,
            Ok(Some(Frame::Event(event))) => {
                *events += 1;
                assert!(!event.event_type().is_empty());
                for field in [event.event_type(), event.id()] {
                    assert!(!field.contains(['\r', '\n']), "{event:?}");
                }
                assert!(!event.id().contains('\0'), "{event:?}");
                assert!(!event.data().contains('\r'), "{event:?}");
                // U+FFFD (3 bytes) replaces at least one input byte.
                assert!(event.data().len() <= 3 * limits.event_size(), "{event:?}");
                0u8.hash(hasher);
                event.hash(hasher);
            }
            Ok(Some(Frame::Retry(retry))) => {
                assert_eq!(Some(retry), decoder.retry());
                1u8.hash(hasher);
                retry.hash(hasher);
            }
            Ok(Some(_)) => unreachable!("no other frame kinds exist"),
            Err(err) => return Some(err),
        }
    }
}

/// Checks that a decoder that returned `err` stays terminal and holds almost
/// nothing: at most its id and event type buffers and the last event ID.
fn check_terminal(decoder: &mut Decoder, err: DecodeError, baseline: usize, limits: Limits) {
    let held = LIVE.load(Relaxed).saturating_sub(baseline);
    assert!(
        held <= 9 * limits.line_len() + 256,
        "a failed decoder still holds {held} bytes"
    );
    decoder.handle_bytes(b"data: more\n\n");
    decoder.handle_chunk(Bytes::from_static(b"data: more\n\n"));
    assert_eq!(decoder.poll_frame(), Err(err));
    decoder.handle_eof();
    assert_eq!(decoder.poll_frame(), Err(err));
    assert_eq!(decoder.poll_event(), Err(err));
}

/// Decodes `input` fed in pieces of `piece` bytes (the whole input when
/// `piece` is `None`), checking the heap bound when fed in pieces.
fn run(input: &[u8], limits: Limits, piece: Option<usize>, feed: Feed) -> Outcome {
    let mut hasher = DefaultHasher::new();
    let mut events = 0;
    let baseline = reset_peak();
    let mut decoder = Decoder::with_limits(limits);
    let mut error = None;
    let size = piece.unwrap_or(input.len()).max(1);
    for part in input.chunks(size) {
        match feed {
            Feed::Bytes => decoder.handle_bytes(part),
            Feed::Chunk => decoder.handle_chunk(Bytes::copy_from_slice(part)),
        }
        error = drain(&mut decoder, limits, &mut hasher, &mut events);
        if error.is_some() {
            break;
        }
    }
    if error.is_none() {
        decoder.handle_eof();
        error = drain(&mut decoder, limits, &mut hasher, &mut events);
    }
    if let Some(piece) = piece {
        let peak = PEAK.load(Relaxed).saturating_sub(baseline);
        let bound = 16 * (limits.line_len() + limits.event_size() + piece) + 1024;
        assert!(
            peak <= bound,
            "decoder heap peaked at {peak} bytes (bound {bound}, input {} bytes)",
            input.len()
        );
    }
    if let Some(err) = error {
        check_terminal(&mut decoder, err, baseline, limits);
    }
    Outcome {
        frames: hasher.finish(),
        events,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
        error,
    }
}

fuzz_target!(|data: &[u8]| {
    let [pick, piece, input @ ..] = data else {
        return;
    };
    let line = [8, 64, 512, 4096][usize::from(pick & 3)];
    let event = [16, 128, 1024, 16 * 1024][usize::from((pick >> 2) & 3)];
    let limits = Limits::default().max_line_len(line).max_event_size(event);
    let piece = 1 + usize::from(piece % 64);

    let reference = run(input, limits, None, Feed::Bytes);
    assert_eq!(
        run(input, limits, None, Feed::Chunk),
        reference,
        "whole chunk"
    );
    assert_eq!(
        run(input, limits, Some(piece), Feed::Bytes),
        reference,
        "copied pieces"
    );
    assert_eq!(
        run(input, limits, Some(piece), Feed::Chunk),
        reference,
        "chunk pieces"
    );
});
