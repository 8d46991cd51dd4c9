//! Serving on a listener: the accept loop, each connection's keep-alive
//! requests, routing, and the shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

use crate::answers::{self, Flushing};
use crate::conn::Conn;
use crate::{HUB_PATH, Hub, SUBSCRIPTIONS_PATH, Shared};
use crate::{cors, fds, http, limits, proxy_protocol, publish, redact, subscribe, trim};

impl Hub {
    /// Serves connections from `listener` until `shutdown` resolves (the
    /// backend starts following the shared Redis stream now), then shuts
    /// down: stops accepting, ends every stream with a randomized
    /// `retry:` (1 to 5 s) so that subscribers come back spread out, stops
    /// the backend, and waits up to 4 s for open connections to finish.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let hub = &self.shared;
        hub.follow();
        let trimmer = tokio::spawn(trim::run(hub.limits.clone()));
        tokio::pin!(shutdown);
        let mut guard = fds::AcceptGuard::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        if let Some(socket) = guard.admit(socket, hub) {
                            tokio::spawn(connection(hub.clone(), socket, peer));
                        }
                    }
                    // Out of file descriptors, say: answer 503 on the reserved
                    // one, or wait a little; keep serving either way.
                    Err(e) => guard.failed(e, &listener, hub).await,
                },
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        trimmer.abort();
        self.shutdown().await;
    }

    /// Shuts the hub down (what [`Hub::serve`] does when its `shutdown`
    /// resolves; call it yourself when the hub is mounted in another
    /// server): every stream ends with a randomized `retry:`, the backend
    /// stops, and open connections get up to 4 s to finish.
    pub async fn shutdown(&self) {
        let hub = &self.shared;
        if hub.shutdown_tx.send_replace(true) {
            return;
        }
        info!(
            "shutting down: ending {} streams with a randomized retry",
            hub.limits.open()
        );
        hub.backend.broker().shutdown(
            Some((Duration::from_secs(1), Duration::from_secs(4))),
            seed(),
        );
        hub.backend.stop();
        // Streams end once their last `retry:` is out, and requests in
        // progress are answered; give them a few seconds.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        while hub.limits.open() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(presence) = &hub.presence {
            // The ends of the streams' subscriptions reach the other
            // processes (on Redis) before this one exits.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            presence.drain(deadline).await;
        }
        info!("stopped ({} connections left open)", hub.limits.open());
    }
}

/// Binds `addr` for [`Hub::serve`] with a deep accept queue (thousands of
/// subscribers may connect at once; the kernel caps it at
/// `net.core.somaxconn`), `SO_REUSEADDR` and `TCP_NODELAY`.
///
/// # Errors
/// What binding the socket says.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
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
async fn connection(hub: Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    if !cfg!(target_os = "linux") {
        let _ = socket.set_nodelay(true);
    }
    // A trusted proxy's connection counts under its clients' addresses,
    // known from the PROXY protocol now or from each request's forwarded
    // hops later; anyone else's under its own.
    let via_proxy = hub.trusted.trusts(peer.ip());
    let entered = if via_proxy {
        hub.limits.enter_unbound()
    } else {
        hub.limits.enter(peer.ip())
    };
    let Some(slot) = entered else {
        return Box::pin(busy(&hub, socket)).await;
    };
    // Every path but the plain one starts with a boxed step of its own,
    // over before serving begins: a connection's task holds none of its
    // state (the handshake, the PROXY header) afterwards.
    #[cfg(feature = "tls")]
    let tls = hub.tls.is_some();
    #[cfg(not(feature = "tls"))]
    let tls = false;
    if via_proxy || tls {
        let started = Box::pin(start_other(&hub, socket, peer, slot, via_proxy)).await;
        return match started {
            Started::Http1(conn, peer, slot) => {
                serve_at(hub, conn, BytesMut::new(), peer, slot, Place::Streams, None).await;
            }
            #[cfg(feature = "tls")]
            Started::H2(tls, peer, slot) => Box::pin(crate::h2::serve(hub, *tls, peer, slot)).await,
            Started::Busy(socket) => Box::pin(busy(&hub, socket)).await,
            Started::Closed => {}
        };
    }
    serve_at(
        hub,
        Conn::Plain(socket),
        BytesMut::new(),
        peer,
        slot,
        Place::Streams,
        None,
    )
    .await;
}

