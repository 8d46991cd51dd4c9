//! The broker's fan-out against a naive model: one plain queue per
//! subscriber, with the same limits, and a replay read from the history
//! when the subscriber receives. Subscribers with the same subscription
//! share one channel inside the broker; whatever they do (subscribe with a
//! replay, read, fall behind, leave) each must receive exactly what its own
//! queue would hold, be cut off exactly when its own queue would overflow
//! or the history evicts a replay it has not read, and the backlog count
//! must follow.
#![cfg(feature = "broker")]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use sse_proto::server::{
    Broker, BrokerConfig, Cursor, Ended, ReplayConfig, Subscriber, Subscription, Update,
};

/// The time passed to the broker (the core reads no clock; a test may).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

const TOPICS: [&str; 3] = ["a", "b", "c"];
const MAX_FRAMES: usize = 4;
const MAX_BYTES: usize = 120;
/// What one subscriber counts for in the backlog, at most.
const COUNTED: u64 = 256;

#[derive(Clone, Debug)]
enum Op {
    /// Subscribe to one of three subscriptions, live or from the earliest.
    Subscribe { subscription: usize, earliest: bool },
    /// Publish to a topic with data of this length.
    Publish { topic: usize, len: usize },
    /// Receive on the n-th live subscriber (modulo their number).
    Recv(usize),
    /// Poll for lag on the n-th subscriber.
    PollLagged(usize),
    /// Drop the n-th subscriber.
    Drop(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3usize, any::<bool>())
            .prop_map(|(subscription, earliest)| Op::Subscribe { subscription, earliest }),
        4 => (0..3usize, 0..60usize).prop_map(|(topic, len)| Op::Publish { topic, len }),
        3 => any::<usize>().prop_map(Op::Recv),
        1 => any::<usize>().prop_map(Op::PollLagged),
        1 => any::<usize>().prop_map(Op::Drop),
    ]
}

/// The three subscriptions: two share topic `a`, one takes everything.
fn subscription(n: usize) -> Subscription {
    match n {
        0 => Subscription::new(["a"]),
        1 => Subscription::new(["a", "b"]),
        _ => Subscription::new(["*"]),
    }
}

fn accepts(n: usize, topic: &str) -> bool {
    match n {
        0 => topic == "a",
        1 => topic == "a" || topic == "b",
        _ => true,
    }
}

/// A plain queue per subscriber.
struct Model {
    subscription: usize,
    /// The sequence numbers of the history still to replay (first, last).
    replay: Option<(u64, u64)>,
    live: VecDeque<Bytes>,
    lagged: bool,
}

