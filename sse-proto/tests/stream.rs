//! StreamWriter properties: whatever the batches, keep-alives and partial
//! writes, the wire bytes are a valid body (chunked or raw, gzip or not)
//! that carries exactly the frames in order, and every batch is readable
//! as soon as it is written.
#![cfg(feature = "http1")]

use std::ops::Add;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sse_proto::http1::{BodyDecoder, BodyKind};
use sse_proto::server::{BodyFraming, Encoding, StreamConfig, StreamWriter};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct T(u64);

impl Add<Duration> for T {
    type Output = T;
    fn add(self, d: Duration) -> T {
        T(self.0 + d.as_millis() as u64)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Batch(Vec<Vec<u8>>),
    Wait(u64),
    Write(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..5).prop_map(Op::Batch),
        2 => (0u64..300).prop_map(Op::Wait),
        3 => (0usize..700).prop_map(Op::Write),
    ]
}

/// The receiving side: undo the framing and (optionally) gzip.
struct Receiver {
    buf: BytesMut,
    body: Option<BodyDecoder>,
    #[cfg(feature = "gzip")]
    gunzip: Option<flate2::Decompress>,
    plain: Vec<u8>,
}

impl Receiver {
    fn new(framing: BodyFraming, encoding: Encoding) -> Receiver {
        Receiver {
            buf: BytesMut::new(),
            body: (framing == BodyFraming::Chunked).then(|| BodyDecoder::new(BodyKind::Chunked)),
            #[cfg(feature = "gzip")]
            gunzip: (encoding == Encoding::Gzip).then(|| flate2::Decompress::new_gzip(15)),
            plain: Vec::new(),
        }
    }

    fn receive(&mut self, wire: &[u8]) {
        self.buf.extend_from_slice(wire);
        let mut pieces = Vec::new();
        match &mut self.body {
            Some(body) => {
                while let Some(piece) = body.decode(&mut self.buf).unwrap() {
                    pieces.push(piece);
                }
            }
            None => pieces.push(self.buf.split().freeze()),
        }
        for piece in pieces {
            self.inflate(&piece);
        }
    }

    #[cfg(feature = "gzip")]
    fn inflate(&mut self, piece: &[u8]) {
        let Some(z) = &mut self.gunzip else {
            self.plain.extend_from_slice(piece);
            return;
        };
        let mut input = piece;
        while !input.is_empty() {
            self.plain.reserve(input.len() * 4 + 256);
            let before = z.total_in();
            z.decompress_vec(input, &mut self.plain, flate2::FlushDecompress::Sync)
                .unwrap();
            input = &input[(z.total_in() - before) as usize..];
        }
    }

    #[cfg(not(feature = "gzip"))]
    fn inflate(&mut self, piece: &[u8]) {
        self.plain.extend_from_slice(piece);
    }

    fn ended(&self) -> bool {
        self.body.as_ref().is_some_and(BodyDecoder::is_done)
    }
}

fn run(ops: Vec<Op>, framing: BodyFraming, encoding: Encoding, retry: bool) {
    let config = StreamConfig::new()
        .heartbeat(Some(Duration::from_millis(100)))
        .retry(retry.then(|| Duration::from_millis(1500)));
    let mut now = T(0);
    let mut writer = StreamWriter::new(&config, framing, encoding, now);
    let mut receiver = Receiver::new(framing, encoding);
    let mut expected: Vec<u8> = if retry {
        b"retry: 1500\n".to_vec()
    } else {
        Vec::new()
    };
    let write = |writer: &mut StreamWriter<T>, receiver: &mut Receiver, n: usize| {
        let mut wire = Vec::new();
        for chunk in writer.chunks() {
            wire.extend_from_slice(chunk);
        }
        let n = n.min(wire.len());
        receiver.receive(&wire[..n]);
        writer.handle_written(n);
        assert_eq!(writer.pending_bytes(), wire.len() - n);
    };
    for op in ops {
        match op {
            Op::Batch(frames) => {
                for f in &frames {
                    expected.extend_from_slice(f);
                }
                writer.push_frames(frames.into_iter().map(Bytes::from), now);
            }
            Op::Wait(ms) => {
                let idle = writer.is_idle();
                let due = writer.poll_timeout();
                now = T(now.0 + ms);
                writer.handle_timeout(now);
                if idle && due.is_some_and(|d| d <= now) {
                    expected.extend_from_slice(b":\n");
                }
                // The next keep-alive is always in the future.
                assert!(writer.poll_timeout().is_none_or(|d| d > now));
            }
            Op::Write(n) => write(&mut writer, &mut receiver, n),
        }
    }
    // Flush everything: what arrived equals what was sent, in order.
    write(&mut writer, &mut receiver, usize::MAX);
    assert_eq!(receiver.plain, expected);
    writer.finish(Some(Duration::from_secs(3)), now);
    expected.extend_from_slice(b"retry: 3000\n");
    write(&mut writer, &mut receiver, usize::MAX);
    assert_eq!(receiver.plain, expected);
    assert_eq!(receiver.ended(), framing == BodyFraming::Chunked);
    assert!(writer.is_idle());
}

