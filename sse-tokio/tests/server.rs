//! The server side over real sockets on 127.0.0.1: the lean HTTP/1.1 path
//! (`read_request` + `serve_stream`) and the hyper/axum body
//! (`EventStream`), each with a raw TCP client that checks the bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sse_proto::http1::{BodyDecoder, ResponseHead, ResponseParser};
use sse_proto::{Decoder, Event};
use sse_tokio::server::{
    Broker, BrokerConfig, CACHE_CONTROL, Cursor, LOST_EVENT_TYPE, ServeConfig, StreamConfig,
    StreamEnd, Subscription, Update, read_request, serve_stream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// The topic a request asks for: `?topic=T`, `*` when absent.
fn topic_of(target: &str) -> String {
    target
        .split_once("topic=")
        .map_or("*", |(_, t)| t.split('&').next().unwrap_or("*"))
        .to_string()
}

/// A server on the lean path; counts the streams being served.
struct LeanServer {
    addr: SocketAddr,
    broker: Broker,
    live: Arc<AtomicUsize>,
    ends: Arc<std::sync::Mutex<Vec<StreamEnd>>>,
}

async fn lean_server(broker: Broker, config: ServeConfig) -> LeanServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let live = Arc::new(AtomicUsize::new(0));
    let ends = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = LeanServer {
        addr,
        broker: broker.clone(),
        live: live.clone(),
        ends: ends.clone(),
    };
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let broker = broker.clone();
            let config = config.clone();
            let live = live.clone();
            let ends = ends.clone();
            live.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok((request, _)) = read_request(&mut socket, Default::default()).await {
                    let cursor = Cursor::from_last_event_id(request.last_event_id());
                    let subscriber = broker.subscribe(
                        Subscription::new([topic_of(request.target())]),
                        cursor,
                        Instant::now(),
                    );
                    if let Ok(end) = serve_stream(&mut socket, &request, subscriber, &config).await
                    {
                        ends.lock().unwrap().push(end);
                    }
                }
                live.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    server
}

/// A raw client: sends a request, parses the head and the body, decodes
/// events, and keeps the decoded body text.
struct Client {
    socket: TcpStream,
    buf: BytesMut,
    head: ResponseHead,
    body: BodyDecoder,
    gunzip: Option<flate2::Decompress>,
    text: Vec<u8>,
    decoder: Decoder,
    events: std::collections::VecDeque<Event>,
    ended: bool,
}

