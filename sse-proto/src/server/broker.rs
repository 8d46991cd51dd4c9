//! [`Broker`]: publish/subscribe with topics and history replay, shared by
//! every runtime adapter (feature `broker`).
//!
//! The broker is plain synchronous code: a mutex (`parking_lot`'s, for its
//! fair hand-over) around a
//! [`ReplayLog`] and a [`Router`], and for each distinct subscription a
//! fan-out channel that its subscribers share: a publish appends its frame
//! to a channel once, whatever the number of subscribers, and each reads
//! from its own position and is woken through a `core::task::Waker`. It
//! works under any executor (tokio, smol, async-std, or a thread that
//! polls), does no I/O, starts no task and reads no clock: the time that
//! ages the history ([`ReplayConfig::max_age`]) is passed in by the caller
//! of [`Broker::publish`], [`Broker::subscribe`] and the receive calls. The
//! adapters write what [`Subscriber::poll_recv`] hands them.
//!
//! # Guarantees
//!
//! * **Encoded once.** [`Broker::publish`] encodes the event into one
//!   `Bytes`; history and every subscriber share it (a reference count, not
//!   a copy).
//! * **No gap, no duplicate at the seam.** [`Broker::subscribe`] notes the
//!   newest sequence number of the history and registers the subscriber for
//!   live events under the same lock that [`Broker::publish`] takes to
//!   append and route. The replay is read from the history up to that
//!   number, the rest arrives live: every event is either in the replay or
//!   delivered live, never both and never neither, however publishes race
//!   with subscribes.
//! * **Nothing a subscriber asks for holds the others up.** The broker's
//!   lock is held for bounded work only: a subscription's selectors are
//!   indexed [`INDEX_CHUNK`] at a time (a new lock hold for each chunk),
//!   and a replay is read a bounded piece at a time, as the subscriber
//!   receives. The history is indexed by topic, so a replay looks its
//!   selectors up rather than examining every retained update against
//!   every selector: its work is bounded by its selectors and what they
//!   match (a `*` subscription reads the history in order). Between
//!   pieces the lock goes to whoever waits for it. A subscriber that never
//!   reads costs no replay work after its first batch, and what it holds
//!   of a replay is bounded ([`Subscriber::poll_recv`]).
//! * **Slow subscribers do not hold anyone up.** What each subscriber has
//!   not read is bounded (frames and bytes, [`BrokerConfig::queue`]), as if
//!   it had a queue of its own. A publish that would overflow it ends that
//!   subscriber with [`Ended::Lagged`] (it reconnects
//!   with its last event ID and replays from history); the publisher never
//!   waits and other subscribers are not affected.
//! * **Unknown cursor.** A cursor that is not in the history (evicted, or
//!   never seen) replays all retained history, preceded by an event of the
//!   reserved type [`LOST_EVENT_TYPE`] whose data is the requested id: the
//!   client learns that events may have been lost. A subscriber that reads
//!   its replay so slowly that the history evicts what it has not read yet
//!   ends as [`Ended::Lagged`] (it resumes from its last id).
//! * **Ids cannot be hijacked.** An id published more than once resolves
//!   to its earliest retained occurrence ([`ReplayLog::seek`]).
//! * **Every retained byte counts.** The history's byte bound counts each
//!   update's frame (id, type, data), id and topics.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Instant;

use bytes::Bytes;

use super::channel::{Channel, MemberId};
use super::replay::{Entry, ReplayConfig, ReplayLog, Seek};
use super::route::{Router, Selector, SubscriberKey, Subscription};
use crate::encode::OutgoingEvent;
use crate::field::{EventId, EventName};
use crate::str::Str;

/// The event type of the event sent first when a subscriber's cursor is not
/// in the history: events may have been lost. Its data is the cursor the
/// client asked for; it has no `id`, so the client's last event ID is left
/// as it was. All retained history follows it.
pub const LOST_EVENT_TYPE: &str = "sse-lost";

/// Limits and options of a [`Broker`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    replay: ReplayConfig,
    queue_frames: usize,
    queue_bytes: usize,
    id_prefix: Str,
    max_topics: usize,
    max_patterns: usize,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig::new()
    }
}

impl BrokerConfig {
    /// History as [`ReplayConfig::new`] (10 000 events, 64 MiB), queues of
    /// 4096 frames or 4 MiB per subscriber, at most 1000 topics per update,
    /// and ids with a prefix of this run's own (eight random hex digits and
    /// a `-`: `3fa9c2b1-1`, `3fa9c2b1-2`, ...), so that after a restart a
    /// client resuming with an id of the earlier run is told that events
    /// may have been lost (`sse-lost`), never resumed at the wrong place.
    pub fn new() -> BrokerConfig {
        BrokerConfig {
            replay: ReplayConfig::new(),
            queue_frames: 4096,
            queue_bytes: 4 << 20,
            id_prefix: run_prefix(),
            max_topics: 1000,
            max_patterns: DEFAULT_MAX_PATTERNS,
        }
    }

    /// The history's bounds.
    pub fn replay(mut self, replay: ReplayConfig) -> BrokerConfig {
        self.replay = replay;
        self
    }

    /// How much may wait for one subscriber (live frames, not counting a
    /// replay) before it is disconnected as lagging. At least 1 frame.
    pub fn queue(mut self, frames: usize, bytes: usize) -> BrokerConfig {
        self.queue_frames = frames.max(1);
        self.queue_bytes = bytes;
        self
    }

    /// The prefix of the ids the broker assigns (`{prefix}{n}`, with `n`
    /// counting from 1), instead of the random one of [`BrokerConfig::new`].
    /// Keep each run's different (a start time, say) so that a client
    /// holding an id from an earlier run is told that events may have been
    /// lost instead of resuming at the wrong place; an empty prefix (plain
    /// numbers) is safe only for a history that outlives the process. A
    /// prefix holding CR, LF or NUL is ignored.
    pub fn id_prefix(mut self, prefix: impl Into<Str>) -> BrokerConfig {
        let prefix = prefix.into();
        if EventId::new(prefix.clone()).is_ok() {
            self.id_prefix = prefix;
        }
        self
    }

    /// The most topics one update may have.
    pub fn max_topics(mut self, n: usize) -> BrokerConfig {
        self.max_topics = n;
        self
    }

