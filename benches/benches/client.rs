//! Client receive throughput over loopback: events per second that our tokio
//! client (`sse-tokio`) delivers to its caller, against the peer Rust clients
//! a user would pick (`reqwest-eventsource` over `reqwest`, LaunchDarkly's
//! `eventsource-client` over its hyper transport), plus a raw-socket limit.
//! Our client over the user's `reqwest::Client` (`sse_tokio::reqwest`, the
//! same reqwest build as `reqwest-eventsource`) runs beside them, and is
//! also compared with `reqwest-eventsource` alone.
//!
//! The server is a plain `std` `TcpListener` on `127.0.0.1:0` (its own
//! thread, one thread per connection) that answers any request with a
//! `200 OK`, `Content-Type: text/event-stream`, `Connection: close` head and
//! then the pre-encoded `small` corpus as a close-delimited body, and closes.
//! Every contender gets exactly these bytes, with the same framing.
//!
//! Each iteration builds a fresh client (reconnecting off where the client
//! allows it) on a current-thread tokio runtime, connects, receives events
//! until it has the corpus's N events, and drops the client. Before timing,
//! every contender's events are checked against the corpus (count and a hash
//! of every event's type, data and id); one that gets them wrong is reported
//! and not timed.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use futures::{Stream, StreamExt};
use sse_bench::decoders::Kind;
use sse_bench::report::{self, Row};
use sse_bench::{Fingerprint, Sink, Tally};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The group names, as criterion stores them under `target/criterion/`.
const GROUP: &str = "client-small";
const TLS_GROUP: &str = "client-small-https";

/// Target from the issue: our client at least this many times the events/s
/// of the fastest peer.
const TARGET: f64 = 2.0;

/// Target for our client over reqwest: at least this many times the
/// events/s of `reqwest-eventsource` over the same reqwest client.
const REQWEST_TARGET: f64 = 1.5;

/// A verification run that takes longer than this counts as a failure (a
/// client that hangs instead of delivering the last event).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);

/// The clients and the raw-socket limit.
#[derive(Clone, Copy, Debug)]
enum Contender {
    SseTokio,
    SseTokioReqwest,
    ReqwestEventsource,
    EventsourceClient,
    LimitTcpRead,
    /// Over https (rustls on both): our built-in client.
    SseTokioHttps,
    /// Over https: our client over a rustls reqwest.
    SseTokioReqwestHttps,
    /// Over https: `reqwest-eventsource` on the same rustls reqwest.
    ReqwestEventsourceHttps,
}

/// The certificate the https server presents, which the https contenders
/// (and only they) trust.
static SERVER_CERT: OnceLock<rustls::pki_types::CertificateDer<'static>> = OnceLock::new();

