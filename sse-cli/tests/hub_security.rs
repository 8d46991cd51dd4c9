//! Runs the real `sse hub` against hostile clients: forged cross-site
//! publishes (CSRF, `--publish-origin`), CORS with `*`, DNS rebinding
//! (`Host` checks, `--allowed-host`), secrets in logs, errors, metrics and
//! `--help`, and JWT checks (`nbf`, the `Authorization` scheme, short
//! keys). Raw HTTP/1.1 over real sockets on 127.0.0.1; every wait is
//! bounded.

use std::net::SocketAddr;
use std::process::Command;
use std::thread;
use std::time::Duration;

mod common;

use common::WAIT;
use common::http::{HUB_PATH, Resp, exchange, form, request, with_form_type};
use common::hub::Hub;
use common::run::{require, run_bounded, sse};
use common::token::{KEY, all_token, bearer, now_secs, token};
use serde_json::json;

/// The page origin the tests trust.
const APP: &str = "https://app.example";
/// Another site.
const EVIL: &str = "https://evil.example";

/// Publishes `data` on topic `t` to the hub's path with this `query` (`""`
/// or `?...`) and these header fields.
fn publish(hub: &Hub, query: &str, data: &str, headers: &[(&str, &str)]) -> Resp {
    let body = form(&[("topic", "t"), ("data", data)]);
    hub.post_to(&format!("{HUB_PATH}{query}"), body.as_bytes(), headers)
}

/// `GET /healthz` with this `Host`.
fn healthz_for_host(addr: SocketAddr, host: &str) -> Resp {
    exchange(addr, &request("GET", "/healthz", &[("Host", host)], b""))
}

// ---------------------------------------------------------------------------
// CSRF: publishes authorized by the cookie
// ---------------------------------------------------------------------------

