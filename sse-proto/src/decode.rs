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

use crate::event::{Event, EventRef};
use crate::scan::{Window, find_line_end, find_line_end_ascii};
use crate::str::Str;

const BOM: &[u8] = b"\xEF\xBB\xBF";

crate::limits::size_limits! {
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
    pub struct Limits {
        /// Sets the longest line accepted, in bytes, not counting its line
        /// end (default 8 MiB).
        max_line_len: 8 * 1024 * 1024, line_len, "The longest line accepted, in bytes.";
        /// Sets the largest event accepted: the bytes of its data (all
        /// `data` values of one block joined with LF; default 16 MiB).
        max_event_size: 16 * 1024 * 1024, event_size, "The largest event data accepted, in bytes.";
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
    /// Bytes not yet parsed, copied in. Parsed before `cur`.
    carry: BytesMut,
    /// A shared chunk parsed in place. When it is not empty, `carry` holds
    /// only whole lines (or nothing).
    cur: Bytes,
    /// Chunks that continue the unfinished line at the end of `carry`,
    /// held as they came instead of copied, in order: a long line arriving
    /// in many chunks is copied once, when its end arrives, into a buffer
    /// reserved for all of it. Only while `carry` and these pieces are known
    /// to hold no line end (and `cur` is empty); at most `HELD_MAX` pieces.
    held: Vec<Bytes>,
    /// Total length of `held`.
    held_len: usize,
    /// Every byte of `carry` and `held` is known to be ASCII (when `carry`
    /// is not empty; `false` means unknown). Set by the passes that search
    /// a shared chunk or appended bytes continuing a long line (the bytes
    /// after the line's end included), and by the check of a chunk's
    /// unfinished line as it moves into `carry`, so that the line's value,
    /// taken out of `carry`, needs no UTF-8 check of its own.
    carry_ascii: bool,
    /// The block's type and data were lent out by
    /// [`poll_event_ref`](Decoder::poll_event_ref) and still sit in the
    /// block's buffers: emptied by the next parsing step.
    lent: bool,
    parser: Parser,
}

/// Everything but the input buffers, so that a buffer and the parser can be
/// borrowed at once.
#[derive(Debug)]
struct Parser {
    limits: Limits,
    /// How many bytes at the front of the active buffer (`carry` if not
    /// empty, else `cur`) are known to hold no CR or LF.
    scanned: usize,
    /// The last line ended with a CR at the end of the input seen so far: an
    /// LF that comes next belongs to it.
    skip_lf: bool,
    /// The stream has started but a leading BOM is still possible.
    bom_pending: bool,
    eof: bool,
    block: Block,
    /// The event source's last event ID string and the id buffer, as a pair
    /// of strings: `ids.0` or `ids.1` (per `ids_flipped`) is the last event
    /// ID; the id buffer is the same string until an `id` line writes the
    /// other one (`Block::id_set`), and a blank line then swaps their roles
    /// instead of copying the buffer over.
    ids: (Str, Str),
    /// `ids.1` is the last event ID.
    ids_flipped: bool,
    retry: Option<Duration>,
    error: Option<DecodeError>,
}

/// What one parsing step produced.
///
/// The event itself is not built by the step: its parts wait in the block
/// (`Block::event_type`, `Block::first`) and in `Parser::ids`, and
/// the poll that receives `Progress::Event` copies them straight into the
/// value it returns, field by field (see `Decoder::take_event`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    Event,
    Retry(Duration),
    NeedMore,
}

/// The parsing buffers of the current block.
#[derive(Debug)]
struct Block {
    event_type: Str,
    /// An `id` line wrote the id buffer since the last blank line (into the
    /// string of `Parser::ids` that is not the last event ID).
    id_set: bool,
    data: Data,
    /// The first data line's value, written in place (see
    /// `Str::assign_window_lossy`).
    first: Str,
    /// Bytes in the data buffer once joined, without the final LF.
    data_len: usize,
    /// Joined data of a block with several `data` lines; reused.
    joined: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    None,
    /// One `data` line so far, in `Block::first` (without a copy when it is
    /// long).
    One,
    /// Several lines, joined in `Block::joined`.
    Many,
}

/// The field a line holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    Blank,
    Data,
    Event,
    Id,
    Retry,
    Ignored,
}

/// Chunks shorter than this are copied in rather than parsed in place.
const SHARE_CHUNK_MIN: usize = 64;

/// The most chunks held for an unfinished line before they are copied
/// into `carry` (which keeps the list of pieces short whatever the line).
const HELD_MAX: usize = 32;

/// Lines are walked through 64-byte windows of line-end bitmasks until they
/// grow longer than this; then a SIMD search goes over the rest (checking
/// it for ASCII too when what precedes is known to be, see
/// `search_long_line`). Bytes appended to an unfinished line longer than
/// this are searched as they come (`append_to_long_line`).
const WINDOWED_LINE: usize = 128;

/// How many bytes before a long line's new bytes, not known to be ASCII,
/// are checked at most so that the search of the new bytes can tell
/// whether the whole line is (the line's start, and the short lines before
/// it): see [`caught_up_ascii`].
const ASCII_CATCH_UP: usize = 2048;

/// Whether `unknown`, bytes before `new` bytes of a long line that are not
/// known to be ASCII, are checked and found ASCII: only if they are at most
/// 2 KiB and four times `new`, so that the checks repeated for a line that
/// is not ASCII, coming in small pieces, cost a bounded multiple of what
/// arrives.
#[inline]
fn caught_up_ascii(unknown: &[u8], new: usize) -> bool {
    unknown.len() <= ASCII_CATCH_UP.min(new.saturating_mul(4)) && unknown.is_ascii()
}

