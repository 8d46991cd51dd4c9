//! [`ReplayLog`]: the bounded history of encoded events that lets a
//! reconnecting client resume where it left off.
//!
//! A client that reconnects sends the id of the last event it received in
//! `Last-Event-ID`. The server looks that id up with [`ReplayLog::seek`] and,
//! when it is still retained, sends the frames that followed it
//! ([`ReplayLog::since`]) before switching to live events. When the id is
//! unknown (never pushed, or already evicted), events may have been lost and
//! the application decides what to do (send a snapshot, or start live).
//!
//! Events are stored as pre-encoded frames ([`Bytes`]), so a replay costs no
//! encoding and shares the buffers of the live broadcast. Each entry also
//! carries application metadata `M` (for example the topic, to filter a
//! replay by subscription) and the instant `I` it was pushed at.
//!
//! The log is bounded by [`ReplayConfig`]: a number of entries, a number of
//! bytes and, optionally, an age. Like the rest of the crate it reads no
//! clock: the caller passes `now` to [`ReplayLog::push`] and
//! [`ReplayLog::handle_timeout`], and [`ReplayLog::poll_timeout`] says when the
//! next entry expires, for the adapter's timer.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use sse_proto::server::{ReplayConfig, ReplayLog, Seek};
//! use sse_proto::{EventId, OutgoingEvent};
//!
//! let config = ReplayConfig::new()
//!     .max_events(1_000)
//!     .max_age(Some(Duration::from_secs(300)));
//! let mut log: ReplayLog<&str, Instant> = ReplayLog::new(config);
//!
//! for (n, data) in ["a", "b", "c"].into_iter().enumerate() {
//!     let id = EventId::new(n.to_string())?;
//!     let frame = OutgoingEvent::new(data).id(&id).to_bytes();
//!     log.push(id.into_str(), frame, "news", Instant::now());
//! }
//!
//! // A client reconnects with `Last-Event-ID: 0`: replay what followed.
//! let Seek::Found { after, pending } = log.seek("0") else {
//!     panic!("id 0 is retained");
//! };
//! assert_eq!(pending, 2);
//! let replay: Vec<&str> = log.since(after).map(|e| e.id()).collect();
//! assert_eq!(replay, ["1", "2"]);
//!
//! // A client that saw the newest event is up to date; a stranger is not.
//! assert_eq!(log.seek("2"), Seek::Found { after: 3, pending: 0 });
//! assert_eq!(log.seek("99"), Seek::Unknown);
//! # Ok::<(), sse_proto::InvalidField>(())
//! ```

use alloc::collections::BTreeMap;
use alloc::collections::VecDeque;
use alloc::collections::vec_deque;
use core::ops::Add;
use core::time::Duration;

use bytes::Bytes;

use crate::str::Str;

/// The bounds of a [`ReplayLog`].
///
/// The defaults ([`ReplayConfig::new`]) keep at most 10 000 events and
/// 64 MiB, with no age limit. Bytes are counted per entry as the frame
/// length plus the id length plus [`ReplayConfig::ENTRY_OVERHEAD`], plus
/// what the caller says its metadata holds
/// ([`ReplayLog::push_sized`]): every retained byte counts.
///
/// ```
/// use std::time::Duration;
/// use sse_proto::server::ReplayConfig;
///
/// let config = ReplayConfig::new()
///     .max_events(500)
///     .max_bytes(1 << 20)
///     .max_age(Some(Duration::from_secs(60)));
/// assert_eq!((config.events(), config.bytes()), (500, 1 << 20));
/// assert_eq!(config.age(), Some(Duration::from_secs(60)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayConfig {
    max_events: usize,
    max_bytes: usize,
    max_age: Option<Duration>,
}

