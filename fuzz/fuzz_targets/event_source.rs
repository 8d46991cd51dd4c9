//! The reconnecting client machine (`sse_proto::client::EventSource`) under
//! random configurations and random interleavings of its inputs, at random
//! (monotonic) virtual times.
//!
//! Checked after every input, with all outputs drained:
//! * nothing panics (overflowing instants included: the clock saturates),
//! * no busy loop: after `handle_timeout(now)`, `poll_timeout()` is `None`
//!   or later than `now`,
//! * `Closed` is the last output ever, `ready_state()` is `Closed` once it
//!   was seen, and `close_reason()` agrees with it,
//! * every request carries a `Last-Event-ID` only when it is a non-empty
//!   header value without CR/LF/NUL.
//!
//! Input layout (read with `arbitrary::Unstructured`, all from the front):
//! the configuration (a few bytes per setting), then one opcode byte per
//! step followed by that step's arguments.
#![no_main]

use std::ops::Add;
use std::time::Duration;

use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sse_proto::Limits;
use sse_proto::client::{
    ClientConfig, CloseReason, EventSource, Jitter, Output, ReadyState, ReconnectPolicy,
    RedirectTarget, ResponseSummary,
};

/// A virtual clock in nanoseconds. Adding saturates at the end of time, so
/// the machine's "a wait that rounds to nothing" paths are exercised too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct VirtualInstant(u64);

impl Add<Duration> for VirtualInstant {
    type Output = VirtualInstant;

    fn add(self, d: Duration) -> VirtualInstant {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        VirtualInstant(self.0.saturating_add(nanos))
    }
}

const URLS: &[&str] = &[
    "http://a.test/s",
    "http://a.test:8080/s?x=1",
    "https://b.test/stream",
    "http://[::1]:1/",
    "ftp://a.test/s",
    "/relative",
    "",
];

const CONTENT_TYPES: &[&str] = &[
    "text/event-stream",
    "text/event-stream; charset=utf-8",
    "TEXT/Event-Stream ;x=y",
    "text/html",
    "text/event-streams",
    "",
    " text/event-stream",
];

const LOCATIONS: &[&str] = &[
    "http://a.test/other",
    "https://c.test/elsewhere",
    "http://a.test:8080/s",
    "mailto:x@y",
    "relative/path",
    "",
];

const IDS: &[&str] = &[
    "", "1", "abc", " lead", "trail ", "a\nb", "a\rb", "a\0b", "é",
];

const CHUNKS: &[&[u8]] = &[
    b"data: hi\n\n",
    b"id: 7\ndata: x\n\n",
    b"id\n\n",
    b"id: a\0b\ndata: y\n\n",
    b"retry: 0\n",
    b"retry: 1\n\n",
    b"retry: 18446744073709551615\n",
    b"retry: 99999999999999999999999\n",
    b": heartbeat\n",
    b"event: error\ndata: e\n\n",
    b"\xEF\xBB\xBFdata: bom\r\n\r\n",
    b"data: unterminated",
    b"\r",
    b"\n",
];

fn pick<'a, T: ?Sized>(u: &mut Unstructured<'_>, items: &'a [&'a T]) -> Result<&'a T> {
    Ok(*u.choose(items)?)
}

fn duration(u: &mut Unstructured<'_>) -> Result<Duration> {
    Ok(match u8::arbitrary(u)? % 6 {
        0 => Duration::ZERO,
        1 => Duration::from_nanos(u64::from(u8::arbitrary(u)?)),
        2 => Duration::from_millis(u64::from(u16::arbitrary(u)?)),
        3 => Duration::from_secs(u64::from(u32::arbitrary(u)?)),
        4 => Duration::MAX,
        _ => Duration::from_nanos(u64::arbitrary(u)?),
    })
}

fn config(u: &mut Unstructured<'_>) -> Result<ClientConfig> {
    let mut config = ClientConfig::new(pick(u, URLS)?);
    if bool::arbitrary(u)? {
        config = config.method(pick(u, &["POST", "GET", "HEAD", "PUT", "bad method"])?);
    }
    for _ in 0..u8::arbitrary(u)? % 4 {
        let name = pick(
            u,
            &[
                "Authorization",
                "Cookie",
                "Content-Type",
                "Accept",
                "Last-Event-ID",
                "X-Custom",
            ],
        )?;
        config = config.header(name, pick(u, &["v", "a b", "x\ny", ""])?);
    }
    if bool::arbitrary(u)? {
        config = config.body(Bytes::from_static(b"{\"topic\":\"a\"}"));
    }
    config = config.last_event_id(pick(u, IDS)?);
    if bool::arbitrary(u)? {
        config = config.no_reconnect();
    } else if bool::arbitrary(u)? {
        let jitter = *u.choose(&[Jitter::None, Jitter::Full, Jitter::Decorrelated])?;
        let max_attempts = if bool::arbitrary(u)? {
            Some(u32::from(u8::arbitrary(u)? % 5))
        } else {
            None
        };
        config = config.reconnect(
            ReconnectPolicy::default()
                .initial_delay(duration(u)?)
                .min_delay(duration(u)?)
                .max_delay(duration(u)?)
                .backoff_cap(duration(u)?)
                .jitter(jitter)
                .max_attempts(max_attempts)
                .healthy_after(duration(u)?),
        );
    }
    if bool::arbitrary(u)? {
        config = config.idle_timeout(Some(duration(u)?));
    }
    config = config
        .retry_on_server_error(bool::arbitrary(u)?)
        .max_redirects(u32::from(u8::arbitrary(u)? % 4))
        .redirect_target(*u.choose(&[
            RedirectTarget::OriginalUnlessPermanent,
            RedirectTarget::Original,
            RedirectTarget::LastTarget,
        ])?);
    if bool::arbitrary(u)? {
        config = config.limits(
            Limits::default()
                .max_line_len(usize::from(u8::arbitrary(u)?))
                .max_event_size(usize::from(u8::arbitrary(u)?)),
        );
    }
    Ok(config)
}

