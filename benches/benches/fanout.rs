//! In-process fan-out: deliveries per second through the `sse-proto` broker
//! (`sse_tokio::server::Broker`) against `tokio::sync::broadcast`, the channel
//! a typical axum server fans events out with, measured in the same run.
//!
//! N subscribers (1, 100 or 10 000), all subscribed to one topic, each
//! receive a burst of M events (M = 1024, 256 and 64 respectively). A
//! delivery is one event arriving at one subscriber as encoded SSE bytes;
//! throughput is N * M deliveries per iteration. Contenders:
//!
//! * `broker`: `Broker::publish(Update::new(topic, data))` (encodes once,
//!   appends to the history, pushes a refcounted `Bytes` into every
//!   subscriber's queue); subscribers take all queued frames at once
//!   (`try_recv` / `poll_recv` into a reused `Vec<Bytes>`).
//! * `broadcast-format`: what an axum + broadcast server typically does: the
//!   publisher sends `(id, Arc<str>)`, every receiver formats its own frame
//!   (`format!("id: {id}\ndata: {data}\n\n")` into `Bytes`).
//! * `broadcast-bytes`: the fairer baseline: the publisher formats the frame
//!   once and broadcasts the `Bytes`; receivers clone it.
//!
//! Each is run two ways (`fanout/deliveries`):
//!
//! * `sync`: on the bench thread, publish M events, then drain every
//!   subscriber (`try_recv` until empty): the data structures alone.
//! * `tasks`: a 2-worker multi-thread tokio runtime, one task per subscriber
//!   awaiting frames and a publisher task that sends M events and waits
//!   until every subscriber has counted M (an atomic countdown and a
//!   `Notify`). The subscribers are built once per benchmark
//!   (`iter_custom`), not per iteration.
//!
//! Every receiver adds up the lengths of the frames it gets. Before timing,
//! each contender's frames are checked byte for byte against the expected
//! encoding (sync) and the total length of all deliveries is checked (tasks).
//! The broadcast channels have room for a whole burst, so they never lag
//! (`RecvError::Lagged` would skip events silently); lag is counted anyway
//! and reported.
//!
//! `fanout/alloc`: a counting global allocator (switched on only while
//! counting, so the timed runs pay one relaxed load per allocation) measures
//! allocations and bytes per delivery and per published event in steady
//! state (after warm-up bursts, so the queues already have capacity).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::future::poll_fn;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use sse_bench::report;
use sse_tokio::server::{Broker, BrokerConfig, Cursor, Ended, Subscriber, Subscription, Update};
use tokio::sync::{Notify, broadcast};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn record(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with the allocation counters on: (allocations, bytes), counted
/// on every thread (the tokio workers too).
fn count<R>(f: impl FnOnce() -> R) -> (u64, u64) {
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    COUNTING.store(true, Ordering::SeqCst);
    black_box(f());
    COUNTING.store(false, Ordering::SeqCst);
    (
        ALLOCS.load(Ordering::Relaxed) - a0,
        BYTES.load(Ordering::Relaxed) - b0,
    )
}

/// The criterion group, and the directory criterion stores it in.
const GROUP: &str = "fanout/deliveries";
const GROUP_DIR: &str = "fanout_deliveries";
/// The name of the allocation measurements, for filters.
const ALLOC: &str = "fanout/alloc";

/// The one topic every subscriber follows.
const TOPIC: &str = "news";

/// (subscribers, events per burst) of the timed cases.
const CASES: [(usize, usize); 3] = [(1, 1024), (100, 256), (10_000, 64)];

/// Payloads: the data of the first events of the `small` corpus (short
/// JSON, 24-28 bytes), cycled.
const PAYLOADS: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Broker,
    BroadcastFormat,
    BroadcastBytes,
}

impl Contender {
    const ALL: [Contender; 3] = [
        Contender::Broker,
        Contender::BroadcastFormat,
        Contender::BroadcastBytes,
    ];

    fn name(self) -> &'static str {
        match self {
            Contender::Broker => "broker",
            Contender::BroadcastFormat => "broadcast-format",
            Contender::BroadcastBytes => "broadcast-bytes",
        }
    }
}

/// The encoded frame of event `id`, as the broker writes it and as the
/// baselines format it.
fn frame(id: u64, data: &str) -> String {
    format!("id: {id}\ndata: {data}\n\n")
}

/// The sending side of one contender.
enum Publisher {
    Broker(Broker),
    Format(broadcast::Sender<(u64, Arc<str>)>),
    Bytes(broadcast::Sender<Bytes>),
}

