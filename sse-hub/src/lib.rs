//! A Mercure-compatible publish/subscribe hub over Server-Sent Events, as
//! a library: the hub behind `sse hub`, to run on a listener of your own or
//! to mount inside an axum application (feature `axum`).
//!
//! Subscribers open `GET /.well-known/mercure?topic=T` as an event stream
//! (resuming with `Last-Event-ID`); publishers `POST /.well-known/mercure`
//! with a form (`topic`, `data`, `type`, `id`, `retry`, `private`). With a
//! key ([`Config::jwt_key`], [`Config::jwt_public_key`],
//! [`Config::jwks`], or separate publisher and subscriber keys), both need
//! JSON Web Tokens: Mercure 0.x tokens (`mercure.publish` /
//! `mercure.subscribe` claims) and RFC 9068 access tokens
//! (`authorization_details`, with [`Config::jwt_audiences`] and
//! [`Config::jwt_issuers`]) on the same hub. With [`Config::redis`], every
//! hub on the same Redis acts as one (history and updates in a Redis
//! stream).
//!
//! What it is made of:
//!
//! * the Mercure rules: the form and its limits, topic selectors, token
//!   authorization, private updates, cursors (`publish`, `subscribe`,
//!   `auth`, `query`);
//! * the backends: an in-memory [`Broker`](sse_tokio::server::Broker), or
//!   Redis Streams (`backend`, `redis`);
//! * serving: a keep-alive HTTP/1.1 server on tokio with connection,
//!   per-address and memory limits, `Host` and CSRF checks, CORS,
//!   metrics ([`Hub::serve`]), and the routes for axum ([`Hub::router`]).
//!
//! ```no_run
//! use sse_hub::{Config, Hub};
//!
//! # async fn run() -> Result<(), sse_hub::Error> {
//! let config = Config::default();
//! let listener = sse_hub::listen(config.listen).map_err(|e| sse_hub::Error::Bind(config.listen, e))?;
//! let hub = Hub::start(config).await?;
//! hub.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(())
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
mod answers;
mod auth;
#[cfg(feature = "axum")]
mod axum_routes;
mod backend;
mod budget;
mod config;
mod conn;
mod cors;
mod fds;
mod forwarded;
#[doc(hidden)]
pub mod fuzz;
#[cfg(feature = "tls")]
mod h2;
mod host;
mod http;
mod limits;
mod metrics;
mod origin;
#[cfg(feature = "tls")]
mod prefixed;
mod presence;
mod proxy_protocol;
mod publish;
mod query;
mod redact;
mod redis;
mod selectors;
mod serve;
mod subscribe;
#[cfg(feature = "tls")]
mod tls;
mod trim;

#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

pub use auth::weak_key_warning;
pub use config::Config;
pub use fds::{FdLimit, derived_max_connections, raise_limit as raise_descriptor_limit};
pub use serve::listen;
/// The default of [`Config::max_patterns`] (`--max-patterns`).
pub use sse_proto::server::DEFAULT_MAX_PATTERNS;

use auth::Auth;
use backend::Backend;
use limits::Limits;
use metrics::Metrics;

/// The hub's URL: subscribe with `GET`, publish with `POST`.
pub const HUB_PATH: &str = "/.well-known/mercure";
/// The subscriptions API's URL (with [`Config::subscriptions`]):
/// `GET` lists the active subscriptions, and
/// `GET …/{topic}[/{subscriber}]` some or one of them.
pub const SUBSCRIPTIONS_PATH: &str = presence::SUBSCRIPTIONS_PATH;

/// Everything a connection needs, shared by all of them.
struct Shared {
    config: Config,
    /// The `publish_origins`, normalized.
    publish_origins: Vec<String>,
    /// Which `Host` values are answered.
    hosts: host::HostCheck,
    /// The proxies whose word on the client's address is taken.
    trusted: forwarded::TrustedProxies,
    backend: Backend,
    auth: Option<Auth>,
    /// Compiled selectors (URI templates, URL patterns), shared by every
    /// subscription and token.
    selectors: Arc<selectors::SelectorCache>,
    limits: Arc<Limits>,
    /// The memory requests being received may take, all together.
    request_memory: Arc<budget::RequestMemory>,
    metrics: Metrics,
    /// Announcing subscriptions and listing them (`--subscriptions`).
    presence: Option<presence::Presence>,
    /// Flips to true when the hub starts shutting down.
    shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
    /// The runtime that serves event streams.
    streams: tokio::runtime::Handle,
    /// The runtime that serves every other request (publishes above all).
    requests: tokio::runtime::Handle,
    /// Streams and other requests share one runtime ([`Hub::start`]):
    /// nothing moves between "the two".
    one_runtime: bool,
    /// Event streams served by this hub's own HTTP/1.1 server now (see
    /// `serve::place_stream`).
    streams_running: serve::StreamCount,
    /// Whether the backend follows the shared stream yet.
    following: std::sync::Once,
    /// The TLS handshake of every connection, with `--tls-cert`.
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Shared {
    /// Starts following the backend's shared stream (Redis), once: when
    /// the hub starts serving, so that whoever runs it can say how it runs
    /// first (the backend logs nothing until then).
    fn follow(&self) {
        self.following.call_once(|| {
            self.backend.follow();
            if let Some(presence) = &self.presence {
                presence.follow();
            }
        });
    }
}

/// A running hub: its backend, its limits and its metrics. Cheap to clone
/// (all clones are the same hub).
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("backend", &self.shared.backend.describe())
            .field("open_connections", &self.shared.limits.open())
            .finish_non_exhaustive()
    }
}