    /// The most distinct patterns (URI templates, URL patterns) that
    /// subscribers may hold at once (default [`DEFAULT_MAX_PATTERNS`]). Each
    /// is matched against every published topic under the broker's lock,
    /// so this bounds what one publish costs whatever subscribers ask
    /// for; a subscription that would add one more is refused
    /// ([`Broker::try_subscribe`]). Exact topics and `*` are not counted.
    pub fn max_patterns(mut self, n: usize) -> BrokerConfig {
        self.max_patterns = n;
        self
    }

    /// The history's bounds.
    pub fn replay_config(&self) -> ReplayConfig {
        self.replay
    }
}

/// An update to publish: its topics, the event, and whether it is private.
///
/// ```
/// # use sse_proto::server::Update;
/// let update = Update::new("chat", "hello").event_type("message").unwrap().topic("all");
/// assert_eq!(update.topics().len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    topics: Vec<Str>,
    data: Str,
    event: Option<EventName>,
    id: Option<EventId>,
    retry: Option<Duration>,
    private: bool,
}

impl Update {
    /// A public update of `topic` carrying `data` (type `message`, id
    /// assigned by the broker).
    pub fn new(topic: impl Into<Str>, data: impl Into<Str>) -> Update {
        Update {
            topics: alloc::vec![topic.into()],
            data: data.into(),
            event: None,
            id: None,
            retry: None,
            private: false,
        }
    }

    /// Adds a topic (the first one is the canonical topic).
    pub fn topic(mut self, topic: impl Into<Str>) -> Update {
        self.topics.push(topic.into());
        self
    }

    /// Sets the event type (`event:`).
    ///
    /// # Errors
    /// [`crate::InvalidField`] when it holds CR or LF.
    pub fn event_type(mut self, name: impl Into<Str>) -> Result<Update, crate::InvalidField> {
        self.event = Some(EventName::new(name)?);
        Ok(self)
    }

    /// Sets the event id instead of letting the broker assign one.
    ///
    /// # Errors
    /// [`crate::InvalidField`] when it holds CR, LF or NUL.
    pub fn id(mut self, id: impl Into<Str>) -> Result<Update, crate::InvalidField> {
        self.id = Some(EventId::new(id)?);
        Ok(self)
    }

    /// Sets `retry:` on the event.
    pub fn retry(mut self, retry: Duration) -> Update {
        self.retry = Some(retry);
        self
    }

    /// Makes the update private: only subscribers whose private access
    /// matches one of its topics receive it.
    pub fn private(mut self, private: bool) -> Update {
        self.private = private;
        self
    }

    /// The topics.
    pub fn topics(&self) -> &[Str] {
        &self.topics
    }

    /// The data.
    pub fn data(&self) -> &str {
        &self.data
    }
}

/// What [`Broker::publish`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The event's id (the publisher's, or the one assigned).
    pub id: Str,
    /// Its sequence number in the history (publish order).
    pub seq: u64,
    /// How many subscribers it was queued for.
    pub subscribers: usize,
}

/// The default of [`BrokerConfig::max_patterns`]: about 50 µs of matching
/// per published topic at worst (at about 50 ns per pattern), and far more
/// distinct templates than an application uses (subscribers that use the
/// same template share it).
pub const DEFAULT_MAX_PATTERNS: usize = 1024;

/// Why a subscription was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubscribeError {
    /// It would add a distinct pattern past [`BrokerConfig::max_patterns`].
    TooManyPatterns,
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubscribeError::TooManyPatterns => {
                "subscribers already hold as many distinct URI templates and URL patterns as \
                 the broker allows; subscribe with exact topics or a template already in use"
            }
        })
    }
}

impl core::error::Error for SubscribeError {}

/// Why a publish was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublishError {
    /// The update has no topic.
    NoTopic,
    /// The update has more topics than [`BrokerConfig::max_topics`].
    TooManyTopics,
    /// The broker was shut down.
    ShutDown,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PublishError::NoTopic => "an update needs at least one topic",
            PublishError::TooManyTopics => "the update has more topics than the broker allows",
            PublishError::ShutDown => "the broker is shut down and accepts no more updates",
        })
    }
}

impl core::error::Error for PublishError {}

/// Where a new subscriber starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cursor {
    /// Live events only (no `Last-Event-ID`).
    #[default]
    Live,
    /// Every retained event, then live.
    Earliest,
    /// The events after this id (a `Last-Event-ID`), then live.
    After(Str),
}

impl Cursor {
    /// The cursor of a request: `Last-Event-ID` (or a query parameter)
    /// when present, `earliest` meaning [`Cursor::Earliest`].
    pub fn from_last_event_id(id: Option<&str>) -> Cursor {
        match id {
            None => Cursor::Live,
            Some("earliest") => Cursor::Earliest,
            Some(id) => Cursor::After(Str::from(id)),
        }
    }
}

/// Where a new subscriber's replay starts (the replay itself is read from
/// the history as the subscriber receives).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Replay {
    /// No cursor: live events only.
    Live,
    /// The cursor was found: the retained events after it follow (those
    /// the subscription accepts).
    Resumed {
        /// How many retained events follow the cursor, before filtering by
        /// subscription.
        retained: usize,
    },
    /// The cursor is not in the history: a [`LOST_EVENT_TYPE`] event, then
    /// the retained events the subscription accepts.
    Unknown {
        /// How many events the history retained, before filtering.
        retained: usize,
    },
    /// `earliest`: the retained events the subscription accepts.
    Earliest {
        /// How many events the history retained, before filtering.
        retained: usize,
    },
}

/// Why a subscriber's stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ended {
    /// Its queue overflowed: it fell too far behind and was disconnected.
    Lagged,
    /// The broker shut down; `retry` is this subscriber's reconnection
    /// delay to send before closing (randomised across subscribers), if
    /// the shutdown asked for one.
    Shutdown {
        /// The delay to send as `retry:`.
        retry: Option<Duration>,
    },
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Lagged => f.write_str("the subscriber fell behind and was disconnected"),
            Ended::Shutdown { .. } => f.write_str("the broker shut down"),
        }
    }
}

impl core::error::Error for Ended {}

/// Counters, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Subscribers connected now.
    pub subscribers: usize,
    /// Updates published.
    pub published: u64,
    /// Frames handed to subscribers' writers (replayed and live).
    pub delivered: u64,
    /// Subscribers disconnected for lagging.
    pub lagged: u64,
    /// Subscriptions that asked to resume (a cursor or `earliest`).
    pub replays: u64,
    /// Of those, how many had a cursor not in the history.
    pub replay_misses: u64,
    /// Events in the history.
    pub history: usize,
    /// Bytes in the history.
    pub history_bytes: usize,
    /// The fan-out backlog ([`Broker::queued`]).
    pub queued: u64,
}

