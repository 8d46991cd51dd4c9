//! `sse hub --tls-cert --tls-key`: https with a throwaway certificate
//! authority, HTTP/2 (ALPN `h2`) with every subscription a stream of one
//! shared connection, HTTP/1.1 over TLS for clients that do not offer h2,
//! bad certificate files refused at start in one sentence, and the
//! shutdown's `retry:` and `GOAWAY` over HTTP/2. Real processes and
//! sockets on 127.0.0.1; every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use common::http::read_until;
use common::hub::Hub;
use common::pki::Pki;
use common::run::{RUN_LIMIT, curl_with_version, run_with_input, sse};
use common::{WAIT, runtime};

/// A hub serving https with `pki`'s certificate, every stream starting
/// with `retry: 300`.
fn https_hub(pki: &Pki) -> Hub {
    let cert = pki.cert_file.to_str().unwrap();
    let key = pki.key_file.to_str().unwrap();
    Hub::start(&["--tls-cert", cert, "--tls-key", key, "--retry", "300"])
}

/// `https://localhost:PORT`.
fn base(hub: &Hub) -> String {
    format!("https://localhost:{}", hub.addr.port())
}

/// A reqwest client trusting `pki`'s authority only, offering h2 (and
/// http/1.1) by ALPN.
fn client(pki: &Pki) -> reqwest::Client {
    let ca = reqwest::Certificate::from_der(&pki.ca_der).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap()
}

#[test]
fn curl_gets_http2_and_http1_over_tls() {
    let pki = Pki::new();
    let hub = https_hub(&pki);
    assert!(
        hub.first_line.contains("listening on https://"),
        "{}",
        hub.first_line
    );
    let url = format!("{}/healthz", base(&hub));
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let ca = pki.ca_file.to_str().unwrap();
        let out = curl_with_version(&[flag, "--cacert", ca, &url]);
        assert_eq!(out, format!("ok {version}"));
    }
}

