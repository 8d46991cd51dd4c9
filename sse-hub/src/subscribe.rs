//! `GET /.well-known/mercure?topic=...`: parse the selectors (`topic`,
//! `match`, `match_exact`, `match_urlpattern`), authorize, resolve the
//! cursor, answer with the stream's head ([`open`]), then serve the event
//! stream ([`Stream::run`], on a task of its own).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sse_proto::http1::{Framing, RequestHead};
use sse_tokio::server::{
    BodyFraming, Broker, CACHE_CONTROL, Closing, Cursor, Encoding, Replay, ServeConfig,
    StreamConfig, StreamEnd, Subscriber, Subscription, Tokio, TokioIo, serve_body, stream_response,
};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::auth::{Auth, AuthError, Role};
use super::conn::Conn;
use super::http::{Response, WholeRequest};
use super::presence::Announced;
use super::publish::MAX_TOPICS;
use super::query;
use super::selectors::{Kind, SelectorCache};
use crate::Shared;

/// A subscription whose response head is written: what serving its body
/// needs.
pub struct Stream {
    subscriber: Subscriber,
    framing: BodyFraming,
    encoding: Encoding,
    config: ServeConfig,
    /// With `--subscriptions`: its announcement, whose end is announced
    /// when the stream ends.
    presence: Option<Announced>,
}

/// What a subscription request asks for, checked (the steps before the
/// broker and the socket).
pub struct Asked {
    /// The selectors and the private access the token grants.
    pub subscription: Subscription,
    /// The cursor: `Last-Event-ID`, else the first non-empty
    /// `lastEventID` / `last_event_id` / `lastEventId` query parameter.
    pub cursor: Option<String>,
    /// When the subscriber's token expires (seconds since the Unix epoch).
    pub expires: Option<u64>,
    /// The token's `mercure.payload`, for subscription events.
    pub payload: Option<serde_json::Value>,
}

/// Parses, bounds and authorizes a subscription request (`GET`, `HEAD`, or
/// `QUERY` with its parameters also in a form `body`): what it asks
/// for, or the answer to give instead (400, 401, or, for `HEAD`, the
/// stream's head alone, its `Last-Event-ID` resolved in `broker`).
/// Selectors are compiled through `selectors`. The keys are the ones held
/// now (see [`Auth::fetch_keys_for`] to read key sets again first).
pub fn prepare(
    auth: Option<&Auth>,
    anonymous: bool,
    selectors: &SelectorCache,
    broker: &Broker,
    head: &RequestHead,
    body: &[u8],
) -> Result<Asked, Response> {
    let mut params = query::pairs(head.query().unwrap_or("").as_bytes());
    if head.method() == "QUERY" {
        // draft-08: the selectors (and the rest) may come as a form body,
        // so that long selector lists stay out of URLs and logs.
        if let Some(kind) = head.header_str("content-type") {
            let essence = kind.split(';').next().unwrap_or("").trim();
            if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                return Err(Response::text(
                    400,
                    format!(
                        "a QUERY body must be a form (Content-Type: \
                         application/x-www-form-urlencoded), not {essence:?}"
                    ),
                ));
            }
        }
        params.extend(query::pairs(body));
    }
    let mut asked = Vec::new();
    for (name, value) in &params {
        match Kind::of_parameter(name) {
            Ok(Some(kind)) => asked.push((name.as_str(), kind, value.as_str())),
            Ok(None) => {}
            Err(why) => return Err(Response::text(400, why)),
        }
    }
    if asked.is_empty() {
        return Err(Response::text(
            400,
            "missing `topic`: subscribe to at least one topic selector (`topic`, `match`, \
             `match_exact` or `match_urlpattern`)",
        ));
    }
    if asked.len() > MAX_TOPICS {
        return Err(Response::text(
            400,
            format!(
                "too many topics: at most {MAX_TOPICS} selectors (`topic` and `match*` \
                 parameters together)"
            ),
        ));
    }
    let mut topics = Vec::with_capacity(asked.len());
    for (name, kind, value) in asked {
        let selector = selectors
            .get(kind, value)
            .map_err(|e| Response::text(400, format!("invalid selector in `{name}`: {e}")))?;
        topics.push(selector);
    }
    let mut private_access = Vec::new();
    let mut expires = None;
    let mut payload = None;
    if let Some(auth) = auth {
        match auth.authorize(head, &params, Role::Subscriber) {
            Ok((claims, _)) => {
                private_access = claims.subscribe;
                expires = claims.exp;
                payload = claims.payload;
            }
            Err(AuthError::Missing) if anonymous => {}
            Err(e) => return Err(e.response()),
        }
    }
    // An empty value is no cursor (as in Mercure): it would otherwise be
    // an unknown id and replay the whole history.
    let cursor = head
        .last_event_id()
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            ["lastEventID", "last_event_id", "lastEventId"]
                .iter()
                .find_map(|name| query::first(&params, name).filter(|c| !c.is_empty()))
                .map(str::to_owned)
        });
    if head.method() == "HEAD" {
        // The stream's head without a body (a body after a HEAD response
        // would be read as the next response).
        let mut response = Response::new(200)
            .content_type("text/event-stream")
            .header("Cache-Control", CACHE_CONTROL)
            .header("X-Accel-Buffering", "no")
            .framing(Framing::for_stream(head));
        if let Some(cursor) = &cursor {
            let resumed = if broker.has_event(cursor) {
                cursor.as_str()
            } else {
                "earliest"
            };
            response = response
                .header("Last-Event-ID", resumed)
                .header("Mercure-Last-Event-ID", resumed);
        }
        return Err(response);
    }
    let subscription = Subscription::new(topics).with_private_access(private_access);
    Ok(Asked {
        subscription,
        cursor,
        expires,
        payload,
    })
}

