//! The broker: replay, routing, lag, shutdown, and the seam between history
//! and live events under concurrent publishes (real threads).
#![cfg(feature = "broker")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sse_proto::server::{
    Broker, BrokerConfig, Cursor, Ended, LOST_EVENT_TYPE, PublishError, Replay, ReplayConfig,
    Selector, SubscribeError, Subscriber, Subscription, Update,
};
use sse_proto::{Decoder, Event, Str};

/// The time passed to the broker (the core reads no clock; a test may).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn decode(frames: &[Bytes]) -> Vec<Event> {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for frame in frames {
        decoder.handle_chunk(frame.clone());
        while let Some(event) = decoder.poll_event().unwrap() {
            events.push(event);
        }
    }
    events
}

/// Everything queued for `sub` now (a replay comes a batch per receive).
fn drain(sub: &mut Subscriber) -> Vec<Event> {
    let mut frames = Vec::new();
    while let Ok(1..) = sub.try_recv(&mut frames, now()) {}
    decode(&frames)
}

fn data(events: &[Event]) -> Vec<&str> {
    events.iter().map(Event::data).collect()
}

/// Publishes one event to `topic` for each of `data`, in order; their ids.
fn publish_each(broker: &Broker, topic: &str, data: impl IntoIterator<Item = String>) -> Vec<Str> {
    data.into_iter()
        .map(|data| broker.publish(Update::new(topic, data), now()).unwrap().id)
        .collect()
}

/// A subscriber to `t` resuming after the event `id`.
fn resume_after(broker: &Broker, id: &Str) -> Subscriber {
    let cursor = Cursor::After(id.clone());
    broker.subscribe(Subscription::new(["t"]), cursor, now())
}

/// Publishes a `live` event to `topic` and checks that `sub` receives it,
/// and nothing else, next.
#[track_caller]
fn assert_receives_live(broker: &Broker, sub: &mut Subscriber, topic: &str) {
    broker.publish(Update::new(topic, "live"), now()).unwrap();
    assert_eq!(data(&drain(sub)), ["live"]);
}

#[test]
fn routes_by_topic_and_assigns_monotonic_ids() {
    let broker = Broker::new(BrokerConfig::new().id_prefix("run7-"));
    let mut news = broker.subscribe(Subscription::new(["news"]), Cursor::Live, now());
    let mut all = broker.subscribe(Subscription::new(["*"]), Cursor::Live, now());
    let mut both = broker.subscribe(Subscription::new(["news", "sport"]), Cursor::Live, now());
    let a = broker.publish(Update::new("news", "a"), now()).unwrap();
    let b = broker.publish(Update::new("sport", "b"), now()).unwrap();
    let c = broker
        .publish(Update::new("news", "c").topic("sport"), now())
        .unwrap();
    assert_eq!((&*a.id, &*b.id, &*c.id), ("run7-1", "run7-2", "run7-3"));
    assert_eq!((a.seq, b.seq, c.seq), (1, 2, 3));
    assert_eq!((a.subscribers, b.subscribers, c.subscribers), (3, 2, 3));
    assert_eq!(data(&drain(&mut news)), ["a", "c"]);
    assert_eq!(data(&drain(&mut all)), ["a", "b", "c"]);
    // Two matching topics, one delivery.
    let got = drain(&mut both);
    assert_eq!(data(&got), ["a", "b", "c"]);
    assert_eq!(got[2].id(), "run7-3");
}

#[test]
fn events_carry_type_id_retry_and_multiline_data() {
    let broker = Broker::new(BrokerConfig::new());
    let mut sub = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    broker
        .publish(
            Update::new("t", "one\r\ntwo\rthree\nfour")
                .event_type("chat")
                .unwrap()
                .id("mine")
                .unwrap()
                .retry(Duration::from_millis(1500)),
            now(),
        )
        .unwrap();
    let mut frames = Vec::new();
    sub.try_recv(&mut frames, now()).unwrap();
    assert_eq!(
        frames,
        [&b"retry: 1500\nid: mine\nevent: chat\ndata: one\ndata: two\ndata: three\ndata: four\n\n"[..]]
    );
    assert!(Update::new("t", "").event_type("a\nb").is_err());
    assert!(Update::new("t", "").id("a\0b").is_err());
    assert!(Update::new("t", "").id("a\rb").is_err());
}

