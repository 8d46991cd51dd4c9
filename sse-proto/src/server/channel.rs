//! The fan-out channel behind the [`Broker`](super::Broker): subscribers
//! with the same subscription share one channel, so a publish appends its
//! frame once however many of them there are, and each member reads from
//! its own position.
//!
//! A channel is a ring of the frames that some member has not read yet,
//! oldest first. Each member has the position of the next frame it will
//! read; the ring starts at the slowest member's position and is trimmed as
//! that member reads. Every slot counts the members whose next frame it is,
//! so a read updates two counters whatever the number of frames it takes,
//! and the front is dropped when its count falls to zero.
//!
//! Limits: when a publish would make the ring hold more frames or bytes
//! than one subscriber's queue may, the members that far behind are ended
//! with [`Ended::Lagged`] and their share of the ring is released; the
//! publisher never waits. Members waiting for a frame are listed, so a
//! publish wakes those and touches no other member.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::task::Waker;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::broker::Ended;

/// The most frames one subscriber adds to the broker's backlog count: a
/// few stalled subscribers with full queues must not look like a backlog of
/// the whole broker.
const COUNTED_PER_MEMBER: u64 = 256;

/// A member's place in its channel.
pub(crate) type MemberId = u32;

/// Subscribers with one subscription: the frames published to them, read
/// by each at its own pace.
pub(crate) struct Channel {
    state: Mutex<State>,
}

struct Slot {
    frame: Bytes,
    /// Members whose next frame this is.
    at: u32,
}

struct State {
    /// Frames not yet read by every member; `ring[i]` is at position
    /// `base + i`.
    ring: VecDeque<Slot>,
    base: u64,
    /// Bytes of the frames in `ring`.
    bytes: usize,
    /// Reading members that have read everything (their next frame is the
    /// next one published).
    at_head: u32,
    /// Frames published and not yet read, summed over reading members.
    behind: u64,
    /// Members that still read live frames (not ended for lagging).
    readers: u32,
    members: Vec<Option<Member>>,
    /// Free places in `members`.
    free: Vec<MemberId>,
    /// Members with a waker to call at the next publish (an entry may be
    /// stale: [`Member::listed`] says whether it counts).
    waiting: Vec<MemberId>,
    /// What this channel adds to the broker's backlog count now.
    counted: i64,
}

struct Member {
    /// The subscriber's number (for its shutdown delay).
    key: u64,
    /// Position of the next live frame to read.
    next: u64,
    waker: Option<Waker>,
    /// Whether it is in `waiting`.
    listed: bool,
    end: Option<Ended>,
}

/// What a publish did to a channel.
pub(crate) struct Pushed {
    /// Members that will read the frame.
    pub readers: usize,
    /// Members ended for lagging by this publish.
    pub lagged: usize,
    /// The change to the broker's backlog count.
    pub counted: i64,
}

/// What a receive did.
pub(crate) struct Received {
    /// Frames moved out, or why the stream ended.
    pub result: Result<usize, Ended>,
    /// The change to the broker's backlog count.
    pub counted: i64,
}

/// What a member's leaving did.
pub(crate) struct Left {
    /// Members still in the channel.
    pub members: usize,
    /// Whether it was still reading (not ended for lagging).
    pub was_reader: bool,
    /// The change to the broker's backlog count.
    pub counted: i64,
}

