//! The reconnecting `EventSource` machine driven by a virtual clock and a
//! scripted server: every scenario of `tests/vectors/client-vectors.md` (SCN-*), the
//! MUST/WPT rules, the library policies, and a property test.

use std::ops::Add;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use sse_proto::client::{
    ClientConfig, CloseReason, EventSource, Fetch, Jitter, Output, ReadyState, ReconnectPolicy,
    ReconnectReason, RedirectTarget, ResponseSummary, Warning,
};

/// A virtual instant in whole milliseconds; durations round up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct T(u64);

impl Add<Duration> for T {
    type Output = T;
    fn add(self, d: Duration) -> T {
        let ms = u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        T(self.0.saturating_add(ms))
    }
}

const SSE: &str = "text/event-stream";
const URL: &str = "http://example.com/stream";

/// The scripted-server driver: applies inputs at the current virtual time,
/// drains every output into a trace, and checks the invariants after every
/// step.
struct Sim {
    es: EventSource<T>,
    now: T,
    trace: Vec<String>,
    outputs: Vec<Output>,
    requests: Vec<(T, Fetch)>,
    opens: Vec<T>,
    delays: Vec<Duration>,
    closed: bool,
    /// Called for each event, with the source (to model handlers).
    on_event: Option<fn(&mut EventSource<T>, &str)>,
}

impl Sim {
    fn new(config: ClientConfig) -> Sim {
        Sim::with_seed(config, 7)
    }

    fn with_seed(config: ClientConfig, seed: u64) -> Sim {
        let mut sim = Sim {
            es: EventSource::new(config, T(0), seed),
            now: T(0),
            trace: Vec::new(),
            outputs: Vec::new(),
            requests: Vec::new(),
            opens: Vec::new(),
            delays: Vec::new(),
            closed: false,
            on_event: None,
        };
        sim.drain();
        sim
    }

    fn drain(&mut self) {
        while let Some(out) = self.es.poll_output() {
            assert!(!self.closed, "output after Closed: {out:?}");
            let line = match &out {
                Output::Connect(req) => {
                    self.requests.push((self.now, req.clone()));
                    format!("REQ{}", self.requests.len())
                }
                Output::Disconnect(_) => "disconnect".into(),
                Output::Open => {
                    self.opens.push(self.now);
                    "open".into()
                }
                Output::Event(e) => {
                    if let Some(handler) = self.on_event {
                        handler(&mut self.es, e.data());
                    }
                    format!("msg({},{},{})", e.event_type(), e.data(), e.id())
                }
                Output::Retry(_) => "retry".into(),
                Output::Reconnecting { delay, .. } => {
                    self.delays.push(*delay);
                    "error@CONNECTING".into()
                }
                Output::Closed(CloseReason::User) => {
                    self.closed = true;
                    "closed".into()
                }
                Output::Closed(_) => {
                    self.closed = true;
                    "error@CLOSED".into()
                }
                Output::Warning(_) => "warning".into(),
                _ => "other".into(),
            };
            self.trace.push(line);
            self.outputs.push(out);
        }
        // The busy-loop guard: no timer at or before now once drained.
        if let Some(t) = self.es.poll_timeout() {
            assert!(t > self.now, "busy loop: timer {t:?} at now {:?}", self.now);
        }
        if self.closed {
            assert_eq!(self.es.ready_state(), ReadyState::Closed);
            assert_eq!(self.es.poll_timeout(), None);
        }
    }

    fn respond(&mut self, head: ResponseSummary<'_>) -> &mut Sim {
        self.es.handle_response(head, self.now);
        self.drain();
        self
    }

    fn ok(&mut self) -> &mut Sim {
        self.respond(ResponseSummary::new(200).content_type(SSE))
    }

    fn status(&mut self, status: u16) -> &mut Sim {
        self.respond(ResponseSummary::new(status).content_type(SSE))
    }

    fn redirect(&mut self, status: u16, location: &str) -> &mut Sim {
        self.respond(ResponseSummary::new(status).location(location))
    }

    fn body(&mut self, bytes: &[u8]) -> &mut Sim {
        self.es.handle_bytes(bytes, self.now);
        self.drain();
        self
    }

    fn eof(&mut self) -> &mut Sim {
        self.es.handle_eof(self.now);
        self.drain();
        self
    }

    fn error(&mut self) -> &mut Sim {
        self.es.handle_error(self.now);
        self.drain();
        self
    }

    fn close(&mut self) -> &mut Sim {
        self.es.close();
        self.drain();
        self
    }

    /// Moves the clock forward and fires the timer if it is due.
    fn advance(&mut self, ms: u64) -> &mut Sim {
        self.now = T(self.now.0 + ms);
        self.es.handle_timeout(self.now);
        self.drain();
        self
    }

    /// Sleeps until the pending timer and fires it. Returns the wait.
    fn wait(&mut self) -> u64 {
        let t = self.es.poll_timeout().expect("a timer is pending");
        let waited = t.0 - self.now.0;
        self.now = t;
        self.es.handle_timeout(t);
        self.drain();
        waited
    }

    fn req(&self, n: usize) -> &Fetch {
        &self.requests[n - 1].1
    }

    fn leid(&self, n: usize) -> Option<&str> {
        self.req(n).header("Last-Event-ID")
    }

    /// Takes the trace so far, its entries joined by single spaces (the
    /// scenarios whose traces are compared whole send no data with spaces).
    fn take_trace(&mut self) -> String {
        std::mem::take(&mut self.trace).join(" ")
    }

