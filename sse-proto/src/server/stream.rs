//! [`StreamWriter`]: the body of one event-stream response, sans-IO.
//!
//! It turns the frames a subscriber receives into the bytes to put on the
//! wire: HTTP/1.1 chunk framing (or none, when the transport frames the
//! body itself), optional gzip with a sync flush after every batch, a
//! `retry:` field at the start, keep-alive comments after a configurable
//! idle time, and the end of the body. Several frames queued at once become
//! one chunk, so an adapter can send them with one vectored write; frames
//! are never copied (without gzip).

use alloc::collections::VecDeque;
use core::ops::Add;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::encode::encode_retry;
use crate::http1::chunk::{ChunkSize, LAST_CHUNK};

/// How the response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyFraming {
    /// HTTP/1.1 `Transfer-Encoding: chunked`: each batch becomes one chunk
    /// and the body ends with the last (empty) chunk.
    Chunked,
    /// No framing: the transport delimits the body (an HTTP/1.0
    /// close-delimited body, or a server library such as hyper that frames
    /// the body itself).
    Raw,
}

/// The content coding of the body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// No compression.
    #[default]
    Identity,
    /// gzip, flushed after every batch of frames (feature `gzip`).
    Gzip,
}

impl Encoding {
    /// The value of a `Content-Encoding` field for this coding (`None` for
    /// identity).
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
        }
    }

    /// Chooses the coding for a request's `Accept-Encoding` value: gzip when
    /// `gzip_enabled` and the value accepts `gzip` (or `x-gzip`, or `*`)
    /// with a non-zero quality; identity otherwise.
    ///
    /// ```
    /// use sse_proto::server::Encoding;
    ///
    /// assert_eq!(Encoding::negotiate(Some("gzip, deflate, br"), true), Encoding::Gzip);
    /// assert_eq!(Encoding::negotiate(Some("br;q=1, gzip;q=0"), true), Encoding::Identity);
    /// assert_eq!(Encoding::negotiate(Some("gzip"), false), Encoding::Identity);
    /// assert_eq!(Encoding::negotiate(None, true), Encoding::Identity);
    /// ```
    pub fn negotiate(accept_encoding: Option<&str>, gzip_enabled: bool) -> Encoding {
        let Some(value) = accept_encoding else {
            return Encoding::Identity;
        };
        if !gzip_enabled {
            return Encoding::Identity;
        }
        let mut gzip = None;
        let mut star = None;
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let accepted = parts.all(|param| {
                let param = param.trim();
                match param.split_once('=') {
                    Some((name, q)) if name.trim().eq_ignore_ascii_case("q") => !is_zero_q(q),
                    _ => true,
                }
            });
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(accepted);
            } else if coding == "*" {
                star = Some(accepted);
            }
        }
        match gzip.or(star) {
            Some(true) => Encoding::Gzip,
            _ => Encoding::Identity,
        }
    }
}

/// The `Cache-Control` of an event stream: nothing may store or replay it.
pub const CACHE_CONTROL: &str = "private, no-cache, no-store, must-revalidate, max-age=0";

impl Encoding {
    /// The fields of an event-stream response with this coding, for any
    /// server library: `Content-Type: text/event-stream`, `Cache-Control`
    /// ([`CACHE_CONTROL`]), `X-Accel-Buffering: no` (so that proxies such
    /// as nginx pass each event on at once), and for gzip
    /// `Content-Encoding: gzip` with `Vary: Accept-Encoding`.
    ///
    /// ```
    /// use sse_proto::server::Encoding;
    ///
    /// let names: Vec<_> = Encoding::Gzip.stream_headers().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["Content-Type", "Cache-Control", "X-Accel-Buffering", "Content-Encoding", "Vary"]);
    /// assert_eq!(Encoding::Identity.stream_headers().count(), 3);
    /// ```
    pub fn stream_headers(self) -> impl Iterator<Item = (&'static str, &'static str)> {
        let always = [
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", CACHE_CONTROL),
            ("X-Accel-Buffering", "no"),
        ];
        let coded = self
            .content_encoding()
            .map(|coding| [("Content-Encoding", coding), ("Vary", "Accept-Encoding")]);
        always.into_iter().chain(coded.into_iter().flatten())
    }
}

