//! `sse decode`: reads a `text/event-stream` body from stdin and prints the
//! events it holds as JSON lines.

use std::fmt;
use std::io::{self, BufWriter, Read, Write};
use std::time::Duration;

use bytes::BytesMut;
use clap::Args;
use sse_proto::{DecodeError, Decoder, Frame, Limits};

use crate::output::{write_event, write_json_str};

/// How many bytes are read from stdin at a time (unless `--chunk-size` asks
/// for less).
const READ_SIZE: usize = 64 * 1024;

/// The long help of `sse decode` (`sse decode --help`).
pub const LONG_ABOUT: &str = "Decode a `text/event-stream` body read from stdin until EOF and \
print the events it holds, one JSON object per line, in order:

  {\"type\":\"message\",\"data\":\"line 1\\nline 2\",\"id\":\"42\"}

`type` is the event type (`message` when none was given), `data` the data buffer, `id` the last \
event ID in force when the event was dispatched (\"\" when none). Invalid UTF-8 is replaced with \
U+FFFD.

With --all, two more kinds of line appear:

  {\"retry\":5000}                                   when a retry field is accepted, in stream order
  {\"eof\":true,\"last_event_id\":\"42\",\"retry\":5000}   once, after end of input (\"retry\": null if none)

If the input exceeds a limit (--max-line-len, --max-event-size), the events before it are \
printed, then the error goes to stderr and the exit code is 1.";

/// Arguments of `sse decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Feed the parser at most BYTES bytes at a time (for testing chunk-boundary handling; the
    /// output does not depend on it).
    #[arg(long, value_name = "BYTES", value_parser = parse_chunk_size)]
    chunk_size: Option<usize>,

    /// Also print a line for each accepted retry field, and a final line with the last event ID
    /// and the reconnection time after end of input.
    #[arg(long)]
    all: bool,

    /// The longest line accepted, in bytes (not counting its line end).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().line_len())]
    max_line_len: usize,

    /// The largest event accepted: the bytes of its data (all `data` values of one event joined
    /// with LF).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().event_size())]
    max_event_size: usize,
}

/// Parses `--chunk-size`: a whole number of bytes, at least 1.
fn parse_chunk_size(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("the chunk size must be at least 1 byte".to_owned()),
        Ok(size) => Ok(size),
        Err(_) => Err("the chunk size must be a whole number of bytes".to_owned()),
    }
}

/// Why `sse decode` failed.
#[derive(Debug)]
pub enum Error {
    /// The input exceeded a decoder limit.
    Decode(DecodeError),
    /// Reading stdin failed.
    Read(io::Error),
    /// Writing stdout failed.
    Write(io::Error),
}

impl Error {
    /// Whether the error is stdout having been closed by its reader, which is
    /// not worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Write(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode(DecodeError::LineTooLong { limit }) => write!(
                f,
                "the input has a line longer than the {limit}-byte limit (raise it with --max-line-len)"
            ),
            Error::Decode(DecodeError::EventTooLarge { limit }) => write!(
                f,
                "the input has an event with more than {limit} bytes of data (raise the limit with --max-event-size)"
            ),
            Error::Decode(other) => write!(f, "{other}"),
            Error::Read(err) => write!(f, "could not read standard input: {err}"),
            Error::Write(err) => write!(f, "could not write standard output: {err}"),
        }
    }
}

impl std::error::Error for Error {}

/// Runs `sse decode` on stdin and stdout.
///
/// # Errors
/// A limit exceeded by the input (after the events before it were written),
/// or an I/O error.
pub fn run(args: &DecodeArgs) -> Result<(), Error> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(READ_SIZE, stdout.lock());
    let result = decode(args, io::stdin().lock(), &mut out);
    // Whatever happened, the events decoded before it are written out first.
    let flushed = out.flush().map_err(Error::Write);
    result.and(flushed)
}

/// Decodes `input` to EOF and writes the JSON lines to `out`.
fn decode(args: &DecodeArgs, mut input: impl Read, out: &mut impl Write) -> Result<(), Error> {
    let limits = Limits::default()
        .max_line_len(args.max_line_len)
        .max_event_size(args.max_event_size);
    let mut decoder = Decoder::with_limits(limits);
    let read_size = args.chunk_size.map_or(READ_SIZE, |n| n.min(READ_SIZE));
    // Each read lands in `buf` and is handed to the decoder as a shared
    // chunk, without a copy. Once the decoder has dropped its views of a
    // chunk, `reserve` reuses the allocation.
    let mut buf = BytesMut::new();
    loop {
        buf.clear();
        buf.resize(read_size, 0);
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(Error::Read(err)),
        };
        decoder.handle_chunk(buf.split_to(n).freeze());
        drain(&mut decoder, args.all, out)?;
    }
    decoder.handle_eof();
    drain(&mut decoder, args.all, out)?;
    if args.all {
        write_eof(&decoder, out).map_err(Error::Write)?;
    }
    Ok(())
}

/// Polls every frame the decoder holds and writes its line.
fn drain(decoder: &mut Decoder, all: bool, out: &mut impl Write) -> Result<(), Error> {
    while let Some(frame) = decoder.poll_frame().map_err(Error::Decode)? {
        match frame {
            Frame::Event(event) => write_event(&event, out),
            Frame::Retry(retry) if all => write_retry(retry, out),
            _ => Ok(()),
        }
        .map_err(Error::Write)?;
    }
    Ok(())
}

/// Writes `{"retry":…}` (milliseconds).
fn write_retry(retry: Duration, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{{\"retry\":{}}}", retry.as_millis())
}

/// Writes `{"eof":true,"last_event_id":…,"retry":…}`.
fn write_eof(decoder: &Decoder, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"{\"eof\":true,\"last_event_id\":")?;
    write_json_str(decoder.last_event_id(), out)?;
    match decoder.retry() {
        Some(retry) => writeln!(out, ",\"retry\":{}}}", retry.as_millis()),
        None => out.write_all(b",\"retry\":null}\n"),
    }
}
