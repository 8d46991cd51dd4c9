//! `sse listen` and `sse publish` as a user meets them on the open
//! internet: https against a server whose certificate a throwaway
//! certificate authority signed (trusted through `SSL_CERT_FILE`, or not),
//! through a `CONNECT` proxy given as `HTTPS_PROXY`, and against an
//! OpenAI-style streaming API that rejects a bad token with a JSON error.
//! Servers and the proxy are real sockets on 127.0.0.1; every run of the
//! binary is bounded in time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

mod common;

use common::pki::Pki;
use common::run::{RUN_LIMIT, run_with_input, sse};
use rustls::{ServerConnection, StreamOwned};

/// A request as a server read it: the head's lines and the body.
#[derive(Clone, Debug, Default)]
struct Seen {
    head: String,
    body: String,
}

/// Reads a head and its `Content-Length` body.
fn read_request(stream: &mut impl Read) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// An https server on 127.0.0.1 that answers every request with what
/// `answer` makes of it, then closes (with `close_notify`).
fn https_server(
    pki: &Pki,
    answer: impl Fn(&Seen) -> String + Send + Sync + 'static,
) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let config = Arc::clone(&pki.server);
    let answer = Arc::new(answer);
    thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            let recorded = Arc::clone(&recorded);
            let answer = Arc::clone(&answer);
            thread::spawn(move || {
                let Ok(conn) = ServerConnection::new(config) else {
                    return;
                };
                let mut tls = StreamOwned::new(conn, tcp);
                let Some(request) = read_request(&mut tls) else {
                    return;
                };
                let response = answer(&request);
                recorded.lock().unwrap().push(request);
                let _ = tls.write_all(response.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let _ = tls.sock.shutdown(Shutdown::Write);
            });
        }
    });
    (addr, seen)
}

/// An event stream of `body`, then the end.
fn stream(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A `CONNECT` proxy on 127.0.0.1 that records the heads it reads and
/// tunnels to the target.
fn connect_proxy() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&heads);
    thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let recorded = Arc::clone(&recorded);
            thread::spawn(move || {
                let Some(seen) = read_request(&mut client) else {
                    return;
                };
                recorded.lock().unwrap().push(seen.head.clone());
                let target = seen
                    .head
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split(' ').next())
                    .unwrap_or_default()
                    .to_owned();
                let Ok(server) = TcpStream::connect(target.as_str()) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let (mut up_rx, mut up_tx) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = thread::spawn(move || {
                    let _ = std::io::copy(&mut up_rx, &mut up_tx);
                    let _ = up_tx.shutdown(Shutdown::Write);
                });
                let (mut down_rx, mut down_tx) = (server, client);
                let _ = std::io::copy(&mut down_rx, &mut down_tx);
                let _ = down_tx.shutdown(Shutdown::Write);
                let _ = up.join();
            });
        }
    });
    (addr, heads)
}

/// What a run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `sse ARGS` with `env` set, within the time limit.
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = sse(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = run_with_input(&mut command, b"", RUN_LIMIT);
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn https_with_a_private_authority_given_as_ssl_cert_file() {
    let pki = Pki::new();
    let (addr, seen) = https_server(&pki, |_| stream("id: 1\ndata: secure\n\n"));
    let url = format!("https://localhost:{}/events", addr.port());
    let ca = pki.ca_file.to_str().unwrap();
    let ok = run(
        &["listen", &url, "--no-reconnect"],
        &[("SSL_CERT_FILE", ca)],
    );
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_eq!(
        ok.stdout,
        "{\"type\":\"message\",\"data\":\"secure\",\"id\":\"1\"}\n"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);

    // Without the authority, the certificate is not trusted: one sentence
    // that names the host and says what to do.
    let untrusted = run(&["listen", &url, "--no-reconnect"], &[]);
    assert_eq!(untrusted.code, Some(1), "{}", untrusted.stderr);
    assert!(
        untrusted
            .stderr
            .contains("TLS with localhost failed: invalid peer certificate"),
        "{}",
        untrusted.stderr
    );
    assert!(
        untrusted.stderr.contains("SSL_CERT_FILE"),
        "{}",
        untrusted.stderr
    );
    assert_eq!(untrusted.stderr.lines().count(), 1, "{}", untrusted.stderr);
}

#[test]
fn https_through_a_connect_proxy_from_https_proxy() {
    let pki = Pki::new();
    let (addr, _) = https_server(&pki, |_| stream("data: tunnelled\n\n"));
    let (proxy, heads) = connect_proxy();
    let url = format!("https://localhost:{}/events", addr.port());
    let proxy_url = format!("http://{proxy}");
    let ca = pki.ca_file.to_str().unwrap();
    let ok = run(
        &["listen", &url, "--no-reconnect"],
        &[("SSL_CERT_FILE", ca), ("HTTPS_PROXY", &proxy_url)],
    );
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_eq!(
        ok.stdout,
        "{\"type\":\"message\",\"data\":\"tunnelled\",\"id\":\"\"}\n"
    );
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with(&format!("CONNECT localhost:{} HTTP/1.1\r\n", addr.port())),
        "{heads:?}"
    );

    // NO_PROXY wins for the hosts it names.
    let direct = run(
        &["listen", &url, "--no-reconnect"],
        &[
            ("SSL_CERT_FILE", ca),
            ("HTTPS_PROXY", &proxy_url),
            ("NO_PROXY", "localhost"),
        ],
    );
    assert_eq!(direct.code, Some(0), "{}", direct.stderr);
    assert_eq!(heads.len(), 1);
}

