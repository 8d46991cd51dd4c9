//! Reading a token: its JOSE header, checked before any key is chosen,
//! and the rights its claims grant, for both generations of Mercure
//! tokens:
//!
//! - 0.x tokens: the `mercure` claim (or the same object under the claim
//!   `https://mercure.rocks/`) with `publish` and `subscribe` arrays of
//!   selectors, read as `topic=` is (`*`, exact, URI templates);
//! - RFC 9068 access tokens (header `typ: at+jwt`, draft-dunglas-mercure-08
//!   and Mercure 1.0): the `authorization_details` claim (RFC 9396), whose
//!   entries of type [`DETAIL_TYPE`] hold `actions` (`publish`,
//!   `subscribe`) and `topics` matchers (`{"match": T}`,
//!   `{"match_exact": T}`, `{"match_urlpattern": P}`; `*` is every topic).
//!
//! A claim that cannot be read refuses the whole token, with a sentence
//! that says which claim and what is wrong, never a claim's value: a token
//! is never half-understood.

use std::fmt;

use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use sse_tokio::server::Selector;

use super::keys::{self, MAX_KID};
use crate::selectors::{Kind, SelectorCache};

/// The longest token read, in bytes.
pub const MAX_TOKEN_LEN: usize = 64 << 10;
/// The most selectors one 0.x claim (`mercure.publish` or
/// `mercure.subscribe`) may hold.
pub const MAX_LEGACY_SELECTORS: usize = 1000;
/// The most Mercure entries an access token's `authorization_details` may
/// hold.
pub const MAX_DETAILS: usize = 100;
/// The most topic matchers all of them together may hold.
pub const MAX_MATCHERS: usize = 1000;
/// The `type` of the `authorization_details` entries that grant Mercure
/// rights.
pub const DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// Which generation of Mercure a token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A Mercure 0.x token: the `mercure` claim.
    Legacy,
    /// An RFC 9068 access token (`typ: at+jwt`): `aud`, `iss`, `exp` and
    /// `authorization_details`.
    AccessToken,
}

