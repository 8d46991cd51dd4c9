//! [`ClientConfig`] and [`ReconnectPolicy`]: what the caller chooses.

use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;

use crate::decode::Limits;
use crate::str::Str;

/// The longest delay or timeout the machine ever schedules (365 days).
///
/// Every configured duration and every server-sent `retry` value is clamped
/// to it, so adding a delay to an instant (which panics on overflow for
/// `std::time::Instant`) cannot overflow.
pub const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How jitter spreads reconnect delays after failed attempts.
///
/// Jitter never applies to the first reconnect after a healthy connection:
/// that one waits exactly the reconnection time, as browsers do.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Plain exponential backoff: `min(cap, max(rt, 100 ms) * 2^n)`.
    None,
    /// Uniform in `[rt, min(cap, max(rt, 100 ms) * 2^n)]`, where `rt` is the
    /// reconnection time and `n` the number of consecutive failures. This is
    /// "full jitter" with the reconnection time as the floor.
    #[default]
    Full,
    /// "Decorrelated jitter": uniform in `[rt, min(cap, 3 * previous)]`.
    Decorrelated,
}

/// Where reconnects go after the stream was reached through redirects
/// (the specification is ambiguous here).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RedirectTarget {
    /// The configured URL, unless a chain of permanent redirects (301/308)
    /// moved it: then the last permanent target (Firefox; the recommended
    /// policy).
    #[default]
    OriginalUnlessPermanent,
    /// Always the configured URL (the Node `eventsource` package, old W3C
    /// text).
    Original,
    /// The final URL of the last connection that reached a response
    /// (Chromium, the letter of Fetch).
    LastTarget,
}

/// How (and whether) the machine reconnects.
///
/// Defaults: reconnection time 3 s, no floor, a 24 h ceiling,
/// exponential backoff capped at 30 s with [`Jitter::Full`], unlimited
/// attempts, and a connection counts as healthy (which resets the backoff)
/// once it delivered an event or stayed open for 30 s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    pub(crate) initial_delay: Duration,
    pub(crate) min_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) backoff_cap: Duration,
    pub(crate) jitter: Jitter,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) healthy_after: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> ReconnectPolicy {
        ReconnectPolicy {
            initial_delay: Duration::from_secs(3),
            min_delay: Duration::ZERO,
            max_delay: Duration::from_secs(24 * 60 * 60),
            backoff_cap: Duration::from_secs(30),
            jitter: Jitter::Full,
            max_attempts: None,
            healthy_after: Duration::from_secs(30),
        }
    }
}

impl ReconnectPolicy {
    /// The reconnection time before any `retry` field (default 3 s).
    pub fn initial_delay(mut self, delay: Duration) -> ReconnectPolicy {
        self.initial_delay = delay.min(MAX_DELAY);
        self
    }

    /// The floor applied to the reconnection time, including values a
    /// server sends with `retry` (default 0: the server is honoured).
    pub fn min_delay(mut self, delay: Duration) -> ReconnectPolicy {
        self.min_delay = delay.min(MAX_DELAY);
        self
    }

    /// The ceiling applied to the reconnection time and to every delay
    /// (default 24 h; at most [`MAX_DELAY`]).
    pub fn max_delay(mut self, delay: Duration) -> ReconnectPolicy {
        self.max_delay = delay.min(MAX_DELAY);
        self
    }

    /// The most exponential backoff adds up to (default 30 s). A
    /// reconnection time above it is still honoured.
    pub fn backoff_cap(mut self, cap: Duration) -> ReconnectPolicy {
        self.backoff_cap = cap.min(MAX_DELAY);
        self
    }

    /// How delays are randomised after failed attempts (default
    /// [`Jitter::Full`]).
    pub fn jitter(mut self, jitter: Jitter) -> ReconnectPolicy {
        self.jitter = jitter;
        self
    }

    /// Gives up ([`CloseReason::GaveUp`](crate::client::CloseReason::GaveUp)) after
    /// this many consecutive reconnects with no healthy connection in between.
    /// `None` (the default) retries forever.
    pub fn max_attempts(mut self, attempts: Option<u32>) -> ReconnectPolicy {
        self.max_attempts = attempts;
        self
    }

    /// How long an open connection must last to count as healthy even if it
    /// delivered no event (default 30 s). A healthy connection resets the
    /// backoff.
    pub fn healthy_after(mut self, after: Duration) -> ReconnectPolicy {
        self.healthy_after = after.min(MAX_DELAY);
        self
    }

    /// The reconnection time to use for `retry` (or the initial) value `d`.
    pub(crate) fn clamp(&self, d: Duration) -> Duration {
        d.max(self.min_delay).min(self.max_delay)
    }
}

