//! Mercure's subscriptions API and presence (`--subscriptions`,
//! [`Config::subscriptions`](crate::Config::subscriptions)): the hub
//! announces every subscription that opens or ends as a private update,
//! and lists the active ones at `/.well-known/mercure/subscriptions`.
//!
//! Design:
//!
//! * Each subscriber (one stream) gets a fresh `urn:uuid:` id. For each of
//!   its selectors the hub publishes one update, through the same backend
//!   as publishers' updates (so that, on Redis, every process sees it),
//!   private, with two topics: the 0.x one,
//!   `/.well-known/mercure/subscriptions/{topic}/{subscriber}` (canonical,
//!   the `id` of the JSON-LD data), and the draft-08 one,
//!   `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`;
//!   each segment is percent-encoded. The data names the selector under
//!   both generations' fields (`topic`, and `match` with `match_type`).
//!   When the stream ends, for whatever reason, the same updates go out
//!   with `"active": false`.
//! * Every process keeps the list of active subscriptions ([`Registry`])
//!   from those updates as they enter its broker: under the list's lock,
//!   the update is published into the broker and applied to the list, so
//!   the list always reflects exactly the subscription events up to the
//!   broker's newest event, and a listing names that event's id as
//!   `lastEventID`: resuming from it misses nothing and repeats nothing.
//! * The list is bounded in entries and bytes: a subscription that would
//!   not fit is refused (503), and an event from another process that
//!   does not fit is not recorded (a warning, and the
//!   `sse_hub_subscriptions_unrecorded_total` metric).
//! * On Redis, the script that appends an announcement to the stream also
//!   records it in a hash of active subscriptions (or removes it), in the
//!   same step. A process that starts reads that table and the history in
//!   one transaction: it lists what started before it, however long ago.
//!   A process that finds entries trimmed before it read them reads the
//!   table again.
//! * On Redis, each update also names the process that announced it; each
//!   process refreshes a key of its own with a time to live
//!   (`--subscriptions-heartbeat`, three periods). A process whose key is
//!   gone twice in a row (it crashed, or was cut off from Redis that long)
//!   has its entries removed by the others, and one of them, elected by a
//!   key, announces their end (which also removes them from the table).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sse_tokio::server::{Broker, PublishError, Published, Selector, Subscription, Update};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::auth::{Auth, AuthError};
use crate::backend::{Backend, Publication, PublishFailure, Record};
use crate::http::Response;
use crate::redis::RedisBackend;

/// The subscriptions API's URL, and the prefix of every subscription
/// event's topic.
pub const SUBSCRIPTIONS_PATH: &str = "/.well-known/mercure/subscriptions";
/// The JSON-LD context of the documents.
const CONTEXT: &str = "https://mercure.rocks/";
/// The most bytes a token's `mercure.payload` may take (as JSON) on a hub
/// that announces subscriptions: it is copied into every subscription
/// event of the subscriber and into the list.
pub const MAX_PAYLOAD: usize = 8 << 10;
/// The most bytes a subscriber id may take in an event from the backend.
const MAX_SUBSCRIBER: usize = 64;
/// The bytes counted for an entry on top of its texts.
const ENTRY_OVERHEAD: usize = 160;

/// How a subscription's selector matches topics: draft-08's `match_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchType {
    /// The topic itself (`match`, `match_exact`, or a `topic` without
    /// template).
    Exact,
    /// An RFC 6570 URI template (`topic` holding `{`).
    UriTemplate,
    /// A WHATWG URL Pattern (`match_urlpattern`).
    UrlPattern,
    /// Every topic (`topic=*`).
    Any,
}

impl MatchType {
    /// The kind of `selector`.
    pub fn of(selector: &Selector) -> MatchType {
        match selector {
            Selector::Any => MatchType::Any,
            Selector::Exact(_) => MatchType::Exact,
            Selector::Pattern(p) => match p.kind() {
                sse_proto::server::PatternKind::Template => MatchType::UriTemplate,
                sse_proto::server::PatternKind::UrlPattern => MatchType::UrlPattern,
            },
        }
    }

    /// Its name in the documents and the draft-08 topics.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Exact => "exact",
            MatchType::UriTemplate => "uritemplate",
            MatchType::UrlPattern => "urlpattern",
            MatchType::Any => "any",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<MatchType> {
        Some(match name {
            "exact" => MatchType::Exact,
            "uritemplate" => MatchType::UriTemplate,
            "urlpattern" => MatchType::UrlPattern,
            "any" => MatchType::Any,
            _ => return None,
        })
    }
}