/// What the first step of a proxied or TLS connection leaves to serve.
enum Started {
    /// HTTP/1.1 (plain, or over TLS), for this client.
    Http1(Conn, SocketAddr, limits::Slot),
    /// HTTP/2 over TLS (ALPN `h2`), for this client.
    #[cfg(feature = "tls")]
    H2(
        Box<tokio_rustls::server::TlsStream<TcpStream>>,
        SocketAddr,
        limits::Slot,
    ),
    /// Over the client's limit, once its address was known.
    Busy(TcpStream),
    /// Nothing: the header or the handshake failed.
    Closed,
}

/// The first step of a connection from a trusted proxy (a PROXY protocol
/// header, if any), or over TLS (the handshake; then HTTP/2 or HTTP/1.1
/// by ALPN).
async fn start_other(
    hub: &Shared,
    mut socket: TcpStream,
    mut peer: SocketAddr,
    mut slot: limits::Slot,
    via_proxy: bool,
) -> Started {
    if via_proxy {
        let header = proxy_protocol::read(&mut socket);
        match tokio::time::timeout(hub.config.header_timeout, header).await {
            Ok(Ok(Some(client))) => {
                debug!("{peer}: PROXY protocol: client {client}");
                peer = client;
                if !slot.bind(client.ip()) {
                    return Started::Busy(socket);
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                debug!("{peer}: bad PROXY protocol header: {e}");
                return Started::Closed;
            }
            Err(_) => return Started::Closed,
        }
    }
    #[cfg(feature = "tls")]
    if let Some(acceptor) = hub.tls.clone() {
        let handshake = tokio::time::timeout(hub.config.header_timeout, acceptor.accept(socket));
        let tls = match handshake.await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                debug!("{peer}: TLS handshake failed: {e}");
                return Started::Closed;
            }
            Err(_) => {
                debug!("{peer}: TLS handshake took too long");
                return Started::Closed;
            }
        };
        if tls.get_ref().1.alpn_protocol() == Some(crate::tls::H2) {
            return Started::H2(Box::new(tls), peer, slot);
        }
        return Started::Http1(Conn::Tls(Box::new(tls)), peer, slot);
    }
    Started::Http1(Conn::Plain(socket), peer, slot)
}

/// Turns a connection over the limits away: 429 over plain HTTP; a TLS
/// client just sees its handshake fail.
async fn busy(hub: &Shared, mut socket: TcpStream) {
    hub.metrics.rejected();
    #[cfg(feature = "tls")]
    if hub.tls.is_some() {
        return;
    }
    http::reject_busy(&mut socket, hub.config.header_timeout).await;
}

/// The connection's requests from `first` (already read) on, at `place`,
/// then the event stream one of them opened, if any. (Boxed: a connection
/// that moves goes on as a new task of this kind.)
fn serve_at(
    hub: Arc<Shared>,
    socket: Conn,
    buf: BytesMut,
    peer: SocketAddr,
    slot: limits::Slot,
    place: Place,
    first: Option<http::WholeRequest>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        // The request loop's state (parsing, routing, responses) is
        // freed before the stream runs: a stream holds only its own.
        let opened = Box::pin(requests(hub.clone(), socket, buf, peer, slot, place, first)).await;
        match opened {
            Some(Opened::Stream {
                socket,
                stream,
                slot,
            }) => match place_stream(&hub, socket, place, stream.is_live()) {
                Some(StreamPlace::Here(socket, count)) => {
                    stream.run(socket).await;
                    drop((slot, count));
                }
                Some(StreamPlace::Beside(socket, count)) => {
                    hub.requests.spawn(async move {
                        if let Ok(socket) = TcpStream::from_std(socket) {
                            stream.run(Conn::Plain(socket)).await;
                        }
                        drop((slot, count));
                    });
                }
                None => {}
            },
            #[cfg(feature = "tls")]
            Some(Opened::Http2 {
                hub,
                socket,
                read,
                slot,
            }) => {
                let io = crate::prefixed::Prefixed::new(read.freeze(), socket);
                Box::pin(crate::h2::serve(hub, io, peer, slot)).await;
            }
            None => {}
        }
    })
}

