//! `sse-load`: drives a running Mercure-style hub (`sse hub`, or the
//! `baseline-hub` of this crate) over loopback and measures it.
//!
//! * `idle`: N subscribers that receive nothing; how long until every one
//!   has its response head, the hub's resident memory per connection (from
//!   `/proc/PID/status`), and whether it comes back down after they all
//!   disconnect (several connect/close rounds).
//! * `fanout`: N subscribers on one topic, then M events published either as
//!   fast as the hub takes them or at a fixed rate; each event's data is
//!   `{seq} {unix_nanos}`, so every subscriber checks loss, duplicates and
//!   order and measures the delivery latency.
//! * `throughput`: one subscriber, P publisher connections with W pipelined
//!   POSTs each, for S seconds: publishes accepted and delivered per
//!   second, the publish latency (request written to answer read), the hub's
//!   CPU per publish, and loss, duplicates and order per publisher.
//! * `report`: the Markdown table comparing two result files.
//!
//! Every scenario appends one JSON object per line to `--out`. See
//! `benches/load.sh` and the "Load" section of `benches/README.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use sse_bench::load::http::{BodyScanner, head_end, parse_head, parse_stamp, read_head};
use sse_bench::load::track::{Summary, Tracker};
use sse_bench::load::{HubUrl, unix_nanos, url_encode, vm_rss_kib};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::timeout;

/// How long one connection may take to get its response head.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long all subscribers of a round may take to connect.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Load generator for Mercure-style SSE hubs, over loopback")]
struct Cli {
    /// Worker threads of the load tool's runtime.
    #[arg(long, default_value_t = 2, global = true)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Idle subscribers: connect time, RSS per connection, RSS after churn.
    Idle {
        #[command(flatten)]
        target: Target,
        /// How many subscribers.
        #[arg(long)]
        subscribers: usize,
        /// Connect/close rounds.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Connections being set up at once.
        #[arg(long, default_value_t = 512)]
        concurrency: usize,
        /// How long to let the hub settle before each RSS reading, in ms.
        #[arg(long, default_value_t = 1000)]
        settle_ms: u64,
    },
    /// Fan-out: N subscribers on one topic, M stamped events.
    Fanout {
        #[command(flatten)]
        target: Target,
        /// How many subscribers.
        #[arg(long)]
        subscribers: usize,
        /// How many events.
        #[arg(long)]
        events: u64,
        /// Events per second (default: as fast as the hub takes them).
        #[arg(long)]
        rate: Option<f64>,
        /// Publish requests in flight at once on the (pipelined) publisher
        /// connection.
        #[arg(long, default_value_t = 32)]
        window: usize,
        /// Connections being set up at once.
        #[arg(long, default_value_t = 512)]
        concurrency: usize,
        /// Give up when no event arrives for this long, in seconds.
        #[arg(long, default_value_t = 10)]
        idle_timeout: u64,
        /// Give up after this long in all, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Publish throughput: one subscriber, many pipelined publishers.
    Throughput {
        #[command(flatten)]
        target: Target,
        /// Publisher connections.
        #[arg(long, default_value_t = 16)]
        publishers: usize,
        /// Publish requests in flight at once on each publisher connection.
        #[arg(long, default_value_t = 4)]
        window: usize,
        /// How long to publish, in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Prints the Markdown comparison of two result files.
    Report {
        /// Results of `sse hub`.
        #[arg(long)]
        ours: PathBuf,
        /// Results of the baseline.
        #[arg(long)]
        baseline: PathBuf,
    },
}

/// The hub under test and where results go.
#[derive(Args, Debug, Clone)]
struct Target {
    /// The hub's base URL, `http://HOST:PORT`.
    #[arg(long)]
    url: String,
    /// The hub's process id (for its RSS and CPU time).
    #[arg(long)]
    pid: u32,
    /// A name for the hub in the output.
    #[arg(long, default_value = "hub")]
    label: String,
    /// Append the result (one JSON object per line) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => fail(&format!("cannot start the runtime: {e}")),
    };
    let result = match cli.command {
        Command::Idle {
            target,
            subscribers,
            rounds,
            concurrency,
            settle_ms,
        } => runtime.block_on(idle(
            &target,
            subscribers,
            rounds.max(1),
            concurrency.max(1),
            Duration::from_millis(settle_ms),
        )),
        Command::Fanout {
            target,
            subscribers,
            events,
            rate,
            window,
            concurrency,
            idle_timeout,
            timeout,
        } => runtime.block_on(fanout(
            &target,
            FanoutPlan {
                subscribers,
                events,
                rate,
                window: window.max(1),
                concurrency: concurrency.max(1),
                idle_timeout: Duration::from_secs(idle_timeout),
                timeout: Duration::from_secs(timeout),
            },
        )),
        Command::Throughput {
            target,
            publishers,
            window,
            seconds,
        } => runtime.block_on(throughput(
            &target,
            publishers.max(1),
            window.max(1),
            Duration::from_secs_f64(seconds.max(0.1)),
        )),
        Command::Report { ours, baseline } => report(&ours, &baseline),
    };
    // Subscriber tasks may still hold sockets: do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Err(e) = result {
        fail(&e);
    }
}

fn fail(message: &str) -> ! {
    eprintln!("sse-load: {message}");
    std::process::exit(1)
}

