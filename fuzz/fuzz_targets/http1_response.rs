//! A response head and its body, split at fuzzer-chosen points, must parse
//! and decode exactly as the whole input does, and nothing may panic.
//!
//! Input layout (read with `arbitrary::Unstructured`, all from the front):
//! limits (u8), number of cuts (u8, up to 32), the cuts (u16 each, modulo
//! the input length + 1), then the response bytes.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sse_proto::http1::{
    BodyDecoder, BodyError, BodyKind, BodyLimits, FramingError, HeadError, HeadLimits,
    ResponseHead, ResponseParser,
};

mod common;

use common::{fit_cuts, read_cuts};

/// Everything a run produced.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Head(HeadError),
    /// The input ended inside the head.
    Incomplete,
    Framing(ResponseHead, FramingError),
    Body {
        head: ResponseHead,
        kind: BodyKind,
        body: Vec<u8>,
        done: bool,
        end: Result<(), BodyError>,
        /// Bytes after a finished body (the next message).
        rest: Vec<u8>,
    },
}

fn run(input: &[u8], cuts: &[usize], head_limits: HeadLimits, body_limits: BodyLimits) -> Outcome {
    let mut parser = ResponseParser::with_limits(head_limits);
    let mut buf = BytesMut::new();
    let mut pieces = common::pieces(input, cuts);
    // The head.
    let head = loop {
        let Some(piece) = pieces.next() else {
            return Outcome::Incomplete;
        };
        buf.extend_from_slice(piece);
        match parser.parse_buf(&mut buf) {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(e) => return Outcome::Head(e),
        }
    };
    let _ = (
        head.content_length(),
        head.retry_after(),
        head.keep_alive(),
        head.location(),
    );
    let kind = match head.body_kind("GET") {
        Ok(kind) => kind,
        Err(e) => return Outcome::Framing(head, e),
    };
    // The body, from what is left in `buf` and the remaining pieces.
    let mut decoder = BodyDecoder::with_limits(kind, body_limits);
    let mut body = Vec::new();
    let mut failed = None;
    loop {
        while failed.is_none() {
            match decoder.decode(&mut buf) {
                Ok(Some(piece)) => {
                    assert!(!piece.is_empty(), "pieces are never empty");
                    body.extend_from_slice(&piece);
                }
                Ok(None) => break,
                Err(e) => failed = Some(e),
            }
        }
        let Some(piece) = pieces.next() else { break };
        buf.extend_from_slice(piece);
    }
    let done = decoder.is_done();
    let end = match failed {
        Some(e) => {
            assert_eq!(decoder.decode(&mut buf), Err(e), "errors are terminal");
            Err(e)
        }
        None if done => Ok(()),
        None => decoder.handle_eof(),
    };
    let rest = if done { buf.to_vec() } else { Vec::new() };
    Outcome::Body {
        head,
        kind,
        body,
        done,
        end,
        rest,
    }
}

fn check(data: &[u8]) -> Result<()> {
    let u = &mut Unstructured::new(data);
    let pick = u8::arbitrary(u)?;
    let (head_limits, body_limits) = match pick % 4 {
        0 => (HeadLimits::default(), BodyLimits::default()),
        _ => (
            HeadLimits::default()
                .max_head_len([16, 64, 256, 4096][usize::from(pick >> 2 & 3)])
                .max_headers([0, 1, 4, 64][usize::from(pick >> 4 & 3)]),
            BodyLimits::default()
                .max_chunk_line_len([1, 4, 16, 4096][usize::from(pick >> 6 & 3)])
                .max_trailers_len([2, 8, 64, 16384][usize::from(pick >> 4 & 3)]),
        ),
    };
    let mut cuts = read_cuts(u)?;
    let input = u.bytes(u.len())?;
    fit_cuts(&mut cuts, input.len());

    let whole = run(input, &[], head_limits, body_limits);
    let split = run(input, &cuts, head_limits, body_limits);
    assert_eq!(split, whole, "cuts {cuts:?}");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
});