impl Channel {
    /// An empty channel.
    pub(crate) fn new() -> Channel {
        Channel {
            state: Mutex::new(State {
                ring: VecDeque::new(),
                base: 0,
                bytes: 0,
                at_head: 0,
                behind: 0,
                readers: 0,
                members: Vec::new(),
                free: Vec::new(),
                waiting: Vec::new(),
                counted: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a member that reads every frame pushed from now on; `end` ends
    /// it at once (after a shutdown). Returns its place and the change to
    /// the backlog count.
    pub(crate) fn join(&self, key: u64, end: Option<Ended>) -> (MemberId, i64) {
        let mut state = self.lock();
        let next = state.head();
        let member = Member {
            key,
            next,
            waker: None,
            listed: false,
            end,
        };
        let id = match state.free.pop() {
            Some(id) => {
                if let Some(slot) = state.members.get_mut(id as usize) {
                    *slot = Some(member);
                }
                id
            }
            None => {
                state.members.push(Some(member));
                MemberId::try_from(state.members.len() - 1).unwrap_or(MemberId::MAX)
            }
        };
        state.readers += 1;
        state.at_head += 1;
        let counted = state.recount();
        (id, counted)
    }

    /// Appends a frame for every reading member, first ending those that
    /// would then be `max_frames` frames or more than `max_bytes` bytes
    /// behind; the wakers of waiting members go to `wake`.
    pub(crate) fn push(
        &self,
        frame: &Bytes,
        max_frames: usize,
        max_bytes: usize,
        wake: &mut Vec<Waker>,
    ) -> Pushed {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.readers == 0 {
            return Pushed {
                readers: 0,
                lagged: 0,
                counted: 0,
            };
        }
        let lagged = state.make_room(frame.len(), max_frames, max_bytes, wake);
        state.ring.push_back(Slot {
            frame: frame.clone(),
            at: core::mem::take(&mut state.at_head),
        });
        state.bytes += frame.len();
        state.behind += u64::from(state.readers);
        for id in state.waiting.drain(..) {
            if let Some(Some(member)) = state.members.get_mut(id as usize) {
                if core::mem::take(&mut member.listed) {
                    if let Some(waker) = member.waker.take() {
                        wake.push(waker);
                    }
                }
            }
        }
        let counted = state.recount();
        Pushed {
            readers: state.readers as usize,
            lagged,
            counted,
        }
    }

    /// Moves every frame the member has not read to `out`. With nothing to move: `Ok(0)`, after registering `waker`
    /// (when given) for the next frame or the end; or the end, once the
    /// stream has ended. A member ended for lagging gets nothing more.
    pub(crate) fn recv(
        &self,
        id: MemberId,
        out: &mut Vec<Bytes>,
        waker: Option<&Waker>,
    ) -> Received {
        let mut guard = self.lock();
        let state = &mut *guard;
        let head = state.head();
        let base = state.base;
        let Some(Some(member)) = state.members.get_mut(id as usize) else {
            return Received {
                result: Err(Ended::Lagged),
                counted: 0,
            };
        };
        if member.end == Some(Ended::Lagged) {
            return Received {
                result: Err(Ended::Lagged),
                counted: 0,
            };
        }
        let from = member.next;
        let live = usize::try_from(head - from).unwrap_or(0);
        if live > 0 {
            member.next = head;
            let start = usize::try_from(from - base).unwrap_or(0);
            out.extend(state.ring.range(start..).map(|slot| slot.frame.clone()));
            if let Some(slot) = state.ring.get_mut(start) {
                slot.at -= 1;
            }
            state.at_head += 1;
            state.behind -= live as u64;
            state.trim();
        }
        let moved = live;
        if moved == 0 {
            let Some(Some(member)) = state.members.get_mut(id as usize) else {
                return Received {
                    result: Err(Ended::Lagged),
                    counted: 0,
                };
            };
            if let Some(ended) = member.end {
                return Received {
                    result: Err(ended),
                    counted: 0,
                };
            }
            if let Some(waker) = waker {
                member.register(waker, id, &mut state.waiting);
            }
            state.compact_waiting();
            return Received {
                result: Ok(0),
                counted: 0,
            };
        }
        let counted = state.recount();
        Received {
            result: Ok(moved),
            counted,
        }
    }

    /// Whether the member was ended for lagging; otherwise registers
    /// `waker` for the next frame or the end.
    pub(crate) fn poll_lagged(&self, id: MemberId, waker: &Waker) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(Some(member)) = state.members.get_mut(id as usize) else {
            return true;
        };
        if member.end == Some(Ended::Lagged) {
            return true;
        }
        member.register(waker, id, &mut state.waiting);
        state.compact_waiting();
        false
    }

    /// Whether the member was ended for lagging.
    pub(crate) fn is_lagged(&self, id: MemberId) -> bool {
        let state = self.lock();
        !matches!(
            state.members.get(id as usize),
            Some(Some(member)) if member.end != Some(Ended::Lagged)
        )
    }

    /// Removes a member and releases its share of the ring.
    pub(crate) fn leave(&self, id: MemberId) -> Left {
        let mut guard = self.lock();
        let state = &mut *guard;
        let member = state.members.get_mut(id as usize).and_then(Option::take);
        let Some(member) = member else {
            return Left {
                members: state.len(),
                was_reader: false,
                counted: 0,
            };
        };
        state.free.push(id);
        let was_reader = member.end != Some(Ended::Lagged);
        if was_reader {
            state.release(member.next);
            state.trim();
        }
        if state.len() == 0 {
            state.members = Vec::new();
            state.free = Vec::new();
            state.waiting = Vec::new();
        }
        let counted = state.recount();
        Left {
            members: state.len(),
            was_reader,
            counted,
        }
    }

    /// Ends one member as lagging (its reading fell behind the history it
    /// was replaying); returns whether it was still reading, and the change
    /// to the backlog count.
    pub(crate) fn cut(&self, id: MemberId) -> (bool, i64) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(Some(member)) = state.members.get_mut(id as usize) else {
            return (false, 0);
        };
        if member.end == Some(Ended::Lagged) {
            return (false, 0);
        }
        member.end = Some(Ended::Lagged);
        member.listed = false;
        member.waker = None;
        let next = member.next;
        state.release(next);
        state.trim();
        (true, state.recount())
    }

    /// Ends every reading member as lagging (for
    /// [`Broker::discontinue`](super::Broker::discontinue)); returns how
    /// many, and the change to the backlog count.
    pub(crate) fn cut_all(&self, wake: &mut Vec<Waker>) -> (usize, i64) {
        let mut state = self.lock();
        let cut = state.cut_before(u64::MAX, wake);
        (cut, state.recount())
    }

    /// Ends every member that has not ended yet with `ended(key)`, and
    /// hands their wakers to `wake`. Frames already queued stay readable.
    pub(crate) fn end_all(&self, ended: impl Fn(u64) -> Ended, wake: &mut Vec<Waker>) {
        let mut state = self.lock();
        for member in state.members.iter_mut().flatten() {
            if member.end.is_none() {
                member.end = Some(ended(member.key));
            }
            member.listed = false;
            if let Some(waker) = member.waker.take() {
                wake.push(waker);
            }
        }
        state.waiting.clear();
    }
}

impl Member {
    fn register(&mut self, waker: &Waker, id: MemberId, waiting: &mut Vec<MemberId>) {
        match &mut self.waker {
            Some(old) if old.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        if !self.listed {
            self.listed = true;
            waiting.push(id);
        }
    }
}

impl State {
    /// The position of the next frame to be pushed.
    fn head(&self) -> u64 {
        self.base + self.ring.len() as u64
    }

    /// Members in the channel (reading or not).
    fn len(&self) -> usize {
        self.members.len() - self.free.len()
    }

    /// Takes a reading member whose next frame is at `next` out of the
    /// counts.
    fn release(&mut self, next: u64) {
        let head = self.head();
        self.readers -= 1;
        self.behind -= head - next;
        if next == head {
            self.at_head -= 1;
        } else if let Some(slot) = usize::try_from(next - self.base)
            .ok()
            .and_then(|i| self.ring.get_mut(i))
        {
            slot.at -= 1;
        }
    }

    /// Drops the front frames that no member will read any more.
    fn trim(&mut self) {
        while let Some(front) = self.ring.front() {
            if front.at > 0 {
                break;
            }
            self.bytes -= front.frame.len();
            self.base += 1;
            self.ring.pop_front();
        }
        if self.ring.is_empty() && self.ring.capacity() > 64 {
            // Give back what a burst grew.
            self.ring = VecDeque::new();
        }
    }

    /// Before a frame of `len` bytes is pushed: ends the members that would
    /// be `max_frames` frames or more than `max_bytes` bytes behind with
    /// it, and returns how many.
    fn make_room(
        &mut self,
        len: usize,
        max_frames: usize,
        max_bytes: usize,
        wake: &mut Vec<Waker>,
    ) -> usize {
        let max_bytes = max_bytes.max(len);
        // The first position a member may be at and stay.
        let mut keep = self.base;
        let mut frames = self.ring.len();
        let mut bytes = self.bytes;
        for slot in &self.ring {
            if frames < max_frames && bytes + len <= max_bytes {
                break;
            }
            frames -= 1;
            bytes -= slot.frame.len();
            keep += 1;
        }
        if keep == self.base {
            return 0;
        }
        self.cut_before(keep, wake)
    }

    /// Ends (as lagging) every reading member whose next frame is before
    /// `keep`, releases their share of the ring, and returns how many.
    fn cut_before(&mut self, keep: u64, wake: &mut Vec<Waker>) -> usize {
        let mut cut = Vec::new();
        for member in self.members.iter_mut().flatten() {
            if member.end != Some(Ended::Lagged) && member.next < keep {
                member.end = Some(Ended::Lagged);
                member.listed = false;
                if let Some(waker) = member.waker.take() {
                    wake.push(waker);
                }
                cut.push(member.next);
            }
        }
        for &next in &cut {
            self.release(next);
        }
        self.trim();
        cut.len()
    }

    /// Drops stale entries from `waiting` once they outnumber the members.
    fn compact_waiting(&mut self) {
        if self.waiting.len() <= 2 * self.members.len() + 16 {
            return;
        }
        let members = &mut self.members;
        self.waiting
            .retain(|&id| match members.get_mut(id as usize) {
                // Keep the first entry of a listed member: unlisting it here
                // drops its later duplicates; it is listed again below.
                Some(Some(member)) => core::mem::take(&mut member.listed),
                _ => false,
            });
        for &id in &self.waiting {
            if let Some(Some(member)) = self.members.get_mut(id as usize) {
                member.listed = true;
            }
        }
    }

    /// Updates this channel's share of the backlog count; returns the
    /// change. Frames count at most [`COUNTED_PER_MEMBER`] per reading
    /// member.
    fn recount(&mut self) -> i64 {
        let live = self
            .behind
            .min(COUNTED_PER_MEMBER * u64::from(self.readers));
        let now = i64::try_from(live).unwrap_or(i64::MAX);
        let change = now - self.counted;
        self.counted = now;
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waiting_len(channel: &Channel) -> usize {
        channel.lock().waiting.len()
    }

    #[test]
    fn members_that_come_and_go_while_waiting_do_not_grow_the_waiting_list() {
        let channel = Channel::new();
        let stay = Arc::new(Count::default());
        let (id, _) = channel.join(1, None);
        let mut out = Vec::new();
        let waker = Waker::from(stay.clone());
        assert_eq!(channel.recv(id, &mut out, Some(&waker)).result, Ok(0));
        // Each visitor waits, then leaves: its entry stays behind until a
        // publish or a compaction.
        for key in 2..200 {
            let (visitor, _) = channel.join(key, None);
            let noop = Waker::noop();
            assert_eq!(channel.recv(visitor, &mut out, Some(noop)).result, Ok(0));
            channel.leave(visitor);
            assert!(waiting_len(&channel) <= 2 * 2 + 16 + 1);
        }
        // The member that stayed is still listed, once.
        let mut wake = Vec::new();
        channel.push(&Bytes::from_static(b"data: x\n\n"), 16, 1 << 20, &mut wake);
        assert_eq!(wake.len(), 1);
        wake.into_iter().for_each(Waker::wake);
        assert_eq!(stay.0.load(Ordering::SeqCst), 1);
        assert_eq!(waiting_len(&channel), 0);
        assert_eq!(channel.recv(id, &mut out, None).result, Ok(1));
    }

    #[test]
    fn the_ring_keeps_only_what_some_member_has_not_read() {
        let channel = Channel::new();
        let (a, _) = channel.join(1, None);
        let (b, _) = channel.join(2, None);
        let mut wake = Vec::new();
        for _ in 0..3 {
            channel.push(&Bytes::from_static(b"data: x\n\n"), 16, 1 << 20, &mut wake);
        }
        let mut out = Vec::new();
        assert_eq!(channel.recv(a, &mut out, None).result, Ok(3));
        assert_eq!(channel.lock().ring.len(), 3, "b has read nothing");
        assert_eq!(channel.recv(b, &mut out, None).result, Ok(3));
        assert_eq!(channel.lock().ring.len(), 0);
        channel.push(&Bytes::from_static(b"data: y\n\n"), 16, 1 << 20, &mut wake);
        channel.leave(a);
        assert_eq!(channel.lock().ring.len(), 1, "b has not read it");
        channel.leave(b);
        let state = channel.lock();
        assert_eq!((state.ring.len(), state.bytes, state.behind), (0, 0, 0));
    }
}
