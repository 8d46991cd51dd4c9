//! The hub's request path without sockets or a runtime, for the
//! `hub_request` fuzz target (`fuzz/fuzz_targets/hub_request.rs`) and the
//! tests that run its seed corpus.
//!
//! [`handle_request_bytes`] takes the bytes a client sends on one
//! connection and does, synchronously, what the hub does with each request
//! on it: parse the head with the hub's limits and the body within the
//! default `--max-body`, check `Host` (a hub bound to loopback), compute
//! the CORS fields, redact the target as the log does, then route:
//!
//! - a subscribe (`GET`/`HEAD /.well-known/mercure`) parses the query into
//!   selectors (at most 1000), authorizes it, resolves its cursor
//!   (`Last-Event-ID`, else `lastEventID` / `last_event_id` /
//!   `lastEventId`), builds the stream's response head and subscribes to
//!   an in-memory [`Broker`] with small limits, draining the replay with
//!   `Subscriber::try_recv` as a stream that reads would; a stream takes
//!   the connection over, so nothing after it is read;
//! - a publish (`POST /.well-known/mercure`) goes through the hub's form
//!   validation (`publish::prepare`) and, when accepted, into the broker
//!   through the in-memory backend, so a later subscribe of the same input
//!   can resume after its id;
//! - `OPTIONS` answers the CORS preflight; other routes their status.
//!
//! The hub it plays has a fixed HS256 key (`KEY` below), with anonymous
//! subscribers allowed; a publish that carries no token at all is handled
//! as an open hub handles it, so that updates reach the broker. The
//! broker starts with three updates (ids `fuzz-1` to `fuzz-3`, the second
//! private) to resume from.
//!
//! Beyond "no panic", the pass checks the bounds the hub promises: no
//! subscription or update with more than 1000 topics, no body over the
//! limit, every accepted field valid, a replay handed out in
//! batches of about [`REPLAY_BATCH_BYTES`] and never longer than the
//! history.

use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use sse_proto::http1::{BodyDecoder, BodyKind, RequestParser};
use sse_proto::server::REPLAY_BATCH_BYTES;
use sse_tokio::server::{Broker, BrokerConfig, Cursor, ReplayConfig, Update, stream_response};

use super::auth::{Auth, AuthError, Role};
use super::backend::{Backend, Publication};
use super::host::HostCheck;
use super::http::{self, Response, WholeRequest};
use super::publish::{self, MAX_TOPICS};
use super::selectors::SelectorCache;
use super::serve::is_subscription;
use super::{HUB_PATH, cors, origin, query, redact, subscribe};

/// The key of the hub this pass plays (tokens signed with it are valid).
const KEY: &str = "sse-hub-fuzz-key-0123456789abcdef";
/// The hub's default `--max-body`.
const MAX_BODY: usize = 1 << 20;
/// The most requests of one input that are handled.
const MAX_REQUESTS: usize = 16;
/// The broker's history: small, so that inputs can fill and evict it.
const HISTORY: usize = 32;
/// The history's byte cap.
const HISTORY_BYTES: usize = 256 << 10;
/// The `--cors-origin` values of the hub this pass plays.
const CORS_ORIGINS: [&str; 2] = ["https://app.example", "*"];
/// Its `--publish-origin` values (normalized).
const PUBLISH_ORIGINS: [&str; 1] = ["https://app.example"];

/// What the hub answers to one request of an input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// The response's status (200 for a stream that opened, and for an
    /// accepted publish).
    pub status: u16,
    /// For a stream: how many events its replay delivered (an `sse-lost`
    /// event included).
    pub replayed: usize,
}

