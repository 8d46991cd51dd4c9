//! The authorization rules end to end: tokens of each algorithm family
//! signed with real keys (fixed test keys under `testdata/jwt`), both
//! token generations, key confusion, where tokens are found, and key sets
//! read from files and from a small HTTP server on 127.0.0.1.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::der::{self, PublicKey};
use super::keys::tests::testdata;
use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const CONFORMANCE_KEY: &str = "!ChangeThisMercureHubJWTSecretKey!";
const AUDIENCE: &str = "https://localhost/.well-known/mercure";
const ISSUER: &str = "https://localhost";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The DER of the only PEM block of a test key file.
fn der_of(file: &str) -> Vec<u8> {
    der::pem_blocks(&testdata(file)).unwrap().remove(0).der
}

/// The signing key of a test key file (PKCS#1 for RSA, PKCS#8 else).
fn signing_key(file: &str) -> EncodingKey {
    let der = der_of(file);
    if file.starts_with("rsa") {
        EncodingKey::from_rsa_der(&der)
    } else if file.starts_with("ec") {
        EncodingKey::from_ec_der(&der)
    } else {
        EncodingKey::from_ed_der(&der)
    }
}

fn sign_with(header: Header, claims: &serde_json::Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs(claims: serde_json::Value, key: &str) -> String {
    sign_with(
        Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
}

/// A token of exactly this header and payload text, signed with `key`.
fn raw(header: &str, payload: &str, key: &EncodingKey, alg: Algorithm) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signed = format!("{}.{}", b64.encode(header), b64.encode(payload));
    let signature = jsonwebtoken::crypto::sign(signed.as_bytes(), key, alg).unwrap();
    format!("{signed}.{signature}")
}

fn at_header(alg: Algorithm) -> Header {
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".to_owned());
    header
}

/// A configuration with these settings.
fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    edit(&mut config);
    config
}

/// The hub's authorization for `config` (on a runtime of its own: key
/// sets may be fetched).
fn start(config: &Config) -> Auth {
    runtime()
        .block_on(Auth::start(config, Arc::default()))
        .unwrap()
        .expect("keys are configured")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn path(file: &str) -> std::path::PathBuf {
    format!("{}/testdata/jwt/{file}", env!("CARGO_MANIFEST_DIR")).into()
}

#[test]
fn verifies_and_reads_mercure_claims() {
    let auth = Auth::new("k", Arc::default());
    let token = hs(
        json!({"mercure": {"publish": ["*"], "subscribe": ["a", "b"]}}),
        "k",
    );
    let claims = auth.verify(&token, Role::Publisher).unwrap();
    assert_eq!(claims.publish, [Selector::Any]);
    assert_eq!(claims.kind, TokenKind::Legacy);
    assert_eq!(claims.subscribe.len(), 2);
    assert!(covers(&claims.subscribe, &["a".into(), "b".into()]));
    assert!(!covers(&claims.subscribe, &["a".into(), "c".into()]));
}

#[test]
fn claims_hold_templates() {
    let auth = Auth::new("k", Arc::default());
    let token = hs(
        json!({"mercure": {
            "publish": ["https://example.com/books/{id}"],
            "subscribe": ["https://example.com/{+any}", "/exact"],
        }}),
        "k",
    );
    let claims = auth.verify(&token, Role::Subscriber).unwrap();
    let book = "https://example.com/books/1".to_owned();
    assert!(covers(&claims.publish, std::slice::from_ref(&book)));
    assert!(!covers(
        &claims.publish,
        &["https://example.com/books/1/x".into()]
    ));
    assert!(covers(&claims.subscribe, &[book, "/exact".into()]));
    assert!(!covers(&claims.subscribe, &["/exact/1".into()]));

    let bad = hs(
        json!({"mercure": {"subscribe": ["https://example.com/{id"]}}),
        "k",
    );
    let Err(TokenError::Grant(why)) = auth.verify(&bad, Role::Subscriber) else {
        panic!("a token with a malformed template was accepted");
    };
    assert!(
        why.starts_with(
            "the `mercure.subscribe` claim holds an invalid selector: the `{` at byte 20"
        ),
        "{why}"
    );
}

#[test]
fn hmac_keys_verify_hs256_hs384_and_hs512_only() {
    let auth = Auth::new(SECRET, Arc::default());
    let claims = json!({"mercure": {"publish": ["*"]}});
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token = sign_with(
            Header::new(alg),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        );
        assert!(auth.verify(&token, Role::Publisher).is_ok(), "{alg:?}");
    }
    let forged = hs(claims.clone(), "another key");
    assert_eq!(
        auth.verify(&forged, Role::Publisher),
        Err(TokenError::Signature("HS256"))
    );
    let rs = sign_with(
        Header::new(Algorithm::RS256),
        &claims,
        &signing_key("rsa-2048.key.pem"),
    );
    assert_eq!(
        auth.verify(&rs, Role::Publisher),
        Err(TokenError::NoKey {
            alg: "RS256",
            role: "publishers",
            kid: false
        })
    );
    assert_eq!(
        auth.verify("garbage", Role::Publisher),
        Err(TokenError::NotCompact)
    );
    assert!(auth.verify("a.b.c", Role::Publisher).is_err());
}

