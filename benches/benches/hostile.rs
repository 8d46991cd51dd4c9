//! A hostile subscriber against the broker: how long does it hold the lock
//! that every publish and subscribe shares?
//!
//! The setting is the worst the hub allows: a history of 10 000 updates of
//! 1000 topics each, and an attacker subscribing with 1000 selectors that
//! match nothing and an unknown `Last-Event-ID` (so that it asks for a
//! replay of the whole history), over and over.
//!
//! * `hostile/locked_step`: each piece of work the broker does under its
//!   lock for such a subscriber, timed alone: indexing a chunk of its
//!   selectors (`Router::index_some`), taking them out again
//!   (`Router::unindex_some`), resolving its cursor in the history
//!   (`ReplayLog::seek`), and copying one piece of the replay out of the
//!   history (a `*` replay; others read their entries by position after
//!   looking their selectors up in the broker's topic index, 256 units of
//!   work per hold). The slowest of these is the longest a hostile
//!   subscribe holds the lock (the target is under 50 µs). Beside them, a
//!   whole publish of 1000 topics, which routes and indexes every topic
//!   under the lock.
//! * `hostile/publish`: a one-topic publish on that broker, alone and while
//!   an attacker thread loops hostile subscribes (subscribe, read the first
//!   batch of its replay, drop). A publish waits for whatever lock hold is
//!   under way, so the difference is what the attacker costs others.
//!
//! Before the timed runs, 20 000 publishes are timed one by one, quiet and
//! under attack, and their median, 99th percentile and maximum are printed:
//! the maximum bounds the longest lock hold the publisher ran into.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Waker};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::Criterion;
use sse_proto::Str;
// The broker's constants come with sse-tokio's `broker` feature of sse-proto.
use sse_proto::server::{
    INDEX_CHUNK, REPLAY_PIECE, ReplayConfig, ReplayLog, Router, Seek, SubscriberKey, Subscription,
};
use sse_tokio::server::{Broker, BrokerConfig, Cursor, Subscriber, Update};

const HISTORY: usize = 10_000;
const TOPICS_PER_UPDATE: usize = 1000;
const SELECTORS: usize = 1000;

fn topics() -> Vec<Str> {
    (0..TOPICS_PER_UPDATE)
        .map(|i| Str::from(format!("https://example.com/t/{i:04}")))
        .collect()
}

/// An update carrying `data` to every one of `topics` (at least one).
fn update_to_all(topics: &[Str], data: impl Into<Str>) -> Update {
    let mut update = Update::new(topics[0].clone(), data);
    for topic in &topics[1..] {
        update = update.topic(topic.clone());
    }
    update
}

/// 1000 selectors that match none of the topics.
fn hostile_subscription() -> Subscription {
    Subscription::new((0..SELECTORS).map(|i| format!("https://example.com/x/{i:04}")))
}

/// A broker holding the whole history (the byte bound raised so that
/// 10 000 updates of 1000 topics fit).
fn loaded_broker() -> Broker {
    let broker = Broker::new(
        BrokerConfig::new()
            .replay(ReplayConfig::new().max_events(HISTORY).max_bytes(1 << 31))
            .max_topics(TOPICS_PER_UPDATE),
    );
    let topics = topics();
    for n in 0..HISTORY {
        let update = update_to_all(&topics, format!("event {n}"));
        broker.publish(update, Instant::now()).expect("publish");
    }
    assert_eq!(broker.stats().history, HISTORY);
    broker
}

/// One hostile subscribe: subscribe, take the first batch of the replay
/// (there is none to take: nothing matches; the broker yields after a
/// bounded scan), drop.
fn hostile_subscribe(broker: &Broker, out: &mut Vec<Bytes>) {
    let now = Instant::now();
    let mut sub: Subscriber = broker.subscribe(
        hostile_subscription(),
        Cursor::After("unknown-id".into()),
        now,
    );
    let mut cx = Context::from_waker(Waker::noop());
    let _ = sub.poll_recv(&mut cx, out, now);
    out.clear();
    drop(sub);
}

/// Publish latencies, one by one.
fn publish_latencies(broker: &Broker, n: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        broker
            .publish(
                Update::new("https://example.com/live", format!("{i}")),
                Instant::now(),
            )
            .expect("publish");
        times.push(start.elapsed());
    }
    times.sort_unstable();
    times
}

fn summary(label: &str, times: &[Duration]) {
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
    eprintln!(
        "hostile/publish latency {label}: median {:?}, p99 {:?}, max {:?} ({} publishes)",
        at(0.5),
        at(0.99),
        times[times.len() - 1],
        times.len()
    );
}

