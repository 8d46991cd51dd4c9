//! The server side over real sockets on 127.0.0.1, on tokio, smol and
//! async-std: a broker, an accept loop serving every connection with
//! `read_request` + `serve_stream`, and raw HTTP clients that parse the
//! response head, the body framing (and gzip) and the event stream with
//! `sse-proto`. Every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{Listener, Rt, WAIT, close, ms, on_every_runtime, read, write_all};
use sse_driver::rt::Runtime;
use sse_driver::server::{
    Broker, BrokerConfig, CACHE_CONTROL, Cursor, HeadError, HeadLimits, LOST_EVENT_TYPE,
    ServeConfig, ServeError, StreamConfig, StreamEnd, Subscription, Update, read_request,
    serve_stream,
};
use sse_proto::http1::{BodyDecoder, BodyKind, ResponseHead, ResponseParser};
use sse_proto::{Decoder, Event, Frame, Str};

on_every_runtime!(
    the_head_comes_before_any_event_and_events_follow,
    retry_first_then_keep_alives_after_idleness,
    a_resume_while_publishing_has_no_gap_or_duplicate,
    an_unknown_last_event_id_is_signalled_before_the_history,
    a_client_that_does_not_read_is_dropped_alone,
    gzip_streams_are_flushed_per_event,
    shutdown_sends_a_spread_retry_and_ends_every_stream,
    idle_clients_that_go_away_leave_nothing_behind,
    clients_that_go_away_mid_stream_leave_nothing_behind,
    http_1_0_gets_a_close_delimited_body,
    malformed_request_heads_are_reported,
    a_request_head_and_what_follows_come_back,
    a_socket_that_takes_nothing_is_closed_after_the_write_timeout,
    a_stream_ends_at_its_maximum_lifetime_with_the_given_retry,
    a_message_body_is_a_stream_of_byte_chunks_for_any_framework,
);

/// A broker that numbers its ids `1`, `2`, ... (no run prefix), so that the
/// tests can compare the wire with what they expect.
fn numbered() -> BrokerConfig {
    BrokerConfig::new().id_prefix("")
}

/// The topic a request asks for: `?topic=T`, every topic (`*`) without.
fn topic_of(target: &str) -> String {
    target
        .split_once("topic=")
        .map_or("*", |(_, t)| t.split('&').next().unwrap_or("*"))
        .to_string()
}

/// The server under test: an accept loop on a port of 127.0.0.1, serving
/// every connection the topic of its target from its `Last-Event-ID`.
struct Server {
    addr: SocketAddr,
    /// `serve_stream` calls that have not returned.
    active: Arc<AtomicUsize>,
    /// What the returned ones returned.
    ends: Arc<Mutex<Vec<Result<StreamEnd, String>>>>,
}

impl Server {
    /// Starts serving on `rt`.
    fn start<R: Rt>(rt: &R, broker: &Broker, config: ServeConfig) -> Server {
        let listener = Listener::<R>::bind();
        let server = Server {
            addr: listener.addr(),
            active: Arc::default(),
            ends: Arc::default(),
        };
        let (active, ends) = (server.active.clone(), server.ends.clone());
        let (rt_, broker) = (rt.clone(), broker.clone());
        drop(rt.spawn(async move {
            let config = Arc::new(config);
            loop {
                let mut socket = listener.accept().await;
                let (rt, broker, config) = (rt_.clone(), broker.clone(), config.clone());
                let (active, ends) = (active.clone(), ends.clone());
                drop(rt_.spawn(async move {
                    let Ok((request, _)) = read_request(&mut socket, HeadLimits::default()).await
                    else {
                        return;
                    };
                    active.fetch_add(1, Ordering::SeqCst);
                    let cursor = Cursor::from_last_event_id(request.last_event_id());
                    let topic = Subscription::new([topic_of(request.target())]);
                    let subscriber = broker.subscribe(topic, cursor, Instant::now());
                    let driver = rt.driver();
                    let end =
                        serve_stream(&driver, &mut socket, &request, subscriber, &config).await;
                    ends.lock().unwrap().push(end.map_err(|e| e.to_string()));
                    active.fetch_sub(1, Ordering::SeqCst);
                }));
            }
        }));
        server
    }

