//! The server side over real sockets on 127.0.0.1: a broker, an accept loop
//! serving every connection with `read_request` + `serve_stream`, and raw
//! TCP clients that parse the response head, the body framing and the event
//! stream with `sse-proto`. Every scenario runs twice: once on smol
//! (`smol::block_on`, tasks on `smol::spawn`) and once on async-std
//! (`async_std::task::block_on`, tasks on `async_std::task::spawn`). Every
//! wait is bounded.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::Timer;
use async_net::{TcpListener, TcpStream};
use bytes::{Bytes, BytesMut};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use sse_async_std::server::{
    Broker, BrokerConfig, CACHE_CONTROL, Cursor, HeadError, HeadLimits, LOST_EVENT_TYPE,
    ServeConfig, ServeError, StreamConfig, StreamEnd, Subscription, Update, read_request,
    serve_stream,
};
use sse_proto::http1::{BodyDecoder, BodyKind, ResponseHead, ResponseParser};
use sse_proto::{Decoder, Event, Frame, Str};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How long one read may take before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// `Some(output)`, or `None` when `f` takes longer than `d`.
async fn timeout<T>(d: Duration, f: impl Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(f.await) }, async {
        Timer::after(d).await;
        None
    })
    .await
}

/// Every scenario is bounded: a hang fails instead of blocking CI.
async fn bounded<F: Future>(test: F) -> F::Output {
    timeout(Duration::from_secs(30), Box::pin(test))
        .await
        .expect("test timed out")
}

/// Polls `done` every 5 ms for up to `limit`.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        Timer::after(ms(5)).await;
    }
}

type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// An executor to spawn tasks on: the future it returns waits for the task;
/// dropping it leaves the task running.
#[derive(Clone, Copy)]
struct Rt {
    spawn: fn(Job) -> Job,
}

impl Rt {
    fn spawn(self, task: impl Future<Output = ()> + Send + 'static) -> Job {
        (self.spawn)(Box::pin(task))
    }
}

const SMOL: Rt = Rt {
    spawn: |task| {
        let (done, finished) = smol::channel::bounded::<()>(1);
        smol::spawn(async move {
            task.await;
            drop(done);
        })
        .detach();
        Box::pin(async move {
            let _ = finished.recv().await;
        })
    },
};

const ASYNC_STD: Rt = Rt {
    spawn: |task| Box::pin(async_std::task::spawn(task)),
};

/// Runs each scenario once per executor.
macro_rules! on_both_executors {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod smol_executor {
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    smol::block_on(super::bounded(super::$name(super::SMOL)));
                }
            )*
        }
        mod async_std_executor {
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    async_std::task::block_on(super::bounded(super::$name(super::ASYNC_STD)));
                }
            )*
        }
    };
}

on_both_executors!(
    head_comes_before_any_event,
    heartbeat_after_idleness_and_retry_first,
    replay_seam_while_publishing,
    unknown_last_event_id_replays_everything,
    slow_subscriber_is_disconnected_alone,
    #[cfg(feature = "gzip")]
    gzip_events_are_readable_at_once,
    shutdown_sends_retry_and_ends_the_body,
    client_disconnects_are_noticed,
    http10_gets_a_close_delimited_body,
    bad_request_heads,
    a_socket_that_takes_nothing_is_closed_after_the_write_timeout,
    a_stream_ends_at_its_maximum_lifetime_with_the_given_retry,
);

/// The server under test: an accept loop on a port of 127.0.0.1, serving
/// every connection topic `t` from its `Last-Event-ID`.
struct Server {
    addr: SocketAddr,
    /// `serve_stream` calls that have not returned.
    active: Arc<AtomicUsize>,
    /// What the returned ones returned.
    ends: Arc<Mutex<Vec<Result<StreamEnd, String>>>>,
}

