//! Resuming a stream of a real `sse hub`: cursors in the header and the
//! query, the seam between history and live events, lost events, the
//! history's size, and a slow subscriber that is cut off and catches up.
//!
//! Every test starts its own hub (in-memory backend) on a free loopback
//! port and kills it when it ends. Every wait is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::WAIT;
use common::http::{Fill, HUB_PATH, exchange, form, metric, request, with_form_type};
use common::hub::Hub;
use common::stream::{LOST, Stream};
use sse_proto::Event;

/// Publishes data `0..n` on topic `r`; their ids.
fn publish_numbered(hub: &Hub, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| hub.publish_ok(&[("topic", "r"), ("data", &i.to_string())]))
        .collect()
}

#[test]
fn an_empty_cursor_is_no_cursor() {
    let hub = Hub::start(&[]);
    publish_numbered(&hub, 3);
    for (query, headers) in [
        ("topic=r", &[("Last-Event-ID", "")][..]),
        ("topic=r&lastEventID=", &[][..]),
        (
            "topic=r&lastEventID=&lastEventId=",
            &[("Last-Event-ID", "")][..],
        ),
    ] {
        let mut s = hub.subscribe(query, headers);
        assert_eq!(s.header("last-event-id"), None, "{query} {headers:?}");
        let id = hub.publish_ok(&[("topic", "r"), ("data", "live")]);
        let event = s.event();
        assert_eq!(
            (event.event_type(), event.data(), event.id()),
            ("message", "live", id.as_str()),
            "{query} {headers:?}: replayed history"
        );
    }
    // An empty header does not hide the query parameter.
    let first = hub.subscribe("topic=r&lastEventID=earliest", &[("Last-Event-ID", "")]);
    assert_eq!(first.header("last-event-id"), Some("earliest"));
    assert_eq!(hub.metric("sse_hub_replay_misses_total"), 0);
}

#[test]
fn resumes_from_header_and_query_parameters() {
    let hub = Hub::start(&[]);
    // Events on another topic in between must not be replayed.
    let mut ids = publish_numbered(&hub, 3);
    let other = hub.publish_ok(&[("topic", "other"), ("data", "not for r")]);
    ids.extend((3..5).map(|i| hub.publish_ok(&[("topic", "r"), ("data", &i.to_string())])));

    let expect_resume = |mut s: Stream, cursor: &str, from: usize| {
        assert_eq!(
            s.header("last-event-id"),
            Some(cursor),
            "the cursor resumed from"
        );
        assert_eq!(s.header("mercure-last-event-id"), Some(cursor));
        let want: Vec<String> = (from..5).map(|i| i.to_string()).collect();
        let got = s.datas(want.len());
        assert_eq!(got, want, "resumed after {cursor}");
        s
    };

    let s1 = expect_resume(
        hub.subscribe("topic=r", &[("Last-Event-ID", &ids[1])]),
        &ids[1],
        2,
    );
    let s2 = expect_resume(
        hub.subscribe(&form(&[("topic", "r"), ("lastEventID", &ids[2])]), &[]),
        &ids[2],
        3,
    );
    let s3 = expect_resume(
        hub.subscribe(&form(&[("topic", "r"), ("last_event_id", &ids[0])]), &[]),
        &ids[0],
        1,
    );
    let s4 = expect_resume(
        hub.subscribe(&form(&[("topic", "r"), ("lastEventId", &ids[3])]), &[]),
        &ids[3],
        4,
    );
    // The header wins over the query.
    let s5 = expect_resume(
        hub.subscribe(
            &form(&[("topic", "r"), ("lastEventID", &ids[0])]),
            &[("Last-Event-ID", &ids[2])],
        ),
        &ids[2],
        3,
    );
    // `earliest`: every retained event.
    let s6 = expect_resume(
        hub.subscribe("topic=r", &[("Last-Event-ID", "earliest")]),
        "earliest",
        0,
    );
    let s7 = expect_resume(
        hub.subscribe("topic=r&lastEventID=earliest", &[]),
        "earliest",
        0,
    );
    // The id of an update on another topic is a fine cursor too.
    let s9 = expect_resume(
        hub.subscribe("topic=r", &[("Last-Event-ID", &other)]),
        &other,
        3,
    );
    // The newest id: nothing to replay.
    let s8 = expect_resume(
        hub.subscribe("topic=r", &[("Last-Event-ID", &ids[4])]),
        &ids[4],
        5,
    );
    // No cursor: live only, no header.
    let live = hub.subscribe("topic=r", &[]);
    assert_eq!(live.header("last-event-id"), None);
    assert_eq!(live.header("mercure-last-event-id"), None);

    // Everybody continues live, with nothing replayed twice.
    let id = hub.publish_ok(&[("topic", "r"), ("data", "live")]);
    for mut s in [s1, s2, s3, s4, s5, s6, s7, s8, s9, live] {
        let event = s.event();
        assert_eq!((event.data(), event.id()), ("live", id.as_str()));
    }
    let text = hub.metrics();
    assert_eq!(metric(&text, "sse_hub_replay_requests_total"), 9);
    assert_eq!(metric(&text, "sse_hub_replay_misses_total"), 0);
}

