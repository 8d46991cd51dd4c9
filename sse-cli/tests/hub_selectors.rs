//! Topic selectors of a real `sse hub`, both Mercure generations: URI
//! templates in `topic`, `match` / `match_exact`, `match_urlpattern`, the
//! refusals (unknown `match*` parameters, malformed templates and
//! patterns, too many selectors), templates in a token's
//! `mercure.subscribe` claim granting private updates, and the cursor
//! headers of a resumption from an unknown id.
//!
//! Every test starts its own hub (in-memory backend) on a free loopback
//! port and kills it when it ends. Every wait is bounded.

use std::time::Duration;

mod common;

use common::http::{HUB_PATH, form, request};
use common::hub::Hub;
use common::stream::{LOST, Stream};
use common::token::{KEY, bearer, claims_token};

const BOOK: &str = "https://example.com/books/1";
const AUTHOR: &str = "https://example.com/authors/1";

/// Publishes to the author, then to the book, and checks that `stream`
/// receives the book's update only (the author's came first: had it
/// been delivered, it would be the next event).
#[track_caller]
fn assert_book_not_author(hub: &Hub, stream: &mut Stream) {
    hub.publish_ok(&[("topic", AUTHOR), ("data", "author")]);
    let id = hub.publish_ok(&[("topic", BOOK), ("data", "book")]);
    let event = stream.event();
    assert_eq!((event.data(), event.id()), ("book", id.as_str()));
    stream.assert_quiet(Duration::from_millis(100));
}

#[test]
fn a_uri_template_selects_the_topics_it_expands_to() {
    let hub = Hub::start(&[]);
    let mut books = hub.subscribe(&form(&[("topic", "https://example.com/books/{id}")]), &[]);
    assert_book_not_author(&hub, &mut books);
    // A deeper path is not an expansion of `{id}`; `{+path}` takes it.
    let mut deep = hub.subscribe(&form(&[("topic", "https://example.com/{+path}")]), &[]);
    hub.publish_ok(&[
        ("topic", "https://example.com/books/1/reviews/2"),
        ("data", "deep"),
    ]);
    assert_eq!(deep.event().data(), "deep");
    books.assert_quiet(Duration::from_millis(100));
    // Many subscribers of one template: it is compiled once.
    let compiled = hub.metric("sse_hub_selectors_compiled_total");
    let more: Vec<Stream> = (0..20)
        .map(|_| hub.subscribe(&form(&[("topic", "https://example.com/books/{id}")]), &[]))
        .collect();
    assert_eq!(hub.metric("sse_hub_selectors_compiled_total"), compiled);
    drop(more);
}

#[test]
fn a_url_pattern_selects_the_urls_it_matches() {
    let hub = Hub::start(&[]);
    let mut books = hub.subscribe(
        &form(&[("match_urlpattern", "https://example.com/books/:id")]),
        &[],
    );
    assert_book_not_author(&hub, &mut books);
}

#[test]
fn match_and_match_exact_select_exactly() {
    let hub = Hub::start(&[]);
    for name in ["match", "match_exact"] {
        let mut exact = hub.subscribe(&form(&[(name, BOOK)]), &[]);
        assert_book_not_author(&hub, &mut exact);
        // Braces mean nothing to an exact selector.
        let braces = "https://example.com/books/{id}";
        let mut literal = hub.subscribe(&form(&[(name, braces)]), &[]);
        hub.publish_ok(&[("topic", BOOK), ("data", "not this")]);
        let id = hub.publish_ok(&[("topic", braces), ("data", "braces")]);
        let event = literal.event();
        assert_eq!(
            (event.data(), event.id()),
            ("braces", id.as_str()),
            "{name}"
        );
    }
    // Every kind in one subscription, each event once.
    let mut mixed = hub.subscribe(
        &form(&[
            ("topic", "https://example.com/books/{id}"),
            ("match", BOOK),
            ("match_urlpattern", "https://example.com/books/*"),
            ("match_exact", AUTHOR),
        ]),
        &[],
    );
    hub.publish_ok(&[("topic", BOOK), ("data", "1")]);
    hub.publish_ok(&[("topic", AUTHOR), ("data", "2")]);
    assert_eq!(mixed.datas(2), ["1", "2"]);
    mixed.assert_quiet(Duration::from_millis(100));
}

#[test]
fn bad_selectors_are_refused_with_a_sentence() {
    let hub = Hub::start(&[]);
    let refused = |query: &str| match hub.open(query, &[]) {
        Ok(_) => panic!("{query} was accepted"),
        Err(resp) => (resp.status, resp.text()),
    };
    let (status, text) = refused(&form(&[("topic", "a"), ("matchfoo", "b")]));
    assert_eq!(status, 400);
    assert!(
        text.contains("unknown selector parameter `matchfoo`"),
        "{text}"
    );

    let (status, text) = refused(&form(&[("topic", "https://example.com/books/{id")]));
    assert_eq!(status, 400);
    assert_eq!(
        text.trim(),
        "invalid selector in `topic`: the `{` at byte 26 is never closed: end the expression \
         with `}` (to select a topic holding `{` as it is, use `match_exact`)"
    );
    let (status, text) = refused(&form(&[("topic", "/books/{id-x}")]));
    assert_eq!(status, 400);
    assert!(text.contains("may not hold '-'"), "{text}");
    let (status, text) = refused(&form(&[("match_urlpattern", "/books/:id")]));
    assert_eq!(status, 400);
    assert!(
        text.contains("invalid URL pattern") && text.contains("absolute"),
        "{text}"
    );
    let (status, text) = refused(&form(&[(
        "topic",
        &format!("/{}/{{id}}", "a".repeat(3000)),
    )]));
    assert_eq!(status, 400);
    assert!(text.contains("at most 2048 bytes"), "{text}");

    // At least one selector, at most 1000 of all kinds together.
    let (status, text) = refused("lastEventID=earliest");
    assert_eq!(status, 400);
    assert!(text.contains("missing `topic`"), "{text}");
    let mut fields: Vec<(&str, String)> = (0..600).map(|i| ("topic", format!("t{i}"))).collect();
    fields.extend((0..401).map(|i| ("match", format!("m{i}"))));
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, text) = refused(&form(&borrowed));
    assert_eq!(status, 400);
    assert!(text.contains("at most 1000"), "{text}");
    let _ok = hub.subscribe(&form(&borrowed[..1000]), &[]);
}