/// The receiving side of one subscriber.
enum Sub {
    Broker(Subscriber),
    Format(broadcast::Receiver<(u64, Arc<str>)>),
    Bytes(broadcast::Receiver<Bytes>),
}

impl Publisher {
    /// A fresh publisher; broadcast channels get room for `burst` events.
    fn new(who: Contender, burst: usize) -> Publisher {
        let capacity = burst.next_power_of_two();
        match who {
            // Numbered ids, as the broadcast contenders write theirs: the
            // same frames, the same bytes.
            Contender::Broker => Publisher::Broker(Broker::new(BrokerConfig::new().id_prefix(""))),
            Contender::BroadcastFormat => Publisher::Format(broadcast::channel(capacity).0),
            Contender::BroadcastBytes => Publisher::Bytes(broadcast::channel(capacity).0),
        }
    }

    fn subscribe(&self) -> Sub {
        match self {
            Publisher::Broker(b) => {
                Sub::Broker(b.subscribe(Subscription::new([TOPIC]), Cursor::Live, Instant::now()))
            }
            Publisher::Format(tx) => Sub::Format(tx.subscribe()),
            Publisher::Bytes(tx) => Sub::Bytes(tx.subscribe()),
        }
    }

    /// Publishes event `id` (counting from 1; the broker assigns the same
    /// ids itself) carrying `data`.
    fn publish(&self, id: u64, data: &str) {
        match self {
            Publisher::Broker(b) => {
                let published = b
                    .publish(Update::new(TOPIC, data), Instant::now())
                    .expect("publish");
                debug_assert_eq!(published.seq, id);
            }
            Publisher::Format(tx) => {
                tx.send((id, Arc::from(data))).expect("receivers");
            }
            Publisher::Bytes(tx) => {
                tx.send(Bytes::from(frame(id, data))).expect("receivers");
            }
        }
    }

    fn shutdown(&self) {
        if let Publisher::Broker(b) = self {
            b.shutdown(None, 0);
        }
    }
}

/// The payloads and the next event id, shared by a publisher's bursts.
struct Events {
    payloads: Vec<String>,
    next: AtomicU64,
}

impl Events {
    fn new() -> Events {
        let payloads: Vec<String> = sse_bench::small()
            .events
            .into_iter()
            .take(PAYLOADS)
            .map(|e| e.data)
            .collect();
        assert!(payloads.iter().all(|p| !p.contains(['\n', '\r'])));
        Events {
            payloads,
            next: AtomicU64::new(1),
        }
    }

    fn payload(&self, id: u64) -> &str {
        &self.payloads[(id as usize - 1) % self.payloads.len()]
    }

    /// Fills the broker's history to its limit (with no subscriber yet), so
    /// that every later publish evicts one event: the steady state of a
    /// server that has been up for a while. Nothing for the baselines,
    /// which keep no history.
    fn fill_history(&self, publisher: &Publisher) {
        if let Publisher::Broker(b) = publisher {
            self.burst(publisher, b.config().replay_config().events() + 1);
        }
    }

    /// Publishes the next `m` events.
    fn burst(&self, publisher: &Publisher, m: usize) {
        for _ in 0..m {
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            publisher.publish(id, self.payload(id));
        }
    }

    /// The total length of the frames of events `first..first + m`.
    fn frame_bytes(&self, first: u64, m: usize) -> u64 {
        (first..first + m as u64)
            .map(|id| frame(id, self.payload(id)).len() as u64)
            .sum()
    }
}

// ---------------------------------------------------------------------------
// sync: publish a burst, then drain every subscriber on the same thread.

struct SyncFixture {
    publisher: Publisher,
    subs: Vec<Sub>,
    events: Events,
    m: usize,
    out: Vec<Bytes>,
    lagged: u64,
}

impl SyncFixture {
    fn new(who: Contender, n: usize, m: usize) -> SyncFixture {
        let publisher = Publisher::new(who, m);
        let events = Events::new();
        events.fill_history(&publisher);
        let subs = (0..n).map(|_| publisher.subscribe()).collect();
        SyncFixture {
            publisher,
            subs,
            events,
            m,
            out: Vec::new(),
            lagged: 0,
        }
    }