/// An accepted subscription: the subscriber, the cursor it resumed from
/// and how its stream is to be served.
pub struct Subscribed {
    /// The broker's subscriber (the replay, then live updates).
    pub subscriber: Subscriber,
    /// With a cursor asked for: the one the stream resumes from, for the
    /// response's `Last-Event-ID` and `Mercure-Last-Event-ID` (see
    /// [`resumed_from`]).
    pub cursor: Option<String>,
    /// Heartbeat, retry, write timeout, lifetime and token expiry.
    pub config: ServeConfig,
    /// With `--subscriptions`: the subscriber's announcement (dropping it
    /// announces the end of its subscriptions).
    pub presence: Option<Announced>,
}

/// Authorizes and subscribes, or says what to answer instead: the step
/// both the hub's own server and the axum routes take.
pub async fn subscribe(
    hub: &Shared,
    head: &RequestHead,
    body: &[u8],
) -> Result<Subscribed, Response> {
    if let Some(auth) = &hub.auth {
        // A token naming a key the key sets do not hold yet: read them
        // again first (rate-limited).
        let params = query::pairs(head.query().unwrap_or("").as_bytes());
        auth.fetch_keys_for(head, &params, Role::Subscriber).await;
    }
    let Asked {
        subscription,
        cursor,
        expires,
        payload,
    } = prepare(
        hub.auth.as_ref(),
        hub.config.anonymous,
        &hub.selectors,
        hub.backend.broker(),
        head,
        body,
    )?;
    // Checked before the broker takes it: the list has room for it.
    let prepared = match &hub.presence {
        Some(presence) => Some(presence.prepare(&subscription, payload.as_ref())?),
        None => None,
    };
    let subscriber = hub
        .backend
        .broker()
        .try_subscribe(
            subscription,
            Cursor::from_last_event_id(cursor.as_deref()),
            Instant::now(),
        )
        .map_err(|e| {
            Response::text(503, format!("{e} (--max-patterns)")).header("Retry-After", "5")
        })?;
    let cursor = resumed_from(cursor, subscriber.replay());
    // Announced once the broker has it (a subscriber that watches the
    // subscription events sees its own).
    let presence = match (&hub.presence, prepared) {
        (Some(presence), Some(prepared)) => Some(presence.announce(prepared)),
        _ => None,
    };
    // The token expires: the stream ends then, at once.
    let config = ServeConfig::new()
        .gzip(true)
        .stream(
            StreamConfig::new()
                .heartbeat(hub.config.heartbeat)
                .retry(hub.config.retry),
        )
        .write_timeout(hub.config.write_timeout)
        .max_lifetime(hub.config.max_stream_lifetime)
        .lifetime_retry(Some(spread_retry()))
        .expires_after(expires.map(until));
    Ok(Subscribed {
        subscriber,
        cursor,
        config,
        presence,
    })
}