/// How many selectors of a new subscription are indexed per hold of the
/// broker's lock.
pub const INDEX_CHUNK: usize = 32;

/// How many history entries a replay reads per hold of the broker's lock.
pub const REPLAY_PIECE: usize = 64;

/// A replay hands a subscriber at most about this many bytes of frames per
/// receive (at least one frame): what it holds of its replay at once.
pub const REPLAY_BATCH_BYTES: usize = 32 << 10;

/// How many history entries one [`Subscriber::poll_recv`] call may examine
/// for its replay before it yields to the executor (a subscription that
/// matches little of a long history does not hog a thread).
const REPLAY_SCAN_BUDGET: usize = 1024;

/// What the broker keeps with each update in the history: what the replay
/// filter needs (cloned out of the lock in constant time).
#[derive(Clone, Debug)]
struct Meta {
    topics: Arc<[Str]>,
    private: bool,
}

impl Meta {
    /// The bytes its topics hold, for the history's byte bound: each topic's
    /// text, its place in the update and its place in the topic index.
    fn size(&self) -> usize {
        const PER_TOPIC: usize = 2 * core::mem::size_of::<Str>() + core::mem::size_of::<u64>();
        self.topics
            .iter()
            .fold(PER_TOPIC * self.topics.len(), |sum, topic| {
                sum.saturating_add(topic.len())
            })
    }
}

/// Adds an update's topics to the index.
fn index_topics(by_topic: &mut TopicIndex, topics: &[Str], seq: u64) {
    for topic in topics {
        match by_topic.get_mut(topic.as_str()) {
            // (A topic given twice is indexed once.)
            Some(seqs) if seqs.back() == Some(&seq) => {}
            Some(seqs) => seqs.push_back(seq),
            None => {
                by_topic.insert(topic.clone(), VecDeque::from([seq]));
            }
        }
    }
}

/// Takes an evicted update out of the index (it is the oldest of each of
/// its topics).
fn unindex_topics(by_topic: &mut TopicIndex, entry: &Entry<Meta, Instant>) {
    for topic in entry.meta().topics.iter() {
        if let Some(seqs) = by_topic.get_mut(topic.as_str()) {
            if seqs.front() == Some(&entry.seq()) {
                seqs.pop_front();
            }
            if seqs.is_empty() {
                by_topic.remove(topic.as_str());
            }
        }
    }
}

/// Evicts the expired history, keeping the topic index in step.
fn handle_timeout(core: &mut Core, now: Instant) {
    let Core { log, by_topic, .. } = core;
    log.handle_timeout_with(now, |entry| unindex_topics(by_topic, &entry));
}

/// The retained updates by topic: for each topic, the sequence numbers of
/// the retained updates that carry it, oldest first. A replay looks its
/// selectors up here, so its work is bounded by its selectors and what they
/// match, not by the history times the topics.
type TopicIndex = HashMap<Str, VecDeque<u64>>;

struct Core {
    log: ReplayLog<Meta, Instant>,
    by_topic: TopicIndex,
    /// One entry per channel (the subscribers with one subscription).
    router: Router<Arc<Channel>>,
    /// The active channel of each subscription, by the subscription's
    /// hash (a channel whose subscription collides with another's is
    /// simply not shared).
    channels: HashMap<u64, SubscriberKey>,
    /// Subscribers connected (not ended for lagging).
    subscribers: usize,
    shutdown: Option<Shutdown>,
    /// Reused buffer of wakers to call after the lock is released.
    wake: Vec<Waker>,
}

#[derive(Clone, Copy, Debug)]
struct Shutdown {
    retry: Option<(Duration, Duration)>,
    seed: u64,
}

