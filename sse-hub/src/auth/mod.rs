//! Authorization: the JSON Web Tokens of both Mercure generations, on the
//! same running hub.
//!
//! - **Where a token is.** `Authorization: Bearer` (any other scheme there
//!   is a refusal, never a reason to look elsewhere), else the
//!   `authorization` (or `access_token`) query parameter, else the
//!   `__Secure-mercure_access_token` cookie, else the 0.x cookie
//!   (`mercureAuthorization`, or `--cookie-name`).
//! - **Which kind.** A token whose header says `typ: at+jwt` is an RFC 9068
//!   access token (draft-dunglas-mercure-08, Mercure 1.0): it needs `exp`,
//!   an `aud` naming a configured audience and an `iss` that is a
//!   configured issuer, and its rights are its `authorization_details`.
//!   Any other token is a 0.x one: its rights are its `mercure` claim, and
//!   `exp` is checked when present. `nbf` is checked on both. See
//!   [`token`].
//! - **Which key.** Publishers' and subscribers' tokens each have their
//!   key ring (the same one unless separate keys are configured): HMAC
//!   secrets, public keys from PEM files and JWK Sets ([`keys`],
//!   [`jwks`]). A key is tried only for the algorithms its own type allows
//!   and, when both name one, for the token's `kid`; nothing in a token
//!   ever chooses or supplies a key.
//! - **Refusals.** 401 with `WWW-Authenticate: Bearer` (with
//!   `error="invalid_token"` and a description when a token was given);
//!   see [`AuthError::response`]. The messages never repeat a token or a
//!   claim's value.

mod der;
pub mod jwks;
pub mod keys;
pub mod token;

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Validation;
use serde_json::{Map, Value};
use sse_proto::http1::RequestHead;
use sse_tokio::server::Selector;

use self::jwks::Jwks;
use self::keys::VerifyKey;
pub use self::token::{TokenError, TokenKind};
use super::http::Response;
use super::query;
use super::selectors::SelectorCache;
use crate::config::Config;

/// The draft-08 cookie.
pub const ACCESS_TOKEN_COOKIE: &str = "__Secure-mercure_access_token";
/// The 0.x cookie's name unless `--cookie-name` gives another.
pub const LEGACY_COOKIE: &str = "mercureAuthorization";
/// The most keys one token is tried against (a token without `kid`, on a
/// hub with many keys for its algorithm).
pub const MAX_ATTEMPTS: usize = 16;

/// Whose token is checked: the key rings may differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A publish.
    Publisher,
    /// A subscription.
    Subscriber,
}

impl Role {
    fn plural(self) -> &'static str {
        match self {
            Role::Publisher => "publishers",
            Role::Subscriber => "subscribers",
        }
    }
}

/// The keys that verify one role's tokens.
#[derive(Clone, Debug, Default)]
struct KeyRing {
    /// HMAC secrets and public keys.
    fixed: Vec<VerifyKey>,
    /// JWK Sets.
    remote: Vec<Arc<Jwks>>,
    /// What the first log line says of them.
    shown: Vec<String>,
}

impl KeyRing {
    /// Whether a fetch of the key sets could find the key a token with
    /// `header` needs: a key set is configured, the algorithm is not an
    /// HMAC one (key sets hold no secrets), and none of the set's keys has
    /// the token's `kid` (with no `kid`: no key at all verifies its
    /// algorithm).
    fn lacks(&self, header: &token::Header) -> bool {
        use jsonwebtoken::Algorithm::{HS256, HS384, HS512};
        if self.remote.is_empty() || matches!(header.alg, HS256 | HS384 | HS512) {
            return false;
        }
        let remote_has = |want: &dyn Fn(&VerifyKey) -> bool| {
            self.remote.iter().any(|set| set.keys().iter().any(want))
        };
        match header.kid.as_deref() {
            Some(kid) => {
                !remote_has(&|key| key.kid() == Some(kid) && key.accepts(header.alg, Some(kid)))
            }
            None => {
                !self.fixed.iter().any(|key| key.accepts(header.alg, None))
                    && !remote_has(&|key| key.accepts(header.alg, None))
            }
        }
    }
}

