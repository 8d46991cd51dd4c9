//! [`EventSource`]: the reconnecting state machine.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Add;
use core::time::Duration;

use bytes::Bytes;

use super::backoff::{SplitMix64, next_delay};
use super::config::{ClientConfig, ReconnectPolicy, RedirectTarget};
use super::http::{Fetch, Origin, is_body_header, is_credential_header};
use crate::decode::{DecodeError, Decoder, Frame};
use crate::event::Event;
use crate::http1::value::{is_event_stream, is_header_value};
use crate::str::Str;

/// What the machine needs to know of a response head to judge it: the
/// status, `Content-Type`, `Location` and `Retry-After` (the HTTP/1.1
/// head itself is [`http1::ResponseHead`](crate::http1::ResponseHead)).
///
/// ```
/// use core::time::Duration;
/// use sse_proto::client::ResponseSummary;
///
/// let head = ResponseSummary::new(503).content_type("text/html").retry_after(Duration::from_secs(5));
/// assert_eq!(head.status, 503);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseSummary<'a> {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header value, if any.
    pub content_type: Option<&'a str>,
    /// The `Location` header, already resolved to an absolute URL by the
    /// adapter.
    pub location: Option<&'a str>,
    /// The `Retry-After` header as a delay, if any (see
    /// [`parse_retry_after`](crate::client::parse_retry_after)).
    pub retry_after: Option<Duration>,
}

impl<'a> ResponseSummary<'a> {
    /// A head with this status and no headers.
    pub fn new(status: u16) -> ResponseSummary<'a> {
        ResponseSummary {
            status,
            content_type: None,
            location: None,
            retry_after: None,
        }
    }

    /// Sets the `Content-Type` value.
    pub fn content_type(mut self, value: &'a str) -> ResponseSummary<'a> {
        self.content_type = Some(value);
        self
    }

    /// Sets the (absolute) `Location`.
    pub fn location(mut self, url: &'a str) -> ResponseSummary<'a> {
        self.location = Some(url);
        self
    }

    /// Sets the `Retry-After` delay.
    pub fn retry_after(mut self, delay: Duration) -> ResponseSummary<'a> {
        self.retry_after = Some(delay);
        self
    }
}

/// What the machine asks of the adapter, or tells the application. Drain
/// [`EventSource::poll_output`] until `None` after every input.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this request. It replaces the current one, if any (after a
    /// redirect the adapter drops the redirect response and sends this).
    Connect(Fetch),
    /// Abort the current request (its response or body is no longer
    /// wanted); a [`Reconnecting`](Output::Reconnecting) or
    /// [`Closed`](Output::Closed) follows.
    Disconnect(ReconnectReason),
    /// The stream is open (the spec's `open` event, readyState OPEN). Fired
    /// on every successful (re)connection.
    Open,
    /// A message event. Its type may be anything, `error` and `open`
    /// included: it is never a connection state change.
    Event(Event),
    /// A `retry` field set the reconnection time to this (after the policy's
    /// floor and ceiling).
    Retry(Duration),
    /// The connection was lost and will be reestablished after `delay` (the
    /// spec's `error` event with readyState CONNECTING). The adapter sleeps
    /// until [`EventSource::poll_timeout`].
    Reconnecting {
        /// How long the machine waits before the next attempt.
        delay: Duration,
        /// Why the connection was lost.
        reason: ReconnectReason,
    },
    /// The source is closed for good (readyState CLOSED): drop any request.
    /// Nothing follows. After [`EventSource::close`] the reason is
    /// [`CloseReason::User`], which is not an error.
    Closed(CloseReason),
    /// Something the application may want to log.
    Warning(Warning),
}

/// Why a connection ended in a reconnect.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconnectReason {
    /// The body ended cleanly.
    EndOfStream,
    /// A network error before or during the body.
    NetworkError,
    /// Nothing was received for the configured idle timeout.
    IdleTimeout,
    /// The body broke a decoder limit.
    Decode(DecodeError),
    /// More redirects than allowed: a network error.
    TooManyRedirects,
    /// A redirect to a URL that is not absolute http(s): a network error.
    BadRedirect,
    /// A 5xx or 429 status, with
    /// [`retry_on_server_error`](ClientConfig::retry_on_server_error) on.
    ServerError {
        /// The status code.
        status: u16,
    },
}

