//! Hostile clients against a real `sse hub`, end to end on loopback:
//! subscribers with many selectors and an unknown cursor must not slow
//! publishes or `/healthz`, and subscribers that ask for the whole history
//! and never read must cost bounded memory.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::HubProcess;

const HUB_PATH: &str = "/.well-known/mercure";
const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";
/// How long any one read from the hub may take before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The tests of this file run one at a time: each loads the machine, and
/// one measures times, the other memory.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `s` percent-encoded for a query or a form (unreserved bytes kept).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A keep-alive connection for plain requests and their
/// `Content-Length`-framed responses.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the hub");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends a request and reads its response: the status and the body.
    fn request(&mut self, method: &str, target: &str, headers: &str, body: &[u8]) -> (u16, String) {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request).expect("send a request");
        let end = self.fill_until(|buf| find(buf, b"\r\n\r\n"));
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
        self.fill_until(|buf| (buf.len() >= length).then_some(length));
        let body = String::from_utf8_lossy(&self.buf[..length]).into_owned();
        self.buf.drain(..length);
        (status, body)
    }

    /// Reads until `done` says where in the buffer the wanted part ends.
    fn fill_until(&mut self, done: impl Fn(&[u8]) -> Option<usize>) -> usize {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut chunk = [0u8; 16 << 10];
        loop {
            if let Some(end) = done(&self.buf) {
                return end;
            }
            assert!(Instant::now() < deadline, "no response in time");
            let n = self.stream.read(&mut chunk).expect("read a response");
            assert!(n > 0, "the hub closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One publish on `client`, timed; it must be accepted.
fn timed_publish(client: &mut Client, body: &str) -> Duration {
    let start = Instant::now();
    let (status, text) = client.request("POST", HUB_PATH, FORM, body.as_bytes());
    let took = start.elapsed();
    assert_eq!(status, 200, "publish refused: {text}");
    took
}

/// One `/healthz` on `client`, timed; it must answer 200.
fn timed_healthz(client: &mut Client) -> Duration {
    let start = Instant::now();
    let (status, text) = client.request("GET", "/healthz", "", b"");
    let took = start.elapsed();
    assert_eq!(status, 200, "healthz: {text}");
    took
}

/// A counter of `/metrics`.
fn metric(client: &mut Client, name: &str) -> u64 {
    let (status, text) = client.request("GET", "/metrics", "", b"");
    assert_eq!(status, 200);
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// The 50th and 99th percentiles.
fn percentiles(times: &[Duration]) -> (Duration, Duration) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |p: usize| sorted[(sorted.len() * p / 100).min(sorted.len() - 1)];
    (at(50), at(99))
}

/// How many publishes and `/healthz` requests each round makes.
const ROUND: usize = 100;

/// `ROUND` publishes and `ROUND` `/healthz`, interleaved and a little
/// apart (so that a round lasts a few seconds), each timed.
fn round(publisher: &mut Client, health: &mut Client, label: &str) -> Vec<Duration> {
    let mut publishes = Vec::with_capacity(ROUND);
    let mut healthz = Vec::with_capacity(ROUND);
    for n in 0..ROUND {
        let body = format!("topic={}&data={label}-{n}", enc("https://example.com/live"));
        publishes.push(timed_publish(publisher, &body));
        healthz.push(timed_healthz(health));
        thread::sleep(Duration::from_millis(10));
    }
    let (p50, p99) = percentiles(&publishes);
    let (h50, h99) = percentiles(&healthz);
    eprintln!(
        "{label}: publish p50 {p50:?} p99 {p99:?} max {:?}; healthz p50 {h50:?} p99 {h99:?} max {:?}",
        publishes.iter().max().unwrap(),
        healthz.iter().max().unwrap()
    );
    publishes.into_iter().chain(healthz).collect()
}

/// Subscribes with 1000 selectors that match nothing and an unknown
/// cursor, which makes the hub read its whole history for them, and
/// hangs up at once; again and again until `stop` (bounded in count and
/// time).
fn attacker(addr: SocketAddr, stop: Arc<AtomicBool>, sent: Arc<AtomicUsize>) {
    let selectors: Vec<String> = (0..1000).map(|i| format!("topic=c{i:03}")).collect();
    let request = format!(
        "GET {HUB_PATH}?{} HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: unknown-id\r\n\r\n",
        selectors.join("&")
    );
    // Bounded in time and in requests sent. Paced a little: each request
    // leaves a socket in TIME_WAIT on this side, and a flood of them would
    // use up the ephemeral ports (connects then fail, and the attack stops
    // overlapping the measures).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut mine = 0;
    while mine < 5000 && !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        // Bounded: with the hub's accept queue full, a connect waits.
        let Ok(mut socket) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if socket.write_all(request.as_bytes()).is_ok() {
            mine += 1;
            sent.fetch_add(1, Ordering::Relaxed);
        }
        drop(socket);
        thread::sleep(Duration::from_millis(1));
    }
}

/// Subscribers whose selectors and cursor make the hub scan a large
/// history of many-topic updates cannot hold up publishes or `/healthz`
/// (the hub once filtered the replay under the broker's lock, for time
/// proportional to history × selectors × topics, and made them wait for
/// over 10 s).
#[test]
fn hostile_subscribes_do_not_slow_publishes_or_healthz() {
    const UPDATES: usize = 500;
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let hub = HubProcess::start(&["--history", "500"], &[]);
    let addr = hub.addr;

    // A history of updates with 1000 topics each.
    let topics: Vec<String> = (0..1000)
        .map(|i| format!("topic={}", enc(&format!("https://example.com/t/{i:04}"))))
        .collect();
    let topics = topics.join("&");
    let mut publisher = Client::connect(addr);
    let start = Instant::now();
    for n in 0..UPDATES {
        timed_publish(&mut publisher, &format!("{topics}&data=update-{n}"));
    }
    let filling = start.elapsed();
    eprintln!("{UPDATES} publishes of 1000 topics took {filling:?}");
    assert!(
        filling < Duration::from_secs(120),
        "{UPDATES} publishes of 1000 topics took {filling:?}"
    );

    // Keep-alive connections, opened (and used once) before the attack.
    let mut health = Client::connect(addr);
    let mut observer = Client::connect(addr);
    let quiet = round(&mut publisher, &mut health, "quiet");
    assert!(quiet.iter().all(|t| *t < Duration::from_secs(2)));

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, sent) = (stop.clone(), sent.clone());
            thread::spawn(move || attacker(addr, stop, sent))
        })
        .collect();
    // The attack is under way before the measures start.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent.load(Ordering::Relaxed) < 20 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let misses_before = metric(&mut observer, "sse_hub_replay_misses_total");
    let sent_before = sent.load(Ordering::Relaxed);
    let attacked = round(&mut publisher, &mut health, "attacked");
    let sent_during = sent.load(Ordering::Relaxed) - sent_before;
    let served_during = metric(&mut observer, "sse_hub_replay_misses_total") - misses_before;
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().expect("an attacker thread");
    }
    eprintln!(
        "during the attacked round: {sent_during} hostile subscribes sent, {served_during} \
         subscribed by the hub"
    );
    assert!(
        sent_during >= 50 && served_during >= 50,
        "the attack did not overlap the measures: {sent_during} hostile subscribes sent, \
         {served_during} subscribed by the hub"
    );
    let slowest = attacked.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_secs(2),
        "a publish or /healthz took {slowest:?} under the attack"
    );
    // Still answering once it is over.
    timed_healthz(&mut health);
}

