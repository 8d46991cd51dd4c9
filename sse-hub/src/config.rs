//! [`Config`]: what a hub is told, and its check before the hub starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::host::HostCheck;

/// A hub's settings. [`Config::default`] is the `sse hub` command's
/// defaults (an open hub on `127.0.0.1:8080`, history in memory); each
/// field names the flag that sets it there.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The address the hub serves (`--listen`); with [`Hub::serve`](crate::Hub::serve)
    /// the listener is the caller's, and this address decides which `Host`
    /// values are answered (loopback names only for a loopback address).
    pub listen: SocketAddr,
    /// Share history and updates with every hub on this Redis
    /// (`--redis`, `redis://[:PASSWORD@]HOST:PORT[/DB]`); `None`: in memory.
    pub redis: Option<String>,
    /// How many events the history keeps (`--history`).
    pub history: usize,
    /// The history's byte cap, memory and Redis alike (`--history-bytes`).
    pub history_bytes: usize,
    /// A keep-alive comment after this much idleness (`--heartbeat`);
    /// `None`: off.
    pub heartbeat: Option<Duration>,
    /// The `retry:` sent at the start of every stream (`--retry`).
    pub retry: Option<Duration>,
    /// The HMAC secret (HS256, HS384, HS512) that verifies publishers' and
    /// subscribers' tokens (`--jwt-key`). With none of the key fields set
    /// (this one, [`jwt_public_key`](Config::jwt_public_key),
    /// [`jwks`](Config::jwks) and their publisher and subscriber
    /// variants), the hub is open.
    pub jwt_key: Option<String>,
    /// A PEM file with the public key (RSA, EC P-256 or P-384, Ed25519),
    /// or a certificate holding it, that verifies publishers' and
    /// subscribers' tokens (`--jwt-public-key`): RS256/384/512 and
    /// PS256/384/512 for RSA, ES256 for P-256, ES384 for P-384, EdDSA for
    /// Ed25519.
    pub jwt_public_key: Option<PathBuf>,
    /// A JWK Set whose keys verify publishers' and subscribers' tokens
    /// (`--jwks`): an `http://` or `https://` URL, fetched when the hub
    /// starts and again when a token names a key it does not hold (see
    /// [`jwks_refresh`](Config::jwks_refresh)), or a file path.
    pub jwks: Option<String>,
    /// Publishers' own HMAC secret (`--publisher-jwt-key`). With any of
    /// the three `publisher_*` key fields set, publishers' tokens are
    /// verified with those only, not with the shared ones.
    pub publisher_jwt_key: Option<String>,
    /// Publishers' own public key file (`--publisher-jwt-public-key`).
    pub publisher_jwt_public_key: Option<PathBuf>,
    /// Publishers' own JWK Set (`--publisher-jwks`).
    pub publisher_jwks: Option<String>,
    /// Subscribers' own HMAC secret (`--subscriber-jwt-key`). With any of
    /// the three `subscriber_*` key fields set, subscribers' tokens are
    /// verified with those only, not with the shared ones.
    pub subscriber_jwt_key: Option<String>,
    /// Subscribers' own public key file (`--subscriber-jwt-public-key`).
    pub subscriber_jwt_public_key: Option<PathBuf>,
    /// Subscribers' own JWK Set (`--subscriber-jwks`).
    pub subscriber_jwks: Option<String>,
    /// The resource identifiers of the hub (`--jwt-audience`): an RFC 9068
    /// access token (`typ: at+jwt`) is taken only when its `aud` names one
    /// of them. With [`jwt_issuers`](Config::jwt_issuers); without both,
    /// access tokens are refused.
    pub jwt_audiences: Vec<String>,
    /// The issuers whose access tokens are taken (`--jwt-issuer`): the
    /// token's `iss` must be one of them.
    pub jwt_issuers: Vec<String>,
    /// Take Mercure 0.x tokens (the `mercure` claim) besides access tokens
    /// (the default; `--no-legacy-tokens` turns it off).
    pub legacy_tokens: bool,
    /// The name of the 0.x token cookie (`--cookie-name`; default
    /// `mercureAuthorization`). The draft-08 cookie,
    /// `__Secure-mercure_access_token`, is read too, first.
    pub cookie_name: String,
    /// The least time between two reads of a key set, however many tokens
    /// name keys it does not hold (`--jwks-refresh`).
    pub jwks_refresh: Duration,
    /// With a key: subscribers without a token get public updates
    /// (`--anonymous`).
    pub anonymous: bool,
    /// Origins allowed cross-origin requests (`--cors-origin`; `*`: any,
    /// without credentials).
    pub cors_origins: Vec<String>,
    /// The most connections open at once (`--max-connections`); `None`:
    /// derived from the file descriptor limit.
    pub max_connections: Option<usize>,
    /// The most connections from one IP address
    /// (`--max-connections-per-ip`); each event stream of an HTTP/2
    /// connection counts as one more.
    pub max_connections_per_ip: Option<usize>,
    /// The most distinct URI templates and URL patterns subscribers may
    /// hold at once (`--max-patterns`): each is matched against every
    /// published topic, so this bounds what a publish costs, whatever
    /// subscribers ask for. A subscription that would add one more gets
    /// 503. Exact topics and `*` are not counted.
    pub max_patterns: usize,
    /// The largest publish body, in bytes (`--max-body`).
    pub max_body: usize,
    /// How long a client may take to send a request (`--header-timeout`),
    /// and how long a connection may stay idle between requests.
    pub header_timeout: Duration,
    /// How many events may wait for one subscriber before it is cut off
    /// (`--queue`).
    pub queue: usize,
    /// Hold publishes back while subscribers are this many events behind
    /// on average (`--publish-backlog`; 0: never).
    pub publish_backlog: u64,
    /// Close a stream whose client takes no byte for this long
    /// (`--write-timeout`); `None`: never.
    pub write_timeout: Option<Duration>,
    /// End streams once they are this old (`--max-stream-lifetime`).
    pub max_stream_lifetime: Option<Duration>,
    /// The memory requests being received may take, all together, in
    /// bytes (`--request-memory`).
    pub request_memory: usize,
    /// Origins whose pages may publish with the `mercureAuthorization`
    /// cookie (`--publish-origin`).
    pub publish_origins: Vec<String>,
    /// More `Host` names to answer (`--allowed-host`; `*`: any).
    pub allowed_hosts: Vec<String>,
    /// The page `GET /` serves; `None`: 404.
    pub page: Option<&'static str>,
    /// Serve https with this PEM certificate chain (`--tls-cert`; with
    /// [`tls_key`](Config::tls_key)), ALPN `h2` and `http/1.1` (feature
    /// `tls`). `None`: plain HTTP/1.1.
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of [`tls_cert`](Config::tls_cert) (`--tls-key`).
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve HTTP/2 with prior knowledge (h2c) on the plain port (`--h2c`,
    /// feature `tls`): a connection whose first bytes are the HTTP/2
    /// preface is served as HTTP/2 (what a proxy that speaks h2c to its
    /// backends sends). Off by default.
    pub h2c: bool,
    /// Proxies in front of the hub, as addresses or CIDR blocks
    /// (`--trusted-proxy`): from them only, the client address comes from
    /// the PROXY protocol or `Forwarded`/`X-Forwarded-For`, for per-IP
    /// limits and logs.
    pub trusted_proxies: Vec<String>,
    /// Announce subscriptions and serve the subscriptions API
    /// (`--subscriptions`): each subscription that opens or ends is
    /// published as a private update on
    /// `/.well-known/mercure/subscriptions/{topic}/{subscriber}`, and
    /// `GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]`
    /// lists the active ones. Needs [`jwt_key`](Config::jwt_key)
    /// (subscription events are private). Off: those URLs answer 404 and
    /// subscribers cost nothing more.
    pub subscriptions: bool,
    /// The most active subscriptions (one per selector of each subscriber)
    /// the list holds (`--max-subscriptions`): a subscriber that would not
    /// fit gets 503, and events of other processes past it are not listed.
    pub max_subscriptions: usize,
    /// The most bytes the list of active subscriptions is counted for
    /// (`--max-subscriptions-bytes`): selectors, ids, payloads and about
    /// 160 bytes per entry.
    pub max_subscriptions_bytes: usize,
    /// On Redis, with [`subscriptions`](Config::subscriptions): how often
    /// each process refreshes its presence key, which lives three times as
    /// long, and checks the other processes' (`--subscriptions-heartbeat`).
    /// The subscriptions of a process that stopped without announcing
    /// their end (it crashed) are dropped two to three periods after its
    /// key expires.
    pub subscriptions_heartbeat: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            redis: None,
            history: 10_000,
            history_bytes: 64 << 20,
            heartbeat: Some(Duration::from_secs(15)),
            retry: None,
            jwt_key: None,
            jwt_public_key: None,
            jwks: None,
            publisher_jwt_key: None,
            publisher_jwt_public_key: None,
            publisher_jwks: None,
            subscriber_jwt_key: None,
            subscriber_jwt_public_key: None,
            subscriber_jwks: None,
            jwt_audiences: Vec::new(),
            jwt_issuers: Vec::new(),
            legacy_tokens: true,
            cookie_name: crate::auth::LEGACY_COOKIE.to_owned(),
            jwks_refresh: crate::auth::DEFAULT_JWKS_REFRESH,
            anonymous: false,
            cors_origins: Vec::new(),
            max_connections: None,
            max_connections_per_ip: None,
            max_patterns: sse_proto::server::DEFAULT_MAX_PATTERNS,
            max_body: 1 << 20,
            header_timeout: Duration::from_secs(10),
            queue: 4096,
            publish_backlog: 64,
            write_timeout: Some(Duration::from_secs(30)),
            max_stream_lifetime: None,
            request_memory: 256 << 20,
            publish_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            page: None,
            tls_cert: None,
            tls_key: None,
            h2c: false,
            trusted_proxies: Vec::new(),
            subscriptions: false,
            max_subscriptions: 65_536,
            max_subscriptions_bytes: 16 << 20,
            subscriptions_heartbeat: Duration::from_secs(10),
        }
    }
}