impl Server {
    async fn start(rt: Rt, broker: &Broker, config: ServeConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let active = Arc::new(AtomicUsize::new(0));
        let ends = Arc::new(Mutex::new(Vec::new()));
        let (broker, task_active, task_ends) = (broker.clone(), active.clone(), ends.clone());
        drop(rt.spawn(async move {
            let config = Arc::new(config);
            while let Ok((mut socket, _)) = listener.accept().await {
                let (broker, config) = (broker.clone(), config.clone());
                let (active, ends) = (task_active.clone(), task_ends.clone());
                drop(rt.spawn(async move {
                    let Ok((request, _)) = read_request(&mut socket, HeadLimits::default()).await
                    else {
                        return;
                    };
                    active.fetch_add(1, Ordering::SeqCst);
                    let cursor = Cursor::from_last_event_id(request.last_event_id());
                    let subscriber =
                        broker.subscribe(Subscription::new(["t"]), cursor, Instant::now());
                    let end = serve_stream(&mut socket, &request, subscriber, &config).await;
                    ends.lock().unwrap().push(end.map_err(|e| e.to_string()));
                    active.fetch_sub(1, Ordering::SeqCst);
                }));
            }
        }));
        Server { addr, active, ends }
    }

    fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    fn ends(&self) -> Vec<Result<StreamEnd, String>> {
        self.ends.lock().unwrap().clone()
    }
}

/// A raw HTTP client: the response head, the body framing (and gzip) and
/// the event stream, parsed as bytes arrive.
struct Client {
    socket: TcpStream,
    buf: BytesMut,
    /// Where each read lands (on the heap: futures holding it are large).
    chunk: Box<[u8]>,
    parser: ResponseParser,
    head: Option<ResponseHead>,
    body: Option<BodyDecoder>,
    eof: bool,
    decoder: Decoder,
    #[cfg(feature = "gzip")]
    gunzip: Option<flate2::Decompress>,
}

impl Client {
    /// Connects and sends `request` as it is.
    async fn open(addr: SocketAddr, request: &str) -> Client {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        Client {
            socket,
            buf: BytesMut::new(),
            chunk: vec![0; 32 * 1024].into_boxed_slice(),
            parser: ResponseParser::new(),
            head: None,
            body: None,
            eof: false,
            decoder: Decoder::new(),
            #[cfg(feature = "gzip")]
            gunzip: None,
        }
    }

    /// `GET /events` over HTTP/1.1 with these extra header lines.
    async fn get(addr: SocketAddr, headers: &str) -> Client {
        let request = format!("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n");
        Client::open(addr, &request).await
    }

    /// Reads once more (bounded); false at the end of the stream.
    async fn read_more(&mut self) -> bool {
        let n = timeout(READ_TIMEOUT, self.socket.read(&mut self.chunk))
            .await
            .expect("timed out reading from the server")
            .expect("read failed");
        if n == 0 {
            self.eof = true;
            return false;
        }
        self.buf.extend_from_slice(&self.chunk[..n]);
        true
    }

    /// The response head (read first if need be).
    async fn head(&mut self) -> &ResponseHead {
        while self.head.is_none() {
            if let Some(head) = self.parser.parse_buf(&mut self.buf).unwrap() {
                self.body = Some(BodyDecoder::new(head.body_kind("GET").unwrap()));
                #[cfg(feature = "gzip")]
                if head.header_str("content-encoding") == Some("gzip") {
                    self.gunzip = Some(flate2::Decompress::new_gzip(15));
                }
                self.head = Some(head);
            } else {
                assert!(self.read_more().await, "closed before the response head");
            }
        }
        self.head.as_ref().unwrap()
    }

    /// The next piece of body, unframed (and decompressed); `None` once the
    /// body has ended (with its last chunk when chunked: a chunked body cut
    /// short fails the test).
    async fn body_piece(&mut self) -> Option<Bytes> {
        self.head().await;
        loop {
            let body = self.body.as_mut().unwrap();
            if let Some(piece) = body.decode(&mut self.buf).unwrap() {
                let piece = self.inflate(piece);
                if piece.is_empty() {
                    continue;
                }
                return Some(piece);
            }
            if body.is_done() {
                return None;
            }
            if self.eof || !self.read_more().await {
                self.body
                    .as_mut()
                    .unwrap()
                    .handle_eof()
                    .expect("body cut short");
                return None;
            }
        }
    }

