//! Authorization of draft-dunglas-mercure-08 / Mercure 1.0 clients by a
//! real `sse hub`, beside 0.x clients: RFC 9068 access tokens (the
//! conformance suite's own), RFC 6750 refusals, the
//! `__Secure-mercure_access_token` cookie and `--cookie-name`, RS256 with
//! `--jwt-public-key`, a JWK Set served over HTTP on 127.0.0.1 with key
//! rotation, separate publisher and subscriber keys, `--no-legacy-tokens`,
//! and keys that cannot be used.
//!
//! Every test starts its own hub (in-memory backend) on a free loopback
//! port and kills it when it ends. Every wait is bounded.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

mod common;

use common::WAIT;
use common::http::{HUB_PATH, Resp};
use common::hub::Hub;
use common::run::{run_bounded, sse};
use common::token::{
    AUDIENCE, CONFORMANCE_KEY, DRAFT08_FLAGS, ISSUER, access_token, bearer, conformance_token,
    data_path, detail, hs_access_token, now_secs, rsa_key, token,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const BOOK: &str = "https://example.com/books/1";

/// The `WWW-Authenticate` value of a refusal.
fn challenge(resp: &Resp) -> &str {
    resp.header("WWW-Authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate on {}: {}", resp.status, resp.text()))
}

/// Publishes `data` on [`BOOK`] (private when `private`) with these
/// header fields.
fn publish_book(hub: &Hub, data: &str, private: bool, headers: &[(&str, &str)]) -> Resp {
    let mut fields = vec![("topic", BOOK), ("data", data)];
    if private {
        fields.push(("private", "on"));
    }
    hub.publish(&fields, headers)
}

#[test]
fn the_conformance_suites_token_publishes_and_subscribes_privately() {
    let hub = Hub::start(&DRAFT08_FLAGS);
    assert!(
        hub.first_line.contains("0.x and access tokens"),
        "{}",
        hub.first_line
    );
    let auth = bearer(&conformance_token());
    let query = format!("match={}", "https%3A%2F%2Fexample.com%2Fbooks%2F1");
    let mut authorized = hub.subscribe(&query, &[("Authorization", &auth)]);
    let mut by_pattern = hub.subscribe(
        "match_urlpattern=https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid",
        &[("Authorization", &auth)],
    );
    let mut anonymous = hub.subscribe(&query, &[]);

    let resp = publish_book(&hub, "secret", true, &[("Authorization", &auth)]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    // A 0.x token keeps working on the same hub.
    let legacy = token(json!({"mercure": {"publish": ["*"]}}), CONFORMANCE_KEY);
    let resp = publish_book(
        &hub,
        "public",
        false,
        &[("Authorization", &bearer(&legacy))],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());

    assert_eq!(authorized.until_data("public", WAIT), ["secret", "public"]);
    assert_eq!(by_pattern.until_data("public", WAIT), ["secret", "public"]);
    assert_eq!(anonymous.until_data("public", WAIT), ["public"]);

    // The history keeps the private update for authorized subscribers
    // only.
    let mut late = hub.subscribe(
        &format!("{query}&last_event_id=earliest"),
        &[("Authorization", &auth)],
    );
    assert_eq!(late.until_data("public", WAIT), ["secret", "public"]);
    let mut late_anonymous = hub.subscribe(&format!("{query}&last_event_id=earliest"), &[]);
    assert_eq!(late_anonymous.until_data("public", WAIT), ["public"]);
}

#[test]
fn reserved_topics_are_a_bad_request_for_an_access_token_and_forbidden_for_0x() {
    let hub = Hub::start(&DRAFT08_FLAGS);
    let topic = "https://example.com/.well-known/mercure/subscriptions/a/b";
    let fields = [("topic", topic), ("data", "forged")];
    let resp = hub.publish(&fields, &[("Authorization", &bearer(&conformance_token()))]);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("reserved"), "{}", resp.text());
    let legacy = token(json!({"mercure": {"publish": ["*"]}}), CONFORMANCE_KEY);
    let resp = hub.publish(&fields, &[("Authorization", &bearer(&legacy))]);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(resp.text().contains("reserved"), "{}", resp.text());
    // Without a token, the token's refusal comes first.
    assert_eq!(hub.publish(&fields, &[]).status, 401);
}

