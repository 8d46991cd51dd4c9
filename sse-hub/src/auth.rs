//! Authorization with `--jwt-key`: Mercure's JSON Web Tokens (HS256) and
//! their `mercure.publish` / `mercure.subscribe` topic selectors (`*`,
//! exact topics and URI templates, matched as `topic=` selectors are). A
//! token whose claims hold a malformed template is refused (401) with a
//! sentence saying which claim and what is wrong: it grants nothing that
//! could be guessed.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sse_proto::http1::RequestHead;
use sse_tokio::server::Selector;

use super::query;
use super::selectors::{Kind, SelectorCache};

/// Verifies tokens signed with the hub's key.
pub struct Auth {
    key: DecodingKey,
    validation: Validation,
    /// Where the claims' selectors are compiled.
    selectors: Arc<SelectorCache>,
}

/// What a valid token grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Topics the bearer may publish to.
    pub publish: Vec<Selector>,
    /// Topics of private updates the bearer may receive.
    pub subscribe: Vec<Selector>,
    /// When the token expires (seconds since the Unix epoch).
    pub exp: Option<u64>,
    /// The token's `mercure.payload`, if any (copied into subscription
    /// events with `--subscriptions`).
    pub payload: Option<serde_json::Value>,
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No token in the request.
    Missing,
    /// The token is malformed, forged, expired, not yet valid or not HS256.
    Invalid(String),
    /// The `Authorization` header uses another scheme than `Bearer`.
    Scheme(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => f.write_str(
                "authorization required: send a JWT as `Authorization: Bearer`, the `authorization` query parameter or the `mercureAuthorization` cookie",
            ),
            AuthError::Invalid(why) => write!(f, "invalid token: {why}"),
            AuthError::Scheme(scheme) => write!(
                f,
                "the Authorization header must hold `Bearer TOKEN`, not the {scheme:?} scheme \
                 (this hub takes only JSON Web Tokens)"
            ),
        }
    }
}

/// Where a request's token was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `Authorization: Bearer`.
    Header,
    /// The `authorization` query parameter.
    Query,
    /// The `mercureAuthorization` cookie, which a browser sends by itself:
    /// a publish authorized by it needs a trusted origin (CSRF).
    Cookie,
}

/// The shortest HMAC key the hub takes without a warning: 256 bits, the
/// output size of HS256's hash (RFC 7518, section 3.2).
pub const MIN_KEY_BYTES: usize = 32;

/// A warning for the log when `key` is too short to resist guessing.
pub fn weak_key_warning(key: &str) -> Option<String> {
    let len = key.len();
    (len < MIN_KEY_BYTES).then(|| {
        format!(
            "the --jwt-key is {len} bytes long, shorter than 256 bits ({MIN_KEY_BYTES} bytes): \
             a short HMAC key can be found by brute force from any token, and then anyone can \
             sign tokens; use a random key of at least {MIN_KEY_BYTES} bytes (`openssl rand \
             -base64 32` makes one)"
        )
    })
}

#[derive(Deserialize)]
struct RawClaims {
    mercure: Option<MercureClaim>,
    exp: Option<u64>,
}

#[derive(Deserialize)]
struct MercureClaim {
    #[serde(default)]
    publish: Option<Vec<String>>,
    #[serde(default)]
    subscribe: Option<Vec<String>>,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

impl Auth {
    /// Verifies HS256 tokens signed with `key`, compiling their selectors
    /// through `selectors`.
    pub fn new(key: &str, selectors: Arc<SelectorCache>) -> Auth {
        let mut validation = Validation::new(Algorithm::HS256);
        // Mercure tokens need no `exp`, `aud` or `iss`; an `exp` or `nbf`
        // that is there is checked, with no leeway.
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        Auth {
            key: DecodingKey::from_secret(key.as_bytes()),
            validation,
            selectors,
        }
    }