#[test]
fn every_public_key_family_verifies_its_own_algorithms() {
    let claims = json!({"mercure": {"publish": ["*"]}, "exp": now() + 60});
    let cases: &[(&str, &str, &[Algorithm])] = &[
        (
            "rsa-2048.pub.pem",
            "rsa-2048.key.pem",
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
        ),
        (
            "rsa-2048.pkcs1.pub.pem",
            "rsa-2048.key.pem",
            &[Algorithm::RS256],
        ),
        ("rsa-2048.cert.pem", "rsa-2048.key.pem", &[Algorithm::PS512]),
        ("ec-p256.pub.pem", "ec-p256.key.pem", &[Algorithm::ES256]),
        ("ec-p256.cert.pem", "ec-p256.key.pem", &[Algorithm::ES256]),
        ("ec-p384.pub.pem", "ec-p384.key.pem", &[Algorithm::ES384]),
        ("ed25519.pub.pem", "ed25519.key.pem", &[Algorithm::EdDSA]),
    ];
    for (public, private, algorithms) in cases {
        let auth = start(&config(|c| c.jwt_public_key = Some(path(public))));
        for alg in *algorithms {
            let token = sign_with(Header::new(*alg), &claims, &signing_key(private));
            let verified = auth.verify(&token, Role::Publisher);
            assert!(verified.is_ok(), "{public} {alg:?}: {verified:?}");
            // Tampered: refused.
            let mut parts: Vec<&str> = token.split('.').collect();
            let other = hs(json!({"mercure": {"publish": ["*", "x"]}}), "x");
            parts[1] = other.split('.').nth(1).unwrap();
            assert_eq!(
                auth.verify(&parts.join("."), Role::Publisher),
                Err(TokenError::Signature(keys::name_of(*alg))),
                "{public} {alg:?} tampered"
            );
        }
        // A token of another key of the same type: refused.
        let other = if public.starts_with("rsa") {
            sign_with(
                Header::new(Algorithm::RS256),
                &claims,
                &signing_key("rsa-2048-other.key.pem"),
            )
        } else {
            hs(claims.clone(), SECRET)
        };
        assert!(auth.verify(&other, Role::Publisher).is_err(), "{public}");
    }
}

#[test]
fn no_algorithm_confusion() {
    // An attacker who knows the RSA public key signs HS256 with it, as if
    // it were an HMAC secret: the RSA key never verifies HS*.
    let auth = start(&config(|c| {
        c.jwt_public_key = Some(path("rsa-2048.pub.pem"))
    }));
    let claims = json!({"mercure": {"publish": ["*"]}});
    for secret in [
        testdata("rsa-2048.pub.pem").into_bytes(),
        der_of("rsa-2048.pub.pem"),
    ] {
        for alg in [Algorithm::HS256, Algorithm::HS512] {
            let token = sign_with(
                Header::new(alg),
                &claims,
                &EncodingKey::from_secret(&secret),
            );
            assert!(
                matches!(
                    auth.verify(&token, Role::Publisher),
                    Err(TokenError::NoKey { .. })
                ),
                "{alg:?}"
            );
        }
    }
    // An EC key never verifies RS256, an HMAC secret never ES256.
    let ec = start(&config(|c| {
        c.jwt_public_key = Some(path("ec-p256.pub.pem"))
    }));
    let rs = sign_with(
        Header::new(Algorithm::RS256),
        &claims,
        &signing_key("rsa-2048.key.pem"),
    );
    assert!(matches!(
        ec.verify(&rs, Role::Publisher),
        Err(TokenError::NoKey { .. })
    ));
    let es = sign_with(
        Header::new(Algorithm::ES256),
        &claims,
        &signing_key("ec-p256.key.pem"),
    );
    let hmac = Auth::new(SECRET, Arc::default());
    assert!(matches!(
        hmac.verify(&es, Role::Publisher),
        Err(TokenError::NoKey { .. })
    ));
    // ES384 with a P-256 key: not its algorithm.
    let es384 = sign_with(
        Header::new(Algorithm::ES384),
        &claims,
        &signing_key("ec-p384.key.pem"),
    );
    assert!(matches!(
        ec.verify(&es384, Role::Publisher),
        Err(TokenError::NoKey { .. })
    ));
}

