//! Publishing to a real `sse hub`: what the form may hold, the ids the hub
//! gives, the body size limit (also for chunked bodies), and several
//! publishes on one connection.
//!
//! Every test starts its own hub (in-memory backend) on a free loopback
//! port and kills it when it ends. Every wait is bounded.

mod common;

use common::WAIT;
use common::http::form;
use common::hub::Hub;

/// Orders assigned ids: a shorter id (a smaller counter) first, then bytes.
fn natural(id: &str) -> (usize, &str) {
    (id.len(), id)
}

/// A raw publish request whose form `body` is sent in chunks of `piece`
/// bytes at most (so that its length is unknown up front).
fn chunked_publish(body: &str, piece: usize) -> Vec<u8> {
    let mut raw = b"POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for piece in body.as_bytes().chunks(piece) {
        raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

#[test]
fn publish_validates_the_form() {
    let hub = Hub::start(&[]);
    let mut watch = hub.subscribe("topic=*", &[]);

    let ok = hub.publish(&[("topic", "p"), ("data", "valid")], &[]);
    assert_eq!(ok.status, 200);
    ok.assert_content_type("text/plain");
    let first_id = ok.text();
    assert!(
        !first_id.is_empty() && !first_id.contains('\n'),
        "{first_id:?}"
    );

    let bad: &[(&str, &[u8])] = &[
        ("no topic", b"data=x"),
        ("empty body", b""),
        ("type with CR", b"topic=p&data=x&type=a%0Db"),
        ("type with LF", b"topic=p&data=x&type=a%0Ab"),
        ("type with NUL", b"topic=p&data=x&type=a%00b"),
        ("type with a tab", b"topic=p&data=x&type=a%09b"),
        ("type with DEL", b"topic=p&data=x&type=a%7Fb"),
        ("type with a C1 control", b"topic=p&data=x&type=a%C2%85b"),
        ("reserved type", b"topic=p&data=x&type=mercure"),
        ("id with CR", b"topic=p&data=x&id=a%0Db"),
        ("id with LF", b"topic=p&data=x&id=a%0A"),
        ("id with NUL", b"topic=p&data=x&id=%00"),
        ("id with a tab", b"topic=p&data=x&id=a%09"),
        ("id with a leading #", b"topic=p&data=x&id=%23frag"),
        ("non-numeric retry", b"topic=p&data=x&retry=abc"),
        ("fractional retry", b"topic=p&data=x&retry=1.5"),
        ("negative retry", b"topic=p&data=x&retry=-1"),
        ("empty retry", b"topic=p&data=x&retry="),
    ];
    for (what, body) in bad {
        let resp = hub.post(body, &[]);
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
    }
    let topics = |n: usize| {
        let mut body = (0..n)
            .map(|i| format!("topic=t{i}"))
            .collect::<Vec<_>>()
            .join("&");
        body.push_str("&data=many");
        body
    };
    assert_eq!(
        hub.post(topics(1001).as_bytes(), &[]).status,
        400,
        "1001 topics"
    );
    assert_eq!(
        hub.post(topics(1000).as_bytes(), &[]).status,
        200,
        "1000 topics"
    );

    // Topics under the hub's URL are the hub's own.
    for body in [
        &b"topic=/.well-known/mercure/subscriptions/a/b&data=x"[..],
        b"topic=p&topic=https%3A%2F%2Fexample.com%2F.well-known%2Fmercure%2Fsubscriptions&data=x",
    ] {
        let resp = hub.post(body, &[]);
        assert_eq!(resp.status, 403, "{}", resp.text());
        assert!(resp.text().contains("reserved"), "{}", resp.text());
    }

    // A huge retry that does not fit: refused, not wrapped.
    let resp = hub.post(b"topic=p&data=x&retry=99999999999999999999999", &[]);
    assert_eq!(resp.status, 400);

    // The publisher's id; `#` inside is fine.
    let id = hub.publish_ok(&[("topic", "p"), ("data", "mine"), ("id", "my-id#1")]);
    assert_eq!(id, "my-id#1");

    // Assigned ids: distinct and increasing in publish order.
    let ids: Vec<String> = (0..30)
        .map(|i| hub.publish_ok(&[("topic", "p"), ("data", &format!("n{i}"))]))
        .collect();
    for pair in ids.windows(2) {
        assert!(
            natural(&pair[0]) < natural(&pair[1]),
            "ids not monotonic: {pair:?}"
        );
    }
    assert!(natural(&first_id) < natural(&ids[0]));

    // Only the accepted updates were published, in order.
    let got = watch.until_data("n29", WAIT);
    let mut want = vec!["valid".to_owned(), "many".to_owned(), "mine".to_owned()];
    want.extend((0..30).map(|i| format!("n{i}")));
    assert_eq!(got, want, "a refused update was (half) published");
    assert_eq!(hub.metric("sse_hub_updates_published_total"), 33);
}

#[test]
fn publish_body_over_the_limit_is_413() {
    let hub = Hub::start(&["--max-body", "1000"]);
    let mut watch = hub.subscribe("topic=*", &[]);
    let big = "y".repeat(1000);
    let resp = hub.publish(&[("topic", "p"), ("data", &big)], &[]);
    assert_eq!(resp.status, 413);
    // Chunked, so that the length is unknown up front.
    let body = form(&[("topic", "p"), ("data", &big)]);
    assert_eq!(
        hub.raw(&chunked_publish(&body, 300)).status,
        413,
        "chunked over the limit"
    );
    // Just under: fine, and chunked bodies are read.
    let small = "y".repeat(900);
    let body = form(&[("topic", "p"), ("data", &small)]);
    assert_eq!(hub.raw(&chunked_publish(&body, body.len())).status, 200);
    assert_eq!(watch.event().data(), small, "only the one under the limit");
}

#[test]
fn publish_keeps_the_connection_alive() {
    // A publisher may send several updates on one connection.
    let hub = Hub::start(&[]);
    let mut conn = hub.connect();
    for i in 0..3 {
        let body = form(&[("topic", "k"), ("data", &i.to_string())]);
        let resp = conn.post(body.as_bytes());
        assert_eq!(resp.status, 200);
    }
}
