//! `sse hub --subscriptions`: Mercure's subscription events and
//! subscriptions API, on a real hub (in memory, and two processes sharing
//! a real `redis-server`).
//!
//! Every test starts its own hub on a free loopback port and kills it when
//! it ends. Every wait is bounded.

use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::WAIT;
use common::http::form;
use common::hub::Hub;
use common::redis::Redis;
use common::run::{assert_help_lists, run_bounded, sse};
use common::stream::Stream;
use common::token::{KEY, bearer, claims_token, now_secs, token};
use serde_json::{Value, json};

/// The subscriptions API's URL, and the prefix of every event's topic.
const API: &str = "/.well-known/mercure/subscriptions";
/// A selector that covers every subscription event.
const ALL: &str = "/.well-known/mercure/subscriptions{/topic}{/subscriber}";

/// A hub that announces subscriptions (anonymous subscribers allowed).
fn start() -> Hub {
    Hub::start(&["--jwt-key", KEY, "--subscriptions", "--anonymous"])
}

/// `Authorization` for a token that may receive every subscription event.
fn admin() -> String {
    bearer(&claims_token(&[], &[ALL]))
}

/// A token that may receive `subscribe`'s private updates, carrying
/// `payload`, valid for `seconds`.
fn with_payload(subscribe: &[&str], payload: Value, seconds: u64) -> String {
    bearer(&token(
        json!({
            "mercure": {"subscribe": subscribe, "payload": payload},
            "exp": now_secs() + seconds,
        }),
        KEY,
    ))
}

/// A subscriber to every subscription event.
fn watch(hub: &Hub) -> Stream {
    hub.subscribe(&form(&[("topic", ALL)]), &[("Authorization", &admin())])
}

/// The next subscription event about `selector` that `stream` receives
/// (skipping others), within [`WAIT`].
fn next_about(stream: &mut Stream, selector: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = stream
            .next_event(left)
            .unwrap_or_else(|| panic!("no subscription event about {selector} within {WAIT:?}"));
        let data: Value = serde_json::from_str(event.data()).expect("the data is JSON");
        if data["topic"] == selector {
            return data;
        }
    }
}

/// A path segment, percent-encoded as the hub encodes it.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET` of the API at `API` + `rest` with `authorization`: the status and
/// the JSON document (`Null` for another answer than 200).
fn get(hub: &Hub, rest: &str, authorization: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let resp = hub.get(&format!("{API}{rest}"), &headers);
    if resp.status != 200 {
        return (resp.status, Value::Null);
    }
    resp.assert_content_type("application/ld+json");
    (
        resp.status,
        serde_json::from_slice(&resp.body).expect("JSON"),
    )
}