/// Writes a result line to `--out` (if given) and stdout.
fn emit(target: &Target, record: &Value) -> Result<(), String> {
    println!("RESULT {record}");
    if let Some(path) = &target.out {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(file, "{record}").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// CPU time (user + system) of process `pid` so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command name (which is in parentheses and may
    // hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // USER_HZ is 100 on every Linux this runs on.
    ticks / 100.0
}

fn rss(pid: u32) -> Result<u64, String> {
    vm_rss_kib(pid).map_err(|e| format!("reading the hub's RSS (pid {pid}): {e}"))
}

/// Opens one subscriber connection and reads its response head. Returns the
/// socket, a scanner for the body and what followed the head.
async fn subscribe(url: &HubUrl, topic: &str) -> io::Result<(TcpStream, BodyScanner, Vec<u8>)> {
    let mut stream = TcpStream::connect(url.addr).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET /.well-known/mercure?topic={} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        url_encode(topic),
        url.host
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(512);
    let (head, len) = read_head(&mut stream, &mut buf).await?;
    if head.status != 200 {
        return Err(io::Error::other(format!(
            "subscribe answered {}",
            head.status
        )));
    }
    buf.drain(..len);
    Ok((stream, BodyScanner::new(head.chunked), buf))
}

/// Counts subscribers as they get their heads, and when the last did.
#[derive(Default)]
struct Establish {
    ok: AtomicUsize,
    failed: AtomicUsize,
    /// Nanoseconds from the start of the round to the latest head.
    last_nanos: AtomicU64,
    notify: Notify,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Establish {
    fn done(&self, start: Instant, result: Result<(), String>, total: usize) {
        match result {
            Ok(()) => {
                let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.last_nanos.fetch_max(nanos, Ordering::Relaxed);
                self.ok.fetch_add(1, Ordering::AcqRel);
            }
            Err(e) => {
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert(e);
                }
                self.failed.fetch_add(1, Ordering::AcqRel);
            }
        }
        if self.ok.load(Ordering::Acquire) + self.failed.load(Ordering::Acquire) >= total {
            self.notify.notify_one();
        }
    }

    /// Waits (bounded) until every one of `total` has finished connecting.
    async fn wait(&self, total: usize) -> Result<(), String> {
        let all = async {
            loop {
                let notified = self.notify.notified();
                if self.ok.load(Ordering::Acquire) + self.failed.load(Ordering::Acquire) >= total {
                    return;
                }
                notified.await;
            }
        };
        timeout(ESTABLISH_TIMEOUT, all).await.map_err(|_| {
            format!(
                "only {} of {total} subscribers connected within {ESTABLISH_TIMEOUT:?}",
                self.ok.load(Ordering::Acquire)
            )
        })
    }

    fn established_s(&self) -> f64 {
        self.last_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    fn error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }
}

async fn idle(
    target: &Target,
    subscribers: usize,
    rounds: usize,
    concurrency: usize,
    settle: Duration,
) -> Result<(), String> {
    let url = HubUrl::parse(&target.url)?;
    tokio::time::sleep(settle).await;
    let rss_start = rss(target.pid)?;
    println!(
        "[{}] idle x{subscribers}: hub RSS at start {rss_start} KiB",
        target.label
    );
    let mut round_results = Vec::new();
    let mut per_conn_max: f64 = 0.0;
    let mut established = Vec::new();
    let mut failures = 0;
    let mut closed_early_total = 0;
    let mut rss_end = rss_start;
    let mut rss_closed_first = None;
    let mut left_open_last = None;
    for round in 1..=rounds {
        let (stop_tx, stop_rx) = watch::channel(false);
        let sem = Arc::new(Semaphore::new(concurrency));
        let est = Arc::new(Establish::default());
        let closed_early = Arc::new(AtomicUsize::new(0));
        let rss_before = rss(target.pid)?;
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(subscribers);
        for _ in 0..subscribers {
            let (url, sem, est, mut stop_rx, closed_early) = (
                url.clone(),
                sem.clone(),
                est.clone(),
                stop_rx.clone(),
                closed_early.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let permit = sem.acquire_owned().await;
                let opened = timeout(CONNECT_TIMEOUT, subscribe(&url, "idle")).await;
                drop(permit);
                let mut stream = match opened {
                    Ok(Ok((stream, _, _))) => {
                        est.done(start, Ok(()), subscribers);
                        stream
                    }
                    Ok(Err(e)) => return est.done(start, Err(e.to_string()), subscribers),
                    Err(_) => return est.done(start, Err("timed out".into()), subscribers),
                };
                let mut scratch = [0u8; 256];
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => break,
                        read = stream.read(&mut scratch) => match read {
                            Ok(0) | Err(_) => {
                                closed_early.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Ok(_) => {}
                        },
                    }
                }
            }));
        }
        est.wait(subscribers).await?;
        let ok = est.ok.load(Ordering::Acquire);
        let failed = est.failed.load(Ordering::Acquire);
        failures += failed;
        let established_s = est.established_s();
        established.push(established_s);
        tokio::time::sleep(settle).await;
        let rss_open = rss(target.pid)?;
        let _ = stop_tx.send(true);
        for task in tasks {
            let _ = timeout(Duration::from_secs(10), task).await;
        }
        closed_early_total += closed_early.load(Ordering::Relaxed);
        // Closing takes the hub a moment (it sees EOF on its next read).
        tokio::time::sleep(settle * 2).await;
        // Streams the hub still counts as open (it has not noticed the
        // close): `sse hub` and `baseline-hub` both say so on /metrics.
        // The request also wakes an idle hub: tokio's I/O driver releases
        // the registrations of closed sockets only on its next turn.
        let hub_metrics = metrics(&url).await;
        let left_open = ["sse_hub_open_streams", "baseline_subscribers"]
            .iter()
            .find_map(|name| hub_metrics.get(*name).copied());
        tokio::time::sleep(settle / 2).await;
        let rss_closed = rss(target.pid)?;
        rss_end = rss_closed;
        rss_closed_first.get_or_insert(rss_closed);
        left_open_last = left_open;
        let per_conn = (rss_open as f64 - rss_start as f64) * 1024.0 / ok.max(1) as f64;
        per_conn_max = per_conn_max.max(per_conn);
        println!(
            "[{}] round {round}: {ok} established in {:.3} s ({failed} failed{}), RSS {rss_before} -> {rss_open} KiB open ({:.0} B per connection over the start) -> {rss_closed} KiB after close ({} streams still open in the hub)",
            target.label,
            established_s,
            est.error()
                .map_or(String::new(), |e| format!(", first error: {e}")),
            per_conn,
            left_open.map_or("?".to_owned(), |n| n.to_string()),
        );
        round_results.push(json!({
            "round": round,
            "established": ok,
            "failed": failed,
            "established_s": established_s,
            "rss_before_kib": rss_before,
            "rss_open_kib": rss_open,
            "rss_closed_kib": rss_closed,
            "bytes_per_conn": per_conn,
            "streams_left_open": left_open,
        }));
    }
    let mut sorted = established.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let record = json!({
        "scenario": format!("idle-{subscribers}"),
        "label": target.label,
        "subscribers": subscribers,
        "rounds": round_results,
        "rss_start_kib": rss_start,
        "rss_end_kib": rss_end,
        "rss_closed_first_kib": rss_closed_first,
        "streams_left_open": left_open_last,
        "bytes_per_conn": per_conn_max,
        "established_s_first": established.first().copied().unwrap_or(0.0),
        "established_s_median": median,
        "established_s_max": sorted.last().copied().unwrap_or(0.0),
        "failed": failures,
        "closed_by_hub": closed_early_total,
    });
    emit(target, &record)
}

