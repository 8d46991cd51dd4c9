//! Shared corpora and helpers for the benchmarks of `sse-proto` against peer
//! crates.
//!
//! Every corpus is generated deterministically (no files, no randomness that
//! changes between runs), so all contenders decode the very same bytes. A
//! [`Corpus`] carries its wire bytes and the events it holds, from which the
//! expected results ([`Corpus::fingerprint`], [`Corpus::tally`]) are computed
//! independently of any decoder.

use std::fmt::Write as _;

use bytes::Bytes;

pub mod decoders;
pub mod encoders;
pub mod load;
pub mod probes;
pub mod report;

/// The chunk size used for "fed in chunks": one TCP segment's payload on a
/// typical Ethernet path (MSS 1460).
pub const MSS: usize = 1460;

/// The size the small, CRLF and multiline corpora grow to (at least).
pub const CORPUS_TARGET: usize = 1 << 20;

/// The size the small corpus is truncated to for one-byte-at-a-time feeding.
pub const BYTEWISE_TARGET: usize = 16 * 1024;

/// One event of a corpus, as the sender meant it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecEvent {
    /// The `event:` field, if the event has one.
    pub event: Option<String>,
    /// The `id:` field (every generated event has one).
    pub id: String,
    /// The data (lines joined with LF).
    pub data: String,
}

impl SpecEvent {
    /// The event type a receiver sees: the `event` field or `"message"`.
    pub fn event_type(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// A generated `text/event-stream` body and the events it encodes.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Short name, used in benchmark ids.
    pub name: &'static str,
    /// The wire bytes.
    pub wire: Bytes,
    /// The events, in order.
    pub events: Vec<SpecEvent>,
}

impl Corpus {
    /// Builds a corpus from its events, written with `line_end` after every
    /// line.
    pub fn from_events(name: &'static str, events: Vec<SpecEvent>, line_end: &str) -> Corpus {
        let mut wire = String::new();
        for e in &events {
            let _ = write!(wire, "id: {}{line_end}", e.id);
            if let Some(event) = &e.event {
                let _ = write!(wire, "event: {event}{line_end}");
            }
            for line in e.data.split('\n') {
                let _ = write!(wire, "data: {line}{line_end}");
            }
            wire.push_str(line_end);
        }
        Corpus {
            name,
            wire: Bytes::from(wire),
            events,
        }
    }

    /// The corpus cut to its first events that fit in `max_len` bytes.
    pub fn truncated(&self, name: &'static str, max_len: usize, line_end: &str) -> Corpus {
        let mut kept = Vec::new();
        for e in &self.events {
            kept.push(e.clone());
            if Corpus::from_events(name, kept.clone(), line_end).wire.len() > max_len {
                kept.pop();
                break;
            }
        }
        Corpus::from_events(name, kept, line_end)
    }

    /// The wire bytes cut into chunks of `size` bytes (the last may be
    /// shorter). The chunks share the corpus buffer: no copy.
    pub fn chunks(&self, size: usize) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(self.wire.len().div_ceil(size));
        let mut start = 0;
        while start < self.wire.len() {
            let end = (start + size).min(self.wire.len());
            out.push(self.wire.slice(start..end));
            start = end;
        }
        out
    }

    /// The wire bytes as one chunk.
    pub fn whole(&self) -> Vec<Bytes> {
        vec![self.wire.clone()]
    }

    /// The expected [`Fingerprint`] of a correct decode.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut f = Fingerprint::default();
        for e in &self.events {
            f.event(e.event_type(), e.data.as_bytes(), &e.id);
        }
        f
    }

    /// The expected [`Tally`] of a correct decode.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for e in &self.events {
            t.event(e.event_type(), e.data.as_bytes(), &e.id);
        }
        t
    }

    /// The number of events.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// The number of wire bytes.
    pub fn len(&self) -> usize {
        self.wire.len()
    }

    /// Whether the corpus has no bytes.
    pub fn is_empty(&self) -> bool {
        self.wire.is_empty()
    }
}

/// Receives every decoded event: how a benchmark proves that a decoder did
/// all its work (each contender hands every event to the same sink).
pub trait Sink {
    /// Called once per dispatched event. A missing id is passed as `""`, a
    /// missing event type as `"message"`.
    fn event(&mut self, event_type: &str, data: &[u8], id: &str);
}

/// The cheap sink used in timed loops: counts events and sums the lengths of
/// their parts (so every part must have been produced).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events seen.
    pub events: u64,
    /// Sum of the lengths of event type, data and id.
    pub bytes: u64,
}

impl Sink for Tally {
    #[inline]
    fn event(&mut self, event_type: &str, data: &[u8], id: &str) {
        self.events += 1;
        self.bytes += (event_type.len() + data.len() + id.len()) as u64;
    }
}

/// The thorough sink used to check correctness outside the timed loop: a
/// 64-bit FNV-1a hash over every event's type, data and id, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Events seen.
    pub events: u64,
    /// Hash of all parts of all events.
    pub hash: u64,
}