    /// How many streams are being served.
    fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// How the streams served so far ended.
    fn ends(&self) -> Vec<Result<StreamEnd, String>> {
        self.ends.lock().unwrap().clone()
    }
}

/// Opens a TCP connection to `addr` (bounded).
async fn connect<R: Rt>(rt: &R, addr: SocketAddr) -> <R::Driver as Runtime>::Socket {
    rt.timeout(WAIT, rt.connect(addr))
        .await
        .expect("connecting timed out")
        .unwrap()
}

/// A raw HTTP client: the response head, the body framing (and gzip) and
/// the event stream, parsed as bytes arrive.
struct Client<R: Rt> {
    rt: R,
    socket: <R::Driver as Runtime>::Socket,
    buf: BytesMut,
    /// Where each read lands (on the heap: futures holding it are large).
    chunk: Box<[u8]>,
    parser: ResponseParser,
    head: Option<ResponseHead>,
    body: Option<BodyDecoder>,
    eof: bool,
    /// Every body piece, unframed and decompressed, fed to `decoder` and
    /// kept in `text`.
    decoder: Decoder,
    text: Vec<u8>,
    gunzip: Option<flate2::Decompress>,
}

impl<R: Rt> Client<R> {
    /// Connects and sends `request` as it is.
    async fn open(rt: &R, addr: SocketAddr, request: &str) -> Client<R> {
        let mut socket = connect(rt, addr).await;
        write_all(&mut socket, request.as_bytes()).await.unwrap();
        Client {
            rt: rt.clone(),
            socket,
            buf: BytesMut::new(),
            chunk: vec![0; 32 * 1024].into_boxed_slice(),
            parser: ResponseParser::new(),
            head: None,
            body: None,
            eof: false,
            decoder: Decoder::new(),
            text: Vec::new(),
            gunzip: None,
        }
    }

    /// `GET target` over HTTP/1.1 with these extra header lines.
    async fn get(rt: &R, addr: SocketAddr, target: &str, headers: &str) -> Client<R> {
        let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n");
        Client::open(rt, addr, &request).await
    }

    /// `n` clients of `GET target` that have read their response heads.
    async fn many(rt: &R, addr: SocketAddr, target: &str, n: usize) -> Vec<Client<R>> {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            let mut client = Client::get(rt, addr, target, "").await;
            client.head().await;
            clients.push(client);
        }
        clients
    }

    /// Reads once more (bounded); false at the end of the stream.
    async fn read_more(&mut self) -> bool {
        let n = self
            .rt
            .timeout(WAIT, read(&mut self.socket, &mut self.chunk))
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
                self.text.extend_from_slice(&piece);
                self.decoder.handle_chunk(piece.clone());
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

    /// `piece` decompressed when the body is gzip.
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
            if self.body_piece().await.is_none() {
                self.decoder.handle_eof();
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

    /// The next `n` events.
    async fn events(&mut self, n: usize) -> Vec<Event> {
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            events.push(self.event().await);
        }
        events
    }

    /// Whether the body ended with its last chunk (or, close-delimited,
    /// with the end of the stream).
    fn body_is_done(&self) -> bool {
        self.body.as_ref().is_some_and(BodyDecoder::is_done)
    }
}

/// Publishes `data` on topic `t` now.
fn publish(broker: &Broker, data: impl Into<Str>) -> Str {
    broker
        .publish(Update::new("t", data), Instant::now())
        .unwrap()
        .id
}

