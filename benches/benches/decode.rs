//! Decode throughput of `sse-proto` against the peer crates and against the
//! physical limits (a `memchr` scan for LF and a `memcpy` of the same bytes),
//! on the four corpora fed whole and in 1460-byte chunks, and on 16 KiB fed
//! one byte at a time.
//!
//! Before timing, every contender's output is checked against the corpus
//! (event count and a hash of every event's type, data and id); a contender
//! that gets a corpus wrong is reported and not timed. Every contender also
//! runs the 150 conformance probes (`sse_bench::probes`); a peer that fails
//! any is timed, but the targets are measured against the fastest peer that
//! passes them all.
//!
//! `sse-proto` is called through an opaque function pointer (see
//! `sse_bench::decoders`), so it is never inlined into the bench's loop.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use sse_bench::decoders::{self, Contender, Kind};
use sse_bench::report::{self, Row};
use sse_bench::{Corpus, MSS};

/// A contender whose single run takes longer than this is timed by hand
/// (median of 3 runs) instead of by criterion, to keep the suite short.
const SLOW: Duration = Duration::from_millis(300);

struct Plan {
    group: String,
    title: String,
    corpus: Corpus,
    chunks: Vec<Bytes>,
    target: f64,
}

fn main() {
    let mut c = Criterion::default().configure_from_args();

    let mut plans = Vec::new();
    let mut stats = String::from(
        "\n## Decode corpora\n\n| corpus | bytes | events | bytes/event |\n|---|---:|---:|---:|\n",
    );
    for corpus in sse_bench::decode_corpora() {
        let (t_whole, t_mss) = match corpus.name {
            "small" | "crlf" => (3.0, 3.0),
            "multiline" => (2.0, 2.0),
            _ => (1.0, 1.5),
        };
        stats.push_str(&corpus_stats(&corpus));
        for (feed, chunks, target) in [
            ("whole", corpus.whole(), t_whole),
            ("mss1460", corpus.chunks(MSS), t_mss),
        ] {
            plans.push(Plan {
                group: format!("decode-{}-{feed}", corpus.name),
                title: format!("decode {} fed {feed}", corpus.name),
                corpus: corpus.clone(),
                chunks,
                target,
            });
        }
    }
    let bytewise = sse_bench::bytewise();
    stats.push_str(&corpus_stats(&bytewise));
    plans.push(Plan {
        group: format!("decode-{}-bytewise", bytewise.name),
        title: format!("decode {} fed one byte at a time", bytewise.name),
        chunks: bytewise.chunks(1),
        corpus: bytewise,
        target: 2.0,
    });
    println!("{stats}");

    let (contenders, probe_table) = probed_contenders();
    println!("{probe_table}");
    let mut out = stats;
    out.push_str(&probe_table);
    for plan in &plans {
        out.push_str(&run_plan(&mut c, plan, &contenders));
    }
    report::emit("sse-bench-decode.md", &out);
    c.final_summary();
}

fn corpus_stats(corpus: &Corpus) -> String {
    format!(
        "| {} | {} | {} | {:.1} |\n",
        corpus.name,
        corpus.len(),
        corpus.event_count(),
        corpus.len() as f64 / corpus.event_count() as f64
    )
}

/// Every contender, with the peers that fail a conformance probe marked
/// [`Kind::PeerFailsProbes`], and the probe table.
fn probed_contenders() -> (Vec<Contender>, String) {
    let probes = sse_bench::probes::probes();
    let mut table = format!(
        "\n## Conformance probes\n\n{} parser vectors, each fed whole, one byte at a time and in 7-byte pieces; type, data and lastEventId of every event compared.\n\n| contender | cases passed |\n|---|---|\n",
        probes.len()
    );
    let mut contenders = decoders::decoders();
    for d in &mut contenders {
        let verdict = sse_bench::probes::check(d, &probes);
        table.push_str(&format!("| {} | {} |\n", d.name, verdict.summary()));
        if d.kind == Kind::Peer && !verdict.passed() {
            d.kind = Kind::PeerFailsProbes;
        }
    }
    (contenders, table)
}

fn run_plan(c: &mut Criterion, plan: &Plan, contenders: &[Contender]) -> String {
    let expected = plan.corpus.fingerprint();
    let mut rows = Vec::new();
    let mut timed = Vec::new();
    for d in contenders {
        let got = (d.fingerprint)(&plan.chunks);
        if got != expected {
            let why = if got.events == expected.events {
                format!(
                    "WRONG OUTPUT: {} events as expected, but their type/data/id differ; not timed",
                    got.events
                )
            } else {
                format!(
                    "WRONG OUTPUT: {} events, expected {}; not timed",
                    got.events, expected.events
                )
            };
            eprintln!("{}: {}: {why}", plan.group, d.name);
            rows.push(Row {
                name: d.name.to_string(),
                kind: d.kind,
                median_ns: None,
                note: why,
            });
            continue;
        }
        let start = Instant::now();
        black_box((d.tally)(&plan.chunks));
        if start.elapsed() > SLOW {
            let mut runs: Vec<f64> = (0..3)
                .map(|_| {
                    let start = Instant::now();
                    black_box((d.tally)(black_box(&plan.chunks)));
                    start.elapsed().as_nanos() as f64
                })
                .collect();
            runs.sort_by(f64::total_cmp);
            rows.push(Row {
                name: d.name.to_string(),
                kind: d.kind,
                median_ns: Some(runs[1]),
                note: "too slow for criterion: median of 3 timed runs".to_string(),
            });
        } else {
            timed.push(d);
            rows.push(Row {
                name: d.name.to_string(),
                kind: d.kind,
                median_ns: None,
                note: if d.kind == Kind::PeerFailsProbes {
                    "fails conformance probes".to_string()
                } else {
                    String::new()
                },
            });
        }
    }

    let mut group = c.benchmark_group(&plan.group);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(plan.corpus.len() as u64));
    for d in &timed {
        group.bench_function(d.name, |b| b.iter(|| (d.tally)(black_box(&plan.chunks))));
    }
    group.bench_function("limit_memchr", |b| {
        b.iter(|| decoders::limit_memchr(black_box(&plan.chunks)))
    });
    let mut dst = Vec::with_capacity(plan.corpus.len());
    group.bench_function("limit_memcpy", |b| {
        b.iter(|| decoders::limit_memcpy(black_box(&plan.chunks), &mut dst))
    });
    group.finish();

    for row in &mut rows {
        if row.median_ns.is_none()
            && !row.note.starts_with("WRONG")
            && !row.note.starts_with("too slow")
        {
            row.median_ns = report::median_ns(&plan.group, &row.name);
        }
    }
    for name in ["limit_memchr", "limit_memcpy"] {
        rows.push(Row {
            name: name.to_string(),
            kind: Kind::Limit,
            median_ns: report::median_ns(&plan.group, name),
            note: String::new(),
        });
    }
    report::table(
        &plan.title,
        plan.corpus.len(),
        plan.corpus.event_count(),
        &rows,
        plan.target,
    )
}