/// The `(topic, subscriber)` pairs a listing holds.
fn pairs(listing: &Value) -> Vec<(String, String)> {
    listing["subscriptions"]
        .as_array()
        .expect("a list of subscriptions")
        .iter()
        .map(|s| {
            (
                s["topic"].as_str().unwrap().to_owned(),
                s["subscriber"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_watcher_sees_subscriptions_start_and_end_with_the_payload() {
    let hub = start();
    let mut watcher = watch(&hub);
    let client = hub.subscribe(
        "topic=%2Fbooks%2F1",
        &[(
            "Authorization",
            &with_payload(&["/books/1"], json!({"name": "ann"}), 3600),
        )],
    );
    let started = next_about(&mut watcher, "/books/1");
    let subscriber = started["subscriber"].as_str().unwrap().to_owned();
    assert!(subscriber.starts_with("urn:uuid:"), "{started}");
    assert_eq!(started["@context"], "https://mercure.rocks/");
    assert_eq!(started["type"], "Subscription");
    assert_eq!(
        started["id"],
        format!("{API}/%2Fbooks%2F1/{}", encode(&subscriber))
    );
    assert_eq!(started["match"], "/books/1");
    assert_eq!(started["match_type"], "exact");
    assert_eq!(started["active"], true);
    assert_eq!(started["payload"], json!({"name": "ann"}));

    // The client goes away: the same subscription, inactive.
    drop(client);
    let ended = next_about(&mut watcher, "/books/1");
    assert_eq!(ended["active"], false);
    assert_eq!(ended["subscriber"], subscriber.as_str());
    assert_eq!(ended["id"], started["id"]);
    assert_eq!(ended["payload"], json!({"name": "ann"}));

    // Each connection is a new subscriber; a token without payload gives
    // `null`; a stream that ends at its token's expiry ends its
    // subscriptions too.
    let expiring = hub.subscribe(
        "topic=%2Fbooks%2F1",
        &[(
            "Authorization",
            &with_payload(&["/books/1"], Value::Null, 2),
        )],
    );
    let started = next_about(&mut watcher, "/books/1");
    assert_ne!(started["subscriber"], subscriber.as_str());
    assert_eq!(started["payload"], Value::Null);
    let ended = next_about(&mut watcher, "/books/1");
    assert_eq!(
        (&ended["active"], &ended["subscriber"]),
        (&json!(false), &started["subscriber"])
    );
    drop(expiring);

    // Subscription events are private: a subscriber whose claims do not
    // cover them receives none.
    let mut outsider = hub.subscribe(
        &form(&[("topic", ALL)]),
        &[(
            "Authorization",
            &bearer(&claims_token(&[], &["/books/{id}"])),
        )],
    );
    let other = hub.subscribe("topic=%2Fbooks%2F2", &[]);
    let started = next_about(&mut watcher, "/books/2");
    assert_eq!(started["active"], true);
    outsider.assert_quiet(Duration::from_millis(300));
    drop(other);
}

#[test]
fn the_api_lists_filters_and_hides_what_the_claims_do_not_cover() {
    let hub = start();
    let admin = admin();
    let a = hub.subscribe(
        &form(&[("topic", "/books/1"), ("topic", "/books/{id}")]),
        &[(
            "Authorization",
            &with_payload(&["/books/{id}"], json!({"name": "ann"}), 3600),
        )],
    );
    let b = hub.subscribe(
        &form(&[("match", "/authors/1")]),
        &[(
            "Authorization",
            &with_payload(&[], json!({"name": "bob"}), 3600),
        )],
    );

    let (status, all) = get(&hub, "", Some(&admin));
    assert_eq!(status, 200);
    assert_eq!(all["@context"], "https://mercure.rocks/");
    assert_eq!(all["id"], API);
    assert_eq!(all["type"], "Subscriptions");
    let last = all["lastEventID"].as_str().unwrap().to_owned();
    assert!(!last.is_empty() && last != "earliest", "{all}");
    assert_eq!(all["last_event_id"], last.as_str());
    let listed = pairs(&all);
    assert_eq!(listed.len(), 3, "{all}");
    let a_id = listed
        .iter()
        .find(|(t, _)| t == "/books/1")
        .unwrap()
        .1
        .clone();
    let b_id = listed
        .iter()
        .find(|(t, _)| t == "/authors/1")
        .unwrap()
        .1
        .clone();
    assert!(listed.contains(&("/books/{id}".to_owned(), a_id.clone())));
    let template = all["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["topic"] == "/books/{id}")
        .unwrap();
    assert_eq!(template["match_type"], "uritemplate");
    assert_eq!(template["active"], true);
    assert_eq!(template["payload"], json!({"name": "ann"}));

    // By topic, by topic and subscriber, and the draft-08 paths.
    let (_, books) = get(&hub, "/%2Fbooks%2F1", Some(&admin));
    assert_eq!(pairs(&books), [("/books/1".to_owned(), a_id.clone())]);
    let (status, one) = get(
        &hub,
        &format!("/%2Fbooks%2F1/{}", encode(&a_id)),
        Some(&admin),
    );
    assert_eq!(status, 200);
    assert_eq!(one["@context"], "https://mercure.rocks/");
    assert_eq!(one["subscriber"], a_id.as_str());
    assert_eq!(one["id"], format!("{API}/%2Fbooks%2F1/{}", encode(&a_id)));
    let unknown = "urn:uuid:00000000-0000-4000-8000-000000000000";
    let (status, _) = get(
        &hub,
        &format!("/%2Fbooks%2F1/{}", encode(unknown)),
        Some(&admin),
    );
    assert_eq!(status, 404);
    let (_, templates) = get(&hub, "/uritemplate/%2Fbooks%2F%7Bid%7D", Some(&admin));
    assert_eq!(
        pairs(&templates),
        [("/books/{id}".to_owned(), a_id.clone())]
    );
    let (status, _) = get(
        &hub,
        &format!("/exact/%2Fauthors%2F1/{}", encode(&b_id)),
        Some(&admin),
    );
    assert_eq!(status, 200);

    // A caller sees only the subscriptions whose events its claims cover.
    let narrow = bearer(&claims_token(
        &[],
        &[&format!("{API}/%2Fbooks%2F1{{/subscriber}}")],
    ));
    let (_, seen) = get(&hub, "", Some(&narrow));
    assert_eq!(pairs(&seen), [("/books/1".to_owned(), a_id.clone())]);
    let (status, _) = get(
        &hub,
        &format!("/%2Fauthors%2F1/{}", encode(&b_id)),
        Some(&narrow),
    );
    assert_eq!(status, 404);
    // Anonymous callers see nothing private; a bad token is refused.
    let (status, anonymous) = get(&hub, "", None);
    assert_eq!(status, 200);
    assert!(pairs(&anonymous).is_empty());
    let (status, _) = get(&hub, "", Some("Bearer not-a-token"));
    assert_eq!(status, 401);
    // Only reading.
    let resp = hub.post_to(API, b"topic=x", &[("Authorization", &admin)]);
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET, HEAD, OPTIONS"));

    // List, then subscribe from its lastEventID: nothing before it is
    // replayed, nothing after it is missed.
    let (_, snapshot) = get(&hub, "", Some(&admin));
    let last = snapshot["lastEventID"].as_str().unwrap().to_owned();
    let mut watcher = hub.subscribe(
        &form(&[("topic", ALL)]),
        &[("Authorization", &admin), ("Last-Event-ID", &last)],
    );
    // The first event is the watcher's own subscription, not a replay.
    let first: Value = serde_json::from_str(watcher.event().data()).unwrap();
    assert_eq!(
        (&first["topic"], &first["active"]),
        (&json!(ALL), &json!(true))
    );
    drop(b);
    let ended = next_about(&mut watcher, "/authors/1");
    assert_eq!(
        (&ended["active"], &ended["subscriber"]),
        (&json!(false), &json!(b_id))
    );
    let (_, after) = get(&hub, "/%2Fauthors%2F1", Some(&admin));
    assert!(pairs(&after).is_empty());
    drop(a);
}

#[test]
fn off_by_default_and_only_with_a_key() {
    let hub = Hub::start(&["--jwt-key", KEY]);
    for rest in ["", "/%2Fbooks%2F1", "/exact/t/urn%3Auuid%3A1"] {
        let (status, _) = get(&hub, rest, Some(&admin()));
        assert_eq!(status, 404, "{rest}");
    }
    assert!(!hub.metrics().contains("sse_hub_subscriptions_active"));
    drop(hub);

    // On with its environment variable too.
    let hub = Hub::start_env(&["--jwt-key", KEY], &[("SSE_HUB_SUBSCRIPTIONS", "true")]);
    assert_eq!(get(&hub, "", Some(&admin())).0, 200);
    assert!(hub.metrics().contains("sse_hub_subscriptions_active 0"));
    drop(hub);
    assert_help_lists(
        &["hub", "--help"],
        &[
            "--subscriptions",
            "--max-subscriptions <N>",
            "--max-subscriptions-bytes <BYTES>",
        ],
    );

    let (status, output) = run_bounded(
        &mut sse(&["hub", "--subscriptions", "--listen", "127.0.0.1:0"]),
        WAIT,
    );
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("--subscriptions needs a key (--jwt-key"),
        "{output}"
    );
}

#[test]
fn a_full_list_refuses_subscribers() {
    let hub = Hub::start(&[
        "--jwt-key",
        KEY,
        "--subscriptions",
        "--anonymous",
        "--max-subscriptions",
        "2",
    ]);
    // One entry per selector: three do not fit in two.
    let refused = hub
        .open("topic=a&topic=b&topic=c", &[])
        .err()
        .expect("refused");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        refused.text().contains("--max-subscriptions"),
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("retry-after"), Some("5"));
    let two = hub.subscribe("topic=a&topic=b", &[]);
    assert_eq!(hub.open("topic=c", &[]).err().map(|r| r.status), Some(503));
    assert_eq!(hub.metric("sse_hub_subscriptions_refused_total"), 2);
    assert_eq!(hub.metric("sse_hub_subscriptions_active"), 2);
    // Room again once a subscriber is gone.
    drop(two);
    let _c = hub.subscribe_eventually("topic=c", &[503]);
    // `two`'s entries go one after the other: wait for the last.
    let deadline = Instant::now() + WAIT;
    while hub.metric("sse_hub_subscriptions_active") != 1 {
        assert!(Instant::now() < deadline, "{}", hub.metrics());
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `hub`'s listing at `rest` satisfies `done`; the listing.
fn list_until(hub: &Hub, rest: &str, done: impl Fn(&[(String, String)]) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, listing) = get(hub, rest, Some(&admin()));
        assert_eq!(status, 200);
        if done(&pairs(&listing)) {
            return listing;
        }
        assert!(
            Instant::now() < deadline,
            "the listing never got there: {listing}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hubs_sharing_redis_list_the_same_subscriptions() {
    let redis = Redis::start();
    let url = redis.url();
    let args = ["--redis", &url, "--jwt-key", KEY, "--subscriptions"];
    let mut a = Hub::start(&args);
    let b = Hub::start(&args);
    for hub in [&a, &b] {
        let deadline = Instant::now() + WAIT;
        while hub.get("/healthz", &[]).status != 200 {
            assert!(Instant::now() < deadline, "/healthz never became 200");
            thread::sleep(Duration::from_millis(50));
        }
    }
    let mut watcher = watch(&b);
    let client = a.subscribe(
        "topic=%2Fchat",
        &[(
            "Authorization",
            &with_payload(&["/chat"], json!({"name": "ann"}), 3600),
        )],
    );
    // Announced on A, seen on B, listed by both.
    let started = next_about(&mut watcher, "/chat");
    assert_eq!(started["active"], true);
    assert_eq!(started["payload"], json!({"name": "ann"}));
    let subscriber = started["subscriber"].as_str().unwrap().to_owned();
    let want = [("/chat".to_owned(), subscriber.clone())];
    for hub in [&a, &b] {
        list_until(hub, "/%2Fchat", |listed| listed == want);
    }
    let (status, one) = get(
        &b,
        &format!("/%2Fchat/{}", encode(&subscriber)),
        Some(&admin()),
    );
    assert_eq!(status, 200);
    assert_eq!(one["payload"], json!({"name": "ann"}));

    // It ends on A: no longer listed anywhere.
    drop(client);
    let ended = next_about(&mut watcher, "/chat");
    assert_eq!(ended["active"], false);
    for hub in [&a, &b] {
        list_until(hub, "/%2Fchat", <[_]>::is_empty);
    }

    // A process that shuts down announces the end of its subscriptions.
    let _open = a.subscribe(
        "topic=%2Froom",
        &[("Authorization", &bearer(&claims_token(&[], &[])))],
    );
    assert_eq!(next_about(&mut watcher, "/room")["active"], true);
    list_until(&b, "/%2Froom", |listed| listed.len() == 1);
    a.signal("-TERM");
    assert_eq!(next_about(&mut watcher, "/room")["active"], false);
    list_until(&b, "/%2Froom", <[_]>::is_empty);
    assert!(a.wait_exit(WAIT).is_some(), "the hub did not exit");
}

#[test]
fn on_redis_a_late_process_lists_what_started_before_it_and_a_crash_is_cleaned_up() {
    let redis = Redis::start();
    let url = redis.url();
    // A short history: the announcements are trimmed from it at once.
    let args = [
        "--redis",
        &url,
        "--jwt-key",
        KEY,
        "--subscriptions",
        "--history",
        "1",
        "--subscriptions-heartbeat",
        "200ms",
    ];
    let mut a = Hub::start(&args);
    let client = a.subscribe(
        "topic=%2Fdoc",
        &[(
            "Authorization",
            &with_payload(&[], json!({"name": "ann"}), 3600),
        )],
    );
    let listed = list_until(&a, "/%2Fdoc", |listed| listed.len() == 1);
    let subscriber = pairs(&listed)[0].1.clone();
    let publisher = bearer(&claims_token(&["*"], &[]));
    let resp = a.publish(
        &[("topic", "/other"), ("data", "x")],
        &[("Authorization", &publisher)],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());

    // A process started now lists the subscription all the same.
    let b = Hub::start(&args);
    let want = [("/doc".to_owned(), subscriber)];
    let listing = list_until(&b, "/%2Fdoc", |listed| listed == want);
    assert_eq!(
        listing["subscriptions"][0]["payload"],
        json!({"name": "ann"})
    );

    // A crashes (no announcement): B drops its subscriptions once A's key
    // expires, and announces their end.
    let mut watcher = watch(&b);
    a.child.kill().expect("kill the hub");
    let _ = a.child.wait();
    let ended = next_about(&mut watcher, "/doc");
    assert_eq!(ended["active"], false);
    assert_eq!(ended["payload"], json!({"name": "ann"}));
    list_until(&b, "/%2Fdoc", <[_]>::is_empty);
    assert!(b.metric("sse_hub_subscriptions_reaped_total") >= 1);
    // And a process started after that does not list them either.
    let c = Hub::start(&args);
    list_until(&c, "/%2Fdoc", <[_]>::is_empty);
    drop(client);
}
