//! Runs the real `sse hub` against hostile clients: forged cross-site
//! publishes (CSRF, `--publish-origin`), CORS with `*`, DNS rebinding
//! (`Host` checks, `--allowed-host`), secrets in logs, errors, metrics and
//! `--help`, and JWT checks (`nbf`, the `Authorization` scheme, short
//! keys). Raw HTTP/1.1 over real sockets on 127.0.0.1; every wait is
//! bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;

use common::{HubProcess, run_bounded};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

/// A 32-byte HS256 key (no weak-key warning).
const KEY: &str = "0123456789abcdef0123456789abcdef";
/// The bound on any single wait.
const WAIT: Duration = Duration::from_secs(5);
/// The page origin the tests trust.
const APP: &str = "https://app.example";
/// Another site.
const EVIL: &str = "https://evil.example";

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 client
// ---------------------------------------------------------------------------

/// A response: status, fields (lowercase names) and body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a response head and whatever body followed it.
fn parse(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let socket = TcpStream::connect_timeout(&addr, WAIT).expect("connect to the hub");
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket
}

/// Sends raw bytes (a request that closes the connection) and reads the
/// whole answer.
fn raw(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut socket = connect(addr);
    socket.write_all(request).expect("write the request");
    let mut out = Vec::new();
    let _ = socket.read_to_end(&mut out);
    parse(&out)
}

