//! Topic routing for a publish/subscribe hub (Mercure style).
//!
//! An update carries one or more topics and a `private` flag. A subscriber
//! holds a [`Subscription`]: topic [`Selector`]s (an exact topic, `*` for
//! every topic, or a pattern: a URI template or URL pattern) and, separately, the selectors its authorization grants
//! private access to. The rule ([`Subscription::accepts`]) is:
//!
//! * a public update goes to a subscriber when one of its selectors matches
//!   one of the update's topics;
//! * a private update additionally needs one of its private-access selectors
//!   to match one of the update's topics (no private access, no private
//!   updates);
//! * each subscriber gets an update at most once, however many selectors and
//!   topics match.
//!
//! [`Router`] is the subscriber table, indexed by topic, that applies the
//! rule on the fan-out path: routing an update costs one map lookup per topic
//! plus the subscribers actually reached (and those holding `*`), with no
//! allocation in the steady state for exact and `*` selectors; each
//! distinct pattern any subscriber holds is matched against the update's
//! topics once (in time linear in a topic's length), however many
//! subscribers share it. Subscribers are named by [`SubscriberKey`]s, which
//! never match a later subscriber once theirs is removed.
//!
//! ```
//! use sse_proto::server::{Router, Subscription};
//!
//! let mut router = Router::new();
//! let alice = router.insert(Subscription::new(["/books/1", "/books/2"]), Vec::new());
//! let admin = router.insert(
//!     Subscription::new(["*"]).with_private_access(["*"]),
//!     Vec::new(),
//! );
//!
//! // Both see the public update once, even though it has two matching topics.
//! let n = router.route(
//!     &["/books/1", "/books/2"],
//!     false,
//!     |_, queue| {
//!         queue.push("public");
//!         true
//!     },
//!     |_, _, _| {},
//! );
//! assert_eq!(n, 2);
//!
//! // Only the admin may see a private one; a full queue unsubscribes.
//! let mut dropped = Vec::new();
//! router.route(
//!     &["/books/1"],
//!     true,
//!     |_, queue| {
//!         queue.push("private");
//!         queue.len() < 2
//!     },
//!     |key, _subscription, queue| dropped.push((key, queue)),
//! );
//! assert_eq!(router.get(alice), Some(&vec!["public"]));
//! assert_eq!(dropped, [(admin, vec!["public", "private"])]);
//! assert_eq!(router.get(admin), None);
//! assert_eq!(router.len(), 1);
//! ```

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

pub use super::selector::Selector;
use super::selector::{Pattern, Topic};
use crate::Str;

/// What one subscriber receives: its topic selectors and the selectors it
/// has private access to.
///
/// Both lists are kept sorted and free of duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Subscription {
    selectors: Vec<Selector>,
    private_access: Vec<Selector>,
}

impl Subscription {
    /// A subscription to `selectors`, with no private access.
    ///
    /// ```
    /// use sse_proto::server::{Selector, Subscription};
    ///
    /// let sub = Subscription::new(["b", "*", "a", "b"]);
    /// assert_eq!(sub.selectors(), [Selector::Any, Selector::new("a"), Selector::new("b")]);
    /// assert!(sub.private_access().is_empty());
    /// ```
    pub fn new<S: Into<Selector>>(selectors: impl IntoIterator<Item = S>) -> Subscription {
        Subscription {
            selectors: normalize(selectors),
            private_access: Vec::new(),
        }
    }

    /// Sets (replacing any earlier grant) the selectors of the topics whose
    /// private updates the subscriber may receive, typically taken from its
    /// authorization token.
    pub fn with_private_access<S: Into<Selector>>(
        mut self,
        selectors: impl IntoIterator<Item = S>,
    ) -> Subscription {
        self.private_access = normalize(selectors);
        self
    }

    /// The topic selectors, sorted, without duplicates.
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// The private-access selectors, sorted, without duplicates.
    pub fn private_access(&self) -> &[Selector] {
        &self.private_access
    }

