//! The hub's HTTP surface, over real sockets as an outside client sees it:
//! the first log line, `/healthz`, the page, `/metrics`, several requests
//! on one connection, `HEAD`, `Expect: 100-continue`, and malformed
//! requests.
//!
//! Every test starts its own hub (in-memory backend) on a free loopback
//! port and kills it when it ends. Every wait is bounded.

use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

mod common;

use common::WAIT;
use common::http::{Fill, HUB_PATH, form, keep_alive_request, metric, request, with_form_type};
use common::hub::Hub;
use common::stream::{CACHE_CONTROL, LOST};
use common::token::KEY;

#[test]
fn first_log_line_names_backend_auth_and_address() {
    let hub = Hub::start(&[]);
    let line = hub.first_line.to_lowercase();
    assert!(line.contains("in-memory"), "{line}");
    assert!(line.contains("auth: off"), "{line}");
    assert!(
        line.contains(&format!("http://{}", hub.addr)),
        "the address: {line}"
    );
    drop(hub);

    let hub = Hub::start(&["--jwt-key", KEY]);
    let line = hub.first_line.to_lowercase();
    assert!(line.contains("in-memory"), "{line}");
    assert!(line.contains("jwt"), "auth on: {line}");
    assert!(!line.contains("auth: off"), "{line}");
    assert!(!line.contains(KEY), "the key must not be logged: {line}");
}

#[test]
fn healthz_page_metrics_and_unknown_paths() {
    let hub = Hub::start(&[]);
    let health = hub.get("/healthz", &[]);
    assert_eq!(health.status, 200);
    assert_eq!(health.text().trim(), "ok");

    let page = hub.get("/", &[]);
    assert_eq!(page.status, 200);
    page.assert_content_type("text/html");
    let html = page.text();
    assert!(html.contains("EventSource"), "the chat page subscribes");
    assert!(html.contains("fetch"), "the chat page publishes");
    assert!(html.contains(HUB_PATH));

    assert_eq!(hub.get("/nope", &[]).status, 404);
    assert_eq!(hub.get("/.well-known/mercure/x", &[]).status, 404);

    // Metrics: an idle hub.
    let text = hub.metrics();
    assert!(text.contains("# TYPE"), "Prometheus text format: {text}");
    assert_eq!(metric(&text, "sse_hub_open_streams"), 0);
    assert_eq!(metric(&text, "sse_hub_updates_published_total"), 0);
    assert_eq!(metric(&text, "sse_hub_backend_up"), 1);

    // Two streams, three updates, one resumption that misses.
    let mut a = hub.subscribe("topic=m", &[]);
    let mut b = hub.subscribe("topic=*", &[("Last-Event-ID", "never-seen")]);
    for i in 0..3 {
        hub.publish_ok(&[("topic", "m"), ("data", &i.to_string())]);
    }
    assert_eq!(a.datas(3), ["0", "1", "2"]);
    let lost = b.event();
    assert_eq!(lost.event_type(), LOST);
    assert_eq!(b.datas(3), ["0", "1", "2"]);
    let text = hub.metrics();
    assert!(
        text.lines().any(|l| l.starts_with("# TYPE sse_hub_")),
        "{text}"
    );
    assert_eq!(metric(&text, "sse_hub_open_streams"), 2, "{text}");
    assert_eq!(metric(&text, "sse_hub_updates_published_total"), 3);
    assert!(
        metric(&text, "sse_hub_events_delivered_total") >= 6,
        "{text}"
    );
    assert_eq!(metric(&text, "sse_hub_subscribers_lagged_total"), 0);
    assert_eq!(metric(&text, "sse_hub_replay_requests_total"), 1);
    assert_eq!(metric(&text, "sse_hub_replay_misses_total"), 1);
    assert_eq!(metric(&text, "sse_hub_backend_up"), 1);
    // Streams whose clients went away are no longer counted.
    drop((a, b));
    hub.wait_for_metric("sse_hub_open_streams", |open| open == 0);
}

