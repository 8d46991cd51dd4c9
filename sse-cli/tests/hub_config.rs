//! Configuring a real `sse hub`: environment variables that work like the
//! flags, the connection limits (overall and per IP), and CORS for an
//! allowed origin.
//!
//! Every test starts its own hub (in-memory backend) on a free loopback
//! port and kills it when it ends. Every wait is bounded.

use std::time::Duration;

mod common;

use common::http::HUB_PATH;
use common::hub::Hub;
use common::stream::{LOST, Stream, comments};
use common::token::KEY;

#[test]
fn environment_variables_work_like_flags() {
    let hub = Hub::start_env(
        &[],
        &[
            ("SSE_HUB_LISTEN", "127.0.0.1:0"),
            ("SSE_HUB_HEARTBEAT", "200ms"),
            ("SSE_HUB_RETRY", "1500"),
            ("SSE_HUB_HISTORY", "3"),
            ("SSE_HUB_MAX_BODY", "1000"),
            ("SSE_HUB_HEADER_TIMEOUT", "1s"),
        ],
    );
    let mut slow = hub.connect();
    slow.send(b"GET / HTTP/1.1\r\n");
    let mut s = hub.subscribe("topic=e", &[]);
    assert!(s.wait_text(Duration::from_secs(2), |t| t.contains("retry: 1500")));
    assert!(
        s.wait_text(Duration::from_secs(2), |t| !comments(t).is_empty()),
        "SSE_HUB_HEARTBEAT"
    );
    let ids: Vec<String> = (0..5)
        .map(|i| hub.publish_ok(&[("topic", "e"), ("data", &i.to_string())]))
        .collect();
    let mut r = hub.subscribe("topic=e", &[("Last-Event-ID", &ids[0])]);
    let lost = r.event();
    assert_eq!((lost.event_type(), lost.data()), (LOST, ids[0].as_str()));
    assert_eq!(r.datas(3), ["2", "3", "4"], "SSE_HUB_HISTORY=3");
    let big = "x".repeat(1200);
    let resp = hub.publish(&[("topic", "e"), ("data", &big)], &[]);
    assert_eq!(resp.status, 413, "SSE_HUB_MAX_BODY");
    assert_eq!(slow.response("GET").status, 408, "SSE_HUB_HEADER_TIMEOUT");
    drop(hub);

    let hub = Hub::start_env(
        &[],
        &[
            ("SSE_HUB_JWT_KEY", KEY),
            ("SSE_HUB_CORS_ORIGIN", "https://app.example"),
            ("SSE_HUB_MAX_CONNECTIONS", "1"),
            ("SSE_HUB_ANONYMOUS", "true"),
        ],
    );
    assert!(hub.first_line.to_lowercase().contains("jwt"));
    let resp = hub.publish(
        &[("topic", "e"), ("data", "d")],
        &[("Origin", "https://app.example")],
    );
    assert_eq!(resp.status, 401, "SSE_HUB_JWT_KEY");
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("https://app.example"),
        "SSE_HUB_CORS_ORIGIN"
    );
    // SSE_HUB_ANONYMOUS: no token needed to subscribe. (The publish's
    // connection holds the only place until the hub has closed it: a
    // 429 meanwhile is the limit at work, so try again briefly.)
    let hold = hub.subscribe_eventually("topic=e", &[429]);
    assert_eq!(
        hub.get("/healthz", &[]).status,
        429,
        "SSE_HUB_MAX_CONNECTIONS"
    );
    drop(hold);
}

/// Opens `n` streams; then the hub must be full: `/healthz` gets 429
/// with `Retry-After`, which is returned.
fn fill_up(hub: &Hub, n: usize) -> (Vec<Stream>, String) {
    let streams = (0..n).map(|_| hub.subscribe("topic=l", &[])).collect();
    let resp = hub.get("/healthz", &[]);
    assert_eq!(resp.status, 429);
    let retry_after = resp.header("retry-after").expect("Retry-After");
    (streams, retry_after.to_owned())
}

/// Closes the oldest of `streams`: a new stream takes its place (once the
/// hub has noticed), and the hub is full again.
fn replace_oldest(hub: &Hub, streams: &mut Vec<Stream>) {
    streams.remove(0);
    streams.push(hub.subscribe_eventually("topic=l", &[429]));
    assert_eq!(hub.get("/healthz", &[]).status, 429, "full again");
}