impl ReplayConfig {
    /// The fixed cost, in bytes, charged for every entry on top of its frame
    /// and id: an estimate of the bookkeeping (the entry itself and its
    /// index node), so that many tiny events are bounded by
    /// [`max_bytes`](ReplayConfig::max_bytes) too.
    pub const ENTRY_OVERHEAD: usize = 64;

    /// The defaults: 10 000 events, 64 MiB, no age limit.
    pub const fn new() -> ReplayConfig {
        ReplayConfig {
            max_events: 10_000,
            max_bytes: 64 << 20,
            max_age: None,
        }
    }

    /// Keeps at most `n` entries. With 0 nothing is retained: every push is
    /// evicted at once, but its sequence number is still used and its id is
    /// still the newest (see [`ReplayLog::seek`]).
    #[must_use]
    pub const fn max_events(mut self, n: usize) -> ReplayConfig {
        self.max_events = n;
        self
    }

    /// Keeps at most `n` bytes, counted as described on [`ReplayConfig`]. An
    /// entry larger than `n` on its own is evicted as soon as it is pushed.
    #[must_use]
    pub const fn max_bytes(mut self, n: usize) -> ReplayConfig {
        self.max_bytes = n;
        self
    }

    /// Evicts entries once they are `age` old (`None`: no age limit).
    #[must_use]
    pub const fn max_age(mut self, age: Option<Duration>) -> ReplayConfig {
        self.max_age = age;
        self
    }

    /// The maximum number of entries.
    pub const fn events(&self) -> usize {
        self.max_events
    }

    /// The maximum number of bytes.
    pub const fn bytes(&self) -> usize {
        self.max_bytes
    }

    /// The maximum age, if any.
    pub const fn age(&self) -> Option<Duration> {
        self.max_age
    }
}

impl Default for ReplayConfig {
    fn default() -> ReplayConfig {
        ReplayConfig::new()
    }
}

/// One retained event: its sequence number, id, encoded frame, application
/// metadata and the instant it was pushed at.
#[derive(Clone, Debug)]
pub struct Entry<M, I> {
    seq: u64,
    id: Str,
    frame: Bytes,
    meta: M,
    at: I,
    /// What it counts for against the byte bound.
    size: usize,
}

impl<M, I> Entry<M, I> {
    /// The sequence number [`ReplayLog::push`] returned for this entry.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The event id.
    pub fn id(&self) -> &str {
        self.id.as_str()
    }

    /// The encoded frame, ready to be written (cloning it is cheap).
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The application metadata.
    pub fn meta(&self) -> &M {
        &self.meta
    }

    /// The instant the entry was pushed at.
    pub fn at(&self) -> &I {
        &self.at
    }

    /// The bytes this entry counts for against
    /// [`ReplayConfig::max_bytes`]: frame length + id length +
    /// [`ReplayConfig::ENTRY_OVERHEAD`] + the metadata's size given to
    /// [`ReplayLog::push_sized`].
    pub fn size(&self) -> usize {
        self.size
    }
}

/// The size charged for an entry with this id, frame and metadata size.
fn entry_size(id: &str, frame: &[u8], meta: usize) -> usize {
    frame
        .len()
        .saturating_add(id.len())
        .saturating_add(meta)
        .saturating_add(ReplayConfig::ENTRY_OVERHEAD)
}

/// The retained occurrences of one id (indexed ids only), oldest first.
#[derive(Clone, Debug)]
struct Occurrences {
    first: u64,
    /// Later pushes of the same id (allocated only for repeated ids).
    later: VecDeque<u64>,
}

/// Where a resume cursor (a `Last-Event-ID`) points, as found by
/// [`ReplayLog::seek`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seek {
    /// The id is retained (or is the newest id ever pushed): replay the
    /// entries with a sequence number greater than `after`
    /// ([`ReplayLog::since`]).
    Found {
        /// The sequence number of the event the id names.
        after: u64,
        /// How many retained entries follow it (0: the client is up to date).
        pending: usize,
    },
    /// The id was never pushed, or was evicted: events may have been lost.
    Unknown,
}

