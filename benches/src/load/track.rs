//! Per-subscriber bookkeeping of delivered events (loss, duplicates, order,
//! latency) and the summary over all subscribers.

use std::time::Instant;

/// Latencies are kept in ticks of this many nanoseconds (in a `u32`: up to
/// 429 s).
pub const TICK_NANOS: u64 = 100;

/// What one subscriber received of the events `0..events`.
#[derive(Debug)]
pub struct Tracker {
    events: u64,
    seen: Vec<u64>,
    distinct: u64,
    max_seen: Option<u64>,
    /// Every delivery of a stamped event, duplicates included.
    pub received: u64,
    /// Deliveries of an event already received.
    pub duplicated: u64,
    /// First deliveries of an event after a later one.
    pub out_of_order: u64,
    /// `data:` values that are not a stamp of this run.
    pub foreign: u64,
    /// Latency (receive time minus the publisher's stamp) of every first
    /// delivery, in [`TICK_NANOS`] ticks.
    pub latencies: Vec<u32>,
    /// When the last delivery arrived.
    pub last_at: Option<Instant>,
}

impl Tracker {
    /// A tracker for a run of `events` events (sequence numbers
    /// `0..events`).
    pub fn new(events: u64) -> Self {
        let words = usize::try_from(events.div_ceil(64)).unwrap_or(usize::MAX);
        Self {
            events,
            seen: vec![0; words],
            distinct: 0,
            max_seen: None,
            received: 0,
            duplicated: 0,
            out_of_order: 0,
            foreign: 0,
            latencies: Vec::with_capacity(usize::try_from(events).unwrap_or(0)),
            last_at: None,
        }
    }

    /// Records the delivery of event `seq`, stamped `stamp` (Unix
    /// nanoseconds), received at `now` (Unix nanoseconds) / `at`.
    pub fn record(&mut self, seq: u64, stamp: u64, now: u64, at: Instant) {
        let word = usize::try_from(seq / 64).ok();
        let Some(slot) = word
            .and_then(|w| self.seen.get_mut(w))
            .filter(|_| seq < self.events)
        else {
            self.foreign += 1;
            return;
        };
        self.received += 1;
        self.last_at = Some(at);
        let bit = 1u64 << (seq % 64);
        if *slot & bit != 0 {
            self.duplicated += 1;
            return;
        }
        *slot |= bit;
        self.distinct += 1;
        if self.max_seen.is_some_and(|max| seq < max) {
            self.out_of_order += 1;
        } else {
            self.max_seen = Some(seq);
        }
        let ticks = now.saturating_sub(stamp) / TICK_NANOS;
        self.latencies
            .push(u32::try_from(ticks).unwrap_or(u32::MAX));
    }

    /// Whether every event has arrived.
    pub fn complete(&self) -> bool {
        self.distinct == self.events
    }

    /// How many distinct events arrived.
    pub fn distinct(&self) -> u64 {
        self.distinct
    }

    /// Events that never arrived.
    pub fn lost(&self) -> u64 {
        self.events - self.distinct
    }
}

/// The sum over every subscriber of a run.
#[derive(Debug, Default)]
pub struct Summary {
    /// Subscribers counted.
    pub subscribers: u64,
    /// Subscribers that did not get every event.
    pub incomplete: u64,
    /// Every delivery, duplicates included.
    pub received: u64,
    /// Distinct events delivered, over all subscribers.
    pub distinct: u64,
    /// Events lost, over all subscribers.
    pub lost: u64,
    /// Duplicate deliveries.
    pub duplicated: u64,
    /// Out-of-order first deliveries.
    pub out_of_order: u64,
    /// Unrecognised `data:` values.
    pub foreign: u64,
    /// When the last delivery of all arrived.
    pub last_at: Option<Instant>,
    latencies: Vec<u32>,
}

impl Summary {
    /// Adds one subscriber's tracker.
    pub fn add(&mut self, tracker: Tracker) {
        self.subscribers += 1;
        self.incomplete += u64::from(!tracker.complete());
        self.received += tracker.received;
        self.distinct += tracker.distinct;
        self.lost += tracker.lost();
        self.duplicated += tracker.duplicated;
        self.out_of_order += tracker.out_of_order;
        self.foreign += tracker.foreign;
        self.last_at = match (self.last_at, tracker.last_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.latencies.extend_from_slice(&tracker.latencies);
    }

    /// Latency quantiles in milliseconds, for each `q` in `qs` (0..=1; 1 is
    /// the maximum). `None` when nothing arrived.
    pub fn latency_ms(&mut self, qs: &[f64]) -> Option<Vec<f64>> {
        if self.latencies.is_empty() {
            return None;
        }
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        Some(
            qs.iter()
                .map(|&q| {
                    // Nearest rank: the smallest value with at least q of
                    // the samples at or below it.
                    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
                    let ticks = self.latencies.get(rank - 1).copied().unwrap_or(0);
                    f64::from(ticks) * TICK_NANOS as f64 / 1e6
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let at = Instant::now();
        let mut t = Tracker::new(5);
        for (seq, stamp) in [(0, 0), (2, 0), (1, 0), (2, 0), (9, 0), (4, 0)] {
            t.record(seq, stamp, 1_000_000, at);
        }
        assert_eq!(t.received, 5);
        assert_eq!(t.duplicated, 1);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.foreign, 1);
        assert_eq!(t.lost(), 1);
        assert!(!t.complete());
        let mut s = Summary::default();
        s.add(t);
        assert_eq!(s.incomplete, 1);
        assert_eq!(s.latency_ms(&[0.5, 1.0]), Some(vec![1.0, 1.0]));
    }

    #[test]
    fn quantiles() {
        let at = Instant::now();
        let mut t = Tracker::new(100);
        for seq in 0..100 {
            t.record(seq, 0, (seq + 1) * 100_000, at);
        }
        assert!(t.complete());
        let mut s = Summary::default();
        s.add(t);
        let q = s.latency_ms(&[0.5, 0.99, 1.0]).unwrap();
        assert_eq!(q, vec![5.0, 9.9, 10.0]);
    }
}
