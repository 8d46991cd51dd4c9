//! The reconnecting client over your own [`reqwest::Client`]
//! (feature `reqwest`): [`EventSource`] yields the same
//! [`Result<Event, Error>`](crate::Item) items as the built-in
//! [`crate::EventSource`], so code moves between the two unchanged, but
//! every request goes through the client you configured: its proxies, TLS,
//! HTTP/2, cookie store, default headers, timeouts and redirect policy.
//!
//! Every protocol decision is still [`sse_proto::client::EventSource`]'s:
//! what to request (`Accept: text/event-stream`, `Cache-Control: no-cache`,
//! `Last-Event-ID` once there is one), when to reconnect (the `retry` field,
//! exponential backoff with jitter after failed attempts, the idle timeout),
//! and what each response means. This module only hands its requests to
//! reqwest, feeds it the response and the body's chunks (without copying
//! them), and sleeps when it says so.
//!
//! ```no_run
//! use sse_tokio::Event;
//! use sse_tokio::reqwest::EventSource;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = reqwest::Client::new();
//! let mut events = EventSource::new(client.get("http://127.0.0.1:8080/events").bearer_auth("secret"))?;
//! while let Some(item) = events.next().await {
//!     match item? {
//!         Event::Open => println!("connected"),
//!         Event::Message(message) => println!("{}: {}", message.event_type(), message.data()),
//!         Event::Reconnecting { delay, .. } => println!("reconnecting in {delay:?}"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A one-shot `POST` (a streamed completion, say) turns reconnecting off,
//! so that the stream ends with `None` when the body ends:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! # let client = reqwest::Client::new();
//! use sse_tokio::reqwest::EventSource;
//!
//! let request = client
//!     .post("http://127.0.0.1:8080/v1/chat/completions")
//!     .header("Content-Type", "application/json")
//!     .body(r#"{"stream": true, "messages": []}"#);
//! let mut events = EventSource::new(request)?.configure(|config| config.no_reconnect());
//! while let Some(item) = events.next().await {
//!     if let sse_tokio::Event::Message(message) = item? {
//!         println!("{}", message.data());
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # What differs from the built-in client
//!
//! * Redirects are reqwest's (its [`redirect::Policy`](::reqwest::redirect::Policy),
//!   10 hops by default): the machine only sees the final response. A `3xx`
//!   that reaches it (with redirects turned off in the client) is a status
//!   other than 200, which fails the source; reconnects always go to the
//!   configured URL.
//! * Proxies are the client's too: [`ClientConfig::proxies`] is not used.
//! * Transport errors (connecting, TLS, reading the body, a timeout set on
//!   the client or the request) are [`Error::Io`] whose inner error is the
//!   [`reqwest::Error`] (`io::Error::other`), behind the next
//!   [`Event::Reconnecting`] or as the `cause` of [`Error::Closed`].
//! * A `timeout` set on the request builder bounds each whole attempt,
//!   body included: the stream is cut (and reconnects) when it runs out.
//!   Prefer the client's `read_timeout`, or
//!   [`ClientConfig::idle_timeout`].
//!
//! The end of the stream follows the same rules: `None` after
//! `204 No Content`, [`EventSource::close`], or the clean end of a one-shot
//! stream; a single `Err` when the source fails for good. A response that
//! is not an event stream (a status other than 200 or 204, or a 200 whose
//! `Content-Type` is not `text/event-stream`) ends it with
//! [`Error::Rejected`]: its status, headers and the first
//! [`ERROR_BODY_LIMIT`](sse_proto::client::ERROR_BODY_LIMIT) bytes of its
//! body (read chunk by chunk for at most 5 s, never the whole of a long
//! body), such as an API's JSON error.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use ::reqwest::{Body, Client, Method, Request, RequestBuilder, Response, Url, Version};
use bytes::Bytes;
use futures_core::Stream;
use http_body::Body as _;
use sse_proto::client::{
    ClientConfig, CloseReason, ERROR_BODY_WAIT, ErrorResponse, EventSource as Machine, Fetch,
    Output, ReadyState, ReconnectReason, ResponseSummary,
};
use sse_proto::http1::BuildError;
use tokio::time::{Instant, Sleep};

use crate::{Error, Event, Item};

