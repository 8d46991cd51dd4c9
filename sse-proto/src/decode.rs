//! [`Decoder`]: the WHATWG event stream interpretation, push bytes in, pull
//! frames out.
//!
//! # How the input is held
//!
//! Input arrives either copied ([`Decoder::handle_bytes`]) or as a shared
//! [`Bytes`] chunk ([`Decoder::handle_chunk`]). A chunk is parsed in place, so
//! a long data line inside it becomes a view of the chunk, with no copy. Only
//! the bytes of a line cut by a chunk boundary are copied, into a carry
//! buffer that the next chunk completes. Each byte is scanned for line ends
//! once: the decoder remembers how far it has looked into an unfinished line.

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use bytes::{Buf, Bytes, BytesMut};

use crate::event::Event;
use crate::str::Str;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Size limits that keep a [`Decoder`] fed with untrusted bytes bounded in
/// memory.
///
/// The defaults (8 MiB per line, 16 MiB of data per event) accept anything a
/// sane server sends and stop a hostile or broken one from exhausting memory.
/// A decoder holds at most about `max_line_len + max_event_size` bytes of
/// parsing state, plus whatever input the caller hands it before polling.
///
/// ```
/// use sse_proto::Limits;
///
/// let limits = Limits::default().max_line_len(64 * 1024).max_event_size(1 << 20);
/// assert_eq!(limits.line_len(), 64 * 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    max_line_len: usize,
    max_event_size: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line_len: 8 * 1024 * 1024,
            max_event_size: 16 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Sets the longest line accepted, in bytes, not counting its line end.
    pub fn max_line_len(mut self, bytes: usize) -> Limits {
        self.max_line_len = bytes;
        self
    }

    /// Sets the largest event accepted: the bytes of its data (all `data`
    /// values of one block joined with LF).
    pub fn max_event_size(mut self, bytes: usize) -> Limits {
        self.max_event_size = bytes;
        self
    }

    /// The longest line accepted, in bytes.
    pub fn line_len(&self) -> usize {
        self.max_line_len
    }

    /// The largest event data accepted, in bytes.
    pub fn event_size(&self) -> usize {
        self.max_event_size
    }
}

/// A limit was exceeded. The [`Decoder`] is then terminal: it returns the same
/// error from every later poll and has freed its buffers.
///
/// The stream is not resynchronised at the next blank line on purpose: after
/// an over-long line the decoder cannot know whether the bytes that follow
/// start a line or continue a hostile one, so a client should drop the
/// connection (and may reconnect with its last event ID).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// A line was longer than [`Limits::line_len`].
    LineTooLong {
        /// The limit in force, in bytes.
        limit: usize,
    },
    /// An event's data grew past [`Limits::event_size`].
    EventTooLarge {
        /// The limit in force, in bytes.
        limit: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::LineTooLong { limit } => write!(
                f,
                "event stream line longer than the {limit}-byte limit; raise Limits::max_line_len if the server really sends such lines"
            ),
            DecodeError::EventTooLarge { limit } => write!(
                f,
                "event data larger than the {limit}-byte limit; raise Limits::max_event_size if the server really sends such events"
            ),
        }
    }
}

impl core::error::Error for DecodeError {}

/// What the decoder produces.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A blank line dispatched an event.
    Event(Event),
    /// A `retry` field with a valid value (ASCII digits only, at most
    /// `u64::MAX` milliseconds) set the reconnection time. It takes effect
    /// when its line is read, even if the block it is in is never dispatched.
    Retry(Duration),
}