/// What an access token must carry.
#[derive(Clone, Debug)]
struct AccessRules {
    issuers: Vec<String>,
}

/// Verifies tokens and reads what they grant.
pub struct Auth {
    publisher: KeyRing,
    subscriber: KeyRing,
    /// `None`: access tokens are refused (no `--jwt-audience` and
    /// `--jwt-issuer`).
    access: Option<AccessRules>,
    /// 0.x tokens are taken.
    legacy: bool,
    cookie_name: String,
    /// Where the claims' selectors are compiled.
    selectors: Arc<SelectorCache>,
    legacy_validation: Validation,
    access_validation: Validation,
    /// What to warn about at start (weak keys, key set entries skipped).
    warnings: Vec<String>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("summary", &self.summary())
            .finish_non_exhaustive()
    }
}

/// What a valid token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// Topics the bearer may publish to.
    pub publish: Vec<Selector>,
    /// Topics of private updates the bearer may receive.
    pub subscribe: Vec<Selector>,
    /// When the token expires (seconds since the Unix epoch).
    pub exp: Option<u64>,
    /// Its generation, which decides how refusals are written.
    pub kind: TokenKind,
    /// The token's `mercure.payload` (0.x), if any: copied into
    /// subscription events with `--subscriptions`.
    pub payload: Option<serde_json::Value>,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No token in the request.
    Missing,
    /// The `Authorization` header uses another scheme than `Bearer`.
    Scheme(String),
    /// The `Authorization` header is not text, or `Bearer` has no token.
    Malformed(&'static str),
    /// The token was refused.
    Invalid(TokenError),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => f.write_str(
                "authorization required: send a JWT as `Authorization: Bearer TOKEN`, in the \
                 `authorization` query parameter, or in the hub's cookie",
            ),
            AuthError::Scheme(scheme) => write!(
                f,
                "the Authorization header must hold `Bearer TOKEN`, not the {scheme:?} scheme \
                 (this hub takes only JSON Web Tokens)"
            ),
            AuthError::Malformed(why) => write!(f, "invalid token: {why}"),
            AuthError::Invalid(why) => write!(f, "invalid token: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    /// The answer: 401, the sentence, and a `WWW-Authenticate: Bearer`
    /// challenge (RFC 6750) that says `error="invalid_token"` with the
    /// sentence as `error_description` when a token was given.
    pub fn response(&self) -> Response {
        let text = self.to_string();
        let challenge = match self {
            AuthError::Missing | AuthError::Scheme(_) => "Bearer".to_owned(),
            AuthError::Malformed(_) | AuthError::Invalid(_) => challenge("invalid_token", &text),
        };
        Response::text(401, text).header("WWW-Authenticate", challenge)
    }
}

/// A `Bearer` challenge with an error code and a description (characters
/// a quoted string may not hold in RFC 6750 are replaced).
pub fn challenge(error: &str, description: &str) -> String {
    let description: String = description
        .chars()
        .take(512)
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c == ' ' || c.is_ascii_graphic() => c,
            _ => '?',
        })
        .collect();
    format!("Bearer error=\"{error}\", error_description=\"{description}\"")
}

/// Where a request's token was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `Authorization: Bearer`.
    Header,
    /// The `authorization` or `access_token` query parameter.
    Query,
    /// The `__Secure-mercure_access_token` cookie, which a browser sends
    /// by itself: a publish authorized by it needs a trusted origin
    /// (CSRF).
    AccessTokenCookie,
    /// The 0.x cookie (`mercureAuthorization` or `--cookie-name`): the
    /// same.
    Cookie,
}

impl Source {
    /// Whether a browser sends it by itself (a cookie).
    pub fn is_cookie(self) -> bool {
        matches!(self, Source::AccessTokenCookie | Source::Cookie)
    }
}