/// Handles the requests in `bytes` (one connection's input, pipelined
/// requests included) as the hub does, without sockets or a runtime, and
/// says what it answered to each. Exists for the `hub_request` fuzz target
/// and the tests; not a stable interface.
///
/// # Panics
/// When the hub's request handling panics, or breaks one of the bounds
/// listed in the module's documentation: that is a bug.
#[doc(hidden)]
pub fn handle_request_bytes(bytes: &[u8]) -> Vec<Answer> {
    let selectors = std::sync::Arc::new(SelectorCache::default());
    let auth = Auth::new(KEY, selectors.clone());
    let backend = Backend::Memory(Broker::new(
        BrokerConfig::new()
            .replay(
                ReplayConfig::new()
                    .max_events(HISTORY)
                    .max_bytes(HISTORY_BYTES),
            )
            .queue(64, 1 << 20)
            .id_prefix("fuzz-"),
    ));
    for (n, topic) in ["https://example.com/books/1", "https://example.com/private"]
        .iter()
        .chain(["https://example.com/books/2"].iter())
        .enumerate()
    {
        let update = Update::new(*topic, format!("seed {n}")).private(n == 1);
        backend
            .broker()
            .publish(update, Instant::now())
            .expect("the seed updates are valid");
    }
    let hosts = HostCheck::new(([127, 0, 0, 1], 8080).into(), &[]);
    let listed_hosts = HostCheck::new(([0, 0, 0, 0], 8080).into(), &["hub.example".to_owned()]);
    let cors_origins: Vec<String> = CORS_ORIGINS.iter().map(|&o| o.to_owned()).collect();
    let publish_origins: Vec<String> = PUBLISH_ORIGINS.iter().map(|&o| o.to_owned()).collect();

    let mut buf = BytesMut::from(bytes);
    let mut answers = Vec::new();
    for _ in 0..MAX_REQUESTS {
        if buf.is_empty() {
            break;
        }
        let request = match read(&mut buf) {
            Ok(Some(request)) => request,
            // The hub would wait for more bytes (then time out).
            Ok(None) => break,
            Err(response) => {
                // Answered, and the connection closed.
                answers.push(answer(response.status()));
                break;
            }
        };
        let head = &request.head;
        let target = head.target();
        let redacted = redact::target(target);
        assert!(redacted.len() <= target.len() * (1 + redact::MARK.len()));
        // The other check of `Host`, for its code paths only.
        let _ = listed_hosts.check(head);
        if let Err(response) = hosts.check(head) {
            answers.push(answer(response.status()));
            break;
        }
        let keep_alive = head.keep_alive();
        let cors = cors::headers(&cors_origins, head.header_str("origin"));
        check_cors(&cors);
        if let Some(origin) = head.header_str("origin") {
            let _ = origin::normalize(origin);
        }
        let _ = origin::check_publish(&publish_origins, head, "mercureAuthorization");
        if is_subscription(&request) {
            let (answer, stream) = subscribe(&auth, &selectors, &backend, request);
            answers.push(answer);
            if stream || !keep_alive {
                // A stream takes the connection over.
                break;
            }
            continue;
        }
        let path = head.path().to_owned();
        let response = match (head.method(), path.as_str()) {
            ("POST", HUB_PATH) => publish(&auth, &publish_origins, &backend, &request),
            ("OPTIONS", _) => cors::preflight(&cors_origins, head),
            ("GET" | "HEAD", "/" | "/healthz" | "/metrics") => Response::new(200),
            (_, HUB_PATH | "/" | "/healthz" | "/metrics") => Response::new(405),
            _ => Response::new(404),
        };
        answers.push(answer(response.status()));
        if !keep_alive {
            break;
        }
    }
    answers
}

fn answer(status: u16) -> Answer {
    Answer {
        status,
        replayed: 0,
    }
}