    /// Asserts that the trace since the last take is `want` (its entries
    /// joined by single spaces), and takes it.
    #[track_caller]
    fn assert_trace(&mut self, want: &str) {
        assert_eq!(self.take_trace(), want);
    }

    /// The `msg(...)` entries of the trace so far, in order.
    fn messages(&self) -> Vec<&str> {
        self.trace
            .iter()
            .map(String::as_str)
            .filter(|l| l.starts_with("msg"))
            .collect()
    }

    /// Why the machine last said it would reconnect, if its last output
    /// was a reconnect.
    fn reconnect_reason(&self) -> Option<ReconnectReason> {
        match self.outputs.last() {
            Some(Output::Reconnecting { reason, .. }) => Some(*reason),
            _ => None,
        }
    }
}

fn cfg() -> ClientConfig {
    ClientConfig::new(URL)
}

fn msg(data: &str, id: &str) -> String {
    format!("msg(message,{data},{id})")
}

// ---------------------------------------------------------------- scenarios

#[test]
fn scn_1_retry_reconnect_twice_then_204_stops_everything() {
    let mut sim = Sim::new(cfg());
    assert_eq!(sim.leid(1), None);
    sim.ok().body(b"retry: 2\ndata: opened\n\n").eof();
    sim.assert_trace("REQ1 open retry msg(message,opened,) error@CONNECTING");
    assert!(sim.wait() >= 2);
    assert_eq!(sim.leid(2), None);
    sim.ok().body(b"data: reconnected\n\n").eof();
    assert!(sim.wait() >= 2);
    sim.respond(ResponseSummary::new(204));
    sim.assert_trace("REQ2 open msg(message,reconnected,) error@CONNECTING REQ3 error@CLOSED");
    sim.advance(3_600_000);
    assert_eq!(sim.requests.len(), 3);
    assert_eq!(sim.es.close_reason(), Some(&CloseReason::NoContent));
}

#[test]
fn scn_2_reconnect_after_a_clean_end_of_body() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"retry: 2\ndata: ok\n\n").eof();
    assert_eq!(sim.wait(), 2);
    sim.ok().body(b"data: data\n\n");
    sim.assert_trace(
        "REQ1 open retry msg(message,ok,) error@CONNECTING REQ2 open msg(message,data,)",
    );
    assert_eq!(sim.es.ready_state(), ReadyState::Open);
}

#[test]
fn scn_3_last_event_id_is_sent_and_carried_into_the_new_stream() {
    let mut sim = Sim::new(cfg());
    sim.ok()
        .body(b"id: \xE2\x80\xA6\nretry: 200\ndata: hello\n\n")
        .eof();
    assert!(sim.trace.contains(&msg("hello", "\u{2026}")));
    assert_eq!(sim.wait(), 200);
    assert_eq!(sim.leid(2).map(str::as_bytes), Some(&b"\xE2\x80\xA6"[..]));
    for n in 2..=3 {
        sim.take_trace();
        sim.ok().body(b"data: \xE2\x80\xA6\n\n").eof();
        assert_eq!(sim.trace[1], msg("\u{2026}", "\u{2026}"), "connection {n}");
        sim.wait();
        assert_eq!(sim.leid(n + 1), Some("\u{2026}"));
    }
}

#[test]
fn scn_4_an_id_containing_nul_never_reaches_the_header() {
    for v in ["\0\0", "x\0", "\0x", "x\0x", " \0"] {
        let body = format!("id: {v}\nretry: 200\ndata: hello\n\n");
        let mut sim = Sim::new(cfg());
        sim.ok().body(body.as_bytes()).eof();
        sim.wait();
        assert_eq!(sim.leid(2), None, "{v:?}");
        sim.ok().body(body.as_bytes()).eof();
        let want = [msg("hello", ""), msg("hello", "")];
        assert_eq!(sim.messages(), want, "{v:?}");
        sim.wait();
        assert_eq!(sim.leid(3), None, "{v:?}");
    }
}

#[test]
fn scn_5_a_truncated_block_commits_neither_its_event_nor_its_id() {
    let body = b"retry:1000\ndata:test1\n\nid:test\ndata:test2\n";
    let mut sim = Sim::new(cfg());
    sim.ok().body(body).eof();
    sim.assert_trace("REQ1 open retry msg(message,test1,) error@CONNECTING");
    assert_eq!(sim.wait(), 1000);
    assert_eq!(sim.leid(2), None);
    sim.ok().body(body).eof();
    sim.assert_trace("REQ2 open retry msg(message,test1,) error@CONNECTING");
}

#[test]
fn scn_6_retry_timing_persists_across_connections() {
    for body in [
        &b"retry:03000\ndata:x\n\n\n"[..],
        b"retry:3000\nretry:1000x\ndata:x\n\n\n",
    ] {
        let mut sim = Sim::new(
            cfg().reconnect(ReconnectPolicy::default().initial_delay(Duration::from_millis(10))),
        );
        sim.ok().body(body).eof();
        sim.wait();
        sim.ok().body(b"data:y\n\n").eof();
        sim.wait();
        sim.ok();
        let gaps: Vec<u64> = sim.opens.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert_eq!(gaps, [3000, 3000]);
        assert_eq!(sim.es.reconnection_time(), Duration::from_secs(3));
    }
}