    #[cfg(not(feature = "gzip"))]
    fn inflate(&mut self, piece: Bytes) -> Bytes {
        piece
    }

    #[cfg(feature = "gzip")]
    fn inflate(&mut self, piece: Bytes) -> Bytes {
        let Some(gunzip) = &mut self.gunzip else {
            return piece;
        };
        let mut out = Vec::with_capacity(piece.len() * 4 + 64);
        let mut input = &piece[..];
        loop {
            let before = gunzip.total_in();
            gunzip
                .decompress_vec(input, &mut out, flate2::FlushDecompress::None)
                .unwrap();
            input = &input[(gunzip.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return Bytes::from(out);
            }
            out.reserve(out.capacity());
        }
    }

    /// The next frame of the event stream; `None` at its end.
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.poll_frame().unwrap() {
                return Some(frame);
            }
            if self.decoder.is_eof() {
                return None;
            }
            match self.body_piece().await {
                Some(piece) => self.decoder.handle_chunk(piece),
                None => self.decoder.handle_eof(),
            }
        }
    }

    /// The next event (skipping `retry:`); the stream must not end first.
    async fn event(&mut self) -> Event {
        loop {
            match self.frame().await {
                Some(Frame::Event(event)) => return event,
                Some(_) => {}
                None => panic!("the stream ended before an event"),
            }
        }
    }
}

