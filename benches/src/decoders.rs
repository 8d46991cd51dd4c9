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
        contender!("sse-driver_events", Kind::Ours, sse_driver_events),
        contender!("sse-stream", Kind::Peer, sse_stream),
        contender!("sse-core", Kind::Peer, sse_core),
        contender!("eventsource-stream", Kind::Peer, eventsource_stream),
        contender!("sse-codec", Kind::Peer, sse_codec),
        contender!("async-sse", Kind::Peer, async_sse),
    ]
}

/// `sse-proto` fed with [`sse_proto::Decoder::handle_chunk`] (zero-copy).
pub fn sse_proto_chunk<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let mut sink = S::default();
    let mut decoder = sse_proto::Decoder::new();
    for chunk in chunks {
        decoder.handle_chunk(chunk.clone());
        drain(&mut decoder, &mut sink);
    }
    decoder.handle_eof();
    drain(&mut decoder, &mut sink);
    sink
}

/// `sse-proto` fed with [`sse_proto::Decoder::handle_bytes`] (copies in).
pub fn sse_proto_bytes<S: Sink + Default>(chunks: &[Bytes]) -> S {
    let mut sink = S::default();
    let mut decoder = sse_proto::Decoder::new();
    for chunk in chunks {
        decoder.handle_bytes(chunk);
        drain(&mut decoder, &mut sink);
    }
    decoder.handle_eof();
    drain(&mut decoder, &mut sink);
    sink
}

#[inline]
fn drain<S: Sink>(decoder: &mut sse_proto::Decoder, sink: &mut S) {
    while let Some(event) = decoder.poll_event().expect("within limits") {
        sink.event(event.event_type(), event.data().as_bytes(), event.id());
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