    /// Checks `token`'s signature, expiry and start (`nbf`) and reads its
    /// claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let data = jsonwebtoken::decode::<RawClaims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let mercure = data.claims.mercure;
        let selectors = |claim: &str, list: Option<Vec<String>>| {
            list.unwrap_or_default()
                .iter()
                .map(|s| {
                    self.selectors.get(Kind::Topic, s).map_err(|e| {
                        AuthError::Invalid(format!(
                            "the `mercure.{claim}` claim holds an invalid selector: {e}"
                        ))
                    })
                })
                .collect::<Result<Vec<Selector>, AuthError>>()
        };
        let payload = mercure.as_ref().and_then(|m| m.payload.clone());
        let (publish, subscribe) = match mercure {
            Some(m) => (
                selectors("publish", m.publish)?,
                selectors("subscribe", m.subscribe)?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Claims {
            publish,
            subscribe,
            exp: data.claims.exp,
            payload,
        })
    }

    /// The request's token and its claims: `Authorization: Bearer`, else
    /// the `authorization` query parameter, else the `mercureAuthorization`
    /// cookie.
    pub fn authorize(
        &self,
        head: &RequestHead,
        query: &[(String, String)],
    ) -> Result<Claims, AuthError> {
        self.authorize_with_source(head, query)
            .map(|(claims, _)| claims)
    }

    /// Like [`Auth::authorize`], also saying where the token was.
    pub fn authorize_with_source(
        &self,
        head: &RequestHead,
        query: &[(String, String)],
    ) -> Result<(Claims, Source), AuthError> {
        let (token, source) = token(head, query)?.ok_or(AuthError::Missing)?;
        Ok((self.verify(&token)?, source))
    }
}

/// Finds the token in a request. An `Authorization` header decides alone:
/// another scheme than `Bearer` is an error, never a reason to look at the
/// query or the cookie.
fn token(
    head: &RequestHead,
    query: &[(String, String)],
) -> Result<Option<(String, Source)>, AuthError> {
    if let Some(value) = head.header("authorization") {
        let Ok(value) = std::str::from_utf8(value) else {
            return Err(AuthError::Invalid(
                "the Authorization header is not valid text".into(),
            ));
        };
        let value = value.trim();
        let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            let scheme: String = scheme.chars().take(32).collect();
            return Err(AuthError::Scheme(scheme));
        }
        let token = rest.trim();
        if token.is_empty() {
            return Err(AuthError::Invalid(
                "`Authorization: Bearer` holds no token".into(),
            ));
        }
        return Ok(Some((token.to_owned(), Source::Header)));
    }
    if let Some(value) = query::first(query, "authorization") {
        return Ok(Some((value.to_owned(), Source::Query)));
    }
    Ok(head
        .header_str("cookie")
        .and_then(|c| query::cookie(c, "mercureAuthorization"))
        .map(|t| (t.to_owned(), Source::Cookie)))
}

