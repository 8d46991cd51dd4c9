//! Runs every shared conformance vector (`tests/vectors/parse-vectors.json`)
//! whole, one byte at a time, at every 2-way split (inputs up to 600 bytes)
//! and at seeded random splits, through both the copying (`handle_bytes`) and
//! the zero-copy (`handle_chunk`) entry points.

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use sse_proto::{Decoder, Frame};

#[derive(Deserialize)]
struct Case {
    name: String,
    input_b64: String,
    expected: Vec<Expected>,
    final_retry: Option<u64>,
    final_last_event_id: String,
}

#[derive(Deserialize, Debug, PartialEq, Eq, Clone)]
struct Expected {
    #[serde(rename = "type")]
    event_type: String,
    data: String,
    id: String,
    retry: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Expected>,
    final_retry: Option<u64>,
    final_last_event_id: String,
}

#[derive(Clone, Copy, Debug)]
enum Feed {
    Copy,
    Chunk,
}

fn drain(decoder: &mut Decoder, pending_retry: &mut Option<u64>, events: &mut Vec<Expected>) {
    while let Some(frame) = decoder
        .poll_frame()
        .expect("no limit is reached by the vectors")
    {
        match frame {
            Frame::Retry(retry) => {
                *pending_retry = Some(u64::try_from(retry.as_millis()).unwrap());
            }
            Frame::Event(event) => events.push(Expected {
                event_type: event.event_type().to_owned(),
                data: event.data().to_owned(),
                id: event.id().to_owned(),
                retry: pending_retry.take(),
            }),
            _ => unreachable!("no other frames exist"),
        }
    }
}

fn run(input: &[u8], cuts: &[usize], feed: Feed) -> Outcome {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    let mut pending_retry = None;
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let piece = &input[start..cut];
        start = cut;
        match feed {
            Feed::Copy => decoder.handle_bytes(piece),
            Feed::Chunk => decoder.handle_chunk(Bytes::copy_from_slice(piece)),
        }
        drain(&mut decoder, &mut pending_retry, &mut events);
    }
    decoder.handle_eof();
    drain(&mut decoder, &mut pending_retry, &mut events);
    Outcome {
        events,
        final_retry: decoder
            .retry()
            .map(|r| u64::try_from(r.as_millis()).unwrap()),
        final_last_event_id: decoder.last_event_id().to_owned(),
    }
}

fn cases() -> Vec<Case> {
    let text = include_str!("vectors/parse-vectors.json");
    // arbitrary_precision keeps retry values up to u64::MAX exact.
    serde_json::from_str(text).expect("parse-vectors.json is valid")
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_cuts(len: usize, rng: &mut XorShift) -> Vec<usize> {
    if len < 2 {
        return Vec::new();
    }
    let count = rng.below(len.min(40));
    let mut cuts: Vec<usize> = (0..count).map(|_| 1 + rng.below(len - 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

#[test]
fn every_vector_at_every_chunking() {
    let cases = cases();
    assert!(cases.len() >= 150, "the shared corpus has 150 cases");
    let mut failures = Vec::new();
    let mut rng = XorShift(0x5EED_CAFE_F00D_D00D);
    for case in &cases {
        let input = base64::engine::general_purpose::STANDARD
            .decode(&case.input_b64)
            .unwrap();
        let want = Outcome {
            events: case.expected.clone(),
            final_retry: case.final_retry,
            final_last_event_id: case.final_last_event_id.clone(),
        };
        let mut splits: Vec<(String, Vec<usize>)> = vec![
            ("whole".into(), vec![]),
            ("byte-by-byte".into(), (1..input.len()).collect()),
        ];
        if input.len() <= 600 {
            splits.extend((1..input.len()).map(|cut| (format!("split at {cut}"), vec![cut])));
        }
        for round in 0..20 {
            splits.push((
                format!("random #{round}"),
                random_cuts(input.len(), &mut rng),
            ));
        }
        'case: for (label, cuts) in &splits {
            for feed in [Feed::Copy, Feed::Chunk] {
                let got = run(&input, cuts, feed);
                if got != want {
                    failures.push(format!(
                        "{} ({label}, {feed:?}, cuts {cuts:?}):\n  want {want:?}\n  got  {got:?}",
                        case.name
                    ));
                    break 'case;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