#[test]
fn private_updates_need_private_access() {
    let broker = Broker::new(BrokerConfig::new());
    let mut public = broker.subscribe(Subscription::new(["*"]), Cursor::Live, now());
    let mut allowed = broker.subscribe(
        Subscription::new(["*"]).with_private_access(["user/1"]),
        Cursor::Live,
        now(),
    );
    broker
        .publish(Update::new("user/1", "secret").private(true), now())
        .unwrap();
    broker
        .publish(Update::new("user/2", "other").private(true), now())
        .unwrap();
    broker
        .publish(Update::new("user/2", "open"), now())
        .unwrap();
    assert_eq!(data(&drain(&mut public)), ["open"]);
    assert_eq!(data(&drain(&mut allowed)), ["secret", "open"]);
    // The same rule filters the replay.
    let mut late = broker.subscribe(
        Subscription::new(["user/1", "user/2"]).with_private_access(["user/2"]),
        Cursor::Earliest,
        now(),
    );
    assert_eq!(data(&drain(&mut late)), ["other", "open"]);
}

#[test]
fn resumes_after_a_known_id_and_signals_an_unknown_one() {
    let broker = Broker::new(BrokerConfig::new().replay(ReplayConfig::new().max_events(3)));
    let ids = publish_each(&broker, "t", (0..5).map(|i| format!("e{i}")));
    // History holds e2, e3, e4.
    let mut resumed = resume_after(&broker, &ids[2]);
    assert_eq!(resumed.replay(), Replay::Resumed { retained: 2 });
    assert_eq!(data(&drain(&mut resumed)), ["e3", "e4"]);

    let mut up_to_date = resume_after(&broker, &ids[4]);
    assert_eq!(up_to_date.replay(), Replay::Resumed { retained: 0 });
    assert!(drain(&mut up_to_date).is_empty());

    for cursor in [ids[0].clone(), "never-published".into()] {
        let mut lost = resume_after(&broker, &cursor);
        assert_eq!(lost.replay(), Replay::Unknown { retained: 3 });
        let got = drain(&mut lost);
        assert_eq!(got[0].event_type(), LOST_EVENT_TYPE);
        assert_eq!(got[0].data(), &*cursor);
        assert_eq!(
            got[0].id(),
            "",
            "the signal must not move the last event ID"
        );
        assert_eq!(data(&got[1..]), ["e2", "e3", "e4"]);
    }

    let mut earliest = broker.subscribe(Subscription::new(["t"]), Cursor::Earliest, now());
    assert_eq!(earliest.replay(), Replay::Earliest { retained: 3 });
    assert_eq!(data(&drain(&mut earliest)), ["e2", "e3", "e4"]);
    assert_receives_live(&broker, &mut earliest, "t");

    let stats = broker.stats();
    assert_eq!((stats.replays, stats.replay_misses), (5, 2));
    assert_eq!(stats.history, 3);
    assert_eq!(
        Cursor::from_last_event_id(Some("earliest")),
        Cursor::Earliest
    );
    assert_eq!(Cursor::from_last_event_id(None), Cursor::Live);
}

#[test]
fn a_full_queue_disconnects_only_that_subscriber() {
    let broker = Broker::new(BrokerConfig::new().queue(3, 1 << 20));
    let mut slow = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    let mut fast = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    let mut first = None;
    for i in 0..10 {
        let published = broker
            .publish(Update::new("t", format!("{i}")), now())
            .unwrap();
        first.get_or_insert(published.id.clone());
        assert_eq!(published.subscribers, if i < 3 { 2 } else { 1 });
        assert_eq!(drain(&mut fast).len(), 1);
    }
    let mut frames = Vec::new();
    assert_eq!(slow.try_recv(&mut frames, now()), Err(Ended::Lagged));
    assert!(frames.is_empty());
    let stats = broker.stats();
    assert_eq!((stats.lagged, stats.subscribers), (1, 1));
    // It comes back with its last id and catches up from history.
    let first = first.unwrap_or_default();
    let mut back = broker.subscribe(Subscription::new(["t"]), Cursor::After(first), now());
    assert_eq!(back.replay(), Replay::Resumed { retained: 9 });
    assert_eq!(drain(&mut back).len(), 9);
}

#[test]
fn the_byte_limit_counts_live_frames_but_not_the_replay() {
    let broker = Broker::new(BrokerConfig::new().queue(1000, 100));
    for _ in 0..20 {
        broker
            .publish(Update::new("t", "x".repeat(40)), now())
            .unwrap();
    }
    // 20 replayed frames of about 50 bytes: over the limit, but a replay.
    let mut sub = broker.subscribe(Subscription::new(["t"]), Cursor::Earliest, now());
    broker
        .publish(Update::new("t", "y".repeat(40)), now())
        .unwrap();
    assert_eq!(drain(&mut sub).len(), 21);
    broker
        .publish(Update::new("t", "y".repeat(40)), now())
        .unwrap();
    broker
        .publish(Update::new("t", "y".repeat(40)), now())
        .unwrap();
    let mut frames = Vec::new();
    assert_eq!(sub.try_recv(&mut frames, now()), Err(Ended::Lagged));
}

