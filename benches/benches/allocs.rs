//! Allocations per decoded event: a counting global allocator around the
//! system one, and every decoder run over the `small` corpus fed whole and
//! in 1460-byte chunks. Also allocations per encoded event on `small`.
//!
//! Each contender runs once untimed first (so one-time set-up, such as a
//! thread-local of the executor, is not counted), then once counted. The
//! input chunks are built before counting starts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sse_bench::encoders::{self, Buffers, Count};
use sse_bench::{MSS, report};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` once to warm up, then once counted: (allocations, bytes).
fn count<R>(mut f: impl FnMut() -> R) -> (u64, u64) {
    black_box(f());
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    black_box(f());
    (ALLOCS.load(Relaxed) - a0, BYTES.load(Relaxed) - b0)
}

fn main() {
    let corpus = sse_bench::small();
    let events = corpus.event_count() as f64;
    let whole = corpus.whole();
    let chunks = corpus.chunks(MSS);
    let expected = corpus.tally();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Allocations per decoded event (small: {} bytes, {} events)\n",
        corpus.len(),
        corpus.event_count()
    );
    let _ = writeln!(
        out,
        "Allocation calls (alloc, alloc_zeroed and realloc) and bytes requested, divided by the number of events.\n"
    );
    let _ = writeln!(
        out,
        "| decoder | allocs/event, whole | allocs/event, 1460-byte chunks | bytes/event, whole | bytes/event, chunks |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for d in sse_bench::decoders::decoders() {
        assert_eq!((d.tally)(&whole), expected, "{} whole", d.name);
        assert_eq!((d.tally)(&chunks), expected, "{} chunks", d.name);
        let (aw, bw) = count(|| (d.tally)(&whole));
        let (ac, bc) = count(|| (d.tally)(&chunks));
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.3} | {:.1} | {:.1} |",
            d.name,
            aw as f64 / events,
            ac as f64 / events,
            bw as f64 / events,
            bc as f64 / events
        );
    }

    let _ = writeln!(
        out,
        "\n## Allocations per encoded event (small, buffers reused across runs)\n"
    );
    let _ = writeln!(out, "| encoder | allocs/event | bytes/event |");
    let _ = writeln!(out, "|---|---:|---:|");
    for e in encoders::encoders() {
        let mut bufs = Buffers::default();
        let (a, b) = count(|| {
            let mut n = Count(0);
            (e.count)(&corpus.events, &mut bufs, &mut n);
            n
        });
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.1} |",
            e.name,
            a as f64 / events,
            b as f64 / events
        );
    }
    report::emit("sse-bench-allocs.md", &out);
}