/// The head (with every field an event stream needs) is sent at once,
/// before any event exists; then the events of the topic follow, each as
/// one chunk.
async fn the_head_comes_before_any_event_and_events_follow<R: Rt>(rt: R) {
    let broker = Broker::new(numbered());
    let server = Server::start(&rt, &broker, ServeConfig::new());
    let mut client = Client::get(&rt, server.addr, "/events?topic=t", "").await;
    let head = client.head().await.clone();
    assert_eq!(broker.stats().published, 0);
    assert_eq!(head.status(), 200);
    assert_eq!(head.header_str("content-type"), Some("text/event-stream"));
    assert_eq!(head.header_str("cache-control"), Some(CACHE_CONTROL));
    assert_eq!(head.header_str("x-accel-buffering"), Some("no"));
    assert_eq!(head.header_str("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header_str("content-encoding"), None);
    assert_eq!(head.body_kind("GET").unwrap(), BodyKind::Chunked);
    assert!(head.is_chunked());
    // Subscribed before the head was written.
    assert_eq!(broker.stats().subscribers, 1);

    publish(&broker, "hello");
    broker
        .publish(Update::new("other", "not for t"), Instant::now())
        .unwrap();
    publish(&broker, "world");
    // No `retry:` unless configured: the first thing in the body is the event.
    let first = client.body_piece().await.unwrap();
    assert!(first.starts_with(b"id: 1\ndata: hello\n\n"), "{first:?}");
    let a = client.event().await;
    let b = client.event().await;
    assert_eq!((a.id(), a.data()), ("1", "hello"));
    assert_eq!((b.id(), b.data()), ("3", "world"));

    // Event types and multi-line data come through as published.
    for i in 0..3 {
        let update = Update::new("t", format!("line {i}\nsecond"))
            .event_type("e")
            .unwrap();
        broker.publish(update, Instant::now()).unwrap();
    }
    broker
        .publish(Update::new("other", "no"), Instant::now())
        .unwrap();
    publish(&broker, "last");
    let events = client.events(4).await;
    let data: Vec<_> = events.iter().map(|e| e.data().to_string()).collect();
    assert_eq!(
        data,
        ["line 0\nsecond", "line 1\nsecond", "line 2\nsecond", "last"]
    );
    assert_eq!(events[0].event_type(), "e");
    assert_eq!(events[3].event_type(), "message");
    assert_eq!(events[3].id(), "8");
}

/// `retry:` first, then a keep-alive comment after each 200 ms of
/// idleness, and not before; an event restarts the idle clock.
async fn retry_first_then_keep_alives_after_idleness<R: Rt>(rt: R) {
    let broker = Broker::new(numbered());
    let stream = StreamConfig::new()
        .heartbeat(Some(ms(200)))
        .retry(Some(ms(3000)));
    let server = Server::start(&rt, &broker, ServeConfig::new().stream(stream));
    let start = Instant::now();
    let mut client = Client::get(&rt, server.addr, "/events", "").await;
    assert_eq!(
        client.body_piece().await.as_deref(),
        Some(&b"retry: 3000\n"[..])
    );
    assert_eq!(client.frame().await, Some(Frame::Retry(ms(3000))));
    assert_eq!(client.decoder.retry(), Some(ms(3000)));
    let beat = client.body_piece().await.unwrap();
    let first = start.elapsed();
    assert_eq!(&beat[..], b":\n");
    assert!(first >= ms(180), "keep-alive after only {first:?}");
    assert!(first < ms(2000), "keep-alive after {first:?}");

    let beat = client.body_piece().await.unwrap();
    let second = start.elapsed() - first;
    assert_eq!(&beat[..], b":\n");
    assert!(second >= ms(180), "second keep-alive after only {second:?}");

    // Half-way to the next keep-alive, an event: the next keep-alive is
    // 200 ms after the event, not after the last keep-alive.
    rt.sleep(ms(100)).await;
    let published = Instant::now();
    publish(&broker, "tick");
    assert_eq!(
        client.body_piece().await.as_deref(),
        Some(&b"id: 1\ndata: tick\n\n"[..])
    );
    let beat = client.body_piece().await.unwrap();
    let after = published.elapsed();
    assert_eq!(&beat[..], b":\n");
    assert!(after >= ms(180), "keep-alive {after:?} after an event");
    assert_eq!(client.text, b"retry: 3000\n:\n:\nid: 1\ndata: tick\n\n:\n");
}

/// Resuming from `Last-Event-ID` while another task publishes: every later
/// event exactly once, in order.
async fn a_resume_while_publishing_has_no_gap_or_duplicate<R: Rt>(rt: R) {
    const BEFORE: u64 = 50;
    const TOTAL: u64 = 1000;
    const RESUME: u64 = 20;
    let broker = Broker::new(numbered());
    let server = Server::start(&rt, &broker, ServeConfig::new());
    for i in 1..=BEFORE {
        publish(&broker, i.to_string());
    }
    let publisher = {
        let (broker, clock) = (broker.clone(), rt.clone());
        rt.spawn(async move {
            for i in BEFORE + 1..=TOTAL {
                publish(&broker, i.to_string());
                if i % 4 == 0 {
                    clock.sleep(ms(1)).await;
                }
            }
        })
    };
    // Subscribe while the publisher is running.
    rt.wait_until("the publisher to start", ms(2000), || {
        broker.stats().published > BEFORE + 10
    })
    .await;
    let resume = format!("Last-Event-ID: {RESUME}\r\n");
    let mut client = Client::get(&rt, server.addr, "/events?topic=t", &resume).await;
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
    rt.timeout(WAIT, publisher).await.expect("publisher stuck");
    let stats = broker.stats();
    assert_eq!((stats.replays, stats.replay_misses), (1, 0));
    // Nothing more than the published events.
    publish(&broker, "last");
    assert_eq!(client.event().await.data(), "last");
    eprintln!("subscribed after {at_subscribe} of {TOTAL} events were published");
}

/// A cursor the history does not hold: an event of the reserved "lost"
/// type, then all retained history, then live events.
async fn an_unknown_last_event_id_is_signalled_before_the_history<R: Rt>(rt: R) {
    let broker = Broker::new(numbered());
    let server = Server::start(&rt, &broker, ServeConfig::new());
    for i in 1..=5 {
        publish(&broker, format!("e{i}"));
    }
    let lost = "Last-Event-ID: gone-42\r\n";
    let mut client = Client::get(&rt, server.addr, "/events?topic=t", lost).await;
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
    publish(&broker, "live");
    let live = client.event().await;
    assert_eq!((live.id(), live.data()), ("6", "live"));
    assert_eq!(broker.stats().replay_misses, 1);
}

/// A client that never reads is disconnected by the broker (small queue,
/// large events) while a reading one gets every event and publishing never
/// waits.
async fn a_client_that_does_not_read_is_dropped_alone<R: Rt>(rt: R) {
    const MIN_EVENTS: u64 = 300;
    const MAX_EVENTS: u64 = 4000;
    let broker = Broker::new(numbered().queue(16, 64 * 1024));
    let server = Server::start(&rt, &broker, ServeConfig::new());

    // Never reads, not even the head.
    let mut slow = connect(&rt, server.addr).await;
    write_all(
        &mut slow,
        b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await
    .unwrap();
    rt.wait_until("the slow subscriber", ms(2000), || {
        broker.stats().subscribers == 1
    })
    .await;

    // Reads everything and reports each id.
    let (acks, acked) = smol::channel::unbounded::<u64>();
    let mut fast = Client::get(&rt, server.addr, "/events", "").await;
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
        let id = publish(&broker, payload.clone());
        slowest_publish = slowest_publish.max(started.elapsed());
        published += 1;
        assert_eq!(&*id, published.to_string());
        if first_lag.is_none() && broker.stats().lagged > 0 {
            first_lag = Some(published);
        }
        // Keep the reading subscriber within its queue: at most two events
        // ahead of what it has read.
        while published - received > 2 {
            let id = rt
                .timeout(WAIT, acked.recv())
                .await
                .expect("the reading subscriber stalled")
                .expect("the reading subscriber ended");
            assert_eq!(id, received + 1, "gap or duplicate");
            received = id;
        }
    }
    while received < published {
        let id = rt
            .timeout(WAIT, acked.recv())
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

    let end = Update::new("t", "end").event_type("end").unwrap();
    broker.publish(end, Instant::now()).unwrap();
    rt.timeout(WAIT, reader).await.expect("reader stuck");
    // The slow client is still connected: its stream is cut off anyway.
    rt.wait_until("the slow stream to be cut off", ms(2000), || {
        server.ends().contains(&Ok(StreamEnd::Lagged))
    })
    .await;
    drop(slow);
    rt.wait_until("both streams to end", ms(2000), || server.active() == 0)
        .await;
    for end in server.ends() {
        assert!(
            matches!(end, Ok(StreamEnd::ClientClosed | StreamEnd::Lagged)),
            "{end:?}"
        );
    }
}

/// gzip is negotiated, and each event is decompressible from what has
/// arrived before the next one is published; keep-alives too.
async fn gzip_streams_are_flushed_per_event<R: Rt>(rt: R) {
    let broker = Broker::new(numbered());
    let server = Server::start(&rt, &broker, ServeConfig::new().gzip(true));
    let accept = "Accept-Encoding: br;q=1.0, gzip;q=0.8\r\n";
    let mut client = Client::get(&rt, server.addr, "/events?topic=t", accept).await;
    let head = client.head().await;
    assert_eq!(head.header_str("content-encoding"), Some("gzip"));
    assert_eq!(head.header_str("vary"), Some("Accept-Encoding"));
    assert_eq!(head.header_str("transfer-encoding"), Some("chunked"));
    for i in 1..=30 {
        let data = format!("event number {i}: {}", "abc".repeat(i));
        publish(&broker, data.clone());
        let event = client.event().await;
        assert_eq!((event.id(), event.data()), (&*i.to_string(), &*data));
    }
    // It was compressed: the decompressor took every byte of the body.
    assert!(client.gunzip.as_ref().unwrap().total_in() > 0);
    // Without the client asking, no gzip.
    let mut plain = Client::get(&rt, server.addr, "/events?topic=t", "").await;
    assert_eq!(plain.head().await.header_str("content-encoding"), None);
    // Keep-alives of an idle gzip stream decompress as such, and events
    // after them still do.
    let stream = StreamConfig::new().heartbeat(Some(ms(100)));
    let beating = Server::start(&rt, &broker, ServeConfig::new().stream(stream));
    let accept = "Accept-Encoding: gzip, deflate\r\n";
    let mut idle = Client::get(&rt, beating.addr, "/events?topic=t", accept).await;
    assert_eq!(
        idle.head().await.header_str("content-encoding"),
        Some("gzip")
    );
    for round in 0..3 {
        let data = format!("after {round} keep-alives");
        publish(&broker, data.clone());
        let piece = idle.body_piece().await.unwrap();
        assert!(
            piece.ends_with(format!("data: {data}\n\n").as_bytes()),
            "{piece:?}"
        );
        assert_eq!(idle.event().await.data(), data);
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
        assert!(client.body_is_done(), "no last chunk");
    }
}

/// On shutdown every stream gets its own randomised `retry:` and then the
/// end of the chunked body, the last thing sent; `serve_stream` says why
/// it ended, and nothing can be published any more.
async fn shutdown_sends_a_spread_retry_and_ends_every_stream<R: Rt>(rt: R) {
    const CLIENTS: usize = 10;
    let broker = Broker::new(numbered());
    let server = Server::start(&rt, &broker, ServeConfig::new());
    let mut clients = Client::many(&rt, server.addr, "/events", CLIENTS).await;
    publish(&broker, "bye");
    for client in &mut clients {
        assert_eq!(client.event().await.data(), "bye");
    }
    broker.shutdown(Some((ms(1000), ms(2000))), 7);
    let mut retries = Vec::new();
    for client in &mut clients {
        match client.frame().await {
            Some(Frame::Retry(retry)) => {
                assert!((ms(1000)..ms(3000)).contains(&retry), "retry {retry:?}");
                retries.push(retry);
            }
            other => panic!("expected a retry, got {other:?}"),
        }
        assert_eq!(client.frame().await, None);
        assert!(client.body_is_done(), "no last chunk");
        // The last chunk is the last thing sent: then the server closes.
        assert!(client.buf.is_empty());
        assert!(!client.read_more().await, "bytes after the last chunk");
    }
    retries.sort();
    retries.dedup();
    assert!(retries.len() > 5, "{retries:?}");
    rt.wait_until("the streams to end", ms(2000), || server.active() == 0)
        .await;
    assert_eq!(server.ends(), vec![Ok(StreamEnd::Shutdown); CLIENTS]);
    assert!(publish_fails(&broker));
}

/// Whether publishing is refused.
fn publish_fails(broker: &Broker) -> bool {
    broker
        .publish(Update::new("t", "after"), Instant::now())
        .is_err()
}

/// Fifty clients go away, while their streams are idle or while events
/// are being written to them: every subscriber is dropped, every
/// `serve_stream` returns `ClientClosed`.
async fn clients_go_away<R: Rt>(rt: R, while_publishing: bool) {
    const CLIENTS: usize = 50;
    let broker = Broker::new(numbered());
    let server = Server::start(&rt, &broker, ServeConfig::new());
    let clients = Client::many(&rt, server.addr, "/events?topic=t", CLIENTS).await;
    assert_eq!(broker.stats().subscribers, CLIENTS);
    assert_eq!(server.active(), CLIENTS);
    let writer = while_publishing.then(|| {
        let (broker, clock) = (broker.clone(), rt.clone());
        rt.spawn(async move {
            for i in 0..200 {
                publish(&broker, format!("{i}"));
                clock.sleep(ms(1)).await;
            }
        })
    });
    drop(clients);
    if let Some(writer) = writer {
        rt.timeout(WAIT, writer).await.expect("writer stuck");
    }
    rt.wait_until("every subscriber to go", ms(2000), || {
        broker.stats().subscribers == 0 && server.active() == 0
    })
    .await;
    assert_eq!(server.ends(), vec![Ok(StreamEnd::ClientClosed); CLIENTS]);
}

/// Clients that go away are noticed without any event being written.
async fn idle_clients_that_go_away_leave_nothing_behind<R: Rt>(rt: R) {
    clients_go_away(rt, false).await;
}

/// Clients that go away while events stream to them.
async fn clients_that_go_away_mid_stream_leave_nothing_behind<R: Rt>(rt: R) {
    clients_go_away(rt, true).await;
}

/// An HTTP/1.0 client gets a close-delimited body, ended by closing the
/// connection.
async fn http_1_0_gets_a_close_delimited_body<R: Rt>(rt: R) {
    let broker = Broker::new(numbered());
    let server = Server::start(&rt, &broker, ServeConfig::new());
    let mut client = Client::open(&rt, server.addr, "GET /events HTTP/1.0\r\n\r\n").await;
    let head = client.head().await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.header_str("content-type"), Some("text/event-stream"));
    assert_eq!(head.header_str("cache-control"), Some(CACHE_CONTROL));
    assert_eq!(head.header_str("x-accel-buffering"), Some("no"));
    assert_eq!(head.header_str("transfer-encoding"), None);
    assert!(!head.is_chunked());
    assert_eq!(head.header_str("content-length"), None);
    assert_eq!(head.header_str("connection"), Some("close"));
    assert_eq!(head.body_kind("GET").unwrap(), BodyKind::CloseDelimited);
    publish(&broker, "hello");
    // The bytes as they are on the wire: no chunk framing.
    assert_eq!(
        client.body_piece().await.as_deref(),
        Some(&b"id: 1\ndata: hello\n\n"[..])
    );
    assert_eq!(client.event().await.data(), "hello");
    broker.shutdown(Some((ms(500), Duration::ZERO)), 1);
    assert_eq!(
        client.body_piece().await.as_deref(),
        Some(&b"retry: 500\n"[..])
    );
    // The server closes the connection to end the body.
    assert_eq!(client.body_piece().await, None);
    assert!(client.eof);
    rt.wait_until("the stream to end", ms(2000), || server.active() == 0)
        .await;
    assert_eq!(server.ends(), vec![Ok(StreamEnd::Shutdown)]);
}

/// Sends `request` to `addr` from a task of its own, closes the writing
/// side, then holds the connection until the server has read it all.
fn send_request<R: Rt>(rt: &R, addr: SocketAddr, request: Vec<u8>) -> common::Task<()> {
    let task_rt = rt.clone();
    rt.spawn(async move {
        let mut socket = connect(&task_rt, addr).await;
        // The server may give up on an oversized head and drop the socket
        // with bytes unread, which resets the connection: the write and
        // the close may then fail, and that is expected.
        let _ = write_all(&mut socket, &request).await;
        let _ = close(&mut socket).await;
        let _ = task_rt.timeout(WAIT, common::drain(&mut socket)).await;
    })
}

/// What a test expects of an error.
type ErrorCheck = fn(&ServeError) -> bool;

/// `read_request` on malformed heads, oversized ones, and peers that close
/// first: each error is the right one, and says so.
async fn malformed_request_heads_are_reported<R: Rt>(rt: R) {
    let listener = Listener::<R>::bind();
    let long_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(2000));
    let cases: [(&[u8], ErrorCheck, &str); 6] = [
        (
            b"GET / HTTP/1.1\r\nX: y\r\n",
            |e| matches!(e, ServeError::Closed),
            "closed",
        ),
        (
            b"GET /events HTTP/9.9\r\n\r\n",
            |e| matches!(e, ServeError::Head(HeadError::InvalidVersion)),
            "HTTP/1.0 or HTTP/1.1",
        ),
        (
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            |e| matches!(e, ServeError::Head(_)),
            "header",
        ),
        (
            &[b'a'; 8192],
            |e| {
                matches!(
                    e,
                    ServeError::Head(HeadError::TooLarge | HeadError::InvalidRequestLine)
                )
            },
            "bad request head",
        ),
        (
            long_header.as_bytes(),
            |e| matches!(e, ServeError::Head(HeadError::TooLarge)),
            "larger than the limit",
        ),
        (
            b"GET /events HT",
            |e| matches!(e, ServeError::Closed),
            "closed",
        ),
    ];
    for (request, expected, shown) in cases {
        let client = send_request(&rt, listener.addr(), request.to_vec());
        let mut socket = listener.accept().await;
        let limits = HeadLimits::default().max_head_len(1024);
        let error = rt
            .timeout(WAIT, read_request(&mut socket, limits))
            .await
            .expect("read_request stuck")
            .unwrap_err();
        let request = String::from_utf8_lossy(request);
        assert!(expected(&error), "{request:?}: {error:?}");
        assert!(error.to_string().contains(shown), "{request:?}: {error}");
        drop(socket);
        rt.timeout(WAIT, client).await.expect("client stuck");
    }
}

/// A whole request head, and what follows it, come back as such.
async fn a_request_head_and_what_follows_come_back<R: Rt>(rt: R) {
    let listener = Listener::<R>::bind();
    let request =
        b"POST /publish?topic=t HTTP/1.1\r\nContent-Length: 5\r\nLast-Event-ID: 9\r\n\r\nhello";
    let client = send_request(&rt, listener.addr(), request.to_vec());
    let mut socket = listener.accept().await;
    let (head, mut body) = rt
        .timeout(WAIT, read_request(&mut socket, HeadLimits::default()))
        .await
        .expect("read_request stuck")
        .unwrap();
    assert_eq!(
        (head.method(), head.path(), head.query()),
        ("POST", "/publish", Some("topic=t"))
    );
    assert_eq!(head.last_event_id(), Some("9"));
    while body.len() < 5 {
        let mut more = [0u8; 16];
        let n = rt
            .timeout(WAIT, read(&mut socket, &mut more))
            .await
            .expect("the body did not come")
            .unwrap();
        assert!(n > 0);
        body.extend_from_slice(&more[..n]);
    }
    assert_eq!(&body[..], b"hello");
    drop(socket);
    rt.timeout(WAIT, client).await.expect("client stuck");
}

/// A client that stops reading while events keep coming is closed once its
/// socket has taken nothing for the write timeout (its queue is deep
/// enough that it is never cut off for lagging); a client that reads is
/// not bothered by the timeout, however idle.
async fn a_socket_that_takes_nothing_is_closed_after_the_write_timeout<R: Rt>(rt: R) {
    let broker = Broker::new(numbered().queue(100_000, 1 << 30));
    let config = ServeConfig::new().write_timeout(Some(ms(300)));
    let server = Server::start(&rt, &broker, config);
    let mut stalled = Client::get(&rt, server.addr, "/events?topic=t", "").await;
    stalled.head().await;
    // More than the kernel's buffers on both sides hold.
    let big = Str::from("x".repeat(256 * 1024));
    for _ in 0..128 {
        publish(&broker, big.clone());
    }
    rt.wait_until("the write timeout", WAIT, || {
        server.ends().contains(&Ok(StreamEnd::WriteTimeout))
    })
    .await;
    assert_eq!(broker.stats().lagged, 0);
    drop(stalled);
    let mut reader = Client::get(&rt, server.addr, "/events?topic=t", "").await;
    reader.head().await;
    rt.sleep(ms(600)).await;
    publish(&broker, "still here");
    assert_eq!(reader.event().await.data(), "still here");
}

/// A stream ends at its maximum lifetime, with the `retry:` it was given
/// and the body's last chunk.
async fn a_stream_ends_at_its_maximum_lifetime_with_the_given_retry<R: Rt>(rt: R) {
    let broker = Broker::new(numbered());
    let config = ServeConfig::new()
        .max_lifetime(Some(ms(300)))
        .lifetime_retry(Some(ms(1234)));
    let server = Server::start(&rt, &broker, config);
    let mut client = Client::get(&rt, server.addr, "/events?topic=t", "").await;
    client.head().await;
    publish(&broker, "before the end");
    assert_eq!(client.event().await.data(), "before the end");
    let mut retry = None;
    while let Some(frame) = client.frame().await {
        if let Frame::Retry(r) = frame {
            retry = Some(r);
        }
    }
    assert_eq!(retry, Some(ms(1234)));
    assert_eq!(client.decoder.retry(), Some(ms(1234)));
    assert!(
        client.body_is_done(),
        "the body did not end with its last chunk"
    );
    rt.wait_until("the stream's end", Duration::from_secs(5), || {
        server.ends().contains(&Ok(StreamEnd::MaxLifetime))
    })
    .await;
}

async fn a_message_body_is_a_stream_of_byte_chunks_for_any_framework<R: Rt>(rt: R) {
    use futures_lite::StreamExt;
    use sse_driver::server::{Message, MessageBody};
    let messages = futures_lite::stream::iter([Message::new("a"), Message::new("b\nc")]);
    let config = ServeConfig::new().stream(StreamConfig::new().retry(Some(ms(1500))));
    let mut body = MessageBody::new(rt.driver(), None, messages, &config);
    let mut wire = Vec::new();
    while let Some(chunk) = rt
        .timeout(WAIT, body.next())
        .await
        .expect("a chunk in time")
    {
        let Ok(chunk) = chunk;
        wire.extend_from_slice(&chunk);
    }
    assert_eq!(
        String::from_utf8(wire).unwrap(),
        "retry: 1500\ndata: a\n\ndata: b\ndata: c\n\n"
    );
    assert!(body.is_done());
}
