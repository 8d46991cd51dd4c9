//! HTTP/2 with prior knowledge (h2c) on the hub's plain port with
//! `--h2c`, beside HTTP/1.1: what a proxy that speaks h2c to its backends
//! sends. curl and reqwest as clients, a preface that arrives one byte at a
//! time, one that is not quite the preface, one after a request (not
//! HTTP/2: the preface only opens a connection), the hub without `--h2c`,
//! a request body that stalls (408 within the header timeout, as over
//! HTTP/1.1), large bodies sent slowly over one connection (bounded by
//! the request memory, as over HTTP/1.1), a connection left without
//! streams (closed after the header timeout, as over HTTP/1.1), and the
//! per-address limit counting each stream (directly and behind a trusted
//! proxy). Real processes and sockets on 127.0.0.1; every wait is bounded.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::h2raw::{
    DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING, SETTINGS, frame, header_block,
};
use common::http::read_until;
use common::hub::Hub;
use common::run::curl_with_version;
use common::{WAIT, runtime};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The ACK flag of a PING frame.
const ACK: u8 = 0x1;

/// A reqwest client that speaks HTTP/2 with prior knowledge.
fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

#[test]
fn curl_gets_h2c_with_prior_knowledge_and_http1_on_the_same_port() {
    let hub = Hub::start(&["--h2c"]);
    let url = format!("{}/healthz", hub.url());
    for (flag, version) in [("--http2-prior-knowledge", "2"), ("--http1.1", "1.1")] {
        assert_eq!(curl_with_version(&[flag, &url]), format!("ok {version}"));
    }
}

#[test]
fn subscriptions_and_publishes_share_one_h2c_connection() {
    let hub = Hub::start(&["--h2c", "--retry", "300"]);
    let client = h2c_client();
    let hub_url = format!("{}/.well-known/mercure", hub.url());
    let runtime = runtime();
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

#[test]
fn a_preface_sent_one_byte_at_a_time_is_still_http2() {
    let hub = Hub::start(&["--h2c"]);
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
    let hub = Hub::start(&["--h2c"]);
    let resp = hub.raw(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    assert_eq!(resp.status, 400, "{}", resp.text());
    // An HTTP/1.1 request after all that: still served.
    assert_eq!(hub.get("/healthz", &[]).status, 200);
}

#[test]
fn the_preface_after_a_request_or_without_h2c_is_a_bad_request() {
    // After a request, on the same connection: an HTTP/1.1 error.
    let hub = Hub::start(&["--h2c"]);
    let mut socket = TcpStream::connect(hub.addr).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    socket.write_all(PREFACE).unwrap();
    let mut answers = Vec::new();
    let _ = socket.read_to_end(&mut answers);
    let answers = String::from_utf8_lossy(&answers);
    assert!(answers.starts_with("HTTP/1.1 200"), "{answers}");
    assert!(answers.contains("HTTP/1.1 400"), "{answers}");

    // Without --h2c: the preface is a malformed HTTP/1.1 request.
    let plain = Hub::start(&[]);
    let resp = plain.raw(PREFACE);
    assert_eq!(resp.status, 400, "{}", resp.text());
}

#[test]
fn a_stalled_request_body_over_h2c_is_answered_408_within_the_header_timeout() {
    let hub = Hub::start(&["--h2c", "--header-timeout", "1s"]);
    let mut socket = TcpStream::connect(hub.addr).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/.well-known/mercure"),
        (":authority", "127.0.0.1"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", "100"),
    ];
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out.extend(frame(HEADERS, END_HEADERS, 1, &header_block(&fields)));
    // Ten of the hundred bytes, then nothing.
    out.extend(frame(DATA, 0, 1, b"topic=a&da"));
    let started = Instant::now();
    socket.write_all(&out).unwrap();
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // Frames of stream 1: the answer's HEADERS, then its DATA.
        if let Some(body) = stream_data(&read, 1)
            && String::from_utf8_lossy(&body).contains("too long")
        {
            break;
        }
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => panic!("no answer for the stalled body; read {read:?}"),
            Ok(n) => read.extend_from_slice(&buf[..n]),
        }
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "answered after {waited:?}"
    );
}