/// What one fan-out run does.
#[derive(Clone, Copy, Debug)]
struct FanoutPlan {
    subscribers: usize,
    events: u64,
    rate: Option<f64>,
    window: usize,
    concurrency: usize,
    idle_timeout: Duration,
    timeout: Duration,
}

/// How a fan-out subscriber ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Complete,
    Stopped,
    ClosedByHub,
    Error,
}

/// Reads the hub's `/metrics` (Prometheus text) into name -> value.
async fn metrics(url: &HubUrl) -> BTreeMap<String, f64> {
    let fetch = async {
        let mut stream = TcpStream::connect(url.addr).await?;
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            url.host
        );
        stream.write_all(request.as_bytes()).await?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await?;
        io::Result::Ok(body)
    };
    let Ok(Ok(body)) = timeout(Duration::from_secs(5), fetch).await else {
        return BTreeMap::new();
    };
    let start = head_end(&body).unwrap_or(body.len());
    String::from_utf8_lossy(body.get(start..).unwrap_or_default())
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// What the publisher saw.
struct Published {
    first_at: Instant,
    last_at: Instant,
    ok: u64,
    rejected: u64,
}

/// Publishes `events` stamped events to `topic` on one pipelined
/// connection (`window` requests in flight at most), at `rate` per second or
/// as fast as the hub answers.
async fn publish(
    url: &HubUrl,
    topic: &str,
    events: u64,
    rate: Option<f64>,
    window: usize,
) -> io::Result<Published> {
    let stream = TcpStream::connect(url.addr).await?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let permits = Arc::new(Semaphore::new(window));
    let reader_permits = permits.clone();
    let reader = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(4096);
        let (mut ok, mut rejected) = (0u64, 0u64);
        while ok + rejected < events {
            while let Some(end) = head_end(&buf) {
                let head =
                    parse_head(buf.get(..end).unwrap_or_default()).map_err(io::Error::other)?;
                let Some(len) = head.content_length else {
                    return Err(io::Error::other("publish answer without Content-Length"));
                };
                if buf.len() < end + len {
                    break;
                }
                buf.drain(..end + len);
                if head.status == 200 {
                    ok += 1;
                } else {
                    rejected += 1;
                }
                reader_permits.add_permits(1);
            }
            if ok + rejected >= events {
                break;
            }
            if rd.read_buf(&mut buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        io::Result::Ok((ok, rejected, Instant::now()))
    });
    let mut ticker =
        rate.map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(0.001))));
    let topic = url_encode(topic);
    let mut request = Vec::with_capacity(256);
    let mut first_at = None;
    for seq in 0..events {
        if let Some(ticker) = &mut ticker {
            ticker.tick().await;
        }
        permits
            .acquire()
            .await
            .map_err(|_| io::Error::other("publisher closed"))?
            .forget();
        let body = format!("topic={topic}&data={seq}%20{}", unix_nanos());
        request.clear();
        let _ = write!(
            request,
            "POST /.well-known/mercure HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            url.host,
            body.len()
        );
        first_at.get_or_insert_with(Instant::now);
        wr.write_all(&request).await?;
    }
    let (ok, rejected, last_at) = reader.await.map_err(io::Error::other)??;
    Ok(Published {
        first_at: first_at.unwrap_or(last_at),
        last_at,
        ok,
        rejected,
    })
}