/// The shortest HMAC key the hub takes without a warning: 256 bits, the
/// output size of HS256's hash (RFC 7518, section 3.2).
pub const MIN_KEY_BYTES: usize = 32;

/// A warning for the log when the HMAC key `key` given by `flag` is too
/// short to resist guessing.
pub fn weak_key_warning(flag: &str, key: &str) -> Option<String> {
    let len = key.len();
    (len < MIN_KEY_BYTES).then(|| {
        format!(
            "the {flag} is {len} bytes long, shorter than 256 bits ({MIN_KEY_BYTES} bytes): \
             a short HMAC key can be found by brute force from any token, and then anyone can \
             sign tokens; use a random key of at least {MIN_KEY_BYTES} bytes (`openssl rand \
             -base64 32` makes one)"
        )
    })
}

/// The key flags of one role, as the configuration gives them: its own
/// when any is given, else the shared ones.
struct Sources<'a> {
    hmac: Option<(&'static str, &'a str)>,
    pem: Option<(&'static str, &'a Path)>,
    jwks: Option<(&'static str, &'a str)>,
}

impl Sources<'_> {
    fn is_empty(&self) -> bool {
        self.hmac.is_none() && self.pem.is_none() && self.jwks.is_none()
    }
}

fn sources(config: &Config, role: Role) -> Sources<'_> {
    let (hmac, pem, jwks, names) = match role {
        Role::Publisher => (
            &config.publisher_jwt_key,
            &config.publisher_jwt_public_key,
            &config.publisher_jwks,
            [
                "--publisher-jwt-key",
                "--publisher-jwt-public-key",
                "--publisher-jwks",
            ],
        ),
        Role::Subscriber => (
            &config.subscriber_jwt_key,
            &config.subscriber_jwt_public_key,
            &config.subscriber_jwks,
            [
                "--subscriber-jwt-key",
                "--subscriber-jwt-public-key",
                "--subscriber-jwks",
            ],
        ),
    };
    let own = Sources {
        hmac: hmac.as_deref().map(|k| (names[0], k)),
        pem: pem.as_deref().map(|p| (names[1], p)),
        jwks: jwks.as_deref().map(|j| (names[2], j)),
    };
    if !own.is_empty() {
        return own;
    }
    Sources {
        hmac: config.jwt_key.as_deref().map(|k| ("--jwt-key", k)),
        pem: config
            .jwt_public_key
            .as_deref()
            .map(|p| ("--jwt-public-key", p)),
        jwks: config.jwks.as_deref().map(|j| ("--jwks", j)),
    }
}

/// Whether the configuration names any key (authorization is on).
pub fn is_keyed(config: &Config) -> bool {
    [Role::Publisher, Role::Subscriber]
        .iter()
        .any(|&role| !sources(config, role).is_empty())
}