#[test]
fn dropping_a_subscriber_unsubscribes_it() {
    let broker = Broker::new(BrokerConfig::new());
    let subs: Vec<_> = (0..100)
        .map(|i| {
            broker.subscribe(
                Subscription::new([format!("t{}", i % 7)]),
                Cursor::Live,
                now(),
            )
        })
        .collect();
    assert_eq!(broker.stats().subscribers, 100);
    drop(subs);
    assert_eq!(broker.stats().subscribers, 0);
    assert_eq!(
        broker
            .publish(Update::new("t1", "x"), now())
            .unwrap()
            .subscribers,
        0
    );
}

#[test]
fn poll_recv_wakes_the_waiting_task() {
    struct Flag(AtomicBool);
    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let broker = Broker::new(BrokerConfig::new());
    let mut sub = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut frames = Vec::new();
    assert_eq!(sub.poll_recv(&mut cx, &mut frames, now()), Poll::Pending);
    assert!(!flag.0.load(Ordering::SeqCst));
    broker.publish(Update::new("t", "x"), now()).unwrap();
    assert!(flag.0.load(Ordering::SeqCst));
    assert_eq!(
        sub.poll_recv(&mut cx, &mut frames, now()),
        Poll::Ready(Ok(()))
    );
    assert_eq!(frames.len(), 1);
    assert_eq!(broker.stats().delivered, 1);
}

#[test]
fn shutdown_hands_out_queued_frames_then_ends_with_spread_retries() {
    let broker = Broker::new(BrokerConfig::new());
    let mut subs: Vec<_> = (0..50)
        .map(|_| broker.subscribe(Subscription::new(["t"]), Cursor::Live, now()))
        .collect();
    broker.publish(Update::new("t", "last"), now()).unwrap();
    let base = Duration::from_secs(1);
    let spread = Duration::from_secs(4);
    broker.shutdown(Some((base, spread)), 42);
    assert!(broker.is_shut_down());
    let mut retries = Vec::new();
    for sub in &mut subs {
        let mut frames = Vec::new();
        assert_eq!(sub.try_recv(&mut frames, now()), Ok(1));
        match sub.try_recv(&mut frames, now()) {
            Err(Ended::Shutdown { retry: Some(r) }) => {
                assert!(r >= base && r < base + spread, "{r:?}");
                retries.push(r);
            }
            other => panic!("{other:?}"),
        }
    }
    retries.sort();
    retries.dedup();
    assert!(retries.len() > 40, "retries are not spread: {retries:?}");
    assert_eq!(
        broker.publish(Update::new("t", "x"), now()).unwrap_err(),
        PublishError::ShutDown
    );
    let mut late = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    assert!(matches!(
        late.try_recv(&mut Vec::new(), now()),
        Err(Ended::Shutdown { .. })
    ));
}

#[test]
fn publish_rejects_bad_topic_counts() {
    let broker = Broker::new(BrokerConfig::new().max_topics(2));
    let three = Update::new("a", "").topic("b").topic("c");
    assert_eq!(
        broker.publish(three, now()),
        Err(PublishError::TooManyTopics)
    );
}