/// Why a token was refused. The messages say what is wrong and what to
/// do; none repeats any part of the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// The token is longer than [`MAX_TOKEN_LEN`] bytes.
    TooLong(usize),
    /// Not three base64url parts separated by dots.
    NotCompact,
    /// Five parts: an encrypted token (JWE).
    Encrypted,
    /// The header is not a base64url-encoded JSON object with string
    /// members where strings belong.
    Header,
    /// `alg` is `none`.
    Unsigned,
    /// `alg` is missing or names no algorithm verified here.
    UnknownAlgorithm,
    /// The header points at a key (`jku`, `jwk`, `x5u`, `x5c`).
    KeyPointer(&'static str),
    /// The header lists `crit` extensions.
    Critical,
    /// No configured key verifies this algorithm (and key id) for this
    /// role.
    NoKey {
        /// The token's algorithm.
        alg: &'static str,
        /// Publishers or subscribers.
        role: &'static str,
        /// The token names a key (`kid`).
        kid: bool,
    },
    /// The signature matches none of the keys that could verify it.
    Signature(&'static str),
    /// `exp` is past.
    Expired,
    /// `nbf` is ahead.
    NotYetValid,
    /// A claim an access token needs is missing (`exp`, `aud`, `iss`).
    MissingClaim(&'static str),
    /// `aud` names none of the configured audiences.
    Audience,
    /// `iss` is none of the configured issuers.
    Issuer,
    /// The claims are not an object of the registered claims' types.
    Claims,
    /// An access token, on a hub configured for none.
    AccessTokensOff,
    /// A 0.x token, on a hub that takes access tokens only.
    LegacyOff,
    /// A Mercure claim cannot be read: the sentence says which and why.
    Grant(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::TooLong(len) => write!(
                f,
                "the token is {len} bytes long; at most {MAX_TOKEN_LEN} are read"
            ),
            TokenError::NotCompact => f.write_str(
                "it is not a signed JWT in compact form (three base64url parts separated by dots)",
            ),
            TokenError::Encrypted => f.write_str(
                "it is an encrypted JWT (JWE, five parts): this hub takes signed tokens (JWS) only",
            ),
            TokenError::Header => f.write_str(
                "its header is not a base64url-encoded JSON object whose `alg`, `typ` and `kid` \
                 are strings",
            ),
            TokenError::Unsigned => f.write_str(
                "its `alg` is `none`: an unsigned token proves nothing and is never accepted",
            ),
            TokenError::UnknownAlgorithm => f.write_str(
                "its `alg` is not one this hub verifies (HS256, HS384, HS512, RS256, RS384, RS512, \
                 PS256, PS384, PS512, ES256, ES384, EdDSA)",
            ),
            TokenError::KeyPointer(member) => write!(
                f,
                "its header names a key with `{member}`: keys come from the hub's configuration \
                 only (--jwt-key, --jwt-public-key, --jwks), never from a token; sign it without \
                 `{member}`"
            ),
            TokenError::Critical => {
                f.write_str("its header lists `crit` extensions, which this hub does not implement")
            }
            TokenError::NoKey { alg, role, kid } => {
                write!(f, "no key of this hub verifies {alg} tokens of {role}")?;
                if *kid {
                    f.write_str(" with the token's `kid`")?;
                }
                Ok(())
            }
            TokenError::Signature(alg) => write!(
                f,
                "its signature does not match the hub's {alg} key (signed with another key, or \
                 altered)"
            ),
            TokenError::Expired => f.write_str("it has expired (`exp` is past)"),
            TokenError::NotYetValid => f.write_str("it is not valid yet (`nbf` is ahead)"),
            TokenError::MissingClaim(claim) => write!(
                f,
                "it has no `{claim}` claim, which an access token (`typ: at+jwt`) must have"
            ),
            TokenError::Audience => {
                f.write_str("its `aud` names none of this hub's audiences (--jwt-audience)")
            }
            TokenError::Issuer => {
                f.write_str("its `iss` is not one of this hub's issuers (--jwt-issuer)")
            }
            TokenError::Claims => f.write_str(
                "its claims are not a JSON object of the registered claims' types (`exp` and \
                 `nbf` numbers, `aud` a string or an array of strings, `iss` a string)",
            ),
            TokenError::AccessTokensOff => f.write_str(
                "it is an access token (`typ: at+jwt`), which this hub takes only when started \
                 with --jwt-audience URL and --jwt-issuer URL",
            ),
            TokenError::LegacyOff => f.write_str(
                "it is a Mercure 0.x token (no `typ: at+jwt`), which this hub no longer takes \
                 (--no-legacy-tokens): send an access token",
            ),
            TokenError::Grant(why) => f.write_str(why),
        }
    }
}

/// What the header of a token says, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The algorithm (never `none`).
    pub alg: Algorithm,
    /// The key id, if any.
    pub kid: Option<String>,
    /// From `typ`: `at+jwt` (or `application/at+jwt`, any case) makes an
    /// access token.
    pub kind: TokenKind,
}