/// Appends `text` to `out` as one path segment: every byte but RFC 3986's
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) percent-encoded.
pub fn encode_segment(text: &str, out: &mut String) {
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Decodes a percent-encoded path segment; `None` for a malformed escape
/// or bytes that are not UTF-8.
pub fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The 0.x topic of a subscription event:
/// `/.well-known/mercure/subscriptions/{topic}/{subscriber}`.
pub fn topic_of(selector: &str, subscriber: &str) -> String {
    let mut out = String::with_capacity(SUBSCRIPTIONS_PATH.len() + selector.len() * 3 + 64);
    out.push_str(SUBSCRIPTIONS_PATH);
    out.push('/');
    encode_segment(selector, &mut out);
    out.push('/');
    encode_segment(subscriber, &mut out);
    out
}

/// The draft-08 topic of a subscription event:
/// `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`.
pub fn draft_topic_of(match_type: MatchType, selector: &str, subscriber: &str) -> String {
    let mut out = String::with_capacity(SUBSCRIPTIONS_PATH.len() + selector.len() * 3 + 80);
    out.push_str(SUBSCRIPTIONS_PATH);
    out.push('/');
    out.push_str(match_type.as_str());
    out.push('/');
    encode_segment(selector, &mut out);
    out.push('/');
    encode_segment(subscriber, &mut out);
    out
}

/// A fresh subscriber id: `urn:uuid:` and a random (version 4) UUID.
pub fn new_subscriber_id() -> String {
    let b = random_16();
    let hex = |range: std::ops::Range<usize>| {
        b[range].iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
    };
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

/// 16 random bytes, with a UUID's version 4 and variant bits set.
fn random_16() -> [u8; 16] {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        // No system randomness (unheard of where the hub runs): randomly
        // keyed hashes, still unpredictable from outside.
        use std::hash::{BuildHasher, Hasher};
        for half in b.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

/// Appends `text` as a JSON string.
fn push_json_str(out: &mut String, text: &str) {
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// One active subscription: a selector of one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The selector, as the subscriber wrote it.
    pub selector: Arc<str>,
    /// How it matches.
    pub match_type: MatchType,
    /// The subscriber's `urn:uuid:` id.
    pub subscriber: Arc<str>,
    /// The token's `mercure.payload`, as JSON text (`null` without one).
    pub payload: Arc<str>,
    /// The process that announced it (on Redis), for removing the entries
    /// of a process that stopped without announcing their end.
    pub hub: Option<Arc<str>>,
}

impl Entry {
    /// Its event's 0.x topic (also its `id`).
    pub fn topic(&self) -> String {
        topic_of(&self.selector, &self.subscriber)
    }

    /// Its event's draft-08 topic.
    pub fn draft_topic(&self) -> String {
        draft_topic_of(self.match_type, &self.selector, &self.subscriber)
    }

    /// The JSON-LD `Subscription` object, with `active`; with `context`,
    /// the `@context` too (a document of its own).
    pub fn to_json(&self, active: bool, context: bool) -> String {
        let mut out = String::with_capacity(256 + self.selector.len() * 4 + self.payload.len());
        out.push('{');
        if context {
            out.push_str("\"@context\":");
            push_json_str(&mut out, CONTEXT);
            out.push(',');
        }
        out.push_str("\"id\":");
        push_json_str(&mut out, &self.topic());
        out.push_str(",\"type\":\"Subscription\",\"topic\":");
        push_json_str(&mut out, &self.selector);
        out.push_str(",\"match\":");
        push_json_str(&mut out, &self.selector);
        out.push_str(",\"match_type\":");
        push_json_str(&mut out, self.match_type.as_str());
        out.push_str(",\"subscriber\":");
        push_json_str(&mut out, &self.subscriber);
        out.push_str(",\"active\":");
        out.push_str(if active { "true" } else { "false" });
        out.push_str(",\"payload\":");
        out.push_str(&self.payload);
        out.push('}');
        out
    }

    /// The bytes it is counted for in the list.
    fn bytes(&self) -> usize {
        self.selector.len()
            + self.subscriber.len()
            + self.payload.len()
            + self.hub.as_deref().map_or(0, str::len)
            + ENTRY_OVERHEAD
    }

    /// The update announcing it (`active`) or its end.
    fn update(&self, active: bool) -> Update {
        Update::new(self.topic(), self.to_json(active, true))
            .topic(self.draft_topic())
            .private(true)
    }

    /// [`Entry::update`] as a publication (for Redis), naming `hub`, with
    /// its change to Redis's table of active subscriptions.
    fn publication(&self, active: bool, hub: &str) -> Publication {
        let data = self.to_json(active, true);
        let draft = self.draft_topic();
        let record = Record {
            field: draft.clone(),
            value: active.then(|| format!("{hub} {data}")),
        };
        Publication {
            topics: vec![self.topic(), draft],
            data,
            event_type: None,
            id: None,
            retry_ms: None,
            private: true,
            hub: Some(hub.to_owned()),
            record: Some(record),
        }
    }
}

/// A subscription event: an entry and whether it starts or ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The subscription.
    pub entry: Entry,
    /// `true`: it starts; `false`: it ends.
    pub active: bool,
}

/// The data of a subscription event, as read back from the backend.
#[derive(Deserialize)]
struct EventData {
    #[serde(rename = "type")]
    kind: String,
    topic: String,
    #[serde(default)]
    match_type: Option<String>,
    subscriber: String,
    active: bool,
    #[serde(default)]
    payload: serde_json::Value,
}

impl Event {
    /// The subscription event an update read back from the backend
    /// carries (`topics` and `data`), naming the process `hub`; `None` for
    /// any other update, or a malformed one (logged).
    pub fn parse(topics: &[String], data: &str, hub: Option<&str>) -> Option<Event> {
        if !topics.first()?.starts_with(SUBSCRIPTIONS_PATH) {
            return None;
        }
        let parsed: EventData = match serde_json::from_str(data) {
            Ok(parsed) => parsed,
            Err(e) => {
                debug!("an update on a subscription topic is not a subscription event: {e}");
                return None;
            }
        };
        let match_type = match parsed.match_type.as_deref() {
            None => MatchType::Exact,
            Some(name) => MatchType::parse(name)?,
        };
        if parsed.kind != "Subscription"
            || !parsed.subscriber.starts_with("urn:uuid:")
            || parsed.subscriber.len() > MAX_SUBSCRIBER
        {
            debug!("ignoring a malformed subscription event");
            return None;
        }
        let payload = serde_json::to_string(&parsed.payload).unwrap_or_else(|_| "null".into());
        Some(Event {
            entry: Entry {
                selector: parsed.topic.into(),
                match_type,
                subscriber: parsed.subscriber.into(),
                payload: payload.into(),
                hub: hub.map(Arc::from),
            },
            active: parsed.active,
        })
    }
}

/// The key of an entry in the list: ordered by selector first, so that a
/// selector's entries are one range.
type Key = (Arc<str>, MatchType, Arc<str>);

fn key_of(entry: &Entry) -> Key {
    (
        entry.selector.clone(),
        entry.match_type,
        entry.subscriber.clone(),
    )
}

/// The active subscriptions this process knows of, bounded in entries and
/// bytes.
pub struct Registry {
    state: Mutex<State>,
    max_entries: usize,
    max_bytes: usize,
    /// Subscriptions refused because the list was full.
    refused: AtomicU64,
    /// Subscription events not recorded because the list was full.
    unrecorded: AtomicU64,
    /// Entries removed because the process that announced them stopped.
    reaped: AtomicU64,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<Key, Arc<Entry>>,
    bytes: usize,
    /// How many entries each process (on Redis) announced.
    by_hub: HashMap<Arc<str>, usize>,
    /// Whether the list being full was logged (since it last had room).
    full_logged: bool,
}

/// What the list holds now, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// Active subscriptions listed.
    pub entries: usize,
    /// The bytes they are counted for.
    pub bytes: usize,
    /// Subscriptions refused because the list was full.
    pub refused: u64,
    /// Subscription events not recorded because the list was full.
    pub unrecorded: u64,
    /// Entries removed because the process that announced them stopped.
    pub reaped: u64,
}

/// Which active subscriptions a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// All of them (`/.well-known/mercure/subscriptions`).
    All,
    /// Those of one selector (`…/{topic}`), whatever its kind.
    Selector(String),
    /// Those of one selector of one kind (`…/{match_type}/{match}`).
    Match(MatchType, String),
    /// One (`…/{topic}/{subscriber}` or
    /// `…/{match_type}/{match}/{subscriber}`).
    One(Option<MatchType>, String, String),
}