/// Runs `f` while an attacker thread loops hostile subscribes; returns
/// what `f` returned and how many subscribes the attacker made.
fn under_attack<R>(broker: &Broker, f: impl FnOnce() -> R) -> (R, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (broker, stop, count) = (broker.clone(), stop.clone(), count.clone());
        thread::spawn(move || {
            let mut out = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                hostile_subscribe(&broker, &mut out);
                count.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Let it get going.
    while count.load(Ordering::Relaxed) < 10 {
        thread::yield_now();
    }
    let result = f();
    stop.store(true, Ordering::Relaxed);
    attacker.join().expect("attacker");
    (result, count.load(Ordering::Relaxed))
}

fn locked_steps(c: &mut Criterion) {
    let mut group = c.benchmark_group("hostile/locked_step");

    // Indexing one chunk of a new subscription's selectors, in a router
    // that already indexes the topics of many ordinary subscribers.
    let mut router: Router<()> = Router::new();
    for i in 0..10_000 {
        router.insert(
            Subscription::new([format!("https://example.com/t/{i:05}")]),
            (),
        );
    }
    let subscription = hostile_subscription();
    // Each step is timed alone: the subscription goes in (not indexed yet,
    // or wholly indexed) before the clock starts and comes out after it.
    type Insert = fn(&mut Router<()>, Subscription, ()) -> SubscriberKey;
    type Step = fn(&mut Router<()>, SubscriberKey, usize) -> bool;
    let steps: [(&str, Insert, Step); 2] = [
        ("index_chunk", Router::insert_inactive, Router::index_some),
        ("unindex_chunk", Router::insert, Router::unindex_some),
    ];
    for (name, insert, step) in steps {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let key = insert(&mut router, subscription.clone(), ());
                    let start = Instant::now();
                    black_box(step(&mut router, key, INDEX_CHUNK));
                    total += start.elapsed();
                    router.remove(key);
                }
                total
            });
        });
    }

    // The history: 10 000 entries (the metadata stands for the topics).
    let shared_topics: Arc<[Str]> = topics().into();
    let mut log: ReplayLog<Arc<[Str]>, Instant> =
        ReplayLog::new(ReplayConfig::new().max_events(HISTORY).max_bytes(1 << 31));
    for n in 0..HISTORY {
        let frame = Bytes::from(format!("id: {n}\ndata: event {n}\n\n"));
        log.push(
            Str::from(format!("{n}")),
            frame,
            shared_topics.clone(),
            Instant::now(),
        );
    }
    group.bench_function("seek_unknown_cursor", |b| {
        b.iter(|| black_box(log.seek(black_box("unknown-id"))));
    });
    group.bench_function("seek_known_cursor", |b| {
        b.iter(|| {
            let Seek::Found { after, .. } = log.seek(black_box("5000")) else {
                unreachable!("retained");
            };
            black_box(after)
        });
    });
    let mut piece: Vec<(Bytes, Arc<[Str]>)> = Vec::with_capacity(REPLAY_PIECE);
    group.bench_function("replay_piece", |b| {
        b.iter(|| {
            piece.extend(
                log.since(black_box(5000))
                    .take(REPLAY_PIECE)
                    .map(|e| (e.frame().clone(), e.meta().clone())),
            );
            // Dropped outside the lock in the broker; here with the copy.
            piece.clear();
        });
    });
    // Not a subscriber's step: a publish of 1000 topics (the most an
    // update may have) routes and indexes each topic under the lock; this
    // is the whole publish, an upper bound of that hold.
    let broker = Broker::new(
        BrokerConfig::new()
            .replay(ReplayConfig::new().max_events(1000).max_bytes(1 << 31))
            .max_topics(TOPICS_PER_UPDATE),
    );
    let many = topics();
    group.bench_function("publish_1000_topics", |b| {
        b.iter_batched(
            || update_to_all(&many, "x"),
            |update| broker.publish(update, Instant::now()).expect("publish"),
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn publish_while_attacked(c: &mut Criterion) {
    let broker = loaded_broker();
    let quiet = publish_latencies(&broker, 20_000);
    summary("quiet", &quiet);
    let (attacked, subscribes) = under_attack(&broker, || publish_latencies(&broker, 20_000));
    summary("under attack", &attacked);
    eprintln!("hostile/publish: the attacker made {subscribes} hostile subscribes meanwhile");

    let mut group = c.benchmark_group("hostile/publish");
    group.bench_function("quiet", |b| {
        b.iter(|| {
            broker
                .publish(Update::new("https://example.com/live", "x"), Instant::now())
                .expect("publish")
        });
    });
    let (_, subscribes) = under_attack(&broker, || {
        group.bench_function("under_attack", |b| {
            b.iter(|| {
                broker
                    .publish(Update::new("https://example.com/live", "x"), Instant::now())
                    .expect("publish")
            });
        });
    });
    eprintln!("hostile/publish: {subscribes} hostile subscribes during the timed run");
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    locked_steps(&mut c);
    publish_while_attacked(&mut c);
    c.final_summary();
}