/// A reconnecting Server-Sent Events client that sends its requests with a
/// [`reqwest::Client`]: a [`Stream`] of [`Result<Event, Error>`](Item),
/// yielding exactly what [`crate::EventSource`] yields (see the
/// [crate docs](crate)).
///
/// Nothing happens until it is polled (inside a tokio runtime with the
/// `time` driver, as reqwest needs anyway). Dropping it, or calling
/// [`close`](EventSource::close), aborts the request in flight. It is
/// `Send` and `Unpin`.
///
/// Polling allocates nothing per event: the stream is a hand-written state
/// machine over the response body, whose chunks go to the decoder as they
/// are, and one re-armed [`Sleep`]. Each attempt builds its
/// [`reqwest::Request`] and boxes reqwest's response future.
pub struct EventSource {
    client: Client,
    /// The configuration the machine was built from, for
    /// [`configure`](EventSource::configure).
    config: ClientConfig,
    /// What a request builder set that the machine does not know of.
    options: RequestOptions,
    machine: Machine<Instant>,
    io: Io,
    timer: Timer,
    /// The transport error behind the next `Reconnecting` or `Closed`.
    last_error: Option<Error>,
    done: bool,
}

/// The parts of a [`reqwest::Request`] that are not in a [`ClientConfig`],
/// carried over to every attempt.
#[derive(Clone, Copy, Debug, Default)]
struct RequestOptions {
    timeout: Option<Duration>,
    version: Version,
}

/// reqwest's response future.
type Sending = Pin<Box<dyn Future<Output = ::reqwest::Result<Response>> + Send>>;

/// The request side of the loop.
enum Io {
    /// No request: waiting for the timer, or closed.
    Idle,
    /// The request is out; waiting for the response head.
    Sending(Sending),
    /// The stream is open: body chunks go to the machine.
    Reading(Body),
    /// A response the machine did not open a stream for, kept until its
    /// outputs say whether its body is wanted (a rejection) or not.
    Answered(Box<Answered>),
    /// Reading the first bytes of a rejected response's body.
    Rejecting(Box<Rejecting>),
}

/// A response that opened no stream.
struct Answered {
    status: u16,
    headers: HeaderMap,
    body: Body,
}

/// A response that fails the source, and the rest of its body.
struct Rejecting {
    /// What the stream ends with: the head, and the body so far.
    response: ErrorResponse,
    body: Body,
    /// When to stop waiting for the body.
    deadline: Instant,
}

/// How many steps (chunks, responses) one `poll_next` takes before yielding
/// to the executor when none of them produced an item.
const BUDGET: u32 = 64;

/// What one step of the request side did.
enum Step {
    /// Nothing to do (no request).
    Idle,
    /// Waiting (the waker is registered).
    Pending,
    /// Something went to the machine.
    Progress,
    /// The stream yields this (or ends).
    Yield(Option<Item>),
}