    /// One burst: publish M events, then every subscriber takes all it has;
    /// `sink(subscriber, frame)` sees every delivered frame. Returns the
    /// number of deliveries.
    fn burst(&mut self, mut sink: impl FnMut(usize, &[u8])) -> usize {
        self.events.burst(&self.publisher, self.m);
        // The history does not age (no maximum age): one time per burst.
        let now = Instant::now();
        let mut delivered = 0;
        for (i, sub) in self.subs.iter_mut().enumerate() {
            match sub {
                Sub::Broker(s) => {
                    self.out.clear();
                    delivered += s.try_recv(&mut self.out, now).expect("subscriber ended");
                    for f in &self.out {
                        sink(i, f);
                    }
                }
                Sub::Format(rx) => loop {
                    match rx.try_recv() {
                        Ok((id, data)) => {
                            let f = Bytes::from(format!("id: {id}\ndata: {data}\n\n"));
                            sink(i, &f);
                            delivered += 1;
                        }
                        Err(broadcast::error::TryRecvError::Lagged(k)) => self.lagged += k,
                        Err(_) => break,
                    }
                },
                Sub::Bytes(rx) => loop {
                    match rx.try_recv() {
                        Ok(f) => {
                            sink(i, &f);
                            delivered += 1;
                        }
                        Err(broadcast::error::TryRecvError::Lagged(k)) => self.lagged += k,
                        Err(_) => break,
                    }
                },
            }
        }
        self.out.clear();
        delivered
    }

    /// A burst whose frames are only measured (the timed loop).
    fn burst_len(&mut self) -> u64 {
        let mut bytes = 0u64;
        self.burst(|_, f| bytes += f.len() as u64);
        bytes
    }
}

/// Checks that every subscriber of a fresh fixture gets exactly the
/// expected frames, in order. `None` when right, else what is wrong.
fn verify_sync(who: Contender) -> Option<String> {
    let (n, m) = (3, 50);
    let mut fx = SyncFixture::new(who, n, m);
    let first = fx.events.next.load(Ordering::Relaxed);
    let mut got: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n];
    for _ in 0..2 {
        fx.burst(|i, f| got[i].push(f.to_vec()));
    }
    let expected: Vec<Vec<u8>> = (first..first + (2 * m) as u64)
        .map(|id| frame(id, fx.events.payload(id)).into_bytes())
        .collect();
    if fx.lagged > 0 {
        return Some(format!("LAGGED: skipped {} events", fx.lagged));
    }
    got.iter().position(|g| *g != expected).map(|i| {
        format!(
            "WRONG OUTPUT: subscriber {i} got {} frames, not the expected {}",
            got[i].len(),
            expected.len()
        )
    })
}

// ---------------------------------------------------------------------------
// tasks: one tokio task per subscriber, a publisher task.

/// The countdown of one burst: subscribers still to receive all M events.
struct Done {
    remaining: AtomicUsize,
    notify: Notify,
    /// Total length of all frames received (added once per burst).
    bytes: AtomicU64,
    /// Events skipped by broadcast lag.
    lagged: AtomicU64,
    /// How often a subscriber found nothing and had to wait (a `Pending`
    /// poll, then a wake-up), added once per burst.
    waits: AtomicU64,
}

impl Done {
    /// A subscriber has all M events of this burst.
    fn finish(&self, bytes: u64, waits: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.waits.fetch_add(waits, Ordering::Relaxed);
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.notify.notify_one();
        }
    }
}

/// Awaits `fut`, counting in `waits` how often it was not ready.
async fn counted<F: Future>(fut: F, waits: &mut u64) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    poll_fn(|cx| {
        let r = fut.as_mut().poll(cx);
        *waits += u64::from(r.is_pending());
        r
    })
    .await
}