impl Shutdown {
    fn ended(&self, key: u64) -> Ended {
        Ended::Shutdown {
            retry: self.retry.map(|(base, spread)| {
                let nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
                let r = if nanos == 0 {
                    0
                } else {
                    splitmix(self.seed ^ key) % nanos
                };
                base + Duration::from_nanos(r)
            }),
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Shared {
    core: Mutex<Core>,
    config: BrokerConfig,
    /// Hashes subscriptions (outside the lock) to find shared channels.
    hasher: RandomState,
    published: AtomicU64,
    delivered: AtomicU64,
    lagged: AtomicU64,
    replays: AtomicU64,
    replay_misses: AtomicU64,
    next_key: AtomicU64,
    /// Frames queued for all subscribers together, not yet received.
    /// (Signed: a subscriber may receive a frame before the publisher has
    /// counted it.)
    queued: AtomicI64,
}

/// The publish/subscribe hub: history, topic routing and per-subscriber
/// queues. Cloning it is cheap (the clones share one broker).
///
/// The caller passes the time in (`now`): the broker reads no clock.
///
/// ```
/// use std::task::{Context, Poll, Waker};
/// use std::time::Instant;
/// use sse_proto::server::{Broker, BrokerConfig, Cursor, Subscription, Update};
///
/// let broker = Broker::new(BrokerConfig::new());
/// let now = Instant::now();
/// let first = broker.publish(Update::new("news", "one"), now)?;
/// let cursor = Cursor::After(first.id.clone());
/// let mut sub = broker.subscribe(Subscription::new(["news"]), cursor, now);
/// broker.publish(Update::new("weather", "not for this subscriber"), now)?;
/// broker.publish(Update::new("news", "two"), now)?;
///
/// let mut frames = Vec::new();
/// let mut cx = Context::from_waker(Waker::noop());
/// assert_eq!(sub.poll_recv(&mut cx, &mut frames, now), Poll::Ready(Ok(())));
/// // The third id of this run: `{run prefix}3`.
/// let third = format!("id: {}3\ndata: two\n\n", first.id.strip_suffix('1').unwrap_or_default());
/// assert_eq!(frames, [third.as_bytes()]);
/// # Ok::<(), sse_proto::server::PublishError>(())
/// ```
#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Broker {
    /// An empty broker.
    pub fn new(config: BrokerConfig) -> Broker {
        Broker {
            shared: Arc::new(Shared {
                core: Mutex::new(Core {
                    log: ReplayLog::new(config.replay).with_seq_ids(config.id_prefix.clone()),
                    by_topic: HashMap::new(),
                    router: {
                        let mut router = Router::new();
                        router.set_max_patterns(config.max_patterns);
                        router
                    },
                    channels: HashMap::new(),
                    subscribers: 0,
                    shutdown: None,
                    wake: Vec::new(),
                }),
                config,
                hasher: RandomState::new(),
                published: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                lagged: AtomicU64::new(0),
                replays: AtomicU64::new(0),
                replay_misses: AtomicU64::new(0),
                next_key: AtomicU64::new(1),
                queued: AtomicI64::new(0),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        lock_spinning(&self.shared.core)
    }

    /// Publishes an update: assigns its id (unless it has one), encodes it
    /// once, appends it to the history and queues it for every matching
    /// subscriber. Subscribers whose queue is full are disconnected
    /// ([`Ended::Lagged`]); the publish never waits for a subscriber.
    ///
    /// `now` is the update's time in the history: entries that are
    /// [`ReplayConfig::max_age`] old at `now` are evicted first. The
    /// caller reads its clock (a monotonic one) and passes the time in.
    ///
    /// # Errors
    /// [`PublishError`] for an update without topics or with too many, or
    /// after [`Broker::shutdown`].
    pub fn publish(&self, update: Update, now: Instant) -> Result<Published, PublishError> {
        if update.topics.is_empty() {
            return Err(PublishError::NoTopic);
        }
        if update.topics.len() > self.shared.config.max_topics {
            return Err(PublishError::TooManyTopics);
        }
        let meta = Meta {
            topics: Arc::from(update.topics),
            private: update.private,
        };
        let meta_bytes = meta.size();
        let core = self.lock();
        if core.shutdown.is_some() {
            return Err(PublishError::ShutDown);
        }
        let seq = core.log.last_seq() + 1;
        let id = match update.id {
            Some(id) => id,
            None => assigned_id(&self.shared.config.id_prefix, seq),
        };
        let mut event = OutgoingEvent::new(&update.data).id(&id);
        if let Some(name) = &update.event {
            event = event.event(name);
        }
        if let Some(retry) = update.retry {
            event = event.retry(retry);
        }
        let frame = event.to_bytes();
        let mut guard = core;
        let core = &mut *guard;
        let mut wake = core::mem::take(&mut core.wake);
        let (frames, bytes) = (
            self.shared.config.queue_frames,
            self.shared.config.queue_bytes,
        );
        let (mut subscribers, mut lagged) = (0, 0);
        // The change to the backlog count (see `Broker::queued`).
        let mut counted = 0i64;
        core.router.route(
            &meta.topics,
            meta.private,
            |_, channel| {
                let pushed = channel.push(&frame, frames, bytes, &mut wake);
                subscribers += pushed.readers;
                lagged += pushed.lagged;
                counted += pushed.counted;
                true
            },
            |_, _, _| {},
        );
        core.subscribers -= lagged;
        self.shared.queued.fetch_add(counted, Ordering::Relaxed);
        let id = id.into_str();
        // Indexed first: if the history evicts the update at once (larger
        // than its byte bound), it is the oldest of its topics by then.
        index_topics(&mut core.by_topic, &meta.topics, seq);
        let Core { log, by_topic, .. } = core;
        let pushed = log.push_with(id.clone(), frame, meta, meta_bytes, now, |entry| {
            unindex_topics(by_topic, &entry);
        });
        debug_assert_eq!(pushed, seq);
        self.shared.published.fetch_add(1, Ordering::Relaxed);
        self.shared
            .lagged
            .fetch_add(lagged as u64, Ordering::Relaxed);
        drop(guard);
        // Wake outside the lock: a waker may run code (or a syscall).
        wake_all(&self.shared, wake);
        Ok(Published {
            id,
            seq,
            subscribers,
        })
    }

    /// Subscribes from `cursor`: the matching history after it is sent
    /// first (read from the history as the subscriber receives), then live
    /// events follow with no gap and no duplicate. After
    /// [`Broker::shutdown`] the subscriber ends at once.
    ///
    /// The broker's lock is taken a few times, each for bounded work: once
    /// to join the channel of an identical subscription, or, for a new
    /// subscription, once per [`INDEX_CHUNK`] selectors.
    ///
    /// The history that is [`ReplayConfig::max_age`] old at `now` is
    /// evicted before the replay's range is noted.
    ///
    /// A subscription refused for [`BrokerConfig::max_patterns`] ends at
    /// once, as a subscriber that fell behind does: use
    /// [`Broker::try_subscribe`] to tell the client why.
    pub fn subscribe(
        &self,
        subscription: Subscription,
        cursor: Cursor,
        now: Instant,
    ) -> Subscriber {
        let key = self.shared.next_key.load(Ordering::Relaxed);
        self.try_subscribe(subscription, cursor, now)
            .unwrap_or_else(|_| self.refused_subscriber(key))
    }

    /// [`Broker::subscribe`], or why the subscription is refused.
    ///
    /// # Errors
    /// [`SubscribeError::TooManyPatterns`]: it would add a distinct
    /// pattern past [`BrokerConfig::max_patterns`].
    pub fn try_subscribe(
        &self,
        subscription: Subscription,
        cursor: Cursor,
        now: Instant,
    ) -> Result<Subscriber, SubscribeError> {
        let key = self.shared.next_key.fetch_add(1, Ordering::Relaxed);
        let hash = self.shared.hasher.hash_one(&subscription);
        // The replay's filter (cloned outside the lock).
        let filter = (!matches!(cursor, Cursor::Live)).then(|| Arc::new(subscription.clone()));
        let mut core = self.lock();
        if let Some(shutdown) = core.shutdown {
            drop(core);
            return Ok(self.ended_subscriber(key, shutdown));
        }
        let shared = core
            .channels
            .get(&hash)
            .copied()
            .filter(|&k| core.router.subscription(k) == Some(&subscription));
        let router_key = match shared {
            Some(router_key) => router_key,
            None => {
                // A channel of its own, routed to once every selector is
                // indexed, a chunk per hold of the lock.
                let router_key = core
                    .router
                    .insert_inactive(subscription, Arc::new(Channel::new()));
                while !core.router.index_some(router_key, INDEX_CHUNK) {
                    if core.router.is_refused(router_key) {
                        drop(core);
                        self.retire(router_key);
                        return Err(SubscribeError::TooManyPatterns);
                    }
                    // Hands the lock to whoever waits for it (a publish,
                    // say) before the next chunk.
                    MutexGuard::bump(&mut core);
                    if let Some(shutdown) = core.shutdown {
                        drop(core);
                        self.retire(router_key);
                        return Ok(self.ended_subscriber(key, shutdown));
                    }
                }
                core.channels.entry(hash).or_insert(router_key);
                router_key
            }
        };
        let Some(channel) = core.router.get(router_key).cloned() else {
            unreachable!("a channel's key stays in the router while it has members")
        };
        // Joined, and the history's end noted, under the broker's lock: the
        // next publish reaches the channel, and the replay stops before it.
        let (member, counted) = channel.join(key, None);
        core.subscribers += 1;
        handle_timeout(&mut core, now);
        let (replay, pending) = start_replay(&core.log, cursor, filter);
        drop(core);
        self.shared.queued.fetch_add(counted, Ordering::Relaxed);
        if !matches!(replay, Replay::Live) {
            self.shared.replays.fetch_add(1, Ordering::Relaxed);
        }
        if matches!(replay, Replay::Unknown { .. }) {
            self.shared.replay_misses.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Subscriber {
            broker: self.clone(),
            router_key: Some(router_key),
            hash,
            channel,
            member,
            replay,
            pending,
        })
    }

    /// A subscriber of a shut-down broker: a channel of its own, outside
    /// the router, already ended.
    fn ended_subscriber(&self, key: u64, shutdown: Shutdown) -> Subscriber {
        self.subscriber_ended_as(key, shutdown.ended(key))
    }

    /// A subscriber refused by [`Broker::subscribe`]: it ends at once, as
    /// one that fell behind.
    fn refused_subscriber(&self, key: u64) -> Subscriber {
        self.subscriber_ended_as(key, Ended::Lagged)
    }

    /// A subscriber that is not routed to and ends at once with `end`.
    fn subscriber_ended_as(&self, key: u64, end: Ended) -> Subscriber {
        let channel = Arc::new(Channel::new());
        let (member, _) = channel.join(key, Some(end));
        Subscriber {
            broker: self.clone(),
            router_key: None,
            hash: 0,
            channel,
            member,
            replay: Replay::Live,
            pending: None,
        }
    }

    /// Takes a channel out of the router, its selectors a chunk per hold of
    /// the lock (it is no longer routed to from the first).
    fn retire(&self, router_key: SubscriberKey) {
        let mut core = self.lock();
        while !core.router.unindex_some(router_key, INDEX_CHUNK) {
            MutexGuard::bump(&mut core);
        }
        let removed = core.router.remove(router_key);
        drop(core);
        // Dropped outside the lock.
        drop(removed);
    }

    /// Ends every subscriber's stream and refuses later publishes and
    /// subscriptions. With `retry = Some((base, spread))`, each subscriber
    /// is told to reconnect after `base` plus a random part of `spread`
    /// (different for each subscriber, from `seed`), so that clients do
    /// not all come back at once. Frames already queued are still handed
    /// out before [`Ended::Shutdown`].
    pub fn shutdown(&self, retry: Option<(Duration, Duration)>, seed: u64) {
        let mut core = self.lock();
        if core.shutdown.is_some() {
            return;
        }
        let shutdown = Shutdown { retry, seed };
        core.shutdown = Some(shutdown);
        let mut wake = core::mem::take(&mut core.wake);
        for (_, channel) in core.router.iter_mut() {
            channel.end_all(|key| shutdown.ended(key), &mut wake);
        }
        drop(core);
        wake_all(&self.shared, wake);
    }

    /// Declares the history broken: events were published that this broker
    /// never received (say it follows a shared stream that was trimmed
    /// while it was cut off from it). Forgets every retained event, so that
    /// all ids seen so far are unknown, and ends every subscriber's stream
    /// as [`Ended::Lagged`]. Each client then comes back with its last
    /// event ID and gets the [`LOST_EVENT_TYPE`] event first, then what is
    /// published from now on. Returns how many subscribers were ended.
    pub fn discontinue(&self) -> usize {
        let mut core = self.lock();
        core.log.forget();
        core.by_topic = HashMap::new();
        let mut wake = core::mem::take(&mut core.wake);
        let mut ended = 0;
        let mut counted = 0;
        for (_, channel) in core.router.iter_mut() {
            let (cut, change) = channel.cut_all(&mut wake);
            ended += cut;
            counted += change;
        }
        core.subscribers -= ended;
        drop(core);
        self.shared.queued.fetch_add(counted, Ordering::Relaxed);
        wake_all(&self.shared, wake);
        ended
    }

    /// Whether [`Broker::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.lock().shutdown.is_some()
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        let core = self.lock();
        Stats {
            subscribers: core.subscribers,
            published: self.shared.published.load(Ordering::Relaxed),
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            lagged: self.shared.lagged.load(Ordering::Relaxed),
            replays: self.shared.replays.load(Ordering::Relaxed),
            replay_misses: self.shared.replay_misses.load(Ordering::Relaxed),
            history: core.log.len(),
            history_bytes: core.log.bytes(),
            queued: u64::try_from(self.shared.queued.load(Ordering::Relaxed)).unwrap_or(0),
        }
    }

    /// The fan-out backlog: frames published to subscribers and not yet
    /// received by them, counting at most 256 per subscriber of a
    /// subscription on average (so that a few stalled subscribers weigh
    /// little); replays are read from the history and do not count. A server can hold
    /// publishers back while it is high, that is while most subscribers
    /// are behind, so that events wait outside rather than in memory;
    /// [`Stats`] has it too.
    pub fn queued(&self) -> u64 {
        u64::try_from(self.shared.queued.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// How many subscribers are connected.
    pub fn subscribers(&self) -> usize {
        self.lock().subscribers
    }

    /// Whether the history holds an event with this id: a subscription
    /// with it as its cursor resumes after it (rather than receiving a
    /// [`LOST_EVENT_TYPE`] event and every retained event).
    pub fn has_event(&self, id: &str) -> bool {
        matches!(self.lock().log.seek(id), Seek::Found { .. })
    }

    /// The id of the newest event published (`None` before the first).
    pub fn last_id(&self) -> Option<Str> {
        self.lock().log.last_id().map(Str::from)
    }

    /// Takes a member out of its channel, and the channel out of the
    /// router when it was the last (under the broker's lock, so that no
    /// subscribe joins a channel on its way out).
    fn unsubscribe(
        &self,
        router_key: Option<SubscriberKey>,
        hash: u64,
        channel: &Channel,
        member: MemberId,
    ) {
        let mut retire = None;
        let counted = {
            let mut core = self.lock();
            let left = channel.leave(member);
            if router_key.is_some() && left.was_reader {
                core.subscribers -= 1;
            }
            if let (Some(key), 0) = (router_key, left.members) {
                if core.channels.get(&hash) == Some(&key) {
                    core.channels.remove(&hash);
                }
                core.router.deactivate(key);
                retire = Some(key);
            }
            left.counted
        };
        self.shared.queued.fetch_add(counted, Ordering::Relaxed);
        if let Some(key) = retire {
            self.retire(key);
        }
    }

    /// Ends a subscriber whose replay fell behind the history (what it had
    /// not read yet was evicted).
    fn cut(&self, channel: &Channel, member: MemberId) {
        let mut core = self.lock();
        let (was_reader, counted) = channel.cut(member);
        if was_reader {
            core.subscribers -= 1;
        }
        drop(core);
        self.shared.queued.fetch_add(counted, Ordering::Relaxed);
        if was_reader {
            self.shared.lagged.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Wakes the collected wakers (the lock is released by then) and, if the
/// lock is free, gives the emptied buffer back for the next publish.
fn wake_all(shared: &Shared, mut wake: Vec<Waker>) {
    if wake.is_empty() && wake.capacity() == 0 {
        return;
    }
    for waker in wake.drain(..) {
        waker.wake();
    }
    if let Some(mut core) = shared.core.try_lock() {
        if core.wake.capacity() < wake.capacity() {
            core.wake = wake;
        }
    }
}

/// A prefix of ids for this broker alone: eight hex digits from the
/// operating system's randomness (through a fresh `RandomState`; no clock
/// is read), then `-`.
fn run_prefix() -> Str {
    use core::fmt::Write as _;
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(0x1d5_u64);
    let mut prefix = alloc::string::String::with_capacity(9);
    let _ = write!(prefix, "{:08x}-", random as u32);
    Str::from(prefix)
}

fn assigned_id(prefix: &str, seq: u64) -> EventId {
    // `{prefix}{seq}` without a temporary `String` (a short id is stored
    // inline in its `Str`).
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut n = seq;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = digits.get(start..).unwrap_or(&[]);
    let mut buf = [0u8; 64];
    let len = prefix.len() + digits.len();
    let id = match buf.get_mut(..len) {
        Some(out) => {
            let (head, tail) = out.split_at_mut(prefix.len());
            head.copy_from_slice(prefix.as_bytes());
            tail.copy_from_slice(digits);
            // ASCII digits after a valid string.
            Str::from(core::str::from_utf8(out).unwrap_or_default())
        }
        None => {
            let mut id = String::with_capacity(len);
            id.push_str(prefix);
            id.push_str(core::str::from_utf8(digits).unwrap_or_default());
            Str::from(id)
        }
    };
    // The prefix was validated and digits are valid id characters.
    EventId::new(id).unwrap_or_default()
}

/// The event sent first to a subscriber whose cursor is unknown.
fn lost_event(requested: &str) -> Bytes {
    let name = EventName::new(LOST_EVENT_TYPE).unwrap_or_default();
    OutgoingEvent::new(requested).event(&name).to_bytes()
}

/// Where a new subscriber's replay starts, for `cursor`, and what it
/// reads: the history up to its newest entry now.
fn start_replay(
    log: &ReplayLog<Meta, Instant>,
    cursor: Cursor,
    filter: Option<Arc<Subscription>>,
) -> (Replay, Option<Box<PendingReplay>>) {
    let end = log.last_seq();
    let oldest = log.first_seq().unwrap_or(end + 1);
    let (replay, start, lost) = match cursor {
        Cursor::Live => return (Replay::Live, None),
        Cursor::Earliest => (
            Replay::Earliest {
                retained: log.len(),
            },
            oldest,
            None,
        ),
        Cursor::After(id) => match log.seek(&id) {
            Seek::Found { after, pending } => {
                (Replay::Resumed { retained: pending }, after + 1, None)
            }
            Seek::Unknown => (
                Replay::Unknown {
                    retained: log.len(),
                },
                oldest,
                Some(lost_event(&id)),
            ),
        },
    };
    let pending = filter
        .filter(|_| start <= end || lost.is_some())
        .map(|subscription| {
            // A `*` subscription wants (almost) every entry, and a
            // pattern's topics are not in the index: read them in order.
            // Others look their selectors up in the topic index.
            let selectors = subscription.selectors();
            let scan = matches!(selectors.first(), Some(Selector::Any))
                || matches!(selectors.last(), Some(Selector::Pattern(_)));
            let plan = if scan {
                Plan::Scan
            } else {
                Plan::Gather {
                    selector: 0,
                    from: start,
                }
            };
            Box::new(PendingReplay {
                subscription,
                lost,
                start,
                next: start,
                end,
                plan,
                marks: Vec::new(),
                piece: Vec::new(),
            })
        });
    (replay, pending)
}

/// How many units of work (an index lookup, a sequence number marked, an
/// entry copied) one hold of the broker's lock does for a replay.
const REPLAY_LOCKED_WORK: usize = 256;

/// How a replay finds its entries.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Every entry of the range, in order (a subscription with `*` or a
    /// pattern), each checked against the selectors outside the lock.
    Scan,
    /// Marking the range's entries that carry one of the selectors, from
    /// the topic index: `selector` is the next to look up, `from` the first
    /// sequence number still to take from its list.
    Gather {
        /// The index of the selector (in the sorted list).
        selector: usize,
        /// Where to go on in its list.
        from: u64,
    },
    /// Reading the marked entries.
    Read,
}

/// The history a subscriber has still to read before its live frames.
struct PendingReplay {
    /// What it accepts.
    subscription: Arc<Subscription>,
    /// The [`LOST_EVENT_TYPE`] event, until sent.
    lost: Option<Bytes>,
    /// The sequence number of the replay's first entry.
    start: u64,
    /// The sequence number of the next entry to read.
    next: u64,
    /// The newest entry of the replay (later ones arrive live).
    end: u64,
    plan: Plan,
    /// A bit for each sequence number from `start` to `end`: the entries
    /// that carry one of the selectors (one bit per retained event at
    /// most).
    marks: Vec<u64>,
    /// Entries taken out of the lock, to filter (reused): sequence number,
    /// frame, metadata.
    piece: Vec<(u64, Bytes, Meta)>,
}

/// What one step of a replay did.
enum ReplayStep {
    /// Frames were moved out (the replay may go on).
    Moved(usize),
    /// The work budget ran out before a frame was found: yield, then go on.
    Yield,
    /// The replay is over.
    Done,
    /// What it had not read yet was evicted from the history.
    Evicted,
}

impl PendingReplay {
    /// Moves the next matching frames of the replay to `out`: up to about
    /// [`REPLAY_BATCH_BYTES`], holding the lock for at most
    /// [`REPLAY_LOCKED_WORK`] units of work at a time, and doing at most
    /// `budget` units in all. The history that is
    /// [`ReplayConfig::max_age`] old at `now` is evicted before each piece.
    fn step(
        &mut self,
        shared: &Shared,
        out: &mut Vec<Bytes>,
        budget: usize,
        now: Instant,
    ) -> ReplayStep {
        let before = out.len();
        if let Some(lost) = self.lost.take() {
            out.push(lost);
        }
        let mut bytes = 0;
        let mut work = 0;
        while self.next <= self.end && bytes < REPLAY_BATCH_BYTES && work < budget {
            let mut core = lock_spinning(&shared.core);
            handle_timeout(&mut core, now);
            // Anything of the range evicted before it was read: the replay
            // cannot be complete.
            if core.log.first_seq().is_none_or(|first| first > self.next) {
                return ReplayStep::Evicted;
            }
            match self.plan {
                Plan::Gather { selector, from } => {
                    work += self.gather(&core.by_topic, selector, from);
                    MutexGuard::unlock_fair(core);
                    continue;
                }
                Plan::Scan => {
                    let entries = core.log.since(self.next - 1).take(REPLAY_PIECE);
                    self.piece.extend(
                        entries
                            .take_while(|e| e.seq() <= self.end)
                            .map(|e| (e.seq(), e.frame().clone(), e.meta().clone())),
                    );
                }
                Plan::Read => {
                    let mut seq = self.next;
                    while self.piece.len() < REPLAY_PIECE && seq <= self.end {
                        let (found, scanned) = self.next_marked(seq);
                        work += scanned;
                        let Some(marked) = found else {
                            seq = self.end + 1;
                            break;
                        };
                        let Some(entry) = core.log.get(marked) else {
                            return ReplayStep::Evicted;
                        };
                        self.piece
                            .push((marked, entry.frame().clone(), entry.meta().clone()));
                        seq = marked + 1;
                    }
                    if self.piece.is_empty() {
                        // Nothing more is marked.
                        self.next = seq;
                    }
                }
            }
            // Straight to a waiting thread, if any: the next piece waits
            // its turn.
            MutexGuard::unlock_fair(core);
            let scan = matches!(self.plan, Plan::Scan);
            for (seq, frame, meta) in self.piece.drain(..) {
                if bytes >= REPLAY_BATCH_BYTES {
                    // The rest of the piece is read again next time.
                    break;
                }
                work += 1;
                self.next = seq + 1;
                let accepted = if scan {
                    self.subscription.accepts(&meta.topics, meta.private)
                } else {
                    // Marked: one of its topics is selected.
                    !meta.private || self.subscription.allows_private(&meta.topics)
                };
                if accepted {
                    bytes += frame.len();
                    out.push(frame);
                }
            }
        }
        match out.len() - before {
            0 if self.next > self.end => ReplayStep::Done,
            0 => ReplayStep::Yield,
            n => ReplayStep::Moved(n),
        }
    }

    /// Marks the range's entries of the selectors from `selector` on (from
    /// sequence number `from` in its list), for at most
    /// [`REPLAY_LOCKED_WORK`] units of work; returns the work done.
    fn gather(&mut self, by_topic: &TopicIndex, mut selector: usize, mut from: u64) -> usize {
        if self.marks.is_empty() {
            let span = usize::try_from(self.end + 1 - self.start).unwrap_or(0);
            self.marks = alloc::vec![0; span.div_ceil(64)];
        }
        let selectors = self.subscription.selectors();
        let mut work = 0;
        while let Some(topic) = selectors.get(selector) {
            if work >= REPLAY_LOCKED_WORK {
                self.plan = Plan::Gather { selector, from };
                return work;
            }
            work += 1;
            if let Some(seqs) = by_topic.get(topic.as_str()) {
                let first = seqs.partition_point(|&seq| seq < from);
                for &seq in seqs.range(first..) {
                    if seq > self.end {
                        break;
                    }
                    if work >= REPLAY_LOCKED_WORK {
                        self.plan = Plan::Gather { selector, from };
                        return work;
                    }
                    work += 1;
                    let bit = seq - self.start;
                    if let Some(word) = usize::try_from(bit / 64)
                        .ok()
                        .and_then(|i| self.marks.get_mut(i))
                    {
                        *word |= 1 << (bit % 64);
                    }
                    from = seq + 1;
                }
            }
            selector += 1;
            from = self.start;
        }
        self.plan = Plan::Read;
        work
    }

    /// The first marked sequence number at or after `seq`, if any, and the
    /// words of the marks it looked at.
    fn next_marked(&self, seq: u64) -> (Option<u64>, usize) {
        let Some(bit) = seq.checked_sub(self.start) else {
            return (None, 0);
        };
        let Ok(mut word) = usize::try_from(bit / 64) else {
            return (None, 0);
        };
        let mut bits = match self.marks.get(word) {
            Some(w) => w & (u64::MAX << (bit % 64)),
            None => return (None, 0),
        };
        let mut scanned = 1;
        loop {
            if bits != 0 {
                let found = self.start + (word as u64) * 64 + u64::from(bits.trailing_zeros());
                return ((found <= self.end).then_some(found), scanned);
            }
            word += 1;
            scanned += 1;
            match self.marks.get(word) {
                Some(&w) => bits = w,
                None => return (None, scanned),
            }
        }
    }
}

/// One subscriber: the frames queued for it, in order. Dropping it
/// unsubscribes.
pub struct Subscriber {
    broker: Broker,
    /// Its channel's key in the router (`None` for one made after the
    /// shutdown).
    router_key: Option<SubscriberKey>,
    /// Its subscription's hash (where its channel is listed for sharing).
    hash: u64,
    channel: Arc<Channel>,
    member: MemberId,
    replay: Replay,
    /// The history still to send before live frames.
    pending: Option<Box<PendingReplay>>,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

impl Subscriber {
    /// What was queued from history when it subscribed.
    pub fn replay(&self) -> Replay {
        self.replay
    }

    /// Moves every queued frame to `out` (one batch, for one write).
    /// `Ready(Ok(()))` when at least one frame was moved, `Pending` (the
    /// task is woken when a frame arrives or the stream ends) when none is
    /// queued, `Ready(Err(_))` once the stream has ended and nothing is
    /// left (a lagging subscriber ends at once, dropping what was queued).
    ///
    /// A replay comes first, read from the history a piece at a time: one
    /// call moves at most about [`REPLAY_BATCH_BYTES`] of it (at least one
    /// frame), so a writer that receives only while its socket drains holds
    /// a bounded part of any replay. A call that examined many history
    /// entries without finding one for this subscriber wakes the task and
    /// returns `Pending`, to let others run.
    ///
    /// `now` ages the history while a replay is read: what is
    /// [`ReplayConfig::max_age`] old at `now` is evicted (never replayed)
    /// before each piece.
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        now: Instant,
    ) -> Poll<Result<(), Ended>> {
        match self.recv(out, Some(cx.waker()), now) {
            Ok(0) => Poll::Pending,
            Ok(_) => Poll::Ready(Ok(())),
            Err(ended) => Poll::Ready(Err(ended)),
        }
    }

    /// Whether the broker ended this subscriber for lagging, without taking
    /// any frame; otherwise the task is woken when that happens (or when a
    /// frame arrives). For a writer that stops receiving while its socket
    /// is backed up but must still notice that it was cut off.
    pub fn poll_lagged(&mut self, cx: &mut Context<'_>) -> bool {
        self.channel.poll_lagged(self.member, cx.waker())
    }

    /// Like [`Subscriber::poll_recv`] without waiting: the number of frames
    /// moved to `out` (0 when none is queued).
    ///
    /// # Errors
    /// [`Ended`] once the stream has ended and nothing is left.
    pub fn try_recv(&mut self, out: &mut Vec<Bytes>, now: Instant) -> Result<usize, Ended> {
        self.recv(out, None, now)
    }

    fn recv(
        &mut self,
        out: &mut Vec<Bytes>,
        waker: Option<&Waker>,
        now: Instant,
    ) -> Result<usize, Ended> {
        if let Some(pending) = &mut self.pending {
            if self.channel.is_lagged(self.member) {
                // Cut off by live frames while it replayed.
                self.pending = None;
                return Err(Ended::Lagged);
            }
            let budget = if waker.is_some() {
                REPLAY_SCAN_BUDGET
            } else {
                usize::MAX
            };
            let shared = &self.broker.shared;
            match pending.step(shared, out, budget, now) {
                ReplayStep::Moved(n) => {
                    shared.delivered.fetch_add(n as u64, Ordering::Relaxed);
                    return Ok(n);
                }
                ReplayStep::Yield => {
                    if let Some(waker) = waker {
                        waker.wake_by_ref();
                    }
                    return Ok(0);
                }
                ReplayStep::Done => self.pending = None,
                ReplayStep::Evicted => {
                    self.pending = None;
                    self.broker.cut(&self.channel, self.member);
                }
            }
        }
        let received = self.channel.recv(self.member, out, waker);
        let shared = &self.broker.shared;
        if received.counted != 0 {
            shared.queued.fetch_add(received.counted, Ordering::Relaxed);
        }
        if let Ok(n @ 1..) = received.result {
            shared.delivered.fetch_add(n as u64, Ordering::Relaxed);
        }
        received.result
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.broker
            .unsubscribe(self.router_key, self.hash, &self.channel, self.member);
    }
}

/// Locks the broker's state (or any mutex). Every hold is short, so a lock
/// held by another thread is first waited for by spinning (100 spin-loop
/// hints, on the order of a microsecond: a pause's length depends on the
/// CPU), reading it only. `parking_lot`'s own wait spins far less, then
/// yields the CPU several times before it sleeps, and on a busy machine
/// each yield is a context switch (the publish path spent most of its lock
/// waits that way). A thread still waiting after the spin falls back to
/// that wait and sleeps in the end, so the fair hand-overs (`bump`,
/// `unlock_fair`, which reach sleeping threads only) still reach it; a
/// spinning thread may take the lock ahead of a sleeping one, as any new
/// caller of `lock` may, within `parking_lot`'s own bound on barging.
#[inline]
fn lock_spinning<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    if let Some(guard) = state.try_lock() {
        return guard;
    }
    for _ in 0..LOCK_SPINS {
        core::hint::spin_loop();
        if !state.is_locked() {
            if let Some(guard) = state.try_lock() {
                return guard;
            }
        }
    }
    state.lock()
}

/// How many times [`lock_spinning`] spins on a held lock before it waits.
const LOCK_SPINS: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed time: none of these tests ages the history.
    #[allow(clippy::disallowed_methods)]
    fn now() -> Instant {
        static NOW: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *NOW.get_or_init(Instant::now)
    }

    #[test]
    fn a_lock_held_longer_than_the_spin_is_taken_once_released() {
        // The waiter spins, finds the lock still held, falls back to the
        // sleeping wait, and takes the lock when the holder lets it go,
        // seeing what the holder wrote.
        let value = Mutex::new(0u32);
        let held = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            let mut guard = value.lock();
            let waiter = scope.spawn(|| {
                held.wait();
                *lock_spinning(&value)
            });
            held.wait();
            std::thread::sleep(std::time::Duration::from_millis(20));
            *guard = 7;
            MutexGuard::unlock_fair(guard);
            assert_eq!(waiter.join().unwrap(), 7);
        });
    }

    #[test]
    fn the_topic_index_holds_exactly_the_retained_updates() {
        let broker = Broker::new(BrokerConfig::new().replay(ReplayConfig::new().max_events(10)));
        for n in 0..100u32 {
            // Unique topics, a shared one, and a topic given twice.
            let update = Update::new(alloc::format!("u{n}"), "x")
                .topic("shared")
                .topic("shared");
            broker.publish(update, now()).unwrap();
        }
        let core = broker.lock();
        assert_eq!(
            core.by_topic.len(),
            11,
            "10 unique topics and the shared one"
        );
        let shared: Vec<u64> = core.by_topic["shared"].iter().copied().collect();
        assert_eq!(shared, (91..=100).collect::<Vec<_>>());
        for n in 90..100u32 {
            let key = alloc::format!("u{n}");
            assert_eq!(core.by_topic[key.as_str()], [u64::from(n) + 1]);
        }
        drop(core);
        broker.discontinue();
        assert!(broker.lock().by_topic.is_empty());
    }

    #[test]
    fn an_update_evicted_at_once_leaves_no_index_entry() {
        let broker = Broker::new(BrokerConfig::new().replay(ReplayConfig::new().max_bytes(300)));
        broker
            .publish(Update::new("big", "x".repeat(1000)), now())
            .unwrap();
        assert!(broker.lock().by_topic.is_empty());
        broker.publish(Update::new("small", "x"), now()).unwrap();
        assert_eq!(broker.lock().by_topic.len(), 1);
    }
}