/// Why the hub could not start or serve.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The settings are inconsistent or invalid (the message says which
    /// and how to fix it).
    Config(String),
    /// The listening address could not be bound.
    Bind(SocketAddr, io::Error),
    /// The runtime could not start.
    Runtime(io::Error),
    /// The backend could not start (Redis unreachable, say).
    Backend(String),
    /// A key could not be loaded (a JWK Set URL that cannot be fetched,
    /// say; the message names the flag).
    Keys(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => f.write_str(e),
            Error::Bind(addr, e) => write!(
                f,
                "cannot listen on {addr}: {e} (is another hub running there? pick another --listen)"
            ),
            Error::Runtime(e) => write!(f, "cannot start the async runtime: {e}"),
            Error::Backend(e) | Error::Keys(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind(_, e) | Error::Runtime(e) => Some(e),
            Error::Config(_) | Error::Backend(_) | Error::Keys(_) => None,
        }
    }
}

impl Hub {
    /// Checks `config` and starts the hub's backend (connecting to Redis
    /// when configured), on the current tokio runtime. Without
    /// [`Config::max_connections`], the process's file descriptor limit is
    /// raised to its hard limit and the connection limit derived from it
    /// ([`derived_max_connections`]). Publishes and event
    /// streams are served on that runtime; see [`Hub::start_on`] to serve
    /// publishes on a runtime of their own.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings, [`Error::Keys`] when a key
    /// cannot be loaded, [`Error::Backend`] when the backend cannot start.
    pub async fn start(config: Config) -> Result<Hub, Error> {
        Hub::start_with(config, None).await
    }

    /// [`Hub::start`], serving every request other than event streams on
    /// `requests` (a runtime with threads and an event loop of its own, so
    /// that a publish is taken as soon as it arrives however busy the
    /// streams are).
    ///
    /// # Errors
    /// As [`Hub::start`].
    pub async fn start_on(config: Config, requests: tokio::runtime::Handle) -> Result<Hub, Error> {
        Hub::start_with(config, Some(requests)).await
    }

    /// [`Hub::start_on`] with a runtime of its own for other requests, or
    /// [`Hub::start`] without (`None`).
    async fn start_with(
        config: Config,
        requests: Option<tokio::runtime::Handle>,
    ) -> Result<Hub, Error> {
        let checked = config.check().map_err(Error::Config)?;
        let config = checked.config;
        #[cfg(feature = "tls")]
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(
                tls::server_config(cert, key).map_err(Error::Config)?,
            )),
            _ => None,
        };
        let max_connections = config
            .max_connections
            .unwrap_or_else(|| fds::derived_max_connections(fds::raise_limit()));
        let metrics = Metrics::default();
        let registry = config.subscriptions.then(|| {
            Arc::new(presence::Registry::new(
                config.max_subscriptions,
                config.max_subscriptions_bytes,
            ))
        });
        let backend = Backend::start(&config, metrics.clone(), registry.clone())
            .await
            .map_err(Error::Backend)?;
        let selectors = Arc::new(selectors::SelectorCache::default());
        let auth = Auth::start(&config, selectors.clone())
            .await
            .map_err(Error::Keys)?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let presence = registry.map(|registry| {
            presence::Presence::new(
                registry,
                &backend,
                config.subscriptions_heartbeat,
                shutdown.clone(),
            )
        });
        let shared = Shared {
            limits: Arc::new(Limits::new(max_connections, config.max_connections_per_ip)),
            request_memory: budget::RequestMemory::new(config.request_memory),
            publish_origins: checked.publish_origins,
            hosts: checked.hosts,
            trusted: checked.trusted,
            config,
            backend,
            auth,
            selectors,
            metrics,
            presence,
            shutdown,
            shutdown_tx,
            streams: tokio::runtime::Handle::current(),
            one_runtime: requests.is_none(),
            requests: requests.unwrap_or_else(tokio::runtime::Handle::current),
            streams_running: serve::StreamCount::default(),
            following: std::sync::Once::new(),
            #[cfg(feature = "tls")]
            tls,
        };
        Ok(Hub {
            shared: Arc::new(shared),
        })
    }

    /// The backend, as the first log line names it (`memory`, or the Redis
    /// URL without its password).
    pub fn backend(&self) -> String {
        self.shared.backend.describe()
    }

    /// How publishers and subscribers are authorized, as the first log
    /// line of `sse hub` says it: the keys of each role and the kinds of
    /// token taken, or that the hub is open.
    pub fn auth_summary(&self) -> String {
        match &self.shared.auth {
            None => "off, anyone may publish and subscribe".to_owned(),
            Some(auth) if self.shared.config.anonymous => {
                format!("{}; anonymous subscribers allowed", auth.summary())
            }
            Some(auth) => auth.summary(),
        }
    }

    /// What to warn about once the hub runs: HMAC keys shorter than 256
    /// bits, key set entries that were skipped (each a sentence; none
    /// holds a key).
    pub fn warnings(&self) -> Vec<String> {
        self.shared
            .auth
            .as_ref()
            .map(|auth| auth.warnings().to_vec())
            .unwrap_or_default()
    }

    /// How many subscribers are connected.
    pub fn subscribers(&self) -> usize {
        self.shared.backend.broker().subscribers()
    }

    /// How many connections the hub's own server ([`Hub::serve`]) has
    /// open.
    pub fn open_connections(&self) -> usize {
        self.shared.limits.open()
    }

    /// The most connections open at once.
    pub fn max_connections(&self) -> usize {
        self.shared.limits.max()
    }

    /// The metrics page (`GET /metrics`), in the Prometheus text format.
    pub fn metrics(&self) -> String {
        self.shared.metrics.render(&self.shared)
    }
}