#[test]
fn pipelined_requests_are_all_answered() {
    let hub = Hub::start(&[]);
    let mut conn = hub.connect();
    let post = |data: &str| {
        let body = form(&[("topic", "p"), ("data", data)]);
        keep_alive_request("POST", HUB_PATH, &with_form_type(&[]), body.as_bytes())
    };
    conn.send(&[post("one"), post("two")].concat());
    // Both answers may arrive in one read: parse them from one buffer.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let head = conn.head();
        assert_eq!(head.status(), 200);
        let len = head.content_length().unwrap().unwrap() as usize;
        conn.fill_to(len, Instant::now() + WAIT);
        ids.push(conn.buf.split_to(len));
    }
    assert_ne!(ids[0], ids[1]);
    let mut stream = hub.subscribe("topic=p&lastEventID=earliest", &[]);
    assert_eq!(stream.datas(2), ["one", "two"]);
}

/// Answers to pipelined requests may be written together, but never out of
/// order, never lost when the connection ends, and never after an error
/// answer to a later request.
#[test]
fn pipelined_answers_come_in_order_before_a_later_error() {
    let hub = Hub::start(&[]);
    let mut conn = hub.connect();
    let post = |data: &str| {
        let body = form(&[("topic", "q"), ("data", data)]);
        keep_alive_request("POST", HUB_PATH, &with_form_type(&[]), body.as_bytes())
    };
    let mut bytes = [post("1"), post("2"), post("3")].concat();
    bytes.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n");
    conn.send(&bytes);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let answer = conn.response("POST");
        assert_eq!(answer.status, 200, "{}", answer.text());
        ids.push(answer.text());
    }
    assert_eq!(conn.response("GET").status, 400);
    let mut stream = hub.subscribe("topic=q&lastEventID=earliest", &[]);
    assert_eq!(stream.datas(3), ["1", "2", "3"]);
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 3, "three distinct ids: {ids:?}");
}

/// One keep-alive connection that publishes, is refused a subscription,
/// asks for the health check, then subscribes: each request is answered in
/// order (the hub serves streams and other requests on different event
/// loops, and moves the connection, with what it has read ahead, between
/// them).
#[test]
fn one_connection_can_publish_then_subscribe() {
    let hub = Hub::start(&[]);
    let mut conn = hub.connect();
    let body = form(&[("topic", "k"), ("data", "one")]);
    let requests = [
        keep_alive_request("POST", HUB_PATH, &with_form_type(&[]), body.as_bytes()),
        keep_alive_request("GET", HUB_PATH, &[], b""),
        keep_alive_request("GET", "/healthz", &[], b""),
        keep_alive_request(
            "GET",
            &format!("{HUB_PATH}?topic=k&lastEventID=earliest"),
            &[],
            b"",
        ),
    ];
    conn.send(&requests.concat());
    let deadline = Instant::now() + WAIT;
    for expected in [200, 400, 200] {
        let head = conn.head();
        assert_eq!(head.status(), expected);
        let len = head.content_length().unwrap().unwrap() as usize;
        conn.fill_to(len, deadline);
        let _ = conn.buf.split_to(len);
    }
    let head = conn.head();
    assert_eq!(head.status(), 200);
    assert_eq!(head.header_str("content-type"), Some("text/event-stream"));
    while !conn.buf.windows(11).any(|w| w == b"data: one\n\n") {
        assert_eq!(conn.fill(deadline), Fill::Data, "no event");
    }
}