/// A rustls client configuration trusting [`SERVER_CERT`] only.
fn trusting_server() -> Result<Arc<rustls::ClientConfig>, String> {
    let cert = SERVER_CERT.get().ok_or("no server certificate")?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The reqwest client of the https contenders: rustls, trusting
/// [`SERVER_CERT`] only, no proxy (as the plain one).
fn https_reqwest() -> Result<reqwest::Client, String> {
    let cert = SERVER_CERT.get().ok_or("no server certificate")?;
    let cert = reqwest::Certificate::from_der(cert).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .build()
        .map_err(|e| e.to_string())
}

impl Contender {
    const ALL: [Contender; 5] = [
        Contender::SseTokio,
        Contender::SseTokioReqwest,
        Contender::ReqwestEventsource,
        Contender::EventsourceClient,
        Contender::LimitTcpRead,
    ];

    /// The https group.
    const HTTPS: [Contender; 3] = [
        Contender::SseTokioHttps,
        Contender::SseTokioReqwestHttps,
        Contender::ReqwestEventsourceHttps,
    ];

    fn name(self) -> &'static str {
        match self {
            Contender::SseTokio => "sse-tokio",
            Contender::SseTokioReqwest => "sse-tokio-reqwest",
            Contender::ReqwestEventsource => "reqwest-eventsource",
            Contender::EventsourceClient => "eventsource-client",
            Contender::LimitTcpRead => "limit_tcp_read",
            Contender::SseTokioHttps => "sse-tokio (https)",
            Contender::SseTokioReqwestHttps => "sse-tokio-reqwest (https)",
            Contender::ReqwestEventsourceHttps => "reqwest-eventsource (https)",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Contender::SseTokio
            | Contender::SseTokioReqwest
            | Contender::SseTokioHttps
            | Contender::SseTokioReqwestHttps => Kind::Ours,
            Contender::ReqwestEventsource
            | Contender::EventsourceClient
            | Contender::ReqwestEventsourceHttps => Kind::Peer,
            Contender::LimitTcpRead => Kind::Limit,
        }
    }

    /// Connects a fresh client to `url` and receives `n` events into
    /// `sink`. Returns how many events arrived (fewer than `n` only when the
    /// stream ended early) or why the client gave up.
    async fn receive<S: Sink>(self, url: &str, n: u64, sink: &mut S) -> Result<u64, String> {
        match self {
            Contender::SseTokio => sse_tokio_receive(url, n, sink).await,
            Contender::SseTokioReqwest => sse_tokio_reqwest_receive(url, n, sink).await,
            Contender::ReqwestEventsource => reqwest_receive(url, n, sink).await,
            Contender::EventsourceClient => ld_receive(url, n, sink).await,
            Contender::LimitTcpRead => tcp_read(url).await.map(|_| n),
            Contender::SseTokioHttps => sse_tokio_https_receive(url, n, sink).await,
            Contender::SseTokioReqwestHttps => {
                let client = https_reqwest()?;
                sse_tokio_reqwest_over(client, url, n, sink).await
            }
            Contender::ReqwestEventsourceHttps => {
                reqwest_over(https_reqwest()?, url, n, sink).await
            }
        }
    }
}

/// Takes items from `stream` until `deliver` has handed `n` events on (it
/// says whether an item was an event; others, such as an open notice, are
/// passed over). Returns how many it handed on, fewer than `n` when the
/// stream ended early, or the first error with that count.
async fn take_events<T>(
    stream: &mut (impl Stream<Item = Result<T, String>> + Unpin),
    n: u64,
    mut deliver: impl FnMut(T) -> bool,
) -> Result<u64, String> {
    let mut got = 0;
    while got < n {
        match stream.next().await {
            Some(Ok(item)) => got += u64::from(deliver(item)),
            Some(Err(e)) => return Err(format!("error after {got} events: {e}")),
            None => break,
        }
    }
    Ok(got)
}

async fn sse_tokio_receive<S: Sink>(url: &str, n: u64, sink: &mut S) -> Result<u64, String> {
    let config = sse_tokio::ClientConfig::new(url.to_owned()).no_reconnect();
    let source = sse_tokio::EventSource::new(config).map_err(|e| e.to_string())?;
    let mut source = source.map(|item| item.map_err(|e| e.to_string()));
    take_events(&mut source, n, |item| match item {
        sse_tokio::Event::Message(m) => {
            sink.event(m.event_type(), m.data().as_bytes(), m.id());
            true
        }
        _ => false,
    })
    .await
}

/// Our built-in client over https, trusting the bench's certificate.
async fn sse_tokio_https_receive<S: Sink>(url: &str, n: u64, sink: &mut S) -> Result<u64, String> {
    let config = sse_tokio::ClientConfig::new(url.to_owned())
        .no_reconnect()
        .proxies(sse_tokio::Proxies::none());
    let source = sse_tokio::EventSource::new(config)
        .map_err(|e| e.to_string())?
        .tls_config(trusting_server()?);
    let mut source = source.map(|item| item.map_err(|e| e.to_string()));
    take_events(&mut source, n, |item| match item {
        sse_tokio::Event::Message(m) => {
            sink.event(m.event_type(), m.data().as_bytes(), m.id());
            true
        }
        _ => false,
    })
    .await
}

/// Our client over a `reqwest::Client` built exactly as for
/// `reqwest-eventsource`.
async fn sse_tokio_reqwest_receive<S: Sink>(
    url: &str,
    n: u64,
    sink: &mut S,
) -> Result<u64, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    sse_tokio_reqwest_over(client, url, n, sink).await
}