    /// Whether an update with these `topics` goes to this subscriber: one of
    /// its selectors matches one of the topics and, when the update is
    /// `private`, one of its private-access selectors matches one of the
    /// topics too. An update without topics goes nowhere.
    ///
    /// This is the rule [`Router::route`] applies; use it to filter what
    /// [`Router`] cannot see, such as replayed history.
    ///
    /// ```
    /// use sse_proto::server::Subscription;
    ///
    /// let sub = Subscription::new(["a"]).with_private_access(["b"]);
    /// assert!(sub.accepts(&["a"], false));
    /// assert!(!sub.accepts(&["a"], true));
    /// assert!(sub.accepts(&["a", "b"], true));
    /// assert!(!sub.accepts(&["b"], true));
    /// ```
    pub fn accepts<T: AsRef<str>>(&self, topics: &[T], private: bool) -> bool {
        any_matches(&self.selectors, topics)
            && (!private || any_matches(&self.private_access, topics))
    }
}

#[cfg(feature = "broker")]
impl Subscription {
    /// Whether one of the private-access selectors matches one of `topics`
    /// (the second half of [`Subscription::accepts`] for a private update).
    pub(crate) fn allows_private<T: AsRef<str>>(&self, topics: &[T]) -> bool {
        any_matches(&self.private_access, topics)
    }
}

/// Collects, sorts and deduplicates selectors.
fn normalize<S: Into<Selector>>(selectors: impl IntoIterator<Item = S>) -> Vec<Selector> {
    let mut selectors: Vec<Selector> = selectors.into_iter().map(Into::into).collect();
    selectors.sort_unstable();
    selectors.dedup();
    selectors
}

/// Whether one of the sorted `selectors` matches one of `topics`: a binary
/// search per topic among the exact selectors, so `O(topics × log
/// selectors)` string comparisons (never the product of the two counts),
/// then each pattern against each topic (patterns sort last).
#[inline]
fn any_matches<T: AsRef<str>>(selectors: &[Selector], topics: &[T]) -> bool {
    match selectors {
        // `Any` sorts first and matches whatever topic there is.
        [Selector::Any, ..] => !topics.is_empty(),
        [] => false,
        // A few exact selectors: a scan beats the search.
        [Selector::Exact(_)]
        | [Selector::Exact(_), Selector::Exact(_)]
        | [Selector::Exact(_), Selector::Exact(_), Selector::Exact(_)] => topics
            .iter()
            .any(|t| selectors.iter().any(|s| s.matches(t.as_ref()))),
        _ => {
            let patterns = selectors.partition_point(|s| !matches!(s, Selector::Pattern(_)));
            let (exact, patterns) = selectors.split_at(patterns);
            // Exact selectors, sorted by their text.
            topics.iter().any(|t| {
                exact
                    .binary_search_by(|s| s.as_str().cmp(t.as_ref()))
                    .is_ok()
            }) || (!patterns.is_empty()
                && topics.iter().any(|t| {
                    let topic = Topic::new(t.as_ref());
                    patterns.iter().any(|p| p.matches_topic(&topic))
                }))
        }
    }
}

/// Names a subscriber in a [`Router`].
///
/// A key stays valid until its subscriber is removed; after that it matches
/// nothing, even when the router reuses the subscriber's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberKey {
    index: u32,
    generation: u32,
}

/// One entry of the subscriber table.
struct Slot<T> {
    /// The number of the last [`Router::route`] call that reached this slot
    /// while deduplicating.
    mark: u64,
    /// Bumped on every removal, so that old keys stop matching.
    generation: u32,
    /// `None` while the slot is free.
    entry: Option<Occupant<T>>,
}

/// A live subscriber.
struct Occupant<T> {
    subscription: Subscription,
    /// `positions[i]` is where this slot sits in the index list of
    /// `subscription.selectors[i]` (for `i < indexed`), so removal needs no
    /// search.
    positions: Box<[u32]>,
    /// How many selectors (a prefix of the sorted list) are in the index.
    indexed: usize,
    /// Whether [`Router::route`] delivers to it: every selector is indexed
    /// and its removal has not begun.
    active: bool,
    /// Whether its removal has begun ([`Router::deactivate`]).
    removing: bool,
    /// Whether indexing stopped at a new pattern that the router had no
    /// room for ([`Router::set_max_patterns`]).
    refused: bool,
    value: T,
}