/// The DATA payload of `stream` in the frames of `bytes` (from the
/// server: no preface), if any yet.
fn stream_data(bytes: &[u8], stream: u32) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        if rest.len() < 9 + len {
            break;
        }
        let id = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        if rest[3] == DATA && id == stream {
            data.extend_from_slice(&rest[9..9 + len]);
        }
        rest = &rest[9 + len..];
    }
    (!data.is_empty()).then_some(data)
}

#[test]
fn large_bodies_sent_slowly_over_h2c_are_bounded_by_the_request_memory() {
    use futures_util::StreamExt as _;

    let hub = Hub::start(&["--h2c", "--request-memory", "1MiB", "--max-body", "1048576"]);
    let client = h2c_client();
    let url = format!("{}/.well-known/mercure", hub.url());
    let runtime = runtime();
    runtime.block_on(async {
        // Eight publishes on one connection, each sending 150 KB of its
        // body and then nothing: together more than the budget.
        let mut pending = Vec::new();
        for i in 0..8 {
            let part = format!("topic=big&data={i}{}", "x".repeat(150_000));
            let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(part) })
                .chain(futures_util::stream::pending());
            let request = client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(reqwest::Body::wrap_stream(body))
                .send();
            pending.push(tokio::spawn(request));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Some are refused at once (503, Retry-After), the rest wait.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        let mut refused = 0;
        for task in &mut pending {
            if let Ok(Ok(Ok(response))) = tokio::time::timeout_at(deadline, task).await {
                assert_eq!(response.status(), 503, "{:?}", response.text().await);
                assert_eq!(response.headers()["retry-after"], "1");
                refused += 1;
            }
        }
        assert!(
            (1..8).contains(&refused),
            "{refused} of 8 refused: the budget was not held or not enforced"
        );
        // The slow senders go: the budget comes back.
        for task in pending {
            task.abort();
        }
        drop(client);
    });
    // Its connection closes with the runtime (the metrics request is the
    // one left).
    drop(runtime);
    hub.wait_for_metric("sse_hub_connections", |n| n <= 1);
    let resp = hub.publish(&[("topic", "big"), ("data", &"y".repeat(600_000))], &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// The frames of `bytes` (from the server: no preface) as (type, stream,
/// payload), as far as they are complete.
fn frames(bytes: &[u8]) -> Vec<(u8, u32, &[u8])> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        if rest.len() < 9 + len {
            break;
        }
        let id = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        out.push((rest[3], id, &rest[9..9 + len]));
        rest = &rest[9 + len..];
    }
    out
}

/// Reads from `socket` into `read` until `done` holds for what was read,
/// or the connection ends (then `false`).
fn read_frames_until(
    socket: &mut TcpStream,
    read: &mut Vec<u8>,
    done: impl Fn(&[(u8, u32, &[u8])]) -> bool,
) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        if done(&frames(read)) {
            return true;
        }
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => read.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn an_h2c_connection_without_streams_is_closed_after_the_header_timeout() {
    let hub = Hub::start(&["--h2c", "--header-timeout", "1s"]);
    let subscribe = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/.well-known/mercure?topic=idle"),
        (":authority", "127.0.0.1"),
    ];
    // One connection with a subscription, one with nothing.
    let mut busy = TcpStream::connect(hub.addr).unwrap();
    busy.set_read_timeout(Some(WAIT)).unwrap();
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out.extend(frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &header_block(&subscribe),
    ));
    busy.write_all(&out).unwrap();
    let mut idle = TcpStream::connect(hub.addr).unwrap();
    idle.set_read_timeout(Some(WAIT)).unwrap();
    let started = Instant::now();
    let mut greeting = PREFACE.to_vec();
    greeting.extend(frame(SETTINGS, 0, 0, &[]));
    idle.write_all(&greeting).unwrap();

    // Read as a client does, answering the server's PINGs (a graceful
    // GOAWAY waits for one answer before the connection closes), until
    // the connection ends.
    let mut seen = Vec::new();
    let mut answered = 0;
    let mut buf = [0u8; 4096];
    let mut goaway_after = None;
    loop {
        let read = frames(&seen);
        if goaway_after.is_none() && read.iter().any(|f| f.0 == GOAWAY) {
            goaway_after = Some(started.elapsed());
        }
        let pings: Vec<Vec<u8>> = read
            .iter()
            .filter(|f| f.0 == PING && f.1 == 0)
            .map(|f| f.2.to_vec())
            .collect();
        for payload in pings.iter().skip(answered) {
            // Our own PINGs are not sent, so every one is the server's;
            // its answers (ACK) would be echoes of ours.
            let _ = idle.write_all(&frame(PING, ACK, 0, payload));
        }
        answered = pings.len();
        match idle.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the idle connection stays open ({e}): {:?}", frames(&seen)),
        }
    }
    let goaway_after = goaway_after.expect("a GOAWAY before the connection closed");
    assert!(
        goaway_after >= Duration::from_millis(900) && goaway_after < Duration::from_secs(5),
        "GOAWAY after {goaway_after:?}"
    );
    let closed_after = started.elapsed();
    assert!(
        closed_after < Duration::from_secs(6),
        "closed after {closed_after:?}"
    );

    // The subscription's connection is open past the timeout and still
    // delivers.
    std::thread::sleep(Duration::from_millis(600));
    let resp = hub.publish(&[("topic", "idle"), ("data", "still here")], &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let mut read = Vec::new();
    let delivered = read_frames_until(&mut busy, &mut read, |frames| {
        frames
            .iter()
            .any(|f| f.0 == DATA && f.1 == 1 && String::from_utf8_lossy(f.2).contains("still here"))
    });
    assert!(delivered, "no delivery: {:?}", frames(&read));
    assert!(
        !frames(&read).iter().any(|f| f.0 == GOAWAY),
        "a connection with a stream was closed: {:?}",
        frames(&read)
    );
}