impl EventSource {
    /// A client that sends what `request` describes: its client, method,
    /// URL, headers and body (re-sent on every reconnect), timeout and HTTP
    /// version. A `Last-Event-ID` header on the builder becomes the initial
    /// last event ID ([`ClientConfig::last_event_id`]); the machine adds
    /// `Accept: text/event-stream` and `Cache-Control: no-cache` unless the
    /// builder set them. The rest of the configuration is the default
    /// ([`ClientConfig::new`]); change it with
    /// [`configure`](EventSource::configure).
    ///
    /// # Errors
    /// [`Error::Io`] when the builder does not build (its
    /// [`reqwest::Error`] inside, as with any reqwest error), and of kind
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) when the body is a
    /// stream (it could not be sent again) or a header value is not UTF-8.
    pub fn new(request: RequestBuilder) -> Result<EventSource, Error> {
        let (client, request) = request.build_split();
        let request = request.map_err(transport)?;
        let mut config =
            ClientConfig::new(request.url().as_str()).method(request.method().as_str());
        for (name, value) in request.headers() {
            let value = std::str::from_utf8(value.as_bytes())
                .map_err(|_| invalid_input(format!("the {name} header is not UTF-8")))?;
            config = if name == "last-event-id" {
                config.last_event_id(value)
            } else {
                config.header(name.as_str(), value)
            };
        }
        if let Some(body) = request.body() {
            let bytes = body.as_bytes().ok_or_else(|| {
                invalid_input(
                    "the request body is a stream, which cannot be sent again on reconnect; \
                     give the bytes instead"
                        .into(),
                )
            })?;
            config = config.body(Bytes::copy_from_slice(bytes));
        }
        let options = RequestOptions {
            timeout: request.timeout().copied(),
            version: request.version(),
        };
        Ok(EventSource::start(client, config, options))
    }

    /// A client for `config` (URL, method, headers, body, reconnect policy,
    /// last event ID, idle timeout, decoder limits) that sends its requests
    /// with `client`. Redirect and proxy settings in `config` are not used:
    /// those are the client's.
    ///
    /// A method, header or URL that reqwest cannot send is the stream's
    /// first item: `Err(`[`Error::Protocol`]`)` for the method and headers,
    /// [`Error::Io`] of kind [`InvalidInput`](io::ErrorKind::InvalidInput)
    /// for the URL, or [`Error::Closed`] with
    /// [`CloseReason::UnsupportedUrl`] for one that is not http(s).
    pub fn with_config(client: Client, config: ClientConfig) -> EventSource {
        EventSource::start(client, config, RequestOptions::default())
    }

    /// The same source with its [`ClientConfig`] changed by `change`: for
    /// the options a request builder has no say in (reconnect policy or
    /// [`no_reconnect`](ClientConfig::no_reconnect), last event ID, idle
    /// timeout, `retry_on_server_error`, decoder limits).
    ///
    /// ```no_run
    /// # fn f(client: reqwest::Client) -> Result<(), sse_tokio::Error> {
    /// use std::time::Duration;
    /// use sse_tokio::ReconnectPolicy;
    /// use sse_tokio::reqwest::EventSource;
    ///
    /// let events = EventSource::new(client.get("http://127.0.0.1:8080/events"))?.configure(|c| {
    ///     c.last_event_id("42")
    ///         .idle_timeout(Some(Duration::from_secs(60)))
    ///         .reconnect(ReconnectPolicy::default().max_attempts(Some(10)))
    /// });
    /// # Ok(()) }
    /// ```
    ///
    /// It starts over: a request already in flight is dropped, and the new
    /// source starts from the new configuration's last event ID.
    #[must_use]
    pub fn configure(self, change: impl FnOnce(ClientConfig) -> ClientConfig) -> EventSource {
        EventSource::start(self.client, change(self.config), self.options)
    }

    /// The spec's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        self.machine.ready_state()
    }

    /// The last event ID received so far (empty before any, unless
    /// configured): what the next reconnection sends as `Last-Event-ID`,
    /// and what to store to resume after a restart of the application.
    pub fn last_event_id(&self) -> &str {
        self.machine.last_event_id()
    }

    /// The next item, or `None` once the stream has ended (a convenience
    /// for `StreamExt::next`).
    pub async fn next(&mut self) -> Option<Item> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Aborts the request in flight and ends the stream: the next poll
    /// returns `None`.
    pub fn close(&mut self) {
        self.finish();
    }

    fn start(client: Client, config: ClientConfig, options: RequestOptions) -> EventSource {
        let machine = Machine::new(config.clone(), Instant::now(), jitter_seed());
        EventSource {
            client,
            config,
            options,
            machine,
            io: Io::Idle,
            timer: Timer::default(),
            last_error: None,
            done: false,
        }
    }

    /// Closes the machine and drops the request and the timer; every later
    /// poll returns `None`.
    fn finish(&mut self) {
        self.machine.close();
        while self.machine.poll_output().is_some() {}
        self.io = Io::Idle;
        self.timer.clear();
        self.last_error = None;
        self.done = true;
    }

    /// Ends the stream with `error`.
    fn fail(&mut self, error: Error) -> Option<Option<Item>> {
        self.finish();
        Some(Some(Err(error)))
    }

    /// Acts on one output of the machine: `Some` when the stream yields (or
    /// ends) with it.
    fn act(&mut self, output: Output) -> Option<Option<Item>> {
        match output {
            Output::Connect(fetch) => match self.request(fetch) {
                Ok(request) => {
                    self.io = Io::Sending(Box::pin(self.client.execute(request)));
                    None
                }
                Err(error) => self.fail(error),
            },
            Output::Disconnect(_) => {
                self.io = Io::Idle;
                None
            }
            Output::Open => Some(Some(Ok(Event::Open))),
            Output::Event(event) => Some(Some(Ok(Event::Message(event)))),
            Output::Reconnecting { delay, reason } => Some(Some(Ok(Event::Reconnecting {
                delay,
                reason,
                error: self.last_error.take(),
            }))),
            // Closed by the application, told to stop (204), or a one-shot
            // stream that ended cleanly: the end, not an error.
            Output::Closed(
                CloseReason::User
                | CloseReason::NoContent
                | CloseReason::ReconnectDisabled(ReconnectReason::EndOfStream),
            ) => {
                self.finish();
                Some(None)
            }
            Output::Closed(
                reason @ (CloseReason::BadStatus(_) | CloseReason::BadContentType(_)),
            ) if matches!(self.io, Io::Answered(_)) => {
                // The stream ends with the response once the start of its
                // body is in.
                if let Io::Answered(answered) = std::mem::replace(&mut self.io, Io::Idle) {
                    self.io = Io::Rejecting(Box::new(Rejecting::new(reason, *answered)));
                }
                None
            }
            Output::Closed(reason) => {
                let cause = self.last_error.take().map(Box::new);
                self.fail(Error::Closed { reason, cause })
            }
            _ => None,
        }
    }

    /// The reqwest request for what the machine asks.
    fn request(&self, fetch: Fetch) -> Result<Request, Error> {
        let method = Method::from_bytes(fetch.method.as_bytes())
            .map_err(|_| build_error(BuildError::InvalidMethod))?;
        let url = Url::parse(&fetch.url).map_err(|e| {
            Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot send to {:?}: {e}", fetch.url.as_str()),
            ))
        })?;
        let mut request = Request::new(method, url);
        let headers = request.headers_mut();
        headers.reserve(fetch.headers.len());
        for (name, value) in &fetch.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| build_error(BuildError::InvalidHeaderName))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| build_error(BuildError::InvalidHeaderValue))?;
            if name == header::AUTHORIZATION
                || name == header::PROXY_AUTHORIZATION
                || name == header::COOKIE
            {
                value.set_sensitive(true);
            }
            headers.append(name, value);
        }
        if let Some(body) = fetch.body {
            *request.body_mut() = Some(Body::from(body));
        }
        *request.timeout_mut() = self.options.timeout;
        *request.version_mut() = self.options.version;
        Ok(request)
    }

    /// Hands a response head to the machine; keeps its body for the
    /// stream, or for the outputs to decide.
    fn respond(&mut self, mut response: Response) {
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        let body = Body::from(response);
        let mut summary = ResponseSummary::new(status);
        if let Some(value) = headers.get(header::CONTENT_TYPE) {
            // A value that is not UTF-8 is not text/event-stream either.
            summary = summary.content_type(std::str::from_utf8(value.as_bytes()).unwrap_or(""));
        }
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(sse_proto::client::parse_retry_after);
        if let Some(delay) = retry_after {
            summary = summary.retry_after(delay);
        }
        self.machine.handle_response(summary, Instant::now());
        self.io = if self.machine.ready_state() == ReadyState::Open {
            Io::Reading(body)
        } else {
            Io::Answered(Box::new(Answered {
                status,
                headers,
                body,
            }))
        };
    }

    /// Records a transport error and tells the machine.
    fn transport_error(&mut self, error: ::reqwest::Error) {
        self.io = Io::Idle;
        self.last_error = Some(transport(error));
        self.machine.handle_error(Instant::now());
    }

    /// Advances the request side by one step.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Step {
        match &mut self.io {
            Io::Idle | Io::Answered(_) => Step::Idle,
            Io::Sending(sending) => match sending.as_mut().poll(cx) {
                Poll::Pending => Step::Pending,
                Poll::Ready(Ok(response)) => {
                    self.respond(response);
                    Step::Progress
                }
                Poll::Ready(Err(error)) => {
                    self.transport_error(error);
                    Step::Progress
                }
            },
            Io::Reading(body) => match Pin::new(body).poll_frame(cx) {
                Poll::Pending => Step::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers mean nothing to an event stream.
                    if let Ok(chunk) = frame.into_data() {
                        self.machine.handle_chunk(chunk, Instant::now());
                    }
                    Step::Progress
                }
                Poll::Ready(Some(Err(error))) => {
                    self.transport_error(error);
                    Step::Progress
                }
                Poll::Ready(None) => {
                    self.io = Io::Idle;
                    self.machine.handle_eof(Instant::now());
                    Step::Progress
                }
            },
            Io::Rejecting(rejecting) => match rejecting.poll_body(&mut self.timer, cx) {
                Poll::Pending => Step::Pending,
                Poll::Ready(false) => Step::Progress,
                Poll::Ready(true) => {
                    let Io::Rejecting(rejecting) = std::mem::replace(&mut self.io, Io::Idle) else {
                        return Step::Progress;
                    };
                    self.finish();
                    Step::Yield(Some(Err(Error::Rejected(Box::new(rejecting.response)))))
                }
            },
        }
    }

    /// Polls the timer at the machine's deadline: `Ready` once it is due
    /// (after handing it to the machine).
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.machine.poll_timeout() else {
            return Poll::Pending;
        };
        let now = std::task::ready!(self.timer.poll_at(deadline, cx));
        self.machine.handle_timeout(now);
        Poll::Ready(())
    }
}