/// Whether `selectors` cover every one of `topics`.
pub fn covers(selectors: &[Selector], topics: &[String]) -> bool {
    topics
        .iter()
        .all(|topic| selectors.iter().any(|s| s.matches(topic)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn sign(claims: serde_json::Value, key: &str, alg: Algorithm) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn verifies_and_reads_mercure_claims() {
        let auth = Auth::new("k", Arc::default());
        let token = sign(
            json!({"mercure": {"publish": ["*"], "subscribe": ["a", "b"]}}),
            "k",
            Algorithm::HS256,
        );
        let claims = auth.verify(&token).unwrap();
        assert_eq!(claims.publish, [Selector::Any]);
        assert_eq!(claims.subscribe.len(), 2);
        assert!(covers(&claims.subscribe, &["a".into(), "b".into()]));
        assert!(!covers(&claims.subscribe, &["a".into(), "c".into()]));
    }

    #[test]
    fn claims_hold_templates() {
        let auth = Auth::new("k", Arc::default());
        let token = sign(
            json!({"mercure": {
                "publish": ["https://example.com/books/{id}"],
                "subscribe": ["https://example.com/{+any}", "/exact"],
            }}),
            "k",
            Algorithm::HS256,
        );
        let claims = auth.verify(&token).unwrap();
        let book = "https://example.com/books/1".to_owned();
        assert!(covers(&claims.publish, std::slice::from_ref(&book)));
        assert!(!covers(
            &claims.publish,
            &["https://example.com/books/1/x".into()]
        ));
        assert!(covers(&claims.subscribe, &[book, "/exact".into()]));
        assert!(!covers(&claims.subscribe, &["/exact/1".into()]));

        let bad = sign(
            json!({"mercure": {"subscribe": ["https://example.com/{id"]}}),
            "k",
            Algorithm::HS256,
        );
        let Err(AuthError::Invalid(why)) = auth.verify(&bad) else {
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
    fn refuses_forged_expired_and_other_algorithms() {
        let auth = Auth::new("k", Arc::default());
        let forged = sign(
            json!({"mercure": {"publish": ["*"]}}),
            "other",
            Algorithm::HS256,
        );
        assert!(matches!(auth.verify(&forged), Err(AuthError::Invalid(_))));
        let expired = sign(
            json!({"mercure": {"publish": ["*"]}, "exp": 1000}),
            "k",
            Algorithm::HS256,
        );
        assert!(matches!(auth.verify(&expired), Err(AuthError::Invalid(_))));
        let hs512 = sign(
            json!({"mercure": {"publish": ["*"]}}),
            "k",
            Algorithm::HS512,
        );
        assert!(matches!(auth.verify(&hs512), Err(AuthError::Invalid(_))));
        assert!(matches!(auth.verify("garbage"), Err(AuthError::Invalid(_))));
        assert!(matches!(auth.verify("a.b.c"), Err(AuthError::Invalid(_))));
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_token_is_refused_before_its_nbf() {
        let auth = Auth::new("k", Arc::default());
        let later = sign(
            json!({"mercure": {"publish": ["*"]}, "nbf": now() + 3600}),
            "k",
            Algorithm::HS256,
        );
        let Err(AuthError::Invalid(why)) = auth.verify(&later) else {
            panic!("a token valid only in an hour was accepted");
        };
        assert!(why.to_lowercase().contains("immature"), "{why}");
        let started = sign(
            json!({"mercure": {"publish": ["*"]}, "nbf": now() - 60}),
            "k",
            Algorithm::HS256,
        );
        assert!(auth.verify(&started).is_ok());
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
        let query = vec![("authorization".to_owned(), "from-query".to_owned())];
        let cookie = "Cookie: mercureAuthorization=from-cookie\r\n";
        assert_eq!(
            token(&head("Authorization: bearer  t1 \r\n"), &query),
            Ok(Some(("t1".to_owned(), Source::Header)))
        );
        // Another scheme is an error, not a fall-through to the query or
        // the cookie.
        assert_eq!(
            token(
                &head(&format!("Authorization: Basic dTpw\r\n{cookie}")),
                &query
            ),
            Err(AuthError::Scheme("Basic".into()))
        );
        assert!(matches!(
            token(&head("Authorization: Bearer\r\n"), &query),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            token(&head("Authorization: \r\n"), &query),
            Err(AuthError::Scheme(_))
        ));
        assert_eq!(
            token(&head(cookie), &query),
            Ok(Some(("from-query".to_owned(), Source::Query)))
        );
        assert_eq!(
            token(&head(cookie), &[]),
            Ok(Some(("from-cookie".to_owned(), Source::Cookie)))
        );
        assert_eq!(token(&head(""), &[]), Ok(None));
    }

    #[test]
    fn short_keys_get_a_warning() {
        let warning = weak_key_warning("short").expect("a 5-byte key is weak");
        assert!(
            warning.contains("5 bytes") && warning.contains("256 bits"),
            "{warning}"
        );
        assert!(weak_key_warning(&"k".repeat(31)).is_some());
        assert!(weak_key_warning(&"k".repeat(32)).is_none());
    }
}
