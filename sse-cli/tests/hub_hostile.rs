//! Hostile clients against a real `sse hub`, end to end on loopback:
//! subscribers with many selectors and an unknown cursor must not slow
//! publishes or `/healthz`, and subscribers that ask for the whole history
//! and never read must cost bounded memory.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::http::{Conn, HUB_PATH, form, keep_alive_request};
use common::hub::Hub;

/// The tests of this file run one at a time: each loads the machine, and
/// one measures times, the other memory.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One publish of this (already encoded) form `body` on `conn`, timed; it
/// must be accepted.
fn timed_publish(conn: &mut Conn, body: &str) -> Duration {
    let start = Instant::now();
    let resp = conn.post(body.as_bytes());
    let took = start.elapsed();
    assert_eq!(resp.status, 200, "publish refused: {}", resp.text());
    took
}

/// One `/healthz` on `conn`, timed; it must answer 200.
fn timed_healthz(conn: &mut Conn) -> Duration {
    let start = Instant::now();
    let resp = conn.request("GET", "/healthz", &[], b"");
    let took = start.elapsed();
    assert_eq!(resp.status, 200, "healthz: {}", resp.text());
    took
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
fn round(publisher: &mut Conn, health: &mut Conn, label: &str) -> Vec<Duration> {
    let mut publishes = Vec::with_capacity(ROUND);
    let mut healthz = Vec::with_capacity(ROUND);
    for n in 0..ROUND {
        let body = form(&[
            ("topic", "https://example.com/live"),
            ("data", &format!("{label}-{n}")),
        ]);
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
    let request = keep_alive_request(
        "GET",
        &format!("{HUB_PATH}?{}", selectors.join("&")),
        &[("Last-Event-ID", "unknown-id")],
        b"",
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
        if socket.write_all(&request).is_ok() {
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
    let hub = Hub::start(&["--history", "500"]);
    let addr = hub.addr;

    // A history of updates with 1000 topics each.
    let topics: Vec<String> = (0..1000)
        .map(|i| format!("https://example.com/t/{i:04}"))
        .collect();
    let topics: Vec<(&str, &str)> = topics.iter().map(|t| ("topic", t.as_str())).collect();
    let topics = form(&topics);
    let mut publisher = hub.connect();
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
    let mut health = hub.connect();
    let mut observer = hub.connect();
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
    let misses_before = observer.metric("sse_hub_replay_misses_total");
    let sent_before = sent.load(Ordering::Relaxed);
    let attacked = round(&mut publisher, &mut health, "attacked");
    let sent_during = sent.load(Ordering::Relaxed) - sent_before;
    let served_during = observer.metric("sse_hub_replay_misses_total") - misses_before;
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
    let hub = Hub::start(&[
        "--history",
        "100",
        "--history-bytes",
        "64MiB",
        // Nothing here depends on the write timeout closing them.
        "--write-timeout",
        "10m",
    ]);
    let pid = hub.child.id();
    let data = "x".repeat(100 << 10);
    let mut publisher = hub.connect();
    let mut observer = hub.connect();
    // Each generation of the history has a topic of its own, so that only
    // the replay (never live events) goes to the subscriber of the
    // generation before.
    let publish_generation = |publisher: &mut Conn, generation: usize| {
        for _ in 0..EVENTS {
            timed_publish(publisher, &format!("topic=gen-{generation}&data={data}"));
        }
    };
    publish_generation(&mut publisher, 0);
    let before = rss(pid);

    let mut idle = Vec::with_capacity(SUBSCRIBERS);
    for generation in 1..=SUBSCRIBERS {
        let mut socket = hub.connect();
        socket.send(&keep_alive_request(
            "GET",
            &format!("{HUB_PATH}?topic=gen-{}", generation - 1),
            &[("Last-Event-ID", "earliest")],
            b"",
        ));
        // It never reads; the hub has subscribed it before the history
        // moves on.
        idle.push(socket);
        hub.wait_for_metric("sse_hub_replay_requests_total", |n| n >= generation as u64);
        publish_generation(&mut publisher, generation);
    }
    let after = rss(pid);
    let growth = after.saturating_sub(before);
    // Replayed events the hub could hand to the idle subscribers' sockets
    // (the kernel's buffers take some): the rest of their replays waits.
    let delivered = observer.metric("sse_hub_events_delivered_total");
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
    assert_eq!(observer.metric("sse_hub_open_streams"), SUBSCRIBERS as u64);
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
    let mut reader = hub.subscribe("topic=check", &[]);
    hub.wait_for_metric("sse_hub_open_streams", |n| n > SUBSCRIBERS as u64);
    timed_publish(&mut publisher, "topic=check&data=still-live");
    assert_eq!(reader.event().data(), "still-live");
    timed_healthz(&mut observer);
    for conn in idle {
        let _ = conn.socket.shutdown(Shutdown::Both);
    }
}