/// Whether a quality value is zero (`0`, `0.`, `0.000`).
fn is_zero_q(q: &str) -> bool {
    let q = q.trim();
    let Some(rest) = q.strip_prefix('0') else {
        return false;
    };
    rest.is_empty()
        || rest
            .strip_prefix('.')
            .is_some_and(|d| d.bytes().all(|b| b == b'0'))
}

/// How a stream behaves: keep-alive interval and the `retry:` sent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    heartbeat: Option<Duration>,
    retry: Option<Duration>,
}

impl Default for StreamConfig {
    fn default() -> StreamConfig {
        StreamConfig::new()
    }
}

impl StreamConfig {
    /// A keep-alive comment after 15 s of idleness, no `retry:`.
    pub const fn new() -> StreamConfig {
        StreamConfig {
            heartbeat: Some(Duration::from_secs(15)),
            retry: None,
        }
    }

    /// Sends a keep-alive comment (`:`) whenever nothing was written for
    /// this long (`None` or zero: never).
    pub fn heartbeat(mut self, every: Option<Duration>) -> StreamConfig {
        self.heartbeat = every.filter(|d| !d.is_zero());
        self
    }

    /// Sends `retry:` with this reconnection time at the start of the
    /// stream.
    pub fn retry(mut self, retry: Option<Duration>) -> StreamConfig {
        self.retry = retry;
        self
    }

    /// The keep-alive interval.
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        self.heartbeat
    }

    /// The `retry:` sent at the start.
    pub fn initial_retry(&self) -> Option<Duration> {
        self.retry
    }
}

/// One piece of output: a frame shared with every other subscriber, a
/// static piece of framing, or a chunk-size line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Bytes owned elsewhere (an encoded frame, compressed output).
    Bytes(Bytes),
    /// A constant piece: a line end, the last chunk, a keep-alive.
    Static(&'static [u8]),
    /// A chunk-size line (`{len:x}\r\n`), stored inline.
    Size(ChunkSize),
}

impl Chunk {
    /// The chunk as shared `Bytes` (a size line is copied; the others are
    /// not).
    pub fn into_bytes(self) -> Bytes {
        match self {
            Chunk::Bytes(b) => b,
            Chunk::Static(s) => Bytes::from_static(s),
            Chunk::Size(s) => Bytes::copy_from_slice(s.as_ref()),
        }
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        match self {
            Chunk::Bytes(b) => b,
            Chunk::Static(s) => s,
            Chunk::Size(s) => s.as_ref(),
        }
    }
}

const CRLF: &[u8] = b"\r\n";
const KEEP_ALIVE: &[u8] = b":\n";

/// The writing side of one event-stream response.
///
/// Call [`StreamWriter::push_frames`] with what the subscriber received,
/// [`StreamWriter::handle_timeout`] when [`StreamWriter::poll_timeout`]
/// passes, and [`StreamWriter::finish`] at the end; then write out the
/// pending output ([`StreamWriter::chunks`] and [`StreamWriter::handle_written`],
/// or [`StreamWriter::poll_chunk`] / [`StreamWriter::poll_batch`]). The
/// keep-alive clock restarts whenever output is produced.
///
/// ```
/// use std::time::{Duration, Instant};
/// use bytes::Bytes;
/// use sse_proto::server::{BodyFraming, Encoding, StreamConfig, StreamWriter};
///
/// let start = Instant::now();
/// let config = StreamConfig::new().heartbeat(Some(Duration::from_secs(15))).retry(Some(Duration::from_secs(2)));
/// let mut writer = StreamWriter::new(&config, BodyFraming::Chunked, Encoding::Identity, start);
/// writer.push_frames([Bytes::from_static(b"data: a\n\n"), Bytes::from_static(b"data: b\n\n")], start);
/// let wire: Vec<u8> = writer.chunks().flat_map(|c| c.as_ref().to_vec()).collect();
/// assert_eq!(wire, b"c\r\nretry: 2000\n\r\n12\r\ndata: a\n\ndata: b\n\n\r\n");
/// writer.handle_written(wire.len());
///
/// assert_eq!(writer.poll_timeout(), Some(start + Duration::from_secs(15)));
/// writer.handle_timeout(start + Duration::from_secs(15));
/// assert_eq!(writer.poll_chunk().unwrap().as_ref(), b"2\r\n");
/// ```
#[derive(Debug)]
pub struct StreamWriter<I> {
    framing: BodyFraming,
    heartbeat: Option<Duration>,
    deadline: Option<I>,
    out: VecDeque<Chunk>,
    /// Bytes of `out[0]` already written.
    offset: usize,
    pending_bytes: usize,
    #[cfg(feature = "gzip")]
    // Boxed: an identity stream (most of them) pays one pointer for it.
    gzip: Option<alloc::boxed::Box<super::gzip::GzipState>>,
    finished: bool,
}