impl Query {
    /// The query a path under [`SUBSCRIPTIONS_PATH`] asks (`rest` is what
    /// follows it); `Err` with the status to answer (400 for a malformed
    /// escape, 404 for a path the API does not serve).
    pub fn parse(rest: &str) -> Result<Query, u16> {
        if rest.is_empty() {
            return Ok(Query::All);
        }
        let Some(rest) = rest.strip_prefix('/') else {
            return Err(404);
        };
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(404);
        }
        let decoded = segments
            .iter()
            .map(|s| decode_segment(s))
            .collect::<Option<Vec<String>>>()
            .ok_or(400u16)?;
        match decoded.as_slice() {
            [topic] => Ok(Query::Selector(topic.clone())),
            // `{topic}/{subscriber}` (0.x), or `{match_type}/{match}`
            // (draft-08): subscriber ids are `urn:uuid:` ones.
            [topic, subscriber] if subscriber.starts_with("urn:uuid:") => {
                Ok(Query::One(None, topic.clone(), subscriber.clone()))
            }
            [kind, selector] => match MatchType::parse(kind) {
                Some(kind) => Ok(Query::Match(kind, selector.clone())),
                None => Err(404),
            },
            [kind, selector, subscriber] => match MatchType::parse(kind) {
                Some(kind) => Ok(Query::One(Some(kind), selector.clone(), subscriber.clone())),
                None => Err(404),
            },
            _ => Err(404),
        }
    }
}

