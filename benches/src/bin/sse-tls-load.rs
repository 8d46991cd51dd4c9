//! `sse-tls-load`: what an idle subscriber costs `sse hub` over plain
//! HTTP/1.1, HTTP/1.1 over TLS and HTTP/2 over TLS, and how fast a burst
//! fans out over each, measured on a hub process this tool starts (a
//! throwaway certificate for the TLS modes). Loopback only; every wait
//! bounded.
//!
//! ```text
//! sse-tls-load --sse target/release/sse --mode h2 --subscribers 10000 --per-connection 100 --events 100
//! ```
//!
//! Prints one JSON line: the hub's resident memory before and after the
//! subscribers connected, per subscriber (and, over HTTP/2, per
//! connection and per stream beyond its connection), then the burst's
//! wall time and the hub's CPU time for it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use memchr::memmem;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

#[derive(Parser)]
struct Cli {
    /// The `sse` binary to start the hub with.
    #[arg(long, default_value = "target/release/sse")]
    sse: PathBuf,
    /// How subscribers connect.
    #[arg(long, value_enum)]
    mode: Mode,
    /// How many subscribers.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Streams per HTTP/2 connection.
    #[arg(long, default_value_t = 100)]
    per_connection: usize,
    /// Events of the burst published once everyone is connected (0: none).
    #[arg(long, default_value_t = 0)]
    events: usize,
    /// Publishes in flight on the publishing connection (pipelined
    /// HTTP/1.1): 1 waits for each answer before the next publish.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Publishes per second (0: as fast as the window allows).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Mode {
    /// Plain HTTP/1.1, one connection per subscriber.
    Http1,
    /// HTTP/1.1 over TLS, one connection per subscriber.
    Tls,
    /// HTTP/2 over TLS, `--per-connection` streams per connection.
    H2,
}

/// The longest any phase may take.
const PHASE_LIMIT: Duration = Duration::from_secs(20);

/// What subscribers look for: each event's data starts so.
const MARKER: &[u8] = b"data: ev";

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run(cli)) {
        Ok(record) => println!("{record}"),
        Err(e) => {
            eprintln!("sse-tls-load: {e}");
            std::process::exit(1);
        }
    }
}

/// The hub process and how to reach it.
struct HubProcess {
    child: Child,
    addr: SocketAddr,
    _dir: PathBuf,
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        // SIGTERM first: the hub shuts down as in production (and a
        // profiler wrapped around it writes its report), then SIGKILL.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

/// A throwaway certificate for `localhost`: its PEM files, and a client
/// configuration trusting it (ALPN as given).
fn certificate(dir: &std::path::Path) -> Result<(PathBuf, PathBuf, rustls::RootCertStore), String> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .map_err(|e| e.to_string())?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&key, certified.signing_key.serialize_pem()).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(certified.cert.der().clone())
        .map_err(|e| e.to_string())?;
    Ok((cert, key, roots))
}

