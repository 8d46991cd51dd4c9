//! Runs one decoder over one corpus in a loop, for a profiler to watch
//! (`perf record target/release/sse-decode-loop sse-proto large 1460`):
//! the criterion bench also runs every contender's checks and the
//! conformance probes, which would crowd a profile.
//!
//! Arguments: contender name (as in the decode bench), corpus (`small`,
//! `crlf`, `multiline`, `large`, `small-16k`), chunk size in bytes (`0`:
//! whole), and optionally the number of seconds to run (default 5).

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, corpus, chunk, rest @ ..] = args.as_slice() else {
        eprintln!("usage: sse-decode-loop CONTENDER CORPUS CHUNK_BYTES [SECONDS]");
        std::process::exit(2);
    };
    let seconds: f64 = rest.first().map_or(5.0, |s| s.parse().expect("seconds"));
    let corpus = match corpus.as_str() {
        "small" => sse_bench::small(),
        "crlf" => sse_bench::crlf(),
        "multiline" => sse_bench::multiline(),
        "large" => sse_bench::large(),
        "small-16k" => sse_bench::bytewise(),
        other => panic!("unknown corpus {other}"),
    };
    let chunk: usize = chunk.parse().expect("chunk size");
    let chunks = if chunk == 0 {
        corpus.whole()
    } else {
        corpus.chunks(chunk)
    };
    let contender = sse_bench::decoders::decoders()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("unknown contender {name}"));
    assert_eq!(
        (contender.fingerprint)(&chunks),
        corpus.fingerprint(),
        "{name} decodes {} wrongly",
        corpus.name
    );
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut runs = 0u64;
    let start = Instant::now();
    while Instant::now() < deadline {
        std::hint::black_box((contender.tally)(std::hint::black_box(&chunks)));
        runs += 1;
    }
    let per_run = start.elapsed() / u32::try_from(runs).unwrap_or(u32::MAX);
    println!(
        "{name} {} chunk {chunk}: {runs} runs, {per_run:?} per run",
        corpus.name
    );
}