/// A new event stream runs beside the publishes (on the requests'
/// runtime) only while fewer than this many streams run; so no more than
/// this many ever run there at once.
const FEW_STREAMS: usize = 4;

/// The event streams this hub's HTTP/1.1 server runs now.
#[derive(Clone, Debug, Default)]
pub(crate) struct StreamCount(Arc<AtomicUsize>);

impl StreamCount {
    /// Counts a stream that starts now, and says whether it runs beside
    /// the publishes: only if it `may` (a plain, live stream) and fewer
    /// than [`FEW_STREAMS`] others run, those beside the publishes
    /// included.
    fn enter(&self, may: bool) -> Counted {
        let running = self.0.fetch_add(1, Ordering::AcqRel);
        Counted {
            count: self.clone(),
            beside: may && running < FEW_STREAMS,
        }
    }
}

/// One running stream in a [`StreamCount`], until dropped.
#[derive(Debug)]
struct Counted {
    count: StreamCount,
    /// It runs beside the publishes.
    beside: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.count.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where an event stream runs.
enum StreamPlace {
    /// On the runtime its subscription was served on.
    Here(Conn, Counted),
    /// Beside the publishes: its socket, taken off the streams' runtime.
    Beside(std::net::TcpStream, Counted),
}

/// Chooses where an event stream just opened runs. While the hub serves
/// only a few streams, a plain one runs on the requests' runtime, beside
/// the publishes: each publish then wakes its subscriber on the thread
/// that took it, not a sleeping thread of the other runtime (one
/// subscriber and sixteen pipelined publishers: a thread switch every
/// four publishes otherwise). Only a `live` stream (no history to replay)
/// goes there, fewer than [`FEW_STREAMS`] of them; its subscription was
/// served where subscriptions are, so a flood of costly ones never reaches
/// the publishes' threads. `None` when the socket could not be moved (it
/// is closed).
fn place_stream(hub: &Shared, socket: Conn, place: Place, live: bool) -> Option<StreamPlace> {
    let counted = hub
        .streams_running
        .enter(live && place == Place::Streams && socket.is_plain() && !hub.one_runtime);
    if !counted.beside {
        return Some(StreamPlace::Here(socket, counted));
    }
    Some(StreamPlace::Beside(socket.detach()?, counted))
}

/// What a connection's requests leave to serve, with the connection and
/// its place under the limits.
enum Opened {
    /// An event stream a request opened (its head written).
    Stream {
        socket: Conn,
        stream: subscribe::Stream,
        slot: limits::Slot,
    },
    /// HTTP/2 with prior knowledge (h2c) on a plain connection, from the
    /// preface on (in `read`).
    #[cfg(feature = "tls")]
    Http2 {
        hub: Arc<Shared>,
        socket: TcpStream,
        read: BytesMut,
        slot: limits::Slot,
    },
}

/// Serves the connection's requests until it closes, moves to the other
/// runtime, or opens an event stream (handed back to run).
async fn requests(
    hub: Arc<Shared>,
    mut socket: Conn,
    mut buf: BytesMut,
    peer: SocketAddr,
    mut slot: limits::Slot,
    place: Place,
    mut first: Option<http::WholeRequest>,
) -> Option<Opened> {
    // Keep-alive answers wait here while the next request is already read
    // (pipelining); they go out before the socket is read or written again.
    let mut outbox = Vec::new();
    // HTTP/2 with prior knowledge starts with the connection's first bytes
    // (`--h2c`), never after a request.
    let mut h2c = hub.config.h2c && cfg!(feature = "tls") && first.is_none() && buf.is_empty();
    loop {
        let may_be_h2c = std::mem::take(&mut h2c);
        let request = match first.take() {
            Some(request) => request,
            // Boxed: the reading state is large and not needed while a
            // stream runs, so it must not stay in every connection's task.
            None => match Box::pin(http::read(
                &mut Flushing::new(&mut socket, &mut outbox),
                &mut buf,
                &hub.config,
                &hub.request_memory,
                may_be_h2c,
            ))
            .await
            {
                Ok(http::Next::Request(request)) => request,
                Ok(http::Next::Closed) => {
                    let _ = answers::flush(&mut socket, &mut outbox).await;
                    return None;
                }
                Ok(http::Next::Http2) => {
                    if answers::flush(&mut socket, &mut outbox).await.is_err() {
                        return None;
                    }
                    return http2_prior_knowledge(hub, socket, buf, peer, slot).await;
                }
                Err(response) => {
                    let mut socket = Flushing::new(&mut socket, &mut outbox);
                    let _ = http::write(&mut socket, &response, false).await;
                    return None;
                }
            },
        };
        // Behind a trusted proxy, the client it forwards for.
        let client = hub.trusted.client(peer.ip(), &request.head);
        debug!(
            "{client} {} {}",
            request.head.method(),
            redact::target(request.head.target())
        );
        let wanted = if is_subscription(&request) {
            Place::Streams
        } else {
            Place::Requests
        };
        if wanted != place && socket.is_plain() && !hub.one_runtime {
            // The other runtime's event loop takes the socket over (a TLS
            // connection stays where it is: its session cannot move; with
            // one runtime for both, nothing moves), after the answers that
            // wait.
            if answers::flush(&mut socket, &mut outbox).await.is_err() {
                return None;
            }
            let socket = socket.detach()?;
            let runtime = match wanted {
                Place::Streams => &hub.streams,
                Place::Requests => &hub.requests,
            };
            let hub = hub.clone();
            runtime.spawn(async move {
                if let Ok(socket) = TcpStream::from_std(socket) {
                    let socket = Conn::Plain(socket);
                    serve_at(hub, socket, buf, peer, slot, wanted, Some(request)).await;
                }
            });
            return None;
        }
        if let Err(response) = hub.hosts.check(&request.head) {
            // Refused for its Host (DNS rebinding) or malformed: closed.
            let mut socket = Flushing::new(&mut socket, &mut outbox);
            let _ = http::write(&mut socket, &response, false).await;
            return None;
        }
        let keep_alive = request.head.keep_alive() && !*hub.shutdown.borrow();
        let outcome = route(&hub, request).await;
        match outcome {
            Outcome::Respond(response) if keep_alive => {
                // Written with the next answers, or before the next read.
                outbox.extend_from_slice(&response.encode(true));
                if outbox.len() >= answers::OUTBOX_LIMIT
                    && answers::flush(&mut socket, &mut outbox).await.is_err()
                {
                    return None;
                }
            }
            Outcome::Respond(response) => {
                let mut socket = Flushing::new(&mut socket, &mut outbox);
                let _ = http::write(&mut socket, &response, false).await;
                return None;
            }
            Outcome::Subscribe(request, cors) => {
                let head_only = request.head.method() == "HEAD";
                // A stream through a trusted proxy holds its connection
                // for a long time: it counts under the client's address.
                if answers::flush(&mut socket, &mut outbox).await.is_err() {
                    return None;
                }
                if !slot.bind(client) {
                    hub.metrics.rejected();
                    let response = http::too_many_connections().headers(cors);
                    let _ = http::write(&mut socket, &response, false).await;
                    return None;
                }
                match Box::pin(subscribe::open(&hub, &mut socket, request, &cors)).await {
                    Ok(Some(stream)) => {
                        // A stream never reads another request: free the
                        // buffer (a refused subscription keeps it, with
                        // the requests read ahead).
                        drop(buf);
                        return Some(Opened::Stream {
                            socket,
                            stream,
                            slot,
                        });
                    }
                    Ok(None) => return None,
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
                            return None;
                        }
                    }
                }
            }
        }
    }
}