impl Default for Fingerprint {
    fn default() -> Fingerprint {
        Fingerprint {
            events: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl Fingerprint {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator, so that ("ab", "c") and ("a", "bc") differ.
        self.hash ^= 0xff;
        self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

impl Sink for Fingerprint {
    fn event(&mut self, event_type: &str, data: &[u8], id: &str) {
        self.events += 1;
        self.feed(event_type.as_bytes());
        self.feed(data);
        self.feed(id.as_bytes());
    }
}

/// A small deterministic PRNG (xorshift64*), so corpora are the same on
/// every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

const NAMES: [&str; 4] = ["tick", "quote", "trade", "update"];
const WORDS: [&str; 12] = [
    "alpha", "beta", "gamma", "delta", "order", "filled", "queue", "stream", "event", "value",
    "ok", "x",
];

/// Events numbered `first + 1`, `first + 2`, ... (the number is the id),
/// until their wire length with `line_end` reaches `min_len`:
/// `make(rng, seq)` gives each one's type and data, drawing from a
/// generator seeded with `seed`.
fn numbered_events(
    seed: u64,
    first: u64,
    min_len: usize,
    line_end: &str,
    mut make: impl FnMut(&mut Rng, u64) -> (&'static str, String),
) -> Vec<SpecEvent> {
    let mut rng = Rng::new(seed);
    let mut events = Vec::new();
    let mut len = 0;
    let mut seq = first;
    while len < min_len {
        seq += 1;
        let (name, data) = make(&mut rng, seq);
        let e = SpecEvent {
            event: Some(name.to_string()),
            id: seq.to_string(),
            data,
        };
        len += wire_len(&e, line_end);
        events.push(e);
    }
    events
}

fn small_events(min_len: usize, line_end: &str) -> Vec<SpecEvent> {
    // Each small event is 50-70 bytes on the wire with LF line ends.
    numbered_events(0x5e5e_0001, 1000, min_len, line_end, |rng, seq| {
        let name = NAMES[rng.below(NAMES.len() as u64) as usize];
        let px = rng.below(1_000_000);
        let data = format!("{{\"seq\":{seq},\"px\":{}.{:02}}}", px / 100, px % 100);
        (name, data)
    })
}

fn wire_len(e: &SpecEvent, line_end: &str) -> usize {
    let lines = e.data.split('\n').count();
    e.event
        .as_ref()
        .map_or(0, |n| "event: ".len() + n.len() + line_end.len())
        + "id: ".len()
        + e.id.len()
        + line_end.len()
        + lines * ("data: ".len() + line_end.len())
        + e.data.len()
        + 1 // the LF joins count one byte less than lines, the blank line adds
        - lines
        + line_end.len()
}

/// `small`: about 1 MiB of ~56-byte events, each with `id:`, `event:` and
/// one short JSON `data:` line, LF line ends.
pub fn small() -> Corpus {
    Corpus::from_events("small", small_events(CORPUS_TARGET, "\n"), "\n")
}

/// `crlf`: the `small` events with CRLF line ends.
pub fn crlf() -> Corpus {
    Corpus::from_events("crlf", small_events(CORPUS_TARGET, "\r\n"), "\r\n")
}

/// `bytewise`: the `small` corpus truncated to at most 16 KiB, for
/// one-byte-at-a-time feeding.
pub fn bytewise() -> Corpus {
    Corpus::from_events("small-16k", small_events(BYTEWISE_TARGET * 2, "\n"), "\n").truncated(
        "small-16k",
        BYTEWISE_TARGET,
        "\n",
    )
}

/// `multiline`: about 1 MiB of events of 20 `data:` lines each (20-60 bytes
/// per line), with `event:` and `id:`.
pub fn multiline() -> Corpus {
    let events = numbered_events(0x5e5e_0002, 0, CORPUS_TARGET, "\n", |rng, seq| {
        let mut data = String::new();
        for line in 0..20 {
            if line > 0 {
                data.push('\n');
            }
            let _ = write!(data, "[{seq}:{line}]");
            let target = 20 + rng.below(40) as usize;
            while data.len() - data.rfind('\n').map_or(0, |i| i + 1) < target {
                data.push(' ');
                data.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
            }
        }
        ("log", data)
    });
    Corpus::from_events("multiline", events, "\n")
}

/// Size of each `large` event's data line.
pub const LARGE_DATA: usize = 64 * 1024;

/// `large`: 16 events, each an `id:` and one 64 KiB `data:` line of
/// printable ASCII.
pub fn large() -> Corpus {
    let mut rng = Rng::new(0x5e5e_0003);
    let events = (0..16)
        .map(|i| {
            let mut data = String::with_capacity(LARGE_DATA);
            while data.len() < LARGE_DATA {
                let word = WORDS[rng.below(WORDS.len() as u64) as usize];
                data.push_str(word);
                data.push(' ');
            }
            data.truncate(LARGE_DATA);
            SpecEvent {
                event: None,
                id: i.to_string(),
                data,
            }
        })
        .collect();
    Corpus::from_events("large", events, "\n")
}

/// All four decode corpora, in table order.
pub fn decode_corpora() -> Vec<Corpus> {
    vec![small(), crlf(), multiline(), large()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_len_matches() {
        for c in [small(), crlf(), multiline(), large(), bytewise()] {
            let le = if c.name == "crlf" { "\r\n" } else { "\n" };
            let sum: usize = c.events.iter().map(|e| wire_len(e, le)).sum();
            assert_eq!(sum, c.len(), "{}", c.name);
        }
    }

    #[test]
    fn sizes() {
        let s = small();
        assert!(s.len() >= CORPUS_TARGET && s.len() < CORPUS_TARGET + 100);
        let avg = s.len() / s.event_count();
        assert!((50..=70).contains(&avg), "avg {avg}");
        let b = bytewise();
        assert!(b.len() <= BYTEWISE_TARGET && b.len() > BYTEWISE_TARGET - 100);
        assert_eq!(large().event_count(), 16);
    }

    #[test]
    fn chunks_cover_the_wire() {
        let c = multiline();
        let chunks = c.chunks(MSS);
        assert!(chunks.iter().all(|ch| ch.len() <= MSS));
        assert_eq!(chunks.concat(), c.wire.to_vec());
    }
}
