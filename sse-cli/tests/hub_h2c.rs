//! HTTP/2 with prior knowledge (h2c) on the hub's plain port, beside
//! HTTP/1.1: what a proxy that speaks h2c to its backends sends. curl and
//! reqwest as clients, a preface that arrives one byte at a time, and one
//! that is not quite the preface. Real processes and sockets on 127.0.0.1;
//! every wait is bounded.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::WAIT;
use common::hub::Hub;
use common::run::{RUN_LIMIT, run_with_input};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[test]
fn curl_gets_h2c_with_prior_knowledge_and_http1_on_the_same_port() {
    let hub = Hub::start(&[]);
    let url = format!("{}/healthz", hub.url());
    for (flag, version) in [("--http2-prior-knowledge", "2"), ("--http1.1", "1.1")] {
        let out = run_with_input(
            Command::new("curl").args(["-sS", flag, "-w", " %{http_version}", &url]),
            b"",
            RUN_LIMIT,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("ok {version}")
        );
    }
}

#[test]
fn subscriptions_and_publishes_share_one_h2c_connection() {
    let hub = Hub::start(&["--retry", "300"]);
    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let hub_url = format!("{}/.well-known/mercure", hub.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut streams = Vec::new();
        for i in 0..4 {
            let response =
                tokio::time::timeout(WAIT, client.get(format!("{hub_url}?topic=room-{i}")).send())
                    .await
                    .expect("subscription answered in time")
                    .expect("subscription");
            assert_eq!(response.status(), 200);
            assert_eq!(response.version(), reqwest::Version::HTTP_2);
            streams.push((response, String::new()));
        }
        for (stream, seen) in &mut streams {
            read_until(stream, seen, "retry: 300").await;
        }
        let metrics = client
            .get(format!("{}/metrics", hub.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("\nsse_hub_connections 1\n"), "{metrics}");
        for i in 0..4 {
            let published = client
                .post(&hub_url)
                .form(&[
                    ("topic", format!("room-{i}")),
                    ("data", format!("hello {i}")),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(published.status(), 200);
        }
        for (i, (stream, seen)) in streams.iter_mut().enumerate() {
            read_until(stream, seen, &format!("data: hello {i}\n")).await;
            assert_eq!(seen.matches("data: hello").count(), 1, "{seen}");
        }
    });
}

/// Reads `response`'s body until it holds `needle` (within [`WAIT`]).
async fn read_until(response: &mut reqwest::Response, seen: &mut String, needle: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("{needle:?} did not arrive; got {seen:?}"))
            .expect("the stream failed")
            .unwrap_or_else(|| panic!("the stream ended before {needle:?}; got {seen:?}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[test]
fn a_preface_sent_one_byte_at_a_time_is_still_http2() {
    let hub = Hub::start(&[]);
    let mut socket = TcpStream::connect(hub.addr).unwrap();
    socket.set_nodelay(true).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    for byte in PREFACE {
        socket.write_all(&[*byte]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    // An empty SETTINGS frame.
    socket.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    // The server's first frame is its SETTINGS (type 4, stream 0).
    let mut header = [0u8; 9];
    socket.read_exact(&mut header).unwrap();
    assert_eq!(header[3], 4, "not a SETTINGS frame: {header:?}");
    assert_eq!(&header[5..9], &[0, 0, 0, 0]);
}

#[test]
fn what_only_looks_like_the_preface_is_a_bad_http1_request() {
    let hub = Hub::start(&[]);
    let resp = hub.raw(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    assert_eq!(resp.status, 400, "{}", resp.text());
    // An HTTP/1.1 request after all that: still served.
    assert_eq!(hub.get("/healthz", &[]).status, 200);
}
