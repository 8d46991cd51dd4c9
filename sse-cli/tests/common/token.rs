//! JWTs for the hubs started with `--jwt-key`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

/// The HS256 key of the hubs started with `--jwt-key` (32 bytes: the hub
/// warns about shorter ones).
pub const KEY: &str = "0123456789abcdef0123456789abcdef";

/// `claims` signed with `algorithm` and `key`.
pub fn sign(algorithm: Algorithm, claims: &serde_json::Value, key: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .expect("sign a token")
}

/// `claims` signed with HS256 and `key`.
pub fn token(claims: serde_json::Value, key: &str) -> String {
    sign(Algorithm::HS256, &claims, key)
}

/// The time now, in seconds since the epoch (for `exp` and `nbf`).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token signed with [`KEY`] with these `mercure` claims, valid for an
/// hour.
pub fn claims_token(publish: &[&str], subscribe: &[&str]) -> String {
    token(
        json!({"mercure": {"publish": publish, "subscribe": subscribe}, "exp": now_secs() + 3600}),
        KEY,
    )
}

/// A token signed with [`KEY`] that may publish and subscribe to every
/// topic.
pub fn all_token() -> String {
    claims_token(&["*"], &["*"])
}

/// The `Authorization` value that carries `token`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The HMAC key of the Mercure conformance suites (and of Mercure's own
/// development setup).
pub const CONFORMANCE_KEY: &str = "!ChangeThisMercureHubJWTSecretKey!";
/// The audience (the hub's resource identifier) of the conformance
/// suite's access tokens.
pub const AUDIENCE: &str = "https://localhost/.well-known/mercure";
/// Their issuer.
pub const ISSUER: &str = "https://localhost";
/// The type of the `authorization_details` entries that grant Mercure
/// rights.
pub const DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// The flags of a hub that takes the conformance suite's tokens.
pub const DRAFT08_FLAGS: [&str; 7] = [
    "--jwt-key",
    CONFORMANCE_KEY,
    "--anonymous",
    "--jwt-audience",
    AUDIENCE,
    "--jwt-issuer",
    ISSUER,
];

/// A token of exactly this header and payload text, signed with `key`
/// and `algorithm`.
pub fn raw_token(header: &str, payload: &str, key: &EncodingKey, algorithm: Algorithm) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signed = format!("{}.{}", b64.encode(header), b64.encode(payload));
    let signature =
        jsonwebtoken::crypto::sign(signed.as_bytes(), key, algorithm).expect("sign a token");
    format!("{signed}.{signature}")
}

/// The Mercure conformance suite's publisher token: these exact header and
/// payload bytes, signed with [`CONFORMANCE_KEY`]. It may publish and
/// subscribe to every topic.
pub fn conformance_token() -> String {
    raw_token(
        r#"{"alg":"HS256","typ":"at+jwt"}"#,
        r#"{"aud":"https://localhost/.well-known/mercure","iss":"https://localhost","authorization_details":[{"type":"https://mercure.rocks/authorization-detail","actions":["publish"],"topics":[{"match":"*"}]},{"type":"https://mercure.rocks/authorization-detail","actions":["subscribe"],"topics":[{"match":"*"}]}],"exp":4102444800}"#,
        &EncodingKey::from_secret(CONFORMANCE_KEY.as_bytes()),
        Algorithm::HS256,
    )
}

/// An `authorization_details` entry granting `actions` on `topics`
/// (matcher objects such as `{"match": "*"}`).
pub fn detail(actions: &[&str], topics: serde_json::Value) -> serde_json::Value {
    json!({"type": DETAIL_TYPE, "actions": actions, "topics": topics})
}

/// An RFC 9068 access token (`typ: at+jwt`) for [`AUDIENCE`] from
/// [`ISSUER`], valid for an hour, with these `authorization_details`,
/// signed with `key` (HMAC) and `algorithm`.
pub fn access_token(details: serde_json::Value, algorithm: Algorithm, key: &EncodingKey) -> String {
    let mut header = Header::new(algorithm);
    header.typ = Some("at+jwt".to_owned());
    let claims = json!({
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": now_secs() + 3600,
        "authorization_details": details,
    });
    jsonwebtoken::encode(&header, &claims, key).expect("sign a token")
}

/// [`access_token`] signed with [`CONFORMANCE_KEY`] (HS256).
pub fn hs_access_token(details: serde_json::Value) -> String {
    access_token(
        details,
        Algorithm::HS256,
        &EncodingKey::from_secret(CONFORMANCE_KEY.as_bytes()),
    )
}

/// The path of a file of `tests/data`.
pub fn data_path(file: &str) -> String {
    format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// The RSA private key of `tests/data/rsa-2048.key.pem` (PKCS#1), whose
/// public key is `tests/data/rsa-2048.pub.pem`.
pub fn rsa_key() -> EncodingKey {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(data_path("rsa-2048.key.pem")).expect("the test key");
    let base64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .expect("a PEM key");
    EncodingKey::from_rsa_der(&der)
}