/// Reads and checks a token's header, before any key is chosen: a known
/// algorithm (never `none`), no key named by the token itself (`jku`,
/// `jwk`, `x5u`, `x5c`), no `crit` extension.
pub fn header(token: &str) -> Result<Header, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong(token.len()));
    }
    match token.split('.').count() {
        3 => {}
        5 => return Err(TokenError::Encrypted),
        _ => return Err(TokenError::NotCompact),
    }
    let encoded = token.split('.').next().unwrap_or("");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.as_bytes())
        .map_err(|_| TokenError::Header)?;
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(TokenError::Header);
    };
    let string = |name: &str| match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(TokenError::Header),
    };
    let alg = match string("alg")? {
        Some(name) if name.eq_ignore_ascii_case("none") => return Err(TokenError::Unsigned),
        Some(name) => keys::algorithm(name).ok_or(TokenError::UnknownAlgorithm)?,
        None => return Err(TokenError::UnknownAlgorithm),
    };
    for member in ["jku", "jwk", "x5u", "x5c"] {
        if header.contains_key(member) {
            return Err(TokenError::KeyPointer(member));
        }
    }
    if header.contains_key("crit") {
        return Err(TokenError::Critical);
    }
    let kid = string("kid")?;
    if kid.is_some_and(|k| k.len() > MAX_KID) {
        return Err(TokenError::Header);
    }
    let kind = match string("typ")? {
        Some(typ) if is_access_token_type(typ) => TokenKind::AccessToken,
        _ => TokenKind::Legacy,
    };
    Ok(Header {
        alg,
        kid: kid.map(str::to_owned),
        kind,
    })
}

/// Whether a `typ` names an RFC 9068 access token.
fn is_access_token_type(typ: &str) -> bool {
    let typ = typ
        .get(..12)
        .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    typ.eq_ignore_ascii_case("at+jwt")
}

/// What a token grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// The topics the bearer may publish to.
    pub publish: Vec<Selector>,
    /// The topics of the private updates the bearer may receive.
    pub subscribe: Vec<Selector>,
}

/// The rights of a 0.x token: its `mercure` claim (else its
/// `https://mercure.rocks/` claim); none without either.
pub fn legacy_grants(
    claims: &Map<String, Value>,
    cache: &SelectorCache,
) -> Result<Grants, TokenError> {
    let claim = match claims
        .get("mercure")
        .or_else(|| claims.get("https://mercure.rocks/"))
    {
        None | Some(Value::Null) => return Ok(Grants::default()),
        Some(Value::Object(claim)) => claim,
        Some(_) => {
            return Err(TokenError::Grant(
                "the `mercure` claim is not a JSON object (it holds the `publish` and `subscribe` \
                 arrays)"
                    .into(),
            ));
        }
    };
    let selectors = |name: &str| -> Result<Vec<Selector>, TokenError> {
        let list = match claim.get(name) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(list)) => list,
            Some(_) => {
                return Err(TokenError::Grant(format!(
                    "the `mercure.{name}` claim is not an array of topic selectors"
                )));
            }
        };
        if list.len() > MAX_LEGACY_SELECTORS {
            return Err(TokenError::Grant(format!(
                "the `mercure.{name}` claim holds {} selectors; at most {MAX_LEGACY_SELECTORS} \
                 are read",
                list.len()
            )));
        }
        list.iter()
            .map(|selector| {
                let Value::String(selector) = selector else {
                    return Err(TokenError::Grant(format!(
                        "the `mercure.{name}` claim holds a selector that is not a string"
                    )));
                };
                cache.get(Kind::Topic, selector).map_err(|e| {
                    TokenError::Grant(format!(
                        "the `mercure.{name}` claim holds an invalid selector: {e}"
                    ))
                })
            })
            .collect()
    };
    Ok(Grants {
        publish: selectors("publish")?,
        subscribe: selectors("subscribe")?,
    })
}