#[test]
fn no_gap_and_no_duplicate_at_the_seam_under_concurrent_publishing() {
    let hub = Hub::start(&[]);
    let addr = hub.addr;
    let (tx, rx) = mpsc::channel::<String>();
    let publisher = thread::spawn(move || {
        for i in 1..=500 {
            let body = form(&[("topic", "seam"), ("data", &i.to_string())]);
            let resp = exchange(
                addr,
                &request("POST", HUB_PATH, &with_form_type(&[]), body.as_bytes()),
            );
            assert_eq!(resp.status, 200);
            if tx.send(resp.text()).is_err() {
                return;
            }
            if i > 100 {
                thread::sleep(Duration::from_micros(300));
            }
        }
    });
    let mut ids = Vec::new();
    while ids.len() < 100 {
        ids.push(rx.recv_timeout(WAIT).expect("the publisher stalled"));
    }
    let mut s = hub.subscribe("topic=seam", &[("Last-Event-ID", &ids[99])]);
    // The subscription really overlapped the publishing.
    let during = rx.try_iter().count();
    let got = s.until_data("500", Duration::from_secs(20));
    publisher.join().expect("the publisher panicked");
    let want: Vec<String> = (101..=500).map(|i| i.to_string()).collect();
    assert_eq!(got.len(), want.len(), "gap or duplicate at the seam");
    assert_eq!(got, want);
    assert!(
        during < 400,
        "the subscriber resumed after publishing ended"
    );
    assert!(
        s.next_event(Duration::from_millis(200)).is_none(),
        "a duplicate after the last"
    );
}