/// [`http::read`] on bytes already received: the next request, `None`
/// when it is not all there (the hub would wait for more), or the answer
/// that closes the connection.
fn read(buf: &mut BytesMut) -> Result<Option<WholeRequest>, Response> {
    let mut parser = RequestParser::with_limits(http::head_limits());
    let head = match parser.parse_buf(buf) {
        Ok(Some(head)) => head,
        Ok(None) => return Ok(None),
        Err(
            sse_proto::http1::HeadError::TooLarge | sse_proto::http1::HeadError::TooManyHeaders,
        ) => return Err(Response::new(431)),
        Err(_) => return Err(Response::new(400)),
    };
    let kind = head.body_kind().map_err(|_| Response::new(400))?;
    let body = match kind {
        BodyKind::Length(0) | BodyKind::CloseDelimited => Bytes::new(),
        BodyKind::Length(n) if n > MAX_BODY as u64 => return Err(Response::new(413)),
        kind => {
            let mut decoder = BodyDecoder::new(kind);
            let mut body = BytesMut::new();
            while let Some(piece) = decoder.decode(buf).map_err(|_| Response::new(400))? {
                if body.len() + piece.len() > MAX_BODY {
                    return Err(Response::new(413));
                }
                body.extend_from_slice(&piece);
            }
            if !decoder.is_done() {
                return Ok(None);
            }
            body.freeze()
        }
    };
    assert!(body.len() <= MAX_BODY);
    Ok(Some(WholeRequest { head, body }))
}

/// CORS never grants credentials to `*`.
fn check_cors(cors: &[(&'static str, String)]) {
    let star = cors
        .iter()
        .any(|(n, v)| *n == "Access-Control-Allow-Origin" && v == "*");
    let credentials = cors
        .iter()
        .any(|(n, _)| *n == "Access-Control-Allow-Credentials");
    assert!(!(star && credentials), "credentials with `*`: {cors:?}");
}

/// The steps of `subscribe::open` before the socket (its own checks,
/// [`subscribe::prepare`], then the broker): the answer, and whether a
/// stream opened.
fn subscribe(
    auth: &Auth,
    selectors: &SelectorCache,
    backend: &Backend,
    request: WholeRequest,
) -> (Answer, bool) {
    let head = &request.head;
    // Anonymous subscribers are allowed.
    let asked = match subscribe::prepare(
        Some(auth),
        true,
        selectors,
        backend.broker(),
        head,
        &request.body,
    ) {
        Ok(asked) => asked,
        Err(response) => return (answer(response.status()), false),
    };
    let subscribe::Asked {
        subscription,
        cursor,
        ..
    } = asked;
    assert!(
        subscription.selectors().len() <= MAX_TOPICS,
        "{} selectors",
        subscription.selectors().len()
    );
    let cursor_kind = Cursor::from_last_event_id(cursor.as_deref());
    assert_eq!(
        cursor_kind == Cursor::Earliest,
        cursor.as_deref() == Some("earliest")
    );
    // The history does not age here (no maximum age): one time will do.
    let now = Instant::now();
    let mut subscriber = backend.broker().subscribe(subscription, cursor_kind, now);
    let (mut response, _, _) = stream_response(head, true);
    let resumed = subscribe::resumed_from(cursor.clone(), subscriber.replay());
    // A cursor asked for gets an answer: itself, or `earliest`.
    assert_eq!(resumed.is_some(), cursor.is_some());
    if let Some(resumed) = &resumed {
        assert!(Some(resumed) == cursor.as_ref() || resumed == "earliest");
        let _ = response.header("Last-Event-ID", resumed);
        let _ = response.header("Mercure-Last-Event-ID", resumed);
    }
    let mut encoded = BytesMut::new();
    response.encode(&mut encoded);
    // The replay, as a stream that reads takes it.
    let mut replayed = 0;
    let mut out = Vec::new();
    for _ in 0..HISTORY + 2 {
        out.clear();
        match subscriber.try_recv(&mut out, now) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let total: usize = out.iter().map(Bytes::len).sum();
                let largest = out.iter().map(Bytes::len).max().unwrap_or(0);
                assert!(
                    total <= REPLAY_BATCH_BYTES + 2 * largest,
                    "a replay batch of {total} bytes"
                );
                replayed += n;
            }
        }
    }
    // Every retained event at most, after an `sse-lost` event.
    assert!(replayed <= HISTORY + 1, "{replayed} events replayed");
    (
        Answer {
            status: 200,
            replayed,
        },
        true,
    )
}