/// The rights of an access token: its `authorization_details` entries of
/// type [`DETAIL_TYPE`] (entries of other types are someone else's and
/// ignored); none without the claim.
pub fn access_grants(
    claims: &Map<String, Value>,
    cache: &SelectorCache,
) -> Result<Grants, TokenError> {
    let refuse = |why: &str| TokenError::Grant(format!("`authorization_details`: {why}"));
    let details = match claims.get("authorization_details") {
        None | Some(Value::Null) => return Ok(Grants::default()),
        Some(Value::Array(details)) => details,
        Some(_) => return Err(refuse("the claim is not an array (RFC 9396)")),
    };
    let mut grants = Grants::default();
    let (mut entries, mut matchers) = (0, 0);
    for detail in details {
        let Value::Object(detail) = detail else {
            return Err(refuse("an entry is not a JSON object"));
        };
        match detail.get("type") {
            Some(Value::String(kind)) if kind == DETAIL_TYPE => {}
            Some(Value::String(_)) => continue,
            _ => return Err(refuse("an entry has no `type` string (RFC 9396)")),
        }
        entries += 1;
        if entries > MAX_DETAILS {
            return Err(refuse(&format!(
                "more than {MAX_DETAILS} Mercure entries; merge them"
            )));
        }
        let Some(Value::Array(actions)) = detail.get("actions") else {
            return Err(refuse(
                "a Mercure entry has no `actions` array (`publish`, `subscribe`)",
            ));
        };
        let (mut publish, mut subscribe) = (false, false);
        for action in actions {
            match action.as_str() {
                Some("publish") => publish = true,
                Some("subscribe") => subscribe = true,
                _ => {
                    return Err(refuse(
                        "a Mercure entry's `actions` may hold `publish` and `subscribe` only",
                    ));
                }
            }
        }
        let Some(Value::Array(topics)) = detail.get("topics") else {
            return Err(refuse(
                "a Mercure entry has no `topics` array (of matchers such as {\"match\": \"*\"})",
            ));
        };
        matchers += topics.len();
        if matchers > MAX_MATCHERS {
            return Err(refuse(&format!(
                "more than {MAX_MATCHERS} topic matchers in all"
            )));
        }
        for topic in topics {
            let selector = matcher(topic, cache).map_err(|why| refuse(&why))?;
            if publish {
                grants.publish.push(selector.clone());
            }
            if subscribe {
                grants.subscribe.push(selector);
            }
        }
    }
    Ok(grants)
}

