//! The hub's routes as an axum `Router` (feature `axum`), to mount next to
//! an application's own routes.
//!
//! A request reaches the same code as on the hub's own server: its head is
//! checked by the same HTTP/1.1 parser and limits (it is written out as an
//! HTTP/1.1 head and parsed again, which costs a few hundred nanoseconds
//! and keeps one set of rules), the `Host` check applies, the body is read
//! within [`Config::max_body`](crate::Config::max_body), and the event
//! stream is an [`EventStream`] body fed by the same broker. Connection
//! limits, the request memory budget and the header timeout are the
//! application's server's business here.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use sse_proto::http1::{HeadLimits, RequestHead, RequestParser};
use sse_tokio::server::EventStream;

use crate::budget::Charge;
use crate::serve::{Outcome, route};
use crate::subscribe::{Subscribed, subscribe};
use crate::{HUB_PATH, Hub, SUBSCRIPTIONS_PATH, Shared, http};

impl Hub {
    /// The hub's routes: `GET`, `HEAD`, `POST` and `OPTIONS` on
    /// `/.well-known/mercure` (subscribe, publish, CORS preflight), and
    /// with [`Config::subscriptions`](crate::Config::subscriptions) the
    /// subscriptions API under `/.well-known/mercure/subscriptions`, as a
    /// `Router` to [`merge`](Router::merge) into an application's.
    ///
    /// Set [`Config::listen`](crate::Config::listen) to the address the
    /// application listens on, or list its names in
    /// [`Config::allowed_hosts`](crate::Config::allowed_hosts): the hub
    /// answers only the `Host` values they allow (DNS rebinding).
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        // Serving starts now: follow the shared (Redis) stream.
        self.shared.follow();
        let router = Router::new().route(HUB_PATH, any(mercure));
        let router = if self.shared.presence.is_some() {
            router
                .route(SUBSCRIPTIONS_PATH, any(mercure))
                .route(&format!("{SUBSCRIPTIONS_PATH}/{{*rest}}"), any(mercure))
        } else {
            router
        };
        router.with_state(self.clone())
    }
}

impl Hub {
    /// Every route of the hub's own server (`/`, `/healthz`, `/metrics`
    /// and the hub's URL), for its HTTP/2 connections.
    #[cfg(feature = "tls")]
    pub(crate) fn all_routes(&self) -> Router {
        Router::new().fallback(mercure).with_state(self.clone())
    }
}

/// The address a request of the hub's own HTTP/2 server came from (the
/// peer, or the client a PROXY protocol header named), for its log line.
#[cfg(feature = "tls")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub(crate) std::net::SocketAddr);

/// Without HTTP/2 there is no such request.
#[cfg(not(feature = "tls"))]
#[derive(Clone, Copy, Debug)]
struct Peer(std::net::SocketAddr);

/// Handles a request to the hub's URL.
async fn mercure(State(hub): State<Hub>, request: Request) -> Response {
    let shared = &hub.shared;
    let (parts, body) = request.into_parts();
    let head = match head_of(&parts) {
        Ok(head) => head,
        Err(response) => return respond(response),
    };
    // On the hub's own HTTP/2 connections: the client (behind a trusted
    // proxy, the one it forwards for), for the log and the per-address
    // limit of its streams.
    let client = parts.extensions.get::<Peer>().map(|Peer(peer)| {
        let client = shared.trusted.client(peer.ip(), &head);
        tracing::debug!(
            "{client} {} {}",
            head.method(),
            crate::redact::target(head.target())
        );
        client
    });
    if let Err(response) = shared.hosts.check(&head) {
        return respond(response);
    }
    // Held until the request is answered, as the HTTP/1.1 path holds its
    // buffers.
    let (body, _charge) = if parts.method == Method::POST || parts.method.as_str() == "QUERY" {
        let declared = parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        match read_body(shared, body, declared).await {
            Ok(read) => read,
            Err(response) => return respond(response),
        }
    } else {
        (Bytes::new(), None)
    };
    match route(shared, http::WholeRequest { head, body }).await {
        Outcome::Respond(response) => respond(response),
        Outcome::Subscribe(request, cors) => {
            // A stream of the hub's own HTTP/2 connection counts under its
            // client's address, as a connection of its own would.
            let limited = client.filter(|_| shared.config.max_connections_per_ip.is_some());
            let slot = match limited.map(|ip| shared.limits.enter_stream(ip)) {
                None => None,
                Some(Some(slot)) => Some(slot),
                Some(None) => {
                    shared.metrics.rejected();
                    let mut response = http::too_many_connections().headers(cors);
                    if parts.method == Method::HEAD {
                        response = response.head_only();
                    }
                    return respond(response);
                }
            };
            match subscribe(shared, &request.head, &request.body).await {
                Ok(subscribed) => stream(&parts, subscribed, cors, slot),
                Err(response) => {
                    let mut response = response.headers(cors);
                    if parts.method == Method::HEAD {
                        response = response.head_only();
                    }
                    respond(response)
                }
            }
        }
    }
}