#[test]
fn connection_limit_answers_429_with_retry_after() {
    let hub = Hub::start(&["--max-connections", "3"]);
    let (mut streams, retry_after) = fill_up(&hub, 3);
    assert!(retry_after.trim().parse::<u64>().is_ok(), "{retry_after:?}");
    let resp = hub
        .open("topic=l", &[])
        .err()
        .expect("a fourth stream is refused");
    assert_eq!(resp.status, 429);
    assert!(resp.header("retry-after").is_some());
    replace_oldest(&hub, &mut streams);
}

#[test]
fn per_ip_limit_answers_429_with_retry_after() {
    let hub = Hub::start(&["--max-connections-per-ip", "2"]);
    let (mut streams, _) = fill_up(&hub, 2);
    let resp = hub.post(b"topic=l&data=x", &[]);
    assert_eq!(resp.status, 429);
    replace_oldest(&hub, &mut streams);
}

#[test]
fn cors_for_the_allowed_origin_only() {
    let origin = "https://app.example";
    let hub = Hub::start(&["--cors-origin", origin]);

    let s = hub.subscribe("topic=c", &[("Origin", origin)]);
    assert_eq!(s.header("access-control-allow-origin"), Some(origin));
    assert_eq!(s.header("access-control-allow-credentials"), Some("true"));
    let resp = hub.publish(&[("topic", "c"), ("data", "x")], &[("Origin", origin)]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), Some(origin));
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        Some("true")
    );
    // Errors carry them too (the browser must be able to read the status).
    let resp = hub.publish(&[("data", "no topic")], &[("Origin", origin)]);
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("access-control-allow-origin"), Some(origin));

    let preflight = hub.options(
        &format!("{HUB_PATH}?topic=c"),
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "GET"),
            (
                "Access-Control-Request-Headers",
                "authorization, cache-control, last-event-id",
            ),
        ],
    );
    assert!(
        (200..300).contains(&preflight.status),
        "{}",
        preflight.status
    );
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(origin)
    );
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );
    let allowed = preflight
        .header("access-control-allow-headers")
        .expect("Access-Control-Allow-Headers")
        .to_lowercase();
    let allowed: Vec<&str> = allowed.split(',').map(str::trim).collect();
    for name in ["authorization", "cache-control", "last-event-id"] {
        assert!(allowed.contains(&name), "{name} not allowed: {allowed:?}");
    }
    let methods = preflight
        .header("access-control-allow-methods")
        .expect("Access-Control-Allow-Methods");
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );

    // Another origin gets nothing.
    let evil = "https://evil.example";
    let s = hub.subscribe("topic=c", &[("Origin", evil)]);
    assert_eq!(s.header("access-control-allow-origin"), None);
    assert_eq!(s.header("access-control-allow-credentials"), None);
    let resp = hub.publish(&[("topic", "c"), ("data", "x")], &[("Origin", evil)]);
    assert_eq!(resp.header("access-control-allow-origin"), None);
    let preflight = hub.options(
        HUB_PATH,
        &[("Origin", evil), ("Access-Control-Request-Method", "GET")],
    );
    assert_eq!(preflight.header("access-control-allow-origin"), None);
    assert_eq!(preflight.header("access-control-allow-headers"), None);
    // Neither does a request without Origin.
    let resp = hub.get("/healthz", &[]);
    assert_eq!(resp.header("access-control-allow-origin"), None);
    // A prefix of the allowed origin is another origin.
    let s = hub.subscribe("topic=c", &[("Origin", "https://app.example.evil")]);
    assert_eq!(s.header("access-control-allow-origin"), None);
}

#[test]
fn runtime_threads_follow_the_cores_or_the_flags() {
    // Defaults: one stream thread per available core.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let hub = Hub::start(&[]);
    hub.wait_for_log(&format!(
        "threads: {cores} for event streams, {} for other requests ({cores} cores available)",
        (cores / 2).clamp(2, 8)
    ));
    hub.assert_healthy();
    drop(hub);
    // Flags, and the environment, override them.
    let hub = Hub::start(&["--stream-threads", "3", "--request-threads", "1"]);
    hub.wait_for_log("threads: 3 for event streams, 1 for other requests");
    let mut s = hub.subscribe("topic=t", &[]);
    hub.assert_delivers(&mut s, "t", "on three threads");
    drop(hub);
    let hub = Hub::start_env(&[], &[("SSE_HUB_REQUEST_THREADS", "5")]);
    hub.wait_for_log(&format!("threads: {cores} for event streams, 5 for other"));
    drop(hub);
    // Zero threads is refused at start.
    let out = common::run::sse(&["hub", "--stream-threads", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--stream-threads"));
}
