//! HTTP/2 connections (feature `tls`; ALPN `h2`, or h2c with prior
//! knowledge on the plain port with `--h2c`): served by hyper's
//! HTTP/2 server over the hub's routes, each subscription one stream of
//! the shared connection. Flow control is hyper's: a stream whose window
//! stays closed stops taking events, its subscriber's queue fills, and it
//! is cut off like any slow subscriber. On shutdown every stream ends with
//! the randomized `retry:` and the connection says `GOAWAY`; so does a
//! connection that has had no open stream for `--header-timeout` (an idle
//! HTTP/1.1 connection is closed after the same time).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::Notify;
use tower_service::Service as _;
use tracing::debug;

use crate::axum_routes::Peer;
use crate::{Hub, Shared, limits};

/// The most streams a client may have open on one connection (advertised
/// in `SETTINGS_MAX_CONCURRENT_STREAMS`): more than a browser page opens,
/// few enough that a connection cannot hold the hub's memory.
pub(crate) const MAX_CONCURRENT_STREAMS: u32 = 128;

/// Streams a client may reset before the server has answered them, at
/// once: more is the "rapid reset" attack, and the connection is closed.
const MAX_PENDING_RESETS: usize = 32;

/// Streams the server itself may reset for a client's errors before it
/// closes the connection.
const MAX_LOCAL_RESETS: usize = 64;

/// The largest header block a client may send (HPACK-decoded): the same
/// bound as an HTTP/1.1 request head.
const MAX_HEADER_LIST: u32 = 128 * 1024;

/// How much a stream or the connection may have buffered for sending
/// before its body is no longer polled (per stream).
const MAX_SEND_BUFFER: usize = 64 * 1024;

/// A PING after this much silence; no answer within the same time closes
/// the connection (a peer that vanished).
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Serves one HTTP/2 connection until it ends, or until the hub shuts
/// down (then `GOAWAY`, and the open streams finish with their last
/// `retry:`).
pub(crate) async fn serve<S>(hub: Arc<Shared>, io: S, peer: SocketAddr, slot: limits::Slot)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = Routes {
        router: Hub {
            shared: Arc::clone(&hub),
        }
        .all_routes(),
        peer,
        limit: hub.config.header_timeout,
        activity: Arc::clone(&activity),
    };
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(Some(MAX_PENDING_RESETS))
        .max_local_error_reset_streams(Some(MAX_LOCAL_RESETS))
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buf_size(MAX_SEND_BUFFER)
        .keep_alive_interval(Some(KEEP_ALIVE))
        .keep_alive_timeout(KEEP_ALIVE);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut shutdown = hub.shutdown.clone();
    let shutting_down = async move {
        // The guard of the watched value is dropped at once.
        let _ = shutdown.wait_for(|down| *down).await.is_ok();
    };
    let idle = activity.idle_for(hub.config.header_timeout);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutting_down => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = idle => {
            debug!("{peer}: HTTP/2 connection idle, closing it");
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        debug!("{peer}: HTTP/2 connection ended: {e}");
    }
    drop(slot);
}

/// The hub's routes as hyper's service. Each request's routing is a boxed
/// future, freed once the response is ready: the task of a stream that
/// stays open (a subscription) holds only its body.
#[derive(Clone)]
struct Routes {
    router: axum::Router,
    /// Where the connection comes from (for each request's log line).
    peer: SocketAddr,
    /// The longest a request may take to arrive whole and be answered
    /// (`--header-timeout`), body included: a stream that sends half a
    /// body and stalls is answered 408, as over HTTP/1.1. (An event
    /// stream's answer is its head, ready at once.)
    limit: Duration,
    /// The connection's open streams.
    activity: Arc<Activity>,
}

/// The streams of one connection: how many are open, and how many were
/// ever opened, to tell when it has been idle long enough to close.
#[derive(Debug, Default)]
struct Activity {
    /// Streams open now (from their request until their answer's body is
    /// dropped).
    open: AtomicUsize,
    /// Streams opened so far.
    opened: AtomicU64,
    /// Woken when the last open stream ends.
    idle: Notify,
}

impl Activity {
    /// Counts a stream open until the returned guard is dropped.
    fn enter(self: &Arc<Self>) -> Open {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::AcqRel);
        Open(Arc::clone(self))
    }

    /// Resolves once a whole `limit` has passed with no stream open and
    /// none opened: between `limit` and twice that after the last stream
    /// ended (a stream that comes and goes restarts the wait).
    async fn idle_for(&self, limit: Duration) {
        loop {
            while self.open.load(Ordering::Acquire) > 0 {
                self.idle.notified().await;
            }
            let opened = self.opened.load(Ordering::Relaxed);
            tokio::time::sleep(limit).await;
            if self.open.load(Ordering::Acquire) == 0
                && self.opened.load(Ordering::Relaxed) == opened
            {
                return;
            }
        }
    }
}

/// One open stream of a connection (see [`Activity`]).
struct Open(Arc<Activity>);

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_one();
        }
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for Routes {
    type Response = hyper::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(Peer(self.peer));
        // An axum router is always ready: no `poll_ready` first.
        let mut router = self.router.clone();
        let limit = self.limit;
        // Open until the answer's body is dropped (or this future, if the
        // client resets the stream first).
        let open = self.activity.enter();
        Box::pin(async move {
            let answer = match tokio::time::timeout(limit, router.call(request)).await {
                Ok(answer) => answer,
                Err(_) => Ok(hyper::Response::builder()
                    .status(408)
                    .header("content-type", "text/plain; charset=utf-8")
                    .body(Body::from("the request took too long to arrive\n"))
                    .unwrap_or_default()),
            };
            answer.map(|response| {
                response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _held = &open;
                        frame
                    }))
                })
            })
        })
    }
}