/// A client that sent the HTTP/2 preface on a plain connection: served as
/// HTTP/2 (h2c with prior knowledge), unless this build has no HTTP/2 or
/// the connection is TLS (where ALPN chose HTTP/1.1).
async fn http2_prior_knowledge(
    hub: Arc<Shared>,
    socket: Conn,
    read: BytesMut,
    peer: SocketAddr,
    slot: limits::Slot,
) -> Option<Opened> {
    #[cfg(feature = "tls")]
    if socket.is_plain() {
        debug!("{peer}: HTTP/2 with prior knowledge");
        return match socket.into_plain() {
            Ok(socket) => Some(Opened::Http2 {
                hub,
                socket,
                read,
                slot,
            }),
            Err(_) => None,
        };
    }
    let _ = (hub, read, peer, slot);
    let mut socket = socket;
    let response = http::Response::text(
        505,
        "HTTP/2 is not served on this connection: speak HTTP/1.1, or HTTP/2 over https",
    );
    let _ = http::write(&mut socket, &response, false).await;
    None
}

/// Whether the request asks for an event stream.
pub(crate) fn is_subscription(request: &http::WholeRequest) -> bool {
    matches!(request.head.method(), "GET" | "HEAD" | "QUERY") && request.head.path() == HUB_PATH
}