/// What one publisher connection of the throughput scenario saw.
#[derive(Default)]
struct PublisherRun {
    ok: u64,
    rejected: u64,
    /// Request written to answer read, per answered publish, in µs.
    latencies_us: Vec<u64>,
}

/// Publishes `{publisher}-{seq}` to `topic` on one pipelined connection
/// (`window` requests in flight) until `stop`, then waits for the answers.
async fn publish_until(
    url: HubUrl,
    topic: String,
    publisher: usize,
    window: usize,
    stop: Instant,
) -> io::Result<PublisherRun> {
    let stream = TcpStream::connect(url.addr).await?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let permits = Arc::new(Semaphore::new(window));
    let sent_at = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
    let written = Arc::new(AtomicU64::new(0));
    let done_writing = Arc::new(Notify::new());
    let writer_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let writer_done = writer_done.clone();
        let (permits, sent_at, written, done_writing) = (
            permits.clone(),
            sent_at.clone(),
            written.clone(),
            done_writing.clone(),
        );
        tokio::spawn(async move {
            let mut run = PublisherRun::default();
            let mut buf = Vec::with_capacity(4096);
            loop {
                while let Some(end) = head_end(&buf) {
                    let head =
                        parse_head(buf.get(..end).unwrap_or_default()).map_err(io::Error::other)?;
                    let Some(len) = head.content_length else {
                        return Err(io::Error::other("publish answer without Content-Length"));
                    };
                    if buf.len() < end + len {
                        break;
                    }
                    buf.drain(..end + len);
                    let at = sent_at.lock().ok().and_then(|mut q| q.pop_front());
                    if let Some(at) = at {
                        let us =
                            u64::try_from(Instant::elapsed(&at).as_micros()).unwrap_or(u64::MAX);
                        run.latencies_us.push(us);
                    }
                    if head.status == 200 {
                        run.ok += 1;
                    } else {
                        run.rejected += 1;
                    }
                    permits.add_permits(1);
                }
                let answered = run.ok + run.rejected;
                let notified = done_writing.notified();
                if writer_done.load(Ordering::Acquire)
                    && answered >= written.load(Ordering::Acquire)
                {
                    return io::Result::Ok(run);
                }
                tokio::select! {
                    read = rd.read_buf(&mut buf) => {
                        if read? == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                    }
                    () = notified => {}
                }
            }
        })
    };
    let topic = url_encode(&topic);
    let mut request = Vec::with_capacity(256);
    let mut seq = 0u64;
    while Instant::now() < stop {
        let Ok(Ok(permit)) = timeout(
            stop.saturating_duration_since(Instant::now()),
            permits.acquire(),
        )
        .await
        else {
            break;
        };
        permit.forget();
        let body = format!("topic={topic}&data={publisher}-{seq}");
        request.clear();
        let _ = write!(
            request,
            "POST /.well-known/mercure HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            url.host,
            body.len()
        );
        if let Ok(mut q) = sent_at.lock() {
            q.push_back(Instant::now());
        }
        wr.write_all(&request).await?;
        seq += 1;
        written.store(seq, Ordering::Release);
    }
    writer_done.store(true, Ordering::Release);
    done_writing.notify_one();
    timeout(Duration::from_secs(10), reader)
        .await
        .map_err(|_| io::Error::other("publish answers did not come within 10 s"))?
        .map_err(io::Error::other)?
}