impl Rejecting {
    /// Starts reading the body of `answered`, which closed the source for
    /// `reason`.
    fn new(reason: CloseReason, answered: Answered) -> Rejecting {
        let mut response = ErrorResponse::new(reason, answered.status);
        for (name, value) in &answered.headers {
            response.push_header(name.as_str(), value.as_bytes());
        }
        Rejecting {
            response,
            body: answered.body,
            deadline: Instant::now() + ERROR_BODY_WAIT,
        }
    }

    /// Reads one more piece of the body: `Ready(true)` once done (the end
    /// of the body, the limit, an error or the deadline), `Ready(false)`
    /// after a chunk that leaves room for more.
    fn poll_body(&mut self, timer: &mut Timer, cx: &mut Context<'_>) -> Poll<bool> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(chunk) => Poll::Ready(!self.response.push_body(&chunk)),
                Err(_trailers) => Poll::Ready(false),
            },
            Poll::Ready(None) => Poll::Ready(true),
            // What arrived before the body broke is still its start.
            Poll::Ready(Some(Err(_))) => {
                self.response.set_truncated();
                Poll::Ready(true)
            }
            Poll::Pending => match timer.poll_at(self.deadline, cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(_) => {
                    self.response.set_truncated();
                    Poll::Ready(true)
                }
            },
        }
    }
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.io, self.done) {
            (_, true) => "done",
            (Io::Idle | Io::Answered(_), false) => "waiting",
            (Io::Sending(_), false) => "sending",
            (Io::Reading(_), false) => "open",
            (Io::Rejecting(_), false) => "reading the error body",
        };
        f.debug_struct("EventSource")
            .field("url", &self.config.url())
            .field("state", &state)
            .field("ready_state", &self.machine.ready_state())
            .finish()
    }
}