impl Client {
    async fn connect(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Client {
        Client::connect_version(addr, target, headers, "1.1").await
    }

    async fn connect_version(
        addr: SocketAddr,
        target: &str,
        headers: &[(&str, &str)],
        version: &str,
    ) -> Client {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let mut request = format!("GET {target} HTTP/{version}\r\nHost: test\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut buf = BytesMut::with_capacity(4096);
        let mut parser = ResponseParser::new();
        let head = loop {
            let n = timeout(WAIT, socket.read_buf(&mut buf))
                .await
                .expect("no response head")
                .unwrap();
            assert!(n > 0, "closed before the head");
            if let Some(head) = parser.parse_buf(&mut buf).unwrap() {
                break head;
            }
        };
        let body = BodyDecoder::new(head.body_kind("GET").unwrap());
        let gunzip = (head.header_str("content-encoding") == Some("gzip"))
            .then(|| flate2::Decompress::new_gzip(15));
        Client {
            socket,
            buf,
            head,
            body,
            gunzip,
            text: Vec::new(),
            decoder: Decoder::new(),
            events: Default::default(),
            ended: false,
        }
    }

    /// Reads once more (waiting up to `wait`); false at the end of the body
    /// or on timeout.
    async fn pump(&mut self, wait: Duration) -> bool {
        if self.ended {
            return false;
        }
        loop {
            if let Some(piece) = self.body.decode(&mut self.buf).unwrap() {
                self.take(piece);
                return true;
            }
            if self.body.is_done() {
                self.ended = true;
                return false;
            }
            match timeout(wait, self.socket.read_buf(&mut self.buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.ended = true;
                    let _ = self.body.handle_eof();
                    return false;
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    fn take(&mut self, piece: Bytes) {
        let plain = match &mut self.gunzip {
            None => piece.to_vec(),
            Some(z) => {
                let mut out = Vec::with_capacity(piece.len() * 10 + 1024);
                let mut input = &piece[..];
                loop {
                    let before = z.total_in();
                    z.decompress_vec(input, &mut out, flate2::FlushDecompress::Sync)
                        .unwrap();
                    input = &input[(z.total_in() - before) as usize..];
                    if input.is_empty() {
                        break;
                    }
                    out.reserve(out.capacity());
                }
                out
            }
        };
        self.text.extend_from_slice(&plain);
        self.decoder.handle_bytes(&plain);
        while let Some(event) = self.decoder.poll_event().unwrap() {
            self.events.push_back(event);
        }
    }

    async fn event(&mut self) -> Event {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(event) = self.events.pop_front() {
                return event;
            }
            assert!(Instant::now() < deadline, "no event in time");
            assert!(
                self.pump(WAIT).await,
                "the stream ended or stalled before an event"
            );
        }
    }

    async fn events(&mut self, n: usize) -> Vec<Event> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(self.event().await);
        }
        v
    }

    /// Reads until the body ends (or `wait` passes without data).
    async fn read_to_end(&mut self, wait: Duration) {
        while self.pump(wait).await {}
    }
}

fn assert_stream_head(head: &ResponseHead) {
    assert_eq!(head.status(), 200);
    assert_eq!(head.header_str("content-type"), Some("text/event-stream"));
    assert_eq!(head.header_str("cache-control"), Some(CACHE_CONTROL));
    assert_eq!(head.header_str("x-accel-buffering"), Some("no"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_arrive_before_any_event_and_events_follow() {
    let server = lean_server(Broker::new(BrokerConfig::new()), ServeConfig::new()).await;
    let mut client = Client::connect(server.addr, "/events?topic=t", &[]).await;
    assert_stream_head(&client.head);
    assert!(client.head.is_chunked());
    for i in 0..3 {
        server
            .broker
            .publish(
                Update::new("t", format!("line {i}\nsecond"))
                    .event_type("e")
                    .unwrap(),
                Instant::now(),
            )
            .unwrap();
    }
    server
        .broker
        .publish(Update::new("other", "no"), Instant::now())
        .unwrap();
    server
        .broker
        .publish(Update::new("t", "last"), Instant::now())
        .unwrap();
    let events = client.events(4).await;
    let data: Vec<_> = events.iter().map(|e| e.data().to_string()).collect();
    assert_eq!(
        data,
        ["line 0\nsecond", "line 1\nsecond", "line 2\nsecond", "last"]
    );
    assert_eq!(events[0].event_type(), "e");
    assert_eq!(events[3].id(), "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_first_and_keep_alive_after_idleness() {
    let config = ServeConfig::new().stream(
        StreamConfig::new()
            .heartbeat(Some(Duration::from_millis(200)))
            .retry(Some(Duration::from_millis(2500))),
    );
    let server = lean_server(Broker::new(BrokerConfig::new()), config).await;
    let start = Instant::now();
    let mut client = Client::connect(server.addr, "/events", &[]).await;
    assert!(client.pump(WAIT).await);
    assert_eq!(client.text, b"retry: 2500\n");
    assert_eq!(client.decoder.retry(), Some(Duration::from_millis(2500)));
    assert!(client.pump(WAIT).await);
    let waited = start.elapsed();
    assert_eq!(client.text, b"retry: 2500\n:\n");
    assert!(
        waited >= Duration::from_millis(180),
        "keep-alive too early: {waited:?}"
    );
    // An event restarts the idle clock.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server
        .broker
        .publish(Update::new("x", "y"), Instant::now())
        .unwrap();
    let sent = Instant::now();
    client.event().await;
    assert!(client.pump(WAIT).await);
    assert!(sent.elapsed() >= Duration::from_millis(180));
    assert!(client.text.ends_with(b"data: y\n\n:\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_without_gap_or_duplicate_while_publishing() {
    let broker = Broker::new(BrokerConfig::new());
    let server = lean_server(broker.clone(), ServeConfig::new()).await;
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(
            broker
                .publish(Update::new("t", format!("{i}")), Instant::now())
                .unwrap()
                .id,
        );
    }
    let publisher = {
        let broker = broker.clone();
        tokio::spawn(async move {
            for i in 100..2000 {
                broker
                    .publish(Update::new("t", format!("{i}")), Instant::now())
                    .unwrap();
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut client = Client::connect(
        server.addr,
        "/events?topic=t",
        &[("Last-Event-ID", &ids[41])],
    )
    .await;
    let events = client.events(2000 - 42).await;
    publisher.await.unwrap();
    for (k, event) in events.iter().enumerate() {
        assert_eq!(event.data(), (42 + k).to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_last_event_id_is_signalled_before_the_history() {
    let broker = Broker::new(BrokerConfig::new());
    let server = lean_server(broker.clone(), ServeConfig::new()).await;
    broker
        .publish(Update::new("t", "a"), Instant::now())
        .unwrap();
    broker
        .publish(Update::new("t", "b"), Instant::now())
        .unwrap();
    let mut client =
        Client::connect(server.addr, "/events?topic=t", &[("Last-Event-ID", "gone")]).await;
    let events = client.events(3).await;
    assert_eq!(events[0].event_type(), LOST_EVENT_TYPE);
    assert_eq!(events[0].data(), "gone");
    assert_eq!((events[1].data(), events[2].data()), ("a", "b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_dropped_and_others_get_everything() {
    let broker = Broker::new(BrokerConfig::new().queue(16, 256 * 1024));
    let server = lean_server(broker.clone(), ServeConfig::new()).await;
    // Connects, reads the head, then never reads again.
    let stalled = Client::connect(server.addr, "/events?topic=t", &[]).await;
    let mut reader = Client::connect(server.addr, "/events?topic=t", &[]).await;
    let big = "x".repeat(16 * 1024);
    let reading = tokio::spawn(async move {
        let mut n = 0;
        while n < 400 {
            let e = reader.event().await;
            assert_eq!(e.data().len(), 16 * 1024);
            n += 1;
        }
        n
    });
    let publish_started = Instant::now();
    for _ in 0..400 {
        broker
            .publish(Update::new("t", big.clone()), Instant::now())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(publish_started.elapsed() < Duration::from_secs(8));
    assert_eq!(timeout(WAIT, reading).await.unwrap().unwrap(), 400);
    assert!(broker.stats().lagged >= 1, "{:?}", broker.stats());
    let deadline = Instant::now() + WAIT;
    while !server.ends.lock().unwrap().contains(&StreamEnd::Lagged) {
        assert!(
            Instant::now() < deadline,
            "the lagging stream was not ended: {:?} {:?} live {}",
            server.ends.lock().unwrap(),
            broker.stats(),
            server.live.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stalled);
}

#[cfg(feature = "gzip")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_streams_are_flushed_per_event() {
    let broker = Broker::new(BrokerConfig::new());
    let server = lean_server(
        broker.clone(),
        ServeConfig::new().stream(StreamConfig::new().heartbeat(Some(Duration::from_millis(300)))),
    )
    .await;
    let mut client = Client::connect(
        server.addr,
        "/events?topic=t",
        &[("Accept-Encoding", "br;q=1.0, gzip;q=0.8")],
    )
    .await;
    assert_eq!(client.head.header_str("content-encoding"), Some("gzip"));
    assert_eq!(client.head.header_str("vary"), Some("Accept-Encoding"));
    for i in 0..20 {
        broker
            .publish(
                Update::new("t", format!("event {i} {}", "abc".repeat(i))),
                Instant::now(),
            )
            .unwrap();
        // Each event is readable from what has arrived, before the next
        // one is published.
        let event = client.event().await;
        assert_eq!(event.data(), format!("event {i} {}", "abc".repeat(i)));
    }
    // Keep-alives are compressed and flushed too.
    let before = client.text.len();
    assert!(client.pump(WAIT).await);
    assert_eq!(&client.text[before..], b":\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_a_spread_retry_and_ends_every_stream() {
    let broker = Broker::new(BrokerConfig::new());
    let server = lean_server(broker.clone(), ServeConfig::new()).await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(Client::connect(server.addr, "/events", &[]).await);
    }
    broker
        .publish(Update::new("t", "bye"), Instant::now())
        .unwrap();
    broker.shutdown(Some((Duration::from_secs(1), Duration::from_secs(2))), 7);
    let mut retries = Vec::new();
    for client in &mut clients {
        client.read_to_end(WAIT).await;
        assert!(client.ended, "the body did not end");
        assert!(client.body.is_done(), "no last chunk");
        assert_eq!(client.event().await.data(), "bye");
        let retry = client.decoder.retry().unwrap();
        assert!(retry >= Duration::from_secs(1) && retry < Duration::from_secs(3));
        retries.push(retry);
    }
    retries.sort();
    retries.dedup();
    assert!(retries.len() > 5, "{retries:?}");
    let deadline = Instant::now() + WAIT;
    while server.live.load(Ordering::SeqCst) > 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        server.ends.lock().unwrap().as_slice(),
        [StreamEnd::Shutdown; 10]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_go_away_leave_no_subscriber_or_task_behind() {
    let broker = Broker::new(BrokerConfig::new());
    let server = lean_server(broker.clone(), ServeConfig::new()).await;
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(Client::connect(server.addr, "/events?topic=t", &[]).await);
    }
    assert_eq!(broker.stats().subscribers, 50);
    // Half go away while idle, half in the middle of a stream of events.
    let writer = {
        let broker = broker.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                broker
                    .publish(Update::new("t", format!("{i}")), Instant::now())
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    clients.clear();
    writer.await.unwrap();
    let deadline = Instant::now() + WAIT;
    while broker.stats().subscribers > 0 || server.live.load(Ordering::SeqCst) > 0 {
        assert!(
            Instant::now() < deadline,
            "left behind: {:?}, {} tasks",
            broker.stats(),
            server.live.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        server
            .ends
            .lock()
            .unwrap()
            .iter()
            .all(|e| *e == StreamEnd::ClientClosed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_0_gets_a_close_delimited_body() {
    let broker = Broker::new(BrokerConfig::new());
    let server = lean_server(broker.clone(), ServeConfig::new()).await;
    let mut client = Client::connect_version(server.addr, "/events", &[], "1.0").await;
    assert_stream_head(&client.head);
    assert!(!client.head.is_chunked());
    assert_eq!(client.head.header_str("connection"), Some("close"));
    broker
        .publish(Update::new("t", "old client"), Instant::now())
        .unwrap();
    assert_eq!(client.event().await.data(), "old client");
    broker.shutdown(None, 0);
    client.read_to_end(WAIT).await;
    assert!(client.ended);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut results = Vec::new();
        for _ in 0..3 {
            let (mut socket, _) = listener.accept().await.unwrap();
            let limits = sse_tokio::server::HeadLimits::default().max_head_len(1024);
            results.push(read_request(&mut socket, limits).await.map(|_| ()));
        }
        results
    });
    let mut a = TcpStream::connect(addr).await.unwrap();
    a.write_all(b"GET / HTTP/1.1\r\nX: y\r\n").await.unwrap();
    drop(a);
    let mut b = TcpStream::connect(addr).await.unwrap();
    b.write_all(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        .await
        .unwrap();
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(2000)).as_bytes())
        .await
        .unwrap();
    let results = timeout(WAIT, server).await.unwrap().unwrap();
    let shown: Vec<String> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .map_err(ToString::to_string)
                .err()
                .unwrap_or_default()
        })
        .collect();
    assert!(shown[0].contains("closed"), "{shown:?}");
    assert!(shown[1].contains("header"), "{shown:?}");
    assert!(shown[2].contains("larger than the limit"), "{shown:?}");
    drop((b, c));
}

#[cfg(feature = "axum")]
mod axum_body {
    use super::*;
    use axum::extract::{Query, State};
    use axum::http::HeaderMap;
    use axum::routing::get;
    use sse_tokio::server::EventStream;

    #[derive(serde::Deserialize)]
    struct Params {
        topic: Option<String>,
    }

    async fn events(
        State((broker, config)): State<(Broker, ServeConfig)>,
        Query(params): Query<Params>,
        headers: HeaderMap,
    ) -> EventStream {
        let cursor =
            Cursor::from_last_event_id(headers.get("last-event-id").and_then(|v| v.to_str().ok()));
        let topic = params.topic.unwrap_or_else(|| "*".into());
        let subscriber = broker.subscribe(Subscription::new([topic]), cursor, Instant::now());
        EventStream::new(&headers, subscriber, &config)
    }

    async fn axum_server(broker: Broker, config: ServeConfig) -> SocketAddr {
        let app = axum::Router::new()
            .route("/events", get(events))
            .with_state((broker, config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn axum_serves_headers_replay_and_live_events() {
        let broker = Broker::new(BrokerConfig::new());
        let config =
            ServeConfig::new().stream(StreamConfig::new().retry(Some(Duration::from_millis(1234))));
        let addr = axum_server(broker.clone(), config).await;
        let first = broker
            .publish(Update::new("t", "one"), Instant::now())
            .unwrap();
        broker
            .publish(Update::new("t", "two"), Instant::now())
            .unwrap();
        let mut client =
            Client::connect(addr, "/events?topic=t", &[("Last-Event-ID", &first.id)]).await;
        assert_stream_head(&client.head);
        assert_eq!(client.event().await.data(), "two");
        assert_eq!(client.decoder.retry(), Some(Duration::from_millis(1234)));
        broker
            .publish(Update::new("t", "three"), Instant::now())
            .unwrap();
        assert_eq!(client.event().await.data(), "three");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn axum_keep_alive_and_shutdown() {
        let broker = Broker::new(BrokerConfig::new());
        let config = ServeConfig::new()
            .stream(StreamConfig::new().heartbeat(Some(Duration::from_millis(150))));
        let addr = axum_server(broker.clone(), config).await;
        let mut client = Client::connect(addr, "/events", &[]).await;
        assert!(client.pump(WAIT).await);
        assert_eq!(client.text, b":\n");
        broker.shutdown(Some((Duration::from_secs(2), Duration::ZERO)), 1);
        client.read_to_end(WAIT).await;
        assert!(client.body.is_done());
        assert_eq!(client.decoder.retry(), Some(Duration::from_secs(2)));
    }

    #[cfg(feature = "gzip")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn axum_gzip_is_flushed_per_event() {
        let broker = Broker::new(BrokerConfig::new());
        let addr = axum_server(broker.clone(), ServeConfig::new()).await;
        let mut client = Client::connect(addr, "/events", &[("Accept-Encoding", "gzip")]).await;
        assert_eq!(client.head.header_str("content-encoding"), Some("gzip"));
        for i in 0..10 {
            broker
                .publish(Update::new("t", format!("gz {i}")), Instant::now())
                .unwrap();
            assert_eq!(client.event().await.data(), format!("gz {i}"));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn axum_clients_that_go_away_are_unsubscribed() {
        let broker = Broker::new(BrokerConfig::new());
        let addr = axum_server(broker.clone(), ServeConfig::new()).await;
        let mut clients = Vec::new();
        for _ in 0..20 {
            clients.push(Client::connect(addr, "/events", &[]).await);
        }
        assert_eq!(broker.stats().subscribers, 20);
        clients.clear();
        let deadline = Instant::now() + WAIT;
        // hyper notices a closed connection when it next writes.
        let mut i = 0;
        while broker.stats().subscribers > 0 {
            assert!(Instant::now() < deadline, "{:?}", broker.stats());
            broker
                .publish(Update::new("t", format!("{i}")), Instant::now())
                .unwrap();
            i += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Waits (bounded) until the server reports a stream ended as `end`.
async fn wait_for_end(server: &LeanServer, end: StreamEnd) {
    let deadline = Instant::now() + WAIT;
    while !server.ends.lock().unwrap().contains(&end) {
        assert!(
            Instant::now() < deadline,
            "no stream ended as {end:?}: {:?}",
            server.ends.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_takes_nothing_is_closed_after_the_write_timeout() {
    // A queue deep enough that the stalled client is never cut off for
    // lagging: only the write timeout can end its stream.
    let broker = Broker::new(BrokerConfig::new().queue(100_000, 1 << 30));
    let config = ServeConfig::new().write_timeout(Some(Duration::from_millis(300)));
    let server = lean_server(broker.clone(), config).await;
    let stalled = Client::connect(server.addr, "/events?topic=t", &[]).await;
    // More than the kernel's buffers on both sides hold.
    let big = "x".repeat(256 * 1024);
    for _ in 0..128 {
        broker
            .publish(Update::new("t", big.clone()), Instant::now())
            .unwrap();
    }
    wait_for_end(&server, StreamEnd::WriteTimeout).await;
    assert_eq!(broker.stats().lagged, 0);
    drop(stalled);
    // A client that reads is not bothered by the timeout, however idle.
    let mut reader = Client::connect(server.addr, "/events?topic=t", &[]).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    broker
        .publish(Update::new("t", "still here"), Instant::now())
        .unwrap();
    assert_eq!(reader.event().await.data(), "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_at_its_maximum_lifetime_with_the_given_retry() {
    let broker = Broker::new(BrokerConfig::new());
    let config = ServeConfig::new()
        .max_lifetime(Some(Duration::from_millis(300)))
        .lifetime_retry(Some(Duration::from_millis(1234)));
    let server = lean_server(broker.clone(), config).await;
    let mut client = Client::connect(server.addr, "/events?topic=t", &[]).await;
    broker
        .publish(Update::new("t", "before the end"), Instant::now())
        .unwrap();
    assert_eq!(client.event().await.data(), "before the end");
    client.read_to_end(WAIT).await;
    assert!(
        client.body.is_done(),
        "the body did not end with its last chunk"
    );
    assert_eq!(client.decoder.retry(), Some(Duration::from_millis(1234)));
    wait_for_end(&server, StreamEnd::MaxLifetime).await;
}