/// Values longer than this become views of a shared input chunk rather than
/// inline copies.
const SHARE_ABOVE: usize = crate::str::INLINE_CAP;

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
            carry: BytesMut::new(),
            cur: Bytes::new(),
            held: Vec::new(),
            held_len: 0,
            carry_ascii: false,
            lent: false,
            parser: Parser {
                limits,
                scanned: 0,
                skip_lf: false,
                bom_pending: true,
                eof: false,
                block: Block {
                    event_type: Str::new(),
                    id_set: false,
                    data: Data::None,
                    first: Str::new(),
                    data_len: 0,
                    joined: Vec::new(),
                },
                ids: (Str::new(), Str::new()),
                ids_flipped: false,
                retry: None,
                error: None,
            },
        }
    }

    /// Starts with a last event ID already set, as a reconnecting client
    /// does: events carry it until the stream sets another.
    pub fn with_last_event_id(mut self, id: impl Into<Str>) -> Decoder {
        let id = id.into();
        self.parser.ids = (id, Str::new());
        self.parser.ids_flipped = false;
        self.parser.block.id_set = false;
        self
    }

    /// Appends bytes received from the transport (copied). Does no parsing;
    /// call [`poll_frame`](Decoder::poll_frame) until `Ok(None)` afterwards.
    /// Ignored after [`handle_eof`](Decoder::handle_eof) or an error.
    #[inline]
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if let [byte] = bytes {
            if self.cur.is_empty()
                && self.held.is_empty()
                && !self.parser.eof
                && self.parser.error.is_none()
            {
                // One byte (input trickling in): a constant-size store, and
                // a scan position kept up to date so that polling returns at
                // once.
                let fully_scanned = self.parser.scanned == self.carry.len();
                self.carry_ascii = false;
                self.carry.extend_from_slice(&[*byte]);
                if fully_scanned && *byte != b'\n' && *byte != b'\r' {
                    self.parser.scanned += 1;
                }
                return;
            }
        }
        self.append(bytes);
    }

    /// [`handle_bytes`](Decoder::handle_bytes) in general.
    #[inline(never)]
    fn append(&mut self, bytes: &[u8]) {
        if self.parser.eof || self.parser.error.is_some() {
            return;
        }
        self.flush_cur_to_carry();
        self.copy_held(0);
        let old_len = self.carry.len();
        let fully_scanned = self.parser.scanned == old_len;
        if fully_scanned && old_len > WINDOWED_LINE {
            self.append_to_long_line(bytes);
            return;
        }
        self.carry_ascii = false;
        self.carry.extend_from_slice(bytes);
        // A few bytes that end no line are scanned here too.
        if fully_scanned && bytes.len() < 16 && !bytes.iter().any(|&b| b == b'\n' || b == b'\r') {
            self.parser.scanned = self.carry.len();
        }
    }

    /// [`append`](Decoder::append) when `carry` holds only an unfinished
    /// long line, searched already (a short one is left to the windows of
    /// the parse): one pass over the new bytes, while they are in cache,
    /// finds where the line ends and whether it is ASCII, so that its value,
    /// taken out of `carry`, needs no UTF-8 check of its own.
    #[inline(never)]
    fn append_to_long_line(&mut self, bytes: &[u8]) {
        let old_len = self.carry.len();
        let (line_end, ascii) = find_line_end_ascii(bytes);
        // The line so far is known to be ASCII, or is checked now if it is
        // short (its start came after another line's end, in bytes not
        // checked then) and these bytes are ASCII: no more than a few times
        // the bytes appended, and 2 KiB, are checked per call.
        let line_ascii = ascii && (self.carry_ascii || caught_up_ascii(&self.carry, bytes.len()));
        self.carry.extend_from_slice(bytes);
        match line_end {
            None => {
                self.carry_ascii = line_ascii;
                self.parser.scanned = self.carry.len();
            }
            Some(end) => {
                // The flag covers all of `carry`: the lines after the end
                // too (once per long line).
                let after = bytes.get(end + 1..).unwrap_or_default();
                self.carry_ascii = line_ascii && after.is_ascii();
                // The line end just copied is the next one to find.
                self.parser.scanned = old_len + end;
            }
        }
    }

    /// Appends a chunk received from the transport without copying it: the
    /// decoder parses it in place and events built from it share its memory
    /// (a long data line becomes a view of the chunk). Call
    /// [`poll_frame`](Decoder::poll_frame) until `Ok(None)` afterwards.
    /// Ignored after [`handle_eof`](Decoder::handle_eof) or an error.
    #[inline]
    pub fn handle_chunk(&mut self, chunk: Bytes) {
        if chunk.len() < SHARE_CHUNK_MIN {
            // Sharing a chunk this small saves less than it costs.
            self.handle_bytes(&chunk);
            return;
        }
        if self.parser.eof || self.parser.error.is_some() {
            return;
        }
        if self.carry.is_empty() && self.cur.is_empty() && self.held.is_empty() {
            self.cur = chunk;
            return;
        }
        if !self.cur.is_empty() {
            // The caller did not drain: keep order by copying.
            self.flush_cur_to_carry();
            self.carry_ascii = false;
            self.carry.extend_from_slice(&chunk);
            return;
        }
        // `carry` ends with an unfinished line: copy only what completes it,
        // and parse the rest of the chunk in place.
        let fully_scanned = self.parser.scanned == self.carry.len();
        if !fully_scanned {
            self.carry_ascii = false;
            self.carry.extend_from_slice(&chunk);
            return;
        }
        // The chunk continues the unfinished line at the end of `carry`:
        // one pass finds where the line ends and whether what it adds to
        // the line is ASCII.
        let (line_end, ascii) = find_line_end_ascii(&chunk);
        self.carry_ascii &= ascii;
        match line_end {
            None => {
                // The line goes on: hold the chunk rather than copy it.
                self.held_len += chunk.len();
                self.held.push(chunk);
                if self.held.len() >= HELD_MAX {
                    self.copy_held(0);
                }
            }
            Some(end) => {
                // The line ends here: copy it whole, once, into room
                // reserved for all of it.
                self.copy_held(end + 1);
                let old_len = self.carry.len();
                let mut rest = chunk;
                // Copied from the chunk and cut off it in place: splitting
                // it into two shared halves would cost a reference count.
                self.carry
                    .extend_from_slice(rest.get(..end + 1).unwrap_or_default());
                rest.advance(end + 1);
                self.cur = rest;
                // The line end just copied is the next one to find.
                self.parser.scanned = old_len + end;
            }
        }
    }

    /// Copies the held chunks to the end of `carry` (all known to hold no
    /// line end), reserving room for `extra` more bytes too.
    #[inline]
    fn copy_held(&mut self, extra: usize) {
        if !self.held.is_empty() {
            self.copy_held_pieces(extra);
        }
    }

    #[inline(never)]
    fn copy_held_pieces(&mut self, extra: usize) {
        self.carry.reserve(self.held_len + extra);
        for piece in &self.held {
            self.carry.extend_from_slice(piece);
        }
        // Dropped after all the copies, not one after each: releasing a
        // shared chunk is an atomic operation, which waits for the stores
        // of a copy just made to drain.
        self.held.clear();
        self.held_len = 0;
        self.parser.scanned = self.carry.len();
    }

    /// Marks the end of the body. Frames for the lines already received can
    /// still be polled; the block they leave unfinished, and any last line
    /// without a line end, are discarded (WHATWG: "once the end of the file
    /// is reached, any pending data must be discarded").
    pub fn handle_eof(&mut self) {
        self.parser.eof = true;
    }

    /// Returns the next frame, or `Ok(None)` when the input received so far
    /// holds no more. Call after: [`handle_bytes`](Decoder::handle_bytes),
    /// [`handle_chunk`](Decoder::handle_chunk), [`handle_eof`](Decoder::handle_eof),
    /// and again until it returns `Ok(None)`.
    ///
    /// # Errors
    /// [`DecodeError`] when a [`Limits`] bound is exceeded; the decoder is
    /// then terminal and returns the same error from every later call.
    #[inline]
    pub fn poll_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if self.idle() {
            return Ok(None);
        }
        self.poll_frame_parsing()
    }

    /// [`poll_frame`](Decoder::poll_frame) past the idle check: out of line,
    /// so that a poll with nothing to parse (input trickling in) costs a few
    /// compares wherever it is called from, and so that the decoder's speed
    /// does not hinge on whether the caller's compiler inlines it.
    #[inline(never)]
    fn poll_frame_parsing(&mut self) -> Result<Option<Frame>, DecodeError> {
        Ok(match self.step()? {
            Progress::Event => Some(Frame::Event(self.take_event())),
            Progress::Retry(retry) => Some(Frame::Retry(retry)),
            Progress::NeedMore => None,
        })
    }

    /// Like [`poll_frame`](Decoder::poll_frame), but returns only events;
    /// `retry` values still update [`retry`](Decoder::retry).
    ///
    /// # Errors
    /// As [`poll_frame`](Decoder::poll_frame).
    #[inline]
    pub fn poll_event(&mut self) -> Result<Option<Event>, DecodeError> {
        if self.idle() {
            return Ok(None);
        }
        self.poll_event_parsing()
    }

    /// [`poll_event`](Decoder::poll_event) past the idle check (see
    /// [`poll_frame_parsing`](Decoder::poll_frame_parsing)).
    #[inline(never)]
    fn poll_event_parsing(&mut self) -> Result<Option<Event>, DecodeError> {
        loop {
            match self.step()? {
                Progress::Event => return Ok(Some(self.take_event())),
                Progress::Retry(_) => {}
                Progress::NeedMore => return Ok(None),
            }
        }
    }

    /// Like [`poll_event`](Decoder::poll_event), but the event is lent, not
    /// given: its type, data and id are read where the decoder wrote them,
    /// and stay valid until the decoder is next used mutably. Nothing is
    /// copied out, so this is the fastest way to read events that are
    /// looked at and dropped (or copied into a structure of the caller's).
    /// `retry` values update [`retry`](Decoder::retry).
    ///
    /// ```
    /// use sse_proto::Decoder;
    ///
    /// let mut decoder = Decoder::new();
    /// decoder.handle_bytes(b"id: 1\ndata: one\n\nevent: two\ndata: 2\n\n");
    /// let mut seen = Vec::new();
    /// while let Some(event) = decoder.poll_event_ref().unwrap() {
    ///     seen.push(format!("{} {} {}", event.event_type(), event.data(), event.id()));
    /// }
    /// assert_eq!(seen, ["message one 1", "two 2 1"]);
    /// ```
    ///
    /// # Errors
    /// As [`poll_frame`](Decoder::poll_frame).
    #[inline]
    pub fn poll_event_ref(&mut self) -> Result<Option<EventRef<'_>>, DecodeError> {
        if self.idle() {
            return Ok(None);
        }
        self.poll_event_ref_parsing()
    }

    /// [`poll_event_ref`](Decoder::poll_event_ref) past the idle check (see
    /// [`poll_frame_parsing`](Decoder::poll_frame_parsing)).
    #[inline(never)]
    fn poll_event_ref_parsing(&mut self) -> Result<Option<EventRef<'_>>, DecodeError> {
        loop {
            match self.step()? {
                Progress::Event => {
                    self.lent = true;
                    let parser = &self.parser;
                    let block = &parser.block;
                    let event_type = if block.event_type.is_empty() {
                        "message"
                    } else {
                        block.event_type.as_str()
                    };
                    return Ok(Some(EventRef {
                        event_type,
                        data: block.first.as_str(),
                        id: parser.last_event_id().as_str(),
                    }));
                }
                Progress::Retry(_) => {}
                Progress::NeedMore => return Ok(None),
            }
        }
    }

    /// Builds the event a dispatch announced, from the block's buffers and
    /// the last event ID, leaving the buffers empty for the next block.
    ///
    /// Each part is copied field by field, in the widths it was written in
    /// moments before: a whole-value move of a freshly written inline string
    /// reads it back in other pieces than it was stored in, which the CPU
    /// cannot forward from its store buffer, and that stall used to cost
    /// more than the rest of the dispatch.
    #[inline(always)]
    fn take_event(&mut self) -> Event {
        let parser = &mut self.parser;
        let event_type = if parser.block.event_type.is_empty() {
            const MESSAGE: Str = Str::from_static("message");
            MESSAGE
        } else {
            parser.block.event_type.take_in_place()
        };
        Event::from_parts(
            event_type,
            parser.block.first.take_in_place(),
            parser.last_event_id().clone(),
        )
    }

    /// Whether a poll has nothing to do: no error to repeat, and everything
    /// held is known to end no line. (Checked before the parsing machinery
    /// is entered, so that input trickling in costs little per call.)
    #[inline]
    fn idle(&self) -> bool {
        let parser = &self.parser;
        self.cur.is_empty()
            && parser.scanned == self.carry.len()
            && !parser.eof
            && !parser.bom_pending
            && parser.error.is_none()
            && self.carry.len() + self.held_len <= parser.limits.max_line_len
    }

    /// One parsing step, with the error state kept.
    #[inline(always)]
    fn step(&mut self) -> Result<Progress, DecodeError> {
        if let Some(err) = self.parser.error {
            return Err(err);
        }
        if self.lent {
            // The lent event's buffers start the next block empty.
            self.lent = false;
            self.parser.block.event_type.clear();
            self.parser.block.first.clear();
        }
        let result = self.next_frame();
        if let Err(err) = result {
            self.parser.error = Some(err);
            self.carry = BytesMut::new();
            self.cur = Bytes::new();
            self.held = Vec::new();
            self.held_len = 0;
            self.parser.block.joined = Vec::new();
            self.parser.block.first = Str::new();
            self.parser.block.data = Data::None;
        }
        result
    }

    /// The last event ID string: the id buffer as it stood at the last blank
    /// line processed (`""` until an `id` field sets it).
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The last event ID as a [`Str`].
    pub fn last_event_id_str(&self) -> &Str {
        self.parser.last_event_id()
    }

    /// The reconnection time set by the last valid `retry` field, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.parser.retry
    }

    /// Whether [`handle_eof`](Decoder::handle_eof) was called.
    pub fn is_eof(&self) -> bool {
        self.parser.eof
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.parser.limits
    }

    #[inline]
    fn next_frame(&mut self) -> Result<Progress, DecodeError> {
        if !self.held.is_empty() {
            // An unfinished line, held in pieces: nothing to parse until
            // its end arrives.
            let max_line = self.parser.limits.max_line_len;
            if self.carry.len() + self.held_len > max_line {
                return Err(DecodeError::LineTooLong { limit: max_line });
            }
            if self.parser.eof {
                self.discard_pending();
            }
            return Ok(Progress::NeedMore);
        }
        if !self.carry.is_empty() {
            let ascii = self.carry_ascii;
            let parsed = self.parser.parse(&mut self.carry, ascii)?;
            if parsed != Progress::NeedMore {
                return Ok(parsed);
            }
            if !self.carry.is_empty() && !self.cur.is_empty() {
                // Not reached while `handle_chunk` keeps its invariant; if it
                // were, order is kept by joining the two.
                self.flush_cur_to_carry();
                return self.next_frame();
            }
        }
        if !self.cur.is_empty() {
            let parsed = self.parser.parse(&mut self.cur, false)?;
            if parsed != Progress::NeedMore {
                return Ok(parsed);
            }
            self.flush_cur_to_carry();
        }
        if self.parser.eof {
            self.discard_pending();
        }
        Ok(Progress::NeedMore)
    }

    #[inline]
    fn flush_cur_to_carry(&mut self) {
        if !self.cur.is_empty() {
            self.move_cur_to_carry();
        }
    }

    #[cold]
    fn move_cur_to_carry(&mut self) {
        // What is left of a chunk is an unfinished line, just searched:
        // check it for ASCII while it is in cache, so that the chunks that
        // continue it can vouch for the whole line.
        let cur = &self.cur;
        self.carry_ascii = (self.carry.is_empty() || self.carry_ascii) && cur.is_ascii();
        self.carry.extend_from_slice(cur);
        self.cur = Bytes::new();
    }

    fn discard_pending(&mut self) {
        self.carry = BytesMut::new();
        self.cur = Bytes::new();
        self.held = Vec::new();
        self.held_len = 0;
        let parser = &mut self.parser;
        parser.scanned = 0;
        parser.block.event_type = Str::new();
        parser.block.data = Data::None;
        parser.block.first = Str::new();
        parser.block.data_len = 0;
        parser.block.joined = Vec::new();
    }
}