impl Stream for EventSource {
    type Item = Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = self.get_mut();
        let mut budget = BUDGET;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(output) = this.machine.poll_output() {
                if let Some(item) = this.act(output) {
                    return Poll::Ready(item);
                }
                continue;
            }
            match this.poll_io(cx) {
                Step::Yield(item) => return Poll::Ready(item),
                Step::Progress => {
                    budget -= 1;
                    if budget == 0 {
                        // A body of comments yields no item: let the other
                        // tasks run.
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    continue;
                }
                Step::Idle | Step::Pending => {}
            }
            if this.poll_timer(cx).is_ready() {
                continue;
            }
            if matches!(this.io, Io::Idle) && this.machine.poll_timeout().is_none() {
                // No request and no timer: the machine is closed.
                this.finish();
                return Poll::Ready(None);
            }
            return Poll::Pending;
        }
    }
}

/// One `tokio::time::Sleep`, created on first use and re-armed for each
/// deadline.
#[derive(Default)]
struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
    /// The deadline it is armed for (`None`: not armed, or spent).
    armed_at: Option<Instant>,
}

impl Timer {
    /// `Ready(now)` once `deadline` has passed, `now` never earlier than
    /// `deadline` (so the machine sees it as due). The timer is then spent.
    fn poll_at(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<Instant> {
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if self.armed_at != Some(deadline) {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            None => self
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.armed_at = Some(deadline);
        match sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.armed_at = None;
                Poll::Ready(Instant::now().max(deadline))
            }
        }
    }

    fn clear(&mut self) {
        self.sleep = None;
        self.armed_at = None;
    }
}

/// A reqwest error as this crate's error, keeping it as the source.
fn transport(error: ::reqwest::Error) -> Error {
    Error::Io(io::Error::other(error))
}

fn invalid_input(message: String) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidInput, message))
}

fn build_error(error: BuildError) -> Error {
    Error::Protocol(sse_proto::client::ConnectionError::Request(error))
}

/// A seed for the reconnect jitter, different for every source: the
/// output of a fresh `RandomState` (keyed from the operating system's
/// randomness).
fn jitter_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}
