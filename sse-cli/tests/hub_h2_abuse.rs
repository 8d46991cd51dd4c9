//! Abuse of HTTP/2 against `sse hub --tls-cert --tls-key`, frame by frame
//! over a real TLS connection: too many concurrent streams, rapid reset,
//! SETTINGS and PING floods, a CONTINUATION flood. For each: the hub
//! bounds it (refuses, or closes the connection), its memory stays
//! bounded, and it keeps serving everyone else.

mod common;

use std::time::{Duration, Instant};

use common::WAIT;
use common::h2raw::{
    CONTINUATION, END_HEADERS, END_STREAM, GOAWAY, H2, HEADERS, PING, RST_STREAM, SETTINGS, frame,
    rss_kib, setting,
};
use common::hub::Hub;
use common::pki::Pki;

/// The most the hub's resident memory may grow under one attack.
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

fn https_hub(pki: &Pki) -> Hub {
    let cert = pki.cert_file.to_str().unwrap();
    let key = pki.key_file.to_str().unwrap();
    Hub::start(&["--tls-cert", cert, "--tls-key", key, "--retry", "300"])
}

/// `GET path` over HTTP/2 with curl, answered within 2 s: the hub still
/// serves others.
fn curl(pki: &Pki, hub: &Hub, path: &str) -> String {
    let url = format!("https://localhost:{}{path}", hub.addr.port());
    let ca = pki.ca_file.to_str().unwrap();
    common::run::curl(&["--http2", "--max-time", "2", "--cacert", ca, &url])
}

/// Waits until `/metrics` shows `line` (within [`WAIT`]).
fn wait_for_metric(pki: &Pki, hub: &Hub, line: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let metrics = curl(pki, hub, "/metrics");
        if metrics.contains(line) {
            return;
        }
        assert!(Instant::now() < deadline, "no {line:?} in {metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Connects, reads the hub's SETTINGS and acknowledges them.
fn handshake(hub: &Hub, pki: &Pki) -> (H2, Vec<u8>) {
    let mut h2 = H2::connect(hub.addr.port(), &pki.ca_der);
    let frames = h2.read_until(WAIT, |f| f.kind == SETTINGS && f.flags & 1 == 0);
    let settings = frames
        .iter()
        .find(|f| f.kind == SETTINGS && f.flags & 1 == 0)
        .expect("the hub's SETTINGS")
        .payload
        .clone();
    h2.send(SETTINGS, 1, 0, &[]).unwrap();
    (h2, settings)
}

#[test]
fn streams_past_the_advertised_limit_are_refused() {
    let pki = Pki::new();
    let hub = https_hub(&pki);
    let (mut h2, settings) = handshake(&hub, &pki);
    // SETTINGS_MAX_CONCURRENT_STREAMS.
    assert_eq!(setting(&settings, 0x3), Some(128));
    let block = h2.get_headers("/.well-known/mercure?topic=t");
    let mut burst = Vec::new();
    for i in 0..140u32 {
        burst.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, &block));
    }
    h2.send_raw(&burst).unwrap();
    let mut answered = 0;
    let mut refused = 0;
    h2.read_until(WAIT, |f| {
        match (f.kind, f.payload.get(..4)) {
            (HEADERS, _) => answered += 1,
            // REFUSED_STREAM.
            (RST_STREAM, Some([0, 0, 0, 7])) => refused += 1,
            _ => {}
        }
        answered + refused == 140
    });
    assert_eq!((answered, refused), (128, 12));
    wait_for_metric(&pki, &hub, "\nsse_hub_open_streams 128\n");
    assert_eq!(curl(&pki, &hub, "/healthz"), "ok");
}