impl fmt::Display for ReconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReconnectReason::EndOfStream => f.write_str("the event stream ended"),
            ReconnectReason::NetworkError => f.write_str("network error"),
            ReconnectReason::IdleTimeout => f.write_str("nothing received within the idle timeout"),
            ReconnectReason::Decode(e) => write!(f, "bad event stream: {e}"),
            ReconnectReason::TooManyRedirects => f.write_str("too many redirects"),
            ReconnectReason::BadRedirect => {
                f.write_str("redirect to a URL that is not absolute http or https")
            }
            ReconnectReason::ServerError { status } => write!(f, "server error (status {status})"),
        }
    }
}

/// Why the source closed for good.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// [`EventSource::close`] was called. Not an error.
    User,
    /// The server answered 204 No Content: "stop reconnecting".
    NoContent,
    /// A status other than 200, including a redirect without a
    /// `Location`.
    BadStatus(u16),
    /// A 200 whose `Content-Type` is not `text/event-stream`; the
    /// value received, if any.
    BadContentType(Option<Str>),
    /// The configured URL is not an absolute `http` or `https` URL.
    UnsupportedUrl,
    /// The connection was lost and reconnecting is turned off.
    ReconnectDisabled(ReconnectReason),
    /// The policy's `max_attempts` consecutive reconnects all failed.
    GaveUp {
        /// Why the last connection was lost.
        reason: ReconnectReason,
        /// Consecutive failed attempts.
        attempts: u32,
    },
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::User => f.write_str("closed by the application"),
            CloseReason::NoContent => f.write_str("the server asked to stop (204 No Content)"),
            CloseReason::BadStatus(s) => write!(f, "unexpected status {s}"),
            CloseReason::BadContentType(Some(ct)) => {
                write!(f, "unexpected content type {ct:?} (want text/event-stream)")
            }
            CloseReason::BadContentType(None) => {
                f.write_str("no content type (want text/event-stream)")
            }
            CloseReason::UnsupportedUrl => f.write_str("not an absolute http or https URL"),
            CloseReason::ReconnectDisabled(r) => write!(f, "{r}, and reconnecting is disabled"),
            CloseReason::GaveUp { reason, attempts } => {
                write!(f, "{reason}; gave up after {attempts} failed reconnects")
            }
        }
    }
}

impl core::error::Error for CloseReason {}

/// Things worth logging that change nothing.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The last event ID is not a valid HTTP header value (a control
    /// character, or leading/trailing whitespace), so no `Last-Event-ID`
    /// was sent.
    LastEventIdNotSent(Str),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::LastEventIdNotSent(id) => write!(
                f,
                "last event ID {id:?} is not a valid header value; Last-Event-ID not sent"
            ),
        }
    }
}

/// The spec's `readyState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadyState {
    /// Connecting, or waiting to reconnect.
    Connecting,
    /// A stream is open.
    Open,
    /// Closed for good.
    Closed,
}

/// One request and its redirects.
#[derive(Debug)]
struct Attempt {
    url: Str,
    method: Str,
    body: Option<Bytes>,
    redirects: u32,
    /// Every URL so far has the configured URL's origin.
    same_origin: bool,
    /// A redirect turned the request into a body-less GET.
    body_dropped: bool,
    /// Every redirect so far was permanent (301/308).
    permanent: bool,
    last_event_id: Option<Str>,
}

#[derive(Debug)]
enum State<I> {
    Connecting {
        attempt: Attempt,
        deadline: Option<I>,
    },
    Open {
        decoder: Box<Decoder>,
        url: Str,
        deadline: Option<I>,
        opened_at: I,
        got_event: bool,
    },
    Waiting {
        until: I,
    },
    Closed,
}

