//! The `hub_request` fuzz target's seed corpus (`fuzz/corpus/hub_request/`),
//! run through the hub's request path as the fuzz target runs it, so that
//! every test run exercises it (also without cargo-fuzz), and what the hub
//! answers to each seed is checked.

use std::path::PathBuf;

use sse_hub::fuzz::{Answer, handle_request_bytes};

/// The directory of the `hub_request` seed corpus.
fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/hub_request")
}

/// A plain answer.
fn status(status: u16) -> Answer {
    Answer {
        status,
        replayed: 0,
    }
}

/// An event stream whose replay delivered `replayed` events.
fn stream(replayed: usize) -> Answer {
    Answer {
        status: 200,
        replayed,
    }
}

/// What the hub answers to each seed. Its broker starts with three
/// updates: `fuzz-1` on books/1, `fuzz-2` private on /private, `fuzz-3` on
/// books/2.
fn expected(name: &str) -> Option<Vec<Answer>> {
    Some(match name {
        "subscribe-one-topic" => vec![stream(0)],
        // After fuzz-1: books/2 (the private update needs a token).
        "subscribe-last-event-id" => vec![stream(1)],
        // Every public update.
        "subscribe-earliest-query" => vec![stream(2)],
        // `sse-lost`, then every public update.
        "subscribe-unknown-cursor" => vec![stream(3)],
        // `sse-lost`, and no update for these selectors.
        "subscribe-1000-selectors" => vec![stream(1)],
        "subscribe-head" => vec![status(200)],
        // The token grants the private update.
        "subscribe-token-earliest" => vec![stream(3)],
        "subscribe-bad-scheme" => vec![status(401)],
        "subscribe-no-topic" => vec![status(400)],
        // Both public books updates (the template matches them).
        "subscribe-template-earliest" => vec![stream(2)],
        // After fuzz-1: books/2 by the URL pattern (the private update
        // needs a token).
        "subscribe-match-kinds" => vec![stream(1)],
        // An unknown `match*` parameter, a malformed template, a relative
        // URL pattern.
        "subscribe-bad-selectors" => vec![status(400); 3],
        // The update just published, after fuzz-3.
        "publish-then-resume" => vec![status(200), stream(1)],
        "publish-1000-topics" => vec![status(200)],
        // id=earliest, id=#x, a CR in type, retry=1s, no topic, JSON.
        "publish-rejected-fields" => vec![status(400); 6],
        "publish-chunked-private" => vec![status(200)],
        // Cookie from a listed origin, then from another one (CSRF).
        "publish-cookie-origin" => vec![status(200), status(403)],
        "publish-query-token" => vec![status(200)],
        "options-preflight" => vec![status(204)],
        // `Connection: close` on the fourth: the fifth is not read.
        "healthz-keep-alive" => vec![status(200), status(200), status(405), status(404)],
        "host-rebinding" => vec![status(421)],
        _ => return None,
    })
}

#[test]
fn seed_corpus_answers() {
    let mut entries: Vec<_> = std::fs::read_dir(corpus())
        .expect("the hub_request seed corpus")
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    entries.sort();
    assert!(entries.len() >= 10, "only {} seeds", entries.len());
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let answers = handle_request_bytes(&bytes);
        let expected = expected(&name)
            .unwrap_or_else(|| panic!("no expected answers for seed {name}: add them here"));
        assert_eq!(answers, expected, "seed {name}");
    }
}

#[test]
fn the_seeds_include_a_large_subscribe_and_a_cursor() {
    let big = std::fs::read_to_string(corpus().join("subscribe-1000-selectors")).unwrap();
    assert_eq!(big.matches("topic=").count(), 1000);
    assert!(big.contains("\r\nLast-Event-ID: "));
}

#[test]
fn mangled_requests_do_not_panic() {
    // Each seed cut at every 97th byte and with bytes flipped: a small
    // deterministic stand-in for the fuzzer.
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for cut in (0..bytes.len()).step_by(97) {
            handle_request_bytes(&bytes[..cut]);
            let mut flipped = bytes.clone();
            flipped[cut] ^= 0x55;
            handle_request_bytes(&flipped);
        }
    }
}

#[test]
fn over_1000_selectors_is_refused() {
    let query: Vec<String> = (0..1001).map(|i| format!("topic=c{i:04}")).collect();
    let request = format!(
        "GET /.well-known/mercure?{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        query.join("&")
    );
    assert_eq!(handle_request_bytes(request.as_bytes()), vec![status(400)]);
    // A head over the hub's limit is 431.
    let request = format!(
        "GET /.well-known/mercure?topic={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(200 << 10)
    );
    assert_eq!(handle_request_bytes(request.as_bytes()), vec![status(431)]);
}