fn client_config(roots: &rustls::RootCertStore, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Starts `sse hub` (with TLS when `tls` is given) and reads its address.
fn start_hub(
    sse: &PathBuf,
    tls: Option<(&PathBuf, &PathBuf)>,
    dir: PathBuf,
) -> Result<HubProcess, String> {
    let mut command = Command::new(sse);
    command.args([
        "hub",
        "--listen",
        "127.0.0.1:0",
        "--max-connections",
        "100000",
        "--queue",
        "65536",
    ]);
    if let Some((cert, key)) = tls {
        command
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", sse.display()))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let first = lines
        .next()
        .ok_or("the hub printed nothing")?
        .map_err(|e| e.to_string())?;
    std::thread::spawn(move || for _ in lines {});
    let addr = first
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split("://").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .ok_or_else(|| format!("no address in {first:?}"))?;
    Ok(HubProcess {
        child,
        addr,
        _dir: dir,
    })
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum::<f64>()
        / 100.0
}

/// Counts the events every subscriber has received.
#[derive(Default)]
struct Counter {
    /// Subscribers that have all `target` events.
    complete: AtomicUsize,
    /// Events received, all subscribers together.
    received: AtomicUsize,
    /// Body bytes received, all subscribers together.
    bytes: AtomicUsize,
    /// Why the first stream that ended early ended.
    ended: std::sync::Mutex<Option<String>>,
}

/// Reads an HTTP/1.1 subscription's body, counting events until `target`.
async fn count_http1<S: AsyncRead + Unpin>(mut io: S, target: usize, counter: Arc<Counter>) {
    let finder = memmem::Finder::new(MARKER);
    let mut buf = vec![0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    let mut seen = 0;
    while seen < target {
        let Ok(n) = io.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        tail.extend_from_slice(&buf[..n]);
        let found = finder.find_iter(&tail).count();
        seen += found;
        counter.received.fetch_add(found, Ordering::SeqCst);
        let keep = tail.len().min(MARKER.len() - 1);
        tail.drain(..tail.len() - keep);
    }
    counter.complete.fetch_add(1, Ordering::SeqCst);
    // Stay connected until the end.
    let _ = io.read(&mut buf).await;
}

/// Subscribes over HTTP/1.1 on `io`; the body is read by a task.
async fn subscribe_http1<S>(mut io: S, target: usize, counter: Arc<Counter>) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let request = b"GET /.well-known/mercure?topic=load HTTP/1.1\r\nHost: localhost\r\n\r\n";
    io.write_all(request).await.map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if io.read(&mut byte).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed before the head".into());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        return Err(format!("subscribe: {}", String::from_utf8_lossy(&head)));
    }
    tokio::spawn(count_http1(io, target, counter));
    Ok(())
}

/// Opens HTTP/2 streams on one connection; their bodies are read by tasks.
async fn subscribe_h2(
    send: &mut h2::client::SendRequest<Bytes>,
    streams: usize,
    target: usize,
    counter: &Arc<Counter>,
) -> Result<(), String> {
    let mut pending = Vec::new();
    for _ in 0..streams {
        let request = http::Request::get("https://localhost/.well-known/mercure?topic=load")
            .body(())
            .map_err(|e| e.to_string())?;
        let mut ready = send.clone().ready().await.map_err(|e| e.to_string())?;
        let (response, _) = ready
            .send_request(request, true)
            .map_err(|e| e.to_string())?;
        pending.push(response);
    }
    for response in pending {
        let response = response.await.map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("subscribe: {}", response.status()));
        }
        let mut body = response.into_body();
        let counter = Arc::clone(counter);
        tokio::spawn(async move {
            let finder = memmem::Finder::new(MARKER);
            let mut tail: Vec<u8> = Vec::new();
            let mut seen = 0;
            while seen < target {
                let data = match body.data().await {
                    Some(Ok(data)) => data,
                    other => {
                        let mut first = counter.ended.lock().expect("not poisoned");
                        first.get_or_insert_with(|| format!("{other:?}"));
                        return;
                    }
                };
                counter.bytes.fetch_add(data.len(), Ordering::SeqCst);
                let _ = body.flow_control().release_capacity(data.len());
                tail.extend_from_slice(&data);
                let found = finder.find_iter(&tail).count();
                seen += found;
                counter.received.fetch_add(found, Ordering::SeqCst);
                let keep = tail.len().min(MARKER.len() - 1);
                tail.drain(..tail.len() - keep);
            }
            counter.complete.fetch_add(1, Ordering::SeqCst);
            let _ = body.data().await;
        });
    }
    Ok(())
}