#[test]
fn scn_7_statuses_that_fail() {
    for status in [
        204, 205, 210, 299, 404, 410, 503, 201, 202, 206, 500, 429, 304, 301,
    ] {
        let mut sim = Sim::new(cfg());
        sim.status(status)
            .body(b"data: x\n\n")
            .eof()
            .advance(100_000);
        assert_eq!(sim.take_trace(), "REQ1 error@CLOSED", "{status}");
        let want = if status == 204 {
            CloseReason::NoContent
        } else {
            CloseReason::BadStatus(status)
        };
        assert_eq!(sim.es.close_reason(), Some(&want));
    }
}

#[test]
fn scn_8_mime_types() {
    for ct in [
        Some("text/x-bogus"),
        Some("x bogus"),
        None,
        Some("text/plain"),
        Some("application/json"),
    ] {
        let mut sim = Sim::new(cfg());
        let head = match ct {
            Some(ct) => ResponseSummary::new(200).content_type(ct),
            None => ResponseSummary::new(200),
        };
        sim.respond(head).body(b"data: x\n\n");
        assert_eq!(sim.take_trace(), "REQ1 error@CLOSED", "{ct:?}");
        assert_eq!(
            sim.es.close_reason(),
            Some(&CloseReason::BadContentType(ct.map(Into::into)))
        );
    }
    for ct in [
        "text/event-stream;",
        "TEXT/EVENT-STREAM; charset=UTF-8",
        "TEXT/Event-Stream",
    ] {
        let mut sim = Sim::new(cfg());
        sim.respond(ResponseSummary::new(200).content_type(ct));
        assert_eq!(sim.es.ready_state(), ReadyState::Open, "{ct}");
    }
    let mut sim = Sim::new(cfg());
    sim.respond(ResponseSummary::new(200).content_type("text/event-stream;charset=windows-1252"))
        .body(b"data:ok\xE2\x80\xA6\n\n\n");
    sim.assert_trace("REQ1 open msg(message,ok\u{2026},)");
}

#[test]
fn scn_9_redirects_are_followed_and_reconnects_follow_recon_9() {
    for status in [301, 302, 303, 307, 308] {
        let mut sim = Sim::new(cfg());
        sim.redirect(status, "http://example.com/moved").ok();
        assert_eq!(sim.take_trace(), "REQ1 REQ2 open", "{status}");
        assert_eq!(sim.req(2).url, "http://example.com/moved");
        sim.body(b"data: x\n\n").eof().wait();
        let permanent = matches!(status, 301 | 308);
        let want = if permanent {
            "http://example.com/moved"
        } else {
            URL
        };
        assert_eq!(sim.req(3).url, want, "{status}");
        assert_eq!(sim.es.url(), URL);
    }
    // Cross-origin: the origin is the final one, the url unchanged.
    let mut sim = Sim::new(cfg());
    sim.redirect(302, "https://other.example:8443/s").ok();
    assert_eq!(
        sim.es.origin().as_deref(),
        Some("https://other.example:8443")
    );
    assert_eq!(sim.es.response_url(), Some("https://other.example:8443/s"));
    assert_eq!(sim.es.url(), URL);
}

#[test]
fn scn_9_recon_9_other_policies_and_mixed_chains() {
    type Case = (
        Option<RedirectTarget>,
        &'static [(u16, &'static str)],
        &'static str,
    );
    let cases: [Case; 4] = [
        // Chromium's choice: the last target.
        (
            Some(RedirectTarget::LastTarget),
            &[(307, "http://b/1")],
            "http://b/1",
        ),
        // Always the original.
        (Some(RedirectTarget::Original), &[(301, "http://b/1")], URL),
        // Default: permanent then temporary moves only to the permanent target.
        (
            None,
            &[(308, "http://b/1"), (302, "http://c/2")],
            "http://b/1",
        ),
        // Temporary first: a later permanent hop does not move it.
        (None, &[(302, "http://b/1"), (301, "http://c/2")], URL),
    ];
    for (target, chain, want) in cases {
        let config = match target {
            Some(target) => cfg().redirect_target(target),
            None => cfg(),
        };
        let mut sim = Sim::new(config);
        for &(status, location) in chain {
            sim.redirect(status, location);
        }
        sim.ok().eof().wait();
        // The chain's requests, the one that opened, then the reconnect.
        assert_eq!(sim.req(chain.len() + 2).url, want, "{target:?} {chain:?}");
        assert_eq!(sim.es.reconnect_url(), want, "{target:?} {chain:?}");
    }
}

#[test]
fn scn_11_request_headers() {
    let sim = Sim::new(cfg());
    let req = sim.req(1);
    assert_eq!(req.header("accept"), Some("text/event-stream"));
    assert_eq!(req.header("cache-control"), Some("no-cache"));
    assert_eq!(req.header("pragma"), Some("no-cache"));
    assert_eq!(req.method, "GET");
    assert_eq!(req.body, None);
    assert_eq!(req.url, URL);
}

#[test]
fn scn_12_cancellation() {
    // Aborted during a slow first response.
    let mut sim = Sim::new(cfg());
    sim.advance(500).close();
    sim.assert_trace("REQ1 closed");
    sim.ok().body(b"data: late\n\n").eof().advance(1000);
    assert!(sim.trace.is_empty());
    assert_eq!(sim.es.ready_state(), ReadyState::Closed);
    // close() after open: CLOSED at once, no error event.
    let mut sim = Sim::new(cfg());
    sim.ok();
    sim.es.close();
    assert_eq!(sim.es.ready_state(), ReadyState::Closed);
    sim.drain();
    sim.assert_trace("REQ1 open closed");
}

