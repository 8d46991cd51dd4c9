//! `server::Router` against a naive model: a list of live subscribers, each
//! checked with `Subscription::accepts`. Arbitrary sequences of inserts,
//! removals (of live and stale keys) and routed updates (whose delivery may
//! unsubscribe) must agree with it on who receives what, who is removed, the
//! number of subscribers and the number of indexed topics and patterns.
//! The model decides who receives what with `Selector::matches`, one
//! selector and one topic at a time.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sse_proto::server::{Router, Selector, SubscriberKey, Subscription};

/// Selectors are drawn from here (`*` and URI templates included), parsed
/// as Mercure's `topic` parameter.
const SELECTORS: &[&str] = &[
    "a",
    "b",
    "c",
    "",
    "/a/long/topic/name/past/the/inline/limit",
    "*",
    "{x}",
    "/a/{+rest}",
    "{/path*}",
];
/// Update topics: the selectors' topics plus one nobody selects exactly, and
/// a literal `*` (which only `*` selects).
const TOPICS: &[&str] = &[
    "a",
    "b",
    "c",
    "",
    "/a/long/topic/name/past/the/inline/limit",
    "d",
    "*",
    "/a/b/c",
    "/a",
];

#[derive(Clone, Debug)]
enum Op {
    Insert {
        selectors: Vec<usize>,
        private_access: Vec<usize>,
    },
    /// Removes one of the keys handed out so far (live or stale).
    Remove(usize),
    Route {
        topics: Vec<usize>,
        private: bool,
        /// Bit `id % 64` set: delivering to subscriber `id` unsubscribes it.
        drop_mask: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let selectors = prop::collection::vec(0..SELECTORS.len(), 0..4);
    prop_oneof![
        4 => (selectors.clone(), selectors).prop_map(|(selectors, private_access)| Op::Insert {
            selectors,
            private_access,
        }),
        2 => any::<usize>().prop_map(Op::Remove),
        4 => (
            prop::collection::vec(0..TOPICS.len(), 0..4),
            any::<bool>(),
            // Mostly keep subscribers, sometimes drop many.
            prop_oneof![Just(0u64), any::<u64>()],
        )
            .prop_map(|(topics, private, drop_mask)| Op::Route {
                topics,
                private,
                drop_mask,
            }),
    ]
}

fn selector(i: usize) -> Selector {
    Selector::topic(SELECTORS[i]).unwrap()
}

fn subscription(selectors: &[usize], private_access: &[usize]) -> Subscription {
    Subscription::new(selectors.iter().map(|&i| selector(i)))
        .with_private_access(private_access.iter().map(|&i| selector(i)))
}

/// The routing rule, one selector and one topic at a time.
fn model_accepts(sub: &Subscription, topics: &[&str], private: bool) -> bool {
    let any = |selectors: &[Selector]| {
        selectors
            .iter()
            .any(|s| topics.iter().any(|t| s.matches(t)))
    };
    any(sub.selectors()) && (!private || any(sub.private_access()))
}

/// Distinct exact topics the live subscribers select.
fn model_topics(model: &[(SubscriberKey, Subscription, u32)]) -> usize {
    model
        .iter()
        .flat_map(|(_, s, _)| s.selectors())
        .filter_map(|sel| match sel {
            Selector::Exact(t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .len()
}

/// Distinct patterns the live subscribers select.
fn model_patterns(model: &[(SubscriberKey, Subscription, u32)]) -> usize {
    model
        .iter()
        .flat_map(|(_, s, _)| s.selectors())
        .filter_map(Selector::pattern)
        .collect::<BTreeSet<_>>()
        .len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn router_matches_the_naive_model(ops in prop::collection::vec(op(), 0..80)) {
        let mut router = Router::new();
        // (key, subscription, value); values are unique ids.
        let mut model: Vec<(SubscriberKey, Subscription, u32)> = Vec::new();
        let mut issued: Vec<SubscriberKey> = Vec::new();
        let mut next_id = 0u32;

        for op in ops {
            match op {
                Op::Insert { selectors, private_access } => {
                    let sub = subscription(&selectors, &private_access);
                    let key = router.insert(sub.clone(), next_id);
                    prop_assert!(!issued.contains(&key), "a key was handed out twice");
                    issued.push(key);
                    model.push((key, sub, next_id));
                    next_id += 1;
                }
                Op::Remove(pick) => {
                    if issued.is_empty() {
                        continue;
                    }
                    let key = issued[pick % issued.len()];
                    let want = model
                        .iter()
                        .position(|(k, _, _)| *k == key)
                        .map(|i| model.remove(i))
                        .map(|(_, s, v)| (s, v));
                    prop_assert_eq!(router.remove(key), want);
                }
                Op::Route { topics, private, drop_mask } => {
                    let topics: Vec<&str> = topics.iter().map(|&i| TOPICS[i]).collect();
                    let dropped = |id: u32| drop_mask >> (id % 64) & 1 == 1;
                    let want: BTreeSet<u32> = model
                        .iter()
                        .filter(|(_, s, _)| model_accepts(s, &topics, private))
                        .map(|(_, _, v)| *v)
                        .collect();
                    let want_removed: Vec<(SubscriberKey, Subscription, u32)> = model
                        .iter()
                        .filter(|(_, s, v)| model_accepts(s, &topics, private) && dropped(*v))
                        .cloned()
                        .collect();

                    let mut got = Vec::new();
                    let mut removed = Vec::new();
                    let n = router.route(
                        &topics,
                        private,
                        |key, value| {
                            got.push((key, *value));
                            !dropped(*value)
                        },
                        |key, sub, value| removed.push((key, sub, value)),
                    );
                    prop_assert_eq!(n, got.len());
                    for (_, s, _) in &model {
                        prop_assert_eq!(s.accepts(&topics, private), model_accepts(s, &topics, private));
                    }
                    // Each delivery came with the subscriber's own key.
                    for (key, value) in &got {
                        prop_assert!(model.iter().any(|(k, _, v)| k == key && v == value));
                    }
                    let mut ids: Vec<u32> = got.iter().map(|(_, v)| *v).collect();
                    ids.sort_unstable();
                    let len = ids.len();
                    ids.dedup();
                    prop_assert_eq!(ids.len(), len, "a subscriber got the update twice");
                    prop_assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), want);

                    removed.sort_by_key(|(_, _, v)| *v);
                    prop_assert_eq!(&removed, &want_removed);
                    model.retain(|(k, _, _)| !removed.iter().any(|(r, _, _)| r == k));
                }
            }

            prop_assert_eq!(router.len(), model.len());
            prop_assert_eq!(router.is_empty(), model.is_empty());
            prop_assert_eq!(router.topic_count(), model_topics(&model));
            prop_assert_eq!(router.pattern_count(), model_patterns(&model));
            for &key in &issued {
                let live = model.iter().find(|(k, _, _)| *k == key);
                prop_assert_eq!(router.get(key), live.map(|(_, _, v)| v));
                prop_assert_eq!(router.subscription(key), live.map(|(_, s, _)| s));
            }
        }

        // Removing everyone empties the index.
        for (key, _, _) in model.drain(..) {
            prop_assert!(router.remove(key).is_some());
        }
        prop_assert!(router.is_empty());
        prop_assert_eq!(router.topic_count(), 0);
        prop_assert_eq!(router.pattern_count(), 0);
        prop_assert_eq!(router.iter_mut().count(), 0);
    }
}

#[test]
fn stale_keys_never_match_later_subscribers() {
    let mut router = Router::new();
    let mut stale = Vec::new();
    for round in 0..100u32 {
        let key = router.insert(Subscription::new(["t"]), round);
        for &old in &stale {
            assert_eq!(router.get(old), None);
            assert_eq!(router.get_mut(old), None);
            assert!(router.subscription(old).is_none());
            assert!(router.remove(old).is_none());
        }
        assert_eq!(router.get(key), Some(&round));
        assert_eq!(router.remove(key).map(|(_, v)| v), Some(round));
        stale.push(key);
    }
    assert!(router.is_empty());
    assert_eq!(router.topic_count(), 0);
}

#[test]
fn each_subscriber_gets_an_update_once() {
    let mut router = Router::new();
    let every = router.insert(
        Subscription::new(["*", "a", "b", "a"]).with_private_access(["a", "b", "*"]),
        0u32,
    );
    let exact = router.insert(Subscription::new(["a", "b"]), 0u32);
    for topics in [&["a"][..], &["a", "b"], &["b", "a", "b", "c"], &["c"]] {
        router.route(
            topics,
            false,
            |_, count| {
                *count += 1;
                true
            },
            |_, _, _| unreachable!(),
        );
    }
    assert_eq!(router.get(every), Some(&4));
    assert_eq!(router.get(exact), Some(&3));

    let n = router.route(
        &["a", "a", "b"],
        true,
        |_, _| true,
        |_, _, _| unreachable!(),
    );
    assert_eq!(n, 1, "only the subscriber with private access");
}

#[test]
fn a_private_update_needs_access_to_one_of_its_topics() {
    let mut router = Router::new();
    let none = router.insert(Subscription::new(["a"]), ());
    let other = router.insert(Subscription::new(["a"]).with_private_access(["b"]), ());
    let same = router.insert(Subscription::new(["a"]).with_private_access(["a"]), ());
    let mut got = Vec::new();
    router.route(
        &["a"],
        true,
        |k, _| {
            got.push(k);
            true
        },
        |_, _, _| {},
    );
    assert_eq!(got, [same]);
    got.clear();
    router.route(
        &["a", "b"],
        true,
        |k, _| {
            got.push(k);
            true
        },
        |_, _, _| {},
    );
    got.sort();
    let mut want = vec![other, same];
    want.sort();
    assert_eq!(got, want);
    assert!(router.contains(none));
}

#[test]
fn removing_everything_empties_the_topic_index() {
    let mut router = Router::new();
    let keys: Vec<_> = (0..500usize)
        .map(|i| {
            let topics = [
                format!("topic/{}", i % 37),
                format!("topic/{}", i % 11),
                "*".to_owned(),
            ];
            router.insert(Subscription::new(topics.into_iter().take(1 + i % 3)), i)
        })
        .collect();
    assert_eq!(router.topic_count(), 37);
    // Remove in an order unrelated to insertion, half of them by routing.
    for (n, &key) in keys.iter().enumerate().filter(|(n, _)| n % 7 != 3) {
        assert_eq!(router.remove(key).map(|(_, v)| v), Some(n));
    }
    let mut removed = 0;
    router.route(
        &["topic/3", "topic/5"],
        false,
        |_, _| false,
        |_, _, _| removed += 1,
    );
    let rest: Vec<_> = router.iter_mut().map(|(k, _)| k).collect();
    for key in rest {
        assert!(router.remove(key).is_some());
    }
    assert!(removed > 0);
    assert!(router.is_empty());
    assert_eq!(router.topic_count(), 0);
    // Slots are reused.
    let key = router.insert(Subscription::new(["x"]), 0);
    assert!(!keys.contains(&key));
    assert_eq!(router.topic_count(), 1);
}

#[test]
fn distinct_patterns_are_bounded_and_shared_ones_are_free() {
    let template = |t: &str| Selector::template(t).unwrap();
    let mut router: Router<()> = Router::new();
    router.set_max_patterns(2);
    let books = Subscription::new([template("/books/{id}"), template("/authors/{id}")]);
    let first = router.insert_inactive(books.clone(), ());
    assert!(router.index_some(first, 100));
    assert_eq!(router.pattern_count(), 2);
    // The same patterns again (and exact topics) cost no room.
    let again = Subscription::new([
        template("/books/{id}"),
        Selector::exact("/exact"),
        Selector::Any,
    ]);
    let second = router.insert_inactive(again, ());
    assert!(router.index_some(second, 100));
    assert!(!router.is_refused(second));
    // A third distinct pattern is refused, and indexes nothing past it.
    let more = Subscription::new([Selector::exact("/a"), template("/shelves/{id}")]);
    let third = router.insert_inactive(more.clone(), ());
    assert!(!router.index_some(third, 100));
    assert!(router.is_refused(third));
    assert!(
        !router.index_some(third, 100),
        "a refused subscriber stays so"
    );
    assert_eq!(router.pattern_count(), 2);
    while !router.unindex_some(third, 100) {}
    router.remove(third);
    // Room again once the first subscriber's patterns are gone: the
    // second still holds `/books/{id}`.
    while !router.unindex_some(first, 100) {}
    router.remove(first);
    assert_eq!(router.pattern_count(), 1);
    let fourth = router.insert_inactive(more, ());
    assert!(router.index_some(fourth, 100));
    assert_eq!(router.pattern_count(), 2);
}