/// A buffer the decoder parses in place.
trait Input: core::ops::Deref<Target = [u8]> + Buf {
    /// Drops the first `n` bytes (all of them, if fewer).
    #[inline]
    fn skip(&mut self, n: usize) {
        let n = n.min(self.remaining());
        self.advance(n);
    }
    /// Takes the first `n` bytes (all of them, if fewer) as shared bytes.
    fn take(&mut self, n: usize) -> Bytes;
}

impl Input for Bytes {
    #[inline]
    fn take(&mut self, n: usize) -> Bytes {
        self.split_to(n.min(self.len()))
    }
}

impl Input for BytesMut {
    #[inline]
    fn take(&mut self, n: usize) -> Bytes {
        self.split_to(n.min(self.len())).freeze()
    }
}

impl Parser {
    /// Parses whole lines from the front of `buf`, consuming them, until one
    /// yields a frame or no whole line is left. `ascii`: every byte of `buf`
    /// is known to be ASCII.
    #[inline]
    fn parse<I: Input>(&mut self, buf: &mut I, ascii: bool) -> Result<Progress, DecodeError> {
        if self.skip_lf {
            match buf.first() {
                None => return Ok(Progress::NeedMore),
                Some(b'\n') => buf.skip(1),
                Some(_) => {}
            }
            self.skip_lf = false;
        }
        if self.bom_pending {
            let head = buf.get(..buf.len().min(3)).unwrap_or_default();
            if head == BOM {
                buf.skip(3);
                // What was scanned counted the BOM's bytes.
                self.scanned = self.scanned.saturating_sub(3);
            } else if BOM.starts_with(head) {
                // Empty, or a partial BOM: wait for more bytes.
                return Ok(Progress::NeedMore);
            }
            self.bom_pending = false;
        }
        let max_line = self.limits.max_line_len;
        // How many bytes at the front of `buf` are known to be ASCII: all
        // of them, or what the searches of long lines find.
        let mut ascii_upto = if ascii { usize::MAX } else { 0 };
        // Bytes of `buf` consumed so far by this call: `buf` itself is
        // advanced once, when the call returns, not once per line.
        let mut pos = 0;
        // Line ends of the 64 bytes being parsed, as bitmasks.
        let mut win = Window::EMPTY;
        loop {
            let from = pos + self.scanned;
            let mut at = from;
            let found = loop {
                if at - pos > WINDOWED_LINE {
                    // A long line: a SIMD search over the rest is faster.
                    break search_long_line(buf, at, &mut ascii_upto);
                }
                if !win.covers(at) {
                    let tail = buf.get(at..).unwrap_or_default();
                    if tail.len() < 16 {
                        // A few bytes left: a window is not worth building.
                        let end = tail.iter().position(|&b| b == b'\n' || b == b'\r');
                        break end.map(|i| at + i);
                    }
                    win = Window::at(buf, at);
                }
                if let Some(end) = win.next_end(at) {
                    break Some(end);
                }
                if win.len < 64 {
                    break None;
                }
                at = win.start + win.len;
            };
            let rest = buf.get(pos..).unwrap_or_default();
            let Some(end_at) = found else {
                let pending = rest.len();
                buf.skip(pos);
                self.scanned = pending;
                if pending > max_line {
                    return Err(DecodeError::LineTooLong { limit: max_line });
                }
                return Ok(Progress::NeedMore);
            };
            self.scanned = 0;
            let end = end_at - pos;
            if end > max_line {
                return Err(DecodeError::LineTooLong { limit: max_line });
            }
            let mut consumed = end + 1;
            let is_cr = if win.covers(end_at) {
                win.is_cr(end_at)
            } else {
                rest.get(end) == Some(&b'\r')
            };
            if is_cr {
                let next_is_lf = if win.covers(end_at + 1) {
                    Some(win.is_lf(end_at + 1))
                } else {
                    rest.get(end + 1).map(|&b| b == b'\n')
                };
                match next_is_lf {
                    Some(true) => consumed += 1,
                    Some(false) => {}
                    None => self.skip_lf = true,
                }
            }
            let (line, value_start) = classify(rest, end);
            let value_len = end.saturating_sub(value_start);
            // The value and what follows it, so short values can be copied
            // with a fixed-size move.
            let window = rest.get(value_start..).unwrap_or_default();
            let parsed = match line {
                Line::Blank => {
                    if self.dispatch() {
                        Progress::Event
                    } else {
                        Progress::NeedMore
                    }
                }
                Line::Data => {
                    self.check_data_len(value_len)?;
                    match self.block.data {
                        Data::None if value_len > SHARE_ABOVE => {
                            // The first data line of a block, if long, is
                            // taken out of the buffer: the event's data then
                            // costs no copy.
                            let value_end = pos + value_start + value_len;
                            let known = ascii_upto >= value_end;
                            buf.skip(pos + value_start);
                            let shared = buf.take(value_len);
                            ascii_upto = ascii_upto.saturating_sub(value_end);
                            self.block.first = if known {
                                Str::from_ascii(shared)
                            } else {
                                Str::from_utf8_lossy(shared)
                            };
                            self.block.data = Data::One;
                            // `buf` now starts at this line's end, and the
                            // window's offsets no longer hold.
                            pos = consumed - end;
                            win = Window::EMPTY;
                            continue;
                        }
                        Data::None => {
                            self.block.first.assign_window_lossy(window, value_len);
                            self.block.data = Data::One;
                        }
                        _ => self.push_data(window.get(..value_len).unwrap_or_default()),
                    }
                    Progress::NeedMore
                }
                Line::Event => {
                    self.block.event_type.assign_window_lossy(window, value_len);
                    Progress::NeedMore
                }
                Line::Id => {
                    let value = window.get(..value_len).unwrap_or_default();
                    if !value.contains(&0) {
                        let buffer = if self.ids_flipped {
                            &mut self.ids.0
                        } else {
                            &mut self.ids.1
                        };
                        buffer.assign_window_lossy(window, value_len);
                        self.block.id_set = true;
                    }
                    Progress::NeedMore
                }
                Line::Retry => match crate::http1::value::parse_decimal(
                    window.get(..value_len).unwrap_or_default(),
                ) {
                    Some(ms) => {
                        let retry = Duration::from_millis(ms);
                        self.retry = Some(retry);
                        Progress::Retry(retry)
                    }
                    None => Progress::NeedMore,
                },
                Line::Ignored => Progress::NeedMore,
            };
            pos += consumed;
            if parsed != Progress::NeedMore {
                buf.skip(pos);
                return Ok(parsed);
            }
        }
    }

