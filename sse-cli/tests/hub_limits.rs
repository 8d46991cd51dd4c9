//! `sse hub` against clients that hold resources: the file descriptor limit
//! (raised at start, the default connection limit derived from it, 429
//! over that limit and 503 when descriptors run out anyway), the write
//! timeout, the maximum stream lifetime, and the history's byte cap.
//!
//! Every test starts its own hub on a free loopback port (under
//! `prlimit` where the descriptor limit matters) and talks to it over real
//! sockets with sse-proto's parsers. Every wait is bounded, and no test
//! depends on a tight wall-clock threshold.

use std::io::Write;
use std::thread;
use std::time::Duration;

mod common;

use common::WAIT;
use common::http::Resp;
use common::hub::Hub;
use common::run::{require, run_bounded, sse};
use common::stream::{LOST, Stream};

/// Starts `sse hub ARGS` with the descriptor limit `soft:hard`.
fn hub_with_fd_limit(soft: u32, hard: u32, args: &[&str]) -> Hub {
    require("prlimit", "util-linux");
    let limit = format!("--nofile={soft}:{hard}");
    Hub::start_wrapped(&["prlimit", &limit, "--"], args, &[])
}

/// Opens streams until the hub refuses one, failing if it takes more than
/// `most`; the streams, and the refusal.
fn open_until_refused(hub: &Hub, most: usize) -> (Vec<Stream>, Resp) {
    let mut streams = Vec::new();
    loop {
        match hub.open("topic=idle", &[]) {
            Ok(stream) => streams.push(stream),
            Err(resp) => return (streams, resp),
        }
        assert!(
            streams.len() <= most,
            "{} streams open, more than {most}",
            streams.len()
        );
    }
}

/// Closes `streams`: the hub must then take a new client (refusing it
/// meanwhile with `refusal` only, while it notices the closes) and send it
/// events.
fn recovers_when_they_leave(hub: &Hub, streams: Vec<Stream>, refusal: u16) {
    drop(streams);
    let mut stream = hub.subscribe_eventually("topic=t", &[refusal]);
    hub.assert_delivers(&mut stream, "t", "back");
}

// ---------------------------------------------------------------------------
// File descriptors
// ---------------------------------------------------------------------------

#[test]
fn the_descriptor_limit_is_raised_and_the_connection_limit_derived_from_it() {
    let hub = hub_with_fd_limit(64, 512, &[]);
    let line = hub.wait_for_log("file descriptors:");
    // 512 less a reserve of max(512 / 10, 32) = 51.
    assert!(
        line.contains("limit 512 (raised from 64)") && line.contains("at most 461 connections"),
        "{line}"
    );
    assert!(line.contains("derived"), "{line}");
    // An explicit --max-connections is reported as such.
    let hub = hub_with_fd_limit(64, 64, &["--max-connections", "10"]);
    let line = hub.wait_for_log("file descriptors:");
    assert!(
        line.contains("limit 64") && line.contains("at most 10 connections (--max-connections"),
        "{line}"
    );
}

/// With the derived limit, clients over it get 429 long before the
/// descriptors run out, and the hub takes new ones when others leave.
#[test]
fn over_the_derived_connection_limit_new_clients_get_429_and_the_hub_recovers() {
    let hub = hub_with_fd_limit(64, 64, &[]);
    let line = hub.wait_for_log("file descriptors:");
    // 64 less a reserve of 32.
    assert!(line.contains("at most 32 connections"), "{line}");
    let (streams, refused) = open_until_refused(&hub, 32);
    assert_eq!(streams.len(), 32);
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    // Leaving frees places: a new client gets a stream and events.
    recovers_when_they_leave(&hub, streams, 429);
}

/// Above the descriptor limit (an explicit high --max-connections), a new
/// client gets 503 at once instead of waiting in the kernel's queue, an
/// open keep-alive connection still gets `/healthz`, and the hub recovers
/// when subscribers leave.
#[test]
fn out_of_descriptors_new_clients_get_503_and_open_connections_are_served() {
    let hub = hub_with_fd_limit(64, 64, &["--max-connections", "1000"]);
    hub.wait_for_log("--max-connections 1000 is above");
    let mut kept = hub.connect();
    let ok = kept.request("GET", "/healthz", &[], b"");
    assert_eq!((ok.status, ok.text().trim()), (200, "ok"));
    // Fewer than 64 streams under a limit of 64 descriptors.
    let (streams, refused) = open_until_refused(&hub, 63);
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    // Again: the reserved descriptor is taken back after each refusal.
    let again = hub.open("topic=idle", &[]).err().expect("a refusal");
    assert_eq!(again.status, 503);
    hub.wait_for_log("out of file descriptors");
    // The connection opened before still works.
    let ok = kept.request("GET", "/healthz", &[], b"");
    assert_eq!((ok.status, ok.text().trim()), (200, "ok"));
    recovers_when_they_leave(&hub, streams, 503);
}

// ---------------------------------------------------------------------------
// Streams that hold on
// ---------------------------------------------------------------------------

/// A subscriber that asks for a large history and never reads is closed
/// once its socket has taken nothing for --write-timeout; it would resume
/// from history when it comes back.
#[test]
fn a_subscriber_that_stops_reading_is_closed_after_the_write_timeout() {
    let hub = Hub::start(&["--write-timeout", "1s"]);
    // 16 MiB of history: far more than the kernel's socket buffers hold.
    let piece = "x".repeat(512 * 1024);
    for _ in 0..32 {
        hub.publish_ok(&[("topic", "big"), ("data", &piece)]);
    }
    let mut stalled = hub.subscribe("topic=big&lastEventID=earliest", &[]);
    // Never read: the hub closes the stream.
    hub.wait_for_metric("sse_hub_open_streams", |open| open == 0);
    // What the kernel held still arrives, then the connection ends, well
    // short of the history.
    assert!(stalled.wait_end(WAIT), "the connection did not end");
    let received = stalled.conn.received;
    assert!(received < 32 * piece.len(), "{received} bytes arrived");
    // A subscriber that reads is served as usual.
    let mut stream = hub.subscribe("topic=t", &[]);
    hub.assert_delivers(&mut stream, "t", "after");
}