/// Our client over `client`.
async fn sse_tokio_reqwest_over<S: Sink>(
    client: reqwest::Client,
    url: &str,
    n: u64,
    sink: &mut S,
) -> Result<u64, String> {
    let source = sse_tokio::reqwest::EventSource::new(client.get(url))
        .map_err(|e| e.to_string())?
        .configure(|config| config.no_reconnect());
    let mut source = source.map(|item| item.map_err(|e| e.to_string()));
    take_events(&mut source, n, |item| match item {
        sse_tokio::Event::Message(m) => {
            sink.event(m.event_type(), m.data().as_bytes(), m.id());
            true
        }
        _ => false,
    })
    .await
}

async fn reqwest_receive<S: Sink>(url: &str, n: u64, sink: &mut S) -> Result<u64, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    reqwest_over(client, url, n, sink).await
}

/// `reqwest-eventsource` over `client`.
async fn reqwest_over<S: Sink>(
    client: reqwest::Client,
    url: &str,
    n: u64,
    sink: &mut S,
) -> Result<u64, String> {
    use reqwest_eventsource::{Event, EventSource, retry::Never};
    let mut source = EventSource::new(client.get(url)).map_err(|e| e.to_string())?;
    source.set_retry_policy(Box::new(Never));
    let mut items = (&mut source).map(|item| item.map_err(|e| e.to_string()));
    let got = take_events(&mut items, n, |item| match item {
        Event::Message(m) => {
            sink.event(&m.event, m.data.as_bytes(), &m.id);
            true
        }
        Event::Open => false,
    })
    .await?;
    source.close();
    Ok(got)
}

async fn ld_receive<S: Sink>(url: &str, n: u64, sink: &mut S) -> Result<u64, String> {
    use eventsource_client::{Client, ClientBuilder, ReconnectOptions, SSE};
    let transport = launchdarkly_sdk_transport::HyperTransport::builder()
        .disable_proxy()
        .build_http()
        .map_err(|e| e.to_string())?;
    let client = ClientBuilder::for_url(url)
        .map_err(|e| e.to_string())?
        .reconnect(ReconnectOptions::reconnect(false).build())
        .build_with_transport(transport);
    let mut stream = client
        .stream()
        .map(|item| item.map_err(|e| format!("{e:?}")));
    take_events(&mut stream, n, |item| match item {
        SSE::Event(e) => {
            let id = e.id.as_deref().unwrap_or("");
            sink.event(&e.event_type, e.data.as_bytes(), id);
            true
        }
        _ => false,
    })
    .await
}

/// The limit: a raw tokio `TcpStream` that sends the request and reads the
/// whole response into a reused 16 KiB buffer (no HTTP, no SSE parsing).
async fn tcp_read(url: &str) -> Result<usize, String> {
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .ok_or("bad url")?;
    let mut socket = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    socket
        .write_all(format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match socket.read(&mut buf).await {
            Ok(0) => return Ok(total),
            Ok(k) => total += k,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Starts the server thread (https with `tls`); returns its address. The
/// listener lives for the whole process.
fn start_server(response: Arc<Vec<u8>>, tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let response = Arc::clone(&response);
            let tls = tls.clone();
            std::thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                match tls {
                    None => serve(conn, &response),
                    Some(config) => {
                        let Ok(session) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(session, conn), &response);
                    }
                }
            });
        }
    });
    addr
}

/// A certificate for `localhost` and a server configuration presenting it.
fn https_server_config() -> Arc<rustls::ServerConfig> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let cert = certified.cert.der().clone();
    let _ = SERVER_CERT.set(cert.clone());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key.into())
        .expect("the certificate");
    Arc::new(config)
}

/// The end of a served response: the write side closes (a TLS
/// `close_notify` first).
trait CloseWrite: Read + Write {
    fn close_write(&mut self);
}