    /// The last event ID string.
    #[inline]
    fn last_event_id(&self) -> &Str {
        if self.ids_flipped {
            &self.ids.1
        } else {
            &self.ids.0
        }
    }

    /// Counts a data line of `len` bytes against the event size limit.
    #[inline]
    fn check_data_len(&mut self, len: usize) -> Result<(), DecodeError> {
        let added = match self.block.data {
            Data::None => len,
            _ => len.saturating_add(1),
        };
        let new_len = self.block.data_len.saturating_add(added);
        let limit = self.limits.max_event_size;
        if new_len > limit {
            return Err(DecodeError::EventTooLarge { limit });
        }
        self.block.data_len = new_len;
        Ok(())
    }

    /// Appends a second or later data line's value (already counted) to the
    /// joined data buffer.
    #[inline]
    fn push_data(&mut self, value: &[u8]) {
        let block = &mut self.block;
        match core::mem::replace(&mut block.data, Data::Many) {
            Data::One => {
                let first = block.first.as_bytes();
                block.joined.clear();
                block.joined.reserve(first.len() + 1 + value.len());
                block.joined.extend_from_slice(first);
                block.joined.push(b'\n');
                block.joined.extend_from_slice(value);
            }
            Data::Many | Data::None => {
                block.joined.push(b'\n');
                block.joined.extend_from_slice(value);
            }
        }
    }