#[test]
fn a_template_in_the_subscribe_claim_grants_private_updates() {
    let hub = Hub::start(&["--jwt-key", KEY]);
    let publisher = bearer(&claims_token(&["*"], &[]));
    let reader = bearer(&claims_token(&[], &["https://example.com/books/{id}"]));
    let mut all = hub.subscribe("topic=*", &[("Authorization", &reader)]);
    let mut books = hub.subscribe(
        &form(&[("topic", "https://example.com/{+any}")]),
        &[("Authorization", &reader)],
    );
    let publish = |topic: &str, data: &str| {
        let resp = hub.publish(
            &[("topic", topic), ("data", data), ("private", "on")],
            &[("Authorization", &publisher)],
        );
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.text()
    };
    publish(AUTHOR, "author");
    let id = publish(BOOK, "book");
    for stream in [&mut all, &mut books] {
        let event = stream.event();
        assert_eq!((event.data(), event.id()), ("book", id.as_str()));
    }
    // The replay applies the same rule.
    let mut replay = hub.subscribe(
        "topic=*&lastEventID=earliest",
        &[("Authorization", &reader)],
    );
    assert_eq!(replay.event().data(), "book");
    replay.assert_quiet(Duration::from_millis(100));

    // A malformed template in a claim: the token is refused.
    let broken = bearer(&claims_token(&[], &["https://example.com/books/{id"]));
    let resp = hub
        .open("topic=*", &[("Authorization", &broken)])
        .err()
        .unwrap();
    assert_eq!(resp.status, 401);
    assert!(
        resp.text()
            .contains("the `mercure.subscribe` claim holds an invalid selector"),
        "{}",
        resp.text()
    );
}

#[test]
fn resuming_from_an_unknown_id_answers_earliest() {
    let hub = Hub::start(&[]);
    let id = hub.publish_ok(&[("topic", BOOK), ("data", "kept")]);
    let mut lost = hub.subscribe(
        &form(&[("topic", "https://example.com/books/{id}")]),
        &[("Last-Event-ID", "no-such-id")],
    );
    assert_eq!(lost.header("last-event-id"), Some("earliest"));
    assert_eq!(lost.header("mercure-last-event-id"), Some("earliest"));
    let event = lost.event();
    assert_eq!((event.event_type(), event.data()), (LOST, "no-such-id"));
    assert_eq!(lost.event().data(), "kept");
    // A known id is the cursor itself, in both headers.
    let found = hub.subscribe(&form(&[("match", BOOK), ("last_event_id", &id)]), &[]);
    assert_eq!(found.header("last-event-id"), Some(id.as_str()));
    assert_eq!(found.header("mercure-last-event-id"), Some(id.as_str()));
}

#[test]
fn distinct_patterns_are_bounded_hub_wide() {
    let hub = Hub::start(&["--max-patterns", "2"]);
    let _books = hub.subscribe(&form(&[("topic", "https://example.com/books/{id}")]), &[]);
    let _authors = hub.subscribe(
        &form(&[("match_urlpattern", "https://example.com/authors/:id")]),
        &[],
    );
    // A third distinct pattern: 503, naming the flag.
    let refused = hub
        .open(&form(&[("topic", "https://example.com/shelves/{id}")]), &[])
        .err()
        .expect("refused");
    assert_eq!(refused.status, 503);
    assert!(
        refused.text().contains("--max-patterns"),
        "{}",
        refused.text()
    );
    // A pattern in use, and exact topics, still subscribe and receive.
    let mut same = hub.subscribe(
        &form(&[
            ("topic", "https://example.com/books/{id}"),
            ("topic", "https://example.com/shelves/1"),
        ]),
        &[],
    );
    hub.assert_delivers(&mut same, BOOK, "book");
}

#[test]
fn query_subscribes_with_its_selectors_in_a_form_body() {
    let hub = Hub::start(&[]);
    let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
    let body = form(&[
        ("match_urlpattern", "https://example.com/books/:id"),
        ("match", "https://example.com/shelves/1"),
    ]);
    let query = request("QUERY", HUB_PATH, &form_type, body.as_bytes());
    let mut stream = Stream::open(hub.addr, &query).expect("a stream");
    assert_book_not_author(&hub, &mut stream);
    hub.assert_delivers(&mut stream, "https://example.com/shelves/1", "shelf");
    // The body must be a form, and must hold a selector.
    let json = request(
        "QUERY",
        HUB_PATH,
        &[("Content-Type", "application/json")],
        b"{}",
    );
    let refused = Stream::open(hub.addr, &json).err().expect("refused");
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("form"), "{}", refused.text());
    let empty = request("QUERY", HUB_PATH, &form_type, b"");
    assert_eq!(
        Stream::open(hub.addr, &empty)
            .err()
            .expect("refused")
            .status,
        400
    );
}
