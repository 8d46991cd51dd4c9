//! `sse hub` against clients that hold resources: the file descriptor limit
//! (raised at start, the default connection limit derived from it, 429
//! over that limit and 503 when descriptors run out anyway), the write
//! timeout, the maximum stream lifetime, and the history's byte cap.
//!
//! Every test starts its own hub on a free loopback port (under
//! `prlimit` where the descriptor limit matters) and talks to it over real
//! sockets with sse-proto's parsers. Every wait is bounded, and no test
//! depends on a tight wall-clock threshold.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use bytes::BytesMut;
use common::HubProcess;
use sse_proto::http1::{BodyDecoder, ResponseHead, ResponseParser};
use sse_proto::{Decoder, Frame};

/// The bound on any single wait.
const WAIT: Duration = Duration::from_secs(15);

/// Starts `sse hub ARGS` with the descriptor limit `soft:hard`.
fn hub_with_fd_limit(soft: u32, hard: u32, args: &[&str]) -> HubProcess {
    common::require("prlimit", "util-linux");
    let limit = format!("--nofile={soft}:{hard}");
    HubProcess::start_wrapped(&["prlimit", &limit, "--"], args, &[])
}

/// Waits until the hub has logged a line containing `text`; that line.
fn wait_for_log(hub: &HubProcess, text: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(line) = hub.log.lock().unwrap().iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the hub never logged {text:?}:\n{}",
            hub.log_text()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// A small HTTP/1.1 client
// ---------------------------------------------------------------------------

/// A connection to the hub, with what was read past the last response.
struct Conn {
    socket: TcpStream,
    buf: BytesMut,
}

/// A response head with its whole body (when it has a length).
struct Resp {
    head: ResponseHead,
    body: Vec<u8>,
}

impl Resp {
    fn status(&self) -> u16 {
        self.head.status()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let socket = TcpStream::connect_timeout(&addr, WAIT).expect("connect to the hub");
        socket.set_write_timeout(Some(WAIT)).unwrap();
        Conn {
            socket,
            buf: BytesMut::new(),
        }
    }

    /// Sends a request with `Host` and these extra header lines.
    fn send(&mut self, method: &str, target: &str, headers: &str, body: &[u8]) {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}");
        if method == "POST" {
            request.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.socket.write_all(&bytes).expect("send the request");
    }

    /// Reads once into the buffer (until `deadline`): false on timeout,
    /// `Err` when the connection ended.
    fn fill(&mut self, deadline: Instant) -> Result<bool, ()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        self.socket.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 64 * 1024];
        match self.socket.read(&mut chunk) {
            Ok(0) => Err(()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
            Err(_) => Err(()),
        }
    }

    /// The next response head; panics if none comes within [`WAIT`].
    fn head(&mut self) -> ResponseHead {
        let deadline = Instant::now() + WAIT;
        let mut parser = ResponseParser::new();
        loop {
            if let Some(head) = parser.parse_buf(&mut self.buf).expect("a valid head") {
                return head;
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => panic!("no response head within {WAIT:?}: the hub hangs"),
                Err(()) => panic!(
                    "the connection ended before a response head ({:?})",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// The next whole response (with a known length or chunked).
    fn response(&mut self, method: &str) -> Resp {
        let head = self.head();
        let mut body = BodyDecoder::new(head.body_kind(method).expect("valid framing"));
        let mut out = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            while let Some(piece) = body.decode(&mut self.buf).expect("a valid body") {
                out.extend_from_slice(&piece);
            }
            if body.is_done() || !matches!(self.fill(deadline), Ok(true)) {
                break;
            }
        }
        Resp { head, body: out }
    }

    /// A request and its response on this connection.
    fn request(&mut self, method: &str, target: &str, headers: &str, body: &[u8]) -> Resp {
        self.send(method, target, headers, body);
        self.response(method)
    }
}

/// One request on a new connection.
fn request(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> Resp {
    Conn::open(addr).request(method, target, "Connection: close\r\n", body)
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

/// Publishes `data` on `topic`; the event's id.
fn publish(addr: SocketAddr, topic: &str, data: &str) -> String {
    let resp = request(
        addr,
        "POST",
        "/.well-known/mercure",
        form(&[("topic", topic), ("data", data)]).as_bytes(),
    );
    assert_eq!(resp.status(), 200, "publish: {}", resp.text());
    resp.text()
}

/// The value of a Prometheus sample.
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let text = request(addr, "GET", "/metrics", b"").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// An open event stream.
struct Stream {
    conn: Conn,
    body: BodyDecoder,
    decoder: Decoder,
    /// The connection ended.
    ended: bool,
}

impl Stream {
    /// Subscribes; the answer's head when it is not 200.
    fn open(addr: SocketAddr, query: &str, headers: &str) -> Result<Stream, Resp> {
        let mut conn = Conn::open(addr);
        conn.send(
            "GET",
            &format!("/.well-known/mercure?{query}"),
            headers,
            b"",
        );
        let head = conn.head();
        if head.status() != 200 {
            let mut body = BodyDecoder::new(head.body_kind("GET").expect("valid framing"));
            let mut out = Vec::new();
            let deadline = Instant::now() + WAIT;
            loop {
                while let Some(piece) = body.decode(&mut conn.buf).expect("a valid body") {
                    out.extend_from_slice(&piece);
                }
                if body.is_done() || !matches!(conn.fill(deadline), Ok(true)) {
                    break;
                }
            }
            return Err(Resp { head, body: out });
        }
        let body = BodyDecoder::new(head.body_kind("GET").expect("valid framing"));
        Ok(Stream {
            conn,
            body,
            decoder: Decoder::new(),
            ended: false,
        })
    }

    /// The next frame, or `None` once the stream has ended (its last chunk,
    /// or the connection closing); panics when nothing comes for [`WAIT`].
    fn frame(&mut self) -> Option<Frame> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(frame) = self.decoder.poll_frame().expect("a valid event stream") {
                return Some(frame);
            }
            if self.ended {
                return None;
            }
            let mut decoded = false;
            while let Some(piece) = self.body.decode(&mut self.conn.buf).expect("a valid body") {
                self.decoder.handle_chunk(piece);
                decoded = true;
            }
            if self.body.is_done() {
                self.ended = true;
                self.decoder.handle_eof();
                continue;
            }
            if decoded {
                continue;
            }
            match self.conn.fill(deadline) {
                Ok(true) => {}
                Ok(false) => panic!("the stream went quiet for {WAIT:?}"),
                Err(()) => {
                    self.ended = true;
                    self.decoder.handle_eof();
                }
            }
        }
    }

    /// The next event as (type, id, data); panics at the end.
    fn event(&mut self) -> (String, String, String) {
        loop {
            match self.frame() {
                Some(Frame::Event(e)) => {
                    return (
                        e.event_type().to_owned(),
                        e.id().to_owned(),
                        e.data().to_owned(),
                    );
                }
                Some(_) => {}
                None => panic!("the stream ended before an event"),
            }
        }
    }
}

/// Subscribes to `topic`; panics unless the answer is 200.
fn subscribe(addr: SocketAddr, topic: &str) -> Stream {
    match Stream::open(addr, &format!("topic={topic}"), "") {
        Ok(stream) => stream,
        Err(resp) => panic!("subscribe: {} {}", resp.status(), resp.text()),
    }
}

/// Retries a subscription until the hub accepts one (it frees closed
/// connections' places asynchronously).
fn subscribe_eventually(addr: SocketAddr, topic: &str) -> Stream {
    let deadline = Instant::now() + WAIT;
    loop {
        match Stream::open(addr, &format!("topic={topic}"), "") {
            Ok(stream) => return stream,
            Err(resp) => {
                assert!(
                    Instant::now() < deadline,
                    "the hub did not recover: still {} {}",
                    resp.status(),
                    resp.text()
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// File descriptors
// ---------------------------------------------------------------------------

#[test]
fn the_descriptor_limit_is_raised_and_the_connection_limit_derived_from_it() {
    let hub = hub_with_fd_limit(64, 512, &[]);
    let line = wait_for_log(&hub, "file descriptors:");
    // 512 less a reserve of max(512 / 10, 32) = 51.
    assert!(
        line.contains("limit 512 (raised from 64)") && line.contains("at most 461 connections"),
        "{line}"
    );
    assert!(line.contains("derived"), "{line}");
    // An explicit --max-connections is reported as such.
    let hub = hub_with_fd_limit(64, 64, &["--max-connections", "10"]);
    let line = wait_for_log(&hub, "file descriptors:");
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
    let line = wait_for_log(&hub, "file descriptors:");
    // 64 less a reserve of 32.
    assert!(line.contains("at most 32 connections"), "{line}");
    let mut streams = Vec::new();
    let refused = loop {
        match Stream::open(hub.addr, "topic=idle", "") {
            Ok(stream) => streams.push(stream),
            Err(resp) => break resp,
        }
        assert!(streams.len() <= 32, "more than 32 connections were taken");
    };
    assert_eq!(streams.len(), 32);
    assert_eq!(refused.status(), 429, "{}", refused.text());
    assert!(refused.head.header_str("retry-after").is_some());
    // Leaving frees places: a new client gets a stream and events.
    drop(streams);
    let mut stream = subscribe_eventually(hub.addr, "t");
    publish(hub.addr, "t", "back");
    assert_eq!(stream.event().2, "back");
}

/// Above the descriptor limit (an explicit high --max-connections), a new
/// client gets 503 at once instead of waiting in the kernel's queue, an
/// open keep-alive connection still gets `/healthz`, and the hub recovers
/// when subscribers leave.
#[test]
fn out_of_descriptors_new_clients_get_503_and_open_connections_are_served() {
    let hub = hub_with_fd_limit(64, 64, &["--max-connections", "1000"]);
    wait_for_log(&hub, "--max-connections 1000 is above");
    let mut kept = Conn::open(hub.addr);
    let ok = kept.request("GET", "/healthz", "", b"");
    assert_eq!((ok.status(), ok.text().trim()), (200, "ok"));
    let mut streams = Vec::new();
    let refused = loop {
        match Stream::open(hub.addr, "topic=idle", "") {
            Ok(stream) => streams.push(stream),
            Err(resp) => break resp,
        }
        assert!(
            streams.len() < 64,
            "64 streams open under a limit of 64 descriptors"
        );
    };
    assert_eq!(refused.status(), 503, "{}", refused.text());
    assert!(refused.head.header_str("retry-after").is_some());
    // Again: the reserved descriptor is taken back after each refusal.
    let again = Stream::open(hub.addr, "topic=idle", "")
        .err()
        .expect("a refusal");
    assert_eq!(again.status(), 503);
    wait_for_log(&hub, "out of file descriptors");
    // The connection opened before still works.
    let ok = kept.request("GET", "/healthz", "", b"");
    assert_eq!((ok.status(), ok.text().trim()), (200, "ok"));
    drop(streams);
    let mut stream = subscribe_eventually(hub.addr, "t");
    publish(hub.addr, "t", "back");
    assert_eq!(stream.event().2, "back");
}

// ---------------------------------------------------------------------------
// Streams that hold on
// ---------------------------------------------------------------------------

/// A subscriber that asks for a large history and never reads is closed
/// once its socket has taken nothing for --write-timeout; it would resume
/// from history when it comes back.
#[test]
fn a_subscriber_that_stops_reading_is_closed_after_the_write_timeout() {
    let hub = HubProcess::start(&["--write-timeout", "1s"], &[]);
    // 16 MiB of history: far more than the kernel's socket buffers hold.
    let piece = "x".repeat(512 * 1024);
    for _ in 0..32 {
        publish(hub.addr, "big", &piece);
    }
    let mut stalled = Stream::open(hub.addr, "topic=big&lastEventID=earliest", "")
        .unwrap_or_else(|r| panic!("{} {}", r.status(), r.text()));
    // Never read: the hub closes the stream.
    let deadline = Instant::now() + WAIT;
    while metric(hub.addr, "sse_hub_open_streams") > 0 {
        assert!(
            Instant::now() < deadline,
            "the stalled stream was not closed"
        );
        thread::sleep(Duration::from_millis(100));
    }
    // What the kernel held still arrives, then the connection ends, well
    // short of the history.
    let mut received = stalled.conn.buf.len();
    let deadline = Instant::now() + WAIT;
    loop {
        stalled.conn.buf.clear();
        match stalled.conn.fill(deadline) {
            Ok(true) => received += stalled.conn.buf.len(),
            Ok(false) => panic!("the connection did not end"),
            Err(()) => break,
        }
    }
    assert!(received < 32 * piece.len(), "{received} bytes arrived");
    // A subscriber that reads is served as usual.
    let mut stream = subscribe(hub.addr, "t");
    publish(hub.addr, "t", "after");
    assert_eq!(stream.event().2, "after");
}

/// With --max-stream-lifetime, a stream ends after a `retry:` of 1 to 5 s,
/// and the client resumes where it was with Last-Event-ID.
#[test]
fn a_stream_ends_at_its_maximum_lifetime_and_the_client_resumes() {
    let hub = HubProcess::start(&["--max-stream-lifetime", "1s"], &[]);
    let mut stream = subscribe(hub.addr, "t");
    let first = publish(hub.addr, "t", "first");
    let (_, id, data) = stream.event();
    assert_eq!((id.as_str(), data.as_str()), (first.as_str(), "first"));
    // Nothing else is published: the stream ends by itself.
    let mut retry = None;
    while let Some(frame) = stream.frame() {
        if let Frame::Retry(r) = frame {
            retry = Some(r);
        }
    }
    assert!(
        stream.body.is_done(),
        "the body ended without its last chunk"
    );
    let retry = retry.expect("a retry: before the end");
    assert!(
        (Duration::from_secs(1)..=Duration::from_secs(5)).contains(&retry),
        "{retry:?}"
    );
    let second = publish(hub.addr, "t", "second");
    let mut resumed = Stream::open(hub.addr, "topic=t", &format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_else(|r| panic!("{} {}", r.status(), r.text()));
    let (kind, id, data) = resumed.event();
    assert_eq!(
        (kind.as_str(), id.as_str(), data.as_str()),
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
    let hub = HubProcess::start(&[], &[("SSE_HUB_HISTORY_BYTES", "64KiB")]);
    let piece = "y".repeat(16 * 1024);
    let ids: Vec<String> = (0..10)
        .map(|i| publish(hub.addr, "t", &format!("{i} {piece}")))
        .collect();
    let mut all = Stream::open(hub.addr, "topic=t&lastEventID=earliest", "")
        .unwrap_or_else(|r| panic!("{} {}", r.status(), r.text()));
    // Each event takes a little more than 16 KiB: three fit in 64 KiB.
    let marker = publish(hub.addr, "t", "marker");
    let mut kept = Vec::new();
    loop {
        let (_, id, _) = all.event();
        if id == marker {
            break;
        }
        kept.push(id);
    }
    assert!(
        (2..=3).contains(&kept.len()) && kept == ids[ids.len() - kept.len()..],
        "the history kept {kept:?} of {ids:?}"
    );
    let mut lost = Stream::open(
        hub.addr,
        "topic=t",
        &format!("Last-Event-ID: {}\r\n", ids[0]),
    )
    .unwrap_or_else(|r| panic!("{} {}", r.status(), r.text()));
    let (kind, _, data) = lost.event();
    assert_eq!(
        (kind.as_str(), data.as_str()),
        ("sse-lost", ids[0].as_str())
    );
}

#[test]
fn a_malformed_byte_count_is_refused_with_a_hint() {
    let (status, output) = common::run_bounded(
        std::process::Command::new(env!("CARGO_BIN_EXE_sse")).args([
            "hub",
            "--history-bytes",
            "12 parsecs",
        ]),
        WAIT,
    );
    assert!(!status.success());
    assert!(output.contains("64MiB"), "{output}");
}

/// Large requests sent slowly cannot take more memory than
/// `--request-memory`: past it, a large request gets 503 (with
/// `Retry-After`) while small ones are served; once the slow senders go,
/// large requests are taken again and nothing stays charged.
#[test]
fn large_requests_sent_slowly_are_bounded_by_the_request_memory() {
    let hub = HubProcess::start(&["--request-memory", "1MiB", "--max-body", "1048576"], &[]);
    let addr = hub.addr;
    // Publishes announcing 300 KB bodies, of which half is sent: each
    // holds its declared length of the budget while it waits for the rest.
    let head = "POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 300000\r\n\r\n";
    let part = format!("topic=big&data={}", "x".repeat(150_000));
    let mut slow = Vec::new();
    let mut refused = None;
    for _ in 0..8 {
        let mut conn = Conn::open(addr);
        conn.socket.write_all(head.as_bytes()).unwrap();
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
                conn.socket.set_read_timeout(None).unwrap();
                refused = Some(conn.response("POST"));
                break;
            }
            _ => slow.push(conn),
        }
    }
    let refused = refused.expect("a large request past the budget is refused");
    assert_eq!(refused.status(), 503, "{}", refused.text());
    assert_eq!(refused.head.header_str("retry-after"), Some("1"));
    assert!(
        (2..=4).contains(&slow.len()),
        "{} large requests held before one was refused (1 MiB / 300 KB each)",
        slow.len()
    );
    assert!(metric(addr, "sse_hub_request_memory_bytes") > 500_000);
    assert!(metric(addr, "sse_hub_request_memory_bytes") <= 1 << 20);
    // Small requests need no budget.
    assert_eq!(request(addr, "GET", "/healthz", b"").status(), 200);
    publish(addr, "small", "fits in the allowance");
    // The slow senders go: their memory is given back, and a large
    // publish is taken.
    drop(slow);
    let deadline = Instant::now() + WAIT;
    while metric(addr, "sse_hub_request_memory_bytes") > 0 {
        assert!(Instant::now() < deadline, "request memory stays charged");
        thread::sleep(Duration::from_millis(20));
    }
    publish(addr, "big", &"y".repeat(500_000));
    assert_eq!(metric(addr, "sse_hub_request_memory_bytes"), 0);
}