#[test]
fn scn_13_unsupported_schemes() {
    for url in [
        "ftp://example.com/",
        "about:blank",
        "mailto:a@b.c",
        "javascript:alert(1)",
        "/relative",
    ] {
        let mut sim = Sim::new(ClientConfig::new(url));
        assert_eq!(sim.take_trace(), "error@CLOSED", "{url}");
        assert_eq!(sim.es.close_reason(), Some(&CloseReason::UnsupportedUrl));
        assert!(sim.requests.is_empty());
    }
}

#[test]
fn scn_14_ids_across_several_reconnects() {
    let mut sim = Sim::new(cfg());
    let mut n = 0;
    for conn in 1..=4 {
        if conn > 1 {
            sim.wait();
            assert_eq!(sim.leid(conn), Some(n.to_string().as_str()));
        }
        sim.ok();
        for _ in 0..3 {
            n += 1;
            sim.body(format!("id: {n}\nevent: counter\ndata: Counter is at {n}\n\n").as_bytes());
        }
        sim.eof();
        assert_eq!(sim.es.url(), URL);
    }
    let want: Vec<String> = (1..=12)
        .map(|n| format!("msg(counter,Counter is at {n},{n})"))
        .collect();
    assert_eq!(sim.messages(), want);
}

#[test]
fn scn_15_latest_id_wins() {
    let mut sim = Sim::new(cfg());
    sim.ok()
        .body(b"id: abc\ndata: Hello\n\n")
        .body(b"data: World\n\n")
        .error();
    assert!(sim.trace.contains(&msg("World", "abc")));
    sim.wait();
    assert_eq!(sim.leid(2), Some("abc"));
}

#[test]
fn scn_16_header_value_changes_between_reconnects() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"id: 1\ndata: a\n\n").eof().wait();
    assert_eq!(sim.leid(2), Some("1"));
    sim.ok().body(b"id: 2\ndata: b\n\n").eof().wait();
    assert_eq!(sim.leid(3), Some("2"));
    assert_eq!(
        sim.req(3)
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("last-event-id"))
            .count(),
        1
    );
}

#[test]
fn scn_17_reset_removes_the_header_even_after_it_was_sent() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"id: 1\ndata: a\n\n").eof().wait();
    assert_eq!(sim.leid(2), Some("1"));
    sim.ok().body(b"id:\ndata: b\n\n").eof();
    assert!(sim.trace.contains(&msg("b", "")));
    sim.wait();
    assert_eq!(sim.leid(3), None);
}

#[test]
fn scn_18_an_id_only_block_counts() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"data: a\n\nid: 7\n\n").eof().wait();
    assert_eq!(sim.leid(2), Some("7"));
}

#[test]
fn scn_19_close_during_the_reconnect_wait() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"retry: 500\ndata: a\n\n").eof();
    sim.advance(200).close().advance(10_000);
    sim.assert_trace("REQ1 open retry msg(message,a,) error@CONNECTING closed");
    assert_eq!(sim.requests.len(), 1);
}

#[test]
fn scn_20_close_from_a_message_handler() {
    let mut sim = Sim::new(cfg());
    sim.on_event = Some(|es, data| {
        if data == "1" {
            es.close();
        }
    });
    sim.ok().body(b"data: 1\n\ndata: 2\n\n");
    sim.assert_trace("REQ1 open msg(message,1,) closed");
}

#[test]
fn scn_21_network_error_before_any_response_retries_indefinitely() {
    let mut sim = Sim::new(cfg());
    for attempt in 1..=60 {
        sim.error();
        assert_eq!(
            sim.trace.last().map(String::as_str),
            Some("error@CONNECTING")
        );
        let waited = sim.wait();
        assert!(waited >= 3000, "attempt {attempt}: {waited}");
        assert!(waited <= 30_000, "attempt {attempt}: {waited}");
    }
    assert_eq!(sim.requests.len(), 61);
    assert!(!sim.trace.contains(&"open".to_string()));
}

#[test]
fn scn_22_connection_drops_mid_stream() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"id: 5\ndata: a\n\ndata: b").error();
    sim.assert_trace("REQ1 open msg(message,a,5) error@CONNECTING");
    sim.wait();
    assert_eq!(sim.leid(2), Some("5"));
    // The new parser starts clean: the partial `data: b` is gone.
    sim.ok().body(b"\n\ndata: c\n\n");
    sim.assert_trace("REQ2 open msg(message,c,5)");
}

#[test]
fn scn_23_a_failure_status_on_reconnect_is_final() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"data: a\n\n").eof().wait();
    sim.status(503).advance(100_000);
    sim.assert_trace("REQ1 open msg(message,a,) error@CONNECTING REQ2 error@CLOSED");
}

#[test]
fn scn_24_a_bom_on_every_connection() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"\xEF\xBB\xBFdata: 1\n\n").eof().wait();
    sim.ok().body(b"\xEF\xBB\xBFdata: 2\n\n");
    assert_eq!(sim.messages(), [msg("1", ""), msg("2", "")]);
}

// ---------------------------------------------------------------- rules

