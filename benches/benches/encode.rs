//! Encode throughput of `sse-proto` against the peer encoders (`sse-stream`,
//! `sse-codec`, `axum`'s `Event`, `async-sse`) and against the physical
//! limits (`memcpy` of the encoded bytes, a `memchr` scan of them), on the
//! `small`, `multiline` and `large` corpora.
//!
//! Before timing, every encoder's output is decoded by `sse-proto` and
//! checked against the corpus's events. Throughput is counted in the bytes of
//! the canonical encoding (the corpus's wire bytes, which is exactly what
//! `sse-proto` writes) for every contender.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use sse_bench::decoders::Kind;
use sse_bench::encoders::{self, Buffers, Count};
use sse_bench::report::{self, Row};
use sse_bench::{Corpus, Fingerprint, Sink};

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut out = String::from("\n## Encode\n");
    for (corpus, target) in [
        (sse_bench::small(), 1.0),
        (sse_bench::multiline(), 1.5),
        (sse_bench::large(), 1.0),
    ] {
        out.push_str(&run_corpus(&mut c, &corpus, target));
    }
    report::emit("sse-bench-encode.md", &out);
    c.final_summary();
}

/// Decodes `wire` with `sse-proto` into a fingerprint.
fn decode(wire: &[u8]) -> Fingerprint {
    let mut sink = Fingerprint::default();
    let mut decoder = sse_proto::Decoder::new();
    decoder.handle_bytes(wire);
    decoder.handle_eof();
    while let Some(e) = decoder.poll_event().expect("within limits") {
        sink.event(e.event_type(), e.data().as_bytes(), e.id());
    }
    sink
}

fn run_corpus(c: &mut Criterion, corpus: &Corpus, target: f64) -> String {
    let group_name = format!("encode-{}", corpus.name);
    let expected = corpus.fingerprint();
    let mut rows = Vec::new();
    let mut timed = Vec::new();
    for e in encoders::encoders() {
        let mut bufs = Buffers::default();
        let mut wire = Vec::new();
        (e.bytes)(&corpus.events, &mut bufs, &mut wire);
        let got = decode(&wire);
        let mut note = String::new();
        if got != expected {
            note = format!(
                "WRONG OUTPUT: decodes to {} events (expected {}) or different content; not timed",
                got.events, expected.events
            );
            eprintln!("{group_name}: {}: {note}", e.name);
        } else {
            if e.kind == Kind::Ours {
                assert!(
                    wire == corpus.wire,
                    "sse-proto writes the canonical encoding"
                );
            }
            if wire.len() != corpus.len() {
                note = format!("writes {} bytes (canonical: {})", wire.len(), corpus.len());
            }
            timed.push(e);
        }
        rows.push(Row {
            name: e.name.to_string(),
            kind: e.kind,
            median_ns: None,
            note,
        });
    }

    let mut group = c.benchmark_group(&group_name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(corpus.len() as u64));
    for e in &timed {
        let mut bufs = Buffers::default();
        group.bench_function(e.name, |b| {
            b.iter(|| {
                let mut count = Count(0);
                (e.count)(black_box(&corpus.events), &mut bufs, &mut count);
                count
            })
        });
    }
    let wire = &corpus.wire;
    group.bench_function("limit_memchr", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(wire)).count())
    });
    let mut dst = Vec::with_capacity(corpus.len());
    group.bench_function("limit_memcpy", |b| {
        b.iter(|| encoders::limit_memcpy(black_box(wire), &mut dst))
    });
    group.finish();

    for row in &mut rows {
        if !row.note.starts_with("WRONG") {
            row.median_ns = report::median_ns(&group_name, &row.name);
        }
    }
    for name in ["limit_memchr", "limit_memcpy"] {
        rows.push(Row {
            name: name.to_string(),
            kind: Kind::Limit,
            median_ns: report::median_ns(&group_name, name),
            note: String::new(),
        });
    }
    let mut table = report::table(
        &format!("encode {}", corpus.name),
        corpus.len(),
        corpus.event_count(),
        &rows,
        target,
    );
    // russe, the peer the issue names: each of our rows against its faster
    // row (target 1.5x).
    let median = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.median_ns)
    };
    let russe = ["russe", "russe_prebuilt"]
        .into_iter()
        .filter_map(|n| median(n).map(|t| (t, n)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((p, name)) = russe {
        for r in rows.iter().filter(|r| r.kind == Kind::Ours) {
            if let Some(o) = r.median_ns {
                let verdict = if p / o >= 1.5 { "MET" } else { "MISSED" };
                table.push_str(&format!(
                    "\n{} / russe's faster row ({name}): **{:.2}x** (target 1.5x: {verdict})\n",
                    r.name,
                    p / o
                ));
            }
        }
    }
    table
}
