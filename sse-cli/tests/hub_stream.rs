//! Event streams of a real `sse hub`: how many topics a subscription
//! takes, the stream's head, the fields of each event, exact and wildcard
//! selectors, heartbeats and `retry:`, and gzip.
//!
//! Every test starts its own hub (in-memory backend) on a free loopback
//! port and kills it when it ends. Every wait is bounded.

use std::time::{Duration, Instant};

mod common;

use common::WAIT;
use common::http::{client_ends, client_ends_left};
use common::hub::Hub;
use common::stream::{CACHE_CONTROL, comments};
use sse_proto::Frame;

#[test]
fn subscribe_needs_one_to_a_thousand_topics() {
    let hub = Hub::start(&[]);
    let resp = hub.get("/.well-known/mercure", &[]);
    assert_eq!(resp.status, 400, "no topic");
    let resp = hub.get("/.well-known/mercure?lastEventID=x", &[]);
    assert_eq!(resp.status, 400, "no topic, other parameters");

    let many = |n: usize| {
        (0..n)
            .map(|i| format!("topic=t{i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let resp = hub.get(&format!("/.well-known/mercure?{}", many(1001)), &[]);
    assert_eq!(resp.status, 400, "1001 topics");
    let mut stream = hub.subscribe(&many(1000), &[]);
    hub.assert_delivers(&mut stream, "t999", "last one");

    // 1000 realistic topic URLs fit in a request head too.
    let urls: Vec<String> = (0..1000)
        .map(|i| format!("topic=https%3A%2F%2Fexample.com%2Fbooks%2F{i:06}%2Freviews"))
        .collect();
    let mut stream = hub.subscribe(&urls.join("&"), &[]);
    hub.publish_ok(&[
        ("topic", "https://example.com/books/000999/reviews"),
        ("data", "url"),
    ]);
    assert_eq!(stream.event().data(), "url");
}

#[test]
fn stream_headers_arrive_before_any_event() {
    let hub = Hub::start(&[]);
    let started = Instant::now();
    // Nothing is published: the head must come anyway, at once.
    let stream = hub.subscribe("topic=quiet", &[]);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(stream.head.status(), 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.header("cache-control"), Some(CACHE_CONTROL));
    assert_eq!(stream.header("x-accel-buffering"), Some("no"));
    assert_eq!(
        stream.header("last-event-id"),
        None,
        "no cursor, no Last-Event-ID"
    );
    assert!(stream.header("content-encoding").is_none());
    assert!(stream.frames.is_empty());
}

#[test]
fn events_carry_id_type_data_and_retry() {
    let hub = Hub::start(&[]);
    let mut s = hub.subscribe("topic=https%3A%2F%2Fexample.com%2Fbooks%2F1", &[]);
    let topic = "https://example.com/books/1";

    let id = hub.publish_ok(&[
        ("topic", topic),
        ("data", "{\"a\":1}"),
        ("type", "book.updated"),
        ("id", "urn:uuid:1234"),
        ("retry", "2500"),
    ]);
    assert_eq!(id, "urn:uuid:1234", "the publisher's id is used");
    let frame = s.next_frame(WAIT).expect("a frame");
    let event = match frame {
        Frame::Retry(retry) => {
            assert_eq!(retry, Duration::from_millis(2500));
            s.event()
        }
        Frame::Event(event) => {
            assert_eq!(s.retries, [Duration::from_millis(2500)]);
            event
        }
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(event.id(), "urn:uuid:1234");
    assert_eq!(event.event_type(), "book.updated");
    assert_eq!(event.data(), "{\"a\":1}");
    assert_eq!(s.retries, [Duration::from_millis(2500)]);

    // Assigned id; no type means the default `message`, and no `event:`.
    let id = hub.publish_ok(&[("topic", topic), ("data", "plain")]);
    assert!(!id.is_empty());
    let event = s.event();
    assert_eq!(
        (event.id(), event.event_type(), event.data()),
        (id.as_str(), "message", "plain")
    );
    assert_eq!(s.retries.len(), 1, "no retry: field without `retry`");

    // Multi-line data round-trips exactly.
    let exact = "line 1\n  indented\n\nline 4\n";
    hub.publish_ok(&[("topic", topic), ("data", exact)]);
    assert_eq!(s.event().data(), exact);

    // CR, LF and CRLF all become line breaks.
    hub.publish_ok(&[("topic", topic), ("data", "a\rb\nc\r\nd\r")]);
    assert_eq!(s.event().data(), "a\nb\nc\nd\n");

    // Empty data is still an event.
    let id = hub.publish_ok(&[("topic", topic), ("data", "")]);
    let event = s.event();
    assert_eq!((event.id(), event.data()), (id.as_str(), ""));

    // No `data` field at all: an empty payload too.
    let id = hub.publish_ok(&[("topic", topic)]);
    assert_eq!(s.event().id(), id);

    // NUL and other control characters in the data are just data.
    hub.publish_ok(&[("topic", topic), ("data", "a\0b\tc\u{7f}")]);
    assert_eq!(s.event().data(), "a\0b\tc\u{7f}");

    // Non-ASCII survives.
    hub.publish_ok(&[("topic", topic), ("data", "héllo ✓ 😀")]);
    assert_eq!(s.event().data(), "héllo ✓ 😀");

    // The raw stream really holds the fields.
    let text = s.text();
    assert!(text.contains("id: urn:uuid:1234\n"), "{text}");
    assert!(text.contains("event: book.updated\n"), "{text}");
    assert!(text.contains("retry: 2500\n"), "{text}");
}

#[test]
fn exact_and_wildcard_selectors() {
    let hub = Hub::start(&[]);
    let mut a = hub.subscribe("topic=a", &[]);
    let mut any = hub.subscribe("topic=*", &[]);
    let mut bc = hub.subscribe("topic=b&topic=c", &[]);
    let mut star_lit = hub.subscribe("topic=a*", &[]);

    hub.publish_ok(&[("topic", "a"), ("data", "to a")]);
    hub.publish_ok(&[("topic", "b"), ("data", "to b")]);
    hub.publish_ok(&[("topic", "d"), ("data", "to d")]);
    hub.publish_ok(&[("topic", "x"), ("topic", "c"), ("data", "to x and c")]);
    hub.publish_ok(&[("topic", "ab"), ("data", "to ab")]);
    hub.publish_ok(&[("topic", "A"), ("data", "to A")]);
    // A last one everybody receives (once, though it matches twice).
    hub.publish_ok(&[
        ("topic", "a"),
        ("topic", "b"),
        ("topic", "c"),
        ("topic", "a*"),
        ("data", "end"),
    ]);

    let timeout = WAIT;
    assert_eq!(a.until_data("end", timeout), ["to a", "end"]);
    assert_eq!(
        any.until_data("end", timeout),
        ["to a", "to b", "to d", "to x and c", "to ab", "to A", "end"]
    );
    assert_eq!(bc.until_data("end", timeout), ["to b", "to x and c", "end"]);
    assert_eq!(
        star_lit.until_data("end", timeout),
        ["end"],
        "only `*` is a wildcard"
    );
    // Nothing more.
    assert!(a.next_event(Duration::from_millis(200)).is_none());
    assert!(bc.next_event(Duration::from_millis(50)).is_none());
}

#[test]
fn heartbeat_comment_after_idleness_and_retry_at_start() {
    let hub = Hub::start(&["--heartbeat", "200ms", "--retry", "1500"]);
    let started = Instant::now();
    let mut s = hub.subscribe("topic=hb", &[]);
    // `retry:` comes first, before anything is published.
    assert!(s.wait_text(Duration::from_secs(2), |t| t.contains("retry: 1500")));
    assert_eq!(s.retries.first(), Some(&Duration::from_millis(1500)));
    assert!(
        s.wait_text(Duration::from_secs(2), |t| !comments(t).is_empty()),
        "no heartbeat within 2 s"
    );
    let first = started.elapsed();
    assert!(
        first >= Duration::from_millis(150),
        "a heartbeat after idleness, not at once"
    );
    // Heartbeats keep coming while idle...
    let text = s.collect_for(Duration::from_millis(900));
    assert!(
        comments(&text).len() >= 2,
        "heartbeats while idle: {text:?}"
    );
    // ...and an event still gets through.
    hub.assert_delivers(&mut s, "hb", "x");
}

#[test]
fn heartbeat_zero_disables_it() {
    let hub = Hub::start(&["--heartbeat", "0"]);
    let mut s = hub.subscribe("topic=hb", &[]);
    let text = s.collect_for(Duration::from_millis(1200));
    assert!(
        comments(&text).is_empty(),
        "a heartbeat although disabled: {text:?}"
    );
    assert!(!s.eof && !s.done, "the stream stays open");
    assert!(s.retries.is_empty(), "no --retry, no retry: field");
    hub.assert_delivers(&mut s, "hb", "still alive");
}

#[test]
fn gzip_streams_flush_every_event_and_heartbeat() {
    let hub = Hub::start(&["--heartbeat", "300ms", "--retry", "1000"]);
    let mut s = hub.subscribe("topic=z", &[("Accept-Encoding", "gzip")]);
    assert_eq!(s.header("content-encoding"), Some("gzip"));
    assert_eq!(s.header("content-type"), Some("text/event-stream"));
    assert!(s.gzip.is_some());
    for i in 0..5 {
        let data = format!("compressed event {i} {}", "abc".repeat(i * 10));
        hub.publish_ok(&[("topic", "z"), ("data", &data)]);
        // Readable before the next publish, within milliseconds.
        let started = Instant::now();
        let event = s
            .next_event(Duration::from_secs(2))
            .unwrap_or_else(|| panic!("event {i} not readable (gzip not flushed?)"));
        assert_eq!(event.data(), data);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    assert_eq!(s.retries.first(), Some(&Duration::from_millis(1000)));
    // Heartbeats are flushed too.
    assert!(
        s.wait_text(Duration::from_secs(2), |t| !comments(t).is_empty()),
        "no heartbeat readable through gzip"
    );
    // Without Accept-Encoding: plain.
    let plain = hub.subscribe("topic=z", &[]);
    assert_eq!(plain.header("content-encoding"), None);
    let identity = hub.subscribe("topic=z", &[("Accept-Encoding", "identity")]);
    assert_eq!(identity.header("content-encoding"), None);
}

#[test]
fn a_stream_the_client_closes_is_reset_so_the_client_keeps_no_time_wait() {
    let hub = Hub::start(&["--heartbeat", "0"]);
    // Six streams: the first few run beside the publishes, the others on
    // the streams' threads; both places close the same way.
    let streams: Vec<_> = (0..6)
        .map(|_| hub.subscribe("topic=leaving", &[]))
        .collect();
    let ports: Vec<u16> = streams
        .iter()
        .map(|s| s.conn.socket.local_addr().expect("local address").port())
        .collect();
    assert_eq!(client_ends(hub.addr.port(), &ports).len(), 6, "all open");
    // The client closes first. Answered with a FIN, each of its ends would
    // sit in TIME_WAIT for a minute; answered with a reset, they are gone.
    drop(streams);
    let left = client_ends_left(hub.addr.port(), &ports);
    assert!(
        left.is_empty(),
        "client ends still held (port, state): {left:?}"
    );
    // The hub serves on.
    let mut stream = hub.subscribe("topic=leaving", &[]);
    hub.assert_delivers(&mut stream, "leaving", "still serving");
}
