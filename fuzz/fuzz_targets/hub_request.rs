//! The hub's request path (`sse hub`), on the bytes of one connection:
//! request heads parsed with the hub's limits, bodies within its body
//! limit, `Host`, CORS and `Origin` checks, query and form parsing, token
//! extraction and verification (with a fixed key), selectors parsed into a
//! `Subscription`, cursor resolution (`Last-Event-ID` and the
//! `lastEventID` family), the publish form's field rules, and publishing
//! into and replaying from an in-memory broker with small limits
//! (`sse_hub::fuzz::handle_request_bytes`, no sockets, no runtime).
//!
//! Checked: nothing panics (but the `urlpattern` crate's parser, whose
//! panics the hub catches: see `tolerate`); no subscription or update holds more than 1000
//! topics; every accepted field obeys the contract; a replay comes in
//! bounded batches and is never longer than the history (asserted inside
//! the entry point); memory stays bounded (`-rss_limit_mb` and
//! `-malloc_limit_mb` in `fuzz/smoke.sh`). Pipelined requests make one
//! input publish, then resume after the ids it published.
#![no_main]

mod tolerate;

use libfuzzer_sys::fuzz_target;
use sse_hub::fuzz::handle_request_bytes;

/// The most requests one connection's input holds (the entry point stops
/// there too).
const MAX_REQUESTS: usize = 16;

fuzz_target!(|data: &[u8]| {
    tolerate::urlpattern_panics();
    let answers = handle_request_bytes(data);
    assert!(answers.len() <= MAX_REQUESTS, "{} answers", answers.len());
    for answer in &answers {
        assert!(
            (100..600).contains(&answer.status),
            "status {}",
            answer.status
        );
        // Only an event stream replays.
        assert!(answer.replayed == 0 || answer.status == 200, "{answer:?}");
    }
});