/// One subscriber; `publishers` pipelined publishers for `length`.
async fn throughput(
    target: &Target,
    publishers: usize,
    window: usize,
    length: Duration,
) -> Result<(), String> {
    let url = HubUrl::parse(&target.url)?;
    let topic = format!("throughput-{}-{}", std::process::id(), unix_nanos());
    let (mut socket, mut scanner, first) = timeout(CONNECT_TIMEOUT, subscribe(&url, &topic))
        .await
        .map_err(|_| "the subscriber did not connect in time".to_owned())?
        .map_err(|e| format!("subscribe: {e}"))?;
    // Per publisher: the next sequence number expected, and what arrived.
    let expected = Arc::new(std::sync::Mutex::new(vec![0u64; publishers]));
    let counts = Arc::new([(); 4].map(|()| AtomicU64::new(0)));
    const RECEIVED: usize = 0;
    const LOST: usize = 1;
    const DUPLICATED: usize = 2;
    const MALFORMED: usize = 3;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let subscriber = {
        let (expected, counts) = (expected.clone(), counts.clone());
        tokio::spawn(async move {
            let mut on_data = |data: &[u8]| {
                let parsed = std::str::from_utf8(data).ok().and_then(|d| {
                    let (p, seq) = d.split_once('-')?;
                    Some((p.parse::<usize>().ok()?, seq.parse::<u64>().ok()?))
                });
                let Some((p, seq)) = parsed else {
                    counts[MALFORMED].fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let Ok(mut expected) = expected.lock() else {
                    return;
                };
                let Some(next) = expected.get_mut(p) else {
                    counts[MALFORMED].fetch_add(1, Ordering::Relaxed);
                    return;
                };
                counts[RECEIVED].fetch_add(1, Ordering::Relaxed);
                if seq < *next {
                    counts[DUPLICATED].fetch_add(1, Ordering::Relaxed);
                } else {
                    counts[LOST].fetch_add(seq - *next, Ordering::Relaxed);
                    *next = seq + 1;
                }
            };
            let _ = scanner.feed(&first, &mut on_data);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                tokio::select! {
                    read = socket.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if scanner.feed(buf.get(..n).unwrap_or_default(), &mut on_data).is_err() {
                                return;
                            }
                        }
                    },
                    _ = stop_rx.changed() => return,
                }
            }
        })
    };
    let cpu_before = cpu_seconds(target.pid);
    let start = Instant::now();
    let stop = start + length;
    let runs: Vec<_> = (0..publishers)
        .map(|p| tokio::spawn(publish_until(url.clone(), topic.clone(), p, window, stop)))
        .collect();
    let mut total = PublisherRun::default();
    let mut sent = vec![0u64; publishers];
    for (p, run) in runs.into_iter().enumerate() {
        let run = run
            .await
            .map_err(|e| format!("publisher {p}: {e}"))?
            .map_err(|e| format!("publisher {p}: {e}"))?;
        sent[p] = run.ok;
        total.ok += run.ok;
        total.rejected += run.rejected;
        total.latencies_us.extend(run.latencies_us);
    }
    let answered_at = start.elapsed();
    // Every accepted publish should arrive: wait (bounded) until it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    while counts[RECEIVED].load(Ordering::Relaxed) < total.ok && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu = cpu_seconds(target.pid) - cpu_before;
    let _ = stop_tx.send(true);
    let _ = subscriber.await;
    // Accepted but never delivered, beyond the gaps seen.
    let tail_lost: u64 = expected
        .lock()
        .map(|e| {
            e.iter()
                .zip(&sent)
                .map(|(&next, &ok)| ok.saturating_sub(next))
                .sum()
        })
        .unwrap_or(0);
    total.latencies_us.sort_unstable();
    let q = |f: f64| {
        let v = &total.latencies_us;
        let i = ((v.len() as f64 - 1.0) * f).round() as usize;
        v.get(i).map_or(0.0, |&us| us as f64 / 1000.0)
    };
    let secs = answered_at.as_secs_f64();
    let received = counts[RECEIVED].load(Ordering::Relaxed);
    let record = json!({
        "scenario": format!("throughput-{publishers}x{window}"),
        "label": target.label,
        "publishers": publishers,
        "window": window,
        "seconds": secs,
        "accepted": total.ok,
        "rejected": total.rejected,
        "accepted_per_s": total.ok as f64 / secs,
        "delivered": received,
        "delivered_per_s": received as f64 / secs,
        "publish_p50_ms": q(0.50),
        "publish_p99_ms": q(0.99),
        "publish_max_ms": q(1.0),
        "lost": counts[LOST].load(Ordering::Relaxed) + tail_lost,
        "duplicated": counts[DUPLICATED].load(Ordering::Relaxed),
        "malformed": counts[MALFORMED].load(Ordering::Relaxed),
        "hub_cpu_s": cpu,
        "hub_cpu_us_per_publish": if total.ok > 0 { cpu * 1e6 / total.ok as f64 } else { 0.0 },
    });
    println!(
        "[{}] throughput {publishers}x{window}: {} accepted ({:.0}/s), {} delivered, p99 {:.2} ms, hub CPU {:.2} s",
        target.label,
        total.ok,
        total.ok as f64 / secs,
        received,
        q(0.99),
        cpu
    );
    emit(target, &record)
}