impl<I> StreamWriter<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    /// A writer for one response, started at `now`: its `retry:` (if
    /// configured) is already pending. `Encoding::Gzip` without the `gzip`
    /// feature writes identity (negotiate with the feature's availability
    /// in mind: [`Encoding::negotiate`] with `gzip_enabled` false).
    pub fn new(
        config: &StreamConfig,
        framing: BodyFraming,
        encoding: Encoding,
        now: I,
    ) -> StreamWriter<I> {
        #[cfg(not(feature = "gzip"))]
        let _ = encoding;
        let mut writer = StreamWriter {
            framing,
            heartbeat: config.heartbeat,
            deadline: None,
            out: VecDeque::new(),
            offset: 0,
            pending_bytes: 0,
            #[cfg(feature = "gzip")]
            gzip: match encoding {
                Encoding::Gzip => Some(alloc::boxed::Box::new(super::gzip::GzipState::new())),
                Encoding::Identity => None,
            },
            finished: false,
        };
        writer.restart_clock(now);
        if let Some(retry) = config.retry {
            let mut buf = BytesMut::with_capacity(32);
            encode_retry(retry, &mut buf);
            writer.emit(core::iter::once(buf.freeze()), now);
        }
        writer
    }

    /// Queues `frames` (complete encoded events or comments) as one batch:
    /// one chunk, one compressor flush. Ignored after
    /// [`StreamWriter::finish`].
    pub fn push_frames<F: IntoIterator<Item = Bytes>>(&mut self, frames: F, now: I) {
        if self.finished {
            return;
        }
        self.emit(frames.into_iter(), now);
    }

    /// Queues a comment frame (for example `Bytes::from_static(b": hi\n")`):
    /// the same as [`StreamWriter::push_frames`] with one frame.
    pub fn push_comment(&mut self, comment: Bytes, now: I) {
        self.push_frames(core::iter::once(comment), now);
    }

    /// Gives back the gzip compressor's memory (about 200 KiB) until the
    /// next batch, which starts a new one: for a stream whose socket is
    /// backed up, so that a client that stops reading holds only its
    /// pending output. Does nothing without gzip.
    pub fn release_compressor(&mut self) {
        #[cfg(feature = "gzip")]
        if let Some(gzip) = &mut self.gzip {
            gzip.release();
        }
    }

    /// When the next keep-alive is due (`None`: never, or finished).
    pub fn poll_timeout(&self) -> Option<I> {
        if self.finished { None } else { self.deadline }
    }

    /// Writes a keep-alive comment if one is due at `now` and nothing is
    /// waiting to be written (a stalled socket needs no more bytes);
    /// otherwise restarts the clock when output is still pending. Early or
    /// spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: I) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if self.finished || now < deadline {
            return;
        }
        if self.pending_bytes > 0 {
            self.restart_clock(now);
            return;
        }
        #[cfg(feature = "gzip")]
        if let Some(gzip) = &mut self.gzip {
            // Idle for a whole interval: give the compressor back.
            let out = gzip.idle_keep_alive(KEEP_ALIVE);
            self.frame_chunk(out);
            self.restart_clock(now);
            return;
        }
        self.emit_static(KEEP_ALIVE, now);
    }

    /// Ends the body: an optional last `retry:` (so that clients come back
    /// after it, for example a random delay at shutdown), the compressor's
    /// end, and the last chunk. Later calls do nothing.
    pub fn finish(&mut self, retry: Option<Duration>, now: I) {
        if self.finished {
            return;
        }
        if let Some(retry) = retry {
            let mut buf = BytesMut::with_capacity(32);
            encode_retry(retry, &mut buf);
            self.emit(core::iter::once(buf.freeze()), now);
        }
        #[cfg(feature = "gzip")]
        if let Some(gzip) = &mut self.gzip {
            let tail = gzip.finish();
            self.frame_chunk(tail);
        }
        if self.framing == BodyFraming::Chunked {
            self.push_out(Chunk::Static(LAST_CHUNK));
        }
        self.finished = true;
        self.deadline = None;
    }

    /// Whether [`StreamWriter::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Whether nothing is waiting to be written.
    pub fn is_idle(&self) -> bool {
        self.pending_bytes == 0
    }

    /// The pending output, in order; the first piece starts at its
    /// unwritten part. Give them to one vectored write, then report how
    /// much was written with [`StreamWriter::handle_written`].
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.out.iter().enumerate().map(|(i, chunk)| {
            let bytes = chunk.as_ref();
            if i == 0 {
                bytes.get(self.offset..).unwrap_or(&[])
            } else {
                bytes
            }
        })
    }

    /// [`StreamWriter::chunks`] as `IoSlice`s for one vectored write:
    /// fills `slices` (as many pieces as fit) and returns the filled part.
    #[cfg(feature = "std")]
    pub fn io_slices<'a, 's>(
        &'a self,
        slices: &'s mut [std::io::IoSlice<'a>],
    ) -> &'s [std::io::IoSlice<'a>] {
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(self.chunks()) {
            *slot = std::io::IoSlice::new(chunk);
            count += 1;
        }
        slices.get(..count).unwrap_or(&[])
    }

    /// Marks `n` bytes of the pending output as written (more than is
    /// pending counts as all of it).
    pub fn handle_written(&mut self, mut n: usize) {
        n = n.min(self.pending_bytes);
        self.pending_bytes -= n;
        while n > 0 {
            let Some(first) = self.out.front() else {
                break;
            };
            let left = first.as_ref().len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            self.out.pop_front();
        }
        if self.out.is_empty() {
            self.offset = 0;
            self.release_idle_queue();
        }
    }

    /// Takes the next pending piece whole, for a transport that takes
    /// owned buffers (an `http_body::Body`): `None` when nothing is
    /// pending. Do not mix with a partial [`StreamWriter::handle_written`].
    pub fn poll_chunk(&mut self) -> Option<Bytes> {
        let chunk = self.out.pop_front()?;
        let offset = core::mem::take(&mut self.offset);
        let bytes = chunk.into_bytes();
        let bytes = if offset > 0 {
            bytes.slice(offset..)
        } else {
            bytes
        };
        self.pending_bytes -= bytes.len();
        Some(bytes)
    }

    /// Takes the pending pieces as one buffer of at most `max` bytes (or
    /// the first piece alone, if it is larger), for a transport that
    /// frames each buffer it is given (an HTTP/2 `DATA` frame, an HTTP/1.1
    /// chunk of hyper's): the events queued since the last call go out
    /// together instead of one frame each. A single piece is handed over
    /// as it is; several are copied into one buffer. `None` when nothing
    /// is pending. Do not mix with a partial
    /// [`StreamWriter::handle_written`].
    pub fn poll_batch(&mut self, max: usize) -> Option<Bytes> {
        let first = self.poll_chunk()?;
        let more = self
            .out
            .front()
            .is_some_and(|next| first.len() + next.as_ref().len() <= max);
        if !more {
            self.release_idle_queue();
            return Some(first);
        }
        let mut batch = BytesMut::with_capacity((first.len() + self.pending_bytes).min(max));
        batch.extend_from_slice(&first);
        while let Some(next) = self.out.front() {
            let piece = next.as_ref();
            if batch.len() + piece.len() > max {
                break;
            }
            batch.extend_from_slice(piece);
            self.pending_bytes -= piece.len();
            self.out.pop_front();
        }
        self.release_idle_queue();
        Some(batch.freeze())
    }

    /// Gives back what a burst grew once nothing is pending, so that an
    /// idle subscriber stays small.
    fn release_idle_queue(&mut self) {
        if self.out.is_empty() && self.out.capacity() > 64 {
            self.out = VecDeque::new();
        }
    }

    fn restart_clock(&mut self, now: I) {
        self.deadline = self.heartbeat.map(|every| now + every);
    }

    fn emit_static(&mut self, bytes: &'static [u8], now: I) {
        self.emit(core::iter::once(Bytes::from_static(bytes)), now);
    }

    /// One batch: compress and flush, or frame the pieces as one chunk.
    fn emit(&mut self, frames: impl Iterator<Item = Bytes>, now: I) {
        #[cfg(feature = "gzip")]
        if let Some(gzip) = &mut self.gzip {
            let mut any = false;
            for frame in frames {
                any = true;
                gzip.write(&frame);
            }
            if any {
                let out = gzip.flush();
                self.frame_chunk(out);
                self.restart_clock(now);
            }
            return;
        }
        let start = self.out.len();
        let mut total = 0;
        if self.framing == BodyFraming::Chunked {
            // A placeholder for the size line, filled in below.
            self.out.push_back(Chunk::Static(b""));
        }
        for frame in frames {
            if frame.is_empty() {
                continue;
            }
            total += frame.len();
            self.push_out(Chunk::Bytes(frame));
        }
        if self.framing == BodyFraming::Chunked {
            if total == 0 {
                self.out.truncate(start);
                return;
            }
            let size = ChunkSize::new(total);
            self.pending_bytes += size.as_ref().len();
            if let Some(slot) = self.out.get_mut(start) {
                *slot = Chunk::Size(size);
            }
            self.push_out(Chunk::Static(CRLF));
        } else if total == 0 {
            return;
        }
        self.restart_clock(now);
    }

    /// Frames one already-encoded piece (compressed output) as a chunk.
    #[cfg(feature = "gzip")]
    fn frame_chunk(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if self.framing == BodyFraming::Chunked {
            self.push_out(Chunk::Size(ChunkSize::new(bytes.len())));
            self.push_out(Chunk::Bytes(bytes));
            self.push_out(Chunk::Static(CRLF));
        } else {
            self.push_out(Chunk::Bytes(bytes));
        }
    }

    fn push_out(&mut self, chunk: Chunk) {
        self.pending_bytes += chunk.as_ref().len();
        self.out.push_back(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn wire<I: Copy + Ord + Add<Duration, Output = I>>(w: &mut StreamWriter<I>) -> Vec<u8> {
        let mut v = Vec::new();
        for c in w.chunks() {
            v.extend_from_slice(c);
        }
        w.handle_written(v.len());
        v
    }

    /// The tests' instants: a `Duration` since a start (it is `Ord` and
    /// adds durations, as the log needs).
    type T = Duration;

    /// The instant `n` milliseconds after the start.
    #[allow(non_snake_case)]
    const fn T(n: u64) -> T {
        Duration::from_millis(n)
    }

    #[test]
    fn raw_framing_and_heartbeats() {
        let config = StreamConfig::new().heartbeat(Some(Duration::from_millis(100)));
        let mut w = StreamWriter::new(&config, BodyFraming::Raw, Encoding::Identity, T(0));
        assert!(w.is_idle());
        assert_eq!(w.poll_timeout(), Some(T(100)));
        w.handle_timeout(T(99));
        assert!(w.is_idle());
        w.push_frames([Bytes::from_static(b"data: x\n\n")], T(50));
        assert_eq!(w.poll_timeout(), Some(T(150)));
        assert_eq!(wire(&mut w), b"data: x\n\n");
        w.handle_timeout(T(150));
        assert_eq!(wire(&mut w), b":\n");
        assert_eq!(w.poll_timeout(), Some(T(250)));
        // Pending output delays the keep-alive instead of adding to it.
        w.push_frames([Bytes::from_static(b"data: y\n\n")], T(200));
        w.handle_timeout(T(300));
        assert_eq!(w.pending_bytes(), 9);
        assert_eq!(w.poll_timeout(), Some(T(400)));
        w.finish(Some(Duration::from_secs(1)), T(300));
        assert_eq!(wire(&mut w), b"data: y\n\nretry: 1000\n");
        assert_eq!(w.poll_timeout(), None);
        w.push_frames([Bytes::from_static(b"data: z\n\n")], T(300));
        assert!(w.is_idle());
    }

    #[cfg(feature = "std")]
    #[test]
    fn io_slices_are_the_chunks_as_far_as_they_fit() {
        let config = StreamConfig::new().heartbeat(None);
        let mut w = StreamWriter::new(&config, BodyFraming::Raw, Encoding::Identity, T(0));
        let frames = [&b"data: a\n\n"[..], b"data: bb\n\n", b"data: ccc\n\n"];
        w.push_frames(frames.iter().map(|f| Bytes::from_static(f)), T(0));
        w.handle_written(3);
        let mut two = [std::io::IoSlice::new(&[]); 2];
        let got: Vec<&[u8]> = w.io_slices(&mut two).iter().map(|s| &s[..]).collect();
        assert_eq!(got, [&b"a: a\n\n"[..], b"data: bb\n\n"]);
        let mut many = [std::io::IoSlice::new(&[]); 8];
        assert_eq!(w.io_slices(&mut many).len(), 3);
        w.handle_written(usize::MAX);
        let mut again = [std::io::IoSlice::new(&[]); 8];
        assert!(w.io_slices(&mut again).is_empty());
    }

    #[test]
    fn partial_writes_and_empty_batches() {
        let config = StreamConfig::new().heartbeat(None);
        let mut w = StreamWriter::new(&config, BodyFraming::Chunked, Encoding::Identity, T(0));
        assert_eq!(w.poll_timeout(), None);
        w.push_frames([], T(0));
        w.push_frames([Bytes::new()], T(0));
        assert!(w.is_idle());
        w.push_frames(
            [Bytes::from_static(b"abc"), Bytes::from_static(b"de")],
            T(0),
        );
        let all = b"5\r\nabcde\r\n";
        assert_eq!(w.pending_bytes(), all.len());
        let mut got = Vec::new();
        while !w.is_idle() {
            let first = w.chunks().next().unwrap().to_vec();
            got.push(first[0]);
            w.handle_written(1);
        }
        assert_eq!(got, all);
        w.finish(None, T(0));
        assert_eq!(w.poll_chunk().unwrap(), Bytes::from_static(b"0\r\n\r\n"));
        assert_eq!(w.poll_chunk(), None);
    }

    #[test]
    fn negotiation() {
        for (value, want) in [
            ("gzip", Encoding::Gzip),
            ("GZIP;q=0.5", Encoding::Gzip),
            ("x-gzip", Encoding::Gzip),
            ("*", Encoding::Gzip),
            ("gzip;q=0", Encoding::Identity),
            ("gzip;q=0.000", Encoding::Identity),
            ("gzip;q=0.001", Encoding::Gzip),
            ("*;q=0", Encoding::Identity),
            ("gzip;q=0, *", Encoding::Identity),
            ("br, deflate", Encoding::Identity),
            ("identity", Encoding::Identity),
            ("", Encoding::Identity),
        ] {
            assert_eq!(Encoding::negotiate(Some(value), true), want, "{value}");
        }
    }
}
