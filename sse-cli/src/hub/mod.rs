//! `sse hub`: the Mercure-compatible publish/subscribe hub.
//!
//! One process serves subscribers (`GET /.well-known/mercure`), publishers
//! (`POST /.well-known/mercure`), the chat page (`GET /`), `/healthz` and
//! `/metrics`, on the lean HTTP/1.1 path of `sse-tokio`, over a
//! `sse_tokio::server::Broker` (history, topics, per-subscriber queues).
//! The contract is the project's hub specification; the modules here are
//! glue: argument parsing, routing, validation, authorization, limits.

mod auth;
mod backend;
mod budget;
mod config;
mod cors;
mod fds;
#[doc(hidden)]
pub mod fuzz;
mod host;
mod http;
mod limits;
mod metrics;
mod origin;
mod page;
mod publish;
mod query;
mod redact;
mod redis;
mod subscribe;
mod trim;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info, warn};

pub use config::{HubArgs, LONG_ABOUT};

use auth::Auth;
use backend::Backend;
use limits::Limits;
use metrics::Metrics;

/// Everything a connection needs, shared by all of them.
struct Hub {
    config: config::HubConfig,
    backend: Backend,
    auth: Option<Auth>,
    limits: Arc<Limits>,
    /// The memory requests being received may take, all together.
    request_memory: Arc<budget::RequestMemory>,
    metrics: Metrics,
    /// Flips to true when the hub starts shutting down.
    shutdown: watch::Receiver<bool>,
    /// The runtime that serves event streams.
    streams: tokio::runtime::Handle,
    /// The runtime that serves every other request (publishes above all).
    requests: tokio::runtime::Handle,
}

/// Why the hub could not run.
#[derive(Debug)]
pub enum Error {
    /// The arguments are inconsistent or invalid.
    Config(String),
    /// The listening address could not be bound.
    Bind(SocketAddr, io::Error),
    /// The runtime could not start.
    Runtime(io::Error),
    /// The backend could not start.
    Backend(String),
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
            Error::Backend(e) => f.write_str(e),
        }
    }
}

/// Runs the hub until SIGINT or SIGTERM.
pub fn run(args: &HubArgs) -> Result<(), Error> {
    let config = config::HubConfig::from_args(args).map_err(Error::Config)?;
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(serve(config))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SSE_HUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&io::stderr()))
        .with_target(false)
        .try_init();
}

async fn serve(config: config::HubConfig) -> Result<(), Error> {
    // First, before the hub opens anything else.
    let fd_limit = fds::raise_limit();
    let max_connections = config
        .max_connections
        .unwrap_or_else(|| fds::derived_max_connections(fd_limit));
    let listener = listen(config.listen).map_err(|e| Error::Bind(config.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Bind(config.listen, e))?;
    let metrics = Metrics::default();
    let backend = Backend::start(&config, metrics.clone())
        .await
        .map_err(Error::Backend)?;
    let auth = config.jwt_key.as_deref().map(Auth::new);
    info!(
        "sse hub listening on http://{addr} (backend: {}, history: {} events, auth: {}, heartbeat: {})",
        backend.describe(),
        config.history,
        match (&auth, config.anonymous) {
            (None, _) => "off, anyone may publish and subscribe",
            (Some(_), true) => "JWT (HS256), anonymous subscribers allowed",
            (Some(_), false) => "JWT (HS256) for publishers and subscribers",
        },
        config
            .heartbeat
            .map_or("off".to_owned(), |d| format!("{d:?}")),
    );
    log_descriptors(fd_limit, max_connections, config.max_connections.is_some());
    // After the first line, which says where the hub listens.
    if let Some(warning) = config.jwt_key.as_deref().and_then(auth::weak_key_warning) {
        warn!("{warning}");
    }
    backend.follow();
    // Event streams run on this runtime; every other request on a second
    // one, with its own threads and event loop, so that a publish is taken
    // as soon as it arrives, however many streams are busy writing: what
    // is published while a stream waits for its turn then goes out in its
    // next write (larger writes under load).
    let requests = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sse-requests")
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let hub = Arc::new(Hub {
        limits: Arc::new(Limits::new(max_connections, config.max_connections_per_ip)),
        request_memory: budget::RequestMemory::new(config.request_memory),
        config,
        backend,
        auth,
        metrics,
        shutdown: stop_rx,
        streams: tokio::runtime::Handle::current(),
        requests: requests.handle().clone(),
    });

    let trimmer = tokio::spawn(trim::run(hub.limits.clone()));
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut guard = fds::AcceptGuard::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    if let Some(socket) = guard.admit(socket, &hub) {
                        tokio::spawn(connection(hub.clone(), socket, peer));
                    }
                }
                // Out of file descriptors, say: answer 503 on the reserved
                // one, or wait a little; keep serving either way.
                Err(e) => guard.failed(e, &listener, &hub).await,
            },
            () = &mut signal => break,
        }
    }
    drop(listener);
    trimmer.abort();
    info!(
        "shutting down: ending {} streams with a randomized retry",
        hub.limits.open()
    );
    let _ = stop_tx.send(true);
    hub.backend.broker().shutdown(
        Some((Duration::from_secs(1), Duration::from_secs(4))),
        seed(),
    );
    hub.backend.stop();
    // Streams end once their last `retry:` is out, and requests in progress
    // are answered; give them a few seconds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while hub.limits.open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    info!("stopped ({} connections left open)", hub.limits.open());
    requests.shutdown_background();
    Ok(())
}