async fn fanout(target: &Target, plan: FanoutPlan) -> Result<(), String> {
    let url = HubUrl::parse(&target.url)?;
    let n = plan.subscribers;
    let topic = format!("load-{}-{}", std::process::id(), unix_nanos());
    let (stop_tx, stop_rx) = watch::channel(false);
    let sem = Arc::new(Semaphore::new(plan.concurrency));
    let est = Arc::new(Establish::default());
    let delivered = Arc::new(AtomicU64::new(0));
    let complete = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (url, topic, sem, est, mut stop_rx, delivered, complete) = (
            url.clone(),
            topic.clone(),
            sem.clone(),
            est.clone(),
            stop_rx.clone(),
            delivered.clone(),
            complete.clone(),
        );
        let events = plan.events;
        tasks.push(tokio::spawn(async move {
            let mut tracker = Tracker::new(events);
            let permit = sem.acquire_owned().await;
            let opened = timeout(CONNECT_TIMEOUT, subscribe(&url, &topic)).await;
            drop(permit);
            let (mut stream, mut scanner, mut buf) = match opened {
                Ok(Ok(opened)) => {
                    est.done(start, Ok(()), n);
                    opened
                }
                Ok(Err(e)) => {
                    est.done(start, Err(e.to_string()), n);
                    return (tracker, End::Error);
                }
                Err(_) => {
                    est.done(start, Err("timed out".into()), n);
                    return (tracker, End::Error);
                }
            };
            let mut stamps: Vec<(u64, u64)> = Vec::new();
            let mut foreign = 0;
            let end = loop {
                if !buf.is_empty() {
                    let fed = scanner.feed(&buf, &mut |data| match parse_stamp(data) {
                        Some(stamp) => stamps.push(stamp),
                        None => foreign += 1,
                    });
                    buf.clear();
                    let (now, at) = (unix_nanos(), Instant::now());
                    let before = tracker.distinct();
                    for (seq, stamp) in stamps.drain(..) {
                        tracker.record(seq, stamp, now, at);
                    }
                    delivered.fetch_add(tracker.distinct() - before, Ordering::Relaxed);
                    if tracker.complete() {
                        complete.fetch_add(1, Ordering::AcqRel);
                        break End::Complete;
                    }
                    match fed {
                        Ok(true) => break End::ClosedByHub,
                        Ok(false) => {}
                        Err(_) => break End::Error,
                    }
                }
                if buf.capacity() < 16 * 1024 {
                    buf.reserve(16 * 1024);
                }
                tokio::select! {
                    _ = stop_rx.changed() => break End::Stopped,
                    read = stream.read_buf(&mut buf) => match read {
                        Ok(0) => break End::ClosedByHub,
                        Ok(_) => {}
                        Err(_) => break End::Error,
                    },
                }
            };
            tracker.foreign += foreign;
            (tracker, end)
        }));
    }
    est.wait(n).await?;
    let established_s = est.established_s();
    let connect_failed = est.failed.load(Ordering::Acquire);
    println!(
        "[{}] fanout x{n}: {} subscribers established in {established_s:.3} s ({connect_failed} failed{})",
        target.label,
        est.ok.load(Ordering::Acquire),
        est.error()
            .map_or(String::new(), |e| format!(", first error: {e}")),
    );
    let metrics_before = metrics(&url).await;
    let rss_before = rss(target.pid)?;
    let (hub_cpu0, own_cpu0) = (cpu_seconds(target.pid), cpu_seconds(std::process::id()));

    let publisher = {
        let (url, topic) = (url.clone(), topic.clone());
        tokio::spawn(
            async move { publish(&url, &topic, plan.events, plan.rate, plan.window).await },
        )
    };
    // Wait until every subscriber has everything, or nothing moves for
    // `idle_timeout`, or `timeout` passes.
    let deadline = Instant::now() + plan.timeout;
    let mut last_progress = (delivered.load(Ordering::Relaxed), Instant::now());
    let mut rss_peak = rss_before;
    let mut ticks = 0u32;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        ticks += 1;
        if ticks % 10 == 0 {
            rss_peak = rss_peak.max(vm_rss_kib(target.pid).unwrap_or(0));
        }
        let now_delivered = delivered.load(Ordering::Relaxed);
        if now_delivered != last_progress.0 {
            last_progress = (now_delivered, Instant::now());
        }
        let live = n - connect_failed;
        if complete.load(Ordering::Acquire) >= live && publisher.is_finished() {
            break;
        }
        if (publisher.is_finished() && last_progress.1.elapsed() > plan.idle_timeout)
            || Instant::now() > deadline
        {
            println!(
                "[{}] giving up waiting: {} of {live} subscribers complete",
                target.label,
                complete.load(Ordering::Acquire)
            );
            break;
        }
    }
    let (hub_cpu, own_cpu) = (
        cpu_seconds(target.pid) - hub_cpu0,
        cpu_seconds(std::process::id()) - own_cpu0,
    );
    let _ = stop_tx.send(true);
    let published = match timeout(Duration::from_secs(10), publisher).await {
        Ok(Ok(Ok(published))) => published,
        Ok(Ok(Err(e))) => return Err(format!("publisher: {e}")),
        Ok(Err(e)) => return Err(format!("publisher: {e}")),
        Err(_) => return Err("publisher did not finish".into()),
    };
    let metrics_after = metrics(&url).await;
    let mut summary = Summary::default();
    let mut ends: BTreeMap<&str, u64> = BTreeMap::new();
    for task in tasks {
        if let Ok(Ok((tracker, end))) = timeout(Duration::from_secs(10), task).await {
            *ends
                .entry(match end {
                    End::Complete => "complete",
                    End::Stopped => "stopped",
                    End::ClosedByHub => "closed_by_hub",
                    End::Error => "error",
                })
                .or_default() += 1;
            summary.add(tracker);
        }
    }
    let expected = (n - connect_failed) as u64 * plan.events;
    let span = summary.last_at.map_or(0.0, |last| {
        last.saturating_duration_since(published.first_at)
            .as_secs_f64()
    });
    let deliveries_per_s = if span > 0.0 {
        summary.distinct as f64 / span
    } else {
        0.0
    };
    let publish_s = published
        .last_at
        .duration_since(published.first_at)
        .as_secs_f64();
    let lat = summary
        .latency_ms(&[0.5, 0.99, 0.999, 1.0])
        .unwrap_or_default();
    let q = |i: usize| lat.get(i).copied().unwrap_or(f64::NAN);
    let delta: BTreeMap<String, f64> = metrics_after
        .iter()
        .filter(|(name, _)| name.contains("lagged"))
        .map(|(name, after)| {
            (
                name.clone(),
                after - metrics_before.get(name).copied().unwrap_or(0.0),
            )
        })
        .collect();
    let mode = plan.rate.map_or("burst".to_owned(), |r| format!("rate{r}"));
    println!(
        "[{}] fanout x{n} {mode} {} events: {} of {expected} deliveries in {span:.3} s = {:.0}/s; latency ms p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}; lost {} dup {} ooo {} foreign {}; publish {publish_s:.3} s ({} ok, {} rejected); ends {ends:?}; lagged {delta:?}; hub CPU {hub_cpu:.2} s, load tool CPU {own_cpu:.2} s; hub RSS {rss_before} -> peak {rss_peak} KiB",
        target.label,
        plan.events,
        summary.distinct,
        deliveries_per_s,
        q(0),
        q(1),
        q(2),
        q(3),
        summary.lost,
        summary.duplicated,
        summary.out_of_order,
        summary.foreign,
        published.ok,
        published.rejected,
    );
    let record = json!({
        "scenario": format!("fanout-{n}-{mode}-{}", plan.events),
        "label": target.label,
        "subscribers": n,
        "events": plan.events,
        "rate": plan.rate,
        "established_s": established_s,
        "connect_failed": connect_failed,
        "expected": expected,
        "delivered": summary.distinct,
        "received": summary.received,
        "deliveries_per_s": deliveries_per_s,
        "span_s": span,
        "publish_s": publish_s,
        "published_ok": published.ok,
        "published_rejected": published.rejected,
        "p50_ms": q(0),
        "p99_ms": q(1),
        "p999_ms": q(2),
        "max_ms": q(3),
        "lost": summary.lost,
        "duplicated": summary.duplicated,
        "out_of_order": summary.out_of_order,
        "foreign": summary.foreign,
        "incomplete_subscribers": summary.incomplete,
        "ends": ends,
        "lagged": delta,
        "hub_cpu_s": hub_cpu,
        "load_cpu_s": own_cpu,
        "rss_before_kib": rss_before,
        "rss_peak_kib": rss_peak,
    });
    emit(target, &record)
}