/// A bounded history of encoded events, indexed by id.
///
/// Every [`push`](ReplayLog::push) gets the next sequence number (1, 2, 3,
/// ...), and the oldest entries are evicted while the log is over its
/// [`ReplayConfig`] bounds, so the retained entries always have consecutive
/// sequence numbers ending at the newest retained push. An index from id to
/// sequence number makes [`seek`](ReplayLog::seek) logarithmic, and the
/// consecutive numbering makes [`since`](ReplayLog::since) and
/// [`get`](ReplayLog::get) constant time.
///
/// `M` is application metadata stored with each entry; `I` is the instant
/// type (`std::time::Instant`, tokio's, or a test clock). Instants passed in
/// are expected not to go backwards: age eviction stops at the oldest entry
/// that has not expired.
///
/// Memory is bounded by the configuration: the entries, and an index that
/// holds only the retained ids (the newest id ever pushed is kept on its own).
#[derive(Clone, Debug)]
pub struct ReplayLog<M, I> {
    config: ReplayConfig,
    /// Oldest first, with consecutive sequence numbers.
    entries: VecDeque<Entry<M, I>>,
    /// The retained sequence numbers of each retained id.
    index: BTreeMap<Str, Occurrences>,
    /// The sum of the retained entries' sizes.
    bytes: usize,
    /// The sequence number of the newest push (0 before any).
    last_seq: u64,
    /// The id of the newest push, retained or not.
    last_id: Option<Str>,
    /// How many entries were evicted so far.
    evicted: u64,
    /// With [`ReplayLog::with_seq_ids`]: the prefix of ids that are the
    /// entry's own sequence number, which are found without the index.
    seq_prefix: Option<Str>,
}

impl<M, I> ReplayLog<M, I> {
    /// An empty log with these bounds.
    pub fn new(config: ReplayConfig) -> Self {
        ReplayLog {
            config,
            entries: VecDeque::new(),
            index: BTreeMap::new(),
            bytes: 0,
            last_seq: 0,
            last_id: None,
            evicted: 0,
            seq_prefix: None,
        }
    }

    /// Declares that ids of the form `{prefix}{seq}` (the decimal sequence
    /// number of the entry they are pushed with, as a broker assigning ids
    /// writes them) are found by parsing rather than through the index.
    /// Nothing observable changes: [`ReplayLog::seek`] answers the same; a
    /// push of such an id costs no index insertion (and its eviction no
    /// removal).
    pub fn with_seq_ids(mut self, prefix: impl Into<Str>) -> Self {
        self.seq_prefix = Some(prefix.into());
        self
    }

    /// The sequence number `id` names as a sequence id, if it is one.
    fn seq_id(&self, id: &str) -> Option<u64> {
        let digits = id.strip_prefix(self.seq_prefix.as_deref()?)?;
        // Canonical decimal only: "07" is not 7, so that ids map one to one.
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if canonical { digits.parse().ok() } else { None }
    }

    /// The bounds.
    pub fn config(&self) -> ReplayConfig {
        self.config
    }

    /// Finds where a client that last saw the event `id` should resume.
    ///
    /// If the id was pushed several times, its earliest retained occurrence
    /// counts: a client may then get events again, but never skips one, so
    /// a publisher that reuses an id cannot make a client that last saw the
    /// first occurrence jump past the events in between. The
    /// newest id ever pushed is always found (with nothing pending), even
    /// when its entry was evicted, so a client that saw the last event is up
    /// to date rather than lost. Any other id that is not retained is
    /// [`Seek::Unknown`]. The empty string is an id like any other.
    ///
    /// Takes O(log n) time.
    pub fn seek(&self, id: &str) -> Seek {
        let indexed = self.index.get(id).map(|o| o.first);
        // A sequence id is retained when its entry still carries it; the
        // same text may also have been pushed as an ordinary id.
        let parsed = self
            .seq_id(id)
            .filter(|&seq| self.get(seq).is_some_and(|e| e.id == id));
        let after = match (indexed, parsed) {
            (Some(a), Some(b)) => a.min(b),
            (Some(seq), None) | (None, Some(seq)) => seq,
            (None, None) if self.last_id.as_deref() == Some(id) => self.last_seq,
            (None, None) => return Seek::Unknown,
        };
        Seek::Found {
            after,
            pending: self.since(after).len(),
        }
    }