/// Opens a subscription over `client` for `forwarded_for` (if any): its
/// status.
async fn subscription_status(
    client: &reqwest::Client,
    url: &str,
    forwarded_for: Option<&str>,
    streams: &mut Vec<reqwest::Response>,
) -> u16 {
    let mut request = client.get(url);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let response = tokio::time::timeout(WAIT, request.send())
        .await
        .expect("answered in time")
        .expect("answered");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let status = response.status().as_u16();
    if status == 200 {
        streams.push(response);
    } else {
        assert_eq!(status, 429, "{:?}", response.text().await);
    }
    status
}

#[test]
fn each_h2c_stream_counts_under_its_clients_address() {
    // Three places per address: the connection and two streams.
    let hub = Hub::start(&["--h2c", "--max-connections-per-ip", "3"]);
    let client = h2c_client();
    let url = format!("{}/.well-known/mercure?topic=limited", hub.url());
    let runtime = runtime();
    runtime.block_on(async {
        let mut streams = Vec::new();
        assert_eq!(
            subscription_status(&client, &url, None, &mut streams).await,
            200
        );
        assert_eq!(
            subscription_status(&client, &url, None, &mut streams).await,
            200
        );
        assert_eq!(
            subscription_status(&client, &url, None, &mut streams).await,
            429
        );
        // A stream that ends gives its place back.
        streams.pop();
        let deadline = Instant::now() + WAIT;
        while subscription_status(&client, &url, None, &mut streams).await != 200 {
            assert!(Instant::now() < deadline, "the place never came back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(streams.len(), 2);
    });
}

#[test]
fn behind_a_trusted_proxy_each_h2c_stream_counts_under_the_forwarded_client() {
    let hub = Hub::start(&[
        "--h2c",
        "--max-connections-per-ip",
        "2",
        "--trusted-proxy",
        "127.0.0.1/32",
    ]);
    let client = h2c_client();
    let url = format!("{}/.well-known/mercure?topic=proxied", hub.url());
    let runtime = runtime();
    runtime.block_on(async {
        // The proxy's one connection counts under no client: each client
        // has its two places, all on that connection.
        let mut streams = Vec::new();
        for client_address in ["198.51.100.1", "198.51.100.2"] {
            for _ in 0..2 {
                let status =
                    subscription_status(&client, &url, Some(client_address), &mut streams).await;
                assert_eq!(status, 200, "{client_address}");
            }
            let status =
                subscription_status(&client, &url, Some(client_address), &mut streams).await;
            assert_eq!(status, 429, "{client_address}'s third stream");
        }
        assert_eq!(streams.len(), 4);
    });
}