/// Either body framing.
fn framing() -> impl Strategy<Value = BodyFraming> {
    prop_oneof![Just(BodyFraming::Raw), Just(BodyFraming::Chunked)]
}

/// Each content coding this build has.
fn encoding() -> impl Strategy<Value = Encoding> {
    if cfg!(feature = "gzip") {
        prop_oneof![Just(Encoding::Identity), Just(Encoding::Gzip)].boxed()
    } else {
        Just(Encoding::Identity).boxed()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_wire_carries_exactly_the_frames(
        ops in prop::collection::vec(op(), 0..40),
        framing in framing(),
        encoding in encoding(),
        retry in any::<bool>(),
    ) {
        run(ops, framing, encoding, retry);
    }

    /// A batch is readable as soon as its bytes are written: nothing stays
    /// behind in the framing or the compressor.
    #[test]
    fn every_batch_is_readable_at_once(
        batches in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 1..200), 1..4), 1..20),
        encoding in encoding(),
    ) {
        let mut writer = StreamWriter::new(&StreamConfig::new(), BodyFraming::Chunked, encoding, T(0));
        let mut receiver = Receiver::new(BodyFraming::Chunked, encoding);
        let mut expected = Vec::new();
        for batch in batches {
            for f in &batch {
                expected.extend_from_slice(f);
            }
            writer.push_frames(batch.into_iter().map(Bytes::from), T(0));
            while let Some(piece) = writer.poll_chunk() {
                receiver.receive(&piece);
            }
            prop_assert_eq!(&receiver.plain, &expected);
        }
    }

    /// Taken in batches of at most `max` bytes, the pending pieces are the
    /// same bytes in the same order as taken one by one, and a batch is
    /// larger than `max` only when it is a single piece.
    #[test]
    fn batches_carry_the_pieces_in_order_within_their_bound(
        batches in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..6), 1..12),
        framing in framing(),
        encoding in encoding(),
        max in 1usize..900,
    ) {
        let config = StreamConfig::new().retry(Some(Duration::from_millis(1500)));
        let mut by_piece = StreamWriter::new(&config, framing, encoding, T(0));
        let mut by_batch = StreamWriter::new(&config, framing, encoding, T(0));
        for batch in batches {
            let frames: Vec<Bytes> = batch.into_iter().map(Bytes::from).collect();
            by_piece.push_frames(frames.clone(), T(0));
            by_batch.push_frames(frames, T(0));
            let mut pieces = Vec::new();
            let mut wire = Vec::new();
            while let Some(piece) = by_piece.poll_chunk() {
                wire.extend_from_slice(&piece);
                pieces.push(piece.len());
            }
            let mut batched = Vec::new();
            let mut taken = 0;
            while let Some(batch) = by_batch.poll_batch(max) {
                prop_assert!(!batch.is_empty());
                if batch.len() > max {
                    // A piece too large for any batch goes alone.
                    prop_assert_eq!(Some(&batch.len()), pieces.get(taken));
                }
                batched.extend_from_slice(&batch);
                // Batches end on piece boundaries.
                let mut len = 0;
                while len < batch.len() {
                    len += pieces[taken];
                    taken += 1;
                }
                prop_assert_eq!(len, batch.len());
            }
            prop_assert_eq!(batched, wire);
            prop_assert_eq!(by_batch.pending_bytes(), 0);
            prop_assert!(by_batch.is_idle());
        }
    }
}