/// The sans-IO `text/event-stream` decoder: exactly the WHATWG HTML
/// "event stream interpretation" (section 9.2.6).
///
/// Feed it bytes as they arrive with [`handle_bytes`](Decoder::handle_bytes)
/// or [`handle_chunk`](Decoder::handle_chunk), then call
/// [`poll_frame`](Decoder::poll_frame) (or [`poll_event`](Decoder::poll_event))
/// until it returns `Ok(None)`. Call [`handle_eof`](Decoder::handle_eof) when
/// the body ends: a block cut off by the end is discarded, as the
/// specification requires. The output never depends on how the input was
/// split.
///
/// ```
/// use sse_proto::{Decoder, Frame};
///
/// let mut decoder = Decoder::new();
/// decoder.handle_bytes(b"\xEF\xBB\xBFretry: 500\nid: 7\nevent: greet\ndata: hel");
/// decoder.handle_bytes(b"lo\r\ndata: world\r\n\r\n: comment\n");
/// decoder.handle_eof();
///
/// assert_eq!(decoder.poll_frame().unwrap(), Some(Frame::Retry(std::time::Duration::from_millis(500))));
/// let Some(Frame::Event(event)) = decoder.poll_frame().unwrap() else { panic!() };
/// assert_eq!((event.event_type(), event.data(), event.id()), ("greet", "hello\nworld", "7"));
/// assert_eq!(decoder.poll_frame().unwrap(), None);
/// assert_eq!(decoder.last_event_id(), "7");
/// ```
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    /// Bytes not yet parsed, copied in. Parsed before `cur`.
    carry: BytesMut,
    /// A shared chunk parsed in place. When it is not empty, `carry` holds
    /// only whole lines (or nothing).
    cur: Bytes,
    scan: Scan,
    block: Block,
    /// The event source's last event ID string: set from the id buffer when a
    /// blank line is processed.
    last_event_id: Str,
    retry: Option<Duration>,
    error: Option<DecodeError>,
}

#[derive(Debug)]
struct Scan {
    /// How many bytes at the front of the active buffer (`carry` if not
    /// empty, else `cur`) are known to hold no CR or LF.
    scanned: usize,
    /// The last line ended with a CR at the end of the input seen so far: an
    /// LF that comes next belongs to it.
    skip_lf: bool,
    /// The stream has started but a leading BOM is still possible.
    bom_pending: bool,
    eof: bool,
}

/// The parsing buffers of the current block.
#[derive(Debug)]
struct Block {
    event_type: Str,
    /// The last event ID buffer: persists from block to block.
    id: Str,
    data: Data,
    /// Bytes in the data buffer once joined, without the final LF.
    data_len: usize,
    /// Joined data of a block with several `data` lines; reused.
    joined: Vec<u8>,
}

#[derive(Debug)]
enum Data {
    None,
    /// One `data` line so far, its value held without copying when it is long.
    One(Str),
    /// Several lines, joined in `Block::joined`.
    Many,
}

/// The field a line holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    Blank,
    Data,
    Event,
    Id,
    Retry,
    Ignored,
}

/// A field value: borrowed from the input, or taken from it as shared bytes.
enum Value<'a> {
    Slice(&'a [u8]),
    Shared(Bytes),
}

impl Value<'_> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Slice(bytes) => bytes,
            Value::Shared(bytes) => bytes,
        }
    }
}

