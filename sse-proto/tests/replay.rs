//! Property tests for `server::ReplayLog`: arbitrary sequences of pushes
//! (with duplicate ids, which resolve to their earliest retained
//! occurrence), expiries, clears, seeks and replays, checked after
//! every step against a naive model that keeps every push ever made and
//! recomputes the configured bounds from scratch.

use std::ops::Add;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use sse_proto::Str;
use sse_proto::server::{ReplayConfig, ReplayLog, Seek};

/// A virtual instant in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct T(u64);

impl Add<Duration> for T {
    type Output = T;
    fn add(self, d: Duration) -> T {
        T(self.0.saturating_add(d.as_secs()))
    }
}

/// The per-entry overhead the model charges (the documented constant).
const OVERHEAD: usize = 64;

/// Ids drawn from a small alphabet, so duplicates are common; includes the
/// empty id and one too long to be stored inline.
const IDS: [&str; 9] = [
    "",
    "a",
    "b",
    "c",
    "an-id-long-enough-not-to-be-stored-inline-in-a-str",
    // Ids that look like (or are) sequence ids `s{seq}`.
    "s",
    "s2",
    "s3",
    "s03",
];

#[derive(Clone, Debug)]
enum Op {
    Push {
        id: &'static str,
        len: usize,
        advance: u64,
    },
    HandleTimeout {
        advance: u64,
    },
    Clear,
    Seek(&'static str),
    Since(u64),
    /// A push whose id is `s{seq}`: a sequence id when the log is told so.
    PushSeqId {
        len: usize,
        advance: u64,
    },
    /// A seek of `s{n}`.
    SeekSeqId(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let id = || prop::sample::select(&IDS[..]);
    prop_oneof![
        6 => (id(), 0..200usize, 0..4u64).prop_map(|(id, len, advance)| Op::Push { id, len, advance }),
        1 => (0..6u64).prop_map(|advance| Op::HandleTimeout { advance }),
        1 => Just(Op::Clear),
        2 => id().prop_map(Op::Seek),
        2 => (0..40u64).prop_map(Op::Since),
        3 => (0..200usize, 0..4u64).prop_map(|(len, advance)| Op::PushSeqId { len, advance }),
        2 => (0..40u64).prop_map(Op::SeekSeqId),
    ]
}

/// A recognisable frame: `len` copies of a byte derived from `seq`.
fn frame(seq: u64, len: usize) -> Bytes {
    Bytes::from(vec![(seq % 251) as u8; len])
}

/// One push as the model remembers it.
struct Pushed {
    id: &'static str,
    len: usize,
    at: u64,
}

impl Pushed {
    fn size(&self) -> usize {
        self.len + self.id.len() + OVERHEAD
    }
}

/// Every push ever made; the retained entries are `pushes[start..]`.
struct Model {
    max_events: usize,
    max_bytes: usize,
    max_age: Option<u64>,
    pushes: Vec<Pushed>,
    start: usize,
    evicted: u64,
}

impl Model {
    fn new(config: ReplayConfig) -> Model {
        Model {
            max_events: config.events(),
            max_bytes: config.bytes(),
            max_age: config.age().map(|a| a.as_secs()),
            pushes: Vec::new(),
            start: 0,
            evicted: 0,
        }
    }

    fn retained(&self) -> &[Pushed] {
        &self.pushes[self.start..]
    }

    /// Drops everything before `start` (counting it as evicted).
    fn evict_to(&mut self, start: usize) -> usize {
        let n = start.saturating_sub(self.start);
        self.start = self.start.max(start);
        self.evicted += n as u64;
        n
    }

    /// Everything up to the newest push that is `max_age` old at `now` is
    /// gone (instants never go backwards here).
    fn expire(&mut self, now: u64) -> usize {
        let Some(age) = self.max_age else { return 0 };
        let expired = self.pushes.iter().rposition(|p| p.at + age <= now);
        self.evict_to(expired.map_or(0, |i| i + 1))
    }

    fn push(&mut self, id: &'static str, len: usize, now: u64) -> u64 {
        self.pushes.push(Pushed { id, len, at: now });
        // The longest retained suffix within the count and byte bounds.
        let fits = |k: usize| {
            let tail = &self.pushes[k..];
            tail.len() <= self.max_events
                && tail.iter().map(Pushed::size).sum::<usize>() <= self.max_bytes
        };
        let k = (self.start..=self.pushes.len()).find(|&k| fits(k)).unwrap();
        self.evict_to(k);
        self.expire(now);
        self.pushes.len() as u64
    }

    /// The earliest retained occurrence of `id`; else the newest push when
    /// it has that id (a client that saw it is up to date).
    fn seek(&self, id: &str) -> Seek {
        let n = self.pushes.len();
        if let Some(i) = self.retained().iter().position(|p| p.id == id) {
            let i = self.start + i;
            return Seek::Found {
                after: i as u64 + 1,
                pending: n - (i + 1),
            };
        }
        if self.pushes.last().is_some_and(|p| p.id == id) {
            return Seek::Found {
                after: n as u64,
                pending: 0,
            };
        }
        Seek::Unknown
    }

    /// `(seq, id, frame, at)` of the retained pushes with a seq above `after`.
    fn since(&self, after: u64) -> Vec<(u64, String, Bytes, u64)> {
        (self.start..self.pushes.len())
            .filter(|&i| i as u64 + 1 > after)
            .map(|i| {
                let p = &self.pushes[i];
                let seq = i as u64 + 1;
                (seq, p.id.to_owned(), frame(seq, p.len), p.at)
            })
            .collect()
    }
}

fn since(log: &ReplayLog<u64, T>, after: u64) -> Vec<(u64, String, Bytes, u64)> {
    log.since(after)
        .map(|e| {
            assert_eq!(*e.meta(), e.seq(), "metadata travels with its entry");
            (e.seq(), e.id().to_owned(), e.frame().clone(), e.at().0)
        })
        .collect()
}

/// Runs `ops` on a log and on the model, comparing everything observable
/// after every step.
fn run(config: ReplayConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    run_with(config, ops, false)?;
    run_with(config, ops, true)
}

/// The id `s{n}`, kept for the whole test run (the model holds `&'static
/// str`s).
fn seq_id(n: u64) -> &'static str {
    Box::leak(format!("s{n}").into_boxed_str())
}

fn run_with(config: ReplayConfig, ops: &[Op], seq_ids: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(ReplayConfig::ENTRY_OVERHEAD, OVERHEAD);
    let mut log: ReplayLog<u64, T> = ReplayLog::new(config);
    if seq_ids {
        log = log.with_seq_ids("s");
    }
    let mut model = Model::new(config);
    let mut now = 0;
    for op in ops {
        match *op {
            Op::Push { id, len, advance } => {
                now += advance;
                let want = model.push(id, len, now);
                let seq = log.last_seq() + 1;
                let got = log.push(Str::from(id), frame(seq, len), seq, T(now));
                prop_assert_eq!(got, want);
            }
            Op::HandleTimeout { advance } => {
                now += advance;
                prop_assert_eq!(log.handle_timeout(T(now)), model.expire(now));
            }
            Op::Clear => {
                log.clear();
                model.start = model.pushes.len();
            }
            Op::PushSeqId { len, advance } => {
                now += advance;
                let seq = log.last_seq() + 1;
                let id = seq_id(seq);
                let want = model.push(id, len, now);
                let got = log.push(Str::from(id), frame(seq, len), seq, T(now));
                prop_assert_eq!(got, want);
            }
            Op::SeekSeqId(n) => prop_assert_eq!(log.seek(seq_id(n)), model.seek(seq_id(n))),
            Op::Seek(id) => prop_assert_eq!(log.seek(id), model.seek(id)),
            Op::Since(after) => {
                let got = since(&log, after);
                prop_assert_eq!(log.since(after).len(), got.len());
                prop_assert_eq!(got, model.since(after));
            }
        }

        let retained = model.retained();
        prop_assert_eq!(log.len(), retained.len());
        prop_assert_eq!(log.is_empty(), retained.is_empty());
        prop_assert_eq!(
            log.bytes(),
            retained.iter().map(Pushed::size).sum::<usize>()
        );
        prop_assert!(log.len() <= config.events() && log.bytes() <= config.bytes());
        prop_assert_eq!(log.last_seq(), model.pushes.len() as u64);
        prop_assert_eq!(
            log.first_seq(),
            (!retained.is_empty()).then_some(model.start as u64 + 1)
        );
        prop_assert_eq!(log.last_id(), model.pushes.last().map(|p| p.id));
        prop_assert_eq!(log.evicted(), model.evicted);
        prop_assert_eq!(
            log.poll_timeout(),
            model
                .max_age
                .and_then(|age| retained.first().map(|p| T(p.at + age)))
        );
        // Every id resolves as the model says, and so does every cursor.
        for id in IDS {
            prop_assert_eq!(log.seek(id), model.seek(id));
        }
        prop_assert_eq!(since(&log, 0), model.since(0));
        for seq in 0..=log.last_seq() + 1 {
            let want = model.since(seq.saturating_sub(1)).first().cloned();
            let want = want.filter(|w| w.0 == seq);
            let got = log
                .get(seq)
                .map(|e| (e.seq(), e.id().to_owned(), e.frame().clone(), e.at().0));
            prop_assert_eq!(got, want);
        }
    }
    Ok(())
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn count_bound(n in 1..8usize, ops in ops()) {
        run(ReplayConfig::new().max_events(n), &ops)?;
    }

    #[test]
    fn byte_bound(n in 0..1200usize, ops in ops()) {
        run(ReplayConfig::new().max_bytes(n), &ops)?;
    }

    #[test]
    fn age_bound(secs in 0..12u64, ops in ops()) {
        run(ReplayConfig::new().max_age(Some(Duration::from_secs(secs))), &ops)?;
    }

    #[test]
    fn zero_events(ops in ops()) {
        run(ReplayConfig::new().max_events(0), &ops)?;
    }

    #[test]
    fn all_bounds(
        n in 0..8usize,
        bytes in 0..1200usize,
        secs in 0..12u64,
        ops in ops(),
    ) {
        let config = ReplayConfig::new()
            .max_events(n)
            .max_bytes(bytes)
            .max_age(Some(Duration::from_secs(secs)));
        run(config, &ops)?;
    }

    #[test]
    fn unbounded(ops in ops()) {
        run(ReplayConfig::new(), &ops)?;
    }
}