/// The sans-IO reconnecting `EventSource` (WHATWG HTML §9.2): the adapter
/// does the I/O and sleeping, the machine decides everything else.
///
/// `I` is the caller's instant type (`std::time::Instant`, tokio's, or a
/// virtual clock): time only comes in through the `now` arguments.
///
/// The run loop: build it with [`new`](EventSource::new), then after every
/// input (`handle_*`, [`close`](EventSource::close)) drain
/// [`poll_output`](EventSource::poll_output) until `None`, and sleep until
/// [`poll_timeout`](EventSource::poll_timeout) (calling
/// [`handle_timeout`](EventSource::handle_timeout) when it passes) while
/// waiting for I/O. Inputs that do not fit the current state (bytes with no
/// open stream, a late timeout, anything after closing) are ignored.
///
/// # Policies
///
/// * A 200 whose `Content-Type` essence is `text/event-stream` opens; 204
///   closes for good; every other status or content type fails for good,
///   unless [`ClientConfig::retry_on_server_error`] makes 5xx and 429
///   reconnect (waiting at least `Retry-After`).
/// * Redirects (301/302/303/307/308 with a `Location`) are followed, at most
///   20 per attempt by default; one more, or a `Location` that is not
///   absolute http(s), is a network error and reconnects. 301/302 turn a
///   POST, and 303 any method but GET/HEAD, into a body-less GET for the rest
///   of that attempt. Reconnects go to the configured URL unless permanent
///   redirects moved it ([`RedirectTarget`]). `Authorization` and `Cookie`
///   are sent only while every URL of the attempt has the configured URL's
///   origin.
/// * End of body, network errors, decoder limit errors and the idle timeout
///   reconnect after the reconnection time (3 s, then whatever `retry` says,
///   within the policy's floor and ceiling). Consecutive failures back off
///   exponentially with jitter, capped, never below the reconnection time.
///   A connection is *healthy* once it delivered an event or stayed open for
///   [`ReconnectPolicy::healthy_after`]; the reconnect after a healthy
///   connection waits exactly the reconnection time and resets the backoff.
/// * A new `Decoder` per connection, seeded with the last event ID; each
///   attempt's headers are built afresh, with `Last-Event-ID` only when the
///   ID is non-empty and a valid header value ([`Warning::LastEventIdNotSent`]
///   otherwise).
/// * A wait that rounds to nothing on the caller's clock starts the next
///   attempt at once, so [`poll_timeout`](EventSource::poll_timeout) is
///   always `None` or later than the last `now`.
///
/// ```
/// use core::time::Duration;
/// use sse_proto::client::{ClientConfig, EventSource, Output, ResponseSummary};
///
/// let t0 = std::time::Instant::now();
/// let mut es = EventSource::new(ClientConfig::new("http://example.com/s"), t0, 1);
/// let Some(Output::Connect(req)) = es.poll_output() else { panic!() };
/// assert_eq!(req.header("accept"), Some("text/event-stream"));
///
/// es.handle_response(ResponseSummary::new(200).content_type("text/event-stream"), t0);
/// es.handle_bytes(b"id: 1\ndata: hi\n\n", t0);
/// es.handle_eof(t0);
/// let out: Vec<Output> = std::iter::from_fn(|| es.poll_output()).collect();
/// assert!(matches!(&out[..], [Output::Open, Output::Event(e), Output::Reconnecting { .. }] if e.data() == "hi"));
///
/// let t1 = es.poll_timeout().unwrap();
/// assert_eq!(t1, t0 + Duration::from_secs(3));
/// es.handle_timeout(t1);
/// let Some(Output::Connect(req)) = es.poll_output() else { panic!() };
/// assert_eq!(req.header("last-event-id"), Some("1"));
/// ```
#[derive(Debug)]
pub struct EventSource<I> {
    config: ClientConfig,
    policy: ReconnectPolicy,
    origin: Option<Origin>,
    state: State<I>,
    close_reason: Option<CloseReason>,
    out: VecDeque<Output>,
    reconnection_time: Duration,
    last_event_id: Str,
    reconnect_url: Str,
    failures: u32,
    prev_delay: Duration,
    rng: SplitMix64,
}