#[test]
fn unsigned_tokens_and_keys_named_by_tokens_are_refused() {
    let auth = Auth::new(SECRET, Arc::default());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = b64.encode(br#"{"mercure":{"publish":["*"]}}"#);
    for header in [r#"{"alg":"none"}"#, r#"{"alg":"none","typ":"JWT"}"#] {
        let unsigned = format!("{}.{payload}.", b64.encode(header));
        assert_eq!(
            auth.verify(&unsigned, Role::Publisher),
            Err(TokenError::Unsigned)
        );
    }
    // A valid HMAC signature does not make `jku`, `jwk`, `x5u` or `x5c`
    // acceptable: the token is refused, the URL never fetched.
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    for (member, value) in [
        ("jku", r#""http://127.0.0.1:1/jwks""#),
        ("jwk", r#"{"kty":"oct","k":"a2V5"}"#),
        ("x5u", r#""http://127.0.0.1:1/cert""#),
        ("x5c", r#"["MIIB"]"#),
    ] {
        let header = format!(r#"{{"alg":"HS256","{member}":{value}}}"#);
        let token = raw(
            &header,
            r#"{"mercure":{"publish":["*"]}}"#,
            &key,
            Algorithm::HS256,
        );
        let refused = auth.verify(&token, Role::Publisher);
        assert!(
            matches!(refused, Err(TokenError::KeyPointer(m)) if m == member),
            "{member}: {refused:?}"
        );
    }
    let crit = raw(
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        "{}",
        &key,
        Algorithm::HS256,
    );
    assert_eq!(
        auth.verify(&crit, Role::Publisher),
        Err(TokenError::Critical)
    );
}

#[test]
fn times_are_checked_without_leeway() {
    let auth = Auth::new("k", Arc::default());
    let expired = hs(
        json!({"mercure": {"publish": ["*"]}, "exp": now() - 1}),
        "k",
    );
    assert_eq!(
        auth.verify(&expired, Role::Publisher),
        Err(TokenError::Expired)
    );
    let later = hs(json!({"mercure": {}, "nbf": now() + 3600}), "k");
    assert_eq!(
        auth.verify(&later, Role::Publisher),
        Err(TokenError::NotYetValid)
    );
    let started = hs(
        json!({"mercure": {}, "nbf": now() - 60, "exp": now() + 60}),
        "k",
    );
    assert_eq!(
        auth.verify(&started, Role::Publisher).unwrap().exp,
        Some(now() + 60)
    );
    let text_exp = hs(json!({"mercure": {}, "exp": "tomorrow"}), "k");
    assert_eq!(
        auth.verify(&text_exp, Role::Publisher),
        Err(TokenError::Claims)
    );
}

fn draft08() -> Config {
    config(|c| {
        c.jwt_key = Some(CONFORMANCE_KEY.to_owned());
        c.anonymous = true;
        c.jwt_audiences = vec![AUDIENCE.to_owned()];
        c.jwt_issuers = vec![ISSUER.to_owned()];
    })
}

#[test]
fn the_conformance_suites_publisher_token() {
    let auth = start(&draft08());
    let token = raw(
        r#"{"alg":"HS256","typ":"at+jwt"}"#,
        r#"{"aud":"https://localhost/.well-known/mercure","iss":"https://localhost","authorization_details":[{"type":"https://mercure.rocks/authorization-detail","actions":["publish"],"topics":[{"match":"*"}]},{"type":"https://mercure.rocks/authorization-detail","actions":["subscribe"],"topics":[{"match":"*"}]}],"exp":4102444800}"#,
        &EncodingKey::from_secret(CONFORMANCE_KEY.as_bytes()),
        Algorithm::HS256,
    );
    for role in [Role::Publisher, Role::Subscriber] {
        let claims = auth.verify(&token, role).unwrap();
        assert_eq!(claims.kind, TokenKind::AccessToken);
        assert_eq!(claims.publish, [Selector::Any]);
        assert_eq!(claims.subscribe, [Selector::Any]);
        assert_eq!(claims.exp, Some(4_102_444_800));
    }
    // 0.x tokens still work on the same hub.
    let legacy = hs(json!({"mercure": {"publish": ["a"]}}), CONFORMANCE_KEY);
    assert_eq!(
        auth.verify(&legacy, Role::Publisher).unwrap().kind,
        TokenKind::Legacy
    );
}

#[test]
fn access_tokens_need_audience_issuer_and_expiry() {
    let auth = start(&config(|c| {
        c.jwt_key = Some(SECRET.to_owned());
        c.jwt_audiences = vec![
            "https://hub.example/.well-known/mercure".into(),
            AUDIENCE.into(),
        ];
        c.jwt_issuers = vec!["https://idp.example".into(), ISSUER.into()];
    }));
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let details = json!([{"type": DETAIL, "actions": ["subscribe"], "topics": [{"match": "t"}]}]);
    let good = json!({"aud": AUDIENCE, "iss": ISSUER, "exp": now() + 60, "authorization_details": details});
    let check = |claims: &serde_json::Value| {
        auth.verify(
            &sign_with(at_header(Algorithm::HS256), claims, &key),
            Role::Subscriber,
        )
    };
    assert_eq!(check(&good).unwrap().subscribe, [Selector::exact("t")]);
    let with = |name: &str, value: serde_json::Value| {
        let mut claims = good.clone();
        claims[name] = value;
        claims
    };
    let without = |name: &str| {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().remove(name);
        claims
    };
    assert!(check(&with("aud", json!(["https://other", AUDIENCE]))).is_ok());
    assert!(check(&with("iss", json!("https://idp.example"))).is_ok());
    for (claims, refusal) in [
        (with("aud", json!("https://other")), TokenError::Audience),
        (with("aud", json!(["https://other"])), TokenError::Audience),
        (
            with("iss", json!("https://evil.example")),
            TokenError::Issuer,
        ),
        (with("iss", json!([ISSUER])), TokenError::Issuer),
        (with("exp", json!(now() - 5)), TokenError::Expired),
        (with("nbf", json!(now() + 600)), TokenError::NotYetValid),
        (without("exp"), TokenError::MissingClaim("exp")),
        (without("aud"), TokenError::MissingClaim("aud")),
        (without("iss"), TokenError::MissingClaim("iss")),
    ] {
        assert_eq!(check(&claims), Err(refusal.clone()), "{claims}");
    }
    // The `typ` decides: the same claims in a 0.x token grant nothing
    // (no `mercure` claim), and its `aud` is not checked.
    let legacy = sign_with(Header::new(Algorithm::HS256), &good, &key);
    let claims = auth.verify(&legacy, Role::Subscriber).unwrap();
    assert_eq!(
        (claims.kind, claims.subscribe.len()),
        (TokenKind::Legacy, 0)
    );
    // `application/at+jwt`, any case.
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("Application/AT+JWT".into());
    assert!(
        auth.verify(&sign_with(header, &good, &key), Role::Subscriber)
            .is_ok()
    );
    // A malformed matcher refuses the whole token.
    let bad = with(
        "authorization_details",
        json!([{"type": DETAIL, "actions": ["publish"], "topics": [{"match": "a"}, {"nope": 1}]}]),
    );
    assert!(matches!(check(&bad), Err(TokenError::Grant(_))));
}

const DETAIL: &str = token::DETAIL_TYPE;

#[test]
fn token_kinds_can_be_turned_off() {
    // No audience and issuer: access tokens are refused, with the flags
    // named.
    let auth = Auth::new(SECRET, Arc::default());
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let access = sign_with(
        at_header(Algorithm::HS256),
        &json!({"aud": AUDIENCE, "iss": ISSUER, "exp": now() + 60}),
        &key,
    );
    let refused = auth.verify(&access, Role::Publisher).unwrap_err();
    assert_eq!(refused, TokenError::AccessTokensOff);
    assert!(
        refused
            .to_string()
            .contains("--jwt-audience URL and --jwt-issuer URL")
    );
    // --no-legacy-tokens.
    let mut config = draft08();
    config.legacy_tokens = false;
    let auth = start(&config);
    let legacy = hs(json!({"mercure": {"publish": ["*"]}}), CONFORMANCE_KEY);
    assert_eq!(
        auth.verify(&legacy, Role::Publisher),
        Err(TokenError::LegacyOff)
    );
}

#[test]
fn publishers_and_subscribers_may_have_keys_of_their_own() {
    let auth = start(&config(|c| {
        c.publisher_jwt_key = Some("publisher-key-0123456789abcdef0123".into());
        c.subscriber_jwt_public_key = Some(path("ec-p256.pub.pem"));
    }));
    let claims = json!({"mercure": {"publish": ["*"], "subscribe": ["*"]}});
    let by_publisher_key = hs(claims.clone(), "publisher-key-0123456789abcdef0123");
    let by_subscriber_key = sign_with(
        Header::new(Algorithm::ES256),
        &claims,
        &signing_key("ec-p256.key.pem"),
    );
    assert!(auth.verify(&by_publisher_key, Role::Publisher).is_ok());
    assert!(auth.verify(&by_subscriber_key, Role::Subscriber).is_ok());
    assert!(matches!(
        auth.verify(&by_publisher_key, Role::Subscriber),
        Err(TokenError::NoKey {
            role: "subscribers",
            ..
        })
    ));
    assert!(matches!(
        auth.verify(&by_subscriber_key, Role::Publisher),
        Err(TokenError::NoKey { .. })
    ));
    let summary = auth.summary();
    assert!(
        summary.contains(
            "publishers --publisher-jwt-key (HMAC); subscribers --subscriber-jwt-public-key"
        ),
        "{summary}"
    );
    assert!(!summary.contains("publisher-key-0123"), "{summary}");

    // A role with its own keys does not fall back to the shared ones.
    let auth = start(&config(|c| {
        c.jwt_key = Some(SECRET.into());
        c.subscriber_jwt_key = Some("subscriber-key-0123456789abcdef012".into());
    }));
    let shared = hs(claims.clone(), SECRET);
    assert!(auth.verify(&shared, Role::Publisher).is_ok());
    assert!(auth.verify(&shared, Role::Subscriber).is_err());
}

#[test]
fn configuration_mistakes_are_one_sentence() {
    let err = |edit: fn(&mut Config)| check(&config(edit)).unwrap_err();
    let e = err(|c| c.subscriber_jwt_key = Some(SECRET.into()));
    assert!(e.starts_with("no key verifies publishers' tokens"), "{e}");
    let e = err(|c| c.publisher_jwt_key = Some(SECRET.into()));
    assert!(e.contains("--anonymous"), "{e}");
    assert!(
        check(&config(|c| {
            c.publisher_jwt_key = Some(SECRET.into());
            c.anonymous = true;
        }))
        .is_ok()
    );
    let e = err(|c| c.jwt_public_key = Some(path("rsa-2048.key.pem")));
    assert!(e.starts_with("--jwt-public-key "), "{e}");
    assert!(e.contains("holds a private key"), "{e}");
    let e = err(|c| c.jwt_public_key = Some("/nonexistent/key.pem".into()));
    assert!(e.contains("/nonexistent/key.pem: cannot be read"), "{e}");
    let e = err(|c| c.jwks = Some("/nonexistent/jwks.json".into()));
    assert!(
        e.starts_with("--jwks /nonexistent/jwks.json: cannot be read"),
        "{e}"
    );
    let e = err(|c| {
        c.publisher_jwks = Some("ftp://x/jwks".into());
        c.anonymous = true;
    });
    assert_eq!(
        e,
        "--publisher-jwks ftp://x/jwks: is neither an http(s) URL nor a file"
    );
    // A JWKS URL is only parsed by the check (fetched when the hub starts).
    assert!(
        check(&config(
            |c| c.jwks = Some("http://127.0.0.1:1/jwks.json".into())
        ))
        .is_ok()
    );
}

fn head(fields: &str) -> RequestHead {
    let raw = format!("POST /?x=1 HTTP/1.1\r\nHost: h\r\n{fields}\r\n");
    let mut buf = bytes::BytesMut::from(raw.as_bytes());
    sse_proto::http1::RequestParser::new()
        .parse_buf(&mut buf)
        .unwrap()
        .unwrap()
}

#[test]
fn the_authorization_header_decides_alone() {
    let auth = Auth::new("k", Arc::default());
    let query = vec![("authorization".to_owned(), "from-query".to_owned())];
    let cookie = "Cookie: mercureAuthorization=from-cookie\r\n";
    assert_eq!(
        auth.token(&head("Authorization: bearer  t1 \r\n"), &query),
        Ok(Some(("t1".to_owned(), Source::Header)))
    );
    // Another scheme is an error, not a fall-through to the query or
    // the cookie.
    assert_eq!(
        auth.token(
            &head(&format!("Authorization: Basic dTpw\r\n{cookie}")),
            &query
        ),
        Err(AuthError::Scheme("Basic".into()))
    );
    assert!(matches!(
        auth.token(&head("Authorization: Bearer\r\n"), &query),
        Err(AuthError::Malformed(_))
    ));
    assert!(matches!(
        auth.token(&head("Authorization: \r\n"), &query),
        Err(AuthError::Scheme(_))
    ));
    assert_eq!(
        auth.token(&head(cookie), &query),
        Ok(Some(("from-query".to_owned(), Source::Query)))
    );
    let access_token = vec![("access_token".to_owned(), "at".to_owned())];
    assert_eq!(
        auth.token(&head(cookie), &access_token),
        Ok(Some(("at".to_owned(), Source::Query)))
    );
    assert_eq!(
        auth.token(&head(cookie), &[]),
        Ok(Some(("from-cookie".to_owned(), Source::Cookie)))
    );
    assert_eq!(auth.token(&head(""), &[]), Ok(None));
    // The draft-08 cookie, before the 0.x one.
    let both = "Cookie: mercureAuthorization=old; __Secure-mercure_access_token=new\r\n";
    assert_eq!(
        auth.token(&head(both), &[]),
        Ok(Some(("new".to_owned(), Source::AccessTokenCookie)))
    );
    // --cookie-name replaces the 0.x cookie's name.
    let mut renamed = Auth::new("k", Arc::default());
    renamed.cookie_name = "hubToken".into();
    assert_eq!(renamed.token(&head(cookie), &[]), Ok(None));
    assert_eq!(
        renamed.token(&head("Cookie: a=1; hubToken=t\r\n"), &[]),
        Ok(Some(("t".to_owned(), Source::Cookie)))
    );
    assert_eq!(renamed.cookie_of(Source::Cookie), "hubToken");
    assert_eq!(
        renamed.cookie_of(Source::AccessTokenCookie),
        "__Secure-mercure_access_token"
    );
}

#[test]
fn refusals_carry_a_bearer_challenge() {
    let value = |e: AuthError| {
        let response = e.response();
        assert_eq!(response.status(), 401);
        response
            .header_value("WWW-Authenticate")
            .unwrap()
            .to_owned()
    };
    assert_eq!(value(AuthError::Missing), "Bearer");
    assert_eq!(value(AuthError::Scheme("Basic".into())), "Bearer");
    let invalid = value(AuthError::Invalid(TokenError::Expired));
    assert_eq!(
        invalid,
        "Bearer error=\"invalid_token\", error_description=\"invalid token: it has expired (`exp` is past)\""
    );
    // Quotes, backslashes and non-ASCII never reach the quoted string.
    assert_eq!(
        challenge("invalid_token", "a \"b\" \\ é\n"),
        "Bearer error=\"invalid_token\", error_description=\"a 'b' ' ??\""
    );
}

#[test]
fn short_keys_get_a_warning() {
    let warning = weak_key_warning("--jwt-key", "short").expect("a 5-byte key is weak");
    assert!(
        warning.contains("--jwt-key is 5 bytes") && warning.contains("256 bits"),
        "{warning}"
    );
    assert!(weak_key_warning("--jwt-key", &"k".repeat(31)).is_some());
    assert!(weak_key_warning("--jwt-key", &"k".repeat(32)).is_none());
    let auth = start(&config(|c| {
        c.jwt_key = Some("short".into());
        c.publisher_jwt_key = Some("tiny".into());
    }));
    assert_eq!(auth.warnings().len(), 2, "{:?}", auth.warnings());
    assert!(
        auth.warnings()
            .iter()
            .all(|w| !w.contains("short") || w.contains("shorter"))
    );
}

// ---------------------------------------------------------------------------
// Key sets
// ---------------------------------------------------------------------------

/// A JWK of a test public key file, with `kid`.
fn jwk(file: &str, kid: &str) -> serde_json::Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    match der::spki(&der_of(file)).unwrap() {
        PublicKey::Rsa { n, e, .. } => {
            json!({"kty": "RSA", "kid": kid, "n": b64(&n), "e": b64(&e)})
        }
        PublicKey::P256(p) => {
            json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&p[1..33]), "y": b64(&p[33..])})
        }
        PublicKey::P384(p) => {
            json!({"kty": "EC", "crv": "P-384", "kid": kid, "x": b64(&p[1..49]), "y": b64(&p[49..])})
        }
        PublicKey::Ed25519(x) => json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(&x)}),
    }
}