/// Logs the descriptor limit and the connection limit (after the first
/// line).
fn log_descriptors(limit: Option<fds::FdLimit>, max_connections: usize, given: bool) {
    let how = if given {
        "--max-connections"
    } else {
        "derived from the descriptor limit"
    };
    let Some(limit) = limit else {
        info!("at most {max_connections} connections ({how})");
        return;
    };
    let raised = if limit.now > limit.before {
        format!("raised from {}", limit.before)
    } else {
        "the hard limit, or as high as it could be raised".to_owned()
    };
    info!(
        "file descriptors: limit {} ({raised}); at most {max_connections} connections ({how}; \
         {} descriptors kept for the rest)",
        limit.now,
        limit.reserve()
    );
    let derived = limit.max_connections();
    if given && max_connections > derived {
        warn!(
            "--max-connections {max_connections} is above what {} file descriptors allow \
             ({derived}): when they run out, new connections get 503 until some close",
            limit.now
        );
    }
}

/// Binds with a deep accept queue: thousands of subscribers may connect at
/// once (the kernel caps it at `net.core.somaxconn`).
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    // Events are small writes that must leave at once. On Linux accepted
    // sockets inherit this from the listener, which saves a system call
    // per connection; elsewhere each connection sets it too.
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(8192)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A seed for the shutdown delays (different on every run).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

/// Which runtime a connection is served on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// The event streams' runtime.
    Streams,
    /// The other requests' runtime.
    Requests,
}

/// Serves one connection: requests one after another (keep-alive) until a
/// stream takes it over or it closes.
async fn connection(hub: Arc<Hub>, mut socket: TcpStream, peer: SocketAddr) {
    if !cfg!(target_os = "linux") {
        let _ = socket.set_nodelay(true);
    }
    let Some(slot) = hub.limits.enter(peer.ip()) else {
        hub.metrics.rejected();
        http::reject_busy(&mut socket, hub.config.header_timeout).await;
        return;
    };
    // Bytes read past a request (a pipelined one) stay here for the next.
    let buf = bytes::BytesMut::new();
    serve_at(hub, socket, buf, peer, slot, Place::Streams, None).await;
}

/// The connection's requests from `first` (already read) on, at `place`.
/// (Boxed: a connection that moves goes on as a new task of this kind.)
fn serve_at(
    hub: Arc<Hub>,
    socket: TcpStream,
    buf: bytes::BytesMut,
    peer: SocketAddr,
    slot: limits::Slot,
    place: Place,
    first: Option<http::Request>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(requests(hub, socket, buf, peer, slot, place, first))
}