/// Scenario 1: the head (with every field an event stream needs) is sent
/// at once, before any event exists; then each event arrives as one chunk.
async fn head_comes_before_any_event(rt: Rt) {
    let broker = Broker::new(BrokerConfig::new());
    let server = Server::start(rt, &broker, ServeConfig::new()).await;
    let mut client = Client::get(server.addr, "").await;
    let head = client.head().await.clone();
    assert_eq!(broker.stats().published, 0);
    assert_eq!(head.status(), 200);
    assert_eq!(head.header_str("content-type"), Some("text/event-stream"));
    assert_eq!(head.header_str("cache-control"), Some(CACHE_CONTROL));
    assert_eq!(head.header_str("x-accel-buffering"), Some("no"));
    assert_eq!(head.header_str("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header_str("content-encoding"), None);
    assert_eq!(head.body_kind("GET").unwrap(), BodyKind::Chunked);
    // Subscribed before the head was written.
    assert_eq!(broker.stats().subscribers, 1);

    broker
        .publish(Update::new("t", "hello"), Instant::now())
        .unwrap();
    broker
        .publish(Update::new("other", "not for t"), Instant::now())
        .unwrap();
    broker
        .publish(Update::new("t", "world"), Instant::now())
        .unwrap();
    // No `retry:` unless configured: the first thing in the body is the event.
    let first = client.body_piece().await.unwrap();
    assert!(first.starts_with(b"id: 1\ndata: hello\n\n"), "{first:?}");
    client.decoder.handle_chunk(first);
    let a = client.event().await;
    let b = client.event().await;
    assert_eq!((a.id(), a.data()), ("1", "hello"));
    assert_eq!((b.id(), b.data()), ("3", "world"));
}

/// Scenario 2: `retry:` first, then a keep-alive comment after each 100 ms
/// of idleness, and not before; an event restarts the clock.
async fn heartbeat_after_idleness_and_retry_first(rt: Rt) {
    let broker = Broker::new(BrokerConfig::new());
    let stream = StreamConfig::new()
        .heartbeat(Some(ms(100)))
        .retry(Some(ms(3000)));
    let server = Server::start(rt, &broker, ServeConfig::new().stream(stream)).await;
    let start = Instant::now();
    let mut client = Client::get(server.addr, "").await;
    assert_eq!(
        client.body_piece().await.as_deref(),
        Some(&b"retry: 3000\n"[..])
    );
    let beat = client.body_piece().await.unwrap();
    let first = start.elapsed();
    assert_eq!(&beat[..], b":\n");
    assert!(first >= ms(80), "keep-alive after only {first:?}");
    assert!(first < ms(2000), "keep-alive after {first:?}");

    let beat = client.body_piece().await.unwrap();
    let second = start.elapsed() - first;
    assert_eq!(&beat[..], b":\n");
    assert!(second >= ms(80), "second keep-alive after only {second:?}");

    // Right after a keep-alive, an event: the next keep-alive is 100 ms
    // after the event, not after the keep-alive.
    let published = Instant::now();
    broker
        .publish(Update::new("t", "tick"), Instant::now())
        .unwrap();
    assert_eq!(
        client.body_piece().await.as_deref(),
        Some(&b"id: 1\ndata: tick\n\n"[..])
    );
    let beat = client.body_piece().await.unwrap();
    let after = published.elapsed();
    assert_eq!(&beat[..], b":\n");
    assert!(after >= ms(80), "keep-alive {after:?} after an event");
}

/// Scenario 3: resuming from `Last-Event-ID` while another task publishes:
/// every later event exactly once, in order.
async fn replay_seam_while_publishing(rt: Rt) {
    const BEFORE: u64 = 50;
    const TOTAL: u64 = 1000;
    const RESUME: u64 = 20;
    let broker = Broker::new(BrokerConfig::new());
    let server = Server::start(rt, &broker, ServeConfig::new()).await;
    for i in 1..=BEFORE {
        broker
            .publish(Update::new("t", i.to_string()), Instant::now())
            .unwrap();
    }
    let publisher = {
        let broker = broker.clone();
        rt.spawn(async move {
            for i in BEFORE + 1..=TOTAL {
                broker
                    .publish(Update::new("t", i.to_string()), Instant::now())
                    .unwrap();
                if i % 4 == 0 {
                    Timer::after(ms(1)).await;
                }
            }
        })
    };
    // Subscribe while the publisher is running.
    wait_until("the publisher to start", ms(2000), || {
        broker.stats().published > BEFORE + 10
    })
    .await;
    let mut client = Client::get(server.addr, &format!("Last-Event-ID: {RESUME}\r\n")).await;
    client.head().await;
    let at_subscribe = broker.stats().published;
    assert!(
        at_subscribe < TOTAL,
        "the publisher was done before the subscribe"
    );
    for want in RESUME + 1..=TOTAL {
        let event = client.event().await;
        assert_eq!(event.id(), want.to_string(), "gap or duplicate");
        assert_eq!(event.data(), want.to_string());
    }
    timeout(READ_TIMEOUT, publisher)
        .await
        .expect("publisher stuck");
    let stats = broker.stats();
    assert_eq!((stats.replays, stats.replay_misses), (1, 0));
    // Nothing more than the published events.
    broker
        .publish(Update::new("t", "last"), Instant::now())
        .unwrap();
    assert_eq!(client.event().await.data(), "last");
    eprintln!("subscribed after {at_subscribe} of {TOTAL} events were published");
}

/// Scenario 4: a cursor the history does not hold: an event of the
/// reserved "lost" type, then all retained history, then live events.
async fn unknown_last_event_id_replays_everything(rt: Rt) {
    let broker = Broker::new(BrokerConfig::new());
    let server = Server::start(rt, &broker, ServeConfig::new()).await;
    for i in 1..=5 {
        broker
            .publish(Update::new("t", format!("e{i}")), Instant::now())
            .unwrap();
    }
    let mut client = Client::get(server.addr, "Last-Event-ID: gone-42\r\n").await;
    let lost = client.event().await;
    assert_eq!(lost.event_type(), LOST_EVENT_TYPE);
    assert_eq!(lost.data(), "gone-42");
    for i in 1..=5 {
        let event = client.event().await;
        assert_eq!(
            (event.event_type(), event.id()),
            ("message", &*i.to_string())
        );
        assert_eq!(event.data(), format!("e{i}"));
    }
    broker
        .publish(Update::new("t", "live"), Instant::now())
        .unwrap();
    let live = client.event().await;
    assert_eq!((live.id(), live.data()), ("6", "live"));
    assert_eq!(broker.stats().replay_misses, 1);
}

/// Scenario 5: a client that never reads is disconnected by the broker
/// (small queue, large events) while a reading one gets every event and
/// publishing never waits.
async fn slow_subscriber_is_disconnected_alone(rt: Rt) {
    const MIN_EVENTS: u64 = 300;
    const MAX_EVENTS: u64 = 4000;
    let broker = Broker::new(BrokerConfig::new().queue(16, 64 * 1024));
    let server = Server::start(rt, &broker, ServeConfig::new()).await;

    // Never reads, not even the head.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    wait_until("the slow subscriber", ms(2000), || {
        broker.stats().subscribers == 1
    })
    .await;

    // Reads everything and reports each id.
    let (acks, acked) = smol::channel::unbounded::<u64>();
    let mut fast = Client::get(server.addr, "").await;
    fast.head().await;
    assert_eq!(broker.stats().subscribers, 2);
    let reader = rt.spawn(async move {
        loop {
            let event = fast.event().await;
            if event.data() == "end" {
                return;
            }
            assert_eq!(event.data().len(), 16 * 1024);
            if acks.send(event.id().parse().unwrap()).await.is_err() {
                return;
            }
        }
    });

    let payload = Str::from("x".repeat(16 * 1024));
    let mut slowest_publish = Duration::ZERO;
    let mut received = 0;
    let mut published = 0;
    let mut first_lag = None;
    while published < MAX_EVENTS && (published < MIN_EVENTS || broker.stats().lagged == 0) {
        let started = Instant::now();
        let id = broker
            .publish(Update::new("t", payload.clone()), Instant::now())
            .unwrap()
            .id;
        slowest_publish = slowest_publish.max(started.elapsed());
        published += 1;
        assert_eq!(&*id, published.to_string());
        if first_lag.is_none() && broker.stats().lagged > 0 {
            first_lag = Some(published);
        }
        // Keep the reading subscriber within its queue: at most two events
        // ahead of what it has read.
        while published - received > 2 {
            let id = timeout(READ_TIMEOUT, acked.recv())
                .await
                .expect("the reading subscriber stalled")
                .expect("the reading subscriber ended");
            assert_eq!(id, received + 1, "gap or duplicate");
            received = id;
        }
    }
    while received < published {
        let id = timeout(READ_TIMEOUT, acked.recv())
            .await
            .expect("the reading subscriber stalled")
            .unwrap();
        assert_eq!(id, received + 1, "gap or duplicate");
        received = id;
    }
    let stats = broker.stats();
    assert!(
        stats.lagged >= 1,
        "the slow subscriber was not disconnected"
    );
    assert_eq!(stats.lagged, 1, "the reading subscriber lagged too");
    assert_eq!(stats.subscribers, 1, "only the reading one is left");
    assert!(
        slowest_publish < ms(250),
        "a publish took {slowest_publish:?}"
    );
    eprintln!("lagged at event {first_lag:?}; slowest publish {slowest_publish:?}");

    broker
        .publish(
            Update::new("t", "end").event_type("end").unwrap(),
            Instant::now(),
        )
        .unwrap();
    timeout(READ_TIMEOUT, reader).await.expect("reader stuck");
    // The slow client is still connected: its stream is cut off anyway.
    wait_until("the slow stream to be cut off", ms(2000), || {
        server
            .ends()
            .iter()
            .any(|end| matches!(end, Ok(StreamEnd::Lagged)))
    })
    .await;
    drop(slow);
    wait_until("both streams to end", ms(2000), || server.active() == 0).await;
    for end in server.ends() {
        assert!(
            matches!(end, Ok(StreamEnd::ClientClosed | StreamEnd::Lagged)),
            "{end:?}"
        );
    }
}