#[test]
fn refusals_follow_rfc_6750() {
    // Without --anonymous: subscribers need a token too.
    let hub = Hub::start(
        &DRAFT08_FLAGS[..2]
            .iter()
            .chain(&DRAFT08_FLAGS[3..])
            .copied()
            .collect::<Vec<_>>(),
    );
    let mut watch = hub.subscribe(
        "topic=*",
        &[("Authorization", &bearer(&conformance_token()))],
    );

    // No token: 401 and a bare challenge.
    let none = publish_book(&hub, "x", false, &[]);
    assert_eq!((none.status, challenge(&none)), (401, "Bearer"));
    let none = hub.open("match=a", &[]).err().unwrap();
    assert_eq!((none.status, challenge(&none)), (401, "Bearer"));
    let basic = publish_book(&hub, "x", false, &[("Authorization", "Basic dXNlcjpwYXNz")]);
    assert_eq!((basic.status, challenge(&basic)), (401, "Bearer"));

    // A token that is not valid: 401 `invalid_token`, described, without
    // any part of the token.
    let forged = access_token(
        json!([detail(&["publish"], json!([{"match": "*"}]))]),
        Algorithm::HS256,
        &EncodingKey::from_secret(b"not the hub's key, but 32 bytes long"),
    );
    let stale = {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        let claims = json!({"aud": AUDIENCE, "iss": ISSUER, "exp": now_secs() - 10});
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(CONFORMANCE_KEY.as_bytes()),
        )
        .unwrap()
    };
    let other_hub = {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        let claims = json!({"aud": "https://other.example/.well-known/mercure", "iss": ISSUER, "exp": now_secs() + 60});
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(CONFORMANCE_KEY.as_bytes()),
        )
        .unwrap()
    };
    for (token, why) in [
        (forged.as_str(), "signature"),
        (stale.as_str(), "expired"),
        (other_hub.as_str(), "`aud`"),
        ("x.y.z", "header"),
    ] {
        let auth = bearer(token);
        for resp in [
            publish_book(&hub, "x", false, &[("Authorization", &auth)]),
            hub.open("match=a", &[("Authorization", &auth)])
                .err()
                .unwrap(),
        ] {
            assert_eq!(resp.status, 401, "{why}: {}", resp.text());
            let value = challenge(&resp);
            assert!(
                value.starts_with(
                    "Bearer error=\"invalid_token\", error_description=\"invalid token: "
                ),
                "{why}: {value}"
            );
            assert!(value.contains(why), "{why}: {value}");
            let signature = token.rsplit('.').next().unwrap();
            assert!(!value.contains(signature) && !resp.text().contains(signature));
        }
    }

    // A valid access token that does not cover the update: 403
    // `insufficient_scope`, and nothing is published.
    let subscriber_only = bearer(&hs_access_token(json!([detail(
        &["subscribe"],
        json!([{"match": "*"}])
    )])));
    let only_a = bearer(&hs_access_token(json!([detail(
        &["publish"],
        json!([{"match": "a"}])
    )])));
    for (auth, fields) in [
        (&subscriber_only, vec![("topic", "a"), ("data", "x")]),
        (&only_a, vec![("topic", "a"), ("topic", "b"), ("data", "x")]),
    ] {
        let resp = hub.publish(&fields, &[("Authorization", auth)]);
        assert_eq!(resp.status, 403, "{}", resp.text());
        assert!(
            challenge(&resp).starts_with("Bearer error=\"insufficient_scope\""),
            "{}",
            challenge(&resp)
        );
    }
    let resp = hub.publish(
        &[("topic", "a"), ("data", "by a")],
        &[("Authorization", &only_a)],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    // A 0.x token that does not cover it: 401, as 0.x hubs answer.
    let legacy = bearer(&token(
        json!({"mercure": {"publish": ["a"]}}),
        CONFORMANCE_KEY,
    ));
    let resp = hub.publish(
        &[("topic", "b"), ("data", "x")],
        &[("Authorization", &legacy)],
    );
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert!(
        resp.text()
            .contains("`mercure.publish` claim does not cover")
    );
    assert!(challenge(&resp).starts_with("Bearer error=\"insufficient_scope\""));

    assert_eq!(
        watch.until_data("by a", WAIT),
        ["by a"],
        "only the covered update"
    );
    let log = hub.log_text();
    assert!(!log.contains(forged.rsplit('.').next().unwrap()), "{log}");
}