/// What one receive from a broadcast channel brought: one event and the
/// length of its frame (`frame_len`), or the events lag skipped (counted in
/// `done.lagged`, with no bytes); `None` once the channel is closed.
fn broadcast_received<T>(
    r: Result<T, broadcast::error::RecvError>,
    done: &Done,
    frame_len: impl FnOnce(T) -> u64,
) -> Option<(usize, u64)> {
    match r {
        Ok(message) => Some((1, frame_len(message))),
        Err(broadcast::error::RecvError::Lagged(k)) => {
            done.lagged.fetch_add(k, Ordering::Relaxed);
            Some((k as usize, 0))
        }
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

async fn subscriber_task(mut sub: Sub, m: usize, done: Arc<Done>) {
    let mut out = Vec::new();
    // The history does not age (no maximum age): one time will do.
    let now = Instant::now();
    let (mut got, mut bytes, mut waits) = (0usize, 0u64, 0u64);
    loop {
        // Events received (or skipped by lag) and their frames' length;
        // `None` at the end.
        let received = match &mut sub {
            Sub::Broker(s) => {
                let recv = poll_fn(|cx| {
                    let r = s.poll_recv(cx, &mut out, now);
                    waits += u64::from(r.is_pending());
                    r
                });
                match recv.await {
                    Ok(()) => {
                        let len = out.iter().map(|f| f.len() as u64).sum::<u64>();
                        let n = out.len();
                        out.clear();
                        Some((n, len))
                    }
                    Err(Ended::Lagged) => {
                        eprintln!("{GROUP}: a broker subscriber lagged; the bench is invalid");
                        std::process::exit(1);
                    }
                    Err(_) => None,
                }
            }
            Sub::Format(rx) => {
                let r = counted(rx.recv(), &mut waits).await;
                // Each receiver formats its own frame.
                broadcast_received(r, &done, |(id, data)| {
                    Bytes::from(format!("id: {id}\ndata: {data}\n\n")).len() as u64
                })
            }
            Sub::Bytes(rx) => {
                let r = counted(rx.recv(), &mut waits).await;
                broadcast_received(r, &done, |f| f.len() as u64)
            }
        };
        let Some((n, len)) = received else { return };
        got += n;
        bytes += len;
        while got >= m {
            got -= m;
            done.finish(bytes, waits);
            bytes = 0;
            waits = 0;
        }
    }
}

struct TaskFixture {
    rt: tokio::runtime::Runtime,
    publisher: Arc<Publisher>,
    events: Arc<Events>,
    done: Arc<Done>,
    n: usize,
    m: usize,
}

impl TaskFixture {
    fn new(who: Contender, n: usize, m: usize) -> TaskFixture {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("tokio runtime");
        let publisher = Arc::new(Publisher::new(who, m));
        let events = Events::new();
        events.fill_history(&publisher);
        let done = Arc::new(Done {
            remaining: AtomicUsize::new(0),
            notify: Notify::new(),
            bytes: AtomicU64::new(0),
            lagged: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        });
        for _ in 0..n {
            // Subscribed here, before any publish: nothing can be missed.
            let sub = publisher.subscribe();
            rt.spawn(subscriber_task(sub, m, done.clone()));
        }
        TaskFixture {
            rt,
            publisher,
            events: Arc::new(events),
            done,
            n,
            m,
        }
    }

    /// Runs `bursts` bursts from a publisher task; the time from the first
    /// publish until every subscriber has the last burst.
    fn run(&self, bursts: u64) -> Duration {
        let (publisher, events, done) = (
            self.publisher.clone(),
            self.events.clone(),
            self.done.clone(),
        );
        let (n, m) = (self.n, self.m);
        let task = self.rt.spawn(async move {
            let start = Instant::now();
            for _ in 0..bursts {
                done.remaining.store(n, Ordering::Release);
                events.burst(&publisher, m);
                done.notify.notified().await;
            }
            start.elapsed()
        });
        self.rt.block_on(task).expect("publisher task")
    }

    /// Runs a few bursts and checks the total length of what arrived.
    fn verify(&self) -> Option<String> {
        let first = self.events.next.load(Ordering::Relaxed);
        let before = self.done.bytes.load(Ordering::Relaxed);
        self.run(3);
        let got = self.done.bytes.load(Ordering::Relaxed) - before;
        let expected = self.n as u64 * self.events.frame_bytes(first, 3 * self.m);
        let lagged = self.done.lagged.load(Ordering::Relaxed);
        if lagged > 0 {
            Some(format!("LAGGED: skipped {lagged} events"))
        } else if got != expected {
            Some(format!(
                "WRONG OUTPUT: {got} bytes delivered, expected {expected}"
            ))
        } else {
            None
        }
    }
}

impl Drop for TaskFixture {
    fn drop(&mut self) {
        // The broker ends its subscribers' streams; broadcast receivers see
        // `Closed` once the runtime drops the tasks.
        self.publisher.shutdown();
    }
}

// ---------------------------------------------------------------------------
// Reports.

fn criterion_test_mode() -> bool {
    std::env::args().any(|a| a == "--test" || a == "--profile-time")
}

/// The benchmark filters on the command line (criterion's positional
/// arguments).
fn filters() -> Vec<String> {
    // Criterion options that take a value.
    const WITH_VALUE: [&str; 15] = [
        "--profile-time",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--color",
        "--output-format",
        "--plotting-backend",
    ];
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            out.push(a);
        }
    }
    out
}