#[test]
fn a_rapid_reset_flood_leaves_nothing_behind() {
    let pki = Pki::new();
    let hub = https_hub(&pki);
    let before = rss_kib(hub.child.id());
    let (mut h2, _) = handshake(&hub, &pki);
    let block = h2.get_headers("/.well-known/mercure?topic=t");
    let mut sent = 0u32;
    'flood: for batch in 0..50u32 {
        let mut bytes = Vec::new();
        for i in 0..200u32 {
            let id = 1 + 2 * (batch * 200 + i);
            bytes.extend(frame(HEADERS, END_STREAM | END_HEADERS, id, &block));
            // CANCEL.
            bytes.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
        }
        if h2.send_raw(&bytes).is_err() {
            // The hub closed the connection (GOAWAY ENHANCE_YOUR_CALM).
            break 'flood;
        }
        sent += 200;
    }
    let frames = h2.read_until(Duration::from_secs(2), |f| f.kind == GOAWAY);
    let goaway = frames.iter().any(|f| f.kind == GOAWAY);
    // A hub that closes a connection with unread bytes in it resets it,
    // and the reset may overtake its GOAWAY: a closed connection is cut off
    // as well. A connection still open after the whole flood is not.
    let cut_off = goaway || h2.is_closed() || sent < 10_000;
    assert!(cut_off, "neither cut off nor bounded");
    // Nothing of the flood stays: no stream, no subscriber.
    wait_for_metric(&pki, &hub, "\nsse_hub_open_streams 0\n");
    let grown = rss_kib(hub.child.id()).saturating_sub(before);
    assert!(grown < MEMORY_BOUND_KIB, "the hub grew by {grown} KiB");
    assert_eq!(curl(&pki, &hub, "/healthz"), "ok");
}

#[test]
fn settings_and_ping_floods_are_bounded() {
    let pki = Pki::new();
    let hub = https_hub(&pki);
    let before = rss_kib(hub.child.id());
    let (mut h2, _) = handshake(&hub, &pki);
    // Never reading the answers: what the hub owes this client must not
    // pile up.
    let mut flood = Vec::new();
    for i in 0..2_000u64 {
        flood.extend(frame(PING, 0, 0, &i.to_be_bytes()));
        // SETTINGS_INITIAL_WINDOW_SIZE, changed each time.
        let mut payload = vec![0, 4];
        payload.extend_from_slice(&(65_535 + i as u32).to_be_bytes());
        flood.extend(frame(SETTINGS, 0, 0, &payload));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rounds = 0;
    while Instant::now() < deadline && rounds < 100 {
        if h2.send_raw(&flood).is_err() {
            break; // The hub stopped reading or closed: bounded either way.
        }
        rounds += 1;
    }
    let grown = rss_kib(hub.child.id()).saturating_sub(before);
    assert!(
        grown < MEMORY_BOUND_KIB,
        "the hub grew by {grown} KiB after {rounds} rounds"
    );
    assert_eq!(curl(&pki, &hub, "/healthz"), "ok");
}

#[test]
fn a_continuation_flood_is_cut_off() {
    let pki = Pki::new();
    let hub = https_hub(&pki);
    let before = rss_kib(hub.child.id());
    let (mut h2, _) = handshake(&hub, &pki);
    let block = h2.get_headers("/.well-known/mercure?topic=t");
    h2.send(HEADERS, END_STREAM, 1, &block).unwrap();
    // Header fields that never end: 16 KiB literals, 32 MiB in all.
    let mut piece = Vec::new();
    piece.push(0);
    piece.extend_from_slice(&[0x01, b'x']);
    // A 16 000-byte value: HPACK integer 127 + continuation bytes.
    let len = 16_000usize;
    piece.push(0x7f);
    let mut rest = len - 127;
    while rest >= 128 {
        piece.push((rest % 128 + 128) as u8);
        rest /= 128;
    }
    piece.push(rest as u8);
    piece.extend(std::iter::repeat_n(b'a', len));
    let continuation = frame(CONTINUATION, 0, 1, &piece);
    let mut sent = 0usize;
    for _ in 0..2_000 {
        if h2.send_raw(&continuation).is_err() {
            break;
        }
        sent += continuation.len();
    }
    let frames = h2.read_until(Duration::from_secs(5), |f| f.kind == GOAWAY);
    assert!(
        frames.iter().any(|f| f.kind == GOAWAY) || sent < 32 << 20,
        "the hub took {sent} bytes of one header block without closing"
    );
    let grown = rss_kib(hub.child.id()).saturating_sub(before);
    assert!(grown < MEMORY_BOUND_KIB, "the hub grew by {grown} KiB");
    assert_eq!(curl(&pki, &hub, "/healthz"), "ok");
}
