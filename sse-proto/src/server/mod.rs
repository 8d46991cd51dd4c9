//! The server side, sans-IO: what an SSE server needs besides the encoder.
//!
//! * [`ReplayLog`]: the bounded history of pre-encoded frames that lets a
//!   client resume with `Last-Event-ID`, with an index from id to position.
//! * [`Selector`]: what a subscriber selects: `*`, an exact topic, an
//!   RFC 6570 URI template, or (feature `urlpattern`) a WHATWG URL Pattern.
//! * [`Router`]: the table of subscribers an update is delivered to,
//!   indexed by their selectors.
//! * [`StreamWriter`]: the body of one event-stream response: chunk
//!   framing, coalesced batches, keep-alive comments, `retry:`, gzip with a
//!   sync flush per batch (feature `gzip`), and the end of the stream.
//! * [`Broker`] (feature `broker`): publish/subscribe over the log and the
//!   router, with per-subscription fan-out channels (bounded per
//!   subscriber), shared by every runtime binding. It uses
//!   `parking_lot`'s mutex (for its fair hand-over) and
//!   `core::task::Waker`, no runtime and no clock.
//! * [`StreamFeed`] (feature `broker`): one served stream's machine, the
//!   subscriber feeding a [`StreamWriter`] with the stream's clocks
//!   (keep-alive, write timeout, lifetime, expiry, shutdown grace) behind
//!   one `poll_timeout`.

#[cfg(feature = "broker")]
mod broker;
#[cfg(feature = "broker")]
mod channel;
#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "http1")]
mod head;
mod replay;
mod route;
mod selector;
#[cfg(feature = "broker")]
mod serve;
mod stream;
mod template;
#[cfg(feature = "urlpattern")]
mod url_pattern;

#[cfg(feature = "broker")]
pub use broker::{
    Broker, BrokerConfig, Cursor, DEFAULT_MAX_PATTERNS, Ended, INDEX_CHUNK, LOST_EVENT_TYPE,
    PublishError, Published, REPLAY_BATCH_BYTES, REPLAY_PIECE, Replay, Stats, SubscribeError,
    Subscriber, Update,
};
#[cfg(feature = "http1")]
pub use head::stream_response;
pub use replay::{Entry, ReplayConfig, ReplayLog, Seek};
pub use route::{Router, SubscriberKey, Subscription};
pub use selector::{MAX_PATTERN_LEN, Pattern, PatternKind, Selector, SelectorError};
#[cfg(feature = "broker")]
pub use serve::{
    Closing, Feed, MAX_WRITE_SLICES, SHUTDOWN_GRACE, ServeConfig, ServeError, StreamEnd,
    StreamFeed, WRITE_BACKLOG,
};
pub use stream::{BodyFraming, CACHE_CONTROL, Chunk, Encoding, StreamConfig, StreamWriter};

// Chunk framing belongs to the HTTP/1.1 codec (also `http1::ChunkSize`).
pub use crate::http1::chunk::ChunkSize;