#[test]
fn the_access_token_cookie_and_a_renamed_0x_cookie() {
    let page = "https://app.example";
    let mut flags = DRAFT08_FLAGS.to_vec();
    flags.extend(["--publish-origin", page, "--cookie-name", "hubToken"]);
    let hub = Hub::start(&flags);
    let access = conformance_token();
    let legacy = token(
        json!({"mercure": {"publish": ["*"], "subscribe": ["*"]}}),
        CONFORMANCE_KEY,
    );
    let query = "match=https%3A%2F%2Fexample.com%2Fbooks%2F1";
    let cookie = |name: &str, value: &str| format!("theme=dark; {name}={value}");
    let mut by_access_cookie = hub.subscribe(
        query,
        &[("Cookie", &cookie("__Secure-mercure_access_token", &access))],
    );
    let mut by_renamed_cookie = hub.subscribe(query, &[("Cookie", &cookie("hubToken", &legacy))]);
    // The 0.x cookie's usual name is not read any more: anonymous.
    let mut by_old_name = hub.subscribe(
        query,
        &[("Cookie", &cookie("mercureAuthorization", &legacy))],
    );

    // Publishing with a cookie needs a trusted page (CSRF).
    let by_cookie = |name: &str, value: &str, data: &str, origin: Option<&str>| {
        let jar = cookie(name, value);
        let mut headers = vec![("Cookie", jar.as_str())];
        if let Some(origin) = origin {
            headers.push(("Origin", origin));
        }
        publish_book(&hub, data, true, &headers)
    };
    let resp = by_cookie("__Secure-mercure_access_token", &access, "x", None);
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(
        resp.text()
            .contains("the __Secure-mercure_access_token cookie"),
        "{}",
        resp.text()
    );
    let resp = by_cookie("hubToken", &legacy, "x", Some("https://evil.example"));
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(
        resp.text().contains("the hubToken cookie"),
        "{}",
        resp.text()
    );
    let resp = by_cookie("__Secure-mercure_access_token", &access, "one", Some(page));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = by_cookie("hubToken", &legacy, "two", Some(page));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = by_cookie("mercureAuthorization", &legacy, "x", Some(page));
    assert_eq!(resp.status, 401, "{}", resp.text());

    // `Authorization: Bearer` goes first: a subscriber-only token there,
    // a publisher's in the cookie, is a subscriber-only publish.
    let subscriber_only = bearer(&hs_access_token(json!([detail(
        &["subscribe"],
        json!([{"match": "*"}])
    )])));
    let jar = cookie("__Secure-mercure_access_token", &access);
    let resp = publish_book(
        &hub,
        "x",
        false,
        &[
            ("Authorization", &subscriber_only),
            ("Cookie", &jar),
            ("Origin", page),
        ],
    );
    assert_eq!(resp.status, 403, "{}", resp.text());
    // Public, to end the streams' expectations.
    let resp = publish_book(&hub, "end", false, &[("Authorization", &bearer(&access))]);
    assert_eq!(resp.status, 200, "{}", resp.text());

    assert_eq!(
        by_access_cookie.until_data("end", WAIT),
        ["one", "two", "end"]
    );
    assert_eq!(
        by_renamed_cookie.until_data("end", WAIT),
        ["one", "two", "end"]
    );
    assert_eq!(by_old_name.until_data("end", WAIT), ["end"]);
}