impl Registry {
    /// A list of at most `max_entries` entries counted for at most
    /// `max_bytes` bytes.
    pub fn new(max_entries: usize, max_bytes: usize) -> Registry {
        Registry {
            state: Mutex::new(State::default()),
            max_entries,
            max_bytes,
            refused: AtomicU64::new(0),
            unrecorded: AtomicU64::new(0),
            reaped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each change leaves the maps consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `entries` more entries of `bytes` bytes in all fit; counts
    /// a refusal when they do not.
    pub fn has_room(&self, entries: usize, bytes: usize) -> bool {
        let state = self.lock();
        let fits = state.entries.len() + entries <= self.max_entries
            && state.bytes + bytes <= self.max_bytes;
        drop(state);
        if !fits {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        fits
    }

    /// Applies an event to the list (the caller holds the lock).
    fn apply(&self, state: &mut State, event: Event) {
        let key = key_of(&event.entry);
        if !event.active {
            if let Some(gone) = state.entries.remove(&key) {
                forget(state, &gone);
                state.full_logged = false;
            }
            return;
        }
        if state.entries.contains_key(&key) {
            return;
        }
        let bytes = event.entry.bytes();
        if state.entries.len() >= self.max_entries || state.bytes + bytes > self.max_bytes {
            self.unrecorded.fetch_add(1, Ordering::Relaxed);
            if !state.full_logged {
                state.full_logged = true;
                warn!(
                    "the list of active subscriptions is full ({} entries, {} bytes; \
                     --max-subscriptions {}, --max-subscriptions-bytes {}): subscriptions \
                     announced by other processes are not listed until it has room again \
                     (metric sse_hub_subscriptions_unrecorded_total)",
                    state.entries.len(),
                    state.bytes,
                    self.max_entries,
                    self.max_bytes
                );
            }
            return;
        }
        state.bytes += bytes;
        if let Some(hub) = &event.entry.hub {
            *state.by_hub.entry(hub.clone()).or_insert(0) += 1;
        }
        state.entries.insert(key, Arc::new(event.entry));
    }

    /// Publishes `update` into `broker`; when it carries a subscription
    /// event (`event`), applies it to the list under the list's lock, so
    /// that a listing's `lastEventID` and its entries agree. An event is
    /// applied even if the broker refuses the update (shutting down): the
    /// list reflects what ended.
    pub fn publish(
        &self,
        broker: &Broker,
        update: Update,
        event: Option<Event>,
    ) -> Result<Published, PublishError> {
        let Some(event) = event else {
            return broker.publish(update, Instant::now());
        };
        let mut state = self.lock();
        let published = broker.publish(update, Instant::now());
        if published.is_ok() || !event.active {
            self.apply(&mut state, event);
        }
        published
    }

    /// Replaces the list with `entries` (all active), running `during`
    /// under the list's lock first (delivering the history whose events
    /// `entries` reflect, so that no listing sees one without the other).
    pub fn reset(&self, entries: Vec<Entry>, during: impl FnOnce()) {
        let mut state = self.lock();
        during();
        let old = std::mem::take(&mut *state);
        for entry in entries {
            self.apply(
                &mut state,
                Event {
                    entry,
                    active: true,
                },
            );
        }
        drop(state);
        // Dropped outside the lock.
        drop(old);
    }

    /// The entries `query` names, with the id of the broker's newest event
    /// (`earliest` before the first), taken together: the list holds
    /// exactly the subscription events up to that id.
    pub fn list(&self, broker: &Broker, query: &Query) -> (String, Vec<Arc<Entry>>) {
        let state = self.lock();
        let last = broker
            .last_id()
            .map_or_else(|| "earliest".to_owned(), |id| id.as_str().to_owned());
        let found = match query {
            Query::All => state.entries.values().cloned().collect(),
            Query::Selector(selector) => selector_range(&state, selector)
                .map(|(_, e)| e.clone())
                .collect(),
            Query::Match(kind, selector) => selector_range(&state, selector)
                .filter(|((_, k, _), _)| k == kind)
                .map(|(_, e)| e.clone())
                .collect(),
            Query::One(kind, selector, subscriber) => selector_range(&state, selector)
                .filter(|((_, k, s), _)| {
                    kind.is_none_or(|kind| kind == *k) && &**s == subscriber.as_str()
                })
                .map(|(_, e)| e.clone())
                .take(1)
                .collect(),
        };
        drop(state);
        (last, found)
    }

    /// The processes (other than `own`) that announced entries.
    pub fn hubs(&self, own: &str) -> Vec<Arc<str>> {
        self.lock()
            .by_hub
            .keys()
            .filter(|h| &***h != own)
            .cloned()
            .collect()
    }

    /// Removes every entry announced by the process `hub`; the entries
    /// removed.
    pub fn reap(&self, hub: &str) -> Vec<Arc<Entry>> {
        let mut state = self.lock();
        let keys: Vec<Key> = state
            .entries
            .iter()
            .filter(|(_, e)| e.hub.as_deref() == Some(hub))
            .map(|(k, _)| k.clone())
            .collect();
        let mut removed = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(gone) = state.entries.remove(&key) {
                forget(&mut state, &gone);
                removed.push(gone);
            }
        }
        state.by_hub.remove(hub);
        drop(state);
        self.reaped
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
        removed
    }

    /// What it holds now.
    pub fn stats(&self) -> RegistryStats {
        let state = self.lock();
        RegistryStats {
            entries: state.entries.len(),
            bytes: state.bytes,
            refused: self.refused.load(Ordering::Relaxed),
            unrecorded: self.unrecorded.load(Ordering::Relaxed),
            reaped: self.reaped.load(Ordering::Relaxed),
        }
    }
}

/// Takes a removed entry out of the counts.
fn forget(state: &mut State, gone: &Entry) {
    state.bytes = state.bytes.saturating_sub(gone.bytes());
    if let Some(hub) = &gone.hub {
        if let Some(n) = state.by_hub.get_mut(hub) {
            *n -= 1;
            if *n == 0 {
                state.by_hub.remove(hub);
            }
        }
    }
}

/// The entries of `selector`, in order.
fn selector_range<'a>(
    state: &'a State,
    selector: &str,
) -> impl Iterator<Item = (&'a Key, &'a Arc<Entry>)> + 'a {
    let from: Key = (selector.into(), MatchType::Exact, "".into());
    let selector: Arc<str> = selector.into();
    state
        .entries
        .range((Bound::Included(from), Bound::Unbounded))
        .take_while(move |((s, _, _), _)| *s == selector)
}

/// One subscriber's subscriptions, as announced.
struct Local {
    subscriber: Arc<str>,
    /// Its entries (one per selector).
    entries: Vec<Entry>,
    /// Whether its start was announced (on Redis: published).
    announced: AtomicBool,
    /// Whether it ended.
    ended: AtomicBool,
}

/// Announcements waiting for the Redis worker.
struct Job {
    local: Arc<Local>,
    active: bool,
}

/// Where this process's announcements go.
enum Sink {
    /// Into the broker, at once (memory backend).
    Broker(Broker),
    /// To the worker that publishes them to Redis, in order.
    Redis {
        queue: mpsc::UnboundedSender<Job>,
        /// Jobs queued and not done.
        pending: Arc<AtomicUsize>,
        /// The most jobs that may wait.
        max_pending: usize,
        /// Whether a full queue was logged (since it last emptied).
        overflow_logged: Arc<AtomicBool>,
    },
}

struct Inner {
    registry: Arc<Registry>,
    sink: Sink,
    /// This process's id (named in its announcements on Redis).
    hub_id: Arc<str>,
    /// How often this process refreshes its key, and checks the others'.
    heartbeat: Duration,
}

/// The hub's side of `--subscriptions`: announcing subscriptions, and the
/// list that answers the API.
pub struct Presence {
    inner: Arc<Inner>,
    /// For the Redis side: the backend, and the shutdown signal.
    redis: Option<(Arc<RedisBackend>, watch::Receiver<bool>)>,
    /// Whether the heartbeat task started.
    heartbeat: std::sync::Once,
}

/// A subscriber whose subscriptions were announced: dropping it (when its
/// stream ends) announces their end.
pub struct Announced {
    inner: Arc<Inner>,
    local: Arc<Local>,
}

impl std::fmt::Debug for Announced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announced")
            .field("subscriber", &self.local.subscriber)
            .finish_non_exhaustive()
    }
}

/// A subscriber ready to be announced, once the broker took it.
pub struct Prepared {
    local: Local,
}

/// The key a process refreshes while it runs (on Redis).
fn alive_key(hub: &str) -> String {
    format!("sse-hub:hub:{hub}")
}
/// The key that elects the process announcing a stopped process's ends.
fn reaped_key(hub: &str) -> String {
    format!("sse-hub:hub:{hub}:reaped")
}
/// How many heartbeats a process's key outlives its last refresh.
const ALIVE_BEATS: u32 = 3;