/// The subscriber table, with an index from topic to subscribers.
///
/// Each subscriber has a [`Subscription`] and a value `T` (typically its
/// outgoing queue). [`Router::route`] hands an update to exactly the
/// subscribers whose subscription [accepts](Subscription::accepts) it.
///
/// Costs, for `k` selectors per subscriber and `t` distinct topics indexed:
/// inserting and removing a subscriber take `O(k log t)`, routing an update
/// takes `O(log t)` per update topic plus constant time per subscriber
/// reached and per `*` subscriber, plus one match per distinct pattern and
/// topic (see [`Router::pattern_count`]); with exact and `*` selectors
/// only, it allocates nothing once the router has warmed up (a pattern's
/// match takes a small state set). Memory is proportional to the live subscribers and their
/// selectors; topics nobody selects any more are dropped from the index.
pub struct Router<T> {
    slots: Vec<Slot<T>>,
    /// Free slots, reused last-in first-out.
    free: Vec<u32>,
    /// Exact topic → the slots selecting it. Lists are never empty.
    topics: BTreeMap<Str, Vec<u32>>,
    /// The slots selecting `*`.
    any: Vec<u32>,
    /// Pattern → the slots selecting it (matched against each update's
    /// topics). Lists are never empty.
    patterns: BTreeMap<Pattern, Vec<u32>>,
    /// The most distinct patterns at once ([`Router::set_max_patterns`]).
    max_patterns: usize,
    len: usize,
    /// Counts the `route` calls, for the per-slot marks.
    epoch: u64,
    /// Scratch list of the slots to remove after a walk (kept to reuse its
    /// allocation).
    doomed: Vec<u32>,
}