#[test]
fn unknown_cursor_sends_lost_event_then_all_history() {
    let hub = Hub::start(&[]);
    let ids = publish_numbered(&hub, 3);
    let mut s = hub.subscribe("topic=r", &[("Last-Event-ID", "no-such-id")]);
    // The stream resumes from the start of the history, and says so.
    assert_eq!(s.header("last-event-id"), Some("earliest"));
    assert_eq!(s.header("mercure-last-event-id"), Some("earliest"));
    let lost = s.event();
    assert_eq!(lost.event_type(), LOST);
    assert_eq!(lost.data(), "no-such-id");
    assert_eq!(lost.id(), "", "the lost event carries no id");
    let replay: Vec<Event> = (0..3).map(|_| s.event()).collect();
    assert_eq!(
        replay.iter().map(|e| e.data()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
    assert_eq!(
        replay.iter().map(|e| e.id()).collect::<Vec<_>>(),
        ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // The same through the query parameter.
    let mut q = hub.subscribe("topic=r&lastEventID=gone", &[]);
    assert_eq!(q.event().event_type(), LOST);
    assert_eq!(q.datas(3), ["0", "1", "2"]);
    hub.assert_delivers(&mut s, "r", "live");
    assert_eq!(q.event().data(), "live");
}

#[test]
fn history_is_trimmed_to_its_size() {
    let hub = Hub::start(&["--history", "5"]);
    let ids = publish_numbered(&hub, 10);
    // An evicted id: lost, then the five retained.
    let mut s = hub.subscribe("topic=r", &[("Last-Event-ID", &ids[1])]);
    assert_eq!(s.header("last-event-id"), Some("earliest"));
    assert_eq!(s.header("mercure-last-event-id"), Some("earliest"));
    let lost = s.event();
    assert_eq!((lost.event_type(), lost.data()), (LOST, ids[1].as_str()));
    assert_eq!(s.datas(5), ["5", "6", "7", "8", "9"]);
    // A retained id: no loss.
    let mut t = hub.subscribe("topic=r", &[("Last-Event-ID", &ids[6])]);
    assert_eq!(t.header("last-event-id"), Some(ids[6].as_str()));
    assert_eq!(t.datas(3), ["7", "8", "9"]);
    // `earliest`: the five.
    let mut e = hub.subscribe("topic=r", &[("Last-Event-ID", "earliest")]);
    assert_eq!(e.datas(5), ["5", "6", "7", "8", "9"]);
    let text = hub.metrics();
    assert_eq!(metric(&text, "sse_hub_replay_misses_total"), 1);
    assert_eq!(metric(&text, "sse_hub_replay_requests_total"), 3);
}

#[test]
fn a_slow_subscriber_is_cut_off_and_blocks_nobody() {
    const EVENTS: usize = 320;
    let hub = Hub::start(&["--queue", "8"]);
    // Never reads past its response head.
    let mut slow = hub.subscribe("topic=big", &[]);
    let mut fast = hub.subscribe("topic=big", &[]);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        thread::spawn(move || {
            // Reads raw bytes as fast as it can; decodes afterwards.
            let mut quiet_since: Option<Instant> = None;
            let hard_stop = Instant::now() + Duration::from_secs(40);
            loop {
                let deadline = Instant::now() + Duration::from_millis(100);
                match fast.conn.fill(deadline) {
                    Fill::Data => quiet_since = None,
                    Fill::Quiet => {
                        if done.load(Ordering::SeqCst) {
                            let since = *quiet_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_millis(400) {
                                break;
                            }
                        }
                    }
                    Fill::Closed => {
                        fast.eof = true;
                        break;
                    }
                }
                if Instant::now() > hard_stop {
                    break;
                }
            }
            fast.decode();
            fast
        })
    };
    let filler = "x".repeat(64 * 1024);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..EVENTS {
        let t = Instant::now();
        hub.publish_ok(&[("topic", "big"), ("data", &format!("{i:04}:{filler}"))]);
        slowest = slowest.max(t.elapsed());
    }
    let publishing = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let mut fast = reader.join().expect("reader");
    assert!(
        slowest < Duration::from_secs(1),
        "a publish took {slowest:?}: a slow subscriber blocked publishing"
    );
    assert!(
        publishing < Duration::from_secs(20),
        "publishing took {publishing:?}"
    );

    // The reading subscriber got everything, in order.
    assert!(!fast.eof, "the reading subscriber was disconnected");
    let mut got = Vec::new();
    while let Some(event) = fast.next_event(Duration::ZERO) {
        got.push(event.data()[..4].to_owned());
    }
    let want: Vec<String> = (0..EVENTS).map(|i| format!("{i:04}")).collect();
    assert_eq!(got.len(), EVENTS, "the reading subscriber missed events");
    assert_eq!(got, want);

    // The slow one was disconnected: reading it now ends before the end.
    assert!(
        slow.wait_end(Duration::from_secs(20)),
        "the slow subscriber is still connected"
    );
    let mut slow_got = 0;
    while slow.next_event(Duration::ZERO).is_some() {
        slow_got += 1;
    }
    assert!(slow_got < EVENTS, "the slow subscriber got everything?");
    assert!(hub.metric("sse_hub_subscribers_lagged_total") >= 1);
    // It can come back and catch up from history.
    let last_seen = slow.last_event_id().to_owned();
    let cursor = if last_seen.is_empty() {
        "earliest".to_owned()
    } else {
        last_seen
    };
    let mut again = hub.subscribe("topic=big", &[("Last-Event-ID", &cursor)]);
    let mut n = slow_got;
    while n < EVENTS {
        let event = again.event();
        assert_eq!(
            &event.data()[..4],
            format!("{n:04}"),
            "catching up in order"
        );
        n += 1;
    }
}
