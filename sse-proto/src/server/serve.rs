//! What the runtime adapters' serving loops share (feature `broker`): the
//! serving options, the outcome and errors of a served stream, and
//! [`StreamFeed`], the step that moves a subscriber's frames into its
//! [`StreamWriter`] while the socket keeps up.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Add;
use core::task::{Context, Poll};
use core::time::Duration;

use bytes::Bytes;

use super::broker::{Ended, Subscriber};
use super::stream::{StreamConfig, StreamWriter};
use crate::http1::HeadError;

/// How many pieces one vectored write should take at most.
pub const MAX_WRITE_SLICES: usize = 64;

/// New frames are taken from the subscriber's queue only while less than
/// this waits for the socket: a socket that does not keep up leaves them in
/// the (bounded) queue, where the broker sees the lag.
pub const WRITE_BACKLOG: usize = 64 * 1024;

/// How long the end of a stream (its last `retry:`) may take to go out at
/// shutdown before the connection is closed anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How streams are served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    stream: StreamConfig,
    gzip: bool,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig::new()
    }
}

impl ServeConfig {
    /// Keep-alive after 15 s of idleness, no `retry:`, gzip when the client
    /// accepts it (with the `gzip` feature).
    pub fn new() -> ServeConfig {
        ServeConfig {
            stream: StreamConfig::new(),
            gzip: cfg!(feature = "gzip"),
        }
    }

    /// Keep-alive interval and the `retry:` sent first.
    pub fn stream(mut self, stream: StreamConfig) -> ServeConfig {
        self.stream = stream;
        self
    }

    /// Whether to compress for clients that accept gzip (ignored without
    /// the `gzip` feature).
    pub fn gzip(mut self, gzip: bool) -> ServeConfig {
        self.gzip = gzip && cfg!(feature = "gzip");
        self
    }

    /// The stream settings.
    pub fn stream_config(&self) -> &StreamConfig {
        &self.stream
    }

    /// Whether gzip may be used.
    pub fn gzip_enabled(&self) -> bool {
        self.gzip
    }
}

/// Why a served stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamEnd {
    /// The subscriber fell behind and was disconnected by the broker.
    Lagged,
    /// The broker shut down (the stream ended with its `retry:`).
    Shutdown,
    /// The client closed the connection.
    ClientClosed,
}

/// Why serving failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The socket failed.
    Io(std::io::Error),
    /// The request head is malformed or over the limits: answer 400 (or
    /// 431 for [`HeadError::TooLarge`] and [`HeadError::TooManyHeaders`])
    /// and close.
    Head(HeadError),
    /// The peer closed the connection before sending a whole request head.
    Closed,
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Io(e) => write!(f, "socket error while serving: {e}"),
            ServeError::Head(e) => write!(f, "bad request head: {e}"),
            ServeError::Closed => {
                f.write_str("the peer closed the connection before a whole request head")
            }
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Io(e) => Some(e),
            ServeError::Head(e) => Some(e),
            ServeError::Closed => None,
        }
    }
}

impl From<std::io::Error> for ServeError {
    fn from(e: std::io::Error) -> ServeError {
        ServeError::Io(e)
    }
}

impl ServeError {
    /// How a socket error while writing a stream counts: the client going
    /// away is [`StreamEnd::ClientClosed`], anything else an error.
    ///
    /// # Errors
    /// [`ServeError::Io`] for errors other than the peer closing.
    pub fn closed_or(e: std::io::Error) -> Result<StreamEnd, ServeError> {
        use std::io::ErrorKind;
        match e.kind() {
            ErrorKind::BrokenPipe
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::UnexpectedEof
            | ErrorKind::WriteZero => Ok(StreamEnd::ClientClosed),
            _ => Err(ServeError::Io(e)),
        }
    }
}

/// What [`StreamFeed::feed`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed<I> {
    /// Nothing ended: write what the writer holds, keep the keep-alive
    /// timer, watch the socket.
    Open,
    /// The broker shut down: the writer holds the stream's end. Write it,
    /// then close; close anyway at this instant (a bounded grace).
    Finishing {
        /// When to give up on writing the end.
        close_by: I,
    },
    /// Stop now and close the connection (the subscriber was cut off for
    /// lagging: its socket is backed up, nothing more is worth writing).
    Stop(StreamEnd),
}

/// The receiving half of a served stream: moves the subscriber's queued
/// frames into the [`StreamWriter`] while less than [`WRITE_BACKLOG`]
/// waits for the socket, and keeps the task registered with the queue
/// either way, so that a frame, the end of the stream, or being cut off
/// wakes it. An adapter calls [`StreamFeed::feed`] at the top of each turn
/// of its poll loop, then writes [`StreamFeed::writer`]'s output.
#[derive(Debug)]
pub struct StreamFeed<I> {
    subscriber: Subscriber,
    writer: StreamWriter<I>,
    frames: Vec<Bytes>,
    finishing: bool,
}

impl<I> StreamFeed<I>
where
    I: Copy + Ord + Add<Duration, Output = I>,
{
    /// Feeds `writer` from `subscriber`.
    pub fn new(subscriber: Subscriber, writer: StreamWriter<I>) -> StreamFeed<I> {
        StreamFeed {
            subscriber,
            writer,
            frames: Vec::new(),
            finishing: false,
        }
    }

    /// The writer, to write out and to keep alive.
    pub fn writer(&mut self) -> &mut StreamWriter<I> {
        &mut self.writer
    }

    /// Whether the broker's shutdown was seen (the writer is finishing).
    pub fn is_finishing(&self) -> bool {
        self.finishing
    }

    /// Takes what is queued, as far as the socket keeps up. Returns
    /// [`Feed::Finishing`] once, when the shutdown is first seen, and
    /// [`Feed::Open`] after it.
    pub fn feed(&mut self, cx: &mut Context<'_>, now: I) -> Feed<I> {
        while !self.finishing {
            if self.writer.pending_bytes() >= WRITE_BACKLOG {
                if self.subscriber.poll_lagged(cx) {
                    return Feed::Stop(StreamEnd::Lagged);
                }
                break;
            }
            match self.subscriber.poll_recv(cx, &mut self.frames) {
                Poll::Ready(Ok(())) => self.writer.push_frames(self.frames.drain(..), now),
                Poll::Ready(Err(Ended::Lagged)) => return Feed::Stop(StreamEnd::Lagged),
                Poll::Ready(Err(Ended::Shutdown { retry })) => {
                    self.writer.finish(retry, now);
                    self.finishing = true;
                    return Feed::Finishing {
                        close_by: now + SHUTDOWN_GRACE,
                    };
                }
                Poll::Pending => break,
            }
        }
        Feed::Open
    }
}