impl<T> Default for Router<T> {
    fn default() -> Router<T> {
        Router::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for Router<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T> Router<T> {
    /// An empty router.
    pub fn new() -> Router<T> {
        Router {
            slots: Vec::new(),
            free: Vec::new(),
            topics: BTreeMap::new(),
            any: Vec::new(),
            patterns: BTreeMap::new(),
            max_patterns: usize::MAX,
            len: 0,
            epoch: 0,
            doomed: Vec::new(),
        }
    }

    /// Adds a subscriber and returns its key.
    ///
    /// Takes `O(k log t)` time for `k` selectors; see
    /// [`Router::insert_inactive`] to spread that work over several calls.
    ///
    /// # Panics
    /// When the router would hold more than `u32::MAX` subscribers at once.
    pub fn insert(&mut self, subscription: Subscription, value: T) -> SubscriberKey {
        let key = self.insert_inactive(subscription, value);
        self.index_some(key, usize::MAX);
        key
    }

    /// Adds a subscriber that nothing is routed to yet, in constant time:
    /// [`Router::index_some`] then indexes its selectors a few at a time,
    /// and it receives updates once all of them are. For a caller that
    /// holds a lock around the router and must not hold it for time that
    /// grows with one subscriber's selectors.
    ///
    /// # Panics
    /// When the router would hold more than `u32::MAX` subscribers at once.
    pub fn insert_inactive(&mut self, subscription: Subscription, value: T) -> SubscriberKey {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                #[allow(
                    clippy::expect_used,
                    reason = "four billion subscribers would take hundreds of gigabytes"
                )]
                let index = u32::try_from(self.slots.len()).expect("too many subscribers");
                self.slots.push(Slot {
                    mark: 0,
                    generation: 0,
                    entry: None,
                });
                index
            }
        };
        let positions = alloc::vec![0; subscription.selectors.len()].into_boxed_slice();
        let mut generation = 0;
        if let Some(slot) = self.slots.get_mut(index as usize) {
            slot.entry = Some(Occupant {
                subscription,
                positions,
                indexed: 0,
                active: false,
                removing: false,
                refused: false,
                value,
            });
            generation = slot.generation;
        }
        self.len += 1;
        SubscriberKey { index, generation }
    }

    /// Indexes up to `max` more of an inactive subscriber's selectors; once
    /// all are indexed the subscriber is active (updates are routed to it)
    /// and this returns `true`. `false` while selectors remain, or when
    /// `key` is stale or its removal has begun ([`Router::deactivate`]).
    pub fn index_some(&mut self, key: SubscriberKey, max: usize) -> bool {
        let Some(slot) = self
            .slots
            .get_mut(key.index as usize)
            .filter(|slot| slot.generation == key.generation)
        else {
            return false;
        };
        let Some(occupant) = slot.entry.as_mut() else {
            return false;
        };
        if occupant.active {
            return true;
        }
        if occupant.removing || occupant.refused {
            return false;
        }
        let total = occupant.subscription.selectors.len();
        let stop = occupant.indexed.saturating_add(max).min(total);
        for i in occupant.indexed..stop {
            let (Some(selector), Some(position)) = (
                occupant.subscription.selectors.get(i),
                occupant.positions.get_mut(i),
            ) else {
                break;
            };
            let list = match selector {
                Selector::Any => &mut self.any,
                Selector::Exact(topic) => self.topics.entry(topic.clone()).or_default(),
                Selector::Pattern(pattern) => {
                    if self.patterns.len() >= self.max_patterns
                        && !self.patterns.contains_key(pattern)
                    {
                        // No room for another distinct pattern: indexing
                        // stops here (what is indexed stays, to be taken
                        // out as for any removal).
                        occupant.indexed = i;
                        occupant.refused = true;
                        return false;
                    }
                    self.patterns.entry(pattern.clone()).or_default()
                }
            };
            // A list holds each slot at most once, and slot indices fit in
            // a `u32`, so its length does too.
            *position = list.len() as u32;
            list.push(key.index);
        }
        occupant.indexed = stop;
        occupant.active = stop == total;
        occupant.active
    }

    /// Stops routing to a subscriber (constant time), before
    /// [`Router::unindex_some`] takes its selectors out of the index a few
    /// at a time. Returns whether `key` names a subscriber.
    pub fn deactivate(&mut self, key: SubscriberKey) -> bool {
        match self.occupant_mut(key) {
            Some(occupant) => {
                occupant.active = false;
                occupant.removing = true;
                true
            }
            None => false,
        }
    }

    /// Takes up to `max` of a deactivated subscriber's selectors out of the
    /// index; returns `true` once none is left (then
    /// [`Router::remove`] frees it in constant time). An active subscriber
    /// is deactivated first.
    pub fn unindex_some(&mut self, key: SubscriberKey, max: usize) -> bool {
        let Some(occupant) = self.occupant_mut(key) else {
            return true;
        };
        occupant.active = false;
        occupant.removing = true;
        let indexed = occupant.indexed;
        let stop = indexed.saturating_sub(max);
        for i in (stop..indexed).rev() {
            self.unindex(key.index, i);
        }
        if let Some(occupant) = self.occupant_mut(key) {
            occupant.indexed = stop;
        }
        stop == 0
    }

    /// Takes selector `i` of the subscriber in slot `index` out of its
    /// index list.
    fn unindex(&mut self, index: u32, i: usize) {
        let Some(occupant) = self
            .slots
            .get(index as usize)
            .and_then(|slot| slot.entry.as_ref())
        else {
            return;
        };
        let (Some(selector), Some(&position)) = (
            occupant.subscription.selectors.get(i).cloned(),
            occupant.positions.get(i),
        ) else {
            return;
        };
        match &selector {
            Selector::Any => unlink(&mut self.slots, &mut self.any, position, &selector),
            Selector::Exact(topic) => {
                if let Some(list) = self.topics.get_mut(topic.as_str()) {
                    unlink(&mut self.slots, list, position, &selector);
                    if list.is_empty() {
                        self.topics.remove(topic.as_str());
                    }
                }
            }
            Selector::Pattern(pattern) => {
                if let Some(list) = self.patterns.get_mut(pattern) {
                    unlink(&mut self.slots, list, position, &selector);
                    if list.is_empty() {
                        self.patterns.remove(pattern);
                    }
                }
            }
        }
    }

    /// Removes a subscriber, returning its subscription and value; `None`
    /// when `key` is stale (already removed).
    pub fn remove(&mut self, key: SubscriberKey) -> Option<(Subscription, T)> {
        self.unindex_some(key, usize::MAX);
        let slot = self
            .slots
            .get_mut(key.index as usize)
            .filter(|slot| slot.generation == key.generation)?;
        let occupant = slot.entry.take()?;
        // Retire a slot whose generation is exhausted rather than let an old
        // key match again.
        if let Some(next) = slot.generation.checked_add(1) {
            slot.generation = next;
            self.free.push(key.index);
        }
        self.len -= 1;
        Some((occupant.subscription, occupant.value))
    }

    /// Whether `key` names a live subscriber.
    pub fn contains(&self, key: SubscriberKey) -> bool {
        self.occupant(key).is_some()
    }

    /// The value of a subscriber.
    pub fn get(&self, key: SubscriberKey) -> Option<&T> {
        self.occupant(key).map(|o| &o.value)
    }

    /// The value of a subscriber, mutably.
    pub fn get_mut(&mut self, key: SubscriberKey) -> Option<&mut T> {
        self.slots
            .get_mut(key.index as usize)
            .filter(|slot| slot.generation == key.generation)?
            .entry
            .as_mut()
            .map(|o| &mut o.value)
    }

    /// The subscription of a subscriber.
    pub fn subscription(&self, key: SubscriberKey) -> Option<&Subscription> {
        self.occupant(key).map(|o| &o.subscription)
    }

    /// The number of subscribers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no subscribers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of distinct exact topics some subscriber selects (`*` not
    /// counted).
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// Bounds the distinct patterns (templates, URL patterns) indexed at
    /// once: each is matched against every routed update's topics, so
    /// their number bounds what routing an update costs. A subscriber
    /// whose selectors would add a pattern past the bound is refused
    /// ([`Router::is_refused`]); patterns already indexed cost nothing more.
    /// Without a call, there is no bound.
    pub fn set_max_patterns(&mut self, max: usize) {
        self.max_patterns = max;
    }

    /// Whether indexing `key` stopped because a new pattern found no room
    /// ([`Router::set_max_patterns`]): remove it as any other subscriber.
    pub fn is_refused(&self, key: SubscriberKey) -> bool {
        self.slots
            .get(key.index as usize)
            .filter(|slot| slot.generation == key.generation)
            .and_then(|slot| slot.entry.as_ref())
            .is_some_and(|occupant| occupant.refused)
    }

    /// The number of distinct patterns (templates, URL patterns) some
    /// subscriber selects: each is matched against every routed update's
    /// topics.
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// The subscribers and their values.
    pub fn iter(&self) -> impl Iterator<Item = (SubscriberKey, &T)> {
        self.slots.iter().zip(0u32..).filter_map(|(slot, index)| {
            let key = SubscriberKey {
                index,
                generation: slot.generation,
            };
            slot.entry.as_ref().map(|o| (key, &o.value))
        })
    }

    /// The subscribers and their values, mutably (for example to send a
    /// heartbeat to all).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (SubscriberKey, &mut T)> {
        self.slots
            .iter_mut()
            .zip(0u32..)
            .filter_map(|(slot, index)| {
                let key = SubscriberKey {
                    index,
                    generation: slot.generation,
                };
                slot.entry.as_mut().map(|o| (key, &mut o.value))
            })
    }

    /// Delivers an update with these `topics` to every subscriber whose
    /// subscription [accepts](Subscription::accepts) it, once each, in no
    /// particular order.
    ///
    /// `deliver` is called once per such subscriber and returns whether to
    /// keep it; the ones it returns `false` for (say, their queue
    /// overflowed) are removed after the walk and handed to `removed` with
    /// their key, subscription and value.
    ///
    /// Returns the number of subscribers `deliver` was called for, including
    /// those then removed.
    pub fn route<Top: AsRef<str>>(
        &mut self,
        topics: &[Top],
        private: bool,
        deliver: impl FnMut(SubscriberKey, &mut T) -> bool,
        mut removed: impl FnMut(SubscriberKey, Subscription, T),
    ) -> usize {
        // A subscriber sits at most once in each list, so when only one list
        // is walked no subscriber can be reached twice and the marks can be
        // left alone.
        let (single, dedup) = match topics {
            [] => return 0,
            [topic] => {
                let list = self.topics.get(topic.as_ref());
                let lists = usize::from(list.is_some())
                    + usize::from(!self.any.is_empty())
                    + self.patterns.len();
                (list, lists > 1)
            }
            _ => (None, true),
        };
        self.epoch = self.epoch.wrapping_add(1);
        let mut walk = Walk {
            slots: &mut self.slots,
            doomed: &mut self.doomed,
            deliver,
            topics,
            private,
            dedup,
            epoch: self.epoch,
            delivered: 0,
        };
        if let [_] = topics {
            if let Some(list) = single {
                walk.list(list);
            }
        } else {
            for topic in topics {
                if let Some(list) = self.topics.get(topic.as_ref()) {
                    walk.list(list);
                }
            }
        }
        walk.list(&self.any);
        // Each pattern against the topics, each topic parsed (as a URL)
        // at most once.
        if let [topic] = topics {
            let topic = Topic::new(topic.as_ref());
            for (pattern, list) in &self.patterns {
                if pattern.matches_topic(&topic) {
                    walk.list(list);
                }
            }
        } else if !self.patterns.is_empty() {
            let prepared: Vec<Topic<'_>> = topics.iter().map(|t| Topic::new(t.as_ref())).collect();
            for (pattern, list) in &self.patterns {
                if prepared.iter().any(|t| pattern.matches_topic(t)) {
                    walk.list(list);
                }
            }
        }
        let delivered = walk.delivered;

        if !self.doomed.is_empty() {
            let mut doomed = core::mem::take(&mut self.doomed);
            for &index in &doomed {
                let Some(generation) = self.slots.get(index as usize).map(|s| s.generation) else {
                    continue;
                };
                let key = SubscriberKey { index, generation };
                if let Some((subscription, value)) = self.remove(key) {
                    removed(key, subscription, value);
                }
            }
            doomed.clear();
            self.doomed = doomed;
        }
        delivered
    }

    fn occupant_mut(&mut self, key: SubscriberKey) -> Option<&mut Occupant<T>> {
        self.slots
            .get_mut(key.index as usize)
            .filter(|slot| slot.generation == key.generation)?
            .entry
            .as_mut()
    }

    fn occupant(&self, key: SubscriberKey) -> Option<&Occupant<T>> {
        self.slots
            .get(key.index as usize)
            .filter(|slot| slot.generation == key.generation)?
            .entry
            .as_ref()
    }
}