/// Connects over TLS with `alpn`.
async fn tls_connect(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// An HTTP/2 connection, driven by a task.
async fn h2_connect(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> Result<h2::client::SendRequest<Bytes>, String> {
    let tls = tls_connect(addr, config).await?;
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        // A browser's connection window (Chromium: 15 MiB). With the
        // protocol's default 64 KiB, this client library closes a
        // connection that holds more than about 170 unread small DATA
        // frames (its defense against small-frame floods), and a burst to
        // 100 streams of one connection is just that.
        .initial_connection_window_size(15 << 20)
        .handshake(tls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(send)
}

/// Publishes `events` updates over one HTTP/1.1 keep-alive connection
/// (TLS when `config` is given), with up to `window` requests in flight.
async fn publish(
    addr: SocketAddr,
    config: Option<&Arc<rustls::ClientConfig>>,
    events: usize,
    window: usize,
    rate: f64,
) -> Result<(), String> {
    let start = tokio::time::Instant::now();
    let io: Box<dyn AsyncReadWrite> = match config {
        Some(config) => Box::new(tls_connect(addr, config).await?),
        None => Box::new(TcpStream::connect(addr).await.map_err(|e| e.to_string())?),
    };
    let mut io = tokio::io::BufStream::new(io);
    let mut sent = 0;
    let mut answered = 0;
    while answered < events {
        while sent < events && sent - answered < window.max(1) {
            if rate > 0.0 {
                tokio::time::sleep_until(start + Duration::from_secs_f64(sent as f64 / rate)).await;
            }
            let body = format!("topic=load&data=ev{sent}");
            let request = format!(
                "POST /.well-known/mercure HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            io.write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            sent += 1;
        }
        io.flush().await.map_err(|e| e.to_string())?;
        read_answer(&mut io).await?;
        answered += 1;
    }
    Ok(())
}

/// Reads one publish answer: a head with Content-Length, then the id.
async fn read_answer<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut tokio::io::BufStream<S>,
) -> Result<(), String> {
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(io, &mut line)
            .await
            .map_err(|e| e.to_string())?;
        if line.is_empty() {
            return Err("the publish connection closed".into());
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("publish: {head}"));
    }
    let mut body = vec![0u8; length];
    io.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    Ok(())
}

trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

async fn run(cli: Cli) -> Result<serde_json::Value, String> {
    let dir = std::env::temp_dir().join(format!("sse-tls-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (cert, key, roots) = certificate(&dir)?;
    let tls = cli.mode != Mode::Http1;
    let hub = start_hub(&cli.sse, tls.then_some((&cert, &key)), dir)?;
    let pid = hub.child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(pid);
    let counter = Arc::new(Counter::default());
    let n = cli.subscribers;
    let h1_config = client_config(&roots, &[b"http/1.1"]);
    let h2_config = client_config(&roots, &[b"h2"]);
    let started = Instant::now();
    let mut h2_conns = Vec::new();
    let mut rss_connections = None;
    match cli.mode {
        Mode::Http1 | Mode::Tls => {
            let opened = Arc::new(tokio::sync::Semaphore::new(256));
            let mut tasks = Vec::new();
            for _ in 0..n {
                let permit = Arc::clone(&opened);
                let counter = Arc::clone(&counter);
                let config = h1_config.clone();
                let addr = hub.addr;
                let events = cli.events;
                tasks.push(tokio::spawn(async move {
                    let _permit = permit.acquire().await;
                    if tls {
                        let io = tls_connect(addr, &config).await?;
                        subscribe_http1(io, events, counter).await
                    } else {
                        let io = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
                        subscribe_http1(io, events, counter).await
                    }
                }));
            }
            for task in tasks {
                tokio::time::timeout(PHASE_LIMIT, task)
                    .await
                    .map_err(|_| "subscribing took too long")?
                    .map_err(|e| e.to_string())??;
            }
        }
        Mode::H2 => {
            let per = cli.per_connection.max(1);
            let connections = n.div_ceil(per);
            for _ in 0..connections {
                let mut send = h2_connect(hub.addr, &h2_config).await?;
                subscribe_h2(&mut send, 1, cli.events, &counter).await?;
                h2_conns.push(send);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            rss_connections = Some(rss_kib(pid));
            let mut left = n - connections;
            for send in &mut h2_conns {
                let streams = left.min(per - 1);
                subscribe_h2(send, streams, cli.events, &counter).await?;
                left -= streams;
            }
        }
    }
    let established_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = rss_kib(pid);
    let per_subscriber = (rss_after.saturating_sub(rss_before)) as f64 / n as f64;
    let mut record = json!({
        "mode": format!("{:?}", cli.mode).to_lowercase(),
        "subscribers": n,
        "established_s": established_s,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "kib_per_subscriber": per_subscriber,
    });
    if let Some(rss_connections) = rss_connections {
        let connections = n.div_ceil(cli.per_connection.max(1));
        record["connections"] = json!(connections);
        record["kib_per_connection"] =
            json!((rss_connections.saturating_sub(rss_before)) as f64 / connections as f64);
        record["kib_per_stream_beyond_its_connection"] = json!(
            (rss_after.saturating_sub(rss_connections)) as f64 / (n - connections).max(1) as f64
        );
    }
    if cli.events > 0 {
        let cpu_before = cpu_seconds(pid);
        let burst = Instant::now();
        let config = tls.then_some(&h1_config);
        publish(hub.addr, config, cli.events, cli.window, cli.rate).await?;
        let deadline = Instant::now() + PHASE_LIMIT;
        while counter.complete.load(Ordering::SeqCst) < n {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} of {n} subscribers got every event ({} of {} deliveries, {} bytes; a stream ended early: {:?})",
                    counter.complete.load(Ordering::SeqCst),
                    counter.received.load(Ordering::SeqCst),
                    n * cli.events,
                    counter.bytes.load(Ordering::SeqCst),
                    counter.ended.lock().expect("not poisoned")
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let wall = burst.elapsed().as_secs_f64();
        let cpu = cpu_seconds(pid) - cpu_before;
        let delivered = (n * cli.events) as f64;
        record["events"] = json!(cli.events);
        record["window"] = json!(cli.window);
        record["rate"] = json!(cli.rate);
        record["burst_wall_s"] = json!(wall);
        record["burst_hub_cpu_s"] = json!(cpu);
        record["deliveries_per_hub_cpu_s"] = json!(if cpu > 0.0 { delivered / cpu } else { 0.0 });
    }
    drop(h2_conns);
    drop(hub);
    Ok(record)
}