#[test]
fn cookie_publishes_need_an_origin_listed_with_publish_origin() {
    let hub = Hub::start(&["--jwt-key", KEY, "--publish-origin", APP]);
    let star = all_token();
    let cookie = format!("mercureAuthorization={star}");
    let cookie = cookie.as_str();
    // Everything that gets published, seen by one subscriber.
    let mut watch = hub.subscribe("topic=t", &[("Authorization", &bearer(&star))]);

    let ok = publish(&hub, "", "from-app", &[("Cookie", cookie), ("Origin", APP)]);
    assert_eq!(ok.status, 200, "{}", ok.text());
    // The Referer's origin, when a browser sent no Origin.
    let ok = publish(
        &hub,
        "",
        "from-app-referer",
        &[
            ("Cookie", cookie),
            ("Referer", "https://app.example/chat?room=1"),
        ],
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    // The default port is the same origin.
    let ok = publish(
        &hub,
        "",
        "from-app-443",
        &[("Cookie", cookie), ("Origin", "https://app.example:443")],
    );
    assert_eq!(ok.status, 200, "{}", ok.text());

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
        let resp = publish(&hub, "", data, &all);
        assert_eq!(resp.status, 403, "{data}: {}", resp.text());
        assert!(
            resp.text().contains("--publish-origin"),
            "{data}: {}",
            resp.text()
        );
    }
    let resp = publish(&hub, "", "x", &[("Cookie", cookie), ("Origin", EVIL)]);
    assert!(
        resp.text()
            .contains("--publish-origin https://evil.example"),
        "the refusal names the flag to set: {}",
        resp.text()
    );

    // Tokens sent explicitly are not affected, whatever the page.
    let ok = publish(
        &hub,
        "",
        "bearer-from-evil",
        &[
            ("Authorization", &bearer(&star)),
            ("Origin", EVIL),
            ("Cookie", cookie),
        ],
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let ok = publish(
        &hub,
        &format!("?authorization={star}"),
        "query-from-evil",
        &[("Origin", EVIL)],
    );
    assert_eq!(ok.status, 200, "{}", ok.text());

    // Exactly the accepted updates went out.
    assert_eq!(
        watch.until_data("query-from-evil", WAIT),
        [
            "from-app",
            "from-app-referer",
            "from-app-443",
            "bearer-from-evil",
            "query-from-evil"
        ]
    );
}

#[test]
fn without_publish_origin_cookie_publishes_are_refused() {
    let hub = Hub::start(&["--jwt-key", KEY]);
    let star = all_token();
    let cookie = format!("mercureAuthorization={star}");
    let resp = publish(&hub, "", "x", &[("Cookie", &cookie), ("Origin", APP)]);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(
        resp.text().contains("--publish-origin https://app.example"),
        "{}",
        resp.text()
    );
    let resp = publish(&hub, "", "x", &[("Authorization", &bearer(&star))]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Subscribing with the cookie is not a publish: allowed.
    let _stream = hub.subscribe("topic=t", &[("Cookie", &cookie)]);
}

#[test]
fn publish_origins_from_the_environment_are_a_comma_separated_list() {
    let hub = Hub::start_env(
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
        let resp = publish(&hub, "", "x", &[("Cookie", &cookie), ("Origin", origin)]);
        assert_eq!(resp.status, status, "{origin}: {}", resp.text());
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
            sse(&["hub", "--listen", "127.0.0.1:0"])
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
    let hub = Hub::start(&["--cors-origin", "*", "--cors-origin", APP]);
    // Any origin: `*`, never a reflected origin with credentials.
    let resp = hub.get("/healthz", &[("Origin", EVIL)]);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(resp.header("access-control-allow-credentials"), None);
    let resp = publish(&hub, "", "x", &[("Origin", EVIL)]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(resp.header("access-control-allow-credentials"), None);
    let stream = hub.subscribe("topic=t", &[("Origin", EVIL)]);
    assert_eq!(stream.header("access-control-allow-origin"), Some("*"));
    assert_eq!(stream.header("access-control-allow-credentials"), None);
    let preflight = hub.options(
        HUB_PATH,
        &[("Origin", EVIL), ("Access-Control-Request-Method", "POST")],
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
    let resp = hub.get("/healthz", &[("Origin", APP)]);
    assert_eq!(resp.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        Some("true")
    );
    let preflight = hub.options(
        HUB_PATH,
        &[("Origin", APP), ("Access-Control-Request-Method", "GET")],
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
    let hub = Hub::start(&[]);
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
        let resp = healthz_for_host(addr, &host);
        assert_eq!(resp.status, 200, "Host: {host}: {}", resp.text());
    }
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("10.1.2.3:{port}"),
    ] {
        let resp = healthz_for_host(addr, &host);
        assert_eq!(resp.status, 421, "Host: {host}: {}", resp.text());
        assert!(resp.text().contains("--allowed-host"), "{}", resp.text());
        assert!(resp.text().contains("DNS rebinding"), "{}", resp.text());
    }
    // Refused on every route: nothing is published, no stream opens.
    let evil_host = format!("evil.example:{port}");
    let resp = hub.raw(&request(
        "POST",
        HUB_PATH,
        &with_form_type(&[("Host", &evil_host)]),
        b"topic=t&data=rebound",
    ));
    assert_eq!(resp.status, 421);
    let resp = hub.raw(&request(
        "GET",
        &format!("{HUB_PATH}?topic=t&lastEventID=earliest"),
        &[("Host", &evil_host)],
        b"",
    ));
    assert_eq!(resp.status, 421);
    let resp = hub.get("/metrics", &[]);
    assert!(
        resp.text().contains("sse_hub_updates_published_total 0"),
        "{}",
        resp.text()
    );

    // The request line and the Host header: HTTP/1.1 needs exactly one.
    let resp = hub.raw(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("Host"), "{}", resp.text());
    let two = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nHost: {addr}\r\n\r\n");
    assert_eq!(hub.raw(two.as_bytes()).status, 400);
    // HTTP/1.0 without Host (no browser sends that) is answered.
    let resp = hub.raw(b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn allowed_host_widens_the_list() {
    let hub = Hub::start(&["--allowed-host", "Hub.Example"]);
    for (host, status) in [
        ("hub.example", 200),
        ("HUB.EXAMPLE:443", 200),
        ("localhost", 200),
        ("other.example", 421),
        ("hub.example.evil", 421),
    ] {
        let resp = healthz_for_host(hub.addr, host);
        assert_eq!(resp.status, status, "Host: {host}: {}", resp.text());
    }
    drop(hub);
    let hub = Hub::start_env(&[], &[("SSE_HUB_ALLOWED_HOST", "a.example,b.example")]);
    for (host, status) in [("a.example", 200), ("b.example:1", 200), ("c.example", 421)] {
        let resp = healthz_for_host(hub.addr, host);
        assert_eq!(resp.status, status, "Host: {host}: {}", resp.text());
    }
}

#[test]
fn a_hub_on_every_address_checks_host_only_with_allowed_host() {
    let hub = Hub::start(&["--listen", "0.0.0.0:0"]);
    let addr = SocketAddr::from(([127, 0, 0, 1], hub.addr.port()));
    let resp = healthz_for_host(addr, "anything.example");
    assert_eq!(resp.status, 200, "{}", resp.text());
    drop(hub);
    let hub = Hub::start(&["--listen", "0.0.0.0:0", "--allowed-host", "hub.example"]);
    let addr = SocketAddr::from(([127, 0, 0, 1], hub.addr.port()));
    for (host, status) in [
        ("hub.example:8080", 200),
        ("127.0.0.1", 200),
        ("anything.example", 421),
    ] {
        let resp = healthz_for_host(addr, host);
        assert_eq!(resp.status, status, "Host: {host}: {}", resp.text());
    }
}

#[test]
fn curl_works_against_the_default_hub() {
    require("curl", "curl (Debian: `apt-get install curl`)");
    let hub = Hub::start(&[]);
    for url in [
        format!("{}/healthz", hub.url()),
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
            &format!("{}{HUB_PATH}", hub.url()),
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
    let hub = Hub::start_env(&["--jwt-key", KEY], &[("SSE_HUB_LOG", "debug")]);
    let star = all_token();
    let _stream = hub.subscribe(
        &format!("topic=t&authorization={star}&lastEventID=earliest"),
        &[],
    );
    let resp = publish(&hub, &format!("?authoriz%61tion={star}"), "x", &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    hub.wait_for_log("topic=t&authorization=REDACTED&lastEventID=earliest");
    hub.wait_for_log("?authoriz%61tion=REDACTED");
    let log = hub.log_text();
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
        let hub = Hub::start_env(&args, &env);
        assert!(
            hub.first_line
                .contains("redis://hubuser:REDACTED@127.0.0.1:1/0"),
            "{}",
            hub.first_line
        );
        let resp = publish(&hub, "", "x", &[]);
        assert_eq!(resp.status, 503, "{}", resp.text());
        assert!(!resp.text().contains(password), "{}", resp.text());
        let metrics = hub.get("/metrics", &[]).text();
        assert!(metrics.contains("sse_hub_backend_up 0"));
        assert!(!metrics.contains(password), "{metrics}");
        hub.wait_for_log("Redis unreachable");
        let log = hub.log_text();
        assert!(log.contains("Redis unreachable"), "{log}");
        assert!(!log.contains(password), "{log}");
    }
    // A URL the client refuses: the error says so, without the password.
    let (status, output) = run_bounded(
        &mut sse(&[
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
        sse(&["hub", "--help"])
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
    let hub = Hub::start(&["--jwt-key", KEY]);
    let later = token(
        json!({"mercure": {"publish": ["*"], "subscribe": ["*"]}, "nbf": now_secs() + 3600}),
        KEY,
    );
    let auth = bearer(&later);
    let resp = publish(&hub, "", "x", &[("Authorization", &auth)]);
    assert_eq!(resp.status, 401, "{}", resp.text());
    let refused = hub.open("topic=t", &[("Authorization", &auth)]);
    assert_eq!(refused.err().map(|r| r.status), Some(401));
    let started = token(
        json!({"mercure": {"publish": ["*"]}, "nbf": now_secs() - 10}),
        KEY,
    );
    let resp = publish(&hub, "", "x", &[("Authorization", &bearer(&started))]);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn another_authorization_scheme_is_401_not_a_fall_through() {
    let hub = Hub::start(&["--jwt-key", KEY, "--anonymous"]);
    let star = all_token();
    let query = format!("?authorization={star}");
    // A valid token in the query does not rescue a Basic header.
    let resp = publish(
        &hub,
        &query,
        "x",
        &[("Authorization", "Basic dXNlcjpwYXNz")],
    );
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert!(resp.text().contains("Bearer"), "{}", resp.text());
    // Nor a cookie (with a trusted origin even).
    let cookie = format!("mercureAuthorization={star}");
    let resp = publish(
        &hub,
        "",
        "x",
        &[("Authorization", "Token abc"), ("Cookie", &cookie)],
    );
    assert_eq!(resp.status, 401, "{}", resp.text());
    // A subscriber with another scheme is not anonymous either.
    let refused = hub.open(
        &format!("topic=t&authorization={star}"),
        &[("Authorization", "Basic dXNlcjpwYXNz")],
    );
    assert_eq!(refused.err().map(|r| r.status), Some(401));
    // Without the header, the query parameter works.
    let resp = publish(&hub, &query, "x", &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn a_short_hmac_key_is_warned_about_at_start() {
    let short = "tiny-key-16bytes";
    let hub = Hub::start(&["--jwt-key", short]);
    hub.wait_for_log("256 bits");
    let log = hub.log_text();
    assert!(log.contains("WARN"), "{log}");
    assert!(
        log.contains("16 bytes") && log.contains("shorter than 256 bits"),
        "{log}"
    );
    assert!(!log.contains(short), "the key itself is not logged: {log}");
    drop(hub);

    let hub = Hub::start(&["--jwt-key", KEY]);
    // The warning would come right after the first line, before the hub
    // answers anything.
    assert_eq!(hub.get("/healthz", &[]).status, 200);
    thread::sleep(Duration::from_millis(200));
    assert!(!hub.log_text().contains("256 bits"), "{}", hub.log_text());
}