#[test]
fn req_6_redirect_limit_and_loops_are_network_errors() {
    let mut sim = Sim::new(cfg());
    for i in 0..20 {
        sim.redirect(302, &format!("http://example.com/{i}"));
    }
    sim.ok();
    assert_eq!(sim.es.ready_state(), ReadyState::Open);
    assert_eq!(sim.requests.len(), 21);

    let mut sim = Sim::new(cfg().max_redirects(3));
    for i in 0..4 {
        let loc = if i % 2 == 0 {
            "http://example.com/b"
        } else {
            URL
        };
        sim.redirect(302, loc);
    }
    sim.assert_trace("REQ1 REQ2 REQ3 REQ4 disconnect error@CONNECTING");
    assert_eq!(
        sim.reconnect_reason(),
        Some(ReconnectReason::TooManyRedirects)
    );
    sim.wait();
    assert_eq!(sim.req(5).url, URL);
    // A fresh attempt has a fresh redirect budget.
    sim.redirect(302, "http://example.com/b").ok();
    assert_eq!(sim.es.ready_state(), ReadyState::Open);
}

#[test]
fn redirect_to_a_bad_location_is_a_network_error() {
    let mut sim = Sim::new(cfg());
    sim.redirect(302, "ftp://example.com/");
    sim.assert_trace("REQ1 disconnect error@CONNECTING");
}

#[test]
fn recon_10_credentials_do_not_follow_a_cross_origin_redirect() {
    let config = cfg()
        .header("Authorization", "Bearer t")
        .header("Cookie", "a=b")
        .header("X-Other", "1");
    let mut sim = Sim::new(config);
    assert_eq!(sim.req(1).header("authorization"), Some("Bearer t"));
    sim.redirect(307, "http://example.com/same");
    assert_eq!(sim.req(2).header("authorization"), Some("Bearer t"));
    sim.redirect(307, "http://evil.example/x");
    assert_eq!(sim.req(3).header("authorization"), None);
    assert_eq!(sim.req(3).header("cookie"), None);
    assert_eq!(sim.req(3).header("x-other"), Some("1"));
    // Back on the original origin in the same chain: still stripped.
    sim.redirect(307, "http://example.com/back");
    assert_eq!(sim.req(4).header("authorization"), None);
    // A new attempt to the configured URL has them again.
    sim.ok().eof().wait();
    assert_eq!(sim.req(5).header("authorization"), Some("Bearer t"));
    // After a permanent move to another origin, reconnects carry none.
    let mut sim = Sim::new(cfg().header("authorization", "x"));
    sim.redirect(301, "https://other.example/")
        .ok()
        .eof()
        .wait();
    assert_eq!(sim.req(3).url, "https://other.example/");
    assert_eq!(sim.req(3).header("authorization"), None);
    // Scheme change is another origin too.
    let mut sim = Sim::new(cfg().header("authorization", "x"));
    sim.redirect(302, "https://example.com/stream");
    assert_eq!(sim.req(2).header("authorization"), None);
}