/// Reads a result file: scenario -> record.
fn read_results(path: &Path) -> Result<BTreeMap<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| Some((v.get("scenario")?.as_str()?.to_owned(), v)))
        .collect())
}

/// One row of the comparison.
struct Row {
    metric: String,
    ours: Option<f64>,
    baseline: Option<f64>,
    /// How to print the values.
    unit: Unit,
    target: String,
    /// Whether the target is met, given (ours, baseline).
    met: Option<fn(f64, f64) -> bool>,
}

#[derive(Clone, Copy)]
enum Unit {
    KiB,
    Seconds,
    Millis,
    PerSecond,
    KPerSecond,
    Micros,
    Count,
}

fn show(value: Option<f64>, unit: Unit) -> String {
    let Some(v) = value else {
        return "-".to_owned();
    };
    match unit {
        Unit::KiB => format!("{:.2} KiB", v / 1024.0),
        Unit::Seconds => format!("{v:.3} s"),
        Unit::Millis => format!("{v:.2} ms"),
        Unit::PerSecond => format!("{:.2} M/s", v / 1e6),
        Unit::KPerSecond => format!("{:.1} k/s", v / 1e3),
        Unit::Micros => format!("{v:.1} µs"),
        Unit::Count => format!("{v:.0}"),
    }
}