/// Reads a request body whole: at most `--max-body` bytes (413), its
/// buffer charged to the request memory budget like an HTTP/1.1 request's
/// (503 when the budget is spent), so that the clients of this router (the
/// hub's HTTP/2 streams, an application's) cannot hold more between them.
async fn read_body(
    shared: &Shared,
    mut body: Body,
    declared: Option<usize>,
) -> Result<(Bytes, Option<Charge>), http::Response> {
    let max = shared.config.max_body;
    let too_large = || http::Response::text(413, format!("the body is larger than {max} bytes"));
    let mut charge = Charge::new(&shared.request_memory);
    // A declared length is taken (and charged) at once, as over HTTP/1.1.
    let mut collected = match declared {
        Some(len) if len > max => return Err(too_large()),
        Some(len) => BytesMut::with_capacity(len),
        None => BytesMut::new(),
    };
    charge
        .set(collected.capacity())
        .map_err(|_| http::short_of_memory())?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| http::Response::text(400, "unreadable request body"))?;
        // Trailers carry nothing a publish reads.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if collected.len() + data.len() > max {
            return Err(too_large());
        }
        collected.extend_from_slice(&data);
        charge
            .set(collected.capacity())
            .map_err(|_| http::short_of_memory())?;
    }
    Ok((collected.freeze(), Some(charge)))
}

/// The event stream of an accepted subscription; its body holds the
/// stream's place under its client's address (`slot`), if it has one.
fn stream(
    parts: &Parts,
    subscribed: Subscribed,
    cors: Vec<(&'static str, String)>,
    slot: Option<crate::limits::Slot>,
) -> Response {
    let Subscribed {
        subscriber,
        cursor,
        config,
        presence,
    } = subscribed;
    let mut response = EventStream::new(&parts.headers, subscriber, &config).into_http();
    let headers = response.headers_mut();
    let cursor = cursor
        .into_iter()
        .flat_map(|c| [("Last-Event-ID", c.clone()), ("Mercure-Last-Event-ID", c)]);
    for (name, value) in cors.into_iter().chain(cursor) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    if presence.is_none() && slot.is_none() {
        return response.map(Body::new);
    }
    // The body holds the announcement and the place: when the server drops
    // it (the stream ended), the subscriptions' end is announced and the
    // place is free.
    response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _held = (&presence, &slot);
            frame
        }))
    })
}

/// The request's head as the hub's parser reads it: an HTTP/1.1 head
/// with the request's method, target and fields (framing fields left
/// out: the body is read by the application's server), or the answer to
/// give to a head the hub would refuse.
fn head_of(parts: &Parts) -> Result<RequestHead, http::Response> {
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str());
    let mut bytes = BytesMut::with_capacity(256);
    bytes.extend_from_slice(parts.method.as_str().as_bytes());
    bytes.extend_from_slice(b" ");
    bytes.extend_from_slice(target.as_bytes());
    bytes.extend_from_slice(b" HTTP/1.1\r\n");
    let mut field = |name: &[u8], value: &[u8]| {
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n");
    };
    if !parts.headers.contains_key("host") {
        // HTTP/2 names the host in the URI's authority.
        if let Some(authority) = parts.uri.authority() {
            field(b"host", authority.as_str().as_bytes());
        }
    }
    for (name, value) in &parts.headers {
        if name != "transfer-encoding" && name != "content-length" {
            field(name.as_str().as_bytes(), value.as_bytes());
        }
    }
    bytes.extend_from_slice(b"\r\n");
    match RequestParser::with_limits(HeadLimits::default()).parse_buf(&mut bytes) {
        Ok(Some(head)) => Ok(head),
        Ok(None) => Err(http::Response::text(400, "malformed request head")),
        Err(e) => Err(http::Response::text(400, format!("malformed request: {e}"))),
    }
}

/// The hub's response as axum's.
fn respond(response: http::Response) -> Response {
    let (status, fields, body) = response.into_parts();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    // The hub's fields replace the defaults (its `Content-Type` over
    // axum's); a name it gives twice keeps both values.
    let mut given: Vec<HeaderName> = Vec::new();
    for (name, value) in fields {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            continue;
        };
        if given.contains(&name) {
            headers.append(name, value);
        } else {
            headers.insert(name.clone(), value);
            given.push(name);
        }
    }
    response
}
