//! [`Broker`]: publish/subscribe with topics and history replay, shared by
//! every runtime adapter (feature `broker`).
//!
//! The broker is plain synchronous code: a `std::sync::Mutex` around a
//! [`ReplayLog`] and a [`Router`], and for each distinct subscription a
//! fan-out channel that its subscribers share: a publish appends its frame
//! to a channel once, whatever the number of subscribers, and each reads
//! from its own position and is woken through a `core::task::Waker`. It
//! works under any executor (tokio, smol, async-std, or a thread that
//! polls), does no I/O and starts no task; the adapters write what
//! [`Subscriber::poll_recv`] hands them.
//!
//! # Guarantees
//!
//! * **Encoded once.** [`Broker::publish`] encodes the event into one
//!   `Bytes`; history and every subscriber share it (a reference count, not
//!   a copy).
//! * **No gap, no duplicate at the seam.** [`Broker::subscribe`] reads the
//!   history after the cursor and registers the subscriber for live events
//!   under the same lock that [`Broker::publish`] takes to append and route.
//!   Every event is therefore either in the replay or delivered live, never
//!   both and never neither, however publishes race with subscribes.
//! * **Slow subscribers do not hold anyone up.** What each subscriber has
//!   not read is bounded (frames and bytes, [`BrokerConfig::queue`]), as if
//!   it had a queue of its own. A publish that would overflow it ends that
//!   subscriber with [`Ended::Lagged`] (it reconnects
//!   with its last event ID and replays from history); the publisher never
//!   waits and other subscribers are not affected.
//! * **Unknown cursor.** A cursor that is not in the history (evicted, or
//!   never seen) replays all retained history, preceded by an event of the
//!   reserved type [`LOST_EVENT_TYPE`] whose data is the requested id: the
//!   client learns that events may have been lost.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

use super::channel::{Channel, MemberId};
use super::replay::{ReplayConfig, ReplayLog, Seek};
use super::route::{Router, SubscriberKey, Subscription};
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
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig::new()
    }
}

