//! Reading an event stream as a client would: the response head, then the
//! body as it arrives, de-chunked, gunzipped and decoded into frames.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sse_proto::http1::{BodyDecoder, ResponseHead};
use sse_proto::{Decoder, Event, Frame};

use super::WAIT;
use super::gzip::Gunzip;
use super::http::{Conn, Fill, Resp};

/// The reserved event type that says events may have been lost
/// (`sse_proto::server::LOST_EVENT_TYPE`).
pub const LOST: &str = "sse-lost";
/// The `Cache-Control` every event stream must carry.
pub const CACHE_CONTROL: &str = "private, no-cache, no-store, must-revalidate, max-age=0";

/// The comment lines (`:...`) of an event-stream text.
pub fn comments(text: &str) -> Vec<&str> {
    text.split(['\r', '\n'])
        .filter(|l| l.starts_with(':'))
        .collect()
}

/// An open event stream. Nothing is read but when asked: a test that does
/// not read is a subscriber that does not read.
pub struct Stream {
    /// The connection; its buffer holds the body bytes not decoded yet.
    pub conn: Conn,
    /// The response head.
    pub head: ResponseHead,
    body: BodyDecoder,
    /// The gunzip, when the body is gzip-encoded.
    pub gzip: Option<Gunzip>,
    /// The decoded body so far (event-stream text).
    text: Vec<u8>,
    decoder: Decoder,
    /// Frames decoded and not taken yet.
    pub frames: VecDeque<Frame>,
    /// The `retry:` values seen, in order.
    pub retries: Vec<Duration>,
    /// The connection ended (closed or reset).
    pub eof: bool,
    /// The body ended properly (its last chunk arrived).
    pub done: bool,
}

impl Stream {
    /// Sends `request` (a subscription) to `addr`: the stream when the
    /// answer is 200, else the whole answer.
    pub fn open(addr: SocketAddr, request: &[u8]) -> Result<Stream, Resp> {
        let mut conn = Conn::open(addr);
        conn.send(request);
        let head = conn.head();
        if head.status() != 200 {
            let body = conn.body(&head, "GET");
            return Err(Resp::new(&head, body));
        }
        let kind = head.body_kind("GET").expect("valid framing");
        let gzip = head
            .header_str("content-encoding")
            .is_some_and(|c| c.eq_ignore_ascii_case("gzip"))
            .then(Gunzip::new);
        let mut stream = Stream {
            conn,
            head,
            body: BodyDecoder::new(kind),
            gzip,
            text: Vec::new(),
            decoder: Decoder::new(),
            frames: VecDeque::new(),
            retries: Vec::new(),
            eof: false,
            done: false,
        };
        stream.decode();
        Ok(stream)
    }

    /// The value of the response header field `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header_str(name)
    }

    /// The decoded body so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    /// The id of the last event decoded (`""` if none had one).
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }

    /// Runs what the connection has buffered through the body, gzip and
    /// event decoders.
    pub fn decode(&mut self) {
        while let Some(piece) = self
            .body
            .decode(&mut self.conn.buf)
            .expect("a well-formed body")
        {
            let plain = match &mut self.gzip {
                Some(gzip) => gzip.push(&piece),
                None => piece.to_vec(),
            };
            self.text.extend_from_slice(&plain);
            self.decoder.handle_bytes(&plain);
            while let Some(frame) = self.decoder.poll_frame().expect("a valid event stream") {
                if let Frame::Retry(retry) = frame {
                    self.retries.push(retry);
                }
                self.frames.push_back(frame);
            }
        }
        if self.body.is_done() {
            self.done = true;
        }
    }

    /// One read (waiting until `deadline` at most), decoded; false when
    /// nothing came.
    pub fn pump(&mut self, deadline: Instant) -> bool {
        if self.eof || self.done {
            return false;
        }
        match self.conn.fill(deadline) {
            Fill::Data => {
                self.decode();
                true
            }
            Fill::Quiet => false,
            Fill::Closed => {
                self.eof = true;
                false
            }
        }
    }

    /// The next frame within `timeout`; `None` if none came (or the stream
    /// ended first).
    pub fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Some(frame);
            }
            if self.eof || self.done || Instant::now() >= deadline {
                return None;
            }
            self.pump(deadline);
        }
    }

    /// The next event (skipping other frames) within `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Frame::Event(event) = self.next_frame(left)? {
                return Some(event);
            }
        }
    }

    /// The next event; panics unless one comes within [`WAIT`].
    pub fn event(&mut self) -> Event {
        self.next_event(WAIT).unwrap_or_else(|| {
            panic!(
                "no event within {WAIT:?} (eof {}, done {}, body so far {:?})",
                self.eof,
                self.done,
                self.text()
            )
        })
    }

    /// The data of the next `n` events.
    pub fn datas(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.event().data().to_owned()).collect()
    }

    /// Reads events until one has `data`; the data of all of them (that
    /// one included). Panics unless it comes within `timeout`.
    pub fn until_data(&mut self, data: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = self.next_event(left) else {
                panic!("no event {data:?} within {timeout:?}; got {seen:?}");
            };
            seen.push(event.data().to_owned());
            if event.data() == data {
                return seen;
            }
        }
    }

    /// Fails if an event arrives within `time`.
    pub fn assert_quiet(&mut self, time: Duration) {
        if let Some(event) = self.next_event(time) {
            panic!("unexpected event {event:?}");
        }
    }

    /// Reads until the connection or the body ends; true if it did within
    /// `timeout`.
    pub fn wait_end(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !(self.eof || self.done) && Instant::now() < deadline {
            self.pump(deadline);
        }
        self.eof || self.done
    }

    /// Reads until `pred` holds for the body text; true if it did within
    /// `timeout`.
    pub fn wait_text(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.text()) {
                return true;
            }
            if self.eof || self.done || Instant::now() >= deadline {
                return false;
            }
            self.pump(deadline);
        }
    }

    /// Reads for `time`; the body text that arrived meanwhile.
    pub fn collect_for(&mut self, time: Duration) -> String {
        let start = self.text.len();
        let deadline = Instant::now() + time;
        while !(self.eof || self.done) && Instant::now() < deadline {
            self.pump(deadline);
        }
        String::from_utf8_lossy(&self.text[start..]).into_owned()
    }
}
