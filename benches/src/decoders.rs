//! Every decoding contender, behind one signature: decode `chunks` (fed in
//! that order, then end of input) and hand every event to a fresh [`Sink`].
//!
//! Each peer is driven through its public API the way a user would, choosing
//! the lowest-overhead honest entry point: the sans-IO decoder where the crate
//! has one (`sse-core`'s `SseDecoder`, `sse-codec`'s `SSECodec` through the
//! `futures_codec::Decoder` trait, exactly what its `FramedRead` calls), the
//! `Stream` adapter otherwise, fed a `futures::stream::iter` of the chunks
//! and driven by `futures::executor::block_on` (every chunk is ready, so the
//! executor never parks).

use std::convert::Infallible;

use bytes::Bytes;
use futures::executor::block_on;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::Sink;

/// A decoding contender: its name and its entry point.
#[derive(Clone, Copy)]
pub struct Contender {
    /// Benchmark id (file-name safe).
    pub name: &'static str,
    /// Whether this is a library a user would pick (as opposed to our own
    /// decoder or a physical-limit baseline).
    pub kind: Kind,
    /// Decodes and returns the event tally.
    pub tally: fn(&[Bytes]) -> crate::Tally,
    /// Decodes and returns the thorough fingerprint (for checking).
    pub fingerprint: fn(&[Bytes]) -> crate::Fingerprint,
}

/// What a contender is, for the ratio tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `sse-proto`, this workspace.
    Ours,
    /// A peer crate.
    Peer,
    /// A peer crate that fails some of the conformance probes
    /// ([`crate::probes`]): timed and listed, but targets are measured
    /// against the fastest peer that passes them all.
    PeerFailsProbes,
    /// A baseline that does less than decoding (memchr, memcpy).
    Limit,
}

macro_rules! contender {
    ($name:expr, $kind:expr, $f:ident) => {
        Contender {
            name: $name,
            kind: $kind,
            tally: $f::<crate::Tally>,
            fingerprint: $f::<crate::Fingerprint>,
        }
    };
}

/// All decoders, ours first, then the peers.
pub fn decoders() -> Vec<Contender> {
    vec![
        contender!("sse-proto", Kind::Ours, sse_proto_chunk),
        contender!("sse-proto_bytes", Kind::Ours, sse_proto_bytes),
        contender!("sse-proto_ref", Kind::Ours, sse_proto_ref),
        contender!("sse-driver_events", Kind::Ours, sse_driver_events),
        contender!("sse-stream", Kind::Peer, sse_stream),
        contender!("sse-core", Kind::Peer, sse_core),
        contender!("eventsource-stream", Kind::Peer, eventsource_stream),
        contender!("sse-codec", Kind::Peer, sse_codec),
        contender!("async-sse", Kind::Peer, async_sse),
        contender!("russe", Kind::Peer, russe),
        contender!("sseer", Kind::Peer, sseer),
        contender!("sse-parse", Kind::Peer, sse_parse),
    ]
}

/// How the bench calls `sse-proto`'s decoder: through a function pointer
/// hidden from the optimiser (`black_box`), so the decoder cannot be
/// inlined into the bench's loop. Inlined into a single caller it runs up
/// to a quarter faster, which no application with more than one call site
/// would see; called this way it costs what an out-of-line call costs.
type Poll = fn(&mut sse_proto::Decoder) -> Result<Option<sse_proto::Frame>, sse_proto::DecodeError>;

/// The opaque entry point (see [`Poll`]).
fn poll_frame() -> Poll {
    std::hint::black_box(sse_proto::Decoder::poll_frame as Poll)
}

/// `sse-proto` fed with [`sse_proto::Decoder::handle_chunk`] (zero-copy),
/// drained with `poll_frame` through an opaque pointer.
pub fn sse_proto_chunk<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let poll = poll_frame();
    let mut sink = S::default();
    let mut decoder = sse_proto::Decoder::new();
    for chunk in chunks {
        decoder.handle_chunk(chunk.clone());
        drain(poll, &mut decoder, &mut sink);
    }
    decoder.handle_eof();
    drain(poll, &mut decoder, &mut sink);
    sink
}

/// [`Poll`] for the lending API.
type PollRef = for<'a> fn(
    &'a mut sse_proto::Decoder,
) -> Result<Option<sse_proto::EventRef<'a>>, sse_proto::DecodeError>;

