//! Authorization by a real `sse hub` started with `--jwt-key`: the tokens
//! publishers and subscribers need, where a token may be sent, private
//! updates, and streams that end when their token expires.
//!
//! Every test starts its own hub (in-memory backend) on a free loopback
//! port and kills it when it ends. Every wait is bounded.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;

use common::WAIT;
use common::http::{HUB_PATH, form};
use common::hub::Hub;
use common::token::{KEY, bearer, claims_token, now_secs, sign, token};
use jsonwebtoken::Algorithm;
use serde_json::json;

#[test]
fn publishers_need_a_valid_token_covering_every_topic() {
    let page = "https://app.example";
    let hub = Hub::start(&["--jwt-key", KEY, "--publish-origin", page]);
    let mut watch = hub.subscribe(
        "topic=*",
        &[("Authorization", &bearer(&claims_token(&[], &["*"])))],
    );
    let fields = [("topic", "a"), ("data", "d")];
    let status = |headers: &[(&str, &str)]| hub.publish(&fields, headers).status;

    assert_eq!(status(&[]), 401, "no token");
    let forged = token(json!({"mercure": {"publish": ["*"]}}), "another key");
    assert_eq!(
        status(&[("Authorization", &bearer(&forged))]),
        401,
        "forged"
    );
    let expired = token(
        json!({"mercure": {"publish": ["*"]}, "exp": now_secs() - 60}),
        KEY,
    );
    assert_eq!(
        status(&[("Authorization", &bearer(&expired))]),
        401,
        "expired"
    );
    let none = token(json!({"mercure": {"subscribe": ["*"]}}), KEY);
    assert_eq!(
        status(&[("Authorization", &bearer(&none))]),
        401,
        "no publish claim"
    );
    let unrelated = token(json!({"sub": "x"}), KEY);
    assert_eq!(
        status(&[("Authorization", &bearer(&unrelated))]),
        401,
        "no mercure claim"
    );
    // An HMAC key verifies HS256, HS384 and HS512, and nothing else: an
    // RS256 header over an HMAC signature (algorithm confusion) is
    // refused, and so is an unsigned token.
    let hs512 = sign(
        Algorithm::HS512,
        &json!({"mercure": {"publish": ["b"]}}),
        KEY,
    );
    let hs512_only_b = hub.publish(
        &[("topic", "a"), ("data", "d")],
        &[("Authorization", &bearer(&hs512))],
    );
    assert_eq!(
        hs512_only_b.status, 401,
        "HS512 is verified, `b` does not cover `a`"
    );
    assert!(
        hs512_only_b.text().contains("does not cover"),
        "{}",
        hs512_only_b.text()
    );
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let confused = {
        let signed = format!(
            "{}.{}",
            b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64.encode(br#"{"mercure":{"publish":["*"]}}"#)
        );
        let mac = jsonwebtoken::crypto::sign(
            signed.as_bytes(),
            &jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{signed}.{mac}")
    };
    assert_eq!(
        status(&[("Authorization", &bearer(&confused))]),
        401,
        "RS256 header, HMAC signature"
    );
    let unsigned = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(br#"{"mercure":{"publish":["*"]}}"#)
    );
    assert_eq!(
        status(&[("Authorization", &bearer(&unsigned))]),
        401,
        "alg none"
    );

    // Selectors must cover every topic.
    let only_a = claims_token(&["a"], &[]);
    let two = hub.publish(
        &[("topic", "a"), ("topic", "b"), ("data", "d")],
        &[("Authorization", &bearer(&only_a))],
    );
    assert_eq!(two.status, 401, "`a` does not cover `b`");
    let one = hub.publish(
        &[("topic", "a"), ("data", "by a")],
        &[("Authorization", &bearer(&only_a))],
    );
    assert_eq!(one.status, 200);
    let ab = claims_token(&["a", "b"], &[]);
    let both = hub.publish(
        &[("topic", "a"), ("topic", "b"), ("data", "by ab")],
        &[("Authorization", &bearer(&ab))],
    );
    assert_eq!(both.status, 200);
    let star = claims_token(&["*"], &[]);
    let any = hub.publish(
        &[("topic", "x"), ("topic", "y"), ("data", "by star")],
        &[("Authorization", &bearer(&star))],
    );
    assert_eq!(any.status, 200);

    // The token's other places: the query parameter and the cookie.
    let by_query = hub.post_to(
        &format!("{HUB_PATH}?{}", form(&[("authorization", &star)])),
        form(&[("topic", "q"), ("data", "by query")]).as_bytes(),
        &[],
    );
    assert_eq!(by_query.status, 200, "{}", by_query.text());
    // (The cookie needs a page of a --publish-origin: hub_security.rs.)
    let cookie = format!("theme=dark; mercureAuthorization={star}; other=1");
    let by_cookie = hub.publish(
        &[("topic", "c"), ("data", "by cookie")],
        &[("Cookie", &cookie), ("Origin", page)],
    );
    assert_eq!(by_cookie.status, 200, "{}", by_cookie.text());
    // Bearer wins over a bad cookie.
    let both_places = hub.publish(
        &[("topic", "c"), ("data", "bearer first")],
        &[
            ("Authorization", &bearer(&star)),
            ("Cookie", &format!("mercureAuthorization={forged}")),
        ],
    );
    assert_eq!(both_places.status, 200);

    // Garbage never crashes the hub.
    let huge = "A".repeat(6 * 1024);
    for junk in [
        "Bearer x.y.z".to_owned(),
        "Bearer ".to_owned(),
        "Bearer".to_owned(),
        "Basic dXNlcjpwYXNz".to_owned(),
        format!("Bearer {huge}.{huge}"),
        "Bearer ....".to_owned(),
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30".to_owned(),
    ] {
        assert_eq!(status(&[("Authorization", &junk)]), 401, "{:.40}", junk);
    }
    // A token too large for the request head: 431, not a crash.
    let too_big = format!("Bearer {}", "A".repeat(130 * 1024));
    assert_eq!(status(&[("Authorization", &too_big)]), 431);
    let mut raw = b"POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: Bearer \xff\xfe\x80abc\r\nContent-Length: 12\r\nConnection: close\r\n\r\ntopic=a&data".to_vec();
    assert_eq!(hub.raw(&raw).status, 401, "non-UTF-8 token");
    raw = b"GET /.well-known/mercure?topic=a HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: mercureAuthorization=\xff\xff\r\nConnection: close\r\n\r\n".to_vec();
    assert_eq!(hub.raw(&raw).status, 401, "non-UTF-8 cookie");
    hub.assert_healthy();

    // Exactly the authorized updates went out.
    let got = watch.until_data("bearer first", WAIT);
    assert_eq!(
        got,
        [
            "by a",
            "by ab",
            "by star",
            "by query",
            "by cookie",
            "bearer first"
        ]
    );
}

#[test]
fn subscribers_need_a_token_unless_anonymous() {
    let hub = Hub::start(&["--jwt-key", KEY]);
    assert_eq!(hub.open("topic=a", &[]).err().map(|r| r.status), Some(401));
    let forged = token(json!({"mercure": {"subscribe": ["*"]}}), "wrong");
    let resp = hub.open("topic=a", &[("Authorization", &bearer(&forged))]);
    assert_eq!(resp.err().map(|r| r.status), Some(401));
    let expired = token(
        json!({"mercure": {"subscribe": ["*"]}, "exp": now_secs() - 60}),
        KEY,
    );
    let resp = hub.open("topic=a", &[("Authorization", &bearer(&expired))]);
    assert_eq!(resp.err().map(|r| r.status), Some(401));
    let resp = hub.open("topic=a", &[("Authorization", "Bearer x.y.z")]);
    assert_eq!(resp.err().map(|r| r.status), Some(401));
    // A valid token, even without a subscribe claim, in each place.
    let plain = token(json!({"mercure": {}}), KEY);
    let mut a = hub.subscribe("topic=a", &[("Authorization", &bearer(&plain))]);
    let mut b = hub.subscribe(&form(&[("topic", "a"), ("authorization", &plain)]), &[]);
    let mut c = hub.subscribe(
        "topic=a",
        &[("Cookie", &format!("mercureAuthorization={plain}"))],
    );
    let publisher = claims_token(&["*"], &[]);
    let resp = hub.publish(
        &[("topic", "a"), ("data", "public")],
        &[("Authorization", &bearer(&publisher))],
    );
    assert_eq!(resp.status, 200);
    for s in [&mut a, &mut b, &mut c] {
        assert_eq!(s.event().data(), "public");
    }
    drop(hub);

    let hub = Hub::start(&["--jwt-key", KEY, "--anonymous"]);
    assert!(
        hub.first_line.to_lowercase().contains("anonymous"),
        "{}",
        hub.first_line
    );
    let mut anon = hub.subscribe("topic=a", &[]);
    // A bad token is still refused.
    let resp = hub.open("topic=a", &[("Authorization", &bearer(&forged))]);
    assert_eq!(
        resp.err().map(|r| r.status),
        Some(401),
        "anonymous does not excuse a forged token"
    );
    // Publishing still needs a token.
    assert_eq!(
        hub.publish(&[("topic", "a"), ("data", "x")], &[]).status,
        401
    );
    let auth = bearer(&publisher);
    let headers = [("Authorization", auth.as_str())];
    assert_eq!(
        hub.publish(
            &[("topic", "a"), ("data", "secret"), ("private", "on")],
            &headers
        )
        .status,
        200
    );
    assert_eq!(
        hub.publish(&[("topic", "a"), ("data", "public")], &headers)
            .status,
        200
    );
    assert_eq!(
        anon.until_data("public", WAIT),
        ["public"],
        "anonymous: public updates only"
    );
}

#[test]
fn private_updates_reach_only_authorized_subscribers() {
    let hub = Hub::start(&["--jwt-key", KEY, "--anonymous"]);
    let sub = |selectors: &[&str]| bearer(&claims_token(&[], selectors));
    let mut room = hub.subscribe("topic=room", &[("Authorization", &sub(&["room"]))]);
    let mut other = hub.subscribe("topic=room", &[("Authorization", &sub(&["other"]))]);
    let mut star = hub.subscribe("topic=room", &[("Authorization", &sub(&["*"]))]);
    let mut anon = hub.subscribe("topic=room", &[]);
    // Authorized for the second topic of the update only.
    let mut second = hub.subscribe("topic=*", &[("Authorization", &sub(&["audit"]))]);
    // Authorized, but not subscribed to the topic.
    let mut elsewhere = hub.subscribe("topic=elsewhere", &[("Authorization", &sub(&["*"]))]);

    let auth = bearer(&claims_token(&["*"], &[]));
    let h = [("Authorization", auth.as_str())];
    let publish = |fields: &[(&str, &str)]| {
        let resp = hub.publish(fields, &h);
        assert_eq!(resp.status, 200, "{}", resp.text());
    };
    publish(&[("topic", "room"), ("data", "secret"), ("private", "on")]);
    publish(&[
        ("topic", "room"),
        ("topic", "audit"),
        ("data", "audited"),
        ("private", ""),
    ]);
    publish(&[("topic", "room"), ("topic", "elsewhere"), ("data", "end")]);

    assert_eq!(room.until_data("end", WAIT), ["secret", "audited", "end"]);
    assert_eq!(star.until_data("end", WAIT), ["secret", "audited", "end"]);
    assert_eq!(other.until_data("end", WAIT), ["end"]);
    assert_eq!(anon.until_data("end", WAIT), ["end"]);
    assert_eq!(second.until_data("end", WAIT), ["audited", "end"]);
    assert_eq!(elsewhere.until_data("end", WAIT), ["end"]);

    // History honours privacy too.
    let mut late_anon = hub.subscribe("topic=room", &[("Last-Event-ID", "earliest")]);
    assert_eq!(late_anon.until_data("end", WAIT), ["end"]);
    let mut late_room = hub.subscribe(
        "topic=room&lastEventID=earliest",
        &[("Authorization", &sub(&["room"]))],
    );
    assert_eq!(
        late_room.until_data("end", WAIT),
        ["secret", "audited", "end"]
    );
}

#[test]
fn an_expiring_token_ends_the_stream_at_its_exp() {
    let hub = Hub::start(&["--jwt-key", KEY, "--heartbeat", "0"]);
    let exp = now_secs() + 2;
    let short = token(json!({"mercure": {"subscribe": ["*"]}, "exp": exp}), KEY);
    let started = Instant::now();
    let mut s = hub.subscribe("topic=t", &[("Authorization", &bearer(&short))]);
    let long = hub.subscribe(
        "topic=t",
        &[("Authorization", &bearer(&claims_token(&[], &["*"])))],
    );
    let publisher = bearer(&claims_token(&["*"], &[]));
    hub.publish(
        &[("topic", "t"), ("data", "before")],
        &[("Authorization", &publisher)],
    );
    assert_eq!(s.event().data(), "before");
    assert!(
        s.wait_end(Duration::from_secs(5)),
        "the stream outlived its token"
    );
    let ended = started.elapsed();
    let at_exp = UNIX_EPOCH + Duration::from_secs(exp);
    let late = SystemTime::now()
        .duration_since(at_exp)
        .unwrap_or(Duration::ZERO);
    assert!(
        SystemTime::now() + Duration::from_millis(50) >= at_exp,
        "ended {:?} before exp",
        at_exp.duration_since(SystemTime::now()).unwrap_or_default()
    );
    assert!(
        late < Duration::from_millis(1500),
        "ended {late:?} after exp"
    );
    assert!(ended < Duration::from_secs(4));
    // The other stream is still there.
    let mut long = long;
    hub.publish(
        &[("topic", "t"), ("data", "after")],
        &[("Authorization", &publisher)],
    );
    assert_eq!(long.until_data("after", WAIT), ["before", "after"]);
}