#[test]
fn rs256_and_ps256_tokens_with_a_public_key_file() {
    let public = data_path("rsa-2048.pub.pem");
    let hub = Hub::start(&[
        "--jwt-public-key",
        &public,
        "--jwt-audience",
        AUDIENCE,
        "--jwt-issuer",
        ISSUER,
    ]);
    assert!(
        hub.first_line.contains("--jwt-public-key") && hub.first_line.contains("RS256"),
        "{}",
        hub.first_line
    );
    let key = rsa_key();
    let subscriber = access_token(
        json!([detail(&["subscribe"], json!([{"match_exact": BOOK}]))]),
        Algorithm::RS256,
        &key,
    );
    let mut stream = hub.subscribe(
        "match=https%3A%2F%2Fexample.com%2Fbooks%2F1",
        &[("Authorization", &bearer(&subscriber))],
    );
    let publisher = access_token(
        json!([detail(&["publish"], json!([{"match": "*"}]))]),
        Algorithm::PS256,
        &key,
    );
    let resp = publish_book(
        &hub,
        "secret",
        true,
        &[("Authorization", &bearer(&publisher))],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    // A 0.x token signed with RS512.
    let legacy = jsonwebtoken::encode(
        &Header::new(Algorithm::RS512),
        &json!({"mercure": {"publish": [BOOK]}}),
        &key,
    )
    .unwrap();
    let resp = publish_book(
        &hub,
        "by 0.x",
        false,
        &[("Authorization", &bearer(&legacy))],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(stream.until_data("by 0.x", WAIT), ["secret", "by 0.x"]);

    // The public key, known to all, used as an HMAC secret: refused.
    let pem = std::fs::read(&public).unwrap();
    let confused = access_token(
        json!([detail(&["publish"], json!([{"match": "*"}]))]),
        Algorithm::HS256,
        &EncodingKey::from_secret(&pem),
    );
    let resp = publish_book(&hub, "x", false, &[("Authorization", &bearer(&confused))]);
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert!(
        resp.text().contains("no key of this hub verifies HS256"),
        "{}",
        resp.text()
    );
}

/// A JWK Set server on 127.0.0.1: answers every request with the current
/// document and counts the requests.
struct JwksServer {
    url: String,
    document: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
}

impl JwksServer {
    /// Serves `document` over plain HTTP.
    fn start(document: String) -> JwksServer {
        JwksServer::start_with(document, None)
    }

    /// Serves `document` over https (`tls`: the server's configuration,
    /// its certificate for `localhost`) or plain HTTP.
    fn start_with(document: String, tls: Option<Arc<rustls::ServerConfig>>) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}/jwks.json"),
            None => format!("http://127.0.0.1:{port}/jwks.json"),
        };
        let document = Arc::new(Mutex::new(document));
        let requests = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), requests.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(tcp) = stream else { break };
                let _ = tcp.set_read_timeout(Some(WAIT));
                let mut stream: Box<dyn ReadWrite> = match &tls {
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                            continue;
                        };
                        Box::new(rustls::StreamOwned::new(conn, tcp))
                    }
                    None => Box::new(tcp),
                };
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let body = doc.lock().unwrap().clone();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/jwk-set+json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.flush();
            }
        });
        JwksServer {
            url,
            document,
            requests,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn serve(&self, keys: &[serde_json::Value]) {
        *self.document.lock().unwrap() = json!({ "keys": keys }).to_string();
    }
}

/// A byte stream both ways: a TCP connection, or TLS over one.
trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

/// A new P-256 key pair: its signing key and its JWK (with `kid`).
fn p256(kid: &str) -> (EncodingKey, serde_json::Value) {
    use base64::Engine as _;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = pair.public_key_raw();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..65]),
    });
    (EncodingKey::from_ec_der(&pair.serialize_der()), jwk)
}

/// A new Ed25519 key pair: its signing key and its JWK (with `kid`).
fn ed25519(kid: &str) -> (EncodingKey, serde_json::Value) {
    use base64::Engine as _;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64.encode(pair.public_key_raw())});
    (EncodingKey::from_ed_der(&pair.serialize_der()), jwk)
}

#[test]
fn a_jwk_set_served_over_http_with_key_rotation() {
    let (first, first_jwk) = p256("2024-1");
    let (second, second_jwk) = ed25519("2024-2");
    let server = JwksServer::start(json!({"keys": [first_jwk]}).to_string());
    let hub = Hub::start(&["--jwks", &server.url, "--jwks-refresh", "1s"]);
    assert_eq!(server.requests(), 1, "fetched once at start");
    assert!(hub.first_line.contains(&server.url), "{}", hub.first_line);
    let signed = |alg: Algorithm, kid: &str, key: &EncodingKey| {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        let claims =
            json!({"mercure": {"publish": ["*"], "subscribe": ["*"]}, "exp": now_secs() + 600});
        bearer(&jsonwebtoken::encode(&header, &claims, key).unwrap())
    };
    let by_first = signed(Algorithm::ES256, "2024-1", &first);
    let by_second = signed(Algorithm::EdDSA, "2024-2", &second);
    let mut stream = hub.subscribe("topic=t", &[("Authorization", &by_first)]);
    let publish = |auth: &str, data: &str| {
        hub.publish(
            &[("topic", "t"), ("data", data)],
            &[("Authorization", auth)],
        )
    };
    assert_eq!(publish(&by_first, "one").status, 200);
    assert_eq!(server.requests(), 1, "a known key fetches nothing");

    // The issuer rotates: the second key appears, the first goes. A token
    // naming the new key makes the hub fetch the set again (once the
    // interval since the last fetch has passed).
    server.serve(&[second_jwk]);
    thread::sleep(Duration::from_millis(1100));
    let resp = publish(&by_second, "two");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(server.requests(), 2);
    // The first key is gone with the old set.
    let resp = publish(&by_first, "x");
    assert_eq!(resp.status, 401, "{}", resp.text());

    // A flood of tokens naming unknown keys: refused, and at most one
    // fetch per interval (the flood lasts well under two intervals).
    let started = std::time::Instant::now();
    for i in 0..40 {
        let forged = signed(Algorithm::EdDSA, &format!("unknown-{i}"), &second);
        assert_eq!(publish(&forged, "x").status, 401);
    }
    let elapsed = started.elapsed();
    let fetches = server.requests() - 2;
    assert!(
        fetches <= 1 + elapsed.as_secs() as usize,
        "{fetches} fetches in {elapsed:?}"
    );
    assert_eq!(stream.until_data("two", WAIT), ["one", "two"]);
    hub.assert_healthy();
}