    /// Processes a blank line: WHATWG "dispatch the event". Returns whether
    /// an event is to be dispatched; its parts are then in `block.event_type`,
    /// `block.first` and `last_event_id`, for `Decoder::take_event`.
    #[inline]
    fn dispatch(&mut self) -> bool {
        let block = &mut self.block;
        if block.id_set {
            // The id buffer becomes the last event ID.
            self.ids_flipped = !self.ids_flipped;
            block.id_set = false;
        }
        match core::mem::replace(&mut block.data, Data::None) {
            Data::None => {
                block.event_type.clear();
                return false;
            }
            Data::One => {}
            Data::Many => block.first = Str::copy_from_utf8_lossy(&block.joined),
        }
        block.data_len = 0;
        true
    }
}

/// Searches `buf[at..]` for the end of a long line. When every byte before
/// `at` is known to be ASCII (the first `ascii_upto`), or the few that are
/// not known yet prove to be (the short lines before a long one), the
/// search checks the line for ASCII on the way and adds what it finds to
/// `ascii_upto`, so that the line's value needs no UTF-8 check of its own.
#[inline(never)]
fn search_long_line(buf: &[u8], at: usize, ascii_upto: &mut usize) -> Option<usize> {
    let rest = buf.get(at..).unwrap_or_default();
    let known = *ascii_upto;
    let unknown = buf.get(known..at).unwrap_or_default();
    if rest.is_empty() || known >= buf.len() || !caught_up_ascii(unknown, rest.len()) {
        // Nothing to learn: all known already, or what precedes the rest
        // is not ASCII (or too much of it is unknown to check now).
        return find_line_end(rest).map(|i| at + i);
    }
    let (end, ascii) = find_line_end_ascii(rest);
    let upto = match (end, ascii) {
        // Through the line end, itself ASCII.
        (Some(i), true) => at + i + 1,
        (None, true) => buf.len(),
        (_, false) => at,
    };
    *ascii_upto = known.max(upto);
    end.map(|i| at + i)
}

/// Splits the line `rest[..end]` into its field and the start of its value
/// (WHATWG 9.2.6: the field name runs to the first colon; the value follows
/// it, less one leading space; a line without a colon is a field with an
/// empty value).
#[inline(always)]
fn classify(rest: &[u8], end: usize) -> (Line, usize) {
    let line = rest.get(..end).unwrap_or_default();
    // The usual lines start `data:`, `id:`, `event:` or `retry:`. Eight bytes
    // loaded at once settle them with a few compares and no jump table. The
    // bytes may run past the line, but a match cannot: the patterns hold no
    // CR or LF, so the line's end lies after them.
    if let Some(Ok(head)) = rest.get(..8).map(<[u8; 8]>::try_from) {
        let head = u64::from_le_bytes(head);
        let kind = if head & mask(5) == DATA_WORD {
            Some((Line::Data, 5))
        } else if head & mask(3) == ID_WORD {
            Some((Line::Id, 3))
        } else if head & mask(6) == EVENT_WORD {
            Some((Line::Event, 6))
        } else if head & mask(6) == RETRY_WORD {
            Some((Line::Retry, 6))
        } else {
            None
        };
        if let Some((kind, after)) = kind {
            let start = if line.get(after) == Some(&b' ') {
                after + 1
            } else {
                after
            };
            return (kind, start);
        }
    }
    classify_line(line)
}

/// The low `n` bytes of a word.
const fn mask(n: u32) -> u64 {
    (1u64 << (n * 8)) - 1
}

/// A pattern of up to 8 bytes as a little-endian word. Only evaluated in
/// constants, at compile time, where an out-of-range index is a build error.
#[allow(clippy::indexing_slicing)]
const fn word(pattern: &[u8]) -> u64 {
    let mut w = 0u64;
    let mut i = pattern.len();
    while i > 0 {
        i -= 1;
        w = (w << 8) | pattern[i] as u64;
    }
    w
}

const DATA_WORD: u64 = word(b"data:");
const ID_WORD: u64 = word(b"id:");
const EVENT_WORD: u64 = word(b"event:");
const RETRY_WORD: u64 = word(b"retry:");