    /// The retained entries with a sequence number greater than `after`,
    /// oldest first. Finding the start takes constant time.
    pub fn since(&self, after: u64) -> vec_deque::Iter<'_, Entry<M, I>> {
        let len = self.entries.len();
        let start = match self.first_seq() {
            Some(first) if after >= first => usize::try_from(after - first)
                .map_or(len, |offset| offset.saturating_add(1))
                .min(len),
            _ => 0,
        };
        self.entries.range(start..)
    }

    /// All retained entries, oldest first.
    pub fn iter(&self) -> vec_deque::Iter<'_, Entry<M, I>> {
        self.entries.iter()
    }

    /// The retained entry with sequence number `seq`, if any.
    pub fn get(&self, seq: u64) -> Option<&Entry<M, I>> {
        let offset = seq.checked_sub(self.first_seq()?)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// The number of retained entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is retained.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The retained bytes, counted as described on [`ReplayConfig`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The sequence number of the newest push (0 before any push).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The sequence number of the oldest retained entry.
    pub fn first_seq(&self) -> Option<u64> {
        self.entries.front().map(Entry::seq)
    }

    /// The id of the newest push, whether or not it is retained.
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// How many entries were evicted so far (by [`push`](ReplayLog::push)
    /// and [`handle_timeout`](ReplayLog::handle_timeout); not by
    /// [`clear`](ReplayLog::clear)).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Drops every entry and the index. The sequence numbers stay monotonic
    /// (the next push gets `last_seq() + 1`) and the newest id is kept, so a
    /// client that saw the newest event is still up to date.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
        self.bytes = 0;
    }

    /// Drops every entry and forgets the newest id too: every id seen so far
    /// becomes [`Seek::Unknown`]. The sequence numbers stay monotonic. For
    /// a log that learns it missed events (they cannot be replayed, so a
    /// client must not be told it is up to date).
    pub fn forget(&mut self) {
        self.clear();
        self.last_id = None;
    }

    /// Evicts the oldest entry, keeping the index and the byte count in step.
    fn pop_oldest(&mut self) -> Option<Entry<M, I>> {
        let entry = self.entries.pop_front()?;
        self.bytes = self.bytes.saturating_sub(entry.size());
        // The oldest entry is its id's first occurrence; a later one takes
        // its place.
        if let Some(occurrences) = self.index.get_mut(entry.id.as_str()) {
            if occurrences.first == entry.seq {
                match occurrences.later.pop_front() {
                    Some(next) => occurrences.first = next,
                    None => {
                        self.index.remove(entry.id.as_str());
                    }
                }
            }
        }
        self.evicted += 1;
        Some(entry)
    }
}

impl<M, I: Copy + Ord + Add<Duration, Output = I>> ReplayLog<M, I> {
    /// Appends an event and returns its sequence number: 1 for the first
    /// push, then one more for each push.
    ///
    /// Then evicts the oldest entries while the log holds more than
    /// [`max_events`](ReplayConfig::max_events) entries or more than
    /// [`max_bytes`](ReplayConfig::max_bytes) bytes, and the entries that
    /// are [`max_age`](ReplayConfig::max_age) old at `now`. An entry larger
    /// than `max_bytes` on its own is evicted at once (leaving the log
    /// empty), but its sequence number and id still count as the newest.
    pub fn push(&mut self, id: Str, frame: Bytes, meta: M, now: I) -> u64 {
        self.push_sized(id, frame, meta, 0, now)
    }