#[test]
fn a_bad_proxy_is_one_sentence_that_names_it() {
    // Malformed.
    let bad = run(
        &["listen", "https://localhost:9/", "--no-reconnect"],
        &[("HTTPS_PROXY", "socks5://127.0.0.1:1080")],
    );
    assert_eq!(bad.code, Some(1));
    assert_eq!(
        bad.stderr,
        "sse listen: error: cannot listen: HTTPS_PROXY names a \"socks5\" proxy, which is not \
         supported: give an http:// or https:// proxy URL\n"
    );
    // Unreachable.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = closed.local_addr().unwrap();
    drop(closed);
    let unreachable = run(
        &["listen", "https://localhost:9/", "--no-reconnect"],
        &[("HTTPS_PROXY", &format!("http://{gone}"))],
    );
    assert_eq!(unreachable.code, Some(1));
    assert!(
        unreachable
            .stderr
            .contains(&format!("cannot connect to the proxy {gone}: ")),
        "{}",
        unreachable.stderr
    );
    assert_eq!(
        unreachable.stderr.lines().count(),
        1,
        "{}",
        unreachable.stderr
    );
}

/// An OpenAI-style chat-completions endpoint: a stream of deltas for the
/// right bearer token, a 401 with a JSON error otherwise.
fn chat_api(request: &Seen) -> String {
    if !request
        .head
        .contains("\r\nAuthorization: Bearer good-token\r\n")
    {
        let body = r#"{"error":{"message":"Incorrect API key provided: bad-token.","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        return format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    }
    let mut body = String::new();
    for piece in ["Hel", "lo"] {
        body.push_str(&format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{piece}\"}}}}]}}\n\n"
        ));
    }
    body.push_str("data: [DONE]\n\n");
    stream(&body)
}

#[test]
fn an_api_that_rejects_the_token_has_its_error_printed() {
    let pki = Pki::new();
    let (addr, seen) = https_server(&pki, chat_api);
    let url = format!("https://localhost:{}/v1/chat/completions", addr.port());
    let ca = pki.ca_file.to_str().unwrap();
    let request = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let args = |token: &str| {
        vec![
            "listen".to_owned(),
            url.clone(),
            "--no-reconnect".to_owned(),
            "-H".to_owned(),
            format!("Authorization: Bearer {token}"),
            "-H".to_owned(),
            "Content-Type: application/json".to_owned(),
            "-d".to_owned(),
            request.to_owned(),
        ]
    };
    let good: Vec<String> = args("good-token");
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let ok = run(&good, &[("SSL_CERT_FILE", ca)]);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_eq!(ok.stdout.lines().count(), 3, "{}", ok.stdout);
    assert!(ok.stdout.lines().last().unwrap_or("").contains("[DONE]"));
    let first = seen.lock().unwrap()[0].clone();
    assert!(
        first
            .head
            .starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{}",
        first.head
    );
    assert_eq!(first.body, request);

    let bad: Vec<String> = args("bad-token");
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let rejected = run(&bad, &[("SSL_CERT_FILE", ca)]);
    assert_eq!(rejected.code, Some(1));
    assert_eq!(rejected.stdout, "");
    let mut lines = rejected.stderr.lines();
    assert_eq!(
        lines.next(),
        Some("sse listen: error: the server answered 401 Unauthorized; not retrying")
    );
    assert!(
        lines
            .next()
            .unwrap_or("")
            .contains("Incorrect API key provided: bad-token."),
        "{}",
        rejected.stderr
    );
}

#[test]
fn publish_speaks_https() {
    let pki = Pki::new();
    let (addr, seen) = https_server(&pki, |_| {
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nurn:id:7"
            .to_owned()
    });
    let hub = format!("https://localhost:{}", addr.port());
    let ca = pki.ca_file.to_str().unwrap();
    let ok = run(
        &["publish", &hub, "--topic", "t", "--data", "hello"],
        &[("SSL_CERT_FILE", ca)],
    );
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_eq!(ok.stdout, "urn:id:7\n");
    let request = seen.lock().unwrap()[0].clone();
    assert!(
        request
            .head
            .starts_with("POST /.well-known/mercure HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    assert_eq!(request.body, "topic=t&data=hello");

    let untrusted = run(&["publish", &hub, "--topic", "t", "--data", "x"], &[]);
    assert_eq!(untrusted.code, Some(1));
    assert!(
        untrusted.stderr.contains("TLS with localhost failed"),
        "{}",
        untrusted.stderr
    );
}