/// Takes the entry at `position` out of an index `list` (of `selector`) by
/// moving the last entry into its place, and tells the moved slot its new
/// position.
fn unlink<T>(slots: &mut [Slot<T>], list: &mut Vec<u32>, position: u32, selector: &Selector) {
    let position_usize = position as usize;
    if position_usize >= list.len() {
        debug_assert!(false, "index position out of range");
        return;
    }
    list.swap_remove(position_usize);
    let Some(&moved) = list.get(position_usize) else {
        return; // It was the last entry.
    };
    let Some(occupant) = slots
        .get_mut(moved as usize)
        .and_then(|slot| slot.entry.as_mut())
    else {
        return;
    };
    // The selectors are sorted, and the moved slot holds `selector` (it was
    // in its list).
    if let Ok(i) = occupant.subscription.selectors.binary_search(selector) {
        if let Some(p) = occupant.positions.get_mut(i) {
            *p = position;
        }
    }
}

/// The state of one [`Router::route`] walk over the index lists.
struct Walk<'a, T, Top, D> {
    slots: &'a mut [Slot<T>],
    doomed: &'a mut Vec<u32>,
    deliver: D,
    topics: &'a [Top],
    private: bool,
    dedup: bool,
    epoch: u64,
    delivered: usize,
}

impl<T, Top: AsRef<str>, D: FnMut(SubscriberKey, &mut T) -> bool> Walk<'_, T, Top, D> {
    /// Delivers to the subscribers of one index list.
    #[inline]
    fn list(&mut self, list: &[u32]) {
        for &index in list {
            let Some(slot) = self.slots.get_mut(index as usize) else {
                continue;
            };
            if self.dedup {
                if slot.mark == self.epoch {
                    continue;
                }
                slot.mark = self.epoch;
            }
            let Some(occupant) = slot.entry.as_mut().filter(|o| o.active) else {
                continue;
            };
            if self.private && !any_matches(&occupant.subscription.private_access, self.topics) {
                continue;
            }
            self.delivered += 1;
            let key = SubscriberKey {
                index,
                generation: slot.generation,
            };
            if !(self.deliver)(key, &mut occupant.value) {
                self.doomed.push(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    /// Routes and returns the sorted values delivered to.
    fn route_values(router: &mut Router<u32>, topics: &[&str], private: bool) -> Vec<u32> {
        let mut got = Vec::new();
        let n = router.route(
            topics,
            private,
            |_, v| {
                got.push(*v);
                true
            },
            |_, _, _| panic!("nothing is removed"),
        );
        assert_eq!(n, got.len());
        got.sort_unstable();
        got
    }

    /// Checks that every slot's stored positions point back at it.
    fn check_index<T>(router: &Router<T>) {
        let mut entries = 0;
        for (i, slot) in router.slots.iter().enumerate() {
            let Some(o) = &slot.entry else { continue };
            assert_eq!(o.positions.len(), o.subscription.selectors.len());
            let indexed = o.subscription.selectors.iter().zip(o.positions.iter());
            for (sel, &p) in indexed.take(o.indexed) {
                let list = match sel {
                    Selector::Any => &router.any,
                    Selector::Exact(t) => &router.topics[t.as_str()],
                    Selector::Pattern(p) => &router.patterns[p],
                };
                assert_eq!(list[p as usize] as usize, i);
                entries += 1;
            }
        }
        let indexed: usize = router.topics.values().map(Vec::len).sum::<usize>()
            + router.patterns.values().map(Vec::len).sum::<usize>()
            + router.any.len();
        assert_eq!(indexed, entries);
        assert!(router.topics.values().all(|l| !l.is_empty()));
        assert!(router.patterns.values().all(|l| !l.is_empty()));
    }

    #[test]
    fn selectors_parse_and_display() {
        assert_eq!(Selector::new("*"), Selector::Any);
        assert_eq!(Selector::from(String::from("*")), Selector::Any);
        assert_eq!(
            Selector::from(Str::from("a")),
            Selector::Exact(Str::from("a"))
        );
        assert_eq!(Selector::new("**").as_str(), "**");
        assert_eq!(alloc::format!("{}", Selector::Any), "*");
        assert!(Selector::Any.matches("anything"));
        assert!(Selector::new("a").matches("a"));
        assert!(!Selector::new("a").matches("A"));
        assert!(Selector::Any < Selector::new(""));
    }

    #[test]
    fn accepts_follows_the_rule() {
        let public = Subscription::new(["a", "b"]);
        assert!(public.accepts(&["b"], false));
        assert!(public.accepts(&["x", "a"], false));
        assert!(!public.accepts(&["x"], false));
        assert!(!public.accepts(&["a"], true));
        assert!(!public.accepts::<&str>(&[], false));

        let any = Subscription::new(["*"]).with_private_access(["*"]);
        assert!(any.accepts(&["x"], true));
        assert!(!any.accepts::<&str>(&[], false));

        let split = Subscription::new(["a"]).with_private_access(["b", "*"]);
        assert!(split.accepts(&["a"], true));
        assert_eq!(split.private_access(), [Selector::Any, Selector::new("b")]);
        assert!(!Subscription::default().accepts(&["a"], false));
    }

    #[test]
    fn routes_to_exact_and_any_once() {
        let mut router = Router::new();
        router.insert(Subscription::new(["a"]), 1);
        router.insert(Subscription::new(["b"]), 2);
        router.insert(Subscription::new(["*", "a", "b"]), 3);
        router.insert(Subscription::new(["a", "b"]).with_private_access(["b"]), 4);
        assert_eq!(route_values(&mut router, &["a"], false), [1, 3, 4]);
        assert_eq!(
            route_values(&mut router, &["a", "b", "a"], false),
            [1, 2, 3, 4]
        );
        assert_eq!(route_values(&mut router, &["c"], false), [3]);
        assert_eq!(route_values(&mut router, &["a"], true), [] as [u32; 0]);
        assert_eq!(route_values(&mut router, &["a", "b"], true), [4]);
        assert_eq!(route_values(&mut router, &[], false), [] as [u32; 0]);
        assert_eq!(router.topic_count(), 2);
    }

    #[test]
    fn removal_back_patches_positions() {
        let mut router = Router::new();
        let keys: Vec<_> = (0..20u32)
            .map(|i| {
                let sel: &[&str] = match i % 4 {
                    0 => &["a"],
                    1 => &["a", "b"],
                    2 => &["*", "b"],
                    _ => &["*", "a", "c"],
                };
                router.insert(Subscription::new(sel.iter().copied()), i)
            })
            .collect();
        check_index(&router);
        for &i in &[3usize, 0, 19, 7, 8, 1, 12, 2] {
            assert_eq!(router.remove(keys[i]).map(|(_, v)| v), Some(i as u32));
            check_index(&router);
        }
        assert_eq!(router.len(), 12);
        for &key in &keys {
            router.remove(key);
            check_index(&router);
        }
        assert!(router.is_empty());
        assert_eq!(router.topic_count(), 0);
        assert!(router.any.is_empty());
    }

    #[test]
    fn stale_keys_do_not_match_reused_slots() {
        let mut router = Router::new();
        let old = router.insert(Subscription::new(["a"]), 1);
        assert_eq!(
            router.remove(old).map(|(s, v)| (s.selectors().len(), v)),
            Some((1, 1))
        );
        let new = router.insert(Subscription::new(["b"]), 2);
        assert_eq!(new.index, old.index, "the slot is reused");
        assert_ne!(new, old);
        assert_eq!(router.get(old), None);
        assert_eq!(router.get_mut(old), None);
        assert_eq!(router.subscription(old), None);
        assert!(router.remove(old).is_none());
        assert!(!router.contains(old));
        assert_eq!(router.get(new), Some(&2));
        assert_eq!(router.len(), 1);
    }

    #[test]
    fn exhausted_generations_retire_the_slot() {
        let mut router = Router::new();
        let key = router.insert(Subscription::new(["a"]), ());
        router.slots[0].generation = u32::MAX;
        let last = SubscriberKey {
            generation: u32::MAX,
            ..key
        };
        assert!(router.remove(last).is_some());
        let next = router.insert(Subscription::new(["a"]), ());
        assert_eq!(next.index, 1);
        assert!(router.get(last).is_none());
    }

    #[test]
    fn route_removes_rejecting_subscribers_after_the_walk() {
        let mut router = Router::new();
        let keep = router.insert(Subscription::new(["a"]), 0u32);
        let drop = router.insert(Subscription::new(["*", "a"]), 10u32);
        let mut removed = Vec::new();
        let n = router.route(
            &["a", "b"],
            false,
            |_, v| {
                *v += 1;
                *v < 10
            },
            |k, s, v| removed.push((k, s, v)),
        );
        assert_eq!(n, 2);
        assert_eq!(removed, [(drop, Subscription::new(["*", "a"]), 11)]);
        assert_eq!(router.get(keep), Some(&1));
        assert_eq!(router.len(), 1);
        assert!(router.any.is_empty());
        check_index(&router);
        // The scratch list keeps its allocation.
        assert!(router.doomed.is_empty() && router.doomed.capacity() > 0);
    }

    #[test]
    fn iterates_live_subscribers() {
        let mut router = Router::new();
        let a = router.insert(Subscription::new(["a"]), 1);
        let b = router.insert(Subscription::new(["b"]), 2);
        router.remove(a);
        for (_, v) in router.iter_mut() {
            *v *= 10;
        }
        assert_eq!(router.iter().collect::<Vec<_>>(), vec![(b, &20)]);
        assert_eq!(alloc::format!("{router:?}").matches("20").count(), 1);
    }

    #[test]
    fn staged_insertion_and_removal_route_nothing_until_complete() {
        let mut router = Router::new();
        let selectors: Vec<String> = (0..10).map(|i| alloc::format!("t{i}")).collect();
        let other = router.insert(Subscription::new(["t3"]), 0);
        let key = router.insert_inactive(Subscription::new(selectors.clone()), 1);
        assert_eq!(route_values(&mut router, &["t0", "t3"], false), [0]);
        assert!(!router.index_some(key, 4));
        check_index(&router);
        // Half indexed: still nothing routed to it, even for an indexed topic.
        assert_eq!(route_values(&mut router, &["t0", "t3"], false), [0]);
        assert!(!router.index_some(key, 4));
        assert!(router.index_some(key, 4));
        assert!(router.index_some(key, 4), "already complete");
        check_index(&router);
        assert_eq!(route_values(&mut router, &["t9"], false), [1]);
        assert_eq!(route_values(&mut router, &["t3"], false), [0, 1]);
        // Removal in steps: no longer routed to from the first.
        assert!(router.deactivate(key));
        assert!(
            !router.index_some(key, 100),
            "a retiring subscriber stays out"
        );
        assert_eq!(route_values(&mut router, &["t3"], false), [0]);
        assert!(!router.unindex_some(key, 3));
        check_index(&router);
        assert!(router.unindex_some(key, 100));
        check_index(&router);
        assert_eq!(router.topic_count(), 1);
        assert_eq!(router.remove(key).map(|(_, v)| v), Some(1));
        assert_eq!(router.len(), 1);
        assert_eq!(router.get(other), Some(&0));
        assert!(!router.deactivate(key), "a stale key");
        assert!(router.unindex_some(key, 1));
    }

    #[test]
    fn many_selectors_match_by_search() {
        let selectors: Vec<String> = (0..1000).map(|i| alloc::format!("s{i:04}")).collect();
        let sub = Subscription::new(selectors.clone());
        assert!(sub.accepts(&["nope", "s0999"], false));
        assert!(sub.accepts(&["s0000"], false));
        assert!(!sub.accepts(&["s1000", "s", ""], false));
        for s in &selectors {
            assert!(sub.accepts(&[s.as_str()], false));
        }
        let sub = sub.with_private_access(["s0500", "s0501", "s0502", "s0503"]);
        assert!(sub.accepts(&["s0001", "s0503"], true));
        assert!(!sub.accepts(&["s0001"], true));
    }
}
