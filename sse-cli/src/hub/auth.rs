//! Authorization with `--jwt-key`: Mercure's JSON Web Tokens (HS256) and
//! their `mercure.publish` / `mercure.subscribe` topic selectors.

use std::collections::HashSet;
use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sse_proto::http1::RequestHead;
use sse_tokio::server::Selector;

use super::query;

/// Verifies tokens signed with the hub's key.
pub struct Auth {
    key: DecodingKey,
    validation: Validation,
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
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No token in the request.
    Missing,
    /// The token is malformed, forged, expired or not HS256.
    Invalid(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => f.write_str(
                "authorization required: send a JWT as `Authorization: Bearer`, the `authorization` query parameter or the `mercureAuthorization` cookie",
            ),
            AuthError::Invalid(why) => write!(f, "invalid token: {why}"),
        }
    }
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
}

impl Auth {
    /// Verifies HS256 tokens signed with `key`.
    pub fn new(key: &str) -> Auth {
        let mut validation = Validation::new(Algorithm::HS256);
        // Mercure tokens need no `exp`, `aud` or `iss`; an `exp` that is
        // there is checked, with no leeway.
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        Auth {
            key: DecodingKey::from_secret(key.as_bytes()),
            validation,
        }
    }

    /// Checks `token`'s signature and expiry and reads its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let data = jsonwebtoken::decode::<RawClaims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let mercure = data.claims.mercure;
        let selectors = |list: Option<Vec<String>>| -> Vec<Selector> {
            list.unwrap_or_default()
                .iter()
                .map(|s| Selector::new(s))
                .collect()
        };
        let (publish, subscribe) = match mercure {
            Some(m) => (selectors(m.publish), selectors(m.subscribe)),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Claims {
            publish,
            subscribe,
            exp: data.claims.exp,
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
        let token = token(head, query).ok_or(AuthError::Missing)?;
        self.verify(&token)
    }
}

/// Finds the token in a request.
fn token(head: &RequestHead, query: &[(String, String)]) -> Option<String> {
    if let Some(value) = head.header_str("authorization") {
        let value = value.trim();
        if let (Some(scheme), Some(rest)) = (value.get(..7), value.get(7..)) {
            if scheme.eq_ignore_ascii_case("bearer ") {
                return Some(rest.trim().to_owned());
            }
        }
    }
    if let Some(value) = query::first(query, "authorization") {
        return Some(value.to_owned());
    }
    head.header_str("cookie")
        .and_then(|c| query::cookie(c, "mercureAuthorization"))
        .map(str::to_owned)
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
        let auth = Auth::new("k");
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
    fn refuses_forged_expired_and_other_algorithms() {
        let auth = Auth::new("k");
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
}