    /// [`ReplayLog::push`] for metadata that holds `meta_bytes` bytes of its
    /// own (topics, say), which count against
    /// [`max_bytes`](ReplayConfig::max_bytes) with the frame and the id.
    pub fn push_sized(&mut self, id: Str, frame: Bytes, meta: M, meta_bytes: usize, now: I) -> u64 {
        self.push_with(id, frame, meta, meta_bytes, now, |_| {})
    }

    /// [`ReplayLog::push_sized`] that hands every entry it evicts to
    /// `evicted`, oldest first (for a caller that indexes the entries'
    /// metadata itself).
    pub fn push_with(
        &mut self,
        id: Str,
        frame: Bytes,
        meta: M,
        meta_bytes: usize,
        now: I,
        mut evicted: impl FnMut(Entry<M, I>),
    ) -> u64 {
        self.last_seq += 1;
        let seq = self.last_seq;
        // A sequence id is found by parsing; any other goes to the index.
        if self.seq_id(&id) != Some(seq) {
            match self.index.get_mut(id.as_str()) {
                Some(occurrences) => occurrences.later.push_back(seq),
                None => {
                    self.index.insert(
                        id.clone(),
                        Occurrences {
                            first: seq,
                            later: VecDeque::new(),
                        },
                    );
                }
            }
        }
        let size = entry_size(&id, &frame, meta_bytes);
        self.bytes = self.bytes.saturating_add(size);
        self.last_id = Some(id.clone());
        self.entries.push_back(Entry {
            seq,
            id,
            frame,
            meta,
            at: now,
            size,
        });
        while self.entries.len() > self.config.max_events || self.bytes > self.config.max_bytes {
            match self.pop_oldest() {
                Some(entry) => evicted(entry),
                None => break,
            }
        }
        self.handle_timeout_with(now, evicted);
        seq
    }

    /// Evicts the entries that are [`max_age`](ReplayConfig::max_age) old at
    /// `now` (those with `at + max_age <= now`) and returns how many there
    /// were. Does nothing without an age limit.
    pub fn handle_timeout(&mut self, now: I) -> usize {
        self.handle_timeout_with(now, |_| {})
    }

    /// [`ReplayLog::handle_timeout`] that hands every entry it evicts to
    /// `evicted`, oldest first.
    pub fn handle_timeout_with(&mut self, now: I, mut evicted: impl FnMut(Entry<M, I>)) -> usize {
        let Some(age) = self.config.max_age else {
            return 0;
        };
        let mut count = 0;
        while self.entries.front().is_some_and(|e| e.at + age <= now) {
            if let Some(entry) = self.pop_oldest() {
                evicted(entry);
            }
            count += 1;
        }
        count
    }

    /// When the oldest retained entry expires (its `at + max_age`), for the
    /// adapter's timer: call [`handle_timeout`](ReplayLog::handle_timeout)
    /// then. `None` when the log is empty or has no age limit.
    pub fn poll_timeout(&self) -> Option<I> {
        let age = self.config.max_age?;
        Some(self.entries.front()?.at + age)
    }
}

impl<M, I> Default for ReplayLog<M, I> {
    /// An empty log with the default bounds.
    fn default() -> Self {
        ReplayLog::new(ReplayConfig::default())
    }
}

impl<'a, M, I> IntoIterator for &'a ReplayLog<M, I> {
    type Item = &'a Entry<M, I>;
    type IntoIter = vec_deque::Iter<'a, Entry<M, I>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec::Vec;

    /// The tests' instants: a `Duration` since a start (it is `Ord` and
    /// adds durations, as the log needs).
    type T = Duration;

    /// The instant `n` seconds after the start.
    #[allow(non_snake_case)]
    const fn T(n: u64) -> T {
        Duration::from_secs(n)
    }

    fn frame(n: usize) -> Bytes {
        Bytes::from(alloc::vec![b'x'; n])
    }