/// Whether the benchmark `id` is selected by the filters. Used to skip
/// building fixtures nobody measures; criterion matches its filters as
/// regular expressions, here they are plain substrings (with an optional
/// `^` or `$` anchor), so a filter using more of the regex syntax builds
/// every fixture (it still times only what criterion selects).
fn selected(id: &str) -> bool {
    let filters = filters();
    filters.is_empty()
        || filters.iter().any(|f| {
            let (start, f) = f
                .strip_prefix('^')
                .map_or((false, f.as_str()), |f| (true, f));
            let (end, f) = f.strip_suffix('$').map_or((false, f), |f| (true, f));
            if f.contains(['*', '+', '?', '(', '[', '|', '\\', '.', '{']) {
                return true;
            }
            match (start, end) {
                (true, true) => id == f,
                (true, false) => id.starts_with(f),
                (false, true) => id.ends_with(f),
                (false, false) => id.contains(f),
            }
        })
}

fn bench_id(variant: &str, who: Contender) -> String {
    format!("{variant}-{}", who.name())
}

/// Deliveries per second from criterion's median, in millions.
fn mdps(variant: &str, who: Contender, n: usize, m: usize) -> Option<f64> {
    let ns = report::median_ns(
        &format!("{GROUP_DIR}/{}", bench_id(variant, who)),
        &n.to_string(),
    )?;
    Some((n * m) as f64 / ns * 1e3)
}

fn deliveries_table(variant: &str, title: &str, notes: &[(String, String)]) -> String {
    let mut out = format!("\n### fanout/deliveries, {title}\n\n");
    let _ = writeln!(
        out,
        "| case (N subscribers x M events) | broker M deliveries/s | broadcast-format M deliveries/s | broker / broadcast-format | broadcast-bytes M deliveries/s | broker / broadcast-bytes |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let fmt = |v: Option<f64>| v.map_or(String::from("-"), |v| format!("{v:.2}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}x", a / b),
        _ => String::from("-"),
    };
    for (n, m) in CASES {
        let [b, f, y] = Contender::ALL.map(|who| mdps(variant, who, n, m));
        let _ = writeln!(
            out,
            "| N={n} x M={m} | {} | {} | {} | {} | {} |",
            fmt(b),
            fmt(f),
            ratio(b, f),
            fmt(y),
            ratio(b, y)
        );
    }
    for (who, note) in notes {
        let _ = writeln!(out, "\n{who}: {note}");
    }
    out
}

/// Allocation figures of one contender in one case.
struct AllocRow {
    case: String,
    who: Contender,
    deliveries: u64,
    published: u64,
    allocs: u64,
    bytes: u64,
    /// Subscriber waits (tasks only).
    waits: Option<u64>,
}

impl AllocRow {
    /// The figures of `bursts` bursts of `m` events to `n` subscribers,
    /// which made `allocs` allocations of `bytes` bytes in all.
    fn new(
        who: Contender,
        (n, m): (usize, usize),
        bursts: u64,
        (allocs, bytes): (u64, u64),
        waits: Option<u64>,
    ) -> AllocRow {
        AllocRow {
            case: format!("N={n} x M={m}"),
            who,
            deliveries: bursts * (n * m) as u64,
            published: bursts * m as u64,
            allocs,
            bytes,
            waits,
        }
    }
}