#[test]
fn twelve_subscriptions_share_one_http2_connection_and_all_receive() {
    let pki = Pki::new();
    let hub = https_hub(&pki);
    let client = client(&pki);
    let hub_url = format!("{}/.well-known/mercure", base(&hub));
    runtime().block_on(async {
        let mut streams = Vec::new();
        for i in 0..12 {
            let response =
                tokio::time::timeout(WAIT, client.get(format!("{hub_url}?topic=room-{i}")).send())
                    .await
                    .expect("subscription answered in time")
                    .expect("subscription");
            assert_eq!(response.status(), 200);
            assert_eq!(response.version(), reqwest::Version::HTTP_2);
            assert_eq!(
                response.headers()["content-type"].to_str().unwrap(),
                "text/event-stream"
            );
            streams.push(response);
        }
        // Every stream is open before anything is published.
        let mut seen = vec![String::new(); 12];
        for (stream, seen) in streams.iter_mut().zip(&mut seen) {
            read_until(stream, seen, "retry: 300").await;
        }
        // One TCP connection carries all of them (and the publishes).
        let metrics = client
            .get(format!("{}/metrics", base(&hub)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("\nsse_hub_connections 1\n"), "{metrics}");
        for i in 0..12 {
            let published = client
                .post(&hub_url)
                .form(&[
                    ("topic", format!("room-{i}")),
                    ("data", format!("hello {i}")),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(published.status(), 200, "{:?}", published.text().await);
        }
        for (i, (stream, seen)) in streams.iter_mut().zip(&mut seen).enumerate() {
            read_until(stream, seen, &format!("data: hello {i}\n")).await;
            for other in (0..12).filter(|&j| j != i) {
                assert!(!seen.contains(&format!("data: hello {other}\n")), "{seen}");
            }
        }
    });
}

#[test]
fn a_client_without_h2_gets_http1_over_tls() {
    let pki = Pki::new();
    let hub = https_hub(&pki);
    let ca = pki.ca_file.to_str().unwrap();
    let url = format!("{}/.well-known/mercure?topic=t", base(&hub));
    // `sse listen` offers no ALPN: the HTTP/1.1 path serves it.
    let mut listen = sse(&["listen", &url, "--max-events", "1"]);
    listen.env("SSL_CERT_FILE", ca);
    let listener = std::thread::spawn(move || run_with_input(&mut listen, b"", RUN_LIMIT));
    // Publish once the subscriber is there.
    let deadline = Instant::now() + WAIT;
    let client = client(&pki);
    let rt = runtime();
    loop {
        let metrics = rt.block_on(async {
            client
                .get(format!("{}/metrics", base(&hub)))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        if metrics.contains("\nsse_hub_open_streams 1\n") {
            break;
        }
        assert!(Instant::now() < deadline, "the subscriber did not connect");
        std::thread::sleep(Duration::from_millis(20));
    }
    let published = run_with_input(
        sse(&["publish", &base(&hub), "--topic", "t", "--data", "over tls"])
            .env("SSL_CERT_FILE", ca),
        b"",
        RUN_LIMIT,
    );
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    let out = listener.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"data\":\"over tls\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn an_http1_tls_stream_the_client_closes_is_reset_too() {
    use std::io::{Read, Write};

    use rustls::pki_types::ServerName;
    use rustls::{ClientConnection, StreamOwned};

    let pki = Pki::new();
    let hub = https_hub(&pki);
    // No ALPN: the hub serves HTTP/1.1.
    let config = common::pki::client_config(&pki.ca_der, &[]);
    let mut ports = Vec::new();
    for _ in 0..2 {
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(config.clone(), name).unwrap();
        let tcp = std::net::TcpStream::connect(hub.addr).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        ports.push(tcp.local_addr().unwrap().port());
        let mut tls = StreamOwned::new(conn, tcp);
        tls.write_all(b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tls.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
        // Everything the hub sent is read (its session tickets too): a
        // socket closed with unread bytes would be reset by the client's
        // own kernel, whatever the hub does.
        tls.sock
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut rest = [0u8; 256];
        while tls.read(&mut rest).is_ok_and(|n| n > 0) {}
        // Then closed without a close_notify, as browsers often do.
    }
    let left = common::http::client_ends_left(hub.addr.port(), &ports);
    assert!(
        left.is_empty(),
        "client ends still held (port, state): {left:?}"
    );
}

#[test]
fn bad_certificate_files_are_one_sentence_at_start() {
    let pki = Pki::new();
    let missing = pki.path("missing.pem");
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let other = Pki::new();
    let cases = [
        (
            missing.to_str().unwrap(),
            pki.key_file.to_str().unwrap(),
            "--tls-cert",
        ),
        (
            garbage.to_str().unwrap(),
            pki.key_file.to_str().unwrap(),
            "--tls-cert",
        ),
        (
            pki.cert_file.to_str().unwrap(),
            garbage.to_str().unwrap(),
            "--tls-key",
        ),
        (
            pki.cert_file.to_str().unwrap(),
            other.key_file.to_str().unwrap(),
            "does not fit",
        ),
    ];
    for (cert, key, said) in cases {
        let out = run_with_input(
            &mut sse(&[
                "hub",
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                cert,
                "--tls-key",
                key,
            ]),
            b"",
            RUN_LIMIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(said), "{said}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    // One flag without the other is a usage error.
    let out = run_with_input(
        &mut sse(&["hub", "--tls-cert", pki.cert_file.to_str().unwrap()]),
        b"",
        RUN_LIMIT,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

#[test]
fn shutdown_ends_http2_streams_with_a_retry_and_goaway() {
    let pki = Pki::new();
    let mut hub = https_hub(&pki);
    let client = client(&pki);
    let url = format!("{}/.well-known/mercure?topic=t", base(&hub));
    runtime().block_on(async {
        let mut stream = client.get(&url).send().await.unwrap();
        assert_eq!(stream.version(), reqwest::Version::HTTP_2);
        let mut seen = String::new();
        read_until(&mut stream, &mut seen, "retry: 300").await;
        hub.signal("-TERM");
        // The shutdown's own retry (1 to 5 s), then the end of the stream.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let chunk = tokio::time::timeout_at(deadline, stream.chunk())
                .await
                .expect("the stream did not end");
            match chunk {
                Ok(Some(bytes)) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) => break,
                Err(e) => panic!("the stream broke instead of ending: {e}; got {seen:?}"),
            }
        }
        let last_retry = seen
            .rsplit("retry: ")
            .next()
            .and_then(|r| r.split('\n').next())
            .and_then(|ms| ms.parse::<u64>().ok())
            .unwrap_or(0);
        assert!((1000..=5000).contains(&last_retry), "{seen:?}");
    });
    assert!(hub.wait_exit(WAIT).is_some_and(|s| s.success()));
}

#[test]
fn http2_requests_through_a_trusted_proxy_are_logged_under_their_client() {
    let pki = Pki::new();
    let cert = pki.cert_file.to_str().unwrap();
    let key = pki.key_file.to_str().unwrap();
    let hub = Hub::start_env(
        &[
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--trusted-proxy",
            "127.0.0.1/32",
        ],
        &[("SSE_HUB_LOG", "debug")],
    );
    let url = format!("{}/healthz?from=proxy", base(&hub));
    let answer = curl_with_version(&[
        "--http2",
        "--cacert",
        pki.ca_file.to_str().unwrap(),
        "-H",
        "X-Forwarded-For: 203.0.113.9",
        &url,
    ]);
    assert_eq!(answer, "ok 2");
    hub.wait_for_log("203.0.113.9 GET /healthz?from=proxy");
}