/// Scenario 6: gzip is negotiated, and each event is decompressible from
/// what has arrived before the next one is published.
#[cfg(feature = "gzip")]
async fn gzip_events_are_readable_at_once(rt: Rt) {
    let broker = Broker::new(BrokerConfig::new());
    let server = Server::start(rt, &broker, ServeConfig::new().gzip(true)).await;
    let mut client = Client::get(server.addr, "Accept-Encoding: gzip, deflate\r\n").await;
    let head = client.head().await;
    assert_eq!(head.header_str("content-encoding"), Some("gzip"));
    assert_eq!(head.header_str("vary"), Some("Accept-Encoding"));
    assert_eq!(head.header_str("transfer-encoding"), Some("chunked"));
    for i in 1..=30 {
        let data = format!("event number {i}: {}", "abc".repeat(i));
        broker
            .publish(Update::new("t", data.clone()), Instant::now())
            .unwrap();
        let event = client.event().await;
        assert_eq!((event.id(), event.data()), (&*i.to_string(), &*data));
    }
    // It was compressed: the decompressor took every byte of the body.
    assert!(client.gunzip.as_ref().unwrap().total_in() > 0);
    // Without the client asking, no gzip.
    let mut plain = Client::get(server.addr, "").await;
    assert_eq!(plain.head().await.header_str("content-encoding"), None);
    // Keep-alives of an idle gzip stream decompress as such, and events
    // after them still do.
    let stream = StreamConfig::new().heartbeat(Some(ms(100)));
    let beating = Server::start(rt, &broker, ServeConfig::new().stream(stream)).await;
    let mut idle = Client::get(beating.addr, "Accept-Encoding: gzip\r\n").await;
    assert_eq!(
        idle.head().await.header_str("content-encoding"),
        Some("gzip")
    );
    for round in 0..3 {
        let data = format!("after {round} keep-alives");
        broker
            .publish(Update::new("t", data.clone()), Instant::now())
            .unwrap();
        let piece = idle.body_piece().await.unwrap();
        assert!(
            piece.ends_with(format!("data: {data}\n\n").as_bytes()),
            "{piece:?}"
        );
        assert_eq!(idle.body_piece().await.as_deref(), Some(&b":\n"[..]));
        assert_eq!(idle.body_piece().await.as_deref(), Some(&b":\n"[..]));
    }
    // The end of the stream ends the gzip member too (its checksum is
    // checked by the decompressor).
    broker.shutdown(None, 0);
    // The first two have not read the last three events yet.
    for (client, left) in [(&mut client, 3), (&mut plain, 3), (&mut idle, 0)] {
        let mut events = 0;
        while let Some(frame) = client.frame().await {
            assert!(matches!(frame, Frame::Event(_)), "{frame:?}");
            events += 1;
        }
        assert_eq!(events, left);
        assert!(client.body.as_ref().unwrap().is_done(), "no last chunk");
    }
}

