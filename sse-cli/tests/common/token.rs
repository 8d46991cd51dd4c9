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