/// Values longer than this become views of a shared input chunk rather than
/// inline copies.
const SHARE_ABOVE: usize = 23;

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Decoder {
        Decoder::with_limits(Limits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Decoder {
        Decoder {
            limits,
            carry: BytesMut::new(),
            cur: Bytes::new(),
            scan: Scan {
                scanned: 0,
                skip_lf: false,
                bom_pending: true,
                eof: false,
            },
            block: Block {
                event_type: Str::new(),
                id: Str::new(),
                data: Data::None,
                data_len: 0,
                joined: Vec::new(),
            },
            last_event_id: Str::new(),
            retry: None,
            error: None,
        }
    }

    /// Starts with a last event ID already set, as a reconnecting client
    /// does: events carry it until the stream sets another.
    pub fn with_last_event_id(mut self, id: impl Into<Str>) -> Decoder {
        let id = id.into();
        self.block.id = id.clone();
        self.last_event_id = id;
        self
    }

    /// Appends bytes received from the transport (copied). Does no parsing;
    /// call [`poll_frame`](Decoder::poll_frame) until `Ok(None)` afterwards.
    /// Ignored after [`handle_eof`](Decoder::handle_eof) or an error.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if self.scan.eof || self.error.is_some() {
            return;
        }
        self.flush_cur_to_carry();
        self.carry.extend_from_slice(bytes);
    }

    /// Appends a chunk received from the transport without copying it: the
    /// decoder parses it in place and events built from it share its memory
    /// (a long data line becomes a view of the chunk). Call
    /// [`poll_frame`](Decoder::poll_frame) until `Ok(None)` afterwards.
    /// Ignored after [`handle_eof`](Decoder::handle_eof) or an error.
    pub fn handle_chunk(&mut self, chunk: Bytes) {
        if self.scan.eof || self.error.is_some() || chunk.is_empty() {
            return;
        }
        if self.carry.is_empty() && self.cur.is_empty() {
            self.cur = chunk;
            return;
        }
        if !self.cur.is_empty() {
            // The caller did not drain: keep order by copying.
            self.flush_cur_to_carry();
            self.carry.extend_from_slice(&chunk);
            return;
        }
        // `carry` ends with an unfinished line: copy only what completes it,
        // and parse the rest of the chunk in place.
        let old_len = self.carry.len();
        let fully_scanned = self.scan.scanned == old_len;
        match memchr::memchr2(b'\n', b'\r', &chunk) {
            None => {
                self.carry.extend_from_slice(&chunk);
                if fully_scanned {
                    self.scan.scanned = self.carry.len();
                }
            }
            Some(end) => {
                let mut rest = chunk;
                self.carry.extend_from_slice(&rest.split_to(end + 1));
                self.cur = rest;
                if fully_scanned {
                    // The line end just copied is the next one to find.
                    self.scan.scanned = old_len + end;
                }
            }
        }
    }

    /// Marks the end of the body. Frames for the lines already received can
    /// still be polled; the block they leave unfinished, and any last line
    /// without a line end, are discarded (WHATWG: "once the end of the file
    /// is reached, any pending data must be discarded").
    pub fn handle_eof(&mut self) {
        self.scan.eof = true;
    }

    /// Returns the next frame, or `Ok(None)` when the input received so far
    /// holds no more. Call after: [`handle_bytes`](Decoder::handle_bytes),
    /// [`handle_chunk`](Decoder::handle_chunk), [`handle_eof`](Decoder::handle_eof),
    /// and again until it returns `Ok(None)`.
    ///
    /// # Errors
    /// [`DecodeError`] when a [`Limits`] bound is exceeded; the decoder is
    /// then terminal and returns the same error from every later call.
    pub fn poll_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let result = loop {
            let step = if self.carry.is_empty() {
                let step = self.step(Source::Cur);
                if let Ok(Step::NeedMore) = step {
                    self.flush_cur_to_carry();
                }
                step
            } else {
                self.step(Source::Carry)
            };
            match step {
                Ok(Step::Continue) => {}
                Ok(Step::Frame(frame)) => break Ok(Some(frame)),
                Ok(Step::NeedMore) => {
                    if self.scan.eof {
                        self.discard_pending();
                    }
                    break Ok(None);
                }
                Err(err) => break Err(err),
            }
        };
        if let Err(err) = result {
            self.error = Some(err);
            self.carry = BytesMut::new();
            self.cur = Bytes::new();
            self.block.joined = Vec::new();
            self.block.data = Data::None;
        }
        result
    }

    /// Like [`poll_frame`](Decoder::poll_frame), but returns only events;
    /// `retry` values still update [`retry`](Decoder::retry).
    ///
    /// # Errors
    /// As [`poll_frame`](Decoder::poll_frame).
    pub fn poll_event(&mut self) -> Result<Option<Event>, DecodeError> {
        loop {
            match self.poll_frame()? {
                Some(Frame::Event(event)) => return Ok(Some(event)),
                Some(Frame::Retry(_)) => {}
                None => return Ok(None),
            }
        }
    }

    /// The last event ID string: the id buffer as it stood at the last blank
    /// line processed (`""` until an `id` field sets it).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The last event ID as a [`Str`].
    pub fn last_event_id_str(&self) -> &Str {
        &self.last_event_id
    }

    /// The reconnection time set by the last valid `retry` field, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Whether [`handle_eof`](Decoder::handle_eof) was called.
    pub fn is_eof(&self) -> bool {
        self.scan.eof
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn flush_cur_to_carry(&mut self) {
        if !self.cur.is_empty() {
            self.carry.extend_from_slice(&self.cur);
            self.cur = Bytes::new();
        }
    }

    fn discard_pending(&mut self) {
        self.carry = BytesMut::new();
        self.cur = Bytes::new();
        self.scan.scanned = 0;
        self.block.event_type = Str::new();
        self.block.data = Data::None;
        self.block.data_len = 0;
        self.block.joined = Vec::new();
    }

    /// Parses one line from the given source, if it holds a whole one.
    fn step(&mut self, source: Source) -> Result<Step, DecodeError> {
        // The buffer is moved out while the line is applied, so that parsing
        // can borrow it and the block state at once; moving a `Bytes` or
        // `BytesMut` is a few words, no copy of the bytes.
        match source {
            Source::Cur => {
                let mut cur = core::mem::take(&mut self.cur);
                let step = step_in(&mut cur, self);
                self.cur = cur;
                step
            }
            Source::Carry => {
                let mut carry = core::mem::take(&mut self.carry);
                let step = step_in(&mut carry, self);
                self.carry = carry;
                step
            }
        }
    }

    /// Applies one parsed line to the block state.
    fn apply(&mut self, line: Line, value: Value<'_>) -> Result<Option<Frame>, DecodeError> {
        match line {
            Line::Blank => Ok(self.dispatch().map(Frame::Event)),
            Line::Data => {
                self.push_data(value)?;
                Ok(None)
            }
            Line::Event => {
                self.block.event_type = Str::copy_from_utf8_lossy(value.as_bytes());
                Ok(None)
            }
            Line::Id => {
                if memchr::memchr(0, value.as_bytes()).is_none() {
                    self.block.id = Str::copy_from_utf8_lossy(value.as_bytes());
                }
                Ok(None)
            }
            Line::Retry => Ok(parse_retry(value.as_bytes()).map(|ms| {
                let retry = Duration::from_millis(ms);
                self.retry = Some(retry);
                Frame::Retry(retry)
            })),
            Line::Ignored => Ok(None),
        }
    }

    fn push_data(&mut self, value: Value<'_>) -> Result<(), DecodeError> {
        let block = &mut self.block;
        let limit = self.limits.max_event_size;
        let bytes = value.as_bytes();
        let added = match block.data {
            Data::None => bytes.len(),
            _ => bytes.len().saturating_add(1),
        };
        let new_len = block.data_len.saturating_add(added);
        if new_len > limit {
            return Err(DecodeError::EventTooLarge { limit });
        }
        block.data_len = new_len;
        match core::mem::replace(&mut block.data, Data::Many) {
            Data::None => {
                block.data = Data::One(match value {
                    Value::Slice(bytes) => Str::copy_from_utf8_lossy(bytes),
                    Value::Shared(bytes) => Str::from_utf8_lossy(bytes),
                });
            }
            Data::One(first) => {
                block.joined.clear();
                block.joined.reserve(first.len() + 1 + bytes.len());
                block.joined.extend_from_slice(first.as_bytes());
                block.joined.push(b'\n');
                block.joined.extend_from_slice(bytes);
            }
            Data::Many => {
                block.joined.push(b'\n');
                block.joined.extend_from_slice(bytes);
            }
        }
        Ok(())
    }

    /// Processes a blank line: WHATWG "dispatch the event".
    fn dispatch(&mut self) -> Option<Event> {
        let block = &mut self.block;
        self.last_event_id.clone_from(&block.id);
        let data = match core::mem::replace(&mut block.data, Data::None) {
            Data::None => {
                block.event_type = Str::new();
                return None;
            }
            Data::One(data) => data,
            Data::Many => Str::copy_from_utf8_lossy(&block.joined),
        };
        block.data_len = 0;
        let event_type = core::mem::take(&mut block.event_type);
        let event_type = if event_type.is_empty() {
            Str::from_static("message")
        } else {
            event_type
        };
        Some(Event::new(event_type, data, self.last_event_id.clone()))
    }
}

