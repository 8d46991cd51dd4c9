//! Every encoding contender, behind one signature: encode a corpus's events
//! (given as borrowed `&str` parts, as an application holds them) and hand
//! the wire bytes to an [`Output`].
//!
//! Each encoder does everything its API needs per event: building the event
//! value (for the peers, that copies the strings into owned ones, as their
//! builders require), validating fields, and producing bytes. Ours and
//! `sse-codec` write into one caller-owned buffer that is reused across
//! iterations (their APIs are built for that); `sse-stream` and `axum`
//! produce one `Bytes` per event, which [`Count`] only measures, so they are
//! not charged for gathering them into one buffer.

use std::convert::Infallible;

use bytes::BytesMut;
use futures::executor::block_on;
use futures::stream;

use crate::SpecEvent;
use crate::decoders::Kind;

/// Receives the encoded bytes.
pub trait Output {
    /// Called with each encoded piece, in order.
    fn frame(&mut self, bytes: &[u8]);
}

/// The timed-loop output: sums the lengths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count(pub usize);

impl Output for Count {
    #[inline]
    fn frame(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

impl Output for Vec<u8> {
    fn frame(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Buffers that the encoders which write into a caller-owned buffer keep
/// between iterations.
#[derive(Default)]
pub struct Buffers {
    ours: BytesMut,
    codec: futures_codec::BytesMut,
    read: Vec<u8>,
    russe: BytesMut,
    /// The corpus's ids and names as `EventId`/`EventName`, built once.
    built: Vec<(sse_proto::EventId, Option<sse_proto::EventName>)>,
    /// The corpus's events as `russe::Message`s, built once.
    messages: Vec<russe::Message>,
}

/// An encoding contender.
#[derive(Clone, Copy)]
pub struct Contender {
    /// Benchmark id (file-name safe).
    pub name: &'static str,
    /// Ours or a peer.
    pub kind: Kind,
    /// Encodes into a [`Count`].
    pub count: fn(&[SpecEvent], &mut Buffers, &mut Count),
    /// Encodes into a `Vec` (for checking).
    pub bytes: fn(&[SpecEvent], &mut Buffers, &mut Vec<u8>),
}

macro_rules! contender {
    ($name:expr, $kind:expr, $f:ident) => {
        Contender {
            name: $name,
            kind: $kind,
            count: $f::<Count>,
            bytes: $f::<Vec<u8>>,
        }
    };
}

/// All encoders, ours first.
pub fn encoders() -> Vec<Contender> {
    vec![
        contender!("sse-proto", Kind::Ours, sse_proto),
        contender!("sse-proto_owned", Kind::Ours, sse_proto_owned),
        contender!("sse-proto_prebuilt", Kind::Ours, sse_proto_prebuilt),
        contender!("sse-stream", Kind::Peer, sse_stream),
        contender!("sse-codec", Kind::Peer, sse_codec),
        contender!("axum", Kind::Peer, axum),
        contender!("async-sse", Kind::Peer, async_sse),
        contender!("russe", Kind::Peer, russe),
        contender!("russe_prebuilt", Kind::Peer, russe_prebuilt),
    ]
}

/// `sse-proto`: the id and name borrowed from the event's parts, each
/// checked as it is set (`OutgoingEvent::try_id`, `try_event`: no copy),
/// then [`sse_proto::OutgoingEvent::encode`] into a reused `BytesMut`.
pub fn sse_proto<O: Output>(events: &[SpecEvent], bufs: &mut Buffers, out: &mut O) {
    let buf = &mut bufs.ours;
    buf.clear();
    for e in events {
        let mut event = sse_proto::OutgoingEvent::new(&e.data)
            .try_id(&e.id)
            .expect("valid id");
        if let Some(name) = &e.event {
            event = event.try_event(name).expect("valid name");
        }
        event.encode(buf);
    }
    out.frame(buf);
}

/// `sse-proto` building an owned `EventId` and `EventName` for every event
/// (`EventId::new`, `EventName::new`: checked and copied), then encoding.
pub fn sse_proto_owned<O: Output>(events: &[SpecEvent], bufs: &mut Buffers, out: &mut O) {
    let buf = &mut bufs.ours;
    buf.clear();
    for e in events {
        let id = sse_proto::EventId::new(e.id.as_str()).expect("valid id");
        let name = e
            .event
            .as_deref()
            .map(|n| sse_proto::EventName::new(n).expect("valid name"));
        let mut event = sse_proto::OutgoingEvent::new(&e.data).id(&id);
        if let Some(name) = &name {
            event = event.event(name);
        }
        event.encode(buf);
    }
    out.frame(buf);
}

/// `sse-proto` with every `EventId` and `EventName` built beforehand (once,
/// outside the timed runs): what encoding costs when ids and names are
/// known valid, e.g. names as `const`s and ids kept from earlier.
pub fn sse_proto_prebuilt<O: Output>(events: &[SpecEvent], bufs: &mut Buffers, out: &mut O) {
    if bufs.built.len() != events.len() {
        bufs.built = events
            .iter()
            .map(|e| {
                (
                    sse_proto::EventId::new(e.id.as_str()).expect("valid id"),
                    e.event
                        .as_deref()
                        .map(|n| sse_proto::EventName::new(n).expect("valid name")),
                )
            })
            .collect();
    }
    let buf = &mut bufs.ours;
    buf.clear();
    for (e, (id, name)) in events.iter().zip(&bufs.built) {
        let mut event = sse_proto::OutgoingEvent::new(&e.data).id(id);
        if let Some(name) = name {
            event = event.event(name);
        }
        event.encode(buf);
    }
    out.frame(buf);
}

/// `russe` 0.3: a `Message` of `ByteString`s built from the event's parts
/// (each copied), encoded through tokio-util's `codec::Encoder` into a
/// reused buffer (what its `FramedWrite` does); it checks the id and name
/// as it encodes.
pub fn russe<O: Output>(events: &[SpecEvent], bufs: &mut Buffers, out: &mut O) {
    use tokio_util::codec::Encoder as _;
    let buf = &mut bufs.russe;
    buf.clear();
    let mut encoder = russe::Encoder::default();
    for e in events {
        let message = russe::Message {
            data: bytestring::ByteString::from(e.data.as_str()),
            event: e.event.as_deref().map(bytestring::ByteString::from),
            retry: None,
            id: Some(bytestring::ByteString::from(e.id.as_str())),
        };
        encoder
            .encode(russe::Event::Message(message), buf)
            .expect("russe encode");
    }
    out.frame(buf);
}

/// `russe` 0.3 with every `Message` built beforehand (once, outside the
/// timed runs) and cloned for each encode (its `Encoder` takes the event
/// by value; a `ByteString` clone is a reference count): its cheapest way
/// to encode events it already holds.
pub fn russe_prebuilt<O: Output>(events: &[SpecEvent], bufs: &mut Buffers, out: &mut O) {
    use tokio_util::codec::Encoder as _;
    if bufs.messages.len() != events.len() {
        bufs.messages = events
            .iter()
            .map(|e| russe::Message {
                data: bytestring::ByteString::from(e.data.as_str()),
                event: e.event.as_deref().map(bytestring::ByteString::from),
                retry: None,
                id: Some(bytestring::ByteString::from(e.id.as_str())),
            })
            .collect();
    }
    let buf = &mut bufs.russe;
    buf.clear();
    let mut encoder = russe::Encoder::default();
    for message in &bufs.messages {
        encoder
            .encode(russe::Event::Message(message.clone()), buf)
            .expect("russe encode");
    }
    out.frame(buf);
}

/// `sse-stream` 0.3: build an `Sse` and `encode()` it to `Bytes`.
pub fn sse_stream<O: Output>(events: &[SpecEvent], _: &mut Buffers, out: &mut O) {
    for e in events {
        let mut sse = sse_stream::Sse::default()
            .id(e.id.as_str())
            .data(e.data.as_str());
        if let Some(name) = &e.event {
            sse = sse.event(name.as_str());
        }
        out.frame(&sse.encode().expect("sse-stream encode"));
    }
}

/// `sse-codec` 0.3: `SSECodec` through the `futures_codec::Encoder` trait
/// into a reused buffer (what its `FramedWrite` does).
pub fn sse_codec<O: Output>(events: &[SpecEvent], bufs: &mut Buffers, out: &mut O) {
    use futures_codec::Encoder as _;
    let buf = &mut bufs.codec;
    buf.clear();
    let mut codec = sse_codec::SSECodec::default();
    for e in events {
        let event = sse_codec::Event::message(e.event_type(), &e.data, Some(e.id.as_str()));
        codec.encode(event, buf).expect("sse-codec encode");
    }
    out.frame(buf);
}

/// `axum` 0.8: build `axum::response::sse::Event`s, turn the stream into an
/// `Sse` response and pull the body's frames (the only public way to get an
/// `Event`'s bytes).
pub fn axum<O: Output>(events: &[SpecEvent], _: &mut Buffers, out: &mut O) {
    use axum::response::IntoResponse as _;
    use axum::response::sse::{Event, Sse};
    use http_body_util::BodyExt as _;

    let built: Vec<Event> = events
        .iter()
        .map(|e| {
            let mut event = Event::default().id(&e.id);
            if let Some(name) = &e.event {
                event = event.event(name);
            }
            event.data(&e.data)
        })
        .collect();
    let response =
        Sse::new(stream::iter(built.into_iter().map(Ok::<_, Infallible>))).into_response();
    let mut body = response.into_body();
    block_on(async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("axum body").into_data() {
                out.frame(&data);
            }
        }
    });
}

/// `async-sse` 5.1: `Sender::send` into the channel-backed `Encoder`, read
/// out concurrently (the encoder is an `AsyncRead` with a one-slot channel).
pub fn async_sse<O: Output>(events: &[SpecEvent], bufs: &mut Buffers, out: &mut O) {
    use futures::AsyncReadExt as _;
    let (sender, mut encoder) = async_sse::encode();
    let read = &mut bufs.read;
    read.clear();
    block_on(async {
        let send = async move {
            for e in events {
                sender
                    .send(e.event.as_deref(), &e.data, Some(e.id.as_str()))
                    .await
                    .expect("async-sse send");
            }
        };
        let recv = encoder.read_to_end(read);
        let ((), n) = futures::future::join(send, recv).await;
        n.expect("async-sse read");
    });
    out.frame(read);
}

/// Physical limit: copy `wire` into `dst` (preallocated).
pub fn limit_memcpy(wire: &[u8], dst: &mut Vec<u8>) -> usize {
    dst.clear();
    dst.extend_from_slice(wire);
    dst.len()
}