/// Everything an [`EventSource`](crate::EventSource) needs to know before it
/// starts.
///
/// ```
/// use core::time::Duration;
/// use sse_proto::client::{ClientConfig, ReconnectPolicy};
///
/// let config = ClientConfig::new("https://example.com/stream")
///     .method("POST")
///     .header("Content-Type", "application/json")
///     .body(bytes::Bytes::from_static(br#"{"topic":"a"}"#))
///     .idle_timeout(Some(Duration::from_secs(60)))
///     .reconnect(ReconnectPolicy::default().initial_delay(Duration::from_secs(1)));
/// assert_eq!(config.url(), "https://example.com/stream");
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) url: Str,
    pub(crate) method: Str,
    pub(crate) headers: Vec<(Str, Str)>,
    pub(crate) body: Option<Bytes>,
    pub(crate) last_event_id: Str,
    pub(crate) reconnect: Option<ReconnectPolicy>,
    pub(crate) retry_on_server_error: bool,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_redirects: u32,
    pub(crate) redirect_target: RedirectTarget,
    pub(crate) limits: Limits,
    #[cfg(feature = "http1")]
    pub(crate) proxies: Option<super::Proxies>,
}

impl ClientConfig {
    /// A `GET` of `url` (absolute, `http` or `https`) with the defaults:
    /// no extra headers, no body, no initial last event ID, the default
    /// [`ReconnectPolicy`], no retry on 5xx/429, no idle timeout, at most 20
    /// redirects, and default decoder [`Limits`].
    pub fn new(url: impl Into<Str>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            method: Str::from_static("GET"),
            headers: Vec::new(),
            body: None,
            last_event_id: Str::new(),
            reconnect: Some(ReconnectPolicy::default()),
            retry_on_server_error: false,
            idle_timeout: None,
            max_redirects: 20,
            redirect_target: RedirectTarget::default(),
            limits: Limits::default(),
            #[cfg(feature = "http1")]
            proxies: None,
        }
    }

    /// The configured URL (the spec's `url` attribute: it never changes).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request method (default `GET`; others may be set).
    pub fn method(mut self, method: impl Into<Str>) -> ClientConfig {
        self.method = method.into();
        self
    }

    /// Adds a request header, sent on every attempt. A header named like one
    /// of the defaults (`Accept`, `Cache-Control`, `Pragma`) replaces it; a
    /// `Last-Event-ID` header is ignored (use
    /// [`last_event_id`](ClientConfig::last_event_id)). `Authorization` and
    /// `Cookie` are only sent to the configured URL's origin.
    pub fn header(mut self, name: impl Into<Str>, value: impl Into<Str>) -> ClientConfig {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A request body, re-sent on every reconnect.
    pub fn body(mut self, body: Bytes) -> ClientConfig {
        self.body = Some(body);
        self
    }

    /// The last event ID to start from: sent as `Last-Event-ID` on the first
    /// request too (resuming a stream), and seeded into the decoder.
    pub fn last_event_id(mut self, id: impl Into<Str>) -> ClientConfig {
        self.last_event_id = id.into();
        self
    }

    /// The reconnect policy.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> ClientConfig {
        self.reconnect = Some(policy);
        self
    }

    /// Turns reconnecting off (a one-shot stream): the first end of stream,
    /// network error or timeout closes the source.
    pub fn no_reconnect(mut self) -> ClientConfig {
        self.reconnect = None;
        self
    }

    /// Reconnect (instead of failing, as the spec requires) on a 5xx or 429
    /// status, waiting at least the response's `Retry-After` (off by
    /// default).
    pub fn retry_on_server_error(mut self, retry: bool) -> ClientConfig {
        self.retry_on_server_error = retry;
        self
    }

    /// Reconnect when nothing at all (no response head, no byte, not even a
    /// comment) arrives for this long. `None` (the default) waits forever.
    /// Clamped to `[1 ms, MAX_DELAY]`.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> ClientConfig {
        self.idle_timeout = timeout.map(|t| t.clamp(Duration::from_millis(1), MAX_DELAY));
        self
    }

    /// The most redirects followed in one attempt (default 20, as Fetch).
    /// One more is a network error.
    pub fn max_redirects(mut self, max: u32) -> ClientConfig {
        self.max_redirects = max;
        self
    }

    /// Where reconnects go after redirects.
    pub fn redirect_target(mut self, target: RedirectTarget) -> ClientConfig {
        self.redirect_target = target;
        self
    }

    /// The forward proxies to go through ([`Proxies::none`](super::Proxies::none) to connect
    /// directly). Unset, a driver reads them from the environment
    /// (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`; see
    /// [`Proxies::from_env`](super::Proxies::from_env)).
    #[cfg(feature = "http1")]
    pub fn proxies(mut self, proxies: super::Proxies) -> ClientConfig {
        self.proxies = Some(proxies);
        self
    }

    /// The proxies set with [`proxies`](ClientConfig::proxies), or `None`
    /// when the driver is to read them from the environment.
    #[cfg(feature = "http1")]
    pub fn proxy_settings(&self) -> Option<&super::Proxies> {
        self.proxies.as_ref()
    }

    /// Limits for each connection's [`Decoder`](crate::Decoder).
    pub fn limits(mut self, limits: Limits) -> ClientConfig {
        self.limits = limits;
        self
    }
}