async fn requests(
    hub: Arc<Hub>,
    mut socket: TcpStream,
    mut buf: bytes::BytesMut,
    peer: SocketAddr,
    slot: limits::Slot,
    place: Place,
    mut first: Option<http::Request>,
) {
    loop {
        let request = match first.take() {
            Some(request) => request,
            // Boxed: the reading state is large and not needed while a
            // stream runs, so it must not stay in every connection's task.
            None => match Box::pin(http::read(
                &mut socket,
                &mut buf,
                &hub.config,
                &hub.request_memory,
            ))
            .await
            {
                Ok(Some(request)) => request,
                Ok(None) => return,
                Err(response) => {
                    let _ = http::write(&mut socket, &response, false).await;
                    return;
                }
            },
        };
        debug!(
            "{peer} {} {}",
            request.head.method(),
            redact::target(request.head.target())
        );
        let wanted = if is_subscription(&request) {
            Place::Streams
        } else {
            Place::Requests
        };
        if wanted != place {
            // The other runtime's event loop takes the socket over.
            let Ok(socket) = socket.into_std() else {
                return;
            };
            let runtime = match wanted {
                Place::Streams => &hub.streams,
                Place::Requests => &hub.requests,
            };
            let hub = hub.clone();
            runtime.spawn(async move {
                if let Ok(socket) = TcpStream::from_std(socket) {
                    serve_at(hub, socket, buf, peer, slot, wanted, Some(request)).await;
                }
            });
            return;
        }
        if let Err(response) = hub.config.hosts.check(&request.head) {
            // Refused for its Host (DNS rebinding) or malformed: closed.
            let _ = http::write(&mut socket, &response, false).await;
            return;
        }
        let keep_alive = request.head.keep_alive() && !*hub.shutdown.borrow();
        let outcome = route(&hub, request).await;
        match outcome {
            Outcome::Respond(response) => {
                if http::write(&mut socket, &response, keep_alive)
                    .await
                    .is_err()
                    || !keep_alive
                {
                    return;
                }
            }
            Outcome::Subscribe(request, cors) => {
                let head_only = request.head.method() == "HEAD";
                match Box::pin(subscribe::open(&hub, &mut socket, request, &cors)).await {
                    Ok(Some(stream)) => {
                        // A stream never reads another request: free the
                        // buffer (a refused subscription keeps it, with
                        // the requests read ahead).
                        drop(buf);
                        stream.run(&mut socket).await;
                        return;
                    }
                    Ok(None) => return,
                    Err(response) => {
                        let mut response = response.headers(cors);
                        if head_only {
                            response = response.head_only();
                        }
                        if http::write(&mut socket, &response, keep_alive)
                            .await
                            .is_err()
                            || !keep_alive
                        {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The hub's URL: subscribe with `GET`, publish with `POST`.
const HUB_PATH: &str = "/.well-known/mercure";

/// Whether the request asks for an event stream.
fn is_subscription(request: &http::Request) -> bool {
    matches!(request.head.method(), "GET" | "HEAD") && request.head.path() == HUB_PATH
}

/// What a route did with the connection.
enum Outcome {
    /// Send this response (the connection may serve more requests).
    Respond(http::Response),
    /// Serve an event stream (with these CORS headers).
    Subscribe(http::Request, Vec<(&'static str, String)>),
}

async fn route(hub: &Arc<Hub>, request: http::Request) -> Outcome {
    let cors = cors::headers(&hub.config.cors_origins, request.head.header_str("origin"));
    let path = request.head.path().to_owned();
    let method = request.head.method().to_owned();
    let mut response = match (method.as_str(), path.as_str()) {
        _ if is_subscription(&request) => return Outcome::Subscribe(request, cors),
        // Boxed: the connection's task holds only the state of the route
        // it takes.
        ("POST", HUB_PATH) => Box::pin(publish::publish(hub, &request)).await,
        ("OPTIONS", _) => cors::preflight(&hub.config.cors_origins, &request.head),
        ("GET" | "HEAD", "/") => http::Response::new(200)
            .content_type("text/html; charset=utf-8")
            .body(page::PAGE),
        ("GET" | "HEAD", "/healthz") => {
            if hub.backend.is_up() {
                http::Response::text(200, "ok")
            } else {
                http::Response::text(503, "backend unavailable")
            }
        }
        ("GET" | "HEAD", "/metrics") => http::Response::new(200)
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(hub.metrics.render(hub)),
        (_, HUB_PATH | "/" | "/healthz" | "/metrics") => {
            http::Response::text(405, "method not allowed").header("Allow", allowed(&path))
        }
        _ => http::Response::text(404, "not found"),
    };
    if method == "HEAD" {
        response = response.head_only();
    }
    Outcome::Respond(response.headers(cors))
}

fn allowed(path: &str) -> &'static str {
    match path {
        HUB_PATH => "GET, HEAD, POST, OPTIONS",
        _ => "GET, HEAD, OPTIONS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepted connections send each event at once (no Nagle delay),
    /// whether they inherit the option from the listener or set it.
    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (socket, _) = listener.accept().await.unwrap();
        if !cfg!(target_os = "linux") {
            socket.set_nodelay(true).unwrap();
        }
        assert!(socket.nodelay().unwrap());
        drop(client);
    }
}