/// Many publishers, subscribers joining (and re-joining with their last id)
/// at random points: every subscriber must see exactly the events of its
/// topics after its starting point, in publish order, with no gap and no
/// duplicate.
#[test]
fn the_seam_has_no_gap_and_no_duplicate_under_concurrent_publishes() {
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 3000;
    const TOPICS: [&str; 3] = ["a", "b", "c"];
    let broker = Broker::new(
        BrokerConfig::new()
            .replay(ReplayConfig::new().max_events(1 << 20).max_bytes(1 << 30))
            .queue(1 << 20, 1 << 30),
    );
    let done = Arc::new(AtomicBool::new(false));

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let broker = broker.clone();
            thread::spawn(move || {
                for n in 0..PER_PUBLISHER {
                    let topic = TOPICS[(p + n) % TOPICS.len()];
                    let mut update = Update::new(topic, format!("{topic}/{p}/{n}"));
                    if n % 5 == 0 {
                        update = update.topic(TOPICS[(p + n + 1) % TOPICS.len()]);
                    }
                    broker.publish(update, now()).unwrap();
                    if n % 64 == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();

    // Each subscriber records (cursor it started from, events it got) per
    // connection; several reconnect with their last id along the way.
    let subscribers: Vec<_> = (0..12)
        .map(|s| {
            let broker = broker.clone();
            let done = done.clone();
            thread::spawn(move || {
                let selectors: Vec<&str> = match s % 4 {
                    0 => vec!["*"],
                    1 => vec!["a"],
                    2 => vec!["b", "c"],
                    _ => vec!["c", "a"],
                };
                let mut seed = 0x9e37_79b9_u64 ^ (s as u64) << 20;
                let mut rand = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                };
                // Join at a random point.
                for _ in 0..rand() % 2000 {
                    thread::yield_now();
                }
                let mut connections = Vec::new();
                let mut cursor = match s % 3 {
                    0 => Cursor::Live,
                    1 => Cursor::Earliest,
                    _ => broker.last_id().map_or(Cursor::Live, Cursor::After),
                };
                loop {
                    let mut sub = broker.subscribe(
                        Subscription::new(selectors.clone()),
                        cursor.clone(),
                        now(),
                    );
                    let mut frames = Vec::new();
                    let reconnect_after = 200 + rand() % 3000;
                    let finished = loop {
                        let finished = done.load(Ordering::SeqCst);
                        // A receive moves a batch of a replay at a time:
                        // once everything is published, take it all.
                        while sub.try_recv(&mut frames, now()).unwrap() > 0 && finished {}
                        if finished || frames.len() as u64 > reconnect_after {
                            break finished;
                        }
                        thread::yield_now();
                    };
                    let events = decode(&frames);
                    let last = events.last().map(|e| e.id().to_string());
                    connections.push((cursor.clone(), sub.replay(), events));
                    if finished {
                        break;
                    }
                    if let Some(last) = last {
                        cursor = Cursor::After(last.into());
                    }
                }
                (selectors, connections)
            })
        })
        .collect();

    for p in publishers {
        p.join().unwrap();
    }
    // Every publish has returned: anything a subscriber still lacks is
    // already queued for it.
    done.store(true, Ordering::SeqCst);
    let results: Vec<_> = subscribers.into_iter().map(|s| s.join().unwrap()).collect();

    // The reference order: the whole history.
    let mut everything = broker.subscribe(Subscription::new(["*"]), Cursor::Earliest, now());
    let history = drain(&mut everything);
    assert_eq!(history.len(), PUBLISHERS * PER_PUBLISHER);
    let seq_of: BTreeMap<&str, usize> = history
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id(), i))
        .collect();
    // Each publisher's events appear in the order it published them.
    for p in 0..PUBLISHERS {
        let ns: Vec<usize> = history
            .iter()
            .filter_map(|e| {
                let mut parts = e.data().split('/');
                let (_, q, n) = (parts.next(), parts.next()?, parts.next()?);
                (q.parse::<usize>().ok()? == p).then(|| n.parse().unwrap())
            })
            .collect();
        assert_eq!(ns, (0..PER_PUBLISHER).collect::<Vec<_>>());
    }
    let topics_of = |i: usize| -> Vec<&str> {
        let e = &history[i];
        let mut parts = e.data().split('/');
        let topic = parts.next().unwrap();
        let p: usize = parts.next().unwrap().parse().unwrap();
        let n: usize = parts.next().unwrap().parse().unwrap();
        let mut t = vec![topic];
        if n % 5 == 0 {
            t.push(TOPICS[(p + n + 1) % TOPICS.len()]);
        }
        t
    };

    let mut checked = 0;
    for (selectors, connections) in &results {
        let wants = |i: usize| {
            topics_of(i)
                .iter()
                .any(|t| selectors.iter().any(|s| *s == "*" || s == t))
        };
        for (cursor, replay, events) in connections {
            let positions: Vec<usize> = events.iter().map(|e| seq_of[e.id()]).collect();
            let Some(&first) = positions.first() else {
                continue;
            };
            // Strictly increasing: publish order, no duplicate.
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "out of order or duplicated"
            );
            // No gap: between two delivered events (and from the cursor to
            // the first one), no matching event is missing.
            let start = match (cursor, replay) {
                (Cursor::Earliest, _) => 0,
                (Cursor::After(id), Replay::Resumed { .. }) => seq_of[&**id] + 1,
                _ => first,
            };
            let last = *positions.last().unwrap();
            let expected: Vec<usize> = (start..=last).filter(|&i| wants(i)).collect();
            assert_eq!(positions, expected, "gap for {selectors:?} from {cursor:?}");
            checked += events.len();
        }
        // The last connection ran until everything was published: it ends
        // with the last matching event.
        let (_, _, events) = connections.last().unwrap();
        let last_wanted = (0..history.len()).rev().find(|&i| wants(i)).unwrap();
        if let Some(e) = events.last() {
            assert_eq!(seq_of[e.id()], last_wanted);
        }
    }
    assert!(checked > 10_000, "too few events checked: {checked}");
    // Every frame queued was received or dropped with its subscriber.
    drop(everything);
    assert_eq!(broker.queued(), 0);
}