impl<I> EventSource<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    /// Starts the source at `now`: the first output is the first
    /// [`Output::Connect`], or [`Output::Closed`] with
    /// [`CloseReason::UnsupportedUrl`]. `seed` drives the jitter: the same
    /// seed and inputs give the same delays.
    pub fn new(config: ClientConfig, now: I, seed: u64) -> EventSource<I> {
        let policy = config.reconnect.clone().unwrap_or_default();
        let origin = Origin::of(&config.url);
        let mut es = EventSource {
            reconnection_time: policy.clamp(policy.initial_delay),
            prev_delay: Duration::ZERO,
            last_event_id: config.last_event_id.clone(),
            reconnect_url: config.url.clone(),
            policy,
            origin,
            state: State::Closed,
            close_reason: None,
            out: VecDeque::new(),
            failures: 0,
            rng: SplitMix64::new(seed),
            config,
        };
        if es.origin.is_some() {
            es.start_attempt(now);
        } else {
            es.finish(CloseReason::UnsupportedUrl);
        }
        es
    }

    /// The next output, or `None` when there is nothing more until the next
    /// input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](EventSource::handle_timeout) should be called
    /// next: the end of the reconnect wait, or the idle deadline. `None`
    /// when no timer is running.
    pub fn poll_timeout(&self) -> Option<I> {
        match &self.state {
            State::Waiting { until } => Some(*until),
            State::Connecting { deadline, .. } | State::Open { deadline, .. } => *deadline,
            State::Closed => None,
        }
    }

    /// The time is `now`: starts the next attempt when the wait is over, or
    /// reconnects when the idle timeout expired. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: I) {
        match &self.state {
            State::Waiting { until } if now >= *until => self.start_attempt(now),
            State::Connecting {
                deadline: Some(d), ..
            }
            | State::Open {
                deadline: Some(d), ..
            } if now >= *d => self.reconnect(ReconnectReason::IdleTimeout, now, true, None),
            _ => {}
        }
    }

    /// The response head for the last [`Output::Connect`] arrived.
    pub fn handle_response(&mut self, head: ResponseSummary<'_>, now: I) {
        let State::Connecting { attempt, deadline } = &mut self.state else {
            return;
        };
        *deadline = idle_deadline(self.config.idle_timeout, now);
        match (head.status, head.location) {
            (200, _) => match head.content_type {
                Some(ct) if is_event_stream(ct) => self.open(now),
                ct => self.finish(CloseReason::BadContentType(ct.map(Str::from))),
            },
            (301 | 302 | 303 | 307 | 308, Some(location)) => {
                if attempt.redirects >= self.config.max_redirects {
                    return self.reconnect(ReconnectReason::TooManyRedirects, now, true, None);
                }
                let Some(origin) = Origin::of(location) else {
                    return self.reconnect(ReconnectReason::BadRedirect, now, true, None);
                };
                let location = Str::from(location);
                attempt.redirects += 1;
                attempt.same_origin &= self.origin.as_ref() == Some(&origin);
                let post_to_get = matches!(head.status, 301 | 302) && attempt.method == "POST";
                let see_other = head.status == 303 && !matches!(&*attempt.method, "GET" | "HEAD");
                if post_to_get || see_other {
                    attempt.method = Str::from_static("GET");
                    attempt.body = None;
                    attempt.body_dropped = true;
                }
                attempt.permanent &= matches!(head.status, 301 | 308);
                attempt.url = location.clone();
                match self.config.redirect_target {
                    RedirectTarget::OriginalUnlessPermanent if attempt.permanent => {
                        self.reconnect_url = location;
                    }
                    RedirectTarget::LastTarget => self.reconnect_url = location,
                    _ => {}
                }
                let request = build_request(&self.config, attempt);
                self.out.push_back(Output::Connect(request));
            }
            (status @ (429 | 500..=599), _) if self.config.retry_on_server_error => {
                self.reconnect(
                    ReconnectReason::ServerError { status },
                    now,
                    true,
                    head.retry_after,
                );
            }
            (204, _) => self.finish(CloseReason::NoContent),
            (status, _) => self.finish(CloseReason::BadStatus(status)),
        }
    }

    /// Body bytes arrived (copied into the decoder).
    pub fn handle_bytes(&mut self, bytes: &[u8], now: I) {
        if let State::Open {
            decoder, deadline, ..
        } = &mut self.state
        {
            if bytes.is_empty() {
                return;
            }
            decoder.handle_bytes(bytes);
            *deadline = idle_deadline(self.config.idle_timeout, now);
            self.drain(now);
        }
    }

    /// Body bytes arrived, handed over without a copy.
    pub fn handle_chunk(&mut self, chunk: Bytes, now: I) {
        if let State::Open {
            decoder, deadline, ..
        } = &mut self.state
        {
            if chunk.is_empty() {
                return;
            }
            decoder.handle_chunk(chunk);
            *deadline = idle_deadline(self.config.idle_timeout, now);
            self.drain(now);
        }
    }

    /// The body ended cleanly: events already complete are delivered, the
    /// unfinished block is discarded, then the machine reconnects.
    pub fn handle_eof(&mut self, now: I) {
        match &mut self.state {
            State::Open { decoder, .. } => {
                decoder.handle_eof();
                self.drain(now);
                if matches!(self.state, State::Open { .. }) {
                    self.reconnect(ReconnectReason::EndOfStream, now, false, None);
                }
            }
            State::Connecting { .. } => {
                self.reconnect(ReconnectReason::NetworkError, now, false, None);
            }
            _ => {}
        }
    }

    /// The request failed: a network error before the response head or
    /// while reading the body. The machine reconnects.
    pub fn handle_error(&mut self, now: I) {
        if matches!(self.state, State::Connecting { .. } | State::Open { .. }) {
            self.reconnect(ReconnectReason::NetworkError, now, false, None);
        }
    }

    /// Closes the source for good, in any state: no more requests, and
    /// outputs not yet polled (events of the same chunk included) are
    /// dropped. The only output is
    /// `Closed(CloseReason::User)`; nothing happens if already closed.
    pub fn close(&mut self) {
        if !matches!(self.state, State::Closed) {
            self.out.clear();
            self.finish(CloseReason::User);
        }
    }

    /// The spec's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        match self.state {
            State::Connecting { .. } | State::Waiting { .. } => ReadyState::Connecting,
            State::Open { .. } => ReadyState::Open,
            State::Closed => ReadyState::Closed,
        }
    }

    /// Why the source closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_ref()
    }

    /// The configured URL (the spec's `url` attribute; never changes).
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// The URL the next reconnect goes to.
    pub fn reconnect_url(&self) -> &str {
        &self.reconnect_url
    }

    /// The final URL (after redirects) of the open stream.
    pub fn response_url(&self) -> Option<&str> {
        match &self.state {
            State::Open { url, .. } => Some(url),
            _ => None,
        }
    }

    /// The origin of the open stream's final URL, as message events report
    /// it, e.g. `https://example.com:8443`.
    pub fn origin(&self) -> Option<String> {
        self.response_url()
            .and_then(Origin::of)
            .map(|o| o.serialize())
    }

    /// The last event ID string: sent as `Last-Event-ID` on reconnects when
    /// not empty.
    pub fn last_event_id(&self) -> &str {
        match &self.state {
            State::Open { decoder, .. } => decoder.last_event_id(),
            _ => &self.last_event_id,
        }
    }

    /// The reconnection time: the initial delay or the last `retry` value,
    /// within the policy's floor and ceiling.
    pub fn reconnection_time(&self) -> Duration {
        self.reconnection_time
    }

    /// Consecutive failed attempts (what the backoff grows with).
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    fn start_attempt(&mut self, now: I) {
        let last_event_id = if self.last_event_id.is_empty() {
            None
        } else if is_header_value(&self.last_event_id) {
            Some(self.last_event_id.clone())
        } else {
            self.out
                .push_back(Output::Warning(Warning::LastEventIdNotSent(
                    self.last_event_id.clone(),
                )));
            None
        };
        let url = self.reconnect_url.clone();
        let attempt = Attempt {
            same_origin: Origin::of(&url) == self.origin,
            url,
            method: self.config.method.clone(),
            body: self.config.body.clone(),
            redirects: 0,
            body_dropped: false,
            permanent: true,
            last_event_id,
        };
        self.out
            .push_back(Output::Connect(build_request(&self.config, &attempt)));
        self.state = State::Connecting {
            attempt,
            deadline: idle_deadline(self.config.idle_timeout, now),
        };
    }

    fn open(&mut self, now: I) {
        let State::Connecting { attempt, deadline } = &mut self.state else {
            return;
        };
        let decoder = Box::new(
            Decoder::with_limits(self.config.limits).with_last_event_id(self.last_event_id.clone()),
        );
        self.state = State::Open {
            decoder,
            url: attempt.url.clone(),
            deadline: *deadline,
            opened_at: now,
            got_event: false,
        };
        if self.config.redirect_target == RedirectTarget::LastTarget {
            if let State::Open { url, .. } = &self.state {
                self.reconnect_url = url.clone();
            }
        }
        self.out.push_back(Output::Open);
    }

    /// Moves every decoded frame to the output queue.
    fn drain(&mut self, now: I) {
        loop {
            let State::Open {
                decoder, got_event, ..
            } = &mut self.state
            else {
                return;
            };
            match decoder.poll_frame() {
                Ok(Some(Frame::Event(event))) => {
                    *got_event = true;
                    self.out.push_back(Output::Event(event));
                }
                Ok(Some(Frame::Retry(retry))) => {
                    self.reconnection_time = self.policy.clamp(retry);
                    self.out.push_back(Output::Retry(self.reconnection_time));
                }
                Ok(None) => {
                    self.last_event_id = decoder.last_event_id_str().clone();
                    return;
                }
                Err(err) => {
                    self.reconnect(ReconnectReason::Decode(err), now, true, None);
                    return;
                }
            }
        }
    }

    /// The spec's "reestablish the connection", with backoff.
    fn reconnect(
        &mut self,
        reason: ReconnectReason,
        now: I,
        disconnect: bool,
        at_least: Option<Duration>,
    ) {
        if let State::Open {
            decoder,
            opened_at,
            got_event,
            ..
        } = &self.state
        {
            self.last_event_id = decoder.last_event_id_str().clone();
            if *got_event || now >= *opened_at + self.policy.healthy_after {
                self.failures = 0;
            }
        }
        if disconnect {
            self.out.push_back(Output::Disconnect(reason));
        }
        if self.config.reconnect.is_none() {
            return self.finish(CloseReason::ReconnectDisabled(reason));
        }
        if let Some(max) = self.policy.max_attempts {
            if self.failures >= max {
                let attempts = self.failures;
                return self.finish(CloseReason::GaveUp { reason, attempts });
            }
        }
        let mut delay = next_delay(
            &self.policy,
            self.reconnection_time,
            self.failures,
            self.prev_delay,
            &mut self.rng,
        );
        if let Some(min) = at_least {
            delay = delay.max(min.min(self.policy.max_delay));
        }
        self.prev_delay = delay;
        self.failures = self.failures.saturating_add(1);
        self.out.push_back(Output::Reconnecting { delay, reason });
        let until = now + delay;
        if until > now {
            self.state = State::Waiting { until };
        } else {
            // Nothing to wait for: going through a timer that is already
            // due would make the adapter spin once for nothing.
            self.start_attempt(now);
        }
    }

    /// The spec's "fail the connection" (and `close()`): terminal.
    fn finish(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.close_reason = Some(reason.clone());
        self.out.push_back(Output::Closed(reason));
    }
}