/// A topic matcher of an `authorization_details` entry: `{"match": T}`
/// (exact; with `"match_type": "urlpattern"`, a URL pattern),
/// `{"match_exact": T}` or `{"match_urlpattern": P}`; the value `*` is
/// every topic, whatever the matcher.
fn matcher(topic: &Value, cache: &SelectorCache) -> Result<Selector, String> {
    let Value::Object(topic) = topic else {
        return Err(
            "a topic matcher is not a JSON object (write {\"match\": \"TOPIC\"})".to_owned(),
        );
    };
    let known = ["match", "match_exact", "match_urlpattern"];
    let mut present = known.iter().filter(|k| topic.contains_key(**k));
    let (Some(&name), None) = (present.next(), present.next()) else {
        return Err(if known.iter().any(|k| topic.contains_key(*k)) {
            "a topic matcher has more than one of `match`, `match_exact` and `match_urlpattern`"
                .to_owned()
        } else {
            "a topic matcher has none of `match`, `match_exact` and `match_urlpattern`".to_owned()
        });
    };
    let Some(Value::String(value)) = topic.get(name) else {
        return Err(format!("the `{name}` of a topic matcher is not a string"));
    };
    let kind = match name {
        "match_exact" => Kind::Exact,
        "match_urlpattern" => Kind::UrlPattern,
        _ => match topic.get("match_type") {
            None | Some(Value::Null) => Kind::Exact,
            Some(Value::String(t)) if t.eq_ignore_ascii_case("exact") => Kind::Exact,
            Some(Value::String(t)) if t.eq_ignore_ascii_case("urlpattern") => Kind::UrlPattern,
            Some(_) => {
                return Err(
                    "a topic matcher's `match_type` is neither `exact` nor `urlpattern`".to_owned(),
                );
            }
        },
    };
    if value == "*" {
        return Ok(Selector::Any);
    }
    cache
        .get(kind, value)
        .map_err(|e| format!("a `{name}` topic matcher is invalid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(header: Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.e30.c2ln", b64.encode(header.to_string()))
    }

    #[test]
    fn headers_are_checked_before_any_key() {
        let ok = header(&encode(json!({"alg": "RS256", "kid": "k1"}))).unwrap();
        assert_eq!(
            ok,
            Header {
                alg: Algorithm::RS256,
                kid: Some("k1".into()),
                kind: TokenKind::Legacy
            }
        );
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+JWT",
        ] {
            let h = header(&encode(json!({"alg": "HS256", "typ": typ}))).unwrap();
            assert_eq!(h.kind, TokenKind::AccessToken, "{typ}");
        }
        for typ in ["JWT", "at+jwt2", "application/jwt", "", "application/"] {
            let h = header(&encode(json!({"alg": "HS256", "typ": typ}))).unwrap();
            assert_eq!(h.kind, TokenKind::Legacy, "{typ}");
        }
        let refused = |h: Value| header(&encode(h)).unwrap_err();
        assert_eq!(refused(json!({"alg": "none"})), TokenError::Unsigned);
        assert_eq!(refused(json!({"alg": "NONE"})), TokenError::Unsigned);
        assert_eq!(refused(json!({})), TokenError::UnknownAlgorithm);
        assert_eq!(refused(json!({"alg": "HS1"})), TokenError::UnknownAlgorithm);
        assert_eq!(
            refused(json!({"alg": "ES512"})),
            TokenError::UnknownAlgorithm
        );
        assert_eq!(refused(json!({"alg": 5})), TokenError::Header);
        assert_eq!(
            refused(json!({"alg": "HS256", "typ": 1})),
            TokenError::Header
        );
        assert_eq!(
            refused(json!({"alg": "HS256", "kid": []})),
            TokenError::Header
        );
        assert_eq!(
            refused(json!({"alg": "HS256", "kid": "k".repeat(300)})),
            TokenError::Header
        );
        for member in ["jku", "jwk", "x5u", "x5c"] {
            let mut h = json!({"alg": "RS256"});
            h[member] = json!("https://attacker.example/key");
            assert_eq!(refused(h), TokenError::KeyPointer(member));
        }
        assert_eq!(
            refused(json!({"alg": "RS256", "crit": ["exp"]})),
            TokenError::Critical
        );
        assert_eq!(refused(json!([1])), TokenError::Header);
        assert_eq!(header("a.b").unwrap_err(), TokenError::NotCompact);
        assert_eq!(header("a.b.c.d.e").unwrap_err(), TokenError::Encrypted);
        assert_eq!(header("!.b.c").unwrap_err(), TokenError::Header);
        assert_eq!(header("").unwrap_err(), TokenError::NotCompact);
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            header(&long).unwrap_err(),
            TokenError::TooLong(MAX_TOKEN_LEN + 1)
        );
    }

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn legacy_claims() {
        let cache = SelectorCache::default();
        let g = legacy_grants(
            &object(json!({"mercure": {"publish": ["*"], "subscribe": ["a", "/b/{id}"]}})),
            &cache,
        )
        .unwrap();
        assert_eq!(g.publish, [Selector::Any]);
        assert!(g.subscribe[1].matches("/b/1"));
        // The namespaced claim, when `mercure` is absent.
        let g = legacy_grants(
            &object(json!({"https://mercure.rocks/": {"publish": ["x"]}})),
            &cache,
        )
        .unwrap();
        assert_eq!(g.publish, [Selector::exact("x")]);
        assert_eq!(
            legacy_grants(&object(json!({"sub": "x"})), &cache).unwrap(),
            Grants::default()
        );
        for (claims, why) in [
            (json!({"mercure": "all"}), "is not a JSON object"),
            (
                json!({"mercure": {"publish": "*"}}),
                "`mercure.publish` claim is not an array",
            ),
            (json!({"mercure": {"subscribe": [1]}}), "not a string"),
            (
                json!({"mercure": {"subscribe": ["/{"]}}),
                "holds an invalid selector",
            ),
            (
                json!({"mercure": {"publish": vec!["a"; MAX_LEGACY_SELECTORS + 1]}}),
                "at most 1000",
            ),
        ] {
            let e = legacy_grants(&object(claims), &cache)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    fn detail(actions: Value, topics: Value) -> Value {
        json!({"type": DETAIL_TYPE, "actions": actions, "topics": topics})
    }

    #[test]
    fn authorization_details() {
        let cache = SelectorCache::default();
        let claims = object(json!({"authorization_details": [
            detail(json!(["publish"]), json!([{"match": "*"}])),
            detail(json!(["subscribe"]), json!([
                {"match": "https://example.com/a"},
                {"match_exact": "https://example.com/{x}"},
                {"match_urlpattern": "https://example.com/books/:id"},
                {"match": "https://example.com/c/:id", "match_type": "URLPattern"},
                {"match_exact": "*"},
            ])),
            {"type": "https://other.example/detail", "actions": {"read": true}, "topics": "x"},
            detail(json!(["publish", "subscribe"]), json!([{"match": "both", "payload": {"u": 1}}])),
        ]}));
        let g = access_grants(&claims, &cache).unwrap();
        assert_eq!(g.publish, [Selector::Any, Selector::exact("both")]);
        let sub = &g.subscribe;
        assert_eq!(sub.len(), 6);
        assert!(sub[0].matches("https://example.com/a"));
        assert!(sub[1].matches("https://example.com/{x}"));
        assert!(!sub[1].matches("https://example.com/y"));
        assert!(sub[2].matches("https://example.com/books/1"));
        assert!(sub[3].matches("https://example.com/c/2"));
        assert_eq!(sub[4], Selector::Any);
        assert_eq!(
            access_grants(&object(json!({"mercure": {"publish": ["*"]}})), &cache).unwrap(),
            Grants::default(),
            "an access token's `mercure` claim grants nothing"
        );

        for (details, why) in [
            (json!({}), "not an array"),
            (json!([1]), "not a JSON object"),
            (json!([{"actions": ["publish"]}]), "no `type`"),
            (
                json!([{"type": DETAIL_TYPE, "topics": []}]),
                "no `actions` array",
            ),
            (
                detail(json!(["read"]), json!([])),
                "`publish` and `subscribe` only",
            ),
            (
                json!([{"type": DETAIL_TYPE, "actions": ["publish"]}]),
                "no `topics` array",
            ),
            (
                detail(json!(["publish"]), json!(["*"])),
                "not a JSON object",
            ),
            (
                detail(json!(["publish"]), json!([{"topic": "*"}])),
                "has none of",
            ),
            (
                detail(
                    json!(["publish"]),
                    json!([{"match": "a", "match_exact": "a"}]),
                ),
                "more than one",
            ),
            (
                detail(json!(["publish"]), json!([{"match": 3}])),
                "not a string",
            ),
            (
                detail(
                    json!(["publish"]),
                    json!([{"match": "a", "match_type": "regexp"}]),
                ),
                "`match_type`",
            ),
            (
                detail(
                    json!(["publish"]),
                    json!([{"match_urlpattern": "/relative"}]),
                ),
                "a `match_urlpattern` topic matcher is invalid",
            ),
            (
                json!(vec![detail(json!(["publish"]), json!([])); MAX_DETAILS + 1]),
                "more than 100",
            ),
            (
                detail(
                    json!(["publish"]),
                    json!(vec![json!({"match": "a"}); MAX_MATCHERS + 1]),
                ),
                "more than 1000",
            ),
        ] {
            let details = if details.is_array() || details.get("type").is_none() {
                details
            } else {
                json!([details])
            };
            let claims = object(json!({"authorization_details": details}));
            let e = access_grants(&claims, &cache).unwrap_err().to_string();
            assert!(e.starts_with("`authorization_details`: "), "{e}");
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