fn kid_header(alg: Algorithm, kid: &str) -> Header {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    header
}

/// A file in the temporary directory, unique to this process and call.
fn temp_file(contents: &str) -> std::path::PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "sse-hub-jwks-{}-{}.json",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn key_sets_from_files_and_their_rotation() {
    let claims = json!({"mercure": {"publish": ["*"]}});
    let set = json!({"keys": [jwk("rsa-2048.pub.pem", "r1"), jwk("ed25519.pub.pem", "e1")]});
    let file = temp_file(&set.to_string());
    let mut config = config(|c| c.jwks = Some(file.display().to_string()));
    config.jwks_refresh = Duration::from_millis(1);
    let auth = start(&config);
    let rsa = signing_key("rsa-2048.key.pem");
    let ed = signing_key("ed25519.key.pem");
    let p256 = signing_key("ec-p256.key.pem");
    let by = |alg, kid: &str, key: &EncodingKey| sign_with(kid_header(alg, kid), &claims, key);
    assert!(
        auth.verify(&by(Algorithm::RS256, "r1", &rsa), Role::Publisher)
            .is_ok()
    );
    assert!(
        auth.verify(&by(Algorithm::PS384, "r1", &rsa), Role::Publisher)
            .is_ok()
    );
    assert!(
        auth.verify(&by(Algorithm::EdDSA, "e1", &ed), Role::Subscriber)
            .is_ok()
    );
    // Without `kid`: every key of the algorithm is tried.
    let no_kid = sign_with(Header::new(Algorithm::EdDSA), &claims, &ed);
    assert!(auth.verify(&no_kid, Role::Publisher).is_ok());
    // The RSA key under the Ed25519 key's id: refused.
    assert!(matches!(
        auth.verify(&by(Algorithm::RS256, "e1", &rsa), Role::Publisher),
        Err(TokenError::NoKey { kid: true, .. })
    ));
    // A new key appears under a new id: the token that names it makes the
    // hub read the set again.
    let rotated = json!({"keys": [jwk("ec-p256.pub.pem", "p1")]});
    std::fs::write(&file, rotated.to_string()).unwrap();
    let token = by(Algorithm::ES256, "p1", &p256);
    assert!(
        auth.verify(&token, Role::Publisher).is_err(),
        "not read yet"
    );
    let request = head(&format!("Authorization: Bearer {token}\r\n"));
    std::thread::sleep(Duration::from_millis(5));
    runtime().block_on(auth.fetch_keys_for(&request, &[], Role::Publisher));
    assert!(auth.verify(&token, Role::Publisher).is_ok());
    // The old keys went with the old set.
    assert!(
        auth.verify(&by(Algorithm::RS256, "r1", &rsa), Role::Publisher)
            .is_err()
    );
    std::fs::remove_file(&file).unwrap();
}