/// `now + timeout`, or no deadline when the clock cannot tell them apart.
fn idle_deadline<I>(timeout: Option<Duration>, now: I) -> Option<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    let deadline = now + timeout?;
    (deadline > now).then_some(deadline)
}

/// The request for one hop of an attempt: fresh headers every time.
fn build_request(config: &ClientConfig, attempt: &Attempt) -> Fetch {
    let configured = |name: &str| {
        config
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let mut headers = Vec::with_capacity(config.headers.len() + 4);
    for (name, value) in [
        ("Accept", "text/event-stream"),
        ("Cache-Control", "no-cache"),
        ("Pragma", "no-cache"),
    ] {
        if !configured(name) {
            headers.push((Str::from_static(name), Str::from_static(value)));
        }
    }
    if let Some(id) = &attempt.last_event_id {
        headers.push((Str::from_static("Last-Event-ID"), id.clone()));
    }
    for (name, value) in &config.headers {
        let skip = name.eq_ignore_ascii_case("last-event-id")
            || (is_credential_header(name) && !attempt.same_origin)
            || (is_body_header(name) && attempt.body_dropped);
        if !skip {
            headers.push((name.clone(), value.clone()));
        }
    }
    Fetch {
        method: attempt.method.clone(),
        url: attempt.url.clone(),
        headers,
        body: attempt.body.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    type Es = EventSource<Duration>;

    fn drain(es: &mut Es) -> Vec<Output> {
        core::iter::from_fn(|| es.poll_output()).collect()
    }

    fn open(es: &mut Es, now: Duration) {
        es.handle_response(
            ResponseSummary::new(200).content_type("text/event-stream"),
            now,
        );
    }

    #[test]
    fn first_request_has_the_default_headers_and_no_last_event_id() {
        let mut es = Es::new(ClientConfig::new("http://a/s"), Duration::ZERO, 0);
        let out = drain(&mut es);
        let [Output::Connect(req)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(req.method, "GET");
        assert_eq!(req.body, None);
        assert_eq!(req.header("Accept"), Some("text/event-stream"));
        assert_eq!(req.header("cache-control"), Some("no-cache"));
        assert_eq!(req.header("last-event-id"), None);
        assert_eq!(es.ready_state(), ReadyState::Connecting);
    }

    #[test]
    fn configured_headers_replace_defaults_and_last_event_id_is_ours() {
        let config = ClientConfig::new("http://a/s")
            .header("accept", "text/event-stream, */*")
            .header("Last-Event-ID", "forged")
            .header("X-Y", "z");
        let mut es = Es::new(config, Duration::ZERO, 0);
        let Some(Output::Connect(req)) = es.poll_output() else {
            panic!()
        };
        assert_eq!(req.header("accept"), Some("text/event-stream, */*"));
        assert_eq!(
            req.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("accept"))
                .count(),
            1
        );
        assert_eq!(req.header("last-event-id"), None);
        assert_eq!(req.header("x-y"), Some("z"));
    }

    #[test]
    fn idle_timeout_reconnects_and_bytes_push_it_back() {
        let config = ClientConfig::new("http://a/s").idle_timeout(Some(Duration::from_secs(10)));
        let mut es = Es::new(config, Duration::ZERO, 0);
        drain(&mut es);
        assert_eq!(es.poll_timeout(), Some(Duration::from_secs(10)));
        open(&mut es, Duration::from_secs(1));
        assert_eq!(es.poll_timeout(), Some(Duration::from_secs(11)));
        es.handle_bytes(b":\n", Duration::from_secs(5));
        assert_eq!(es.poll_timeout(), Some(Duration::from_secs(15)));
        es.handle_timeout(Duration::from_secs(14));
        assert_eq!(drain(&mut es), vec![Output::Open]);
        es.handle_timeout(Duration::from_secs(15));
        let out = drain(&mut es);
        assert_eq!(
            out.first(),
            Some(&Output::Disconnect(ReconnectReason::IdleTimeout))
        );
        assert!(matches!(
            out.get(1),
            Some(Output::Reconnecting {
                reason: ReconnectReason::IdleTimeout,
                ..
            })
        ));
        assert_eq!(es.ready_state(), ReadyState::Connecting);
    }

    #[test]
    fn decode_error_disconnects_and_reconnects() {
        let config =
            ClientConfig::new("http://a/s").limits(crate::Limits::default().max_line_len(8));
        let mut es = Es::new(config, Duration::ZERO, 0);
        drain(&mut es);
        open(&mut es, Duration::ZERO);
        es.handle_bytes(b"data: 1\n\ndata: far too long\n\n", Duration::ZERO);
        let out = drain(&mut es);
        assert!(
            matches!(
                out.get(2),
                Some(Output::Disconnect(ReconnectReason::Decode(_)))
            ),
            "{out:?}"
        );
        assert!(
            matches!(out.get(3), Some(Output::Reconnecting { .. })),
            "{out:?}"
        );
    }

    #[test]
    fn displays() {
        use alloc::string::ToString;
        assert_eq!(
            CloseReason::BadStatus(404).to_string(),
            "unexpected status 404"
        );
        assert_eq!(
            ReconnectReason::ServerError { status: 503 }.to_string(),
            "server error (status 503)"
        );
        assert!(
            Warning::LastEventIdNotSent(" x".into())
                .to_string()
                .contains("not a valid header")
        );
        assert!(
            CloseReason::GaveUp {
                reason: ReconnectReason::NetworkError,
                attempts: 3
            }
            .to_string()
            .contains("3")
        );
    }
}