#[test]
fn the_backlog_counts_what_is_queued_and_not_received() {
    let broker = Broker::new(BrokerConfig::new().queue(4, 1 << 20));
    let mut a = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    let b = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    let mut c = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    broker.publish(Update::new("t", "1"), now()).unwrap();
    broker.publish(Update::new("t", "2"), now()).unwrap();
    assert_eq!(broker.queued(), 6);
    assert_eq!(drain(&mut a).len(), 2);
    assert_eq!(broker.queued(), 4);
    drop(b);
    assert_eq!(broker.queued(), 2);
    // c lags at the fifth frame: its four are dropped with it.
    for i in 3..=5 {
        broker
            .publish(Update::new("t", format!("{i}")), now())
            .unwrap();
    }
    assert!(matches!(
        c.try_recv(&mut Vec::new(), now()),
        Err(Ended::Lagged)
    ));
    assert_eq!(broker.queued(), 3, "a's three");
    let mut late = broker.subscribe(Subscription::new(["t"]), Cursor::Earliest, now());
    assert_eq!(broker.queued(), 3, "a replay is read from the history");
    drain(&mut late);
    drain(&mut a);
    assert_eq!((broker.queued(), broker.stats().queued), (0, 0));
    assert_eq!(broker.subscribers(), 2);
    // One subscriber counts for at most 256 frames, however far behind.
    let broker = Broker::new(BrokerConfig::new());
    let mut slow = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    publish_each(&broker, "t", (0..300).map(|i| format!("{i}")));
    assert_eq!(broker.queued(), 256);
    assert_eq!(drain(&mut slow).len(), 300);
    assert_eq!(broker.queued(), 0);
}

#[test]
fn assigned_ids_resume_whatever_the_prefix_length() {
    for prefix in [String::new(), "run-".to_owned(), "p".repeat(70)] {
        let broker = Broker::new(BrokerConfig::new().id_prefix(prefix.as_str()));
        let ids = publish_each(&broker, "t", (0..12).map(|i| format!("{i}")));
        assert_eq!(&*ids[9], format!("{prefix}10"));
        let mut sub = resume_after(&broker, &ids[9]);
        assert_eq!(data(&drain(&mut sub)), ["10", "11"]);
        // Not canonical: unknown.
        let odd = Cursor::After(format!("{prefix}07").into());
        let sub = broker.subscribe(Subscription::new(["t"]), odd, now());
        assert!(matches!(sub.replay(), Replay::Unknown { .. }));
    }
}

#[test]
fn a_stream_feed_stops_taking_frames_while_the_socket_is_backed_up() {
    use sse_proto::server::{
        BodyFraming, Encoding, Feed, SHUTDOWN_GRACE, StreamConfig, StreamEnd, StreamFeed,
        StreamWriter, WRITE_BACKLOG,
    };

    let broker = Broker::new(BrokerConfig::new().queue(8, 1 << 30));
    let now = now();
    // A live subscriber to `t` whose frames go through a writer.
    let live_feed = |framing| {
        let sub = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now);
        let writer = StreamWriter::new(&StreamConfig::new(), framing, Encoding::Identity, now);
        StreamFeed::new(sub, writer)
    };
    let mut feed = live_feed(BodyFraming::Raw);
    let mut cx = Context::from_waker(Waker::noop());
    let big = "x".repeat(WRITE_BACKLOG);
    broker.publish(Update::new("t", big.as_str()), now).unwrap();
    assert_eq!(feed.poll_feed(&mut cx, now), Feed::Open);
    assert!(feed.writer().pending_bytes() > WRITE_BACKLOG);
    // Nothing is written: the next frames stay in the broker's queue...
    for _ in 0..8 {
        broker.publish(Update::new("t", "more"), now).unwrap();
    }
    assert_eq!(feed.poll_feed(&mut cx, now), Feed::Open);
    assert_eq!(broker.queued(), 8);
    // ...until it overflows, and the feed says stop.
    broker
        .publish(Update::new("t", "one too many"), now)
        .unwrap();
    assert_eq!(feed.poll_feed(&mut cx, now), Feed::Stop(StreamEnd::Lagged));

    let mut feed = live_feed(BodyFraming::Chunked);
    broker.shutdown(Some((Duration::from_secs(2), Duration::ZERO)), 0);
    assert_eq!(feed.poll_feed(&mut cx, now), Feed::Finishing);
    assert_eq!(feed.poll_timeout(), Some(now + SHUTDOWN_GRACE));
    assert!(feed.is_finishing() && feed.writer().is_finished());
    let wire: Vec<u8> = feed.writer().chunks().flatten().copied().collect();
    assert_eq!(wire, b"c\r\nretry: 2000\n\r\n0\r\n\r\n");
    assert_eq!(feed.poll_feed(&mut cx, now), Feed::Open);
}

