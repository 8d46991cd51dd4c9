//! `sse hub --trusted-proxy`: behind a proxy, per-IP limits and logs use
//! the client's address, taken from the PROXY protocol (v1, v2) or from
//! `Forwarded` / `X-Forwarded-For` (the rightmost hop that is not a
//! trusted proxy); from anyone else those are ignored. The tests are the
//! proxy: raw sockets from 127.0.0.1 to a real hub.

mod common;

use std::time::{Duration, Instant};

use common::http::{Conn, Fill};
use common::hub::Hub;

/// A subscription request with these extra fields.
fn subscribe(fields: &str) -> Vec<u8> {
    format!("GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: 127.0.0.1\r\n{fields}\r\n")
        .into_bytes()
}

/// Opens a connection, sends `prefix` then a subscription with `fields`:
/// the status (the connection stays open for a stream).
fn status(hub: &Hub, prefix: &[u8], fields: &str) -> (u16, Conn) {
    let mut conn = Conn::open(hub.addr);
    let mut bytes = prefix.to_vec();
    bytes.extend(subscribe(fields));
    conn.send(&bytes);
    let head = conn.head();
    (head.status(), conn)
}

/// A PROXY protocol v2 header for a TCP4 client `a.b.c.d:port`.
fn v2(client: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&client);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    h
}

#[test]
fn forwarded_clients_are_counted_apart_from_a_trusted_proxy() {
    let hub = Hub::start_env(
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--max-connections-per-ip",
            "1",
        ],
        &[("SSE_HUB_LOG", "debug")],
    );
    let (first, _a) = status(&hub, b"", "X-Forwarded-For: 198.51.100.4\r\n");
    assert_eq!(first, 200);
    // The same client again: its one place is taken.
    let (again, _) = status(&hub, b"", "X-Forwarded-For: 6.6.6.6, 198.51.100.4\r\n");
    assert_eq!(again, 429);
    // Another client through the same proxy.
    let (other, _b) = status(&hub, b"", "Forwarded: for=\"[2001:db8::7]:4711\"\r\n");
    assert_eq!(other, 200);
    // The proxy's own requests (no forwarded hop) count under its address.
    let (own, _c) = status(&hub, b"", "");
    assert_eq!(own, 200);
    // The logs name the clients.
    hub.wait_for_log("198.51.100.4 GET /.well-known/mercure?topic=t");
    hub.wait_for_log("2001:db8::7 GET /.well-known/mercure?topic=t");
}

#[test]
fn forwarded_headers_from_anyone_else_are_ignored() {
    let hub = Hub::start(&[
        "--trusted-proxy",
        "10.0.0.0/8",
        "--max-connections-per-ip",
        "1",
    ]);
    let (first, _a) = status(&hub, b"", "X-Forwarded-For: 198.51.100.4\r\n");
    assert_eq!(first, 200);
    // Another forwarded address does not buy a second place: both are
    // 127.0.0.1's.
    let (second, _) = status(&hub, b"", "X-Forwarded-For: 198.51.100.5\r\n");
    assert_eq!(second, 429);
}

#[test]
fn the_proxy_protocol_from_a_trusted_peer_gives_the_client() {
    let hub = Hub::start(&[
        "--trusted-proxy",
        "127.0.0.0/8",
        "--max-connections-per-ip",
        "1",
    ]);
    let v1 = b"PROXY TCP4 198.51.100.4 127.0.0.1 5555 80\r\n";
    let (first, _a) = status(&hub, v1, "");
    assert_eq!(first, 200);
    // Version 2, the same client: over its limit.
    let (again, _) = status(&hub, &v2([198, 51, 100, 4], 6000), "");
    assert_eq!(again, 429);
    // Another client.
    let (other, _b) = status(&hub, &v2([198, 51, 100, 9], 6001), "");
    assert_eq!(other, 200);
    // Headers do not override the PROXY protocol's address (the client
    // is not a trusted proxy).
    let (forged, _) = status(&hub, v1, "X-Forwarded-For: 203.0.113.1\r\n");
    assert_eq!(forged, 429);
    // A malformed header: closed without an answer.
    let mut bad = Conn::open(hub.addr);
    bad.send(b"PROXY TCP4 nonsense\r\nGET / HTTP/1.1\r\n\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    match bad.fill(deadline) {
        Fill::Closed => {}
        Fill::Data => panic!("answered a malformed PROXY header: {:?}", bad.buf),
        Fill::Quiet => panic!("a malformed PROXY header was left open"),
    }
}

#[test]
fn an_untrusted_peer_cannot_speak_the_proxy_protocol() {
    let hub = Hub::start(&["--trusted-proxy", "10.0.0.0/8"]);
    let (status, _) = status(&hub, b"PROXY TCP4 198.51.100.4 127.0.0.1 5555 80\r\n", "");
    assert_eq!(status, 400);
}