/// Scenario 7: on shutdown every stream gets its randomised `retry:` and
/// then the end of the chunked body; `serve_stream` says why it ended.
async fn shutdown_sends_retry_and_ends_the_body(rt: Rt) {
    let broker = Broker::new(BrokerConfig::new());
    let server = Server::start(rt, &broker, ServeConfig::new()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = Client::get(server.addr, "").await;
        client.head().await;
        clients.push(client);
    }
    broker
        .publish(Update::new("t", "before"), Instant::now())
        .unwrap();
    for client in &mut clients {
        assert_eq!(client.event().await.data(), "before");
    }
    broker.shutdown(Some((ms(1000), ms(2000))), 7);
    for client in &mut clients {
        match client.frame().await {
            Some(Frame::Retry(retry)) => {
                assert!((ms(1000)..ms(3000)).contains(&retry), "retry {retry:?}")
            }
            other => panic!("expected a retry, got {other:?}"),
        }
        assert_eq!(client.frame().await, None);
        assert!(client.body.as_ref().unwrap().is_done(), "no last chunk");
        // The last chunk is the last thing sent: then the server closes.
        assert!(client.buf.is_empty());
        assert!(!client.read_more().await, "bytes after the last chunk");
    }
    wait_until("the streams to end", ms(2000), || server.active() == 0).await;
    assert_eq!(server.ends(), vec![Ok(StreamEnd::Shutdown); 3]);
    assert!(
        broker
            .publish(Update::new("t", "after"), Instant::now())
            .is_err()
    );
}