fn report(ours: &Path, baseline: &Path) -> Result<(), String> {
    let ours = read_results(ours)?;
    let base = read_results(baseline)?;
    let get = |results: &BTreeMap<String, Value>, scenario: &str, field: &str| {
        results.get(scenario)?.get(field)?.as_f64()
    };
    let mut scenarios: Vec<&String> = ours.keys().chain(base.keys()).collect();
    scenarios.sort();
    scenarios.dedup();
    let mut rows = Vec::new();
    for scenario in scenarios {
        let pair = |field: &str| (get(&ours, scenario, field), get(&base, scenario, field));
        let row = |rows: &mut Vec<Row>,
                   metric: &str,
                   field: &str,
                   unit,
                   target: &str,
                   met: Option<fn(f64, f64) -> bool>| {
            let (o, b) = pair(field);
            rows.push(Row {
                metric: format!("{scenario}: {metric}"),
                ours: o,
                baseline: b,
                unit,
                target: target.to_owned(),
                met,
            });
        };
        if scenario.starts_with("idle-") {
            row(
                &mut rows,
                "RSS per idle subscriber",
                "bytes_per_conn",
                Unit::KiB,
                "<= 6 KiB",
                Some(|o, _| o <= 6.0 * 1024.0),
            );
            row(
                &mut rows,
                "established (first round)",
                "established_s_first",
                Unit::Seconds,
                "< 0.5 s",
                Some(|o, _| o < 0.5),
            );
            row(
                &mut rows,
                "established (median of rounds)",
                "established_s_median",
                Unit::Seconds,
                "< 0.5 s",
                Some(|o, _| o < 0.5),
            );
            // RSS after the last close, over the RSS at the start.
            let residual = |results: &BTreeMap<String, Value>| {
                Some(
                    (get(results, scenario, "rss_end_kib")?
                        - get(results, scenario, "rss_start_kib")?)
                        * 1024.0,
                )
            };
            let open = |results: &BTreeMap<String, Value>| {
                let per = get(results, scenario, "bytes_per_conn")?;
                Some(per * get(results, scenario, "subscribers")?)
            };
            let ratio_ok = match (residual(&ours), open(&ours)) {
                (Some(r), Some(o)) if o > 0.0 => Some(r <= 0.1 * o),
                _ => None,
            };
            rows.push(Row {
                metric: format!("{scenario}: RSS after the last close, over the start"),
                ours: residual(&ours),
                baseline: residual(&base),
                unit: Unit::KiB,
                target: "back near baseline (<= 10% of the open increase)".to_owned(),
                met: None,
            });
            if let Some(last) = rows.last_mut() {
                last.met = match ratio_ok {
                    Some(true) => Some(|_, _| true),
                    Some(false) => Some(|_, _| false),
                    None => None,
                };
            }
            let growth = |results: &BTreeMap<String, Value>| {
                Some(
                    (get(results, scenario, "rss_end_kib")?
                        - get(results, scenario, "rss_closed_first_kib")?)
                        * 1024.0,
                )
            };
            rows.push(Row {
                metric: format!(
                    "{scenario}: RSS after the last close, over the RSS after the first close"
                ),
                ours: growth(&ours),
                baseline: growth(&base),
                unit: Unit::KiB,
                target: "no growth over rounds (< 10% of the open increase)".to_owned(),
                met: None,
            });
            if let (Some(last), Some(g), Some(o)) = (rows.last_mut(), growth(&ours), open(&ours)) {
                last.met = if g <= 0.1 * o {
                    Some(|_, _| true)
                } else {
                    Some(|_, _| false)
                };
            }
            row(
                &mut rows,
                "streams the hub still counts 2 s after the last close",
                "streams_left_open",
                Unit::Count,
                "0",
                Some(|o, _| o == 0.0),
            );
            row(
                &mut rows,
                "failed connections",
                "failed",
                Unit::Count,
                "0",
                Some(|o, _| o == 0.0),
            );
        } else if scenario.starts_with("throughput-") {
            row(
                &mut rows,
                "publishes accepted/s",
                "accepted_per_s",
                Unit::KPerSecond,
                ">= 1.5x baseline",
                Some(|o: f64, b: f64| o >= 1.5 * b),
            );
            row(
                &mut rows,
                "delivered/s",
                "delivered_per_s",
                Unit::KPerSecond,
                "",
                None,
            );
            row(
                &mut rows,
                "publish p50",
                "publish_p50_ms",
                Unit::Millis,
                "",
                None,
            );
            row(
                &mut rows,
                "publish p99",
                "publish_p99_ms",
                Unit::Millis,
                "<= baseline",
                Some(|o: f64, b: f64| o <= b),
            );
            row(
                &mut rows,
                "hub CPU per publish",
                "hub_cpu_us_per_publish",
                Unit::Micros,
                "",
                None,
            );
            for (metric, field) in [("lost", "lost"), ("duplicated", "duplicated")] {
                row(
                    &mut rows,
                    metric,
                    field,
                    Unit::Count,
                    "0",
                    Some(|o, _| o == 0.0),
                );
            }
        } else {
            let burst = scenario.contains("-burst-");
            let big = scenario.starts_with("fanout-10000-");
            row(
                &mut rows,
                "deliveries/s",
                "deliveries_per_s",
                Unit::PerSecond,
                if burst && big { ">= 3x baseline" } else { "" },
                (burst && big).then_some(|o: f64, b: f64| o >= 3.0 * b),
            );
            row(&mut rows, "latency p50", "p50_ms", Unit::Millis, "", None);
            row(
                &mut rows,
                "latency p99",
                "p99_ms",
                Unit::Millis,
                if burst && big { "<= 1/4 baseline" } else { "" },
                (burst && big).then_some(|o: f64, b: f64| o <= b / 4.0),
            );
            row(&mut rows, "latency max", "max_ms", Unit::Millis, "", None);
            row(
                &mut rows,
                "lost",
                "lost",
                Unit::Count,
                "0",
                Some(|o, _| o == 0.0),
            );
            row(
                &mut rows,
                "duplicated",
                "duplicated",
                Unit::Count,
                "0",
                Some(|o, _| o == 0.0),
            );
            row(
                &mut rows,
                "out of order",
                "out_of_order",
                Unit::Count,
                "0",
                Some(|o, _| o == 0.0),
            );
            row(
                &mut rows,
                "subscribers established",
                "established_s",
                Unit::Seconds,
                "",
                None,
            );
            row(
                &mut rows,
                "hub CPU during the run",
                "hub_cpu_s",
                Unit::Seconds,
                "",
                None,
            );
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| metric | sse hub | baseline | sse hub / baseline | target | met? |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---|");
    for row in rows {
        let ratio = match (row.ours, row.baseline) {
            (Some(o), Some(b)) if b != 0.0 => format!("{:.2}x", o / b),
            _ => "-".to_owned(),
        };
        let met = match (row.met, row.ours) {
            (Some(check), Some(o)) => {
                if check(o, row.baseline.unwrap_or(f64::NAN)) {
                    "MET"
                } else {
                    "MISSED"
                }
            }
            _ => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {ratio} | {} | {met} |",
            row.metric,
            show(row.ours, row.unit),
            show(row.baseline, row.unit),
            row.target,
        );
    }
    print!("{out}");
    Ok(())
}