#[test]
fn head_gets_the_stream_head_without_a_body() {
    let hub = Hub::start(&[]);
    let mut conn = hub.connect();
    // Keep-alive: the connection must stay usable after the HEAD.
    conn.send(&keep_alive_request(
        "HEAD",
        &format!("{HUB_PATH}?topic=h"),
        &[],
        b"",
    ));
    let head = conn.response("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("cache-control"), Some(CACHE_CONTROL));
    assert_eq!(head.header("x-accel-buffering"), Some("no"));
    hub.publish_ok(&[("topic", "h"), ("data", "not for a HEAD")]);
    conn.send(&request("GET", "/healthz", &[], b""));
    let next = conn.response("GET");
    assert_eq!(next.status, 200, "a body followed the HEAD response");
    assert_eq!(next.text().trim(), "ok");
    // HEAD is refused like GET.
    let resp = hub.raw(&request("HEAD", HUB_PATH, &[], b""));
    assert_eq!(resp.status, 400);
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let hub = Hub::start(&[]);
    let mut conn = hub.connect();
    let body = form(&[("topic", "e"), ("data", "after continue")]);
    write!(
        conn.socket,
        "POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let interim = conn.head();
    assert_eq!(interim.status(), 100);
    conn.send(body.as_bytes());
    let head = conn.head();
    assert_eq!(head.status(), 200);
    let mut stream = hub.subscribe("topic=e&lastEventID=earliest", &[]);
    assert_eq!(stream.datas(1), ["after continue"]);
}

#[test]
fn malformed_requests_get_4xx_and_the_hub_keeps_serving() {
    let hub = Hub::start(&["--header-timeout", "1s"]);
    for junk in [
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        "\x00\x01\x02\x03\r\n\r\n",
    ] {
        assert_eq!(hub.raw(junk.as_bytes()).status, 400, "{junk:?}");
    }

    // A head over 128 KiB.
    let big = "b".repeat(128 * 1024 + 200);
    let resp = hub.raw(&request("GET", "/healthz", &[("X-Big", &big)], b""));
    assert_eq!(resp.status, 431);

    // Malformed form bodies.
    for body in [
        &b"topic=%zz&data=%"[..],
        b"topic=a&data=%E2%82",
        b"%%%&&&===",
        b"\xff\xfe\x00\x01topic=a",
        b"topic=\xff&data=\xc3\x28",
    ] {
        let resp = hub.post(body, &[]);
        assert!(
            [200, 400].contains(&resp.status),
            "{}: {:?}",
            resp.status,
            String::from_utf8_lossy(body)
        );
    }
    let mut rng = 0x1234_5678_u32;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng as u8
        })
        .collect();
    let resp = hub.post(&noise, &[]);
    assert!([200, 400].contains(&resp.status));
    // A non-form content type.
    let resp = hub.raw(&request(
        "POST",
        HUB_PATH,
        &[("Content-Type", "application/json")],
        b"{\"topic\":\"a\"}",
    ));
    assert!(resp.status >= 400 && resp.status < 500);
    // A chunked body that lies.
    let resp = hub.raw(b"POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n");
    assert_eq!(resp.status, 400);
    hub.assert_healthy();

    // A slowloris: half a head, then nothing.
    let mut conn = hub.connect();
    let started = Instant::now();
    conn.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow:");
    let resp = conn.response("GET");
    let waited = started.elapsed();
    assert_eq!(resp.status, 408);
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "408 after {waited:?}"
    );
    // ...and closed.
    match conn.fill(Instant::now() + WAIT) {
        Fill::Closed => assert!(conn.buf.is_empty(), "more bytes after the 408"),
        Fill::Data => panic!("more bytes after the 408: {:?}", conn.buf),
        Fill::Quiet => panic!("the connection stayed open after the 408"),
    }
    // A slow body.
    let mut conn = hub.connect();
    conn.send(
        b"POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\ntopic=a",
    );
    let resp = conn.response("POST");
    assert_eq!(resp.status, 408);
    // A client that connects and says nothing, then goes away.
    let silent = hub.connect();
    silent.socket.shutdown(Shutdown::Both).unwrap();
    hub.assert_healthy();
    let mut s = hub.subscribe("topic=a", &[("Last-Event-ID", "x")]);
    assert_eq!(s.event().event_type(), LOST);
}