#[derive(Clone, Copy)]
enum Source {
    Cur,
    Carry,
}

enum Step {
    Frame(Frame),
    Continue,
    NeedMore,
}

/// A buffer the decoder parses in place.
trait Input: core::ops::Deref<Target = [u8]> {
    fn skip(&mut self, n: usize);
    fn take(&mut self, n: usize) -> Bytes;
}

impl Input for Bytes {
    fn skip(&mut self, n: usize) {
        self.advance(n.min(self.len()));
    }
    fn take(&mut self, n: usize) -> Bytes {
        self.split_to(n.min(self.len()))
    }
}

impl Input for BytesMut {
    fn skip(&mut self, n: usize) {
        self.advance(n.min(self.len()));
    }
    fn take(&mut self, n: usize) -> Bytes {
        self.split_to(n.min(self.len())).freeze()
    }
}

/// Finds the next whole line in `buf` and applies it to `dec`.
fn step_in<I: Input>(buf: &mut I, dec: &mut Decoder) -> Result<Step, DecodeError> {
    let scan = &mut dec.scan;
    if scan.skip_lf {
        match buf.first() {
            None => return Ok(Step::NeedMore),
            Some(b'\n') => buf.skip(1),
            Some(_) => {}
        }
        scan.skip_lf = false;
    }
    if scan.bom_pending {
        let head = buf.get(..buf.len().min(3)).unwrap_or_default();
        if head == BOM {
            buf.skip(3);
        } else if BOM.starts_with(head) {
            // Empty, or a partial BOM: wait for more bytes.
            return Ok(Step::NeedMore);
        }
        scan.bom_pending = false;
    }
    let from = scan.scanned;
    let max_line = dec.limits.max_line_len;
    let Some(found) = memchr::memchr2(b'\n', b'\r', buf.get(from..).unwrap_or_default()) else {
        scan.scanned = buf.len();
        if buf.len() > max_line {
            return Err(DecodeError::LineTooLong { limit: max_line });
        }
        return Ok(Step::NeedMore);
    };
    let end = from + found;
    if end > max_line {
        return Err(DecodeError::LineTooLong { limit: max_line });
    }
    let mut consumed = end + 1;
    if buf.get(end) == Some(&b'\r') {
        match buf.get(end + 1) {
            Some(b'\n') => consumed += 1,
            Some(_) => {}
            None => scan.skip_lf = true,
        }
    }
    scan.scanned = 0;

    let (line, value_start) = classify(buf.get(..end).unwrap_or_default());
    let value_len = end.saturating_sub(value_start);
    // The first data line of a block, if long, is taken out of the buffer as
    // shared bytes: the event's data then costs no copy.
    let frame =
        if line == Line::Data && matches!(dec.block.data, Data::None) && value_len > SHARE_ABOVE {
            buf.skip(value_start);
            let value = buf.take(value_len);
            buf.skip(consumed - end);
            dec.apply(line, Value::Shared(value))?
        } else {
            let frame = {
                let value = buf.get(value_start..end).unwrap_or_default();
                dec.apply(line, Value::Slice(value))?
            };
            buf.skip(consumed);
            frame
        };
    Ok(match frame {
        Some(frame) => Step::Frame(frame),
        None => Step::Continue,
    })
}

/// Splits a line into its field and the start of its value (WHATWG 9.2.6:
/// the value follows the first colon, less one leading space).
#[inline]
fn classify(line: &[u8]) -> (Line, usize) {
    let (name, value_start) = match memchr::memchr(b':', line) {
        None if line.is_empty() => return (Line::Blank, 0),
        None => (line, line.len()),
        Some(0) => return (Line::Ignored, 0),
        Some(colon) => {
            let after = colon + 1;
            let start = if line.get(after) == Some(&b' ') {
                after + 1
            } else {
                after
            };
            (line.get(..colon).unwrap_or_default(), start)
        }
    };
    let line = match name {
        b"data" => Line::Data,
        b"event" => Line::Event,
        b"id" => Line::Id,
        b"retry" => Line::Retry,
        _ => Line::Ignored,
    };
    (line, value_start)
}

/// ASCII digits only, base ten; values past `u64::MAX` are ignored.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}
