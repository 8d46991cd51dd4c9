//! Stopping a real `sse hub` with SIGTERM or SIGINT: every stream ends
//! properly with a randomized `retry:`, and the process exits 0 at once.
//!
//! Every test starts its own hub (in-memory backend) on a free loopback
//! port. Every wait is bounded.

use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;

use common::hub::Hub;

/// Checks a shutdown on `signal` (`-TERM` or `-INT`).
fn shutdown_on(signal: &str) {
    let mut hub = Hub::start(&["--heartbeat", "0"]);
    let mut streams = vec![
        hub.subscribe("topic=s", &[]),
        hub.subscribe("topic=s", &[]),
        hub.subscribe("topic=*", &[("Accept-Encoding", "gzip")]),
    ];
    hub.publish_ok(&[("topic", "s"), ("data", "before")]);
    for s in &mut streams {
        assert_eq!(s.event().data(), "before");
        assert!(s.retries.is_empty());
    }
    // A connection that never sends a request must not hold the exit up.
    let _idle = hub.connect();
    let signalled = Instant::now();
    hub.signal(signal);
    let mut retries = Vec::new();
    for (i, s) in streams.iter_mut().enumerate() {
        assert!(s.wait_end(Duration::from_secs(6)), "stream {i} did not end");
        assert!(
            s.done,
            "stream {i} ended without its last chunk (eof {})",
            s.eof
        );
        assert!(
            s.gzip.as_mut().is_none_or(|g| g.finished()),
            "stream {i}: the gzip stream was not finished"
        );
        let retry = *s
            .retries
            .last()
            .unwrap_or_else(|| panic!("stream {i} got no retry: ({:?})", s.text()));
        assert!(
            retry > Duration::ZERO && retry <= Duration::from_secs(60),
            "{retry:?}"
        );
        retries.push(retry);
    }
    assert!(
        retries.iter().any(|r| *r != retries[0]),
        "every stream got the same retry ({retries:?}): not randomized"
    );
    let status = hub
        .wait_exit(
            Duration::from_secs(5).saturating_sub(signalled.elapsed()) + Duration::from_millis(500),
        )
        .unwrap_or_else(|| panic!("still running {:?} after {signal}", signalled.elapsed()));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        hub.log_text()
    );
    // It stopped accepting.
    assert!(TcpStream::connect_timeout(&hub.addr, Duration::from_secs(1)).is_err());
}

#[test]
fn sigterm_ends_every_stream_with_a_retry_and_exits_0() {
    shutdown_on("-TERM");
}

#[test]
fn sigint_ends_every_stream_with_a_retry_and_exits_0() {
    shutdown_on("-INT");
}