#[test]
fn discontinue_ends_every_stream_and_makes_old_ids_unknown() {
    let broker = Broker::new(BrokerConfig::new());
    let seen = broker
        .publish(Update::new("t", "before"), now())
        .unwrap()
        .id;
    let mut a = broker.subscribe(Subscription::new(["t"]), Cursor::Live, now());
    let mut b = broker.subscribe(Subscription::new(["u"]), Cursor::Live, now());
    broker.publish(Update::new("t", "unread"), now()).unwrap();
    assert_eq!(broker.discontinue(), 2);
    let mut frames = Vec::new();
    assert_eq!(a.try_recv(&mut frames, now()), Err(Ended::Lagged));
    assert_eq!(b.try_recv(&mut frames, now()), Err(Ended::Lagged));
    assert!(frames.is_empty());
    let stats = broker.stats();
    assert_eq!((stats.subscribers, stats.history, stats.queued), (0, 0, 0));
    // Coming back with the last id seen: told that events may be lost,
    // then what was published since.
    let after = broker.publish(Update::new("t", "after"), now()).unwrap();
    assert!(after.seq > 2, "sequence numbers stay monotonic");
    let mut back = broker.subscribe(Subscription::new(["t"]), Cursor::After(seen), now());
    assert_eq!(back.replay(), Replay::Unknown { retained: 1 });
    let events = drain(&mut back);
    assert_eq!(events[0].event_type(), LOST_EVENT_TYPE);
    assert_eq!(data(&events[1..]), ["after"]);
}

#[test]
fn a_reused_id_cannot_make_a_resuming_subscriber_skip_events() {
    let broker = Broker::new(BrokerConfig::new());
    broker
        .publish(Update::new("b", "b1").id("shared").unwrap(), now())
        .unwrap();
    broker.publish(Update::new("b", "b2"), now()).unwrap();
    broker.publish(Update::new("b", "b3"), now()).unwrap();
    // A publisher allowed on `a` only reuses the id of `b`'s first event.
    broker
        .publish(Update::new("a", "a1").id("shared").unwrap(), now())
        .unwrap();
    let mut resumed = broker.subscribe(
        Subscription::new(["b"]),
        Cursor::After("shared".into()),
        now(),
    );
    assert_eq!(resumed.replay(), Replay::Resumed { retained: 3 });
    assert_eq!(data(&drain(&mut resumed)), ["b2", "b3"]);
}

