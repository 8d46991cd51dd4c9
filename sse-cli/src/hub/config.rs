//! `sse hub`'s flags (each also read from an `SSE_HUB_*` environment
//! variable) and the hub's [`Config`] built from them.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use sse_hub::Config;

/// The long help of `sse hub` (`sse hub --help`).
pub const LONG_ABOUT: &str = "Run a publish/subscribe hub that speaks the Mercure protocol: \
subscribers open `GET /.well-known/mercure?topic=T` as an event stream (resuming with \
Last-Event-ID), publishers `POST /.well-known/mercure` with a form (topic, data, type, id, retry, \
private). `GET /` serves a chat page, `/healthz` the hub's health, `/metrics` Prometheus metrics.

With no flags the hub keeps its history in memory, listens on 127.0.0.1:8080 and is open: \
anyone who can reach it may publish and subscribe. A key turns on authorization: --jwt-key (HMAC: \
HS256, HS384, HS512), --jwt-public-key (a PEM public key or certificate: RSA for RS*/PS*, EC \
P-256 for ES256, P-384 for ES384, Ed25519 for EdDSA) or --jwks (a JWK Set by URL or file); \
--publisher-* and --subscriber-* variants give each role keys of its own. Mercure 0.x tokens \
(`mercure.publish` / `mercure.subscribe` claims) are taken, and RFC 9068 access tokens (`typ: \
at+jwt`, `authorization_details`) too with --jwt-audience and --jwt-issuer. --redis makes every \
hub process started with the same Redis act as one hub. --subscriptions (with a key) announces every subscription \
that opens or ends as a private update and lists the active ones at \
GET /.well-known/mercure/subscriptions (Mercure's subscriptions API).

Against hostile web pages: bound to loopback, the hub answers only requests whose Host is a \
loopback name (421 otherwise; --allowed-host adds names); a publish authorized by a cookie \
(mercureAuthorization or __Secure-mercure_access_token) needs an Origin listed with \
--publish-origin (403 otherwise); \
--cors-origin '*' never comes with credentials. Tokens in URLs and Redis passwords are redacted \
from logs.

Every flag can also be set with an environment variable: SSE_HUB_ and the flag's name in \
capitals with underscores (SSE_HUB_LISTEN, SSE_HUB_REDIS, SSE_HUB_JWT_KEY, ...). Logs go to \
stderr; SSE_HUB_LOG sets their level (error, warn, info, debug).";

/// Arguments of `sse hub`.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// The address to listen on.
    #[arg(
        long,
        env = "SSE_HUB_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    listen: SocketAddr,

    /// Share history and updates with every hub process started with the same Redis
    /// (redis://[:PASSWORD@]HOST:PORT[/DB]; the password never appears in logs).
    #[arg(
        long,
        env = "SSE_HUB_REDIS",
        value_name = "URL",
        hide_env_values = true
    )]
    redis: Option<String>,

    /// How many events the history keeps for resuming subscribers.
    #[arg(
        long,
        env = "SSE_HUB_HISTORY",
        default_value_t = 10_000,
        value_name = "N"
    )]
    history: usize,

    /// Send a keep-alive comment after this long without an event (0 disables), e.g. 15s,
    /// 500ms, 2m.
    #[arg(long, env = "SSE_HUB_HEARTBEAT", default_value = "15s", value_name = "DURATION",
          value_parser = parse_duration_or_zero)]
    heartbeat: Duration,

    /// Send `retry: MS` at the start of every stream (the client's reconnection delay).
    #[arg(long, env = "SSE_HUB_RETRY", value_name = "MS")]
    retry: Option<u64>,

    /// Require JSON Web Tokens signed with this HMAC key (HS256, HS384 or HS512), from
    /// publishers and subscribers.
    #[arg(
        long,
        env = "SSE_HUB_JWT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    jwt_key: Option<String>,

    /// Require JSON Web Tokens that this public key verifies: a PEM file holding a public key
    /// (RSA: RS256/384/512 and PS256/384/512; EC P-256: ES256; EC P-384: ES384; Ed25519: EdDSA;
    /// RSA keys of 2048 to 4096 bits) or a certificate holding one.
    #[arg(long, env = "SSE_HUB_JWT_PUBLIC_KEY", value_name = "FILE")]
    jwt_public_key: Option<std::path::PathBuf>,

    /// Require JSON Web Tokens that a key of this JWK Set verifies: an http(s) URL (fetched at
    /// start, within 5 s, and again when a token names a `kid` it does not hold; see
    /// --jwks-refresh) or a file. The token's `kid` picks the key.
    #[arg(
        long,
        env = "SSE_HUB_JWKS",
        value_name = "URL-OR-FILE",
        hide_env_values = true
    )]
    jwks: Option<String>,

    /// Publishers' own HMAC key: with any --publisher-* key, publishers' tokens are verified
    /// with those only, not with --jwt-key, --jwt-public-key or --jwks.
    #[arg(
        long,
        env = "SSE_HUB_PUBLISHER_JWT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    publisher_jwt_key: Option<String>,

    /// Publishers' own public key file (PEM; see --jwt-public-key).
    #[arg(long, env = "SSE_HUB_PUBLISHER_JWT_PUBLIC_KEY", value_name = "FILE")]
    publisher_jwt_public_key: Option<std::path::PathBuf>,

    /// Publishers' own JWK Set (URL or file; see --jwks).
    #[arg(
        long,
        env = "SSE_HUB_PUBLISHER_JWKS",
        value_name = "URL-OR-FILE",
        hide_env_values = true
    )]
    publisher_jwks: Option<String>,

    /// Subscribers' own HMAC key: with any --subscriber-* key, subscribers' tokens are verified
    /// with those only, not with --jwt-key, --jwt-public-key or --jwks.
    #[arg(
        long,
        env = "SSE_HUB_SUBSCRIBER_JWT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    subscriber_jwt_key: Option<String>,

    /// Subscribers' own public key file (PEM; see --jwt-public-key).
    #[arg(long, env = "SSE_HUB_SUBSCRIBER_JWT_PUBLIC_KEY", value_name = "FILE")]
    subscriber_jwt_public_key: Option<std::path::PathBuf>,

    /// Subscribers' own JWK Set (URL or file; see --jwks).
    #[arg(
        long,
        env = "SSE_HUB_SUBSCRIBER_JWKS",
        value_name = "URL-OR-FILE",
        hide_env_values = true
    )]
    subscriber_jwks: Option<String>,

    /// Take RFC 9068 access tokens (`typ: at+jwt`, draft-dunglas-mercure-08) whose `aud` names
    /// this URL, the hub's resource identifier (repeatable; with --jwt-issuer), e.g.
    /// https://hub.example.com/.well-known/mercure.
    #[arg(
        long = "jwt-audience",
        env = "SSE_HUB_JWT_AUDIENCE",
        value_name = "URL",
        value_delimiter = ','
    )]
    jwt_audience: Vec<String>,

    /// Take access tokens whose `iss` is this issuer (repeatable; with --jwt-audience).
    #[arg(
        long = "jwt-issuer",
        env = "SSE_HUB_JWT_ISSUER",
        value_name = "URL",
        value_delimiter = ','
    )]
    jwt_issuer: Vec<String>,

    /// Take access tokens only: refuse Mercure 0.x tokens (no `typ: at+jwt`, rights in the
    /// `mercure` claim), which are taken by default.
    #[arg(long, env = "SSE_HUB_NO_LEGACY_TOKENS")]
    no_legacy_tokens: bool,

    /// The name of the cookie that carries a 0.x token (the __Secure-mercure_access_token cookie
    /// is read too, first).
    #[arg(
        long,
        env = "SSE_HUB_COOKIE_NAME",
        value_name = "NAME",
        default_value = "mercureAuthorization"
    )]
    cookie_name: String,

    /// Fetch a --jwks URL (or read its file) again at most once per this long, however many
    /// tokens name a key it does not hold, e.g. 30s, 5m. Keys are also read again in the
    /// background once they are 10 minutes old.
    #[arg(long, env = "SSE_HUB_JWKS_REFRESH", default_value = "30s", value_name = "DURATION",
          value_parser = crate::listen::parse_duration)]
    jwks_refresh: Duration,

    /// With a key: let subscribers without a token receive public updates.
    #[arg(long, env = "SSE_HUB_ANONYMOUS")]
    anonymous: bool,

    /// Allow cross-origin requests (with credentials) from this origin (repeatable); `*` allows
    /// any origin without credentials (listed origins keep theirs).
    #[arg(
        long = "cors-origin",
        env = "SSE_HUB_CORS_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    cors_origin: Vec<String>,

    /// The most connections open at once; more get 429 Too Many Requests [default: derived
    /// from the file descriptor limit, which the hub raises to its hard limit at start: that
    /// limit minus a reserve of a tenth of it (at least 32, at most 1024) for Redis, logs, the
    /// listener and the accept reserve; the first log lines give both numbers].
    #[arg(long, env = "SSE_HUB_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,

    /// The most connections open at once from one IP address; more get 429. An HTTP/2
    /// connection counts once, and each of its event streams once more [default: no limit].
    #[arg(long, env = "SSE_HUB_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    max_connections_per_ip: Option<usize>,

    /// The most distinct URI templates and URL patterns subscribers may hold at once; a
    /// subscription that would add one more gets 503. Each is matched against every published
    /// topic, so this bounds what a publish costs. Exact topics and `*` are not counted.
    #[arg(long, env = "SSE_HUB_MAX_PATTERNS", value_name = "N",
          default_value_t = sse_hub::DEFAULT_MAX_PATTERNS)]
    max_patterns: usize,

    /// Threads serving event streams [default: one per core available to the process, as
    /// `taskset` and cgroup quotas allow].
    #[arg(long, env = "SSE_HUB_STREAM_THREADS", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub(super) stream_threads: Option<u16>,

    /// Threads serving every other request (publishes above all), apart from the streams so
    /// that a publish is taken at once however busy the streams are [default: half the
    /// available cores, at least 2 and at most 8].
    #[arg(long, env = "SSE_HUB_REQUEST_THREADS", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub(super) request_threads: Option<u16>,

    /// The largest publish request body accepted (413 above it), in bytes.
    #[arg(long, env = "SSE_HUB_MAX_BODY", default_value_t = 1 << 20, value_name = "BYTES")]
    max_body: usize,

    /// How long a client may take to send a request's head and body (408 after it); also how
    /// long a connection may stay idle between requests (an HTTP/2 one: with no open stream).
    #[arg(long, env = "SSE_HUB_HEADER_TIMEOUT", default_value = "10s", value_name = "DURATION",
          value_parser = crate::listen::parse_duration)]
    header_timeout: Duration,

    /// How many events may wait for one subscriber before it is disconnected as too slow.
    #[arg(long, env = "SSE_HUB_QUEUE", default_value_t = 4096, value_name = "N")]
    queue: usize,

    /// Hold publishes back (100 ms at most each) while subscribers are this many events behind
    /// on average, so that a burst waits at the publisher instead of in every queue (0: never).
    #[arg(
        long,
        env = "SSE_HUB_PUBLISH_BACKLOG",
        default_value_t = 64,
        value_name = "N"
    )]
    publish_backlog: u64,

    // Hostile clients: forged requests from other sites' pages.
    /// Accept publishes authorized by a cookie (the --cookie-name one or
    /// __Secure-mercure_access_token) from pages of this origin
    /// (repeatable, e.g. https://app.example.com): a cookie-authorized publish needs an Origin
    /// (or Referer) listed here, else 403, against cross-site request forgery. Without it such
    /// publishes are refused; tokens sent as `Authorization: Bearer` or in the query are not
    /// affected.
    #[arg(
        long = "publish-origin",
        env = "SSE_HUB_PUBLISH_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    publish_origin: Vec<String>,

    /// Also answer requests whose Host header names this host (repeatable; port ignored, case
    /// ignored; `*` for any). Bound to loopback, the hub answers only loopback names
    /// (localhost, *.localhost, 127.x.x.x, [::1]) and refuses others with 421, against DNS
    /// rebinding; bound to another address it checks Host only when this flag is given.
    #[arg(
        long = "allowed-host",
        env = "SSE_HUB_ALLOWED_HOST",
        value_name = "HOST",
        value_delimiter = ','
    )]
    allowed_host: Vec<String>,

    /// Serve https with this certificate chain (PEM, the server's certificate first; with
    /// --tls-key). ALPN offers h2 and http/1.1: browsers multiplex every EventSource of a
    /// page over one HTTP/2 connection. [default: plain HTTP/1.1]
    #[arg(
        long,
        env = "SSE_HUB_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<std::path::PathBuf>,

    /// A proxy or load balancer in front of the hub, as an address or CIDR block (repeatable,
    /// e.g. 10.0.0.0/8): from these peers only, the client's address is taken from the PROXY
    /// protocol (v1 or v2, when the connection starts with it) or from Forwarded /
    /// X-Forwarded-For (the rightmost hop that is not a trusted proxy), for per-IP limits and
    /// logs. From anyone else those headers are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "SSE_HUB_TRUSTED_PROXY",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    trusted_proxy: Vec<String>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "SSE_HUB_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<std::path::PathBuf>,

    /// Without TLS: also serve HTTP/2 with prior knowledge (h2c) on the plain port, to
    /// clients whose connection opens with the HTTP/2 preface (a proxy that speaks h2c to
    /// its backends; `curl --http2-prior-knowledge`). HTTP/1.1 clients are served as before.
    #[arg(long, env = "SSE_HUB_H2C", conflicts_with = "tls_cert")]
    h2c: bool,

    // Hostile clients: streams that hold resources.
    /// Close a stream whose client takes no byte for this long while events wait for it (it
    /// stopped reading; it resumes from history when it comes back), e.g. 30s, 2m (0 disables).
    #[arg(long, env = "SSE_HUB_WRITE_TIMEOUT", default_value = "30s", value_name = "DURATION",
          value_parser = parse_duration_or_zero)]
    write_timeout: Duration,

    /// End every stream once it is this old, after a `retry:` of 1 to 5 s (random per stream),
    /// so that clients reconnect spread out and resume with Last-Event-ID, e.g. 1h
    /// [default: streams live on].
    #[arg(long, env = "SSE_HUB_MAX_STREAM_LIFETIME", value_name = "DURATION",
          value_parser = parse_duration_or_zero)]
    max_stream_lifetime: Option<Duration>,

    /// The most bytes the history keeps (topics, ids, types and data of every event counted),
    /// in memory and in the Redis stream alike, e.g. 67108864, 64MiB, 512KiB.
    #[arg(long, env = "SSE_HUB_HISTORY_BYTES", default_value = "64MiB", value_name = "BYTES",
          value_parser = parse_bytes)]
    history_bytes: usize,

    /// The most memory that requests being received may take, all connections together (heads
    /// and publish bodies, past 16 KiB each); a request that would need more gets 503, e.g.
    /// 256MiB.
    #[arg(long, env = "SSE_HUB_REQUEST_MEMORY", default_value = "256MiB", value_name = "BYTES",
          value_parser = parse_bytes)]
    request_memory: usize,

    // Presence.
    /// Announce subscriptions and serve Mercure's subscriptions API (needs a key): each
    /// subscription that opens or ends is published as a private update on
    /// /.well-known/mercure/subscriptions/{topic}/{subscriber} (JSON-LD, with `active` and the
    /// token's `mercure.payload`), and GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]
    /// lists the active ones that the caller's `mercure.subscribe` claim covers, with the
    /// lastEventID to subscribe from. Off: those URLs answer 404.
    #[arg(long, env = "SSE_HUB_SUBSCRIPTIONS")]
    subscriptions: bool,

    /// With --subscriptions: the most active subscriptions listed (one per selector of each
    /// subscriber); a subscriber that would not fit gets 503.
    #[arg(
        long,
        env = "SSE_HUB_MAX_SUBSCRIPTIONS",
        default_value_t = 65_536,
        value_name = "N"
    )]
    max_subscriptions: usize,

    /// With --subscriptions: the most bytes the list of active subscriptions takes (selectors,
    /// ids, payloads, and about 160 bytes per entry), e.g. 16MiB.
    #[arg(long, env = "SSE_HUB_MAX_SUBSCRIPTIONS_BYTES", default_value = "16MiB",
          value_name = "BYTES", value_parser = parse_bytes)]
    max_subscriptions_bytes: usize,

    /// With --subscriptions and --redis: how often each hub process refreshes its presence key
    /// in Redis (which lives three times as long) and checks the other processes'. The
    /// subscriptions of a process that stopped without announcing their end (it crashed) are
    /// dropped, and their end announced, two to three periods after its key expired.
    #[arg(long, env = "SSE_HUB_SUBSCRIPTIONS_HEARTBEAT", default_value = "10s",
          value_name = "DURATION", value_parser = crate::listen::parse_duration)]
    subscriptions_heartbeat: Duration,
}