impl Presence {
    /// Announces through `backend` and lists from `registry` (the one the
    /// backend applies events to); on Redis, refreshes this process's key
    /// every `heartbeat`; `shutdown` flips when the hub stops.
    pub fn new(
        registry: Arc<Registry>,
        backend: &Backend,
        heartbeat: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> Presence {
        let hub_id: Arc<str> = {
            let b = random_16();
            b.iter()
                .fold(String::new(), |mut s, x| {
                    let _ = write!(s, "{x:02x}");
                    s
                })
                .into()
        };
        let (sink, redis) = match backend {
            Backend::Memory(broker) => (Sink::Broker(broker.clone()), None),
            Backend::Redis(_, redis) => {
                let (queue, jobs) = mpsc::unbounded_channel();
                let pending = Arc::new(AtomicUsize::new(0));
                let overflow_logged = Arc::new(AtomicBool::new(false));
                tokio::spawn(work(
                    jobs,
                    redis.clone(),
                    hub_id.clone(),
                    (pending.clone(), overflow_logged.clone()),
                    shutdown.clone(),
                ));
                let max_pending = registry.max_entries.max(1024);
                let sink = Sink::Redis {
                    queue,
                    pending,
                    max_pending,
                    overflow_logged,
                };
                (sink, Some((redis.clone(), shutdown)))
            }
        };
        Presence {
            inner: Arc::new(Inner {
                registry,
                sink,
                hub_id,
                heartbeat,
            }),
            redis,
            heartbeat: std::sync::Once::new(),
        }
    }

    /// The list of active subscriptions.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Starts the heartbeat (on Redis): once, when the hub starts serving.
    pub fn follow(&self) {
        if let Some((redis, shutdown)) = &self.redis {
            self.heartbeat.call_once(|| {
                tokio::spawn(heartbeat(
                    redis.clone(),
                    self.inner.clone(),
                    shutdown.clone(),
                ));
            });
        }
    }

    /// Checks that a subscriber with `subscription` and the token's
    /// `payload` can be listed, and gives it an id; or the answer to give
    /// instead (400 for a payload too large, 503 when the list is full).
    pub fn prepare(
        &self,
        subscription: &Subscription,
        payload: Option<&serde_json::Value>,
    ) -> Result<Prepared, Response> {
        let payload: Arc<str> = match payload {
            None => Arc::from("null"),
            Some(value) => serde_json::to_string(value)
                .unwrap_or_else(|_| "null".to_owned())
                .into(),
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(Response::text(
                400,
                format!(
                    "the token's `mercure.payload` takes {} bytes as JSON, more than the {} \
                     this hub copies into subscription events: make it smaller",
                    payload.len(),
                    MAX_PAYLOAD
                ),
            ));
        }
        let subscriber: Arc<str> = new_subscriber_id().into();
        let hub = matches!(self.inner.sink, Sink::Redis { .. }).then(|| self.inner.hub_id.clone());
        let entries: Vec<Entry> = subscription
            .selectors()
            .iter()
            .map(|selector| Entry {
                selector: selector.as_str().into(),
                match_type: MatchType::of(selector),
                subscriber: subscriber.clone(),
                payload: payload.clone(),
                hub: hub.clone(),
            })
            .collect();
        let bytes = entries.iter().map(Entry::bytes).sum();
        if !self.inner.registry.has_room(entries.len(), bytes) {
            return Err(Response::text(
                503,
                "the list of active subscriptions is full (--max-subscriptions, \
                 --max-subscriptions-bytes): try again later",
            )
            .header("Retry-After", "5"));
        }
        Ok(Prepared {
            local: Local {
                subscriber,
                entries,
                announced: AtomicBool::new(false),
                ended: AtomicBool::new(false),
            },
        })
    }

    /// Announces a prepared subscriber (the broker took it): its
    /// subscriptions start now; they end when the result is dropped.
    pub fn announce(&self, prepared: Prepared) -> Announced {
        let local = Arc::new(prepared.local);
        self.inner.send(&local, true);
        Announced {
            inner: self.inner.clone(),
            local,
        }
    }

    /// Waits (until `deadline`) for this process's announcements to reach
    /// Redis, at shutdown.
    pub async fn drain(&self, deadline: tokio::time::Instant) {
        if let Sink::Redis { pending, .. } = &self.inner.sink {
            while pending.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Answers `GET /.well-known/mercure/subscriptions…` (`path` is the
    /// request's path): the listing or the one subscription the path
    /// names, as far as the caller's token's `mercure.subscribe` selectors
    /// match their events' topics.
    pub fn answer(
        &self,
        auth: Option<&Auth>,
        anonymous: bool,
        broker: &Broker,
        head: &sse_proto::http1::RequestHead,
        path: &str,
    ) -> Response {
        let rest = path.strip_prefix(SUBSCRIPTIONS_PATH).unwrap_or("/");
        let query = match Query::parse(rest) {
            Ok(query) => query,
            Err(400) => {
                return Response::text(
                    400,
                    "malformed percent-encoding in the path: each segment is a \
                     percent-encoded selector, match type or subscriber id",
                );
            }
            Err(status) => return Response::text(status, "not found"),
        };
        // Whose events the caller may receive: `None` sees nothing private.
        let access = match auth {
            None => None,
            Some(auth) => {
                let params = crate::query::pairs(head.query().unwrap_or("").as_bytes());
                match auth.authorize(head, &params, crate::auth::Role::Subscriber) {
                    Ok((claims, _)) => Some(claims.subscribe),
                    Err(AuthError::Missing) if anonymous => None,
                    Err(e) => return Response::text(401, e.to_string()),
                }
            }
        };
        let (last, found) = self.inner.registry.list(broker, &query);
        let visible = |entry: &Entry| {
            access.as_deref().is_some_and(|selectors| {
                let (topic, draft) = (entry.topic(), entry.draft_topic());
                selectors
                    .iter()
                    .any(|s| s.matches(&topic) || s.matches(&draft))
            })
        };
        let ld = |body: String| {
            Response::new(200)
                .content_type("application/ld+json")
                .header("Cache-Control", "private, no-store")
                .body(body)
        };
        if let Query::One(..) = query {
            return match found.first().filter(|e| visible(e)) {
                Some(entry) => ld(entry.to_json(true, true)),
                None => Response::text(404, "no such active subscription"),
            };
        }
        let mut out = String::with_capacity(256 + found.len() * 256);
        out.push_str("{\"@context\":");
        push_json_str(&mut out, CONTEXT);
        out.push_str(",\"id\":");
        push_json_str(&mut out, path);
        out.push_str(",\"type\":\"Subscriptions\",\"lastEventID\":");
        push_json_str(&mut out, &last);
        out.push_str(",\"last_event_id\":");
        push_json_str(&mut out, &last);
        out.push_str(",\"subscriptions\":[");
        let mut first = true;
        for entry in found.iter().filter(|e| visible(e)) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&entry.to_json(true, false));
        }
        out.push_str("]}");
        ld(out)
    }
}

impl Inner {
    /// Announces `local`'s start (`active`) or end.
    fn send(&self, local: &Arc<Local>, active: bool) {
        match &self.sink {
            Sink::Broker(broker) => {
                for entry in &local.entries {
                    let event = Event {
                        entry: entry.clone(),
                        active,
                    };
                    // Refused only while shutting down: the list still
                    // forgets what ended.
                    let _ = self
                        .registry
                        .publish(broker, entry.update(active), Some(event));
                }
            }
            Sink::Redis {
                queue,
                pending,
                max_pending,
                overflow_logged,
            } => {
                if pending.fetch_add(1, Ordering::SeqCst) >= *max_pending {
                    pending.fetch_sub(1, Ordering::SeqCst);
                    self.registry
                        .unrecorded
                        .fetch_add(local.entries.len() as u64, Ordering::Relaxed);
                    if !overflow_logged.swap(true, Ordering::SeqCst) {
                        warn!(
                            "{max_pending} subscription announcements wait for Redis: more \
                             are dropped until they are published (other processes may list \
                             subscriptions that ended until this process stops; metric \
                             sse_hub_subscriptions_unrecorded_total)"
                        );
                    }
                    return;
                }
                let job = Job {
                    local: local.clone(),
                    active,
                };
                if queue.send(job).is_err() {
                    pending.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }
}

impl Drop for Announced {
    fn drop(&mut self) {
        self.local.ended.store(true, Ordering::SeqCst);
        self.inner.send(&self.local, false);
    }
}

/// Publishes this process's announcements to Redis, in order, retrying
/// while Redis is unreachable (until the hub shuts down). A start not yet
/// published when its subscriber ended is skipped, and so is its end.
async fn work(
    mut jobs: mpsc::UnboundedReceiver<Job>,
    redis: Arc<RedisBackend>,
    hub_id: Arc<str>,
    (pending, overflow_logged): (Arc<AtomicUsize>, Arc<AtomicBool>),
    shutdown: watch::Receiver<bool>,
) {
    while let Some(job) = jobs.recv().await {
        let Job { local, active } = job;
        let skip = if active {
            local.ended.load(Ordering::SeqCst)
        } else {
            !local.announced.load(Ordering::SeqCst)
        };
        if !skip {
            for entry in &local.entries {
                publish_retrying(&redis, &entry.publication(active, &hub_id), &shutdown).await;
            }
            if active {
                local.announced.store(true, Ordering::SeqCst);
            }
        }
        if pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            overflow_logged.store(false, Ordering::SeqCst);
        }
    }
}

/// Publishes to Redis, retrying with backoff while it is unreachable; at
/// shutdown, gives up after a few tries.
async fn publish_retrying(
    redis: &RedisBackend,
    publication: &Publication,
    shutdown: &watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut tries = 0;
    loop {
        tries += 1;
        match redis.publish(publication).await {
            Ok(_) => return,
            Err(PublishFailure::Unavailable(why)) => {
                if *shutdown.borrow() && tries >= 3 {
                    warn!("a subscription announcement was not published at shutdown: {why}");
                    return;
                }
                if tries == 1 {
                    debug!("a subscription announcement waits for Redis: {why}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                warn!("a subscription announcement was refused: {e:?}");
                return;
            }
        }
    }
}

/// On Redis: refreshes this process's key, and removes the entries of
/// processes whose key is gone (twice in a row), announcing their end
/// (one process does, elected by a key).
async fn heartbeat(redis: Arc<RedisBackend>, inner: Arc<Inner>, shutdown: watch::Receiver<bool>) {
    let own = inner.hub_id.clone();
    // Redis takes expiry times up to about 2^63 ms; a day is plenty.
    let ttl_ms = u64::try_from(inner.heartbeat.saturating_mul(ALIVE_BEATS).as_millis())
        .unwrap_or(u64::MAX)
        .min(86_400_000);
    let mut missing: HashMap<Arc<str>, u32> = HashMap::new();
    let mut logged = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let refreshed = match redis.connection().await {
            Ok(mut c) => {
                let set: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(alive_key(&own))
                    .arg(1)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut c)
                    .await;
                match set {
                    Ok(()) => {
                        check_hubs(&mut c, &inner, &own, &mut missing).await;
                        Ok(())
                    }
                    Err(e) => {
                        redis.drop_connection();
                        Err(e.to_string())
                    }
                }
            }
            Err(e) => Err(e),
        };
        match refreshed {
            Ok(()) => logged = false,
            Err(e) if !logged => {
                debug!(
                    "cannot refresh this process's presence key: {}",
                    redis.scrub(&e)
                );
                logged = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(inner.heartbeat).await;
    }
}

/// Checks the keys of the processes that announced entries; reaps those
/// missing twice in a row.
async fn check_hubs(
    c: &mut redis::aio::MultiplexedConnection,
    inner: &Arc<Inner>,
    own: &str,
    missing: &mut HashMap<Arc<str>, u32>,
) {
    let hubs = inner.registry.hubs(own);
    missing.retain(|h, _| hubs.contains(h));
    for hub in hubs {
        let exists: redis::RedisResult<u32> = redis::cmd("EXISTS")
            .arg(alive_key(&hub))
            .query_async(c)
            .await;
        match exists {
            Ok(0) => {
                let strikes = missing.entry(hub.clone()).or_insert(0);
                *strikes += 1;
                if *strikes < 2 {
                    continue;
                }
                missing.remove(&hub);
                let removed = inner.registry.reap(&hub);
                info!(
                    "hub process {hub} stopped refreshing its presence: its {} subscriptions \
                     are no longer listed",
                    removed.len()
                );
                let elected: redis::RedisResult<Option<String>> = redis::cmd("SET")
                    .arg(reaped_key(&hub))
                    .arg(own)
                    .arg("NX")
                    .arg("PX")
                    .arg(600_000u64)
                    .query_async(c)
                    .await;
                if matches!(elected, Ok(Some(_))) && !removed.is_empty() {
                    let local = Arc::new(Local {
                        subscriber: "".into(),
                        entries: removed.iter().map(|e| (**e).clone()).collect(),
                        announced: AtomicBool::new(true),
                        ended: AtomicBool::new(true),
                    });
                    inner.send(&local, false);
                }
            }
            Ok(_) => {
                missing.remove(&hub);
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded_and_decoded() {
        let mut out = String::new();
        encode_segment("https://example.com/books/{id}?a=b c~_.-", &mut out);
        assert_eq!(
            out,
            "https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D%3Fa%3Db%20c~_.-"
        );
        assert_eq!(
            decode_segment(&out).as_deref(),
            Some("https://example.com/books/{id}?a=b c~_.-")
        );
        let mut out = String::new();
        encode_segment("é/é", &mut out);
        assert_eq!(out, "%C3%A9%2F%C3%A9");
        assert_eq!(decode_segment(&out).as_deref(), Some("é/é"));
        // Malformed escapes and bytes that are not UTF-8.
        for bad in ["%", "%4", "%zz", "%FF", "a%C3"] {
            assert_eq!(decode_segment(bad), None, "{bad}");
        }
    }

    #[test]
    fn topics_have_one_segment_per_part() {
        let subscriber = "urn:uuid:0e1a7c3f-8d2b-4c55-9a10-3e5f6a7b8c9d";
        assert_eq!(
            topic_of("/books/1", subscriber),
            "/.well-known/mercure/subscriptions/%2Fbooks%2F1/\
             urn%3Auuid%3A0e1a7c3f-8d2b-4c55-9a10-3e5f6a7b8c9d"
        );
        assert_eq!(
            draft_topic_of(MatchType::UrlPattern, "https://e.com/:id", subscriber),
            "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fe.com%2F%3Aid/\
             urn%3Auuid%3A0e1a7c3f-8d2b-4c55-9a10-3e5f6a7b8c9d"
        );
        // The 0.x template that grants every event matches the 0.x topic.
        let all =
            Selector::topic("/.well-known/mercure/subscriptions{/topic}{/subscriber}").unwrap();
        assert!(all.matches(&topic_of("https://e.com/a b/{x}", subscriber)));
        let one = Selector::topic("/.well-known/mercure/subscriptions/%2Fbooks%2F1{/subscriber}")
            .unwrap();
        assert!(one.matches(&topic_of("/books/1", subscriber)));
        assert!(!one.matches(&topic_of("/books/2", subscriber)));
    }

    #[test]
    fn subscriber_ids_are_fresh_version_4_uuids() {
        let a = new_subscriber_id();
        let b = new_subscriber_id();
        assert_ne!(a, b);
        let uuid = a.strip_prefix("urn:uuid:").unwrap();
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{a}");
        assert!(uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    fn entry(selector: &str, kind: MatchType, subscriber: &str, hub: Option<&str>) -> Entry {
        Entry {
            selector: selector.into(),
            match_type: kind,
            subscriber: subscriber.into(),
            payload: Arc::from("{\"name\":\"ann\"}"),
            hub: hub.map(Arc::from),
        }
    }

    #[test]
    fn an_event_reads_back_as_it_was_written() {
        let e = entry("/a/{id}", MatchType::UriTemplate, "urn:uuid:1", Some("h1"));
        let json: serde_json::Value = serde_json::from_str(&e.to_json(false, true)).unwrap();
        assert_eq!(json["@context"], "https://mercure.rocks/");
        assert_eq!(json["id"], e.topic());
        assert_eq!(json["type"], "Subscription");
        assert_eq!(json["topic"], "/a/{id}");
        assert_eq!(json["match"], "/a/{id}");
        assert_eq!(json["match_type"], "uritemplate");
        assert_eq!(json["subscriber"], "urn:uuid:1");
        assert_eq!(json["active"], false);
        assert_eq!(json["payload"]["name"], "ann");
        let topics = vec![e.topic(), e.draft_topic()];
        let back = Event::parse(&topics, &e.to_json(false, true), Some("h1")).unwrap();
        assert_eq!(
            back,
            Event {
                entry: e.clone(),
                active: false
            }
        );
        // Other updates, and malformed ones, are no events.
        assert_eq!(Event::parse(&["/a".into()], "{}", None), None);
        for bad in [
            "not json",
            "{}",
            r#"{"type":"Subscription","topic":"t","subscriber":"x","active":true}"#,
            r#"{"type":"Other","topic":"t","subscriber":"urn:uuid:1","active":true}"#,
            r#"{"type":"Subscription","topic":"t","match_type":"regex","subscriber":"urn:uuid:1","active":true}"#,
        ] {
            assert_eq!(Event::parse(&topics, bad, None), None, "{bad}");
        }
    }

    #[test]
    fn paths_name_queries() {
        assert_eq!(Query::parse(""), Ok(Query::All));
        assert_eq!(
            Query::parse("/%2Fbooks%2F1"),
            Ok(Query::Selector("/books/1".into()))
        );
        assert_eq!(
            Query::parse("/%2Fbooks%2F1/urn%3Auuid%3A1"),
            Ok(Query::One(None, "/books/1".into(), "urn:uuid:1".into()))
        );
        assert_eq!(
            Query::parse("/urlpattern/https%3A%2F%2Fe.com%2F%3Aid"),
            Ok(Query::Match(
                MatchType::UrlPattern,
                "https://e.com/:id".into()
            ))
        );
        assert_eq!(
            Query::parse("/exact/t/urn%3Auuid%3A1"),
            Ok(Query::One(
                Some(MatchType::Exact),
                "t".into(),
                "urn:uuid:1".into()
            ))
        );
        for missing in ["/", "x", "//a", "/a/", "/regex/t", "/regex/t/s", "/a/b/c/d"] {
            assert_eq!(Query::parse(missing), Err(404), "{missing}");
        }
        assert_eq!(Query::parse("/%zz"), Err(400));
    }

    fn broker() -> Broker {
        Broker::new(sse_tokio::server::BrokerConfig::new())
    }

    fn publish(registry: &Registry, broker: &Broker, e: &Entry, active: bool) {
        let event = Event {
            entry: e.clone(),
            active,
        };
        registry
            .publish(broker, e.update(active), Some(event))
            .unwrap();
    }

    #[test]
    fn the_list_follows_events_and_names_the_last_id() {
        let registry = Registry::new(100, 1 << 20);
        let broker = broker();
        assert_eq!(
            registry.list(&broker, &Query::All),
            ("earliest".into(), vec![])
        );
        let a1 = entry("/a", MatchType::Exact, "urn:uuid:1", None);
        let a2 = entry("/a", MatchType::UriTemplate, "urn:uuid:2", None);
        let b1 = entry("/b", MatchType::Exact, "urn:uuid:1", None);
        for e in [&a1, &a2, &b1] {
            publish(&registry, &broker, e, true);
        }
        let (last, all) = registry.list(&broker, &Query::All);
        assert_eq!(Some(last.as_str()), broker.last_id().as_deref());
        assert_eq!(all.len(), 3);
        let names = |q: Query| -> Vec<(String, String)> {
            registry
                .list(&broker, &q)
                .1
                .iter()
                .map(|e| (e.selector.to_string(), e.subscriber.to_string()))
                .collect()
        };
        assert_eq!(
            names(Query::Selector("/a".into())),
            [
                ("/a".into(), "urn:uuid:1".into()),
                ("/a".into(), "urn:uuid:2".into())
            ]
        );
        assert_eq!(
            names(Query::Match(MatchType::UriTemplate, "/a".into())),
            [("/a".to_owned(), "urn:uuid:2".to_owned())]
        );
        assert_eq!(
            names(Query::One(None, "/b".into(), "urn:uuid:1".into())),
            [("/b".to_owned(), "urn:uuid:1".to_owned())]
        );
        assert!(
            names(Query::One(
                Some(MatchType::Any),
                "/b".into(),
                "urn:uuid:1".into()
            ))
            .is_empty()
        );
        publish(&registry, &broker, &a1, false);
        assert_eq!(names(Query::Selector("/a".into())).len(), 1);
        assert_eq!(registry.stats().entries, 2);
        // Ending what is not listed changes nothing.
        publish(&registry, &broker, &a1, false);
        assert_eq!(registry.stats().entries, 2);
    }

    #[test]
    fn the_list_is_bounded_in_entries_and_bytes() {
        let registry = Registry::new(2, 1 << 20);
        let broker = broker();
        for i in 0..5 {
            let e = entry("/a", MatchType::Exact, &format!("urn:uuid:{i}"), None);
            publish(&registry, &broker, &e, true);
        }
        let stats = registry.stats();
        assert_eq!((stats.entries, stats.unrecorded), (2, 3));
        assert!(!registry.has_room(1, 10));
        assert_eq!(registry.stats().refused, 1);

        let registry = Registry::new(1000, 1000);
        let big = "x".repeat(300);
        for i in 0..10 {
            let e = entry(&big, MatchType::Exact, &format!("urn:uuid:{i}"), None);
            publish(&registry, &broker, &e, true);
        }
        let stats = registry.stats();
        assert!(stats.bytes <= 1000, "{stats:?}");
        assert_eq!(stats.entries, 1000 / (300 + 10 + 14 + ENTRY_OVERHEAD));
    }

    #[test]
    fn a_stopped_process_entries_are_reaped() {
        let registry = Registry::new(100, 1 << 20);
        let broker = broker();
        let mine = entry("/a", MatchType::Exact, "urn:uuid:1", Some("me"));
        let theirs = entry("/a", MatchType::Exact, "urn:uuid:2", Some("them"));
        let theirs2 = entry("/b", MatchType::Exact, "urn:uuid:2", Some("them"));
        for e in [&mine, &theirs, &theirs2] {
            publish(&registry, &broker, e, true);
        }
        assert_eq!(registry.hubs("me"), [Arc::<str>::from("them")]);
        let removed = registry.reap("them");
        assert_eq!(removed.len(), 2);
        assert!(registry.hubs("me").is_empty());
        let stats = registry.stats();
        assert_eq!((stats.entries, stats.reaped), (1, 2));
        assert_eq!(stats.bytes, mine.bytes());
    }

    #[test]
    fn a_reset_replaces_the_list_within_its_bounds() {
        let registry = Registry::new(2, 1 << 20);
        let broker = broker();
        publish(
            &registry,
            &broker,
            &entry("/old", MatchType::Exact, "urn:uuid:0", Some("h")),
            true,
        );
        let table = (1..=3)
            .map(|i| {
                entry(
                    "/new",
                    MatchType::Exact,
                    &format!("urn:uuid:{i}"),
                    Some("g"),
                )
            })
            .collect();
        let mut ran = false;
        registry.reset(table, || ran = true);
        assert!(ran);
        let (_, all) = registry.list(&broker, &Query::All);
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|e| &*e.selector == "/new"));
        assert_eq!(registry.hubs("x"), [Arc::<str>::from("g")]);
        assert_eq!(registry.stats().unrecorded, 1);
    }
}