/// `publish::publish` without the wait for a backlog: the form's checks,
/// then the in-memory backend.
fn publish(
    auth: &Auth,
    publish_origins: &[String],
    backend: &Backend,
    request: &WholeRequest,
) -> Response {
    let url_query = query::pairs(request.head.query().unwrap_or("").as_bytes());
    // A publish with no token at all: as on an open hub.
    let keyed = !matches!(
        auth.authorize(&request.head, &url_query, Role::Publisher),
        Err(AuthError::Missing)
    );
    let publication = match publish::prepare(keyed.then_some(auth), publish_origins, request) {
        Ok(publication) => publication,
        Err(response) => return response,
    };
    check_publication(&publication);
    let publishing = pin!(backend.publish(&publication));
    // The in-memory backend never waits.
    match publishing.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(id)) => {
            assert!(!id.is_empty());
            Response::new(200)
        }
        Poll::Ready(Err(_)) => Response::new(400),
        Poll::Pending => panic!("the in-memory backend waited"),
    }
}

/// The contract's rules for the fields of an accepted update.
fn check_publication(p: &Publication) {
    assert!(
        (1..=MAX_TOPICS).contains(&p.topics.len()),
        "{} topics",
        p.topics.len()
    );
    assert!(p.data.len() <= MAX_BODY);
    if let Some(kind) = &p.event_type {
        assert!(
            !kind.is_empty() && !kind.contains(['\r', '\n', '\0']),
            "{kind:?}"
        );
    }
    if let Some(id) = &p.id {
        assert!(!id.is_empty() && !id.contains(['\r', '\n', '\0']), "{id:?}");
        assert!(!id.starts_with('#') && id != "earliest", "{id:?}");
    }
}

/// The client address of a connection behind a trusted proxy, from
/// arbitrary bytes, for the `client_address` fuzz target: the bytes as the
/// start of a connection (the PROXY protocol parser), then as the values
/// of `Forwarded` and `X-Forwarded-For` from a trusted peer.
///
/// Checked beyond "no panic": a PROXY header is never longer than the
/// input nor than its 1 KiB bound, and the client found in headers is the
/// peer or an address written in them that is not a trusted proxy (or,
/// when every hop is trusted, the leftmost).
pub fn client_address(bytes: &[u8]) {
    use super::forwarded::TrustedProxies;
    use super::proxy_protocol::{Parsed, parse};
    use std::net::IpAddr;

    if let Parsed::Done { len, .. } = parse(bytes) {
        assert!(len <= bytes.len() && len <= 1024, "a header of {len} bytes");
    }
    let Ok(value) = std::str::from_utf8(bytes) else {
        return;
    };
    if value.contains(['\r', '\n']) {
        return;
    }
    let trusted = TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "fd00::/8".to_owned()])
        .unwrap_or_default();
    let peer: IpAddr = IpAddr::from([10, 0, 0, 1]);
    for name in ["Forwarded", "X-Forwarded-For"] {
        let mut head = BytesMut::from(
            format!("GET / HTTP/1.1\r\nHost: h\r\n{name}: {value}\r\n\r\n").as_str(),
        );
        let Ok(Some(head)) = RequestParser::new().parse_buf(&mut head) else {
            continue;
        };
        let client = trusted.client(peer, &head);
        // Every address written in the value, however it is spelled.
        let written = value
            .split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
            .flat_map(|piece| {
                let without_port = piece.rsplit_once(':').map_or(piece, |(host, _)| host);
                [
                    piece.parse::<IpAddr>().ok(),
                    without_port.parse::<IpAddr>().ok(),
                ]
            })
            .flatten()
            .any(|ip| ip == client || ip.to_canonical() == client);
        assert!(client == peer || written, "{client} from {value:?}");
    }
}