#[test]
fn a_replay_is_handed_out_in_bounded_batches_as_the_subscriber_reads() {
    let broker = Broker::new(BrokerConfig::new());
    let chunk = "x".repeat(1000);
    for _ in 0..1000 {
        broker
            .publish(Update::new("t", chunk.as_str()), now())
            .unwrap();
    }
    let mut sub = broker.subscribe(Subscription::new(["t"]), Cursor::Earliest, now());
    assert_eq!(sub.replay(), Replay::Earliest { retained: 1000 });
    let (mut frames, mut calls) = (Vec::new(), 0);
    loop {
        let before = frames.len();
        match sub.try_recv(&mut frames, now()) {
            Ok(0) => break,
            Ok(n) => {
                let bytes: usize = frames[before..].iter().map(Bytes::len).sum();
                assert!(
                    bytes < sse_proto::server::REPLAY_BATCH_BYTES + 2000,
                    "a batch of {n} frames, {bytes} bytes"
                );
                calls += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(frames.len(), 1000);
    assert!(calls >= 1000 * 1000 / sse_proto::server::REPLAY_BATCH_BYTES);
    // Live events follow the replay.
    assert_receives_live(&broker, &mut sub, "t");
}

#[test]
fn a_replay_read_too_slowly_for_the_history_ends_as_lagged() {
    let broker = Broker::new(BrokerConfig::new().replay(ReplayConfig::new().max_events(10)));
    publish_each(&broker, "t", (0..10).map(|i| format!("old{i}")));
    let mut sub = broker.subscribe(Subscription::new(["t"]), Cursor::Earliest, now());
    // The history turns over before the subscriber reads anything.
    publish_each(&broker, "u", (0..10).map(|i| format!("new{i}")));
    let mut frames = Vec::new();
    assert_eq!(sub.try_recv(&mut frames, now()), Err(Ended::Lagged));
    assert!(frames.is_empty());
    let stats = broker.stats();
    assert_eq!((stats.lagged, stats.subscribers), (1, 0));
    drop(sub);
    assert_eq!(broker.stats().subscribers, 0);
}

#[test]
fn many_selectors_are_indexed_and_shared_like_few() {
    let broker = Broker::new(BrokerConfig::new());
    let selectors: Vec<String> = (0..1000).map(|i| format!("c{i:03}")).collect();
    let mut a = broker.subscribe(Subscription::new(selectors.clone()), Cursor::Live, now());
    let mut b = broker.subscribe(Subscription::new(selectors.clone()), Cursor::Live, now());
    let published = broker.publish(Update::new("c999", "last"), now()).unwrap();
    assert_eq!(published.subscribers, 2);
    broker.publish(Update::new("d", "none"), now()).unwrap();
    assert_eq!(data(&drain(&mut a)), ["last"]);
    assert_eq!(data(&drain(&mut b)), ["last"]);
    drop(a);
    drop(b);
    assert_eq!(
        broker
            .publish(Update::new("c000", "x"), now())
            .unwrap()
            .subscribers,
        0
    );
    assert_eq!(broker.stats().subscribers, 0);
}

#[test]
fn topics_count_against_the_history_byte_bound() {
    let broker = Broker::new(BrokerConfig::new().replay(ReplayConfig::new().max_bytes(1 << 20)));
    let topic = "t".repeat(100_000);
    for _ in 0..100 {
        broker
            .publish(Update::new(topic.as_str(), ""), now())
            .unwrap();
    }
    let stats = broker.stats();
    assert!(stats.history_bytes <= 1 << 20, "{}", stats.history_bytes);
    assert!(
        stats.history_bytes >= 9 * 100_000,
        "{}",
        stats.history_bytes
    );
    assert!(stats.history <= 10, "{} entries kept", stats.history);
}

#[test]
fn a_replay_of_selectors_that_match_nothing_costs_a_lookup_per_selector() {
    let broker = Broker::new(BrokerConfig::new());
    for n in 0..5000 {
        let mut update = Update::new(format!("t/{n}/0"), "x");
        for k in 1..10 {
            update = update.topic(format!("t/{n}/{k}"));
        }
        broker.publish(update, now()).unwrap();
    }
    let selectors: Vec<String> = (0..1000).map(|i| format!("x/{i}")).collect();
    let mut sub = broker.subscribe(Subscription::new(selectors), Cursor::Earliest, now());
    let wakes = Arc::new(CountWakes::default());
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let mut frames = Vec::new();
    // Each `Pending` that woke the task itself is a yield after a bounded
    // amount of work; 5000 entries examined one by one would take five.
    let mut polls = 0;
    loop {
        polls += 1;
        let before = wakes.0.load(Ordering::SeqCst);
        assert!(sub.poll_recv(&mut cx, &mut frames, now()).is_pending());
        if wakes.0.load(Ordering::SeqCst) == before {
            break; // Waiting for live events: the replay is over.
        }
    }
    assert!(polls <= 2, "{polls} polls");
    assert!(frames.is_empty());
    // It is live now.
    assert_receives_live(&broker, &mut sub, "x/7");
}

#[test]
fn the_topic_index_replays_in_publish_order_across_selectors() {
    let broker = Broker::new(BrokerConfig::new().replay(ReplayConfig::new().max_events(50)));
    for n in 0..200 {
        let topic = ["a", "b", "c", "d"][n % 4];
        let mut update = Update::new(topic, format!("{n}"));
        if n % 7 == 0 {
            update = update.topic("a");
        }
        broker.publish(update, now()).unwrap();
    }
    let mut sub = broker.subscribe(Subscription::new(["c", "a"]), Cursor::Earliest, now());
    let got: Vec<usize> = drain(&mut sub)
        .iter()
        .map(|e| e.data().parse().unwrap())
        .collect();
    let expected: Vec<usize> = (150..200)
        .filter(|n| n % 4 == 0 || n % 4 == 2 || n % 7 == 0)
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn expired_history_is_never_replayed_at_the_time_passed_in() {
    let age = Duration::from_secs(10);
    let config = BrokerConfig::new().replay(ReplayConfig::new().max_age(Some(age)));
    let broker = Broker::new(config);
    let t0 = now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let received = |sub: &mut Subscriber, when| {
        let mut frames = Vec::new();
        let result = sub.try_recv(&mut frames, when);
        (result, data(&decode(&frames)).join(","))
    };
    broker.publish(Update::new("t", "old"), at(0)).unwrap();
    broker.publish(Update::new("t", "newer"), at(5)).unwrap();
    // At subscribe: what is `max_age` old at its time is gone.
    let mut sub = broker.subscribe(Subscription::new(["t"]), Cursor::Earliest, at(10));
    assert_eq!(sub.replay(), Replay::Earliest { retained: 1 });
    assert_eq!(received(&mut sub, at(10)), (Ok(1), "newer".to_string()));
    // Before each piece of a replay: one that expired while unread is not
    // sent, and the subscriber is cut off (it resumes from its last id).
    let mut slow = broker.subscribe(Subscription::new(["t"]), Cursor::Earliest, at(12));
    assert_eq!(slow.replay(), Replay::Earliest { retained: 1 });
    assert_eq!(
        received(&mut slow, at(15)),
        (Err(Ended::Lagged), String::new())
    );
    // At publish: the history keeps only what is younger than `max_age`.
    broker.publish(Update::new("t", "latest"), at(30)).unwrap();
    assert_eq!(broker.stats().history, 1);
    // The time is the caller's: an earlier one expires nothing.
    let mut early = broker.subscribe(Subscription::new(["t"]), Cursor::Earliest, at(30));
    assert_eq!(received(&mut early, at(0)), (Ok(1), "latest".to_string()));
}

#[derive(Default)]
struct CountWakes(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn ids_of_an_earlier_run_are_unknown_not_resumed() {
    // Two runs of a server: the second must not take the first one's ids
    // for its own (it numbers from 1 again).
    let earlier = Broker::new(BrokerConfig::new());
    let id = earlier.publish(Update::new("t", "a"), now()).unwrap().id;
    let later = Broker::new(BrokerConfig::new());
    for data in ["x", "y", "z"] {
        later.publish(Update::new("t", data), now()).unwrap();
    }
    assert_ne!(id, later.publish(Update::new("t", "w"), now()).unwrap().id);
    let resumed = later.subscribe(Subscription::new(["t"]), Cursor::After(id), now());
    assert_eq!(resumed.replay(), Replay::Unknown { retained: 4 });
}

#[test]
fn pattern_selectors_route_replay_and_grant_private_access_alike() {
    use sse_proto::server::Selector;
    let broker = Broker::new(BrokerConfig::new());
    let book = |s: &str| Selector::topic(s).unwrap();
    let sub = || {
        Subscription::new([book("/books/{id}"), book("/other")])
            .with_private_access([book("/books/{id}")])
    };
    let mut public_only = broker.subscribe(
        Subscription::new([book("/books/{id}")]),
        Cursor::Live,
        now(),
    );
    let mut live = broker.subscribe(sub(), Cursor::Live, now());
    let mut all = broker.subscribe(
        Subscription::new(["*"]).with_private_access([book("/books/{id}")]),
        Cursor::Live,
        now(),
    );
    for (topic, data, private) in [
        ("/books/1", "b1", false),
        ("/authors/1", "a1", false),
        ("/books/2", "b2 private", true),
        ("/books/2/reviews", "r2 private", true),
        ("/other", "o", false),
    ] {
        broker
            .publish(Update::new(topic, data).private(private), now())
            .unwrap();
    }
    let mut replayed = broker.subscribe(sub(), Cursor::Earliest, now());
    assert_eq!(data(&drain(&mut public_only)), ["b1"]);
    assert_eq!(data(&drain(&mut live)), ["b1", "b2 private", "o"]);
    assert_eq!(data(&drain(&mut replayed)), ["b1", "b2 private", "o"]);
    assert_eq!(
        data(&drain(&mut all)),
        ["b1", "a1", "b2 private", "o"],
        "`*` with private access by template"
    );
}

#[test]
fn a_subscription_past_the_pattern_bound_is_refused() {
    let broker = Broker::new(BrokerConfig::new().max_patterns(1));
    let template = |t: &str| Selector::template(t).unwrap();
    let mut books = broker
        .try_subscribe(
            Subscription::new([template("/books/{id}")]),
            Cursor::Live,
            now(),
        )
        .unwrap();
    assert_eq!(
        broker
            .try_subscribe(
                Subscription::new([template("/authors/{id}")]),
                Cursor::Live,
                now(),
            )
            .err(),
        Some(SubscribeError::TooManyPatterns)
    );
    // `subscribe` gives a subscriber that ends at once, as a lagging one.
    let mut refused = broker.subscribe(
        Subscription::new([template("/authors/{id}")]),
        Cursor::Live,
        now(),
    );
    let mut frames = Vec::new();
    assert_eq!(refused.try_recv(&mut frames, now()), Err(Ended::Lagged));
    // The refused ones left nothing behind: the first still receives.
    assert_eq!(broker.subscribers(), 1);
    assert_receives_live(&broker, &mut books, "/books/1");
}
