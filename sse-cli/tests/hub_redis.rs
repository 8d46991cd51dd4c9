//! `sse hub --redis`: several hub processes sharing one real `redis-server`
//! (started here on a free port, killed and restarted to test outages).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use bytes::BytesMut;
use common::HubProcess;
use sse_proto::http1::{BodyDecoder, ResponseParser};
use sse_proto::{Decoder, Event};

const WAIT: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real redis-server on a free port, without persistence.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let mut redis = Redis {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"PING\r\n");
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A hub process; killed when dropped.
struct Hub {
    /// Kept for its `Drop`, which kills the process.
    _process: HubProcess,
    addr: String,
}

impl Hub {
    fn start(args: &[&str]) -> Hub {
        let process = HubProcess::start(args, &[]);
        assert!(
            process.first_line.contains("backend: redis"),
            "{}",
            process.first_line
        );
        Hub {
            addr: process.addr.to_string(),
            _process: process,
        }
    }

    /// A request; the status and the body (for responses with a length).
    fn request(&self, method: &str, target: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }

    fn publish(&self, topic: &str, data: &str) -> (u16, String) {
        self.request(
            "POST",
            "/.well-known/mercure",
            &format!("topic={topic}&data={data}"),
        )
    }

    fn healthz(&self) -> u16 {
        self.request("GET", "/healthz", "").0
    }