impl CloseWrite for TcpStream {
    fn close_write(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl CloseWrite for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn close_write(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}

/// Reads one request head, writes the response, closes the write side and
/// drains until the client hangs up (so the close never turns into a reset).
fn serve(mut conn: impl CloseWrite, response: &[u8]) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(k) => head.extend_from_slice(&buf[..k]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    if conn
        .write_all(response)
        .and_then(|()| conn.flush())
        .is_err()
    {
        return;
    }
    conn.close_write();
    while let Ok(k) = conn.read(&mut buf) {
        if k == 0 {
            break;
        }
    }
}

/// Runs of each contender for the CPU-time column.
const CPU_RUNS: u32 = 30;

/// This thread's CPU time so far, in nanoseconds (Linux schedstat).
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Mean CPU time of this thread per run over [`CPU_RUNS`] runs
/// (after one warm-up run).
fn thread_cpu_per_run(
    rt: &tokio::runtime::Runtime,
    group: &str,
    who: Contender,
    url: &str,
    n: u64,
) -> Option<f64> {
    let mut tally = Tally::default();
    rt.block_on(who.receive(url, n, &mut tally)).ok()?;
    let start = thread_cpu_ns()?;
    let wall = std::time::Instant::now();
    for _ in 0..CPU_RUNS {
        let got = rt.block_on(who.receive(url, n, &mut tally)).ok()?;
        assert_eq!(got, n, "{} lost events", who.name());
    }
    black_box(tally);
    let wall = wall.elapsed().as_nanos() as f64 / f64::from(CPU_RUNS);
    let end = thread_cpu_ns()?;
    let cpu = (end - start) as f64 / f64::from(CPU_RUNS);
    // The same runs' wall time: how much of a run the client thread waits.
    eprintln!(
        "{group}: {}: client thread CPU {:.3} ms of {:.3} ms wall per run ({:.0}% busy)",
        who.name(),
        cpu / 1e6,
        wall / 1e6,
        100.0 * cpu / wall
    );
    Some(cpu)
}

/// The line that compares our client over reqwest with
/// `reqwest-eventsource` (the same reqwest build) against
/// [`REQWEST_TARGET`].
fn reqwest_verdict(rows: &[Row]) -> String {
    let median = |who: Contender| {
        rows.iter()
            .find(|r| r.name == who.name())
            .and_then(|r| r.median_ns)
    };
    match (
        median(Contender::SseTokioReqwest),
        median(Contender::ReqwestEventsource),
    ) {
        (Some(ours), Some(peer)) => {
            let ratio = peer / ours;
            let verdict = if ratio >= REQWEST_TARGET {
                "MET"
            } else {
                "MISSED"
            };
            format!(
                "\nsse-tokio-reqwest / reqwest-eventsource (same reqwest client): \
                 **{ratio:.2}x** (target {REQWEST_TARGET}x: {verdict})\n"
            )
        }
        _ => String::from("\nsse-tokio-reqwest / reqwest-eventsource: n/a\n"),
    }
}

/// Whether criterion was asked for a smoke run (`--test`) or a profile
/// (`--profile-time`), where no estimates are written.
fn criterion_test_mode() -> bool {
    std::env::args().any(|a| a == "--test" || a == "--profile-time")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One group: every contender of `contenders` verified, then timed, then
/// its CPU per run; the table (with `target`) as markdown.
struct Group<'a> {
    name: &'static str,
    title: &'static str,
    url: String,
    contenders: &'a [Contender],
    target: f64,
}

fn run_group(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    g: &Group<'_>,
    corpus: &sse_bench::Corpus,
    head_len: usize,
) -> (String, Vec<Row>) {
    let n = corpus.event_count() as u64;
    let expected = corpus.fingerprint();
    let url = &g.url;
    let mut rows = Vec::new();
    let mut timed = Vec::new();
    for &who in g.contenders {
        let note = if matches!(who, Contender::LimitTcpRead) {
            match rt.block_on(tcp_read(url)) {
                Ok(len) if len == head_len + corpus.len() => None,
                Ok(len) => Some(format!(
                    "read {len} bytes, expected {}",
                    head_len + corpus.len()
                )),
                Err(e) => Some(e),
            }
        } else {
            let mut got = Fingerprint::default();
            let run = rt.block_on(async {
                tokio::time::timeout(VERIFY_TIMEOUT, who.receive(url, n, &mut got)).await
            });
            match run {
                Err(_) => Some(format!(
                    "HUNG: {} events within {VERIFY_TIMEOUT:?}, expected {n}; not timed",
                    got.events
                )),
                Ok(Err(e)) => Some(format!("FAILED: {e}; not timed")),
                Ok(Ok(_)) if got == expected => None,
                Ok(Ok(_)) if got.events == expected.events => Some(format!(
                    "WRONG OUTPUT: {n} events as expected, but their type/data/id differ; not timed"
                )),
                Ok(Ok(_)) => Some(format!(
                    "LOST EVENTS: {} events, expected {n}; not timed",
                    got.events
                )),
            }
        };
        if let Some(why) = &note {
            eprintln!("{}: {}: {why}", g.name, who.name());
        } else {
            timed.push(who);
        }
        rows.push(Row {
            name: who.name().to_string(),
            kind: who.kind(),
            median_ns: None,
            note: note.unwrap_or_default(),
        });
    }

    let mut group = c.benchmark_group(g.name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(corpus.len() as u64));
    for &who in &timed {
        group.bench_function(who.name(), |b| {
            b.iter(|| {
                let mut tally = Tally::default();
                let got = rt
                    .block_on(who.receive(black_box(url), n, &mut tally))
                    .expect("client failed during timing");
                assert_eq!(got, n, "{} lost events during timing", who.name());
                black_box(tally)
            })
        });
    }
    group.finish();

    // CPU time of this (the client's only) thread per run: the clients run
    // on a current-thread runtime, so all their work is done here, and
    // unlike wall time this hardly moves when other processes load the
    // machine. Skipped where `/proc/thread-self/schedstat` is missing.
    let mut cpu = Vec::new();
    for row in &mut rows {
        let who = g.contenders.iter().find(|c| c.name() == row.name);
        let timed_here = who.is_some_and(|w| timed.iter().any(|t| t.name() == w.name()));
        cpu.push(match who {
            Some(&who) if timed_here && !criterion_test_mode() => {
                row.median_ns = report::median_ns(g.name, &row.name);
                thread_cpu_per_run(rt, g.name, who, url, n)
            }
            _ => None,
        });
    }
    let out = report::client_table(
        g.title,
        corpus.len(),
        corpus.event_count(),
        &rows,
        &cpu,
        g.target,
    );
    (out, rows)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();

    let corpus = sse_bench::small();
    let mut response = b"HTTP/1.1 200 OK\r\n\
        Content-Type: text/event-stream\r\n\
        Cache-Control: no-cache\r\n\
        Connection: close\r\n\r\n"
        .to_vec();
    let head_len = response.len();
    response.extend_from_slice(&corpus.wire);
    let response = Arc::new(response);
    let addr = start_server(Arc::clone(&response), None);
    let tls_addr = start_server(response, Some(https_server_config()));
    let rt = runtime();

    let plain = Group {
        name: GROUP,
        title: "client receive small over loopback",
        url: format!("http://{addr}/events"),
        contenders: &Contender::ALL,
        target: TARGET,
    };
    let (mut out, rows) = run_group(&mut c, &rt, &plain, &corpus, head_len);
    out.push_str(&reqwest_verdict(&rows));
    // Over https nothing is targeted: measured against reqwest-eventsource
    // on a rustls reqwest (the "target" line only says where we stand).
    let https = Group {
        name: TLS_GROUP,
        title: "client receive small over https loopback (rustls on every side)",
        url: format!("https://localhost:{}/events", tls_addr.port()),
        contenders: &Contender::HTTPS,
        target: 1.0,
    };
    let (tls_out, _) = run_group(&mut c, &rt, &https, &corpus, head_len);
    out.push('\n');
    out.push_str(&tls_out);
    if criterion_test_mode() {
        // Nothing was measured: print, but keep the last real table.
        println!("{out}");
    } else {
        report::emit("sse-bench-client.md", &out);
    }
    c.final_summary();
}