/// The machine and what has been seen of it.
struct Run {
    es: EventSource<VirtualInstant>,
    now: VirtualInstant,
    closed: bool,
}

impl Run {
    /// Drains every output and checks the invariants that hold after any
    /// input.
    fn drain(&mut self) {
        while let Some(output) = self.es.poll_output() {
            assert!(!self.closed, "output after Closed: {output:?}");
            match output {
                Output::Closed(reason) => {
                    self.closed = true;
                    assert_eq!(self.es.close_reason(), Some(&reason));
                }
                Output::Connect(request) => {
                    if let Some(id) = request.header("last-event-id") {
                        assert!(!id.is_empty(), "empty Last-Event-ID sent");
                        assert!(
                            !id.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')),
                            "Last-Event-ID {id:?} is not a header value"
                        );
                    }
                }
                _ => {}
            }
        }
        if self.closed {
            assert_eq!(self.es.ready_state(), ReadyState::Closed);
            assert_eq!(self.es.poll_timeout(), None, "a timer after Closed");
        }
    }

    /// Moves the clock forward (never back).
    fn advance(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        self.now = match u8::arbitrary(u)? % 5 {
            0 => self.now,
            // Exactly the machine's deadline, or just before it.
            1 => self.es.poll_timeout().unwrap_or(self.now).max(self.now),
            2 => match self.es.poll_timeout() {
                Some(VirtualInstant(t)) => VirtualInstant(t.saturating_sub(1)).max(self.now),
                None => self.now,
            },
            3 => VirtualInstant(u64::MAX),
            _ => self.now + duration(u)?,
        };
        Ok(())
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        self.advance(u)?;
        let now = self.now;
        match u8::arbitrary(u)? % 9 {
            0 => {
                let status = match u8::arbitrary(u)? % 3 {
                    0 => 200,
                    1 => *u.choose(&[204, 301, 302, 303, 307, 308, 429, 500, 503, 404, 101])?,
                    _ => u16::arbitrary(u)?,
                };
                let mut head = ResponseSummary::new(status);
                if bool::arbitrary(u)? {
                    head = head.content_type(pick(u, CONTENT_TYPES)?);
                }
                if bool::arbitrary(u)? {
                    head = head.location(pick(u, LOCATIONS)?);
                }
                if bool::arbitrary(u)? {
                    head = head.retry_after(duration(u)?);
                }
                self.es.handle_response(head, now);
            }
            1 => {
                let bytes = if bool::arbitrary(u)? {
                    pick(u, CHUNKS)?
                } else {
                    let len = usize::from(u8::arbitrary(u)?);
                    u.bytes(len.min(u.len()))?
                };
                self.es.handle_bytes(bytes, now);
            }
            2 => {
                let chunk = Bytes::copy_from_slice(pick(u, CHUNKS)?);
                self.es.handle_chunk(chunk, now);
            }
            3 => self.es.handle_eof(now),
            4 => self.es.handle_error(now),
            5 | 6 => {
                self.es.handle_timeout(now);
                self.drain();
                if let Some(deadline) = self.es.poll_timeout() {
                    assert!(
                        deadline > now,
                        "busy loop: after handle_timeout({now:?}) the timer is {deadline:?}"
                    );
                }
            }
            7 => {
                let was_closed = self.closed;
                self.es.close();
                if was_closed {
                    assert_eq!(self.es.poll_output(), None, "close() after Closed");
                } else {
                    assert_eq!(
                        self.es.poll_output(),
                        Some(Output::Closed(CloseReason::User))
                    );
                    self.closed = true;
                    assert_eq!(self.es.poll_output(), None, "output after close()");
                }
            }
            _ => {
                // Read-only accessors must not panic in any state.
                let _ = (
                    self.es.url(),
                    self.es.reconnect_url(),
                    self.es.response_url(),
                    self.es.origin(),
                    self.es.last_event_id(),
                    self.es.reconnection_time(),
                    self.es.consecutive_failures(),
                );
            }
        }
        self.drain();
        Ok(())
    }
}

fn check(data: &[u8]) -> Result<()> {
    let u = &mut Unstructured::new(data);
    let config = config(u)?;
    let start = VirtualInstant(u64::from(u32::arbitrary(u)?));
    let seed = u64::arbitrary(u)?;
    let mut run = Run {
        es: EventSource::new(config, start, seed),
        now: start,
        closed: false,
    };
    run.drain();
    for _ in 0..512 {
        if u.is_empty() {
            break;
        }
        run.step(u)?;
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
});