#[test]
fn a_jwk_set_over_https_with_the_systems_trust() {
    let pki = common::pki::Pki::new();
    let (key, jwk) = p256("tls-1");
    let server = JwksServer::start_with(
        json!({ "keys": [jwk] }).to_string(),
        Some(pki.server.clone()),
    );
    // Trusted through SSL_CERT_FILE, as any https client of the hub.
    let ca = pki.ca_file.display().to_string();
    let hub = Hub::start_env(&["--jwks", &server.url], &[("SSL_CERT_FILE", &ca)]);
    assert_eq!(server.requests(), 1);
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("tls-1".into());
    let claims = json!({"mercure": {"publish": ["*"]}});
    let auth = bearer(&jsonwebtoken::encode(&header, &claims, &key).unwrap());
    let resp = hub.publish(
        &[("topic", "t"), ("data", "x")],
        &[("Authorization", &auth)],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    drop(hub);

    // A certificate the hub does not trust (another authority's): the
    // start stops, saying why.
    let other = common::pki::Pki::new();
    let (status, output) = run_bounded(
        sse(&["hub", "--listen", "127.0.0.1:0", "--jwks", &server.url])
            .env("SSL_CERT_FILE", &other.ca_file),
        WAIT,
    );
    assert_eq!(status.code(), Some(1), "{output}");
    let expected = format!("sse hub: error: --jwks {}: cannot be fetched", server.url);
    assert!(
        output.starts_with(&expected) && output.contains("certificate"),
        "{output}"
    );
}

#[test]
fn publishers_and_subscribers_with_keys_of_their_own() {
    let publisher_key = "publisher-key-0123456789abcdef0123";
    let public = data_path("rsa-2048.pub.pem");
    let hub = Hub::start(&[
        "--publisher-jwt-key",
        publisher_key,
        "--subscriber-jwt-public-key",
        &public,
    ]);
    assert!(
        hub.first_line.contains(
            "publishers --publisher-jwt-key (HMAC); subscribers --subscriber-jwt-public-key"
        ),
        "{}",
        hub.first_line
    );
    let claims = json!({"mercure": {"publish": ["*"], "subscribe": ["*"]}});
    let by_publisher_key = bearer(&token(claims.clone(), publisher_key));
    let by_subscriber_key =
        bearer(&jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &rsa_key()).unwrap());
    let mut stream = hub.subscribe("topic=t", &[("Authorization", &by_subscriber_key)]);
    let refused = hub.open("topic=t", &[("Authorization", &by_publisher_key)]);
    assert_eq!(
        refused.err().map(|r| r.status),
        Some(401),
        "a publisher's key does not let in subscribers"
    );
    let resp = hub.publish(
        &[("topic", "t"), ("data", "x")],
        &[("Authorization", &by_subscriber_key)],
    );
    assert_eq!(
        resp.status,
        401,
        "a subscriber's key does not publish: {}",
        resp.text()
    );
    let resp = hub.publish(
        &[("topic", "t"), ("data", "private"), ("private", "on")],
        &[("Authorization", &by_publisher_key)],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(stream.until_data("private", WAIT), ["private"]);
}

#[test]
fn access_tokens_only() {
    let mut flags = DRAFT08_FLAGS.to_vec();
    flags.push("--no-legacy-tokens");
    let hub = Hub::start(&flags);
    assert!(
        hub.first_line.contains("access tokens only"),
        "{}",
        hub.first_line
    );
    let legacy = bearer(&token(
        json!({"mercure": {"publish": ["*"]}}),
        CONFORMANCE_KEY,
    ));
    let resp = publish_book(&hub, "x", false, &[("Authorization", &legacy)]);
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert!(
        resp.text().contains("--no-legacy-tokens"),
        "{}",
        resp.text()
    );
    let resp = publish_book(
        &hub,
        "x",
        false,
        &[("Authorization", &bearer(&conformance_token()))],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn unusable_keys_stop_the_start_with_one_sentence() {
    let private = data_path("rsa-2048.key.pem");
    for (args, expected) in [
        (
            vec!["--jwt-public-key", private.as_str()],
            "--jwt-public-key ",
        ),
        (
            vec!["--jwt-public-key", "/nonexistent/key.pem"],
            "--jwt-public-key /nonexistent/key.pem: cannot be read",
        ),
        (
            vec!["--jwks", "/nonexistent/jwks.json"],
            "--jwks /nonexistent/jwks.json: cannot be read",
        ),
        (
            // Nothing listens on port 1.
            vec!["--jwks", "http://127.0.0.1:1/jwks.json"],
            "--jwks http://127.0.0.1:1/jwks.json: cannot be fetched",
        ),
        (
            vec!["--jwt-key", CONFORMANCE_KEY, "--jwt-audience", AUDIENCE],
            "--jwt-audience needs --jwt-issuer",
        ),
        (
            vec!["--jwt-key", CONFORMANCE_KEY, "--no-legacy-tokens"],
            "--no-legacy-tokens leaves the hub no token to take",
        ),
        (
            vec!["--publisher-jwt-key", CONFORMANCE_KEY],
            "no key verifies subscribers' tokens",
        ),
        (
            vec!["--jwt-key", CONFORMANCE_KEY, "--cookie-name", "a b"],
            "--cookie-name must be a cookie name",
        ),
    ] {
        let mut command_args = vec!["hub", "--listen", "127.0.0.1:0"];
        command_args.extend(&args);
        let (status, output) = run_bounded(&mut sse(&command_args), WAIT);
        assert_eq!(status.code(), Some(1), "{args:?}: {output}");
        let output = output.trim();
        assert_eq!(output.lines().count(), 1, "{args:?}: one line: {output}");
        assert!(
            output.starts_with(&format!("sse hub: error: {expected}")),
            "{args:?}: {output}"
        );
    }
}

#[test]
fn help_never_shows_a_key_from_the_environment() {
    let secrets = [
        ("SSE_HUB_JWT_KEY", "jwt-secret-value-1a2b"),
        ("SSE_HUB_PUBLISHER_JWT_KEY", "publisher-secret-value-3c4d"),
        ("SSE_HUB_SUBSCRIBER_JWT_KEY", "subscriber-secret-value-5e6f"),
        (
            "SSE_HUB_JWKS",
            "https://user:jwks-secret-value-7a8b@idp.example/jwks",
        ),
        (
            "SSE_HUB_PUBLISHER_JWKS",
            "https://idp.example/jwks?key=publisher-jwks-secret-9c",
        ),
        (
            "SSE_HUB_SUBSCRIBER_JWKS",
            "https://idp.example/jwks?key=subscriber-jwks-secret-0d",
        ),
    ];
    let mut command = sse(&["hub", "--help"]);
    for (name, value) in secrets {
        command.env(name, value);
    }
    let (status, output) = run_bounded(&mut command, WAIT);
    assert!(status.success(), "{output}");
    for (name, value) in secrets {
        assert!(output.contains(name), "{name} is named: {output}");
        let secret = value
            .rsplit(['=', ':'])
            .next()
            .unwrap()
            .split('@')
            .next()
            .unwrap();
        assert!(
            !output.contains(secret),
            "{name}'s value is shown: {output}"
        );
    }
    for flag in [
        "--jwt-public-key",
        "--jwks",
        "--publisher-jwt-key",
        "--subscriber-jwt-key",
        "--jwt-audience",
        "--jwt-issuer",
        "--no-legacy-tokens",
        "--cookie-name",
        "--jwks-refresh",
    ] {
        assert!(output.contains(flag), "{flag} is documented: {output}");
    }
}

#[test]
fn tokens_in_the_access_token_parameter_are_not_logged() {
    let hub = Hub::start_env(&DRAFT08_FLAGS, &[("SSE_HUB_LOG", "debug")]);
    let token = conformance_token();
    let mut stream = hub.subscribe(&format!("match=t&access_token={token}"), &[]);
    let resp = hub.post_to(
        &format!("{HUB_PATH}?access_token={token}"),
        b"topic=t&data=by+query&private=on",
        &[],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        stream.event().data(),
        "by query",
        "the query's token authorizes the stream"
    );
    hub.wait_for_log("access_token=REDACTED");
    let log = hub.log_text();
    let signature = token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "a token was logged: {log}");
}