/// With --max-stream-lifetime, a stream ends after a `retry:` of 1 to 5 s,
/// and the client resumes where it was with Last-Event-ID.
#[test]
fn a_stream_ends_at_its_maximum_lifetime_and_the_client_resumes() {
    let hub = Hub::start(&["--max-stream-lifetime", "1s"]);
    let mut stream = hub.subscribe("topic=t", &[]);
    let first = hub.publish_ok(&[("topic", "t"), ("data", "first")]);
    let event = stream.event();
    assert_eq!((event.id(), event.data()), (first.as_str(), "first"));
    // Nothing else is published: the stream ends by itself.
    let retries_before = stream.retries.len();
    assert!(stream.wait_end(WAIT), "the stream did not end");
    assert!(stream.done, "the body ended without its last chunk");
    let retry = *stream.retries[retries_before..]
        .last()
        .expect("a retry: before the end");
    assert!(
        (Duration::from_secs(1)..=Duration::from_secs(5)).contains(&retry),
        "{retry:?}"
    );
    let second = hub.publish_ok(&[("topic", "t"), ("data", "second")]);
    let mut resumed = hub.subscribe("topic=t", &[("Last-Event-ID", event.id())]);
    let event = resumed.event();
    assert_eq!(
        (event.event_type(), event.id(), event.data()),
        ("message", second.as_str(), "second")
    );
}

// ---------------------------------------------------------------------------
// The history's byte cap
// ---------------------------------------------------------------------------

/// --history-bytes (here its environment variable) bounds the in-memory
/// history: the oldest events go, and resuming from one of them gives
/// `sse-lost`.
#[test]
fn the_history_is_bounded_in_bytes() {
    let hub = Hub::start_env(&[], &[("SSE_HUB_HISTORY_BYTES", "64KiB")]);
    let piece = "y".repeat(16 * 1024);
    let ids: Vec<String> = (0..10)
        .map(|i| hub.publish_ok(&[("topic", "t"), ("data", &format!("{i} {piece}"))]))
        .collect();
    let mut all = hub.subscribe("topic=t&lastEventID=earliest", &[]);
    // Each event takes a little more than 16 KiB: three fit in 64 KiB.
    let marker = hub.publish_ok(&[("topic", "t"), ("data", "marker")]);
    let mut kept = Vec::new();
    loop {
        let id = all.event().id().to_owned();
        if id == marker {
            break;
        }
        kept.push(id);
    }
    assert!(
        (2..=3).contains(&kept.len()) && kept == ids[ids.len() - kept.len()..],
        "the history kept {kept:?} of {ids:?}"
    );
    let mut lost = hub.subscribe("topic=t", &[("Last-Event-ID", &ids[0])]);
    let event = lost.event();
    assert_eq!((event.event_type(), event.data()), (LOST, ids[0].as_str()));
}

#[test]
fn a_malformed_byte_count_is_refused_with_a_hint() {
    let (status, output) = run_bounded(&mut sse(&["hub", "--history-bytes", "12 parsecs"]), WAIT);
    assert!(!status.success());
    assert!(output.contains("64MiB"), "{output}");
}

/// Large requests sent slowly cannot take more memory than
/// `--request-memory`: past it, a large request gets 503 (with
/// `Retry-After`) while small ones are served; once the slow senders go,
/// large requests are taken again and nothing stays charged.
#[test]
fn large_requests_sent_slowly_are_bounded_by_the_request_memory() {
    let hub = Hub::start(&["--request-memory", "1MiB", "--max-body", "1048576"]);
    // Publishes announcing 300 KB bodies, of which half is sent: each
    // holds its declared length of the budget while it waits for the rest.
    let head = "POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 300000\r\n\r\n";
    let part = format!("topic=big&data={}", "x".repeat(150_000));
    let mut slow = Vec::new();
    let mut refused = None;
    for _ in 0..8 {
        let mut conn = hub.connect();
        conn.send(head.as_bytes());
        // The hub may answer (503) before taking all of it.
        let _ = conn.socket.write_all(part.as_bytes());
        thread::sleep(Duration::from_millis(100));
        conn.socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut peek = [0u8; 1];
        match conn.socket.peek(&mut peek) {
            // Answered before its body was complete: refused.
            Ok(1..) => {
                refused = Some(conn.response("POST"));
                break;
            }
            _ => slow.push(conn),
        }
    }
    let refused = refused.expect("a large request past the budget is refused");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        (2..=4).contains(&slow.len()),
        "{} large requests held before one was refused (1 MiB / 300 KB each)",
        slow.len()
    );
    assert!(hub.metric("sse_hub_request_memory_bytes") > 500_000);
    assert!(hub.metric("sse_hub_request_memory_bytes") <= 1 << 20);
    // Small requests need no budget.
    assert_eq!(hub.get("/healthz", &[]).status, 200);
    hub.publish_ok(&[("topic", "small"), ("data", "fits in the allowance")]);
    // The slow senders go: their memory is given back, and a large
    // publish is taken.
    drop(slow);
    hub.wait_for_metric("sse_hub_request_memory_bytes", |bytes| bytes == 0);
    hub.publish_ok(&[("topic", "big"), ("data", &"y".repeat(500_000))]);
    assert_eq!(hub.metric("sse_hub_request_memory_bytes"), 0);
}