/// Scenario 8: clients that go away are noticed without any event being
/// written: their subscribers are dropped and their tasks end.
async fn client_disconnects_are_noticed(rt: Rt) {
    const CLIENTS: usize = 50;
    let broker = Broker::new(BrokerConfig::new());
    let server = Server::start(rt, &broker, ServeConfig::new()).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = Client::get(server.addr, "").await;
        client.head().await;
        clients.push(client);
    }
    assert_eq!(broker.stats().subscribers, CLIENTS);
    assert_eq!(server.active(), CLIENTS);
    drop(clients);
    wait_until("every subscriber to go", ms(2000), || {
        broker.stats().subscribers == 0 && server.active() == 0
    })
    .await;
    assert_eq!(server.ends(), vec![Ok(StreamEnd::ClientClosed); CLIENTS]);
}

/// Scenario 9: an HTTP/1.0 client gets a close-delimited body.
async fn http10_gets_a_close_delimited_body(rt: Rt) {
    let broker = Broker::new(BrokerConfig::new());
    let server = Server::start(rt, &broker, ServeConfig::new()).await;
    let mut client = Client::open(server.addr, "GET /events HTTP/1.0\r\n\r\n").await;
    let head = client.head().await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.header_str("transfer-encoding"), None);
    assert_eq!(head.header_str("content-length"), None);
    assert_eq!(head.header_str("connection"), Some("close"));
    assert_eq!(head.body_kind("GET").unwrap(), BodyKind::CloseDelimited);
    broker
        .publish(Update::new("t", "hello"), Instant::now())
        .unwrap();
    // The bytes as they are on the wire: no chunk framing.
    assert_eq!(
        client.body_piece().await.as_deref(),
        Some(&b"id: 1\ndata: hello\n\n"[..])
    );
    broker.shutdown(Some((ms(500), Duration::ZERO)), 1);
    assert_eq!(
        client.body_piece().await.as_deref(),
        Some(&b"retry: 500\n"[..])
    );
    // The server closes the connection to end the body.
    assert_eq!(client.body_piece().await, None);
    assert!(client.eof);
    wait_until("the stream to end", ms(2000), || server.active() == 0).await;
    assert_eq!(server.ends(), vec![Ok(StreamEnd::Shutdown)]);
}

/// What a test expects of an error.
type ErrorCheck = fn(&ServeError) -> bool;

