//! [`Config`]: what a hub is told, and its check before the hub starts.

use std::net::SocketAddr;
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
    /// The HS256 key of publishers' and subscribers' tokens (`--jwt-key`);
    /// `None`: an open hub.
    pub jwt_key: Option<String>,
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
    /// (`--max-connections-per-ip`).
    pub max_connections_per_ip: Option<usize>,
    /// The most distinct URI templates and URL patterns subscribers may
    /// hold at once (`--max-patterns`): each is matched against every
    /// published topic, so this bounds what a publish costs, whatever
    /// subscribers ask for. A subscription that would add one more gets
    /// 503. Exact topics and `*` are not counted.
    pub max_patterns: usize,
    /// The largest publish body, in bytes (`--max-body`).
    pub max_body: usize,
    /// How long a client may take to send a request (`--header-timeout`).
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
        if self.jwt_key.as_deref() == Some("") {
            return Err(
                "--jwt-key is empty: give the HS256 key, or leave the flag out for an open hub"
                    .into(),
            );
        }
        if self.anonymous && self.jwt_key.is_none() {
            return Err("--anonymous only makes sense with --jwt-key (without a key the hub is open to everyone)".into());
        }
        if self.subscriptions && self.jwt_key.is_none() {
            return Err(
                "--subscriptions needs --jwt-key: subscription events are private \
                        updates, which only subscribers with a token receive, and the \
                        subscriptions API shows each caller what its token allows"
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