/// The cursor a stream resumes from, for its response's `Last-Event-ID`
/// and `Mercure-Last-Event-ID`: the id asked for when the history holds
/// it, `earliest` when it does not (unknown or evicted; the stream then
/// starts with an `sse-lost` event and every retained one) or when
/// `earliest` was asked for; `None` when no cursor was asked for.
pub fn resumed_from(asked: Option<String>, replay: Replay) -> Option<String> {
    match replay {
        Replay::Resumed { .. } => asked,
        Replay::Unknown { .. } | Replay::Earliest { .. } => Some("earliest".to_owned()),
        Replay::Live => None,
    }
}

/// Subscribes and writes the stream's response head on `socket`, or says
/// what to answer instead. `Ok(None)`: the client went away before the
/// head was written.
pub async fn open<S: AsyncWrite + Unpin>(
    hub: &Shared,
    socket: &mut S,
    request: WholeRequest,
    cors: &[(&'static str, String)],
) -> Result<Option<Stream>, Response> {
    let head = &request.head;
    let Subscribed {
        subscriber,
        cursor,
        config,
        presence,
    } = subscribe(hub, head, &request.body).await?;
    let (mut response, framing, encoding) = stream_response(head, true);
    if let Some(cursor) = &cursor {
        // A cursor that cannot be a header value cannot be an id either.
        let _ = response.header("Last-Event-ID", cursor);
        let _ = response.header("Mercure-Last-Event-ID", cursor);
    }
    for (name, value) in cors {
        let _ = response.header(name, value);
    }
    // Nothing of the request (its head's buffer) is kept while the
    // stream runs.
    drop(request);
    let mut head = bytes::BytesMut::with_capacity(256);
    response.encode(&mut head);
    if socket.write_all(&head).await.is_err() {
        return Ok(None);
    }
    Ok(Some(Stream {
        subscriber,
        framing,
        encoding,
        config,
        presence,
    }))
}

impl Stream {
    /// Whether it starts with live events, no history to replay first
    /// (a cheap stream to serve: only what is published now).
    pub(crate) fn is_live(&self) -> bool {
        matches!(self.subscriber.replay(), sse_proto::server::Replay::Live)
    }

    /// Serves the body until it ends (the client goes away, the token
    /// expires, a lag, the shutdown), then closes the connection as the
    /// end says ([`Conn::close_as`]).
    pub async fn run(self, mut socket: Conn) {
        let Stream {
            subscriber,
            framing,
            encoding,
            config,
            presence,
        } = self;
        let end = serve_body(
            &Tokio,
            &mut TokioIo::new(&mut socket),
            framing,
            encoding,
            subscriber,
            &config,
        )
        .await;
        // The stream is over: so are its subscriptions.
        drop(presence);
        match end {
            Ok(StreamEnd::Expired) => debug!("a subscriber's token expired: stream closed"),
            ref end => debug!("stream ended: {end:?}"),
        }
        // A socket error other than the client leaving: just drop it.
        socket.close_as(end.map_or(Closing::Abandon, StreamEnd::closing));
    }
}

/// The shortest `retry:` a stream gets at the end of its lifetime.
const LIFETIME_RETRY_BASE: Duration = Duration::from_secs(1);
/// How much longer it may be, at random, so that clients whose streams
/// opened together do not all come back together.
const LIFETIME_RETRY_SPREAD: Duration = Duration::from_secs(4);

/// A random `retry:` for the end of a stream's lifetime: 1 to 5 s.
fn spread_retry() -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // A fresh randomly keyed hasher: a different number each time.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let spread = u64::try_from(LIFETIME_RETRY_SPREAD.as_millis()).unwrap_or(u64::MAX);
    LIFETIME_RETRY_BASE + Duration::from_millis(random % spread.max(1))
}

/// How long until `exp` (seconds since the Unix epoch).
fn until(exp: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Duration::from_secs(exp).saturating_sub(now)
}