/// `sse-proto` fed with [`sse_proto::Decoder::handle_chunk`] (zero-copy),
/// its events lent with `poll_event_ref` (nothing copied out), through an
/// opaque pointer.
pub fn sse_proto_ref<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let poll = std::hint::black_box(sse_proto::Decoder::poll_event_ref as PollRef);
    let mut sink = S::default();
    let mut decoder = sse_proto::Decoder::new();
    let drain = |decoder: &mut sse_proto::Decoder, sink: &mut S| {
        while let Some(event) = poll(decoder).expect("within limits") {
            sink.event(event.event_type(), event.data().as_bytes(), event.id());
        }
    };
    for chunk in chunks {
        decoder.handle_chunk(chunk.clone());
        drain(&mut decoder, &mut sink);
    }
    decoder.handle_eof();
    drain(&mut decoder, &mut sink);
    sink
}

/// `sse-proto` fed with [`sse_proto::Decoder::handle_bytes`] (copies in),
/// drained with `poll_frame` through an opaque pointer.
pub fn sse_proto_bytes<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let poll = poll_frame();
    let mut sink = S::default();
    let mut decoder = sse_proto::Decoder::new();
    for chunk in chunks {
        decoder.handle_bytes(chunk);
        drain(poll, &mut decoder, &mut sink);
    }
    decoder.handle_eof();
    drain(poll, &mut decoder, &mut sink);
    sink
}

/// Inlined into each driver, as the other contenders' loops are written
/// inline (only the decoder is called out of line).
#[inline(always)]
fn drain<S: Sink>(poll: Poll, decoder: &mut sse_proto::Decoder, sink: &mut S) {
    while let Some(frame) = poll(decoder).expect("within limits") {
        if let sse_proto::Frame::Event(event) = frame {
            sink.event(event.event_type(), event.data().as_bytes(), event.id());
        }
    }
}

/// `sse-driver`'s `Events` over a stream of `Bytes`: the adapter for a
/// response body (reqwest's `bytes_stream()`, a hyper body), the same
/// entry point as eventsource-stream's.
pub fn sse_driver_events<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let mut sink = S::default();
    let body = stream::iter(chunks.iter().cloned().map(Ok::<Bytes, Infallible>));
    let mut events = sse_driver::events::Events::new(body);
    block_on(async {
        while let Some(event) = events.next().await {
            let event = event.expect("sse-driver decode");
            sink.event(event.event_type(), event.data().as_bytes(), event.id());
        }
    });
    sink
}

/// `sse-stream` 0.3: `SseByteStream` over a stream of `Bytes` (the entry
/// point its README recommends for byte streams).
pub fn sse_stream<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let mut sink = S::default();
    let input = stream::iter(chunks.iter().cloned().map(Ok::<Bytes, Infallible>));
    let mut events = sse_stream::SseByteStream::new(input);
    block_on(async {
        while let Some(sse) = events.next().await {
            let sse = sse.expect("sse-stream decode");
            if let Some(data) = &sse.data {
                sink.event(
                    sse.event.as_deref().unwrap_or("message"),
                    data.as_bytes(),
                    sse.id.as_deref().unwrap_or(""),
                );
            }
        }
    });
    sink
}

/// `sse-core` 0.2: the sans-IO `SseDecoder::next(&mut impl Buf)`.
pub fn sse_core<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let mut sink = S::default();
    let mut decoder = sse_core::SseDecoder::new();
    for chunk in chunks {
        let mut buf = chunk.clone();
        while let Some(event) = decoder.next(&mut buf) {
            if let sse_core::SseEvent::Message(m) = event.expect("sse-core decode") {
                sink.event(
                    &m.event,
                    m.data.as_bytes(),
                    m.last_event_id.as_deref().unwrap_or(""),
                );
            }
        }
    }
    sink
}

/// `eventsource-stream` 0.2: `Eventsource::eventsource()` on a byte stream.
pub fn eventsource_stream<S: Sink + Default>(chunks: &[Bytes]) -> S {
    use eventsource_stream::Eventsource;
    let mut sink = S::default();
    let mut events =
        stream::iter(chunks.iter().cloned().map(Ok::<Bytes, Infallible>)).eventsource();
    block_on(async {
        while let Some(event) = events.next().await {
            let event = event.expect("eventsource-stream decode");
            sink.event(&event.event, event.data.as_bytes(), &event.id);
        }
    });
    sink
}