impl Model {
    fn live_bytes(&self) -> usize {
        self.live.iter().map(Bytes::len).sum()
    }
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let broker = Broker::new(
        BrokerConfig::new()
            // Numbered ids (`id: {seq}`), as the model writes its frames.
            .id_prefix("")
            .replay(ReplayConfig::new().max_events(6))
            .queue(MAX_FRAMES, MAX_BYTES),
    );
    // (sequence number, topic, frame)
    let mut history: VecDeque<(u64, usize, Bytes)> = VecDeque::new();
    let mut last_seq = 0;
    let mut subs: Vec<(Subscriber, Model, Arc<CountingWaker>)> = Vec::new();
    let mut lagged_total = 0u64;
    for op in ops {
        match op {
            Op::Subscribe {
                subscription: n,
                earliest,
            } => {
                let cursor = if earliest {
                    Cursor::Earliest
                } else {
                    Cursor::Live
                };
                let sub = broker.subscribe(subscription(n), cursor, now());
                let replay = match history.front() {
                    Some(&(first, _, _)) if earliest => Some((first, last_seq)),
                    _ => None,
                };
                let model = Model {
                    subscription: n,
                    replay,
                    live: VecDeque::new(),
                    lagged: false,
                };
                subs.push((sub, model, Arc::default()));
            }
            Op::Publish { topic, len } => {
                let published = broker
                    .publish(Update::new(TOPICS[topic], "x".repeat(len)), now())
                    .unwrap();
                let frame = format!("id: {}\ndata: {}\n\n", published.seq, "x".repeat(len));
                let frame = Bytes::from(frame);
                let mut readers = 0;
                for (_, model, waker) in &mut subs {
                    if model.lagged || !accepts(model.subscription, TOPICS[topic]) {
                        continue;
                    }
                    let limit = MAX_BYTES.max(frame.len());
                    if model.live.len() >= MAX_FRAMES || model.live_bytes() + frame.len() > limit {
                        model.lagged = true;
                        model.replay = None;
                        model.live.clear();
                        lagged_total += 1;
                        let _ = waker;
                    } else {
                        model.live.push_back(frame.clone());
                        readers += 1;
                    }
                }
                prop_assert_eq!(published.subscribers, readers);
                last_seq = published.seq;
                history.push_back((published.seq, topic, frame));
                if history.len() > 6 {
                    history.pop_front();
                }
            }
            Op::Recv(i) if !subs.is_empty() => {
                let i = i % subs.len();
                let (sub, model, waker) = &mut subs[i];
                let mut out = Vec::new();
                let waker_handle = Waker::from(waker.clone());
                let mut cx = Context::from_waker(&waker_handle);
                let polled = sub.poll_recv(&mut cx, &mut out, now());
                // The replay comes first, on its own; then live frames.
                let mut expected: Vec<Bytes> = Vec::new();
                if let Some((next, end)) = model.replay.take() {
                    if history.front().is_none_or(|&(first, _, _)| first > next) {
                        // Evicted before it was read: cut off.
                        model.lagged = true;
                        model.live.clear();
                        lagged_total += 1;
                    } else {
                        expected = history
                            .iter()
                            .filter(|(seq, t, _)| {
                                (next..=end).contains(seq)
                                    && accepts(model.subscription, TOPICS[*t])
                            })
                            .map(|(_, _, f)| f.clone())
                            .collect();
                    }
                }
                if expected.is_empty() {
                    expected = model.live.drain(..).collect();
                }
                if model.lagged {
                    prop_assert_eq!(polled, Poll::Ready(Err(Ended::Lagged)));
                    prop_assert!(out.is_empty());
                } else if expected.is_empty() {
                    prop_assert_eq!(polled, Poll::Pending);
                } else {
                    prop_assert_eq!(polled, Poll::Ready(Ok(())));
                    prop_assert_eq!(out, expected);
                }
            }
            Op::PollLagged(i) if !subs.is_empty() => {
                let i = i % subs.len();
                let (sub, model, waker) = &mut subs[i];
                let waker_handle = Waker::from(waker.clone());
                let mut cx = Context::from_waker(&waker_handle);
                prop_assert_eq!(sub.poll_lagged(&mut cx), model.lagged);
            }
            Op::Drop(i) if !subs.is_empty() => {
                let i = i % subs.len();
                subs.swap_remove(i);
            }
            _ => {}
        }
        // The backlog: per subscription, the live frames waiting (at most
        // 256 per subscriber); a replay is read from the history.
        let mut expected = 0;
        for n in 0..3 {
            let group: Vec<&Model> = subs
                .iter()
                .map(|(_, m, _)| m)
                .filter(|m| m.subscription == n && !m.lagged)
                .collect();
            let live: u64 = group.iter().map(|m| m.live.len() as u64).sum();
            expected += live.min(COUNTED * group.len() as u64);
        }
        prop_assert_eq!(broker.queued(), expected);
        let stats = broker.stats();
        prop_assert_eq!(
            stats.subscribers,
            subs.iter().filter(|(_, m, _)| !m.lagged).count()
        );
        prop_assert_eq!(stats.lagged, lagged_total);
    }
    drop(subs);
    prop_assert_eq!(broker.queued(), 0);
    prop_assert_eq!(broker.subscribers(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn shared_channels_behave_as_one_queue_per_subscriber(ops in prop::collection::vec(op(), 1..120)) {
        check(ops)?;
    }
}

/// A publish wakes a waiting subscriber, and one that lags is woken too
/// (so that a writer blocked on its socket notices it was cut off).
#[test]
fn waiting_members_are_woken_by_a_publish_and_by_being_cut_off() {
    let broker = Broker::new(BrokerConfig::new().queue(2, 1 << 20));
    let mut fast = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    let mut slow = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    let (fast_wakes, slow_wakes) = (
        Arc::new(CountingWaker::default()),
        Arc::new(CountingWaker::default()),
    );
    let fast_waker = Waker::from(fast_wakes.clone());
    let slow_waker = Waker::from(slow_wakes.clone());
    let mut out = Vec::new();
    assert!(
        fast.poll_recv(&mut Context::from_waker(&fast_waker), &mut out, now())
            .is_pending()
    );
    assert!(!slow.poll_lagged(&mut Context::from_waker(&slow_waker)));
    broker.publish(Update::new("t", "1"), now()).unwrap();
    assert_eq!(fast_wakes.0.load(Ordering::SeqCst), 1);
    assert_eq!(slow_wakes.0.load(Ordering::SeqCst), 1);
    // Not waiting any more: a second publish wakes neither.
    broker.publish(Update::new("t", "2"), now()).unwrap();
    assert_eq!(fast_wakes.0.load(Ordering::SeqCst), 1);
    assert_eq!(slow_wakes.0.load(Ordering::SeqCst), 1);
    // The slow one waits for its cut-off; the third frame overflows it.
    assert!(!slow.poll_lagged(&mut Context::from_waker(&slow_waker)));
    assert_eq!(fast.try_recv(&mut out, now()), Ok(2));
    broker.publish(Update::new("t", "3"), now()).unwrap();
    assert_eq!(slow_wakes.0.load(Ordering::SeqCst), 2);
    assert!(slow.poll_lagged(&mut Context::from_waker(&slow_waker)));
    assert_eq!(fast.try_recv(&mut out, now()), Ok(1));
}