/// A JWKS server on 127.0.0.1: answers every request with the current
/// document and counts them.
struct JwksServer {
    url: String,
    document: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
}

impl JwksServer {
    fn start(document: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let document = Arc::new(Mutex::new(document));
        let requests = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
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
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
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
}

#[test]
fn key_sets_by_url_are_fetched_again_for_unknown_kids_at_most_once_per_interval() {
    let server = JwksServer::start(json!({"keys": [jwk("ec-p256.pub.pem", "k1")]}).to_string());
    let mut config = config(|c| c.jwks = Some(server.url.clone()));
    config.jwks_refresh = Duration::from_millis(300);
    let rt = runtime();
    let auth = rt
        .block_on(Auth::start(&config, Arc::default()))
        .unwrap()
        .unwrap();
    assert_eq!(server.requests(), 1, "fetched at start");
    assert!(auth.summary().contains(&server.url), "{}", auth.summary());
    let claims = json!({"mercure": {"subscribe": ["*"]}});
    let p256 = signing_key("ec-p256.key.pem");
    let ed = signing_key("ed25519.key.pem");
    let k1 = sign_with(kid_header(Algorithm::ES256, "k1"), &claims, &p256);
    assert!(auth.verify(&k1, Role::Subscriber).is_ok());

    // A flood of tokens naming unknown keys: one fetch for the interval.
    std::thread::sleep(Duration::from_millis(350));
    rt.block_on(async {
        let fetches = (0..200).map(|i| {
            let token = sign_with(
                kid_header(Algorithm::ES256, &format!("unknown-{i}")),
                &claims,
                &p256,
            );
            let request = head(&format!("Authorization: Bearer {token}\r\n"));
            let auth = &auth;
            async move { auth.fetch_keys_for(&request, &[], Role::Subscriber).await }
        });
        futures_join_all(fetches).await;
    });
    assert_eq!(server.requests(), 2, "one fetch for 200 unknown kids");
    // Within the interval, even a real new key waits for the next one.
    *server.document.lock().unwrap() =
        json!({"keys": [jwk("ec-p256.pub.pem", "k1"), jwk("ed25519.pub.pem", "k2")]}).to_string();
    let k2 = sign_with(kid_header(Algorithm::EdDSA, "k2"), &claims, &ed);
    let request = head(&format!("Authorization: Bearer {k2}\r\n"));
    rt.block_on(auth.fetch_keys_for(&request, &[], Role::Subscriber));
    assert_eq!(server.requests(), 2);
    assert!(auth.verify(&k2, Role::Subscriber).is_err());
    std::thread::sleep(Duration::from_millis(350));
    rt.block_on(auth.fetch_keys_for(&request, &[], Role::Subscriber));
    assert_eq!(server.requests(), 3);
    assert!(auth.verify(&k2, Role::Subscriber).is_ok());
    // A known kid fetches nothing, nor does an HMAC token (a key set
    // holds no secrets).
    std::thread::sleep(Duration::from_millis(350));
    let hmac = sign_with(
        kid_header(Algorithm::HS256, "unknown"),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    );
    for token in [&k1, &hmac] {
        let request = head(&format!("Authorization: Bearer {token}\r\n"));
        rt.block_on(auth.fetch_keys_for(&request, &[], Role::Subscriber));
    }
    assert_eq!(server.requests(), 3);
}

#[test]
fn an_unreachable_or_broken_key_set_url_stops_the_start() {
    let rt = runtime();
    // Nothing listens on port 1.
    let unreachable = config(|c| c.jwks = Some("http://127.0.0.1:1/jwks.json".into()));
    let e = rt
        .block_on(Auth::start(&unreachable, Arc::default()))
        .unwrap_err();
    assert!(
        e.starts_with("--jwks http://127.0.0.1:1/jwks.json: cannot be fetched"),
        "{e}"
    );
    let server = JwksServer::start("<html>not json</html>".into());
    let broken = config(|c| c.jwks = Some(server.url.clone()));
    let e = rt
        .block_on(Auth::start(&broken, Arc::default()))
        .unwrap_err();
    assert!(
        e.ends_with("is not a JWK Set (a JSON object with a `keys` array)"),
        "{e}"
    );
    // A password in the URL is never shown.
    let secret = config(|c| c.jwks = Some("http://user:hunter2@127.0.0.1:1/jwks".into()));
    let e = rt
        .block_on(Auth::start(&secret, Arc::default()))
        .unwrap_err();
    assert!(!e.contains("hunter2"), "{e}");
}

/// Runs every future to its end, concurrently (on the current task).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| std::future::Future::poll(f.as_mut(), cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

#[test]
fn mangled_tokens_are_refused_never_a_panic() {
    let mut config = draft08();
    config.jwt_public_key = Some(path("ed25519.pub.pem"));
    let auth = start(&config);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = json!({"aud": AUDIENCE, "iss": ISSUER, "exp": now() + 60,
        "authorization_details": [{"type": DETAIL, "actions": ["publish"],
            "topics": [{"match_urlpattern": "https://example.com/:id"}]}]});
    let tokens = [
        sign_with(
            at_header(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(CONFORMANCE_KEY.as_bytes()),
        ),
        sign_with(
            at_header(Algorithm::EdDSA),
            &claims,
            &signing_key("ed25519.key.pem"),
        ),
    ];
    for token in &tokens {
        assert!(auth.verify(token, Role::Publisher).is_ok());
        let bytes = token.as_bytes();
        for at in (0..bytes.len()).step_by(3) {
            for replacement in [b'A', b'.', b'_', 0xff] {
                let mut mangled = bytes.to_vec();
                mangled[at] = replacement;
                let mangled = String::from_utf8_lossy(&mangled);
                // The token may still verify only if nothing that is
                // signed changed (base64 padding bits can be ignored).
                if let Ok(claims) = auth.verify(&mangled, Role::Publisher) {
                    assert_eq!(claims.kind, TokenKind::AccessToken);
                }
            }
            let _ = auth.verify(&token[..at], Role::Subscriber);
        }
    }
    // Payloads of every JSON shape where claims are expected.
    let key = EncodingKey::from_secret(CONFORMANCE_KEY.as_bytes());
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let refused_as_both = [
        "null",
        "[]",
        "1",
        "\"s\"",
        "{\"exp\":-1}",
        "{\"exp\":1e400}",
        "{\"mercure\":{\"publish\":[{}]}}",
        &deep,
    ];
    for payload in refused_as_both {
        for header in [r#"{"alg":"HS256"}"#, r#"{"alg":"HS256","typ":"at+jwt"}"#] {
            let token = raw(header, payload, &key, Algorithm::HS256);
            assert!(
                auth.verify(&token, Role::Publisher).is_err(),
                "{header} {payload}"
            );
        }
    }
    // An access token's claims that cannot be read.
    for details in ["[[[[]]]]", "{}", "[{\"type\":1}]", "\"all\""] {
        let payload = format!(
            "{{\"aud\":\"{AUDIENCE}\",\"iss\":\"{ISSUER}\",\"exp\":{},\"authorization_details\":{details}}}",
            now() + 60
        );
        let token = raw(
            r#"{"alg":"HS256","typ":"at+jwt"}"#,
            &payload,
            &key,
            Algorithm::HS256,
        );
        assert!(
            matches!(
                auth.verify(&token, Role::Publisher),
                Err(TokenError::Grant(_))
            ),
            "{details}"
        );
    }
    let garbage = format!(
        "{}.{}.",
        b64.encode("{\"alg\":\"EdDSA\"}"),
        b64.encode("{}")
    );
    assert!(auth.verify(&garbage, Role::Publisher).is_err());
}