#[test]
fn req_7_post_body_resent_and_303_turns_it_into_get() {
    let body = Bytes::from_static(br#"{"q":1}"#);
    let config = cfg()
        .method("POST")
        .header("Content-Type", "application/json")
        .body(body.clone());
    let mut sim = Sim::new(config);
    assert_eq!(
        (sim.req(1).method.as_str(), sim.req(1).body.as_ref()),
        ("POST", Some(&body))
    );
    sim.redirect(307, "http://example.com/b");
    assert_eq!(
        (sim.req(2).method.as_str(), sim.req(2).body.as_ref()),
        ("POST", Some(&body))
    );
    sim.redirect(303, "http://example.com/c");
    assert_eq!(
        (sim.req(3).method.as_str(), sim.req(3).body.as_ref()),
        ("GET", None)
    );
    assert_eq!(sim.req(3).header("content-type"), None);
    sim.ok().body(b"data: x\n\n").eof().wait();
    assert_eq!(
        (sim.req(4).method.as_str(), sim.req(4).body.as_ref()),
        ("POST", Some(&body))
    );
    assert_eq!(sim.req(4).header("content-type"), Some("application/json"));
    // 302 turns POST into GET too; PUT survives a 302.
    let mut sim = Sim::new(cfg().method("POST").body(body.clone()));
    sim.redirect(302, "http://example.com/b");
    assert_eq!(sim.req(2).method, "GET");
    let mut sim = Sim::new(cfg().method("PUT").body(body.clone()));
    sim.redirect(302, "http://example.com/b");
    assert_eq!(sim.req(2).method, "PUT");
}

#[test]
fn req_7_initial_last_event_id_and_one_shot_streams() {
    let mut sim = Sim::new(cfg().last_event_id("41"));
    assert_eq!(sim.leid(1), Some("41"));
    sim.ok().body(b"data: x\n\n");
    assert!(sim.trace.contains(&msg("x", "41")));

    let mut sim = Sim::new(cfg().no_reconnect());
    sim.ok().body(b"data: x\n\n").eof();
    sim.assert_trace("REQ1 open msg(message,x,) error@CLOSED");
    assert_eq!(
        sim.es.close_reason(),
        Some(&CloseReason::ReconnectDisabled(
            ReconnectReason::EndOfStream
        ))
    );
    let mut sim = Sim::new(cfg().no_reconnect());
    sim.error();
    sim.assert_trace("REQ1 error@CLOSED");
}

#[test]
fn resp_13_server_errors_retry_only_when_opted_in_honouring_retry_after() {
    let mut sim = Sim::new(cfg().retry_on_server_error(true));
    sim.respond(ResponseSummary::new(503).retry_after(Duration::from_secs(10)));
    sim.assert_trace("REQ1 disconnect error@CONNECTING");
    assert_eq!(sim.wait(), 10_000);
    sim.respond(ResponseSummary::new(429));
    assert_eq!(
        sim.reconnect_reason(),
        Some(ReconnectReason::ServerError { status: 429 })
    );
    sim.wait();
    sim.status(404);
    assert_eq!(sim.es.close_reason(), Some(&CloseReason::BadStatus(404)));
    assert_eq!(
        sim.es.close_reason().map(|r| r.to_string()).as_deref(),
        Some("unexpected status 404")
    );
    // A huge Retry-After is clamped, never overflowing.
    let mut sim = Sim::new(cfg().retry_on_server_error(true));
    sim.respond(ResponseSummary::new(503).retry_after(Duration::MAX));
    assert_eq!(sim.delays, [Duration::from_secs(24 * 3600)]);
}

#[test]
fn state_1_ready_state_transitions() {
    let mut sim = Sim::new(cfg());
    assert_eq!(sim.es.ready_state(), ReadyState::Connecting);
    sim.ok();
    assert_eq!(sim.es.ready_state(), ReadyState::Open);
    sim.eof();
    assert_eq!(sim.es.ready_state(), ReadyState::Connecting);
    sim.wait();
    assert_eq!(sim.es.ready_state(), ReadyState::Connecting);
    sim.ok();
    assert_eq!(sim.es.ready_state(), ReadyState::Open);
    sim.es.close();
    assert_eq!(sim.es.ready_state(), ReadyState::Closed);
}

#[test]
fn state_2_open_fires_on_every_connection_and_state_7_events_precede_the_error() {
    let mut sim = Sim::new(cfg());
    for _ in 0..3 {
        sim.ok().body(b"data: a\n\ndata: b\n\n").eof().wait();
    }
    sim.assert_trace("REQ1 open msg(message,a,) msg(message,b,) error@CONNECTING REQ2 open msg(message,a,) msg(message,b,) error@CONNECTING REQ3 open msg(message,a,) msg(message,b,) error@CONNECTING REQ4");
}

#[test]
fn close_in_every_state() {
    type Setup = (&'static str, fn(&mut Sim));
    let setups: Vec<Setup> = vec![
        ("connecting", |_| {}),
        ("redirecting", |sim| {
            sim.redirect(302, "http://example.com/b");
        }),
        ("open", |sim| {
            sim.ok();
        }),
        ("open mid-block", |sim| {
            sim.ok().body(b"data: x");
        }),
        ("waiting", |sim| {
            sim.ok().eof();
        }),
        ("waiting after error", |sim| {
            sim.error();
        }),
        ("closed by 204", |sim| {
            sim.status(204);
        }),
        ("closed already", |sim| {
            sim.close();
        }),
    ];
    for (name, setup) in setups {
        let mut sim = Sim::new(cfg().idle_timeout(Some(Duration::from_secs(5))));
        setup(&mut sim);
        let was_closed = sim.closed;
        let before = sim.requests.len();
        sim.take_trace();
        sim.close();
        let want = if was_closed { "" } else { "closed" };
        assert_eq!(sim.take_trace(), want, "{name}");
        // Nothing at all afterwards, whatever arrives.
        sim.ok()
            .body(b"data: z\n\n")
            .eof()
            .error()
            .advance(1_000_000);
        sim.es
            .handle_chunk(Bytes::from_static(b"data: z\n\n"), sim.now);
        sim.drain();
        assert!(sim.trace.is_empty(), "{name}: {:?}", sim.trace);
        assert_eq!(sim.requests.len(), before, "{name}");
        assert_eq!(sim.es.poll_timeout(), None);
    }
}

#[test]
fn close_inside_the_error_handler_before_draining() {
    let mut sim = Sim::new(cfg());
    sim.ok();
    sim.es.handle_bytes(b"data: a\n\ndata: b\n\n", sim.now);
    sim.es.handle_eof(sim.now);
    // The application reads the first event, then closes.
    assert!(matches!(sim.es.poll_output(), Some(Output::Event(_))));
    sim.es.close();
    assert_eq!(
        sim.es.poll_output(),
        Some(Output::Closed(CloseReason::User))
    );
    assert_eq!(sim.es.poll_output(), None);
    assert_eq!(sim.es.poll_timeout(), None);
}

#[test]
fn recon_2_and_evt_3_output_does_not_depend_on_chunking() {
    let body: &[u8] = b"\xEF\xBB\xBFid: 1\r\nevent: e\r\ndata: a\r\ndata: b\r\n\r\n: c\n\nretry: 50\ndata: \xF0\x9F\x92\xA9\n\ndata: cut";
    let run = |cuts: &dyn Fn(&mut Sim)| {
        let mut sim = Sim::new(cfg());
        sim.ok();
        cuts(&mut sim);
        sim.eof().wait();
        sim.ok().body(b"data: next\n\n");
        sim.trace
    };
    let whole = run(&|sim| {
        sim.body(body);
    });
    let bytewise = run(&|sim| {
        for b in body {
            sim.body(&[*b]);
        }
    });
    let chunked = run(&|sim| {
        sim.es.handle_chunk(Bytes::copy_from_slice(body), sim.now);
        sim.drain();
    });
    assert_eq!(whole, bytewise);
    assert_eq!(whole, chunked);
    assert!(whole.contains(&"msg(e,a\nb,1)".to_string()));
    assert!(whole.contains(&msg("\u{1F4A9}", "1")));
    assert!(whole.contains(&msg("next", "1")));
    assert!(!whole.iter().any(|l| l.contains("cut")));
}

#[test]
fn evt_1_events_named_error_or_open_are_messages() {
    let mut sim = Sim::new(cfg());
    sim.ok()
        .body(b"event: error\ndata: x\n\nevent: open\ndata: y\n\n");
    sim.assert_trace("REQ1 open msg(error,x,) msg(open,y,)");
    assert_eq!(sim.es.ready_state(), ReadyState::Open);
}

#[test]
fn leid_7_ids_that_are_not_header_values_are_omitted_with_a_warning() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"id:  padded\ndata: x\n\n").eof().wait();
    assert_eq!(sim.es.last_event_id(), " padded");
    assert_eq!(sim.leid(2), None);
    assert!(
        sim.outputs
            .contains(&Output::Warning(Warning::LastEventIdNotSent(
                " padded".into()
            )))
    );
    // The id is still carried into the next stream (LEID-4).
    sim.ok().body(b"data: y\n\n");
    assert!(sim.trace.contains(&msg("y", " padded")));
    for bad in ["a\u{1}", "a\u{7f}", "a\tb "] {
        let sim = Sim::new(cfg().last_event_id(bad));
        assert_eq!(sim.leid(1), None, "{bad:?}");
        assert_eq!(sim.trace.first().map(String::as_str), Some("warning"));
    }
    let sim = Sim::new(cfg().last_event_id("a\tb"));
    assert_eq!(sim.leid(1), Some("a\tb"));
}