/// The hub's resident memory in bytes (`VmRSS`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Waits until `/metrics` shows `name` at `value` at least.
fn wait_for_metric(client: &mut Client, name: &str, value: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = metric(client, name);
        if now >= value {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stays at {now}, not {value}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Subscribers that ask for every retained event and never read hold a
/// bounded part of their replay: the broker hands a replay out in 32 KiB
/// batches as the socket drains, so what such a subscriber costs does not
/// grow with the history. (Pinning each replay's frames would cost 20
/// subscribers about 20 × 10 MB here.)
#[test]
fn subscribers_that_never_read_cost_bounded_memory() {
    const EVENTS: usize = 100;
    const SUBSCRIBERS: usize = 20;
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let hub = HubProcess::start(
        &[
            "--history",
            "100",
            "--history-bytes",
            "64MiB",
            // Nothing here depends on the write timeout closing them.
            "--write-timeout",
            "10m",
        ],
        &[],
    );
    let addr = hub.addr;
    let pid = hub.child.id();
    let data = "x".repeat(100 << 10);
    let mut publisher = Client::connect(addr);
    let mut observer = Client::connect(addr);
    // Each generation of the history has a topic of its own, so that only
    // the replay (never live events) goes to the subscriber of the
    // generation before.
    let publish_generation = |publisher: &mut Client, generation: usize| {
        for _ in 0..EVENTS {
            timed_publish(publisher, &format!("topic=gen-{generation}&data={data}"));
        }
    };
    publish_generation(&mut publisher, 0);
    let before = rss(pid);

    let mut idle = Vec::with_capacity(SUBSCRIBERS);
    for generation in 1..=SUBSCRIBERS {
        let mut socket = TcpStream::connect(addr).expect("connect a subscriber");
        socket
            .write_all(
                format!(
                    "GET {HUB_PATH}?topic=gen-{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                     Last-Event-ID: earliest\r\n\r\n",
                    generation - 1
                )
                .as_bytes(),
            )
            .expect("send a subscribe");
        // It never reads; the hub has subscribed it before the history
        // moves on.
        idle.push(socket);
        wait_for_metric(
            &mut observer,
            "sse_hub_replay_requests_total",
            generation as u64,
        );
        publish_generation(&mut publisher, generation);
    }
    let after = rss(pid);
    let growth = after.saturating_sub(before);
    // Replayed events the hub could hand to the idle subscribers' sockets
    // (the kernel's buffers take some): the rest of their replays waits.
    let delivered = metric(&mut observer, "sse_hub_events_delivered_total");
    eprintln!(
        "hub RSS: {} MiB before the subscribers, {} MiB after ({} MiB more); {delivered} of \
         {} replayed events handed out",
        before >> 20,
        after >> 20,
        growth >> 20,
        SUBSCRIBERS * EVENTS
    );
    // They are all still connected: the memory bound does not come from
    // closing them.
    assert_eq!(
        metric(&mut observer, "sse_hub_open_streams"),
        SUBSCRIBERS as u64
    );
    assert!(
        growth < 60 << 20,
        "{SUBSCRIBERS} subscribers that never read grew the hub by {} MiB",
        growth >> 20
    );
    assert!(
        delivered < (SUBSCRIBERS * EVENTS / 2) as u64,
        "the idle subscribers' sockets took most of their replays ({delivered} events): \
         this test would not tell whether the hub holds the rest"
    );

    // The hub still serves a subscriber that reads, and /healthz.
    let mut reader = TcpStream::connect(addr).expect("connect a reader");
    reader.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    reader
        .write_all(
            format!("GET {HUB_PATH}?topic=check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
        )
        .unwrap();
    wait_for_metric(
        &mut observer,
        "sse_hub_open_streams",
        SUBSCRIBERS as u64 + 1,
    );
    timed_publish(&mut publisher, "topic=check&data=still-live");
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + READ_TIMEOUT;
    while find(&received, b"data: still-live").is_none() {
        assert!(Instant::now() < deadline, "no live event in time");
        let n = reader.read(&mut chunk).expect("read the stream");
        assert!(n > 0, "the stream ended");
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(received.starts_with(b"HTTP/1.1 200"));
    timed_healthz(&mut observer);
    for socket in idle {
        let _ = socket.shutdown(Shutdown::Both);
    }
}