/// A checked [`Config`]: normalized origins and the `Host` check.
#[derive(Clone, Debug)]
pub(crate) struct Checked {
    pub(crate) config: Config,
    pub(crate) publish_origins: Vec<String>,
    pub(crate) hosts: HostCheck,
    pub(crate) trusted: crate::forwarded::TrustedProxies,
}

impl Config {
    /// Checks the settings as [`Hub::start`](crate::Hub::start) will, to
    /// report a mistake before opening anything.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config), saying which setting is
    /// wrong and how (naming its `sse hub` flag).
    pub fn validate(&self) -> Result<(), crate::Error> {
        self.clone()
            .check()
            .map(drop)
            .map_err(crate::Error::Config)?;
        // The key files are read (key sets by URL are fetched at start).
        crate::auth::check(self).map_err(crate::Error::Config)?;
        // The certificate and key are read (and matched) now too.
        #[cfg(feature = "tls")]
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            crate::tls::server_config(cert, key).map_err(crate::Error::Config)?;
        }
        Ok(())
    }

    /// Checks the settings, normalizing origins and hosts. The messages
    /// name the `sse hub` flag of each setting.
    pub(crate) fn check(mut self) -> Result<Checked, String> {
        self.check_auth()?;
        if self.subscriptions && !crate::auth::is_keyed(&self) {
            return Err(
                "--subscriptions needs a key (--jwt-key, --jwt-public-key or --jwks): \
                 subscription events are private updates, which only subscribers with a token \
                 receive, and the subscriptions API shows each caller what its token allows"
                    .into(),
            );
        }
        if self.subscriptions && (self.max_subscriptions == 0 || self.max_subscriptions_bytes == 0)
        {
            return Err(
                "--max-subscriptions and --max-subscriptions-bytes must be at least 1".into(),
            );
        }
        if self.subscriptions && self.subscriptions_heartbeat < Duration::from_millis(100) {
            return Err("--subscriptions-heartbeat must be at least 100ms".into());
        }
        if self.max_connections == Some(0) || self.max_connections_per_ip == Some(0) {
            return Err("connection limits must be at least 1".into());
        }
        if self.queue == 0 {
            return Err("--queue must be at least 1".into());
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(
                    "--tls-cert needs --tls-key (the certificate's private key, PEM)".into(),
                );
            }
            (None, Some(_)) => {
                return Err("--tls-key needs --tls-cert (the certificate chain, PEM)".into());
            }
            (Some(_), Some(_)) if !cfg!(feature = "tls") => {
                return Err(
                    "https needs the hub's `tls` feature, which this build leaves out".into(),
                );
            }
            _ => {}
        }
        self.redis = self.redis.filter(|r| !r.is_empty());
        self.heartbeat = self.heartbeat.filter(|d| !d.is_zero());
        self.write_timeout = self.write_timeout.filter(|d| !d.is_zero());
        self.max_stream_lifetime = self.max_stream_lifetime.filter(|d| !d.is_zero());
        self.cors_origins = self
            .cors_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        let publish_origins = publish_origins(&self.publish_origins)?;
        let allowed_hosts = self
            .allowed_hosts
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| crate::host::normalize(h))
            .collect::<Result<Vec<_>, _>>()?;
        let hosts = HostCheck::new(self.listen, &allowed_hosts);
        let trusted = crate::forwarded::TrustedProxies::parse(&self.trusted_proxies)?;
        Ok(Checked {
            config: self,
            publish_origins,
            hosts,
            trusted,
        })
    }
}