/// Checks the key settings without fetching anything: each role has keys
/// (subscribers may go without, with `--anonymous`), key files hold a
/// usable public key, key set files a usable key, URLs are URLs. One
/// sentence naming the flag when not.
pub fn check(config: &Config) -> Result<(), String> {
    if !is_keyed(config) {
        return Ok(());
    }
    let publisher = sources(config, Role::Publisher);
    let subscriber = sources(config, Role::Subscriber);
    if publisher.is_empty() {
        return Err(
            "no key verifies publishers' tokens (subscriber keys alone would let no one \
             publish): add --jwt-key, --jwt-public-key or --jwks (for both), or a \
             --publisher-jwt-key, --publisher-jwt-public-key or --publisher-jwks"
                .into(),
        );
    }
    if subscriber.is_empty() && !config.anonymous {
        return Err(
            "no key verifies subscribers' tokens (publisher keys alone would let no one \
             subscribe): add --subscriber-jwt-key, --subscriber-jwt-public-key or \
             --subscriber-jwks, or --anonymous to let subscribers in without a token"
                .into(),
        );
    }
    for sources in [&publisher, &subscriber] {
        if let Some((flag, path)) = sources.pem {
            keys::read_pem_file(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
        }
        if let Some((flag, value)) = sources.jwks {
            jwks::check(value)
                .map_err(|e| format!("{flag} {}: {e}", crate::redact::url(value.trim())))?;
        }
    }
    Ok(())
}

impl Auth {
    /// The hub's authorization from `config`: `None` when it names no key
    /// (an open hub). Reads the key files and fetches the key sets.
    ///
    /// # Errors
    /// One sentence naming the flag whose key cannot be used.
    pub async fn start(
        config: &Config,
        selectors: Arc<SelectorCache>,
    ) -> Result<Option<Auth>, String> {
        if !is_keyed(config) {
            return Ok(None);
        }
        check(config)?;
        let mut warnings = Vec::new();
        // A key set both roles use is read once.
        let mut sets: Vec<(&'static str, Arc<Jwks>)> = Vec::new();
        let mut rings = Vec::new();
        for role in [Role::Publisher, Role::Subscriber] {
            let sources = sources(config, role);
            let mut ring = KeyRing::default();
            if let Some((flag, secret)) = sources.hmac {
                ring.fixed.push(VerifyKey::secret(secret.as_bytes()));
                ring.shown.push(format!("{flag} (HMAC)"));
                if let Some(w) = weak_key_warning(flag, secret) {
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
            }
            if let Some((flag, path)) = sources.pem {
                let key = keys::read_pem_file(path)
                    .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
                let algs: Vec<_> = key.algorithms().iter().map(|a| keys::name_of(*a)).collect();
                ring.fixed.push(key);
                ring.shown
                    .push(format!("{flag} {} ({})", path.display(), algs.join("/")));
            }
            if let Some((flag, value)) = sources.jwks {
                let set = match sets.iter().find(|(f, _)| *f == flag) {
                    Some((_, set)) => set.clone(),
                    None => {
                        let (set, skipped) = Jwks::open(flag, value, config.jwks_refresh).await?;
                        warnings.extend(skipped);
                        let set = Arc::new(set);
                        sets.push((flag, set.clone()));
                        set
                    }
                };
                ring.shown.push(set.shown().to_owned());
                ring.remote.push(set);
            }
            rings.push(ring);
        }
        let subscriber = rings.pop().unwrap_or_default();
        let publisher = rings.pop().unwrap_or_default();
        let access = (!config.jwt_audiences.is_empty()).then(|| AccessRules {
            issuers: config.jwt_issuers.clone(),
        });
        let mut auth = Auth::with_rings(publisher, subscriber, selectors);
        auth.access = access;
        auth.access_validation.set_audience(&config.jwt_audiences);
        auth.legacy = config.legacy_tokens;
        auth.cookie_name = config.cookie_name.clone();
        auth.warnings = warnings;
        Ok(Some(auth))
    }

    /// Verifies 0.x tokens signed with the HMAC key `key`, for publishers
    /// and subscribers, compiling their selectors through `selectors`.
    pub fn new(key: &str, selectors: Arc<SelectorCache>) -> Auth {
        let ring = KeyRing {
            fixed: vec![VerifyKey::secret(key.as_bytes())],
            remote: Vec::new(),
            shown: vec!["--jwt-key (HMAC)".to_owned()],
        };
        Auth::with_rings(ring.clone(), ring, selectors)
    }

    fn with_rings(publisher: KeyRing, subscriber: KeyRing, selectors: Arc<SelectorCache>) -> Auth {
        // `exp` and `nbf` are checked when present, with no leeway; the
        // algorithm is set for each token (see `verify`).
        let mut legacy_validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        legacy_validation.required_spec_claims = HashSet::new();
        legacy_validation.validate_exp = true;
        legacy_validation.validate_nbf = true;
        legacy_validation.validate_aud = false;
        legacy_validation.leeway = 0;
        let mut access_validation = legacy_validation.clone();
        access_validation.validate_aud = true;
        access_validation.required_spec_claims = ["exp", "aud", "iss"]
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        Auth {
            publisher,
            subscriber,
            access: None,
            legacy: true,
            cookie_name: LEGACY_COOKIE.to_owned(),
            selectors,
            legacy_validation,
            access_validation,
            warnings: Vec::new(),
        }
    }

    /// What to warn about once the hub runs: short HMAC keys, key set
    /// entries that were skipped.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The name of the cookie a token came from.
    pub fn cookie_of(&self, source: Source) -> &str {
        match source {
            Source::AccessTokenCookie => ACCESS_TOKEN_COOKIE,
            _ => &self.cookie_name,
        }
    }

    /// What the first log line says: the keys of each role and the kinds
    /// of token taken.
    pub fn summary(&self) -> String {
        let keys = if self.publisher.shown == self.subscriber.shown {
            self.publisher.shown.join(", ")
        } else {
            let list = |ring: &KeyRing| {
                if ring.shown.is_empty() {
                    "none".to_owned()
                } else {
                    ring.shown.join(", ")
                }
            };
            format!(
                "publishers {}; subscribers {}",
                list(&self.publisher),
                list(&self.subscriber)
            )
        };
        let kinds = match (self.legacy, self.access.is_some()) {
            (true, true) => "0.x and access tokens",
            (true, false) => "0.x tokens",
            (false, _) => "access tokens only",
        };
        format!("JWT: {kinds}; keys: {keys}")
    }

    fn ring(&self, role: Role) -> &KeyRing {
        match role {
            Role::Publisher => &self.publisher,
            Role::Subscriber => &self.subscriber,
        }
    }

    /// Checks `token`'s header, signature (with `role`'s keys), times,
    /// audience and issuer (access tokens), and reads what it grants.
    pub fn verify(&self, token: &str, role: Role) -> Result<Claims, TokenError> {
        let header = token::header(token)?;
        let mut validation = match header.kind {
            TokenKind::AccessToken if self.access.is_none() => {
                return Err(TokenError::AccessTokensOff);
            }
            TokenKind::Legacy if !self.legacy => return Err(TokenError::LegacyOff),
            TokenKind::AccessToken => self.access_validation.clone(),
            TokenKind::Legacy => self.legacy_validation.clone(),
        };
        // The token's own algorithm, which the candidate keys allow
        // (`jsonwebtoken` also checks that it is of the key's family).
        validation.algorithms = vec![header.alg];
        let ring = self.ring(role);
        let snapshots: Vec<Arc<[VerifyKey]>> = ring.remote.iter().map(|set| set.keys()).collect();
        let candidates = ring
            .fixed
            .iter()
            .chain(snapshots.iter().flat_map(|keys| keys.iter()))
            .filter(|key| key.accepts(header.alg, header.kid.as_deref()))
            .take(MAX_ATTEMPTS);
        let alg = keys::name_of(header.alg);
        let mut claims = None;
        let mut tried = false;
        for key in candidates {
            tried = true;
            match jsonwebtoken::decode::<Map<String, Value>>(token, key.decoding_key(), &validation)
            {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => match refusal(&e) {
                    // Another key may verify it.
                    None => {}
                    Some(why) => return Err(why),
                },
            }
        }
        let Some(claims) = claims else {
            return Err(if tried {
                TokenError::Signature(alg)
            } else {
                TokenError::NoKey {
                    alg,
                    role: role.plural(),
                    kid: header.kid.is_some(),
                }
            });
        };
        let grants = match header.kind {
            TokenKind::Legacy => token::legacy_grants(&claims, &self.selectors)?,
            TokenKind::AccessToken => {
                let issuers = self.access.as_ref().map_or(&[][..], |a| &a.issuers[..]);
                match claims.get("iss") {
                    Some(Value::String(iss)) if issuers.contains(iss) => {}
                    _ => return Err(TokenError::Issuer),
                }
                token::access_grants(&claims, &self.selectors)?
            }
        };
        let exp = claims.get("exp").and_then(|exp| {
            exp.as_u64()
                // A fractional `exp` (checked as such): its whole seconds.
                .or_else(|| exp.as_f64().filter(|e| *e >= 0.0).map(|e| e as u64))
        });
        let payload = claims
            .get("mercure")
            .or_else(|| claims.get("https://mercure.rocks/"))
            .and_then(|m| m.get("payload"))
            .cloned();
        Ok(Claims {
            publish: grants.publish,
            subscribe: grants.subscribe,
            exp,
            kind: header.kind,
            payload,
        })
    }

    /// The request's token and its claims, checked with `role`'s keys.
    pub fn authorize(
        &self,
        head: &RequestHead,
        query: &[(String, String)],
        role: Role,
    ) -> Result<(Claims, Source), AuthError> {
        let (token, source) = self.token(head, query)?.ok_or(AuthError::Missing)?;
        let claims = self.verify(&token, role).map_err(AuthError::Invalid)?;
        Ok((claims, source))
    }

    /// Before [`Auth::authorize`], where it may wait: when the request's
    /// token names a key that `role`'s key sets do not hold, reads them
    /// again (at most once per `--jwks-refresh`, one read at a time); key
    /// sets older than [`jwks::MAX_AGE`] are read again in the background.
    pub async fn fetch_keys_for(&self, head: &RequestHead, query: &[(String, String)], role: Role) {
        let ring = self.ring(role);
        if ring.remote.is_empty() {
            return;
        }
        for set in &ring.remote {
            set.refresh_if_old();
        }
        let Ok(Some((token, _))) = self.token(head, query) else {
            return;
        };
        let Ok(header) = token::header(&token) else {
            return;
        };
        if ring.lacks(&header) {
            for set in &ring.remote {
                set.refresh().await;
            }
        }
    }

    /// Finds the token in a request. An `Authorization` header decides
    /// alone: another scheme than `Bearer` is an error, never a reason to
    /// look at the query or the cookies.
    fn token(
        &self,
        head: &RequestHead,
        query: &[(String, String)],
    ) -> Result<Option<(String, Source)>, AuthError> {
        if let Some(value) = head.header("authorization") {
            let Ok(value) = std::str::from_utf8(value) else {
                return Err(AuthError::Malformed(
                    "the Authorization header is not valid text",
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
                return Err(AuthError::Malformed(
                    "`Authorization: Bearer` holds no token",
                ));
            }
            return Ok(Some((token.to_owned(), Source::Header)));
        }
        if let Some(value) =
            query::first(query, "authorization").or_else(|| query::first(query, "access_token"))
        {
            return Ok(Some((value.to_owned(), Source::Query)));
        }
        let Some(cookies) = head.header_str("cookie") else {
            return Ok(None);
        };
        if let Some(token) = query::cookie(cookies, ACCESS_TOKEN_COOKIE) {
            return Ok(Some((token.to_owned(), Source::AccessTokenCookie)));
        }
        Ok(query::cookie(cookies, &self.cookie_name).map(|t| (t.to_owned(), Source::Cookie)))
    }
}

/// What a `jsonwebtoken` error means for a token tried with one key:
/// `None` when another key might verify it (the signature does not match
/// this one), else the refusal (the signature matched: the claims are
/// wrong whatever the key).
fn refusal(e: &jsonwebtoken::errors::Error) -> Option<TokenError> {
    use jsonwebtoken::errors::ErrorKind;
    Some(match e.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidAlgorithm => return None,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(match claim.as_str() {
            "exp" => "exp",
            "aud" => "aud",
            _ => "iss",
        }),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) => TokenError::NotCompact,
        _ => TokenError::Claims,
    })
}

/// Whether `selectors` cover every one of `topics`.
pub fn covers(selectors: &[Selector], topics: &[String]) -> bool {
    topics
        .iter()
        .all(|topic| selectors.iter().any(|s| s.matches(topic)))
}

/// How long to wait between two reads of a key set by default
/// (`--jwks-refresh`).
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests;