    fn push(log: &mut ReplayLog<(), T>, id: &str, len: usize, now: u64) -> u64 {
        log.push(Str::from(id), frame(len), (), T(now))
    }

    fn ids(log: &ReplayLog<(), T>, after: u64) -> Vec<&str> {
        log.since(after).map(Entry::id).collect()
    }

    fn found(after: u64, pending: usize) -> Seek {
        Seek::Found { after, pending }
    }

    #[test]
    fn defaults() {
        let config = ReplayConfig::default();
        assert_eq!(config, ReplayConfig::new());
        assert_eq!(config.events(), 10_000);
        assert_eq!(config.bytes(), 64 * 1024 * 1024);
        assert_eq!(config.age(), None);
    }

    #[test]
    fn empty_log() {
        let log: ReplayLog<(), T> = ReplayLog::default();
        assert!(log.is_empty());
        assert_eq!((log.len(), log.bytes(), log.last_seq()), (0, 0, 0));
        assert_eq!((log.first_seq(), log.last_id()), (None, None));
        assert_eq!(log.seek(""), Seek::Unknown);
        assert_eq!(log.seek("1"), Seek::Unknown);
        assert_eq!(log.since(0).len(), 0);
        assert!(log.get(0).is_none() && log.get(1).is_none());
        assert_eq!(log.poll_timeout(), None);
    }