impl Config {
    /// The authorization settings' own consistency (the key files are read
    /// by `auth::check`).
    fn check_auth(&mut self) -> Result<(), String> {
        let secrets = [
            ("--jwt-key", &self.jwt_key),
            ("--publisher-jwt-key", &self.publisher_jwt_key),
            ("--subscriber-jwt-key", &self.subscriber_jwt_key),
        ];
        for (flag, secret) in secrets {
            if secret.as_deref() == Some("") {
                return Err(format!(
                    "{flag} is empty: give the HMAC key, or leave the flag out"
                ));
            }
        }
        let files = [
            ("--jwt-public-key", &self.jwt_public_key),
            ("--publisher-jwt-public-key", &self.publisher_jwt_public_key),
            (
                "--subscriber-jwt-public-key",
                &self.subscriber_jwt_public_key,
            ),
        ];
        for (flag, file) in files {
            if file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
                return Err(format!(
                    "{flag} is empty: give a PEM file, or leave the flag out"
                ));
            }
        }
        let sets = [
            ("--jwks", &self.jwks),
            ("--publisher-jwks", &self.publisher_jwks),
            ("--subscriber-jwks", &self.subscriber_jwks),
        ];
        for (flag, set) in sets {
            if set.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(format!(
                    "{flag} is empty: give a JWK Set URL or file, or leave the flag out"
                ));
            }
        }
        let keyed = crate::auth::is_keyed(self);
        if self.anonymous && !keyed {
            return Err(
                "--anonymous only makes sense with a key (--jwt-key, --jwt-public-key or --jwks): \
                 without one the hub is open to everyone"
                    .into(),
            );
        }
        let list = |values: &[String]| -> Vec<String> {
            values
                .iter()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect()
        };
        self.jwt_audiences = list(&self.jwt_audiences);
        self.jwt_issuers = list(&self.jwt_issuers);
        match (self.jwt_audiences.is_empty(), self.jwt_issuers.is_empty()) {
            (false, true) => {
                return Err(
                    "--jwt-audience needs --jwt-issuer: an access token is taken only from an \
                     issuer the hub is told to trust"
                        .into(),
                );
            }
            (true, false) => {
                return Err(
                    "--jwt-issuer needs --jwt-audience: an access token is taken only when its \
                     `aud` names this hub"
                        .into(),
                );
            }
            (false, false) if !keyed => {
                return Err(
                    "--jwt-audience and --jwt-issuer need a key to verify access tokens with \
                     (--jwt-key, --jwt-public-key or --jwks)"
                        .into(),
                );
            }
            _ => {}
        }
        if !self.legacy_tokens && (self.jwt_audiences.is_empty() || !keyed) {
            return Err(
                "--no-legacy-tokens leaves the hub no token to take: give --jwt-audience and \
                 --jwt-issuer (and a key) so that it takes access tokens"
                    .into(),
            );
        }
        let name = &self.cookie_name;
        let token_char = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if name.is_empty() || name.len() > 128 || !name.chars().all(token_char) {
            return Err(
                "--cookie-name must be a cookie name (RFC 6265): 1 to 128 letters, digits or any \
                 of ! # $ % & ' * + - . ^ _ ` | ~"
                    .into(),
            );
        }
        if self.jwks_refresh.is_zero() {
            return Err(
                "--jwks-refresh must be more than 0 (a flood of unknown key ids would make the \
                 hub fetch its key set for each)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The `--publish-origin` values, normalized; `*` and anything that is not
/// an origin are refused.
fn publish_origins(values: &[String]) -> Result<Vec<String>, String> {
    values
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| {
            if o.trim() == "*" {
                return Err(
                    "--publish-origin '*' would let every site's pages publish with a \
                            visitor's cookie: list the origins of your own pages instead \
                            (--publish-origin https://app.example.com)"
                        .to_owned(),
                );
            }
            crate::origin::normalize(o).ok_or_else(|| {
                format!(
                    "--publish-origin {o}: not an origin; write it as scheme://host[:port], \
                     like https://app.example.com"
                )
            })
        })
        .collect()
}