#[test]
fn recon_6_floor_ceiling_and_saturation() {
    let policy = ReconnectPolicy::default()
        .min_delay(Duration::from_millis(500))
        .max_delay(Duration::from_secs(60));
    let mut sim = Sim::new(cfg().reconnect(policy));
    sim.ok().body(b"retry: 1\ndata: a\n\n").eof();
    assert_eq!(sim.es.reconnection_time(), Duration::from_millis(500));
    assert_eq!(sim.wait(), 500);
    sim.ok()
        .body(b"retry: 99999999999999999999999999\ndata: a\n\n");
    sim.body(b"retry: 18446744073709551615\ndata: a\n\n").eof();
    assert_eq!(sim.es.reconnection_time(), Duration::from_secs(60));
    assert_eq!(sim.wait(), 60_000);
    // No ceiling configured: the default (24 h) still keeps the clock safe.
    let mut sim = Sim::new(cfg());
    sim.ok()
        .body(b"retry: 18446744073709551615\ndata: a\n\n")
        .eof();
    assert_eq!(sim.wait(), 24 * 3600 * 1000);
}

#[test]
fn retry_zero_reconnects_without_a_spin() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"retry: 0\ndata: a\n\n").eof();
    // The wait is zero: the next request goes out at once.
    sim.assert_trace("REQ1 open retry msg(message,a,) error@CONNECTING REQ2");
    // Failures still back off.
    assert!(sim.error().wait() >= 1);
}

#[test]
fn backoff_grows_is_capped_and_resets_after_a_healthy_connection() {
    let policy = ReconnectPolicy::default()
        .jitter(Jitter::None)
        .initial_delay(Duration::from_secs(1))
        .backoff_cap(Duration::from_secs(10));
    let mut sim = Sim::new(cfg().reconnect(policy));
    let mut waits = Vec::new();
    for _ in 0..6 {
        sim.error();
        waits.push(sim.wait());
    }
    assert_eq!(waits, [1000, 2000, 4000, 8000, 10_000, 10_000]);
    // Opened but no event and short-lived: not healthy, still backing off.
    sim.ok().eof();
    assert_eq!(sim.wait(), 10_000);
    // An event makes it healthy: the next wait is the reconnection time.
    sim.ok().body(b"data: a\n\n").eof();
    assert_eq!(sim.wait(), 1000);
    assert_eq!(sim.es.consecutive_failures(), 1);
    // Staying open long enough counts too.
    sim.error();
    assert_eq!(sim.wait(), 2000);
    sim.ok().advance(30_000).eof();
    assert_eq!(sim.wait(), 1000);
}

#[test]
fn max_attempts_gives_up() {
    let policy = ReconnectPolicy::default().max_attempts(Some(3));
    let mut sim = Sim::new(cfg().reconnect(policy));
    for _ in 0..3 {
        sim.error().wait();
    }
    sim.error();
    assert_eq!(
        sim.es.close_reason(),
        Some(&CloseReason::GaveUp {
            reason: ReconnectReason::NetworkError,
            attempts: 3
        })
    );
    assert_eq!(sim.requests.len(), 4);
}

#[test]
fn jitter_is_bounded_and_deterministic_per_seed() {
    for jitter in [Jitter::Full, Jitter::Decorrelated] {
        let run = |seed| {
            let policy = ReconnectPolicy::default().jitter(jitter);
            let mut sim = Sim::with_seed(cfg().reconnect(policy), seed);
            (0..40)
                .map(|_| {
                    sim.error();
                    sim.wait()
                })
                .collect::<Vec<u64>>()
        };
        let a = run(1);
        assert_eq!(a, run(1), "{jitter:?}");
        assert_ne!(a, run(2), "{jitter:?}");
        assert!(
            a.iter().all(|&w| (3000..=30_000).contains(&w)),
            "{jitter:?} {a:?}"
        );
        assert!(a.iter().any(|&w| w != a[0]), "{jitter:?} {a:?}");
    }
}