/// [`classify`] for any line, byte by byte.
#[inline]
fn classify_line(line: &[u8]) -> (Line, usize) {
    // Only four names matter, so match them directly instead of searching
    // for the colon: a line is field `name` if it is `name` or starts with
    // `name:`.
    let (kind, name_len) = match line.first() {
        None => return (Line::Blank, 0),
        Some(b':') => return (Line::Ignored, 0),
        Some(b'd') if line.starts_with(b"data") => (Line::Data, 4),
        Some(b'e') if line.starts_with(b"event") => (Line::Event, 5),
        Some(b'i') if line.starts_with(b"id") => (Line::Id, 2),
        Some(b'r') if line.starts_with(b"retry") => (Line::Retry, 5),
        Some(_) => return (Line::Ignored, 0),
    };
    match line.get(name_len) {
        None => (kind, name_len),
        Some(b':') => {
            let after = name_len + 1;
            let start = if line.get(after) == Some(&b' ') {
                after + 1
            } else {
                after
            };
            (kind, start)
        }
        Some(_) => (Line::Ignored, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    fn events(decoder: &mut Decoder) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        while let Some(e) = decoder.poll_event().unwrap() {
            out.push((e.event_type().into(), e.data().into(), e.id().into()));
        }
        out
    }

    /// The events of `wire` handed in as `size`-byte chunks, polled after
    /// each; `check` sees the decoder after each chunk.
    fn chunked(
        wire: &[u8],
        size: usize,
        mut check: impl FnMut(&Decoder),
    ) -> Vec<(String, String, String)> {
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        for piece in wire.chunks(size) {
            decoder.handle_chunk(Bytes::copy_from_slice(piece));
            got.extend(events(&mut decoder));
            check(&decoder);
        }
        got
    }

    /// As [`chunked`], through `handle_bytes`.
    fn copied(wire: &[u8], size: usize) -> Vec<(String, String, String)> {
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        for piece in wire.chunks(size) {
            decoder.handle_bytes(piece);
            got.extend(events(&mut decoder));
        }
        got
    }

    #[test]
    fn a_long_line_appended_in_pieces_is_searched_as_it_comes_and_known_ascii() {
        let mut decoder = Decoder::new();
        decoder.handle_bytes(b"id: 1\ndata: ");
        for piece in 0..20 {
            decoder.handle_bytes(&[b'x'; 100]);
            if piece >= 2 {
                // Past its first 128 bytes, each piece of the line is
                // searched and checked as it is copied in: nothing is left
                // for the poll to search, and the line is known to be ASCII.
                assert_eq!(decoder.parser.scanned, decoder.carry.len());
                assert!(decoder.carry_ascii);
            }
            assert_eq!(decoder.poll_frame(), Ok(None));
        }
        decoder.handle_bytes(b"x\n\ndata: \xff");
        let event = decoder.poll_event().unwrap().unwrap();
        assert_eq!((event.data().len(), event.id()), (2001, "1"));
        assert_eq!(decoder.poll_frame(), Ok(None));
        assert!(!decoder.carry_ascii, "the next line's start is not ASCII");
    }

    #[test]
    fn the_short_lines_before_a_long_one_are_checked_before_it_is_vouched_ascii() {
        // A long value, ASCII or with a byte outside it near its start or
        // its end, after short lines that are ASCII or hold such a byte (in
        // the id, the event type, a comment or an ignored field), after
        // many of them, or after a long line: what the decoder knew of the
        // bytes before the long line must not vouch for it, and its start
        // is checked before the pieces that continue it can.
        let plain: Vec<u8> = (0..2000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut values = vec![plain.clone()];
        // Fewer where every step is interpreted (Miri).
        let places: &[usize] = if cfg!(miri) { &[3] } else { &[3, 150, 1990] };
        for &at in places {
            let mut split = plain.clone();
            split.splice(at..at + 2, "\u{e9}".bytes());
            values.push(split);
            if !cfg!(miri) {
                let mut invalid = plain.clone();
                invalid[at] = 0xff;
                values.push(invalid);
            }
        }
        let heads: &[&[u8]] = &[
            b"id: 1\n",
            "id: \u{e9}\n".as_bytes(),
            "event: \u{e9}t\u{e9}\n".as_bytes(),
            b": \xff\n",
            b"x\xff: y\n",
            "id: \u{e9}\nevent: a\n".as_bytes(),
        ];
        let heads = if cfg!(miri) { &heads[..2] } else { heads };
        let many = if cfg!(miri) { 3 } else { 200 };
        let sizes: &[usize] = if cfg!(miri) {
            &[64, 1460]
        } else {
            &[1, 64, 100, 333, 1460]
        };
        for value in &values {
            let want = String::from_utf8_lossy(value).into_owned();
            for &head in heads {
                let long_before = [b"data: ".as_slice(), &plain, b"\n\n", head].concat();
                for head in [head.to_vec(), head.repeat(many), long_before] {
                    let wire = [head.as_slice(), b"data: ", value, b"\n\n"].concat();
                    let mut decoder = Decoder::new();
                    decoder.handle_bytes(&wire);
                    let whole = events(&mut decoder);
                    assert_eq!(whole.last().map(|e| e.1.as_str()), Some(want.as_str()));
                    for &size in sizes {
                        assert_eq!(chunked(&wire, size, |_| {}), whole, "size {size}");
                        assert_eq!(copied(&wire, size), whole, "copied, size {size}");
                    }
                }
            }
        }
    }

    fn ev(t: &str, d: &str, id: &str) -> (String, String, String) {
        (t.into(), d.into(), id.into())
    }

    #[test]
    fn long_data_line_in_a_chunk_is_not_copied() {
        let chunk = Bytes::from([b"data: ".to_vec(), vec![b'x'; 100], b"\n\n".to_vec()].concat());
        let range = chunk.as_ptr_range();
        let mut decoder = Decoder::new();
        decoder.handle_chunk(chunk);
        let event = decoder.poll_event().unwrap().unwrap();
        assert_eq!(event.data().len(), 100);
        assert!(
            range.contains(&event.data().as_ptr()),
            "data must point into the chunk"
        );
    }

    #[test]
    fn line_cut_by_a_chunk_boundary_is_completed_and_the_rest_parsed_in_place() {
        let mut decoder = Decoder::new();
        decoder.handle_chunk(Bytes::from_static(b"data: first half, "));
        assert_eq!(events(&mut decoder), vec![]);
        let second = Bytes::from(
            [
                b"second half\n\ndata: ".to_vec(),
                vec![b'y'; 80],
                b"\n\n".to_vec(),
            ]
            .concat(),
        );
        let range = second.as_ptr_range();
        decoder.handle_chunk(second);
        let first = decoder.poll_event().unwrap().unwrap();
        assert_eq!(first.data(), "first half, second half");
        let next = decoder.poll_event().unwrap().unwrap();
        assert!(range.contains(&next.data().as_ptr()));
    }

    #[test]
    fn a_long_line_in_many_chunks_is_held_then_copied_once() {
        // 5000 bytes of data in 100-byte chunks: more pieces than are held
        // at once, so the held pieces are copied into the carry buffer
        // along the way, and again when the line ends.
        let value: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let wire = [
            b"id: 7\ndata: ".to_vec(),
            value.clone(),
            b"\n\ndata: next\n\n".to_vec(),
        ]
        .concat();
        for size in [64, 100, 1460] {
            let got = chunked(&wire, size, |decoder| {
                assert!(decoder.held.len() < HELD_MAX, "size {size}");
            });
            let want = String::from_utf8(value.clone()).unwrap();
            assert_eq!(
                got,
                vec![ev("message", &want, "7"), ev("message", "next", "7")],
                "size {size}"
            );
        }
        // Bytes handed in by copy after held chunks keep their order.
        let mut decoder = Decoder::new();
        decoder.handle_chunk(Bytes::from_static(b"data: start"));
        decoder.handle_chunk(Bytes::from(vec![b'x'; 100]));
        decoder.handle_bytes(b"yz");
        decoder.handle_chunk(Bytes::from(vec![b'w'; 100]));
        decoder.handle_bytes(b"\n\n");
        let want = ["start", &"x".repeat(100), "yz", &"w".repeat(100)].concat();
        assert_eq!(events(&mut decoder), vec![ev("message", &want, "")]);
    }

    #[test]
    fn a_long_line_is_vouched_ascii_only_when_every_piece_is() {
        // A 3000-byte value in chunks that continue it, with one byte
        // outside ASCII (a character split across two chunks, or a byte
        // that is not UTF-8) in the first piece, in a held chunk, or in the
        // chunk that ends the line; after a line of plain ASCII, so that
        // nothing of what the decoder knew of that line carries over. Fed
        // whole, in shared chunks and in copied pieces.
        let plain: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut cases = vec![(plain.clone(), String::from_utf8(plain.clone()).unwrap())];
        // Fewer where every step is interpreted (Miri).
        let places: &[usize] = if cfg!(miri) {
            &[10, 1459]
        } else {
            &[10, 700, 1459, 1460, 2990]
        };
        for &at in places {
            let mut split = plain.clone();
            split.splice(at..at + 2, "\u{e9}".bytes());
            let text = String::from_utf8(split.clone()).unwrap();
            cases.push((split, text));
            let mut invalid = plain.clone();
            invalid[at] = 0xff;
            let text = String::from_utf8_lossy(&invalid).into_owned();
            cases.push((invalid, text));
        }
        for (value, want) in cases {
            let wire = [
                b"data: ".to_vec(),
                plain.clone(),
                b"\n\ndata: ".to_vec(),
                value,
                b"\n\n".to_vec(),
            ]
            .concat();
            let first = String::from_utf8(plain.clone()).unwrap();
            let expected = vec![ev("message", &first, ""), ev("message", &want, "")];
            let sizes = if cfg!(miri) {
                vec![100, 1460]
            } else {
                vec![64, 100, 1460, wire.len()]
            };
            for size in sizes {
                assert_eq!(chunked(&wire, size, |_| {}), expected, "size {size}");
                assert_eq!(copied(&wire, size), expected, "copied, size {size}");
            }
        }
    }

    #[test]
    fn appended_pieces_of_a_long_line_count_against_the_line_limit() {
        // Past 128 bytes the pieces are searched as they are copied in, and
        // the poll has nothing left to search: the limit still holds.
        let mut decoder = Decoder::with_limits(Limits::default().max_line_len(1000));
        decoder.handle_bytes(b"data: ");
        let mut polls = Vec::new();
        for _ in 0..12 {
            decoder.handle_bytes(&[b'x'; 100]);
            polls.push(decoder.poll_frame());
        }
        let limit = Err(DecodeError::LineTooLong { limit: 1000 });
        assert_eq!(polls.iter().position(|p| *p == limit), Some(9), "{polls:?}");
        assert!(polls.iter().take(9).all(|p| *p == Ok(None)));
    }

    #[test]
    fn held_chunks_count_against_the_line_limit_and_go_at_eof() {
        let mut decoder = Decoder::with_limits(Limits::default().max_line_len(150));
        decoder.handle_chunk(Bytes::from_static(b"data: a"));
        assert_eq!(decoder.poll_frame(), Ok(None));
        decoder.handle_chunk(Bytes::from(vec![b'x'; 100]));
        assert_eq!(decoder.poll_frame(), Ok(None));
        decoder.handle_chunk(Bytes::from(vec![b'x'; 100]));
        assert_eq!(
            decoder.poll_frame(),
            Err(DecodeError::LineTooLong { limit: 150 })
        );
        assert!(decoder.held.is_empty(), "buffers are freed");

        let mut decoder = Decoder::new();
        decoder.handle_chunk(Bytes::from_static(b"data: a"));
        assert_eq!(decoder.poll_frame(), Ok(None));
        decoder.handle_chunk(Bytes::from(vec![b'x'; 100]));
        decoder.handle_eof();
        assert_eq!(decoder.poll_frame(), Ok(None));
        assert!(decoder.held.is_empty() && decoder.carry.is_empty());
    }

    #[test]
    fn chunks_handed_in_without_draining_keep_their_order() {
        let mut decoder = Decoder::new();
        decoder.handle_chunk(Bytes::from_static(b"data: a\n\ndata: b"));
        decoder.handle_chunk(Bytes::from_static(b"\n\ndata: c\n"));
        decoder.handle_bytes(b"\n");
        decoder.handle_chunk(Bytes::from_static(b"data: d\n\n"));
        let data: Vec<_> = events(&mut decoder).into_iter().map(|e| e.1).collect();
        assert_eq!(data, ["a", "b", "c", "d"]);
    }

    #[test]
    fn crlf_split_across_reads_is_one_line_end() {
        for split in [b"data: a\r" as &[u8], b"data: a\r\n", b"data: a\r\n\r"] {
            let input = b"data: a\r\n\r\ndata: b\r\n\r\n";
            let mut decoder = Decoder::new();
            decoder.handle_bytes(split);
            let mut got = events(&mut decoder);
            decoder.handle_bytes(&input[split.len()..]);
            got.extend(events(&mut decoder));
            assert_eq!(
                got,
                vec![ev("message", "a", ""), ev("message", "b", "")],
                "{split:?}"
            );
        }
    }

    #[test]
    fn bom_arriving_byte_by_byte_is_skipped_once() {
        let mut decoder = Decoder::new();
        for &b in b"\xEF\xBB\xBFdata: 1\n\n\xEF\xBB\xBFdata: 2\n\n" {
            decoder.handle_chunk(Bytes::copy_from_slice(&[b]));
            let _ = decoder.poll_frame().unwrap();
        }
        // The second BOM is part of a field name, so its block has no data.
        decoder.handle_eof();
        assert_eq!(events(&mut decoder), vec![]);
        let mut decoder = Decoder::new();
        decoder.handle_bytes(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n");
        assert_eq!(events(&mut decoder), vec![ev("message", "y", "")]);
    }

    #[test]
    fn bom_split_from_the_line_after_it() {
        for feed_bytes in [true, false] {
            let mut decoder = Decoder::new();
            for piece in [&b"\xEF"[..], b"\xBB\xBF\ndata: x\n\n"] {
                if feed_bytes {
                    decoder.handle_bytes(piece);
                } else {
                    decoder.handle_chunk(Bytes::copy_from_slice(piece));
                }
                let _ = decoder.poll_frame().unwrap();
            }
            // The first poll after the second piece took the blank line; the
            // event follows.
            let mut decoder2 = Decoder::new();
            decoder2.handle_bytes(b"\xEF");
            assert_eq!(decoder2.poll_frame(), Ok(None));
            decoder2.handle_bytes(b"\xBB\xBF\ndata: x\n\n");
            assert_eq!(
                events(&mut decoder2),
                vec![ev("message", "x", "")],
                "bytes: {feed_bytes}"
            );
        }
    }

    #[test]
    fn eof_discards_the_unfinished_block_and_later_input() {
        let mut decoder = Decoder::new();
        decoder.handle_bytes(b"data: done\n\nid: 9\ndata: cut off\n");
        decoder.handle_eof();
        assert_eq!(events(&mut decoder), vec![ev("message", "done", "")]);
        assert_eq!(decoder.last_event_id(), "");
        decoder.handle_bytes(b"\n");
        assert_eq!(events(&mut decoder), vec![]);
        assert!(decoder.is_eof());
    }

    #[test]
    fn line_limit_applies_to_complete_and_unfinished_lines() {
        let limits = Limits::default().max_line_len(8);
        let too_long = Err(DecodeError::LineTooLong { limit: 8 });
        let mut decoder = Decoder::with_limits(limits);
        decoder.handle_bytes(b"data: ok\n\n");
        assert_eq!(events(&mut decoder), vec![ev("message", "ok", "")]);
        decoder.handle_bytes(b"data: too long\n");
        assert_eq!(decoder.poll_frame(), too_long);

        let mut decoder = Decoder::with_limits(limits);
        decoder.handle_bytes(b"data: 12");
        assert_eq!(decoder.poll_frame(), Ok(None));
        decoder.handle_bytes(b"3");
        assert_eq!(decoder.poll_frame(), too_long);
        // Terminal: input is ignored and the error repeats.
        decoder.handle_bytes(b"\n\ndata: x\n\n");
        assert_eq!(decoder.poll_frame(), too_long);
        assert!(
            decoder.carry.capacity() == 0 && decoder.cur.is_empty(),
            "buffers are freed"
        );
    }

    #[test]
    fn event_limit_counts_joined_data() {
        let limits = Limits::default().max_event_size(5);
        let mut decoder = Decoder::with_limits(limits);
        decoder.handle_bytes(b"data: ab\ndata: cd\n\n");
        assert_eq!(events(&mut decoder), vec![ev("message", "ab\ncd", "")]);
        decoder.handle_bytes(b"data: ab\ndata: cde\n\n");
        assert_eq!(
            decoder.poll_frame(),
            Err(DecodeError::EventTooLarge { limit: 5 })
        );
        let long = Limits::default().max_event_size(30);
        let mut decoder = Decoder::with_limits(long);
        decoder.handle_chunk(Bytes::from(
            [b"data: ".to_vec(), vec![b'z'; 31], b"\n".to_vec()].concat(),
        ));
        assert_eq!(
            decoder.poll_frame(),
            Err(DecodeError::EventTooLarge { limit: 30 })
        );
    }

    #[test]
    fn retry_is_digits_only_and_exact_to_u64_max() {
        let mut decoder = Decoder::new();
        decoder.handle_bytes(b"retry: 18446744073709551615\nretry: 18446744073709551616\nretry: -1\nretry: 1e3\nretry:\n");
        assert_eq!(
            decoder.poll_frame(),
            Ok(Some(Frame::Retry(Duration::from_millis(u64::MAX))))
        );
        assert_eq!(decoder.poll_frame(), Ok(None));
        assert_eq!(decoder.retry(), Some(Duration::from_millis(u64::MAX)));
    }

    #[test]
    fn starting_last_event_id_is_carried_until_changed() {
        let mut decoder = Decoder::new().with_last_event_id("41");
        decoder.handle_bytes(b"data: a\n\nid: 42\ndata: b\n\nid\ndata: c\n\n");
        assert_eq!(
            events(&mut decoder),
            vec![
                ev("message", "a", "41"),
                ev("message", "b", "42"),
                ev("message", "c", "")
            ]
        );
    }

    #[test]
    fn field_names_match_exactly() {
        // Each line alone, and followed by more bytes (the word-at-a-time path).
        let classify = |line: &[u8]| {
            let alone = super::classify(line, line.len());
            let padded = [line, b"\nxxxxxxxx"].concat();
            let followed = super::classify(&padded, line.len());
            assert!(alone == followed, "{line:?}");
            alone
        };
        assert!(matches!(classify(b"data"), (Line::Data, 4)));
        assert!(matches!(classify(b"data:x"), (Line::Data, 5)));
        assert!(matches!(classify(b"data: x"), (Line::Data, 6)));
        assert!(matches!(classify(b"data:  x"), (Line::Data, 6)));
        assert!(matches!(classify(b"datax: y"), (Line::Ignored, _)));
        assert!(matches!(classify(b"dat: y"), (Line::Ignored, _)));
        assert!(matches!(classify(b"Data: y"), (Line::Ignored, _)));
        assert!(matches!(classify(b"id"), (Line::Id, 2)));
        assert!(matches!(classify(b"identity: 1"), (Line::Ignored, _)));
        assert!(matches!(classify(b"retry:1"), (Line::Retry, 6)));
        assert!(matches!(classify(b"event :x"), (Line::Ignored, _)));
        assert!(matches!(classify(b": comment"), (Line::Ignored, _)));
        assert!(matches!(classify(b""), (Line::Blank, 0)));
        assert!(matches!(classify(b"id:"), (Line::Id, 3)));
        assert!(matches!(classify(b"id: "), (Line::Id, 4)));
        assert!(matches!(classify(b"data:"), (Line::Data, 5)));
        assert!(matches!(classify(b"data: "), (Line::Data, 6)));
        assert!(matches!(classify(b"event:"), (Line::Event, 6)));
        assert!(matches!(classify(b"retry"), (Line::Retry, 5)));
        assert!(matches!(classify(b"dat"), (Line::Ignored, _)));
        assert!(matches!(classify(b"i"), (Line::Ignored, _)));
    }

    #[test]
    fn errors_read_as_sentences() {
        let msg = alloc::format!("{}", DecodeError::LineTooLong { limit: 10 });
        assert!(
            msg.contains("10-byte limit") && msg.contains("max_line_len"),
            "{msg}"
        );
    }
}