impl BrokerConfig {
    /// History as [`ReplayConfig::new`] (10 000 events, 64 MiB), queues of
    /// 4096 frames or 4 MiB per subscriber, ids without a prefix, at most
    /// 1000 topics per update.
    pub fn new() -> BrokerConfig {
        BrokerConfig {
            replay: ReplayConfig::new(),
            queue_frames: 4096,
            queue_bytes: 4 << 20,
            id_prefix: Str::new(),
            max_topics: 1000,
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
    /// counting from 1). Give each run a different one (a start time, say)
    /// so that a client holding an id from an earlier run is told that
    /// events may have been lost instead of resuming at the wrong place.
    /// A prefix holding CR, LF or NUL is ignored.
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

/// What a new subscriber was given from history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Replay {
    /// No cursor: live events only.
    Live,
    /// The cursor was found; `replayed` events follow it.
    Resumed {
        /// How many retained events were queued.
        replayed: usize,
    },
    /// The cursor is not in the history: a [`LOST_EVENT_TYPE`] event and
    /// all retained events (for the subscription) were queued.
    Unknown {
        /// How many retained events were queued (not counting the
        /// [`LOST_EVENT_TYPE`] event).
        replayed: usize,
    },
    /// `earliest`: all retained events were queued.
    Earliest {
        /// How many retained events were queued.
        replayed: usize,
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

/// What the router stores for each update in the history.
#[derive(Debug)]
struct Meta {
    topics: Box<[Str]>,
    private: bool,
}

struct Core {
    log: ReplayLog<Meta, Instant>,
    /// One entry per channel (the subscribers with one subscription).
    router: Router<Arc<Channel>>,
    /// The channel of each subscription.
    channels: HashMap<Subscription, SubscriberKey>,
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
/// ```
/// use std::task::{Context, Poll, Waker};
/// use sse_proto::server::{Broker, BrokerConfig, Cursor, Subscription, Update};
///
/// let broker = Broker::new(BrokerConfig::new());
/// let first = broker.publish(Update::new("news", "one"))?;
/// let mut sub = broker.subscribe(Subscription::new(["news"]), Cursor::After(first.id.clone()));
/// broker.publish(Update::new("weather", "not for this subscriber"))?;
/// broker.publish(Update::new("news", "two"))?;
///
/// let mut frames = Vec::new();
/// let mut cx = Context::from_waker(Waker::noop());
/// assert_eq!(sub.poll_recv(&mut cx, &mut frames), Poll::Ready(Ok(())));
/// assert_eq!(frames, [&b"id: 3\ndata: two\n\n"[..]]);
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
                    router: Router::new(),
                    channels: HashMap::new(),
                    subscribers: 0,
                    shutdown: None,
                    wake: Vec::new(),
                }),
                config,
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
        // A panic while holding the lock cannot leave the core half-updated
        // in a way that matters more than stopping would; keep serving.
        self.shared
            .core
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes an update: assigns its id (unless it has one), encodes it
    /// once, appends it to the history and queues it for every matching
    /// subscriber. Subscribers whose queue is full are disconnected
    /// ([`Ended::Lagged`]); the publish never waits for a subscriber.
    ///
    /// # Errors
    /// [`PublishError`] for an update without topics or with too many, or
    /// after [`Broker::shutdown`].
    pub fn publish(&self, update: Update) -> Result<Published, PublishError> {
        if update.topics.is_empty() {
            return Err(PublishError::NoTopic);
        }
        if update.topics.len() > self.shared.config.max_topics {
            return Err(PublishError::TooManyTopics);
        }
        let now = Instant::now();
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
        let meta = Meta {
            topics: update.topics.into_boxed_slice(),
            private: update.private,
        };
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
        let pushed = core.log.push(id.clone(), frame, meta, now);
        debug_assert_eq!(pushed, seq);
        core.log.evict_expired(now);
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

    /// Subscribes from `cursor`: the matching history after it is queued
    /// first, then live events follow with no gap and no duplicate. After
    /// [`Broker::shutdown`] the subscriber ends at once.
    pub fn subscribe(&self, subscription: Subscription, cursor: Cursor) -> Subscriber {
        let key = self.shared.next_key.fetch_add(1, Ordering::Relaxed);
        let core = self.lock();
        if let Some(shutdown) = core.shutdown {
            // A channel of its own, outside the router, already ended.
            let channel = Arc::new(Channel::new());
            let (member, _) = channel.join(key, VecDeque::new(), Some(shutdown.ended(key)));
            return Subscriber {
                broker: self.clone(),
                router_key: None,
                channel,
                member,
                replay: Replay::Live,
            };
        }
        let mut frames = VecDeque::new();
        let replay = match cursor {
            Cursor::Live => Replay::Live,
            Cursor::Earliest => {
                let replayed = collect(&core.log, 0, &subscription, &mut frames);
                Replay::Earliest { replayed }
            }
            Cursor::After(id) => match core.log.seek(&id) {
                Seek::Found { after, .. } => {
                    let replayed = collect(&core.log, after, &subscription, &mut frames);
                    Replay::Resumed { replayed }
                }
                Seek::Unknown => {
                    frames.push_back(lost_event(&id));
                    let replayed = collect(&core.log, 0, &subscription, &mut frames);
                    Replay::Unknown { replayed }
                }
            },
        };
        if !matches!(replay, Replay::Live) {
            self.shared.replays.fetch_add(1, Ordering::Relaxed);
        }
        if matches!(replay, Replay::Unknown { .. }) {
            self.shared.replay_misses.fetch_add(1, Ordering::Relaxed);
        }
        let mut guard = core;
        let core = &mut *guard;
        let router_key = match core.channels.get(&subscription) {
            Some(&router_key) => router_key,
            None => {
                let router_key = core
                    .router
                    .insert(subscription.clone(), Arc::new(Channel::new()));
                core.channels.insert(subscription, router_key);
                router_key
            }
        };
        let Some(channel) = core.router.get(router_key).cloned() else {
            unreachable!("a channel's key stays in the router while it has members")
        };
        // Joined under the broker's lock: the next publish reaches it.
        let (member, counted) = channel.join(key, frames, None);
        core.subscribers += 1;
        self.shared.queued.fetch_add(counted, Ordering::Relaxed);
        drop(guard);
        Subscriber {
            broker: self.clone(),
            router_key: Some(router_key),
            channel,
            member,
            replay,
        }
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
    /// subscription on average, and at most 256 of each replay (so that a
    /// few stalled subscribers weigh little). A server can hold
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

    /// The id of the newest event published (`None` before the first).
    pub fn last_id(&self) -> Option<Str> {
        self.lock().log.last_id().map(Str::from)
    }

    /// Takes a member out of its channel, and the channel out of the
    /// router when it was the last (under the broker's lock, so that no
    /// subscribe joins a channel on its way out).
    fn unsubscribe(&self, router_key: Option<SubscriberKey>, channel: &Channel, member: MemberId) {
        let mut removed = None;
        let counted = {
            let mut core = self.lock();
            let left = channel.leave(member);
            if router_key.is_some() && left.was_reader {
                core.subscribers -= 1;
            }
            if let (Some(key), 0) = (router_key, left.members) {
                removed = core.router.remove(key);
                if let Some((subscription, _)) = &removed {
                    core.channels.remove(subscription);
                }
            }
            left.counted
        };
        self.shared.queued.fetch_add(counted, Ordering::Relaxed);
        // Dropped outside the lock.
        drop(removed);
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
    if let Ok(mut core) = shared.core.try_lock() {
        if core.wake.capacity() < wake.capacity() {
            core.wake = wake;
        }
    }
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

/// Queues the retained frames after `after` that `subscription` accepts.
fn collect(
    log: &ReplayLog<Meta, Instant>,
    after: u64,
    subscription: &Subscription,
    out: &mut VecDeque<Bytes>,
) -> usize {
    let before = out.len();
    for entry in log.since(after) {
        let meta = entry.meta();
        if subscription.accepts(&meta.topics, meta.private) {
            out.push_back(entry.frame().clone());
        }
    }
    out.len() - before
}

/// One subscriber: the frames queued for it, in order. Dropping it
/// unsubscribes.
pub struct Subscriber {
    broker: Broker,
    /// Its channel's key in the router (`None` for one made after the
    /// shutdown).
    router_key: Option<SubscriberKey>,
    channel: Arc<Channel>,
    member: MemberId,
    replay: Replay,
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
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
    ) -> Poll<Result<(), Ended>> {
        match self.recv(out, Some(cx.waker())) {
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
    pub fn try_recv(&mut self, out: &mut Vec<Bytes>) -> Result<usize, Ended> {
        self.recv(out, None)
    }

    fn recv(&mut self, out: &mut Vec<Bytes>, waker: Option<&Waker>) -> Result<usize, Ended> {
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
            .unsubscribe(self.router_key, &self.channel, self.member);
    }
}