#[test]
fn spurious_timeouts_are_no_ops() {
    let mut sim = Sim::new(cfg().idle_timeout(Some(Duration::from_secs(10))));
    sim.advance(5_000);
    sim.ok().body(b"data: a\n\n");
    sim.advance(9_000).advance(500);
    sim.eof();
    sim.take_trace();
    sim.advance(1);
    sim.advance(1);
    assert!(sim.trace.is_empty());
    assert_eq!(sim.requests.len(), 1);
}

#[test]
fn idle_timeout_covers_a_silent_server_and_a_silent_stream() {
    let mut sim = Sim::new(cfg().idle_timeout(Some(Duration::from_secs(10))));
    assert_eq!(sim.wait(), 10_000);
    sim.assert_trace("REQ1 disconnect error@CONNECTING");
    sim.wait();
    sim.ok()
        .advance(9_000)
        .body(b": keepalive\n")
        .advance(9_000);
    assert_eq!(sim.es.ready_state(), ReadyState::Open);
    assert_eq!(sim.wait(), 1_000);
    assert_eq!(sim.reconnect_reason(), Some(ReconnectReason::IdleTimeout));
}

#[test]
fn leid_4_initial_and_carried_ids_seed_each_decoder() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"id: 9\ndata: a\n\n").error().wait();
    sim.ok().body(b"data: b\n\nid: 10\ndata: c\n\n");
    assert!(sim.trace.contains(&msg("b", "9")));
    assert!(sim.trace.contains(&msg("c", "10")));
    assert_eq!(sim.es.last_event_id(), "10");
}

#[test]
fn retry_outputs_report_the_effective_time() {
    let mut sim = Sim::new(cfg());
    sim.ok().body(b"retry: 1234\n");
    assert_eq!(
        sim.outputs.last(),
        Some(&Output::Retry(Duration::from_millis(1234)))
    );
    assert_eq!(sim.es.reconnection_time(), Duration::from_millis(1234));
}

// ---------------------------------------------------------------- property

#[derive(Clone, Debug)]
enum Op {
    Response(u8),
    Bytes(u8),
    Chunk(u8),
    Eof,
    Error,
    Timeout,
    Advance(u16),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..10).prop_map(Op::Response),
        4 => (0u8..8).prop_map(Op::Bytes),
        1 => (0u8..8).prop_map(Op::Chunk),
        2 => Just(Op::Eof),
        2 => Just(Op::Error),
        4 => Just(Op::Timeout),
        2 => any::<u16>().prop_map(Op::Advance),
        1 => Just(Op::Close),
    ]
}

const BODIES: [&[u8]; 8] = [
    b"data: a\n\n",
    b"id: 1\ndata: b\n\n",
    b"retry: 0\n",
    b"retry: 18446744073709551615\n",
    b"data: partial",
    b": comment\n",
    b"id:\n\n",
    b"data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_interleavings_never_panic_spin_or_deliver_after_closed(
        ops in prop::collection::vec(op(), 0..80),
        seed in any::<u64>(),
        retry_5xx in any::<bool>(),
        idle in prop::option::of(1u64..20_000),
        reconnect in any::<bool>(),
        jitter in 0u8..3,
        max_attempts in prop::option::of(0u32..5),
        small_limits in any::<bool>(),
    ) {
        let jitter = [Jitter::None, Jitter::Full, Jitter::Decorrelated][jitter as usize];
        let mut config = cfg()
            .retry_on_server_error(retry_5xx)
            .idle_timeout(idle.map(Duration::from_millis))
            .max_redirects(2)
            .reconnect(ReconnectPolicy::default().jitter(jitter).max_attempts(max_attempts));
        if !reconnect {
            config = config.no_reconnect();
        }
        if small_limits {
            config = config.limits(sse_proto::Limits::default().max_line_len(40));
        }
        // Sim::drain asserts no output after Closed and the busy-loop guard.
        let mut sim = Sim::with_seed(config, seed);
        for op in ops {
            let now = sim.now;
            match op {
                Op::Response(k) => {
                    let head = match k {
                        0..=2 => ResponseSummary::new(200).content_type(SSE),
                        3 => ResponseSummary::new(200).content_type("text/plain"),
                        4 => ResponseSummary::new(204),
                        5 => ResponseSummary::new(301).location("http://example.com/p"),
                        6 => ResponseSummary::new(307).location("https://other.example/t"),
                        7 => ResponseSummary::new(503).retry_after(Duration::from_secs(2)),
                        8 => ResponseSummary::new(429),
                        _ => ResponseSummary::new(302),
                    };
                    sim.es.handle_response(head, now);
                }
                Op::Bytes(k) => sim.es.handle_bytes(BODIES[k as usize], now),
                Op::Chunk(k) => sim.es.handle_chunk(Bytes::from_static(BODIES[k as usize]), now),
                Op::Eof => sim.es.handle_eof(now),
                Op::Error => sim.es.handle_error(now),
                Op::Timeout => {
                    if let Some(t) = sim.es.poll_timeout() {
                        prop_assert!(t > now);
                        sim.now = t;
                    }
                    sim.es.handle_timeout(sim.now);
                }
                Op::Advance(ms) => {
                    sim.now = T(now.0 + u64::from(ms));
                    sim.es.handle_timeout(sim.now);
                }
                Op::Close => sim.es.close(),
            }
            sim.drain();
            if let Some(d) = sim.delays.last() {
                prop_assert!(*d <= Duration::from_secs(24 * 3600));
            }
        }
        // The first request always goes out for a valid URL.
        let connects = sim.requests.len();
        prop_assert!(connects >= 1);
    }
}