/// What a route did with the connection.
pub(crate) enum Outcome {
    /// Send this response (the connection may serve more requests).
    Respond(http::Response),
    /// Serve an event stream (with these CORS headers).
    Subscribe(http::WholeRequest, Vec<(&'static str, String)>),
}

pub(crate) async fn route(hub: &Arc<Shared>, request: http::WholeRequest) -> Outcome {
    let cors = cors::headers(&hub.config.cors_origins, request.head.header_str("origin"));
    let path = request.head.path().to_owned();
    let method = request.head.method().to_owned();
    let mut response = match (method.as_str(), path.as_str()) {
        _ if is_subscription(&request) => return Outcome::Subscribe(request, cors),
        // Boxed: the connection's task holds only the state of the route
        // it takes.
        ("POST", HUB_PATH) => Box::pin(publish::publish(hub, &request)).await,
        ("OPTIONS", _) => cors::preflight(&hub.config.cors_origins, &request.head),
        ("GET" | "HEAD", "/") if hub.config.page.is_some() => http::Response::new(200)
            .content_type("text/html; charset=utf-8")
            .body(hub.config.page.unwrap_or_default()),
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
        ("GET" | "HEAD", path) if is_subscriptions_api(hub, path) => match &hub.presence {
            Some(presence) => presence.answer(
                hub.auth.as_ref(),
                hub.config.anonymous,
                hub.backend.broker(),
                &request.head,
                path,
            ),
            None => http::Response::text(404, "not found"),
        },
        (_, path) if is_subscriptions_api(hub, path) => {
            http::Response::text(405, "method not allowed").header("Allow", "GET, HEAD, OPTIONS")
        }
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

/// Whether `path` is the subscriptions API's, on a hub that serves it.
fn is_subscriptions_api(hub: &Shared, path: &str) -> bool {
    hub.presence.is_some()
        && path
            .strip_prefix(SUBSCRIPTIONS_PATH)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn allowed(path: &str) -> &'static str {
    match path {
        HUB_PATH => "GET, HEAD, QUERY, POST, OPTIONS",
        _ => "GET, HEAD, OPTIONS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_go_beside_the_publishes_only_while_few_run() {
        let count = StreamCount::default();
        // A stream that may not (TLS, a replay, another runtime) never does.
        assert!(!count.enter(false).beside);
        // The first few that may, do...
        let beside: Vec<Counted> = (0..FEW_STREAMS).map(|_| count.enter(true)).collect();
        assert!(beside.iter().all(|c| c.beside));
        // ...and no more while they run.
        assert!(!count.enter(true).beside);
        // Places come back when streams end.
        drop(beside);
        assert!(count.enter(true).beside);
        // Streams that run elsewhere count too.
        let others: Vec<Counted> = (0..FEW_STREAMS).map(|_| count.enter(false)).collect();
        assert!(!count.enter(true).beside);
        drop(others);
        assert!(count.enter(true).beside);
        assert_eq!(count.0.load(Ordering::Acquire), 0);
    }

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