    #[test]
    fn push_seek_since() {
        let mut log = ReplayLog::new(ReplayConfig::new());
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            assert_eq!(push(&mut log, id, 10, 0), i as u64 + 1);
        }
        assert_eq!(log.len(), 4);
        assert_eq!(log.bytes(), 4 * (10 + 1 + ReplayConfig::ENTRY_OVERHEAD));
        assert_eq!((log.first_seq(), log.last_seq()), (Some(1), 4));
        assert_eq!(log.last_id(), Some("d"));
        assert_eq!(log.seek("a"), found(1, 3));
        assert_eq!(log.seek("c"), found(3, 1));
        assert_eq!(log.seek("d"), found(4, 0));
        assert_eq!(log.seek("e"), Seek::Unknown);
        assert_eq!(ids(&log, 0), ["a", "b", "c", "d"]);
        assert_eq!(ids(&log, 2), ["c", "d"]);
        assert_eq!(ids(&log, 4), Vec::<&str>::new());
        assert_eq!(ids(&log, u64::MAX), Vec::<&str>::new());
        assert_eq!(
            log.since(1).rev().map(Entry::seq).collect::<Vec<_>>(),
            [4, 3, 2]
        );
        assert_eq!(log.get(3).map(Entry::id), Some("c"));
        assert!(log.get(5).is_none());
        let entry = log.get(2).unwrap();
        assert_eq!(
            (entry.seq(), entry.frame().len(), *entry.at()),
            (2, 10, T(0))
        );
        assert_eq!(entry.meta(), &());
        assert_eq!((&log).into_iter().count(), 4);
    }

    #[test]
    fn count_bound_and_index_maintenance() {
        let mut log = ReplayLog::new(ReplayConfig::new().max_events(3));
        for id in ["a", "b", "a", "c", "d"] {
            push(&mut log, id, 1, 0);
        }
        // Retained: a(3) c(4) d(5); b(2) and the first a(1) are gone.
        assert_eq!(ids(&log, 0), ["a", "c", "d"]);
        assert_eq!(log.first_seq(), Some(3));
        assert_eq!(log.evicted(), 2);
        // The first `a` is gone: the second is now the earliest.
        assert_eq!(log.seek("a"), found(3, 2));
        assert_eq!(log.seek("b"), Seek::Unknown);
        assert_eq!(log.index.len(), 3);
        push(&mut log, "e", 1, 0);
        assert_eq!(log.seek("a"), Seek::Unknown);
        assert_eq!(log.index.len(), 3);
    }

    #[test]
    fn duplicate_ids_resolve_to_the_earliest_retained_occurrence() {
        let mut log = ReplayLog::new(ReplayConfig::new().max_events(3));
        push(&mut log, "x", 1, 0);
        push(&mut log, "y", 1, 0);
        push(&mut log, "x", 1, 0);
        // A client that saw the first `x` must not skip `y`.
        assert_eq!(log.seek("x"), found(1, 2));
        push(&mut log, "z", 1, 0); // evicts x(1); x(3) is the earliest now
        assert_eq!(log.seek("x"), found(3, 1));
        push(&mut log, "w", 1, 0);
        push(&mut log, "v", 1, 0); // evicts x(3): no `x` is retained
        assert_eq!(log.seek("x"), Seek::Unknown);
        assert!(!log.index.contains_key("x"));
    }

    #[test]
    fn a_reused_sequence_id_resolves_to_its_earliest_occurrence() {
        let mut log: ReplayLog<(), T> =
            ReplayLog::new(ReplayConfig::new()).with_seq_ids(Str::from("p"));
        // Pushed as an ordinary id first, then assigned by sequence.
        log.push(Str::from("p2"), frame(1), (), T(0));
        log.push(Str::from("p2"), frame(1), (), T(0));
        log.push(Str::from("p3"), frame(1), (), T(0));
        assert_eq!(log.seek("p2"), found(1, 2));
        // And the other way round: assigned first, reused later.
        log.push(Str::from("p3"), frame(1), (), T(0));
        assert_eq!(log.seek("p3"), found(3, 1));
    }

    #[test]
    fn metadata_bytes_count() {
        let per = 10 + 1 + ReplayConfig::ENTRY_OVERHEAD;
        let mut log: ReplayLog<(), T> = ReplayLog::new(ReplayConfig::new().max_bytes(3 * per));
        log.push_sized(Str::from("a"), frame(10), (), 0, T(0));
        assert_eq!(log.bytes(), per);
        log.push_sized(Str::from("b"), frame(10), (), per, T(0));
        assert_eq!(log.get(2).map(Entry::size), Some(2 * per));
        assert_eq!(log.bytes(), 3 * per);
        // A third entry pushes the first out.
        log.push_sized(Str::from("c"), frame(10), (), 0, T(0));
        assert_eq!(ids(&log, 0), ["b", "c"]);
        assert_eq!(log.bytes(), 3 * per);
    }

    #[test]
    fn zero_events_keeps_nothing_but_the_newest_id() {
        let mut log = ReplayLog::new(ReplayConfig::new().max_events(0));
        assert_eq!(push(&mut log, "a", 5, 0), 1);
        assert_eq!(push(&mut log, "b", 5, 0), 2);
        assert!(log.is_empty());
        assert_eq!((log.bytes(), log.first_seq(), log.evicted()), (0, None, 2));
        assert_eq!(log.seek("b"), found(2, 0));
        assert_eq!(log.seek("a"), Seek::Unknown);
        assert!(log.index.is_empty());
    }

    #[test]
    fn byte_bound_and_oversize_entry() {
        let per = 10 + 1 + ReplayConfig::ENTRY_OVERHEAD;
        let mut log = ReplayLog::new(ReplayConfig::new().max_bytes(2 * per + 5));
        push(&mut log, "a", 10, 0);
        push(&mut log, "b", 10, 0);
        assert_eq!(log.len(), 2);
        push(&mut log, "c", 10, 0);
        assert_eq!(ids(&log, 0), ["b", "c"]);
        assert_eq!(log.bytes(), 2 * per);
        // Bigger than the whole budget: everything goes, itself included.
        assert_eq!(push(&mut log, "big", 1000, 0), 4);
        assert!(log.is_empty());
        assert_eq!(log.bytes(), 0);
        assert_eq!(log.seek("big"), found(4, 0));
        assert_eq!(log.seek("c"), Seek::Unknown);
        assert_eq!(push(&mut log, "d", 10, 0), 5);
        assert_eq!(log.seek("big"), Seek::Unknown);
        assert_eq!(log.seek("d"), found(5, 0));
    }

    #[test]
    fn age_bound() {
        let mut log = ReplayLog::new(ReplayConfig::new().max_age(Some(Duration::from_secs(10))));
        push(&mut log, "a", 1, 0);
        push(&mut log, "b", 1, 5);
        assert_eq!(log.poll_timeout(), Some(T(10)));
        assert_eq!(log.handle_timeout(T(9)), 0);
        assert_eq!(log.handle_timeout(T(10)), 1);
        assert_eq!(log.poll_timeout(), Some(T(15)));
        // Pushing also expires old entries.
        push(&mut log, "c", 1, 20);
        assert_eq!(ids(&log, 0), ["c"]);
        assert_eq!(log.evicted(), 2);
        assert_eq!(log.seek("b"), Seek::Unknown);
        assert_eq!(log.handle_timeout(T(100)), 1);
        assert_eq!(log.poll_timeout(), None);
        assert_eq!(log.seek("c"), found(3, 0));
    }

    #[test]
    fn no_age_limit_never_expires() {
        let mut log = ReplayLog::new(ReplayConfig::new());
        push(&mut log, "a", 1, 0);
        assert_eq!(log.handle_timeout(T(u64::MAX)), 0);
        assert_eq!(log.poll_timeout(), None);
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn empty_id_is_an_ordinary_id() {
        let mut log = ReplayLog::new(ReplayConfig::new());
        assert_eq!(log.seek(""), Seek::Unknown);
        push(&mut log, "", 1, 0);
        push(&mut log, "a", 1, 0);
        assert_eq!(log.seek(""), found(1, 1));
    }

    #[test]
    fn clear_keeps_sequence_and_newest_id() {
        let mut log = ReplayLog::new(ReplayConfig::new());
        push(&mut log, "a", 1, 0);
        push(&mut log, "b", 1, 0);
        log.clear();
        assert!(log.is_empty());
        assert_eq!((log.bytes(), log.last_seq(), log.evicted()), (0, 2, 0));
        assert_eq!(log.seek("a"), Seek::Unknown);
        assert_eq!(log.seek("b"), found(2, 0));
        assert_eq!(push(&mut log, "c", 1, 0), 3);
        assert_eq!(log.first_seq(), Some(3));
        assert_eq!(ids(&log, 0), ["c"]);
    }

    #[test]
    fn forget_makes_every_id_unknown_and_keeps_the_sequence() {
        let mut log = ReplayLog::new(ReplayConfig::new());
        push(&mut log, "a", 1, 0);
        push(&mut log, "b", 1, 0);
        log.forget();
        assert!(log.is_empty());
        assert_eq!((log.last_seq(), log.last_id()), (2, None));
        assert_eq!(log.seek("a"), Seek::Unknown);
        assert_eq!(log.seek("b"), Seek::Unknown);
        assert_eq!(push(&mut log, "c", 1, 0), 3);
        assert_eq!(log.seek("c"), found(3, 0));
    }

    #[test]
    fn long_ids_and_metadata() {
        let mut log: ReplayLog<u32, T> = ReplayLog::new(ReplayConfig::new().max_events(50));
        for n in 0..100u32 {
            let id = format!("a-rather-long-event-id-that-is-not-inline-{n}");
            log.push(Str::from(id), frame(3), n, T(0));
        }
        assert_eq!(log.len(), 50);
        let id = "a-rather-long-event-id-that-is-not-inline-60";
        let Seek::Found { after, pending } = log.seek(id) else {
            panic!("retained");
        };
        assert_eq!((after, pending), (61, 39));
        assert_eq!(log.since(after).next().map(|e| *e.meta()), Some(61));
    }
}