/// `read_request` on a malformed head, an oversized one, and a peer that
/// closes first.
async fn bad_request_heads(rt: Rt) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cases: [(&[u8], ErrorCheck); 3] = [
        (b"GET /events HTTP/9.9\r\n\r\n", |e| {
            matches!(e, ServeError::Head(HeadError::InvalidVersion))
        }),
        (&[b'a'; 8192], |e| {
            matches!(
                e,
                ServeError::Head(HeadError::TooLarge | HeadError::InvalidRequestLine)
            )
        }),
        (b"GET /events HT", |e| matches!(e, ServeError::Closed)),
    ];
    for (request, expected) in cases {
        let client = rt.spawn(async move {
            let mut socket = TcpStream::connect(addr).await.unwrap();
            // The server may give up on an oversized head and drop the
            // socket with bytes unread, which resets the connection: the
            // write and the close may then fail, and that is expected.
            let _ = socket.write_all(request).await;
            let _ = socket.close().await;
            // Hold the socket until the server has read it all.
            let mut rest = Vec::new();
            let _ = timeout(READ_TIMEOUT, socket.read_to_end(&mut rest)).await;
        });
        let (mut socket, _) = listener.accept().await.unwrap();
        let limits = HeadLimits::default().max_head_len(4096);
        let error = read_request(&mut socket, limits).await.unwrap_err();
        assert!(
            expected(&error),
            "{:?}: {error:?}",
            String::from_utf8_lossy(request)
        );
        drop(socket);
        timeout(READ_TIMEOUT, client).await.expect("client stuck");
    }
    // A whole head, and what follows it, come back as such.
    let client = rt.spawn(async move {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket
            .write_all(b"POST /publish?topic=t HTTP/1.1\r\nContent-Length: 5\r\nLast-Event-ID: 9\r\n\r\nhello")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = timeout(READ_TIMEOUT, socket.read_to_end(&mut rest)).await;
    });
    let (mut socket, _) = listener.accept().await.unwrap();
    let (head, mut body) = read_request(&mut socket, HeadLimits::default())
        .await
        .unwrap();
    assert_eq!(
        (head.method(), head.path(), head.query()),
        ("POST", "/publish", Some("topic=t"))
    );
    assert_eq!(head.last_event_id(), Some("9"));
    while body.len() < 5 {
        let mut more = [0u8; 16];
        let n = socket.read(&mut more).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&more[..n]);
    }
    assert_eq!(&body[..], b"hello");
    drop(socket);
    timeout(READ_TIMEOUT, client).await.expect("client stuck");
}

/// Scenario 11: a client that stops reading while events keep coming is
/// closed once its socket has taken nothing for the write timeout (its
/// queue is deep enough that it is never cut off for lagging); a client
/// that reads is not bothered by the timeout, however idle.
async fn a_socket_that_takes_nothing_is_closed_after_the_write_timeout(rt: Rt) {
    let broker = Broker::new(BrokerConfig::new().queue(100_000, 1 << 30));
    let config = ServeConfig::new().write_timeout(Some(ms(300)));
    let server = Server::start(rt, &broker, config).await;
    let mut stalled = Client::get(server.addr, "").await;
    stalled.head().await;
    // More than the kernel's buffers on both sides hold.
    let big = "x".repeat(256 * 1024);
    for _ in 0..128 {
        broker
            .publish(Update::new("t", big.clone()), Instant::now())
            .unwrap();
    }
    wait_until("the write timeout", Duration::from_secs(10), || {
        server.ends().contains(&Ok(StreamEnd::WriteTimeout))
    })
    .await;
    assert_eq!(broker.stats().lagged, 0);
    drop(stalled);
    let mut reader = Client::get(server.addr, "").await;
    reader.head().await;
    Timer::after(ms(600)).await;
    broker
        .publish(Update::new("t", "still here"), Instant::now())
        .unwrap();
    assert_eq!(reader.event().await.data(), "still here");
}

/// Scenario 12: a stream ends at its maximum lifetime, with the `retry:`
/// it was given and the body's last chunk.
async fn a_stream_ends_at_its_maximum_lifetime_with_the_given_retry(rt: Rt) {
    let broker = Broker::new(BrokerConfig::new());
    let config = ServeConfig::new()
        .max_lifetime(Some(ms(300)))
        .lifetime_retry(Some(ms(1234)));
    let server = Server::start(rt, &broker, config).await;
    let mut client = Client::get(server.addr, "").await;
    client.head().await;
    broker
        .publish(Update::new("t", "before the end"), Instant::now())
        .unwrap();
    assert_eq!(client.event().await.data(), "before the end");
    let mut retry = None;
    while let Some(frame) = client.frame().await {
        if let Frame::Retry(r) = frame {
            retry = Some(r);
        }
    }
    assert_eq!(retry, Some(ms(1234)));
    assert!(client.body.as_ref().unwrap().is_done(), "no last chunk");
    wait_until("the stream's end", Duration::from_secs(5), || {
        server.ends().contains(&Ok(StreamEnd::MaxLifetime))
    })
    .await;
}