/// `sse-codec` 0.3: `SSECodec` through the `futures_codec::Decoder` trait,
/// with the read buffer a `FramedRead` would keep.
pub fn sse_codec<S: Sink + Default>(chunks: &[Bytes]) -> S {
    use futures_codec::Decoder as _;
    let mut sink = S::default();
    let mut codec = sse_codec::SSECodec::default();
    let mut buf = futures_codec::BytesMut::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(event) = codec.decode(&mut buf).expect("sse-codec decode") {
            if let sse_codec::Event::Message { id, event, data } = event {
                sink.event(&event, data.as_bytes(), id.as_deref().unwrap_or(""));
            }
        }
    }
    let _ = codec.decode_eof(&mut buf);
    sink
}

/// `async-sse` 5.1: `async_sse::decode` over an `AsyncBufRead` made of the
/// chunks (`TryStreamExt::into_async_read`).
pub fn async_sse<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let mut sink = S::default();
    let reader =
        stream::iter(chunks.iter().cloned().map(Ok::<Bytes, std::io::Error>)).into_async_read();
    let mut events = async_sse::decode(reader);
    block_on(async {
        while let Some(event) = events.next().await {
            if let async_sse::Event::Message(m) = event.expect("async-sse decode") {
                sink.event(m.name(), m.data(), m.id().as_deref().unwrap_or(""));
            }
        }
    });
    sink
}

/// `russe` 0.3: its `Decoder` through tokio-util's `codec::Decoder` trait,
/// with the read buffer a `FramedRead` would keep (each chunk appended),
/// then `decode_eof` at the end. A message's `id` is the block's own `id`
/// field (`None` without one), passed to the sink as it is.
pub fn russe<S: Sink + Default>(chunks: &[Bytes]) -> S {
    use tokio_util::codec::Decoder as _;
    let mut sink = S::default();
    let mut decoder = russe::Decoder::default();
    let mut buf = bytes::BytesMut::new();
    let take = |event: russe::Event, sink: &mut S| {
        if let russe::Event::Message(m) = event {
            sink.event(
                m.event.as_deref().unwrap_or("message"),
                m.data.as_bytes(),
                m.id.as_deref().unwrap_or(""),
            );
        }
    };
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(event) = decoder.decode(&mut buf).expect("russe decode") {
            take(event, &mut sink);
        }
    }
    // At the end, tokio-util's `decode_eof` reports leftover bytes (an
    // unfinished block) as an error after the last event; like
    // `sse-codec`'s, that error is not held against the events.
    while let Ok(Some(event)) = decoder.decode_eof(&mut buf) {
        take(event, &mut sink);
    }
    sink
}

/// `sseer` 0.3: `EventStream` over a stream of `Bytes` (its fields share
/// the input chunks), `block_on`.
pub fn sseer<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let mut sink = S::default();
    let input = stream::iter(chunks.iter().cloned().map(Ok::<Bytes, Infallible>));
    let mut events = sseer::EventStream::new(input);
    block_on(async {
        while let Some(event) = events.next().await {
            let event = event.expect("sseer decode");
            sink.event(&event.event, event.data.as_bytes(), &event.id);
        }
    });
    sink
}

/// `sse-parse` 0.1: the sans-IO `SseParser`, `feed` each chunk (it copies)
/// and drain `next_event`, then `finish`.
pub fn sse_parse<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let mut sink = S::default();
    let mut parser = sse_parse::SseParser::new();
    for chunk in chunks {
        parser.feed(chunk);
        while let Some(event) = parser.next_event() {
            sink.event(&event.event, event.data.as_bytes(), &event.id);
        }
    }
    parser.finish();
    while let Some(event) = parser.next_event() {
        sink.event(&event.event, event.data.as_bytes(), &event.id);
    }
    sink
}

/// Physical limit: count the LFs in the chunks with `memchr`.
pub fn limit_memchr(chunks: &[Bytes]) -> usize {
    chunks
        .iter()
        .map(|c| memchr::memchr_iter(b'\n', c).count())
        .sum()
}

/// Physical limit: copy the chunks into `dst` (cleared first; give it the
/// capacity beforehand so no allocation is timed).
pub fn limit_memcpy(chunks: &[Bytes], dst: &mut Vec<u8>) -> usize {
    dst.clear();
    for c in chunks {
        dst.extend_from_slice(c);
    }
    dst.len()
}