    fn wait_health(&self, want: u16) {
        let deadline = Instant::now() + WAIT;
        while self.healthz() != want {
            assert!(Instant::now() < deadline, "/healthz never became {want}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Subscribes; events arrive on the channel, `"comment"`s as events of
    /// type `:` (keep-alives are seen through the raw body).
    fn subscribe(&self, query: &str, last_event_id: Option<&str>) -> Subscription {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let mut head = format!("GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if let Some(id) = last_event_id {
            head.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let (tx, rx) = mpsc::channel();
        let bytes = Arc::new(Mutex::new(0usize));
        let seen = bytes.clone();
        let reader = s.try_clone().unwrap();
        thread::spawn(move || {
            let mut reader = reader;
            let mut buf = BytesMut::with_capacity(8192);
            let mut parser = ResponseParser::new();
            let mut body: Option<BodyDecoder> = None;
            let mut decoder = Decoder::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                if body.is_none() {
                    match parser.parse_buf(&mut buf).unwrap() {
                        Some(head) => {
                            assert_eq!(head.status(), 200);
                            body = Some(BodyDecoder::new(head.body_kind("GET").unwrap()));
                        }
                        None => continue,
                    }
                }
                let Some(body) = body.as_mut() else { continue };
                while let Some(piece) = body.decode(&mut buf).unwrap() {
                    *seen.lock().unwrap() += piece.len();
                    decoder.handle_chunk(piece);
                    while let Some(event) = decoder.poll_event().unwrap() {
                        if tx.send(event).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Subscription {
            socket: s,
            events: rx,
            bytes,
        }
    }
}

struct Subscription {
    socket: TcpStream,
    events: Receiver<Event>,
    bytes: Arc<Mutex<usize>>,
}

impl Subscription {
    fn next(&self) -> Event {
        self.events.recv_timeout(WAIT).expect("no event in time")
    }

    fn data(&self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.next().data().to_owned()).collect()
    }

    fn assert_quiet(&self, for_: Duration) {
        if let Ok(e) = self.events.recv_timeout(for_) {
            panic!("unexpected event {e:?}");
        }
    }

    fn body_bytes(&self) -> usize {
        *self.bytes.lock().unwrap()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

#[test]
fn hubs_sharing_redis_act_as_one() {
    let redis = Redis::start();
    let url = redis.url();
    let a = Hub::start(&["--redis", &url, "--history", "5"]);
    let b = Hub::start(&["--redis", &url, "--history", "5"]);
    a.wait_health(200);
    b.wait_health(200);
    let on_b = b.subscribe("topic=t", None);
    let on_a = a.subscribe("topic=*", None);
    thread::sleep(Duration::from_millis(200));

    // Publish on A, receive on both, under the id A answered with.
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, id) = a.publish("t", &format!("a{i}"));
        assert_eq!(status, 200);
        ids.push(id);
    }
    let (status, id) = b.publish("t", "b0");
    assert_eq!(status, 200);
    ids.push(id);
    for sub in [&on_a, &on_b] {
        let got: Vec<(String, String)> = (0..4)
            .map(|_| {
                let e = sub.next();
                (e.id().to_owned(), e.data().to_owned())
            })
            .collect();
        assert_eq!(
            got.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
            ["a0", "a1", "a2", "b0"]
        );
        assert_eq!(got.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(), ids);
    }
    // A publisher's own id is kept everywhere.
    let (status, id) = b.publish("t", "mine&id=custom-1");
    assert_eq!((status, id.as_str()), (200, "custom-1"));
    assert_eq!(on_a.next().id(), "custom-1");

    // Resume on B with an id A gave out, and the reverse.
    let resumed = b.subscribe("topic=t", Some(&ids[1]));
    assert_eq!(resumed.data(3), ["a2", "b0", "mine"]);
    let resumed = a.subscribe("topic=t", Some("custom-1"));
    resumed.assert_quiet(Duration::from_millis(300));
    // History is trimmed to --history, also for a process that starts late.
    for i in 0..10 {
        assert_eq!(a.publish("t", &format!("n{i}")).0, 200);
    }
    let c = Hub::start(&["--redis", &url, "--history", "5"]);
    c.wait_health(200);
    let all = c.subscribe("topic=t&lastEventID=earliest", None);
    assert_eq!(all.data(5), ["n5", "n6", "n7", "n8", "n9"]);
    all.assert_quiet(Duration::from_millis(300));
    let evicted = c.subscribe("topic=t", Some(&ids[0]));
    let first = evicted.next();
    assert_eq!(
        (first.event_type(), first.data()),
        ("sse-lost", ids[0].as_str())
    );
    assert_eq!(evicted.data(5), ["n5", "n6", "n7", "n8", "n9"]);
}

#[test]
fn a_redis_outage_keeps_subscribers_and_refuses_publishes() {
    let mut redis = Redis::start();
    let url = redis.url();
    let hub = Hub::start(&["--redis", &url, "--heartbeat", "200ms"]);
    hub.wait_health(200);
    let sub = hub.subscribe("topic=t", None);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(hub.publish("t", "before").0, 200);
    assert_eq!(sub.next().data(), "before");

    redis.kill();
    hub.wait_health(503);
    let (status, body) = hub.publish("t", "during");
    assert_eq!(status, 503, "{body}");
    // The stream stays open: keep-alives keep coming.
    let bytes = sub.body_bytes();
    thread::sleep(Duration::from_millis(700));
    assert!(
        sub.body_bytes() > bytes,
        "the stream went quiet during the outage"
    );

    redis.restart();
    hub.wait_health(200);
    let (status, _) = hub.publish("t", "after");
    assert_eq!(status, 200);
    assert_eq!(sub.next().data(), "after");
    // Nothing published during the outage shows up.
    sub.assert_quiet(Duration::from_millis(300));
}

/// A TCP proxy that can be cut (connections dropped, new ones refused)
/// and restored on the same port.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !o.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                c.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), upstream.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, client),
                ] {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, open, conns }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_process_cut_off_from_redis_catches_up_on_what_others_published() {
    let redis = Redis::start();
    let proxy = Proxy::start(redis.port);
    let cut_off = Hub::start(&["--redis", &format!("redis://127.0.0.1:{}", proxy.port)]);
    let other = Hub::start(&["--redis", &redis.url()]);
    cut_off.wait_health(200);
    other.wait_health(200);
    let sub = cut_off.subscribe("topic=t", None);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(other.publish("t", "first").0, 200);
    assert_eq!(sub.next().data(), "first");

    proxy.cut();
    cut_off.wait_health(503);
    assert_eq!(cut_off.publish("t", "refused").0, 503);
    for i in 0..3 {
        assert_eq!(other.publish("t", &format!("meanwhile {i}")).0, 200);
    }
    proxy.restore();
    cut_off.wait_health(200);
    assert_eq!(sub.data(3), ["meanwhile 0", "meanwhile 1", "meanwhile 2"]);
    sub.assert_quiet(Duration::from_millis(300));
}

/// A process cut off from Redis (given `bound`) while another publishes
/// past the stream's bounds (`publish_meanwhile`): the entries it missed
/// are gone, so it does not pretend to catch up. Its streams end, and a
/// client that comes back with its last id is told that events may be
/// lost, then gets what follows (never the trimmed entries).
fn a_process_that_missed_trimmed_entries_tells_its_subscribers(
    bound: [&str; 2],
    publish_meanwhile: impl Fn(&Hub),
) {
    let redis = Redis::start();
    let proxy = Proxy::start(redis.port);
    let via_proxy = format!("redis://127.0.0.1:{}", proxy.port);
    let cut_off = Hub::start(&["--redis", &via_proxy, bound[0], bound[1]]);
    let other = Hub::start(&["--redis", &redis.url(), bound[0], bound[1]]);
    cut_off.wait_health(200);
    other.wait_health(200);
    let sub = cut_off.subscribe("topic=t", None);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(other.publish("t", "first").0, 200);
    let first = sub.next();
    assert_eq!(first.data(), "first");

    proxy.cut();
    cut_off.wait_health(503);
    publish_meanwhile(&other);
    proxy.restore();
    cut_off.wait_health(200);
    // The stream ends (the reader thread sees the close).
    let deadline = Instant::now() + WAIT;
    loop {
        match sub.events.recv_timeout(Duration::from_millis(100)) {
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {
                assert!(Instant::now() < deadline, "the stream did not end");
            }
        }
    }
    let back = cut_off.subscribe("topic=t", Some(first.id()));
    let lost = back.next();
    assert_eq!((lost.event_type(), lost.data()), ("sse-lost", first.id()));
    assert_eq!(other.publish("t", "later").0, 200);
    loop {
        let event = back.next();
        assert_ne!(event.data(), "first");
        if event.data() == "later" {
            break;
        }
    }
}

/// Trimmed for their number (`--history`): 250 entries into a stream kept
/// at 5.
#[test]
fn a_process_that_missed_entries_trimmed_for_their_number_tells_its_subscribers() {
    a_process_that_missed_trimmed_entries_tells_its_subscribers(["--history", "5"], |other| {
        for i in 0..250 {
            assert_eq!(other.publish("t", &format!("meanwhile {i}")).0, 200);
        }
    });
}

/// Trimmed for their bytes (`--history-bytes`, with the default
/// `--history` entries): 20 entries of 16 KiB into 64 KiB, so "first" and
/// the ones after it go.
#[test]
fn a_process_that_missed_entries_trimmed_for_their_bytes_tells_its_subscribers() {
    a_process_that_missed_trimmed_entries_tells_its_subscribers(
        ["--history-bytes", "64KiB"],
        |other| {
            let piece = "w".repeat(16 * 1024);
            for i in 0..20 {
                assert_eq!(other.publish("t", &format!("{i} {piece}")).0, 200);
            }
        },
    );
}

/// A process cut off before it read anything, while others publish less
/// than the stream keeps: nothing was trimmed, so its stream stays open
/// and catches up (no false alarm).
#[test]
fn a_process_cut_off_before_any_entry_catches_up_without_alarm() {
    let redis = Redis::start();
    let proxy = Proxy::start(redis.port);
    let cut_off = Hub::start(&["--redis", &format!("redis://127.0.0.1:{}", proxy.port)]);
    let other = Hub::start(&["--redis", &redis.url()]);
    cut_off.wait_health(200);
    other.wait_health(200);
    let sub = cut_off.subscribe("topic=t", None);
    proxy.cut();
    cut_off.wait_health(503);
    for i in 0..3 {
        assert_eq!(other.publish("t", &format!("meanwhile {i}")).0, 200);
    }
    proxy.restore();
    cut_off.wait_health(200);
    assert_eq!(sub.data(3), ["meanwhile 0", "meanwhile 1", "meanwhile 2"]);
}

/// A reply of the Redis protocol (RESP2), as far as these tests need it.
#[derive(Debug)]
enum Reply {
    Simple(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).parse().expect("a number"),
            other => panic!("not a number: {other:?}"),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Reply::Bulk(Some(b)) => b,
            Reply::Simple(s) => s.as_bytes(),
            other => panic!("not a string: {other:?}"),
        }
    }

    fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }
}

/// Sends one command to the Redis on `port` and reads its reply.
fn redis_command(port: u16, args: &[&str]) -> Reply {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut command = format!("*{}\r\n", args.len());
    for arg in args {
        command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    socket.write_all(command.as_bytes()).unwrap();
    read_reply(&mut std::io::BufReader::new(socket))
}

fn read_reply(reader: &mut impl std::io::BufRead) -> Reply {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a reply from Redis");
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" => Reply::Simple(rest.to_owned()),
        "-" => panic!("Redis answered an error: {rest}"),
        ":" => Reply::Int(rest.parse().unwrap()),
        "$" => match usize::try_from(rest.parse::<i64>().unwrap()) {
            Err(_) => Reply::Bulk(None),
            Ok(len) => {
                let mut buf = vec![0u8; len + 2];
                reader.read_exact(&mut buf).unwrap();
                buf.truncate(len);
                Reply::Bulk(Some(buf))
            }
        },
        "*" => {
            let n: usize = rest.parse().unwrap();
            Reply::Array((0..n).map(|_| read_reply(reader)).collect())
        }
        _ => panic!("unexpected reply line {line:?}"),
    }
}

/// `--history-bytes` bounds the Redis stream in bytes: it keeps the newest
/// entries that fit, its byte counter matches what it holds, and a client
/// resuming from a trimmed id gets `sse-lost`, on the process it published
/// on and on one that starts later alike.
#[test]
fn the_redis_stream_is_bounded_in_bytes() {
    let redis = Redis::start();
    let url = redis.url();
    let cap = ["--history-bytes", "256KiB"];
    let a = Hub::start(&["--redis", &url, cap[0], cap[1]]);
    a.wait_health(200);
    let piece = "z".repeat(32 * 1024);
    let ids: Vec<String> = (0..40)
        .map(|i| {
            let (status, id) = a.publish("t", &format!("{i:02}{piece}"));
            assert_eq!(status, 200, "{id}");
            id
        })
        .collect();

    // Each entry counts its fields' names and values and 64 bytes more
    // (the `prev` field, which links it to the one before, is not counted).
    let total = redis_command(redis.port, &["GET", "sse-hub:updates:bytes"]).int();
    assert!(total <= 256 * 1024, "{total} bytes counted");
    let entries = redis_command(redis.port, &["XRANGE", "sse-hub:updates", "-", "+"]);
    let mut held = 0;
    let mut kept = Vec::new();
    for entry in entries.items() {
        let [id, fields] = entry.items() else {
            panic!("an entry of two parts");
        };
        kept.push(String::from_utf8_lossy(id.bytes()).into_owned());
        let fields = fields.items();
        held += 64;
        for pair in fields.chunks(2) {
            if pair[0].bytes() != b"prev" {
                held += pair[0].bytes().len() + pair[1].bytes().len();
            }
        }
    }
    assert_eq!(held as i64, total, "the counter and the stream disagree");
    // 256 KiB hold seven entries of a little over 32 KiB: the newest.
    assert_eq!(kept, ids[ids.len() - 7..]);
    assert_eq!(
        redis_command(redis.port, &["XLEN", "sse-hub:updates"]).int(),
        7
    );
    assert_eq!(
        redis_command(redis.port, &["LLEN", "sse-hub:updates:sizes"]).int(),
        7
    );

    let b = Hub::start(&["--redis", &url, cap[0], cap[1]]);
    b.wait_health(200);
    for hub in [&a, &b] {
        let back = hub.subscribe("topic=t", Some(&ids[0]));
        let lost = back.next();
        assert_eq!(
            (lost.event_type(), lost.data()),
            ("sse-lost", ids[0].as_str())
        );
        let replayed: Vec<String> = (0..7).map(|_| back.next().id().to_owned()).collect();
        assert_eq!(replayed, kept);
        // A retained id resumes without a loss.
        let resumed = hub.subscribe("topic=t", Some(&kept[4]));
        assert_eq!(resumed.next().id(), kept[5]);
    }
}

/// A process cut off while the others publish just enough that the last
/// entry it read is trimmed, but none after it: nothing it needs is lost,
/// so its stream stays open and catches up (no false alarm).
#[test]
fn a_process_whose_last_entry_alone_was_trimmed_catches_up_without_alarm() {
    let redis = Redis::start();
    let proxy = Proxy::start(redis.port);
    let history = ["--history", "3"];
    let via_proxy = format!("redis://127.0.0.1:{}", proxy.port);
    let cut_off = Hub::start(&["--redis", &via_proxy, history[0], history[1]]);
    let other = Hub::start(&["--redis", &redis.url(), history[0], history[1]]);
    cut_off.wait_health(200);
    other.wait_health(200);
    let sub = cut_off.subscribe("topic=t", None);
    thread::sleep(Duration::from_millis(100));
    for i in 0..3 {
        assert_eq!(other.publish("t", &format!("read {i}")).0, 200);
    }
    assert_eq!(sub.data(3), ["read 0", "read 1", "read 2"]);

    proxy.cut();
    cut_off.wait_health(503);
    // The stream keeps three entries: "read 2" goes, "missed 0" stays.
    for i in 0..3 {
        assert_eq!(other.publish("t", &format!("missed {i}")).0, 200);
    }
    proxy.restore();
    cut_off.wait_health(200);
    assert_eq!(sub.data(3), ["missed 0", "missed 1", "missed 2"]);
    assert_eq!(other.publish("t", "later").0, 200);
    assert_eq!(sub.next().data(), "later");
}
