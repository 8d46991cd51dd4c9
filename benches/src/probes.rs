//! Conformance probes: the shared parser vectors of `sse-proto`
//! (`sse-proto/tests/vectors/parse-vectors.json`, 150 cases derived from the
//! WHATWG algorithm and the web-platform-tests) run through every decoding
//! contender, as the decode bench drives it, fed whole, one byte at a time
//! and in 7-byte pieces.
//!
//! Only what a [`Sink`](crate::Sink) sees is compared: each dispatched
//! event's type, data and `lastEventId`, in order (not `retry`, which not
//! every peer reports). A contender that panics or returns an error on a
//! case fails that case. The decode bench times a peer that fails probes
//! like any other (when its output on the corpus is right), but measures
//! its targets against the fastest peer that passes them all.

use std::panic::{self, AssertUnwindSafe};

use base64::Engine as _;
use bytes::Bytes;

use crate::Fingerprint;
use crate::Sink as _;
use crate::decoders::Contender;

/// One conformance case: its input and the fingerprint of the events it
/// must dispatch.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The case's name in the vectors file.
    pub name: String,
    /// The exact input bytes.
    pub input: Bytes,
    /// The expected events, as a fingerprint.
    pub expected: Fingerprint,
}

/// How a contender fared on the probes.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Cases run (each at every feeding).
    pub cases: usize,
    /// Names of the cases failed at one feeding or more, in file order.
    pub failed: Vec<String>,
}

impl Verdict {
    /// Whether every case passed at every feeding.
    pub fn passed(&self) -> bool {
        self.failed.is_empty()
    }

    /// A short summary for a table cell: `150/150`, or the count passed and
    /// the first few cases failed.
    pub fn summary(&self) -> String {
        let passed = self.cases - self.failed.len();
        if self.failed.is_empty() {
            return format!("{passed}/{}", self.cases);
        }
        let shown: Vec<&str> = self.failed.iter().take(3).map(String::as_str).collect();
        let more = if self.failed.len() > 3 { ", ..." } else { "" };
        format!("{passed}/{} (fails {}{more})", self.cases, shown.join(", "))
    }
}

/// The 150 shared parser vectors.
pub fn probes() -> Vec<Probe> {
    let text = include_str!("../../sse-proto/tests/vectors/parse-vectors.json");
    let cases: serde_json::Value = serde_json::from_str(text).expect("vectors are JSON");
    let engine = base64::engine::general_purpose::STANDARD;
    cases
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|case| {
            let field = |key: &str| case.get(key).and_then(|v| v.as_str()).unwrap_or_default();
            let mut expected = Fingerprint::default();
            for event in case
                .get("expected")
                .and_then(|v| v.as_array())
                .expect("expected events")
            {
                let part = |key: &str| event.get(key).and_then(|v| v.as_str()).unwrap_or_default();
                expected.event(part("type"), part("data").as_bytes(), part("id"));
            }
            Probe {
                name: field("name").to_string(),
                input: Bytes::from(engine.decode(field("input_b64")).expect("base64 input")),
                expected,
            }
        })
        .collect()
}

/// `input` cut into pieces of `size` bytes.
fn pieces(input: &Bytes, size: usize) -> Vec<Bytes> {
    (0..input.len())
        .step_by(size)
        .map(|start| input.slice(start..(start + size).min(input.len())))
        .collect()
}

/// Runs every probe through `contender`, whole, one byte at a time and in
/// 7-byte pieces. Panics inside the contender count as failures and are
/// not printed.
pub fn check(contender: &Contender, probes: &[Probe]) -> Verdict {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let mut verdict = Verdict {
        cases: probes.len(),
        failed: Vec::new(),
    };
    for probe in probes {
        let feeds = [
            vec![probe.input.clone()],
            pieces(&probe.input, 1),
            pieces(&probe.input, 7),
        ];
        let ok = feeds.iter().all(|chunks| {
            panic::catch_unwind(AssertUnwindSafe(|| (contender.fingerprint)(chunks)))
                .is_ok_and(|got| got == probe.expected)
        });
        if !ok {
            verdict.failed.push(probe.name.clone());
        }
    }
    panic::set_hook(hook);
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoders::decoders;

    #[test]
    fn our_decoders_pass_every_probe() {
        let probes = probes();
        assert_eq!(probes.len(), 150);
        for d in decoders()
            .iter()
            .filter(|d| d.kind == crate::decoders::Kind::Ours)
        {
            let verdict = check(d, &probes);
            assert!(verdict.passed(), "{}: {:?}", d.name, verdict.failed);
        }
    }

    #[test]
    fn a_decoder_that_drops_ids_fails() {
        fn no_ids<S: crate::Sink + Default>(chunks: &[Bytes]) -> S {
            let mut sink = S::default();
            let mut decoder = sse_proto::Decoder::new();
            for chunk in chunks {
                decoder.handle_bytes(chunk);
                while let Some(e) = decoder.poll_event().expect("within limits") {
                    sink.event(e.event_type(), e.data().as_bytes(), "");
                }
            }
            sink
        }
        let lax = Contender {
            name: "no-ids",
            kind: crate::decoders::Kind::Peer,
            tally: no_ids::<crate::Tally>,
            fingerprint: no_ids::<Fingerprint>,
        };
        let verdict = check(&lax, &probes());
        assert!(
            verdict.failed.iter().any(|n| n == "id-basic"),
            "{verdict:?}"
        );
        assert!(verdict.summary().contains("fails"));
    }
}