/// A request with these fields (`Host` among them, or none), a body, and
/// `Connection: close`.
fn request(method: &str, target: &str, fields: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    for (name, value) in fields {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        out.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// The hub's own `Host` value, as curl sends it.
fn host_of(addr: SocketAddr) -> String {
    addr.to_string()
}

/// `GET target` with `Host: 127.0.0.1:PORT` and these fields.
fn get(addr: SocketAddr, target: &str, fields: &[(&str, &str)]) -> Resp {
    let host = host_of(addr);
    let mut all = vec![("Host", host.as_str())];
    all.extend_from_slice(fields);
    raw(addr, &request("GET", target, &all, ""))
}

/// Publishes `data` on topic `t`, with these fields and this query.
fn publish(addr: SocketAddr, query: &str, data: &str, fields: &[(&str, &str)]) -> Resp {
    let host = host_of(addr);
    let mut all = vec![("Host", host.as_str())];
    all.extend_from_slice(fields);
    let target = format!("/.well-known/mercure{query}");
    raw(
        addr,
        &request("POST", &target, &all, &format!("topic=t&data={data}")),
    )
}

/// Opens a subscription and reads its head only (the stream stays open
/// until the socket is dropped).
fn subscribe_head(addr: SocketAddr, query: &str, fields: &[(&str, &str)]) -> (Resp, TcpStream) {
    let host = host_of(addr);
    let mut head = format!("GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in fields {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut socket = connect(addr);
    socket.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    (parse(&got), socket)
}

/// Reads a stream until `done` holds for what arrived, within `WAIT`.
fn read_until(socket: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while Instant::now() < deadline {
        if done(&String::from_utf8_lossy(&got)) {
            break;
        }
        match socket.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(claims: serde_json::Value, key: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// A token that may publish and subscribe to everything.
fn all_token() -> String {
    token(
        json!({"mercure": {"publish": ["*"], "subscribe": ["*"]}}),
        KEY,
    )
}

/// Waits until the hub's log satisfies `done`; the log.
fn wait_log(hub: &HubProcess, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = hub.log_text();
        if done(&log) || Instant::now() >= deadline {
            return log;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// CSRF: publishes authorized by the cookie
// ---------------------------------------------------------------------------

#[test]
fn cookie_publishes_need_an_origin_listed_with_publish_origin() {
    let hub = HubProcess::start(&["--jwt-key", KEY, "--publish-origin", APP], &[]);
    let addr = hub.addr;
    let star = all_token();
    let cookie = format!("mercureAuthorization={star}");
    let cookie = cookie.as_str();
    // Everything that gets published, seen by one subscriber.
    let (head, mut watch) = subscribe_head(
        addr,
        "topic=t",
        &[("Authorization", &format!("Bearer {star}"))],
    );
    assert_eq!(head.status, 200);

    let ok = publish(addr, "", "from-app", &[("Cookie", cookie), ("Origin", APP)]);
    assert_eq!(ok.status, 200, "{}", ok.body);
    // The Referer's origin, when a browser sent no Origin.
    let ok = publish(
        addr,
        "",
        "from-app-referer",
        &[
            ("Cookie", cookie),
            ("Referer", "https://app.example/chat?room=1"),
        ],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    // The default port is the same origin.
    let ok = publish(
        addr,
        "",
        "from-app-443",
        &[("Cookie", cookie), ("Origin", "https://app.example:443")],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);

    for (data, fields) in [
        ("forged-origin", vec![("Origin", EVIL)]),
        (
            "forged-prefix",
            vec![("Origin", "https://app.example.evil")],
        ),
        ("forged-scheme", vec![("Origin", "http://app.example")]),
        ("forged-null", vec![("Origin", "null")]),
        (
            "forged-referer",
            vec![("Referer", "https://evil.example/app.example")],
        ),
        // Origin decides when both are there.
        (
            "forged-both",
            vec![("Origin", EVIL), ("Referer", "https://app.example/")],
        ),
        ("forged-nothing", vec![]),
    ] {
        let mut all = vec![("Cookie", cookie)];
        all.extend(fields);
        let resp = publish(addr, "", data, &all);
        assert_eq!(resp.status, 403, "{data}: {}", resp.body);
        assert!(
            resp.body.contains("--publish-origin"),
            "{data}: {}",
            resp.body
        );
    }
    let resp = publish(addr, "", "x", &[("Cookie", cookie), ("Origin", EVIL)]);
    assert!(
        resp.body.contains("--publish-origin https://evil.example"),
        "the refusal names the flag to set: {}",
        resp.body
    );

    // Tokens sent explicitly are not affected, whatever the page.
    let bearer = format!("Bearer {star}");
    let ok = publish(
        addr,
        "",
        "bearer-from-evil",
        &[
            ("Authorization", &bearer),
            ("Origin", EVIL),
            ("Cookie", cookie),
        ],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let ok = publish(
        addr,
        &format!("?authorization={star}"),
        "query-from-evil",
        &[("Origin", EVIL)],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);

    // Exactly the accepted updates went out.
    let seen = read_until(&mut watch, |t| t.contains("query-from-evil"));
    let data: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(
        data,
        [
            "from-app",
            "from-app-referer",
            "from-app-443",
            "bearer-from-evil",
            "query-from-evil"
        ],
        "{seen}"
    );
}

#[test]
fn without_publish_origin_cookie_publishes_are_refused() {
    let hub = HubProcess::start(&["--jwt-key", KEY], &[]);
    let star = all_token();
    let cookie = format!("mercureAuthorization={star}");
    let resp = publish(hub.addr, "", "x", &[("Cookie", &cookie), ("Origin", APP)]);
    assert_eq!(resp.status, 403, "{}", resp.body);
    assert!(
        resp.body.contains("--publish-origin https://app.example"),
        "{}",
        resp.body
    );
    let resp = publish(
        hub.addr,
        "",
        "x",
        &[("Authorization", &format!("Bearer {star}"))],
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    // Subscribing with the cookie is not a publish: allowed.
    let (head, _stream) = subscribe_head(hub.addr, "topic=t", &[("Cookie", &cookie)]);
    assert_eq!(head.status, 200);
}

#[test]
fn publish_origins_from_the_environment_are_a_comma_separated_list() {
    let hub = HubProcess::start(
        &["--jwt-key", KEY],
        &[(
            "SSE_HUB_PUBLISH_ORIGIN",
            "https://a.example, https://b.example:8443",
        )],
    );
    let cookie = format!("mercureAuthorization={}", all_token());
    for (origin, status) in [
        ("https://a.example", 200),
        ("https://b.example:8443", 200),
        ("https://b.example", 403),
        (EVIL, 403),
    ] {
        let resp = publish(
            hub.addr,
            "",
            "x",
            &[("Cookie", &cookie), ("Origin", origin)],
        );
        assert_eq!(resp.status, status, "{origin}: {}", resp.body);
    }
}

#[test]
fn bad_flag_values_stop_the_hub_with_a_sentence() {
    for (args, says) in [
        (vec!["--publish-origin", "*"], "--publish-origin"),
        (vec!["--publish-origin", "app.example"], "scheme://host"),
        (vec!["--allowed-host", "https://hub.example/"], "not a URL"),
    ] {
        let (status, output) = run_bounded(
            Command::new(env!("CARGO_BIN_EXE_sse"))
                .arg("hub")
                .args(["--listen", "127.0.0.1:0"])
                .args(&args)
                .env_remove("SSE_HUB_PUBLISH_ORIGIN")
                .env_remove("SSE_HUB_ALLOWED_HOST"),
            WAIT,
        );
        assert!(!status.success(), "{args:?} started: {output}");
        assert!(output.contains(says), "{args:?}: {output}");
    }
}

// ---------------------------------------------------------------------------
// CORS with `*`
// ---------------------------------------------------------------------------

#[test]
fn cors_star_allows_any_origin_without_credentials() {
    let hub = HubProcess::start(&["--cors-origin", "*", "--cors-origin", APP], &[]);
    let addr = hub.addr;
    // Any origin: `*`, never a reflected origin with credentials.
    let resp = get(addr, "/healthz", &[("Origin", EVIL)]);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(resp.header("access-control-allow-credentials"), None);
    let resp = publish(addr, "", "x", &[("Origin", EVIL)]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(resp.header("access-control-allow-credentials"), None);
    let (head, _stream) = subscribe_head(addr, "topic=t", &[("Origin", EVIL)]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("access-control-allow-origin"), Some("*"));
    assert_eq!(head.header("access-control-allow-credentials"), None);
    let host = host_of(addr);
    let preflight = raw(
        addr,
        &request(
            "OPTIONS",
            "/.well-known/mercure",
            &[
                ("Host", &host),
                ("Origin", EVIL),
                ("Access-Control-Request-Method", "POST"),
            ],
            "",
        ),
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(preflight.header("access-control-allow-credentials"), None);
    assert!(
        preflight
            .header("access-control-allow-methods")
            .is_some_and(|m| m.contains("POST"))
    );

    // A listed origin keeps its credentials.
    let resp = get(addr, "/healthz", &[("Origin", APP)]);
    assert_eq!(resp.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        Some("true")
    );
    let preflight = raw(
        addr,
        &request(
            "OPTIONS",
            "/.well-known/mercure",
            &[
                ("Host", &host),
                ("Origin", APP),
                ("Access-Control-Request-Method", "GET"),
            ],
            "",
        ),
    );
    assert_eq!(preflight.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );
}

// ---------------------------------------------------------------------------
// DNS rebinding
// ---------------------------------------------------------------------------

#[test]
fn a_loopback_hub_answers_only_loopback_host_names() {
    let hub = HubProcess::start(&[], &[]);
    let addr = hub.addr;
    let port = addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("127.0.0.2:{port}"),
        format!("localhost:{port}"),
        "LocalHost".to_owned(),
        format!("app.localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let resp = raw(addr, &request("GET", "/healthz", &[("Host", &host)], ""));
        assert_eq!(resp.status, 200, "Host: {host}: {}", resp.body);
    }
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("10.1.2.3:{port}"),
    ] {
        let resp = raw(addr, &request("GET", "/healthz", &[("Host", &host)], ""));
        assert_eq!(resp.status, 421, "Host: {host}: {}", resp.body);
        assert!(resp.body.contains("--allowed-host"), "{}", resp.body);
        assert!(resp.body.contains("DNS rebinding"), "{}", resp.body);
    }
    // Refused on every route: nothing is published, no stream opens.
    let evil_host = format!("evil.example:{port}");
    let resp = raw(
        addr,
        &request(
            "POST",
            "/.well-known/mercure",
            &[("Host", &evil_host)],
            "topic=t&data=rebound",
        ),
    );
    assert_eq!(resp.status, 421);
    let resp = raw(
        addr,
        &request(
            "GET",
            "/.well-known/mercure?topic=t&lastEventID=earliest",
            &[("Host", &evil_host)],
            "",
        ),
    );
    assert_eq!(resp.status, 421);
    let resp = get(addr, "/metrics", &[]);
    assert!(
        resp.body.contains("sse_hub_updates_published_total 0"),
        "{}",
        resp.body
    );

    // The request line and the Host header: HTTP/1.1 needs exactly one.
    let resp = raw(addr, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert!(resp.body.contains("Host"), "{}", resp.body);
    let two = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nHost: {addr}\r\n\r\n");
    assert_eq!(raw(addr, two.as_bytes()).status, 400);
    // HTTP/1.0 without Host (no browser sends that) is answered.
    let resp = raw(addr, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(resp.status, 200, "{}", resp.body);
}

#[test]
fn allowed_host_widens_the_list() {
    let hub = HubProcess::start(&["--allowed-host", "Hub.Example"], &[]);
    let addr = hub.addr;
    for (host, status) in [
        ("hub.example", 200),
        ("HUB.EXAMPLE:443", 200),
        ("localhost", 200),
        ("other.example", 421),
        ("hub.example.evil", 421),
    ] {
        let resp = raw(addr, &request("GET", "/healthz", &[("Host", host)], ""));
        assert_eq!(resp.status, status, "Host: {host}: {}", resp.body);
    }
    drop(hub);
    let hub = HubProcess::start(&[], &[("SSE_HUB_ALLOWED_HOST", "a.example,b.example")]);
    for (host, status) in [("a.example", 200), ("b.example:1", 200), ("c.example", 421)] {
        let resp = raw(hub.addr, &request("GET", "/healthz", &[("Host", host)], ""));
        assert_eq!(resp.status, status, "Host: {host}: {}", resp.body);
    }
}

#[test]
fn a_hub_on_every_address_checks_host_only_with_allowed_host() {
    let hub = HubProcess::start(&["--listen", "0.0.0.0:0"], &[]);
    let addr = SocketAddr::from(([127, 0, 0, 1], hub.addr.port()));
    let resp = raw(
        addr,
        &request("GET", "/healthz", &[("Host", "anything.example")], ""),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    drop(hub);
    let hub = HubProcess::start(
        &["--listen", "0.0.0.0:0", "--allowed-host", "hub.example"],
        &[],
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], hub.addr.port()));
    for (host, status) in [
        ("hub.example:8080", 200),
        ("127.0.0.1", 200),
        ("anything.example", 421),
    ] {
        let resp = raw(addr, &request("GET", "/healthz", &[("Host", host)], ""));
        assert_eq!(resp.status, status, "Host: {host}: {}", resp.body);
    }
}

#[test]
fn curl_works_against_the_default_hub() {
    common::require("curl", "curl (Debian: `apt-get install curl`)");
    let hub = HubProcess::start(&[], &[]);
    for url in [
        format!("http://{}/healthz", hub.addr),
        format!("http://localhost:{}/healthz", hub.addr.port()),
    ] {
        let (status, output) = run_bounded(
            Command::new("curl").args(["-sS", "--max-time", "5", &url]),
            Duration::from_secs(10),
        );
        assert!(status.success(), "curl {url}: {output}");
        assert_eq!(output.trim(), "ok", "curl {url}");
    }
    let (status, output) = run_bounded(
        Command::new("curl").args([
            "-sS",
            "--max-time",
            "5",
            "-d",
            "topic=t",
            "-d",
            "data=by curl",
            &format!("http://{}/.well-known/mercure", hub.addr),
        ]),
        Duration::from_secs(10),
    );
    assert!(status.success(), "{output}");
    assert!(
        !output.trim().is_empty() && !output.contains(' '),
        "an id: {output}"
    );
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

#[test]
fn tokens_in_request_targets_are_not_logged() {
    let hub = HubProcess::start(&["--jwt-key", KEY], &[("SSE_HUB_LOG", "debug")]);
    let star = all_token();
    let (head, _stream) = subscribe_head(
        hub.addr,
        &format!("topic=t&authorization={star}&lastEventID=earliest"),
        &[],
    );
    assert_eq!(head.status, 200);
    let resp = publish(hub.addr, &format!("?authoriz%61tion={star}"), "x", &[]);
    assert_eq!(resp.status, 200, "{}", resp.body);
    let log = wait_log(&hub, |log| {
        log.contains("topic=t&authorization=REDACTED&lastEventID=earliest")
            && log.contains("?authoriz%61tion=REDACTED")
    });
    assert!(
        log.contains("topic=t&authorization=REDACTED&lastEventID=earliest"),
        "the request is logged, without its token: {log}"
    );
    assert!(log.contains("?authoriz%61tion=REDACTED"), "{log}");
    // No piece of the token: its signature is the secret part.
    let signature = star.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "a token was logged: {log}");
    assert!(!log.contains(KEY), "the key was logged: {log}");
}

#[test]
fn redis_passwords_never_show() {
    // Nothing listens on port 1: the hub starts, Redis is unreachable.
    let password = "Pa55-w0rd-9f8e7d";
    let url = format!("redis://hubuser:{password}@127.0.0.1:1/0");
    for (args, env) in [
        (vec!["--redis", url.as_str()], vec![]),
        (vec![], vec![("SSE_HUB_REDIS", url.as_str())]),
    ] {
        let hub = HubProcess::start(&args, &env);
        assert!(
            hub.first_line
                .contains("redis://hubuser:REDACTED@127.0.0.1:1/0"),
            "{}",
            hub.first_line
        );
        let resp = publish(hub.addr, "", "x", &[]);
        assert_eq!(resp.status, 503, "{}", resp.body);
        assert!(!resp.body.contains(password), "{}", resp.body);
        let metrics = get(hub.addr, "/metrics", &[]);
        assert!(metrics.body.contains("sse_hub_backend_up 0"));
        assert!(!metrics.body.contains(password), "{}", metrics.body);
        let log = wait_log(&hub, |log| log.contains("Redis unreachable"));
        assert!(log.contains("Redis unreachable"), "{log}");
        assert!(!log.contains(password), "{log}");
    }
    // A URL the client refuses: the error says so, without the password.
    let (status, output) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_sse")).args([
            "hub",
            "--listen",
            "127.0.0.1:0",
            "--redis",
            &format!("redis://:{password}@127.0.0.1:6379/not-a-number"),
        ]),
        WAIT,
    );
    assert!(!status.success(), "{output}");
    assert!(output.contains("--redis redis://:REDACTED@"), "{output}");
    assert!(!output.contains(password), "{output}");
}

#[test]
fn help_never_shows_a_secret_from_the_environment() {
    let jwt = "jwt-secret-value-3c2b1a";
    let redis = "redis://:redis-secret-value-4d5e@127.0.0.1:6379";
    let (status, output) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_sse"))
            .args(["hub", "--help"])
            .env("SSE_HUB_JWT_KEY", jwt)
            .env("SSE_HUB_REDIS", redis)
            .env("SSE_HUB_PUBLISH_ORIGIN", "https://shown.example"),
        WAIT,
    );
    assert!(status.success(), "{output}");
    assert!(!output.contains("jwt-secret-value"), "{output}");
    assert!(!output.contains("redis-secret-value"), "{output}");
    // The variables are still named, and other values still shown.
    assert!(output.contains("SSE_HUB_REDIS"), "{output}");
    assert!(output.contains("SSE_HUB_JWT_KEY"), "{output}");
    assert!(output.contains("https://shown.example"), "{output}");
    for flag in ["--publish-origin", "--allowed-host"] {
        assert!(output.contains(flag), "{flag} is documented: {output}");
    }
}

// ---------------------------------------------------------------------------
// JWT
// ---------------------------------------------------------------------------

#[test]
fn a_token_is_refused_before_its_nbf() {
    let hub = HubProcess::start(&["--jwt-key", KEY], &[]);
    let later = token(
        json!({"mercure": {"publish": ["*"], "subscribe": ["*"]}, "nbf": now_secs() + 3600}),
        KEY,
    );
    let bearer = format!("Bearer {later}");
    let resp = publish(hub.addr, "", "x", &[("Authorization", &bearer)]);
    assert_eq!(resp.status, 401, "{}", resp.body);
    let (head, _) = subscribe_head(hub.addr, "topic=t", &[("Authorization", &bearer)]);
    assert_eq!(head.status, 401);
    let started = token(
        json!({"mercure": {"publish": ["*"]}, "nbf": now_secs() - 10}),
        KEY,
    );
    let resp = publish(
        hub.addr,
        "",
        "x",
        &[("Authorization", &format!("Bearer {started}"))],
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
}

#[test]
fn another_authorization_scheme_is_401_not_a_fall_through() {
    let hub = HubProcess::start(&["--jwt-key", KEY, "--anonymous"], &[]);
    let star = all_token();
    let query = format!("?authorization={star}");
    // A valid token in the query does not rescue a Basic header.
    let resp = publish(
        hub.addr,
        &query,
        "x",
        &[("Authorization", "Basic dXNlcjpwYXNz")],
    );
    assert_eq!(resp.status, 401, "{}", resp.body);
    assert!(resp.body.contains("Bearer"), "{}", resp.body);
    // Nor a cookie (with a trusted origin even).
    let cookie = format!("mercureAuthorization={star}");
    let resp = publish(
        hub.addr,
        "",
        "x",
        &[("Authorization", "Token abc"), ("Cookie", &cookie)],
    );
    assert_eq!(resp.status, 401, "{}", resp.body);
    // A subscriber with another scheme is not anonymous either.
    let (head, _) = subscribe_head(
        hub.addr,
        &format!("topic=t&authorization={star}"),
        &[("Authorization", "Basic dXNlcjpwYXNz")],
    );
    assert_eq!(head.status, 401);
    // Without the header, the query parameter works.
    let resp = publish(hub.addr, &query, "x", &[]);
    assert_eq!(resp.status, 200, "{}", resp.body);
}

#[test]
fn a_short_hmac_key_is_warned_about_at_start() {
    let short = "tiny-key-16bytes";
    let hub = HubProcess::start(&["--jwt-key", short], &[]);
    let log = wait_log(&hub, |log| log.contains("256 bits"));
    assert!(log.contains("WARN"), "{log}");
    assert!(
        log.contains("16 bytes") && log.contains("shorter than 256 bits"),
        "{log}"
    );
    assert!(!log.contains(short), "the key itself is not logged: {log}");
    drop(hub);

    let hub = HubProcess::start(&["--jwt-key", KEY], &[]);
    // The warning would come right after the first line, before the hub
    // answers anything.
    assert_eq!(get(hub.addr, "/healthz", &[]).status, 200);
    thread::sleep(Duration::from_millis(200));
    assert!(!hub.log_text().contains("256 bits"), "{}", hub.log_text());
}