/// Parses a byte count: a whole number, optionally followed by KiB, MiB or
/// GiB (or K, M, G, also meaning powers of 1024).
fn parse_bytes(value: &str) -> Result<usize, String> {
    let err = || {
        format!(
            "{value:?} is not a byte count: write a whole number, optionally with KiB, MiB or GiB (e.g. 67108864, 64MiB)"
        )
    };
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: usize = number.parse().map_err(|_| err())?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(err()),
    };
    number.checked_mul(scale).ok_or_else(err)
}

/// Parses a duration, accepting `0` (off).
fn parse_duration_or_zero(value: &str) -> Result<Duration, String> {
    if value
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        == "0"
    {
        return Ok(Duration::ZERO);
    }
    crate::listen::parse_duration(value)
}

impl HubArgs {
    /// The hub's settings from these flags (checked when the hub starts).
    pub fn to_config(&self) -> Config {
        let mut config = Config::default();
        config.listen = self.listen;
        config.redis = self.redis.clone();
        config.history = self.history;
        config.history_bytes = self.history_bytes;
        config.heartbeat = Some(self.heartbeat);
        config.retry = self.retry.map(Duration::from_millis);
        config.jwt_key = self.jwt_key.clone();
        config.jwt_public_key = self.jwt_public_key.clone();
        config.jwks = self.jwks.clone();
        config.publisher_jwt_key = self.publisher_jwt_key.clone();
        config.publisher_jwt_public_key = self.publisher_jwt_public_key.clone();
        config.publisher_jwks = self.publisher_jwks.clone();
        config.subscriber_jwt_key = self.subscriber_jwt_key.clone();
        config.subscriber_jwt_public_key = self.subscriber_jwt_public_key.clone();
        config.subscriber_jwks = self.subscriber_jwks.clone();
        config.jwt_audiences = self.jwt_audience.clone();
        config.jwt_issuers = self.jwt_issuer.clone();
        config.legacy_tokens = !self.no_legacy_tokens;
        config.cookie_name = self.cookie_name.clone();
        config.jwks_refresh = self.jwks_refresh;
        config.anonymous = self.anonymous;
        config.cors_origins = self.cors_origin.clone();
        config.max_connections = self.max_connections;
        config.max_connections_per_ip = self.max_connections_per_ip;
        config.max_body = self.max_body;
        config.max_patterns = self.max_patterns;
        config.header_timeout = self.header_timeout;
        config.queue = self.queue;
        config.publish_backlog = self.publish_backlog;
        config.write_timeout = Some(self.write_timeout);
        config.max_stream_lifetime = self.max_stream_lifetime;
        config.request_memory = self.request_memory;
        config.publish_origins = self.publish_origin.clone();
        config.allowed_hosts = self.allowed_host.clone();
        config.page = Some(super::page::PAGE);
        config.tls_cert = self.tls_cert.clone();
        config.tls_key = self.tls_key.clone();
        config.h2c = self.h2c;
        config.trusted_proxies = self.trusted_proxy.clone();
        config.subscriptions = self.subscriptions;
        config.max_subscriptions = self.max_subscriptions;
        config.max_subscriptions_bytes = self.max_subscriptions_bytes;
        config.subscriptions_heartbeat = self.subscriptions_heartbeat;
        config
    }
}
