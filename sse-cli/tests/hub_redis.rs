//! `sse hub --redis`: several hub processes sharing one real `redis-server`
//! (started here on a free port, killed and restarted to test outages).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::WAIT;
use common::http::free_port;
use common::hub::Hub;
use common::stream::{LOST, Stream};

/// A real redis-server on a free port, without persistence.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts a server on a free port.
    fn start() -> Redis {
        let mut redis = Redis {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    /// The URL to give `--redis`.
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port; returns once it answers
    /// `PING`.
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

    /// Stops the server (an outage).
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

/// Starts `sse hub ARGS` (with `--redis`); it must say that Redis is its
/// backend.
fn start_hub(args: &[&str]) -> Hub {
    let hub = Hub::start(args);
    assert!(
        hub.first_line.contains("backend: redis"),
        "{}",
        hub.first_line
    );
    hub
}

/// Waits until `/healthz` answers `want`.
fn wait_health(hub: &Hub, want: u16) {
    let deadline = Instant::now() + WAIT;
    while hub.get("/healthz", &[]).status != want {
        assert!(Instant::now() < deadline, "/healthz never became {want}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Publishes `data` on topic `t`; the response.
fn publish(hub: &Hub, data: &str) -> (u16, String) {
    let resp = hub.publish(&[("topic", "t"), ("data", data)], &[]);
    (resp.status, resp.text())
}

/// Subscribes to `query`, resuming after `last_event_id` if given.
fn subscribe(hub: &Hub, query: &str, last_event_id: Option<&str>) -> Stream {
    match last_event_id {
        Some(id) => hub.subscribe(query, &[("Last-Event-ID", id)]),
        None => hub.subscribe(query, &[]),
    }
}

#[test]
fn hubs_sharing_redis_act_as_one() {
    let redis = Redis::start();
    let url = redis.url();
    let a = start_hub(&["--redis", &url, "--history", "5"]);
    let b = start_hub(&["--redis", &url, "--history", "5"]);
    wait_health(&a, 200);
    wait_health(&b, 200);
    let mut on_b = subscribe(&b, "topic=t", None);
    let mut on_a = subscribe(&a, "topic=*", None);
    thread::sleep(Duration::from_millis(200));

    // Publish on A, receive on both, under the id A answered with.
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, id) = publish(&a, &format!("a{i}"));
        assert_eq!(status, 200);
        ids.push(id);
    }
    let (status, id) = publish(&b, "b0");
    assert_eq!(status, 200);
    ids.push(id);
    for sub in [&mut on_a, &mut on_b] {
        let got: Vec<(String, String)> = (0..4)
            .map(|_| {
                let e = sub.event();
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
    let resp = b.publish(&[("topic", "t"), ("data", "mine"), ("id", "custom-1")], &[]);
    let (status, id) = (resp.status, resp.text());
    assert_eq!((status, id.as_str()), (200, "custom-1"));
    assert_eq!(on_a.event().id(), "custom-1");

    // Resume on B with an id A gave out, and the reverse.
    let mut resumed = subscribe(&b, "topic=t", Some(&ids[1]));
    assert_eq!(resumed.datas(3), ["a2", "b0", "mine"]);
    let mut resumed = subscribe(&a, "topic=t", Some("custom-1"));
    resumed.assert_quiet(Duration::from_millis(300));
    // History is trimmed to --history, also for a process that starts late.
    for i in 0..10 {
        assert_eq!(publish(&a, &format!("n{i}")).0, 200);
    }
    let c = start_hub(&["--redis", &url, "--history", "5"]);
    wait_health(&c, 200);
    let mut all = subscribe(&c, "topic=t&lastEventID=earliest", None);
    assert_eq!(all.datas(5), ["n5", "n6", "n7", "n8", "n9"]);
    all.assert_quiet(Duration::from_millis(300));
    let mut evicted = subscribe(&c, "topic=t", Some(&ids[0]));
    let first = evicted.event();
    assert_eq!((first.event_type(), first.data()), (LOST, ids[0].as_str()));
    assert_eq!(evicted.datas(5), ["n5", "n6", "n7", "n8", "n9"]);
}

#[test]
fn a_redis_outage_keeps_subscribers_and_refuses_publishes() {
    let mut redis = Redis::start();
    let url = redis.url();
    let hub = start_hub(&["--redis", &url, "--heartbeat", "200ms"]);
    wait_health(&hub, 200);
    let mut sub = subscribe(&hub, "topic=t", None);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(publish(&hub, "before").0, 200);
    assert_eq!(sub.event().data(), "before");

    redis.kill();
    wait_health(&hub, 503);
    let (status, body) = publish(&hub, "during");
    assert_eq!(status, 503, "{body}");
    // The stream stays open: keep-alives keep coming.
    sub.collect_for(Duration::from_millis(1));
    let during = sub.collect_for(Duration::from_millis(700));
    assert!(
        !during.is_empty(),
        "the stream went quiet during the outage"
    );

    redis.restart();
    wait_health(&hub, 200);
    let (status, _) = publish(&hub, "after");
    assert_eq!(status, 200);
    assert_eq!(sub.event().data(), "after");
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
    /// A proxy on a free port to the Redis on port `target`.
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

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Takes new connections again.
    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// Two hub processes sharing one Redis, both started with the same extra
/// arguments and healthy: `cut_off` reaches Redis through a proxy that
/// can be cut, `other` directly.
struct Split {
    cut_off: Hub,
    other: Hub,
    proxy: Proxy,
    /// Kept for its `Drop`, which stops the server.
    _redis: Redis,
}

impl Split {
    /// Starts Redis, the proxy and both hubs with `args` besides `--redis`.
    fn start(args: &[&str]) -> Split {
        let redis = Redis::start();
        let proxy = Proxy::start(redis.port);
        let via_proxy = format!("redis://127.0.0.1:{}", proxy.port);
        let cut_off = start_hub(&[&["--redis", via_proxy.as_str()], args].concat());
        let other = start_hub(&[&["--redis", redis.url().as_str()], args].concat());
        wait_health(&cut_off, 200);
        wait_health(&other, 200);
        Split {
            cut_off,
            other,
            proxy,
            _redis: redis,
        }
    }

    /// Cuts `cut_off` off from Redis, until its `/healthz` says so.
    fn cut(&self) {
        self.proxy.cut();
        wait_health(&self.cut_off, 503);
    }

    /// Gives `cut_off` its Redis back, until its `/healthz` says so.
    fn restore(&self) {
        self.proxy.restore();
        wait_health(&self.cut_off, 200);
    }
}

/// Publishes `"{label} 0"`, `"{label} 1"`, ... (`n` updates) on topic `t`.
fn publish_numbered(hub: &Hub, label: &str, n: usize) {
    for i in 0..n {
        assert_eq!(publish(hub, &format!("{label} {i}")).0, 200);
    }
}

#[test]
fn a_process_cut_off_from_redis_catches_up_on_what_others_published() {
    let split = Split::start(&[]);
    let mut sub = subscribe(&split.cut_off, "topic=t", None);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(publish(&split.other, "first").0, 200);
    assert_eq!(sub.event().data(), "first");

    split.cut();
    assert_eq!(publish(&split.cut_off, "refused").0, 503);
    publish_numbered(&split.other, "meanwhile", 3);
    split.restore();
    assert_eq!(sub.datas(3), ["meanwhile 0", "meanwhile 1", "meanwhile 2"]);
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
    let split = Split::start(&bound);
    let mut sub = subscribe(&split.cut_off, "topic=t", None);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(publish(&split.other, "first").0, 200);
    let first = sub.event();
    assert_eq!(first.data(), "first");

    split.cut();
    publish_meanwhile(&split.other);
    split.restore();
    // The stream ends.
    assert!(sub.wait_end(WAIT), "the stream did not end");
    let mut back = subscribe(&split.cut_off, "topic=t", Some(first.id()));
    let lost = back.event();
    assert_eq!((lost.event_type(), lost.data()), (LOST, first.id()));
    assert_eq!(publish(&split.other, "later").0, 200);
    loop {
        let event = back.event();
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
        publish_numbered(other, "meanwhile", 250);
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
                assert_eq!(publish(other, &format!("{i} {piece}")).0, 200);
            }
        },
    );
}

/// A process cut off before it read anything, while others publish less
/// than the stream keeps: nothing was trimmed, so its stream stays open
/// and catches up (no false alarm).
#[test]
fn a_process_cut_off_before_any_entry_catches_up_without_alarm() {
    let split = Split::start(&[]);
    let mut sub = subscribe(&split.cut_off, "topic=t", None);
    split.cut();
    publish_numbered(&split.other, "meanwhile", 3);
    split.restore();
    assert_eq!(sub.datas(3), ["meanwhile 0", "meanwhile 1", "meanwhile 2"]);
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
    /// The reply as a number.
    fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).parse().expect("a number"),
            other => panic!("not a number: {other:?}"),
        }
    }

    /// The reply as a string.
    fn bytes(&self) -> &[u8] {
        match self {
            Reply::Bulk(Some(b)) => b,
            Reply::Simple(s) => s.as_bytes(),
            other => panic!("not a string: {other:?}"),
        }
    }

    /// The items of an array reply.
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

/// Reads one reply (an array with its items).
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
    let a = start_hub(&["--redis", &url, cap[0], cap[1]]);
    wait_health(&a, 200);
    let piece = "z".repeat(32 * 1024);
    let ids: Vec<String> = (0..40)
        .map(|i| {
            let (status, id) = publish(&a, &format!("{i:02}{piece}"));
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

    let b = start_hub(&["--redis", &url, cap[0], cap[1]]);
    wait_health(&b, 200);
    for hub in [&a, &b] {
        let mut back = subscribe(hub, "topic=t", Some(&ids[0]));
        let lost = back.event();
        assert_eq!((lost.event_type(), lost.data()), (LOST, ids[0].as_str()));
        let replayed: Vec<String> = (0..7).map(|_| back.event().id().to_owned()).collect();
        assert_eq!(replayed, kept);
        // A retained id resumes without a loss.
        let mut resumed = subscribe(hub, "topic=t", Some(&kept[4]));
        assert_eq!(resumed.event().id(), kept[5]);
    }
}

/// A process cut off while the others publish just enough that the last
/// entry it read is trimmed, but none after it: nothing it needs is lost,
/// so its stream stays open and catches up (no false alarm).
#[test]
fn a_process_whose_last_entry_alone_was_trimmed_catches_up_without_alarm() {
    let split = Split::start(&["--history", "3"]);
    let mut sub = subscribe(&split.cut_off, "topic=t", None);
    thread::sleep(Duration::from_millis(100));
    publish_numbered(&split.other, "read", 3);
    assert_eq!(sub.datas(3), ["read 0", "read 1", "read 2"]);

    split.cut();
    // The stream keeps three entries: "read 2" goes, "missed 0" stays.
    publish_numbered(&split.other, "missed", 3);
    split.restore();
    assert_eq!(sub.datas(3), ["missed 0", "missed 1", "missed 2"]);
    assert_eq!(publish(&split.other, "later").0, 200);
    assert_eq!(sub.event().data(), "later");
}