fn alloc_table(title: &str, rows: &[AllocRow]) -> String {
    let mut out = format!("\n### fanout/alloc, {title}\n\n");
    let waits = rows.iter().any(|r| r.waits.is_some());
    let _ = writeln!(
        out,
        "| case | contender | allocs/delivery | bytes/delivery | allocs/published event | bytes/published event |{}",
        if waits {
            " deliveries per subscriber wake-up |"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|{}",
        if waits { "---:|" } else { "" }
    );
    for r in rows {
        let _ = write!(
            out,
            "| {} | {} | {:.4} | {:.2} | {:.2} | {:.1} |",
            r.case,
            r.who.name(),
            r.allocs as f64 / r.deliveries as f64,
            r.bytes as f64 / r.deliveries as f64,
            r.allocs as f64 / r.published as f64,
            r.bytes as f64 / r.published as f64,
        );
        match r.waits {
            Some(w) => {
                let _ = writeln!(out, " {:.1} |", r.deliveries as f64 / w.max(1) as f64);
            }
            None => out.push('\n'),
        }
    }
    out
}

// ---------------------------------------------------------------------------

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut notes_sync = Vec::new();
    let mut notes_tasks = Vec::new();
    let mut alloc_tasks = Vec::new();

    let verified: Vec<Contender> = Contender::ALL
        .into_iter()
        .filter(|&who| match verify_sync(who) {
            None => true,
            Some(why) => {
                eprintln!("{GROUP}: sync-{}: {why}; not timed", who.name());
                notes_sync.push((who.name().to_string(), why));
                false
            }
        })
        .collect();

    let mut group = c.benchmark_group(GROUP);
    group.warm_up_time(Duration::from_millis(500));
    for (n, m) in CASES {
        group.throughput(Throughput::Elements((n * m) as u64));
        if n >= 10_000 {
            group
                .sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .measurement_time(Duration::from_secs(3));
        } else {
            group
                .sample_size(20)
                .sampling_mode(SamplingMode::Auto)
                .measurement_time(Duration::from_secs(2));
        }
        for &who in &verified {
            if !selected(&format!("{GROUP}/{}/{n}", bench_id("sync", who))) {
                continue;
            }
            let mut fx = SyncFixture::new(who, n, m);
            group.bench_function(BenchmarkId::new(bench_id("sync", who), n), |b| {
                b.iter(|| fx.burst_len())
            });
            if fx.lagged > 0 {
                notes_sync.push((
                    who.name().to_string(),
                    format!("LAGGED at N={n}: skipped {} events", fx.lagged),
                ));
            }
        }
        for &who in &verified {
            let timed = selected(&format!("{GROUP}/{}/{n}", bench_id("tasks", who)));
            if !timed && !selected(ALLOC) {
                continue;
            }
            let fx = TaskFixture::new(who, n, m);
            if let Some(why) = fx.verify() {
                eprintln!("{GROUP}: tasks-{} N={n}: {why}; not timed", who.name());
                notes_tasks.push((who.name().to_string(), format!("N={n}: {why}")));
                continue;
            }
            group.bench_function(BenchmarkId::new(bench_id("tasks", who), n), |b| {
                b.iter_custom(|iters| fx.run(iters))
            });
            if !selected(ALLOC) {
                continue;
            }
            // Allocations of the same fixture in steady state, all threads.
            // Each subscriber's two queue buffers grow to the largest batch
            // it ever took; warm up until that has settled.
            let bursts = ((1 << 22) / (n * m) as u64).max(16);
            fx.run(bursts.max(32));
            let waits0 = fx.done.waits.load(Ordering::Relaxed);
            let allocated = count(|| fx.run(bursts));
            let waits = fx.done.waits.load(Ordering::Relaxed) - waits0;
            alloc_tasks.push(AllocRow::new(who, (n, m), bursts, allocated, Some(waits)));
            let lagged = fx.done.lagged.load(Ordering::Relaxed);
            if lagged > 0 {
                notes_tasks.push((
                    who.name().to_string(),
                    format!("LAGGED at N={n}: skipped {lagged} events"),
                ));
            }
        }
    }
    group.finish();

    // fanout/alloc, sync: steady state after warm-up bursts, on this thread.
    let mut alloc_sync = Vec::new();
    for (n, m) in [(100, 64), (10_000, 64), (100, 1), (10_000, 1), (1, 1024)] {
        for &who in verified.iter().filter(|_| selected(ALLOC)) {
            let mut fx = SyncFixture::new(who, n, m);
            for _ in 0..4 {
                fx.burst_len();
            }
            let bursts = ((1 << 21) / (n * m) as u64).max(16);
            let allocated = count(|| {
                for _ in 0..bursts {
                    black_box(fx.burst_len());
                }
            });
            alloc_sync.push(AllocRow::new(who, (n, m), bursts, allocated, None));
        }
    }

    let mut out = String::from("\n## Fan-out\n");
    out.push_str(&deliveries_table(
        "sync",
        "sync (publish a burst, then drain every subscriber on one thread)",
        &notes_sync,
    ));
    out.push_str(&deliveries_table(
        "tasks",
        "tasks (2-worker tokio runtime, one task per subscriber, a publisher task)",
        &notes_tasks,
    ));
    out.push_str(&alloc_table(
        "sync drain, steady state (one thread)",
        &alloc_sync,
    ));
    out.push_str(&alloc_table(
        "tasks, steady state (the timed fixtures; all threads counted)",
        &alloc_tasks,
    ));
    if criterion_test_mode() || !filters().is_empty() {
        // Nothing or not everything was measured: print, but keep the last
        // full tables.
        println!("{out}");
    } else {
        report::emit("sse-bench-fanout.md", &out);
    }
    c.final_summary();
}
