//! The hyper body (`server::EventStream`) served by axum on 127.0.0.1: the
//! response fields, replay and live events, keep-alives and shutdown, gzip
//! flushed per event, and clients that go away. A raw TCP client checks
//! the bytes. tokio only: the rest of the server side is tested on every
//! runtime in `sse-driver`'s suite.
#![cfg(feature = "axum")]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use bytes::BytesMut;
use sse_proto::http1::{BodyDecoder, ResponseHead, ResponseParser};
use sse_proto::{Decoder, Event};
use sse_tokio::server::{
    Broker, BrokerConfig, CACHE_CONTROL, Cursor, EventStream, LastEventId, Message, ServeConfig,
    StreamConfig, Subscription, Update,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long one read may wait.
const WAIT: Duration = Duration::from_secs(10);

/// Fails `test` when it takes longer than 30 s.
async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test timed out")
}

/// The query of `/events`.
#[derive(serde::Deserialize)]
struct Params {
    topic: Option<String>,
}

/// The handler: the topic of the query (every topic without one), from
/// the request's `Last-Event-ID`.
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

/// An axum server on a port of 127.0.0.1 serving `/events`.
async fn axum_server(broker: Broker, config: ServeConfig) -> SocketAddr {
    let app = axum::Router::new()
        .route("/events", get(events))
        .with_state((broker, config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Publishes `data` on topic `t`: its id.
fn publish(broker: &Broker, data: String) -> String {
    let published = broker.publish(Update::new("t", data), Instant::now());
    published.unwrap().id.to_string()
}

/// A raw HTTP/1.1 client of one event stream: the head, then the body
/// unframed, gunzipped when it is gzip, kept as text and decoded.
struct Reader {
    socket: TcpStream,
    buf: BytesMut,
    head: ResponseHead,
    body: BodyDecoder,
    gunzip: Option<flate2::Decompress>,
    text: Vec<u8>,
    decoder: Decoder,
    ended: bool,
}

impl Reader {
    /// Sends `GET target` with `headers` and reads the response head.
    async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Reader {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let lines: String = headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\r\n"))
            .collect();
        let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\n{lines}\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut buf = BytesMut::with_capacity(4096);
        let mut parser = ResponseParser::new();
        let head = loop {
            if let Some(head) = parser.parse_buf(&mut buf).unwrap() {
                break head;
            }
            let read = tokio::time::timeout(WAIT, socket.read_buf(&mut buf)).await;
            assert!(read.expect("no response head").unwrap() > 0, "no head");
        };
        let body = BodyDecoder::new(head.body_kind("GET").unwrap());
        let gunzip = (head.header_str("content-encoding") == Some("gzip"))
            .then(|| flate2::Decompress::new_gzip(15));
        let decoder = Decoder::new();
        let (text, ended) = (Vec::new(), false);
        Reader {
            socket,
            buf,
            head,
            body,
            gunzip,
            text,
            decoder,
            ended,
        }
    }

    /// Takes in the next piece of body: false once the body has ended (or
    /// nothing came for `WAIT`).
    async fn pump(&mut self) -> bool {
        while !self.ended {
            if let Some(piece) = self.body.decode(&mut self.buf).unwrap() {
                let plain = match &mut self.gunzip {
                    None => piece.to_vec(),
                    Some(z) => {
                        let mut out = Vec::with_capacity(64 * 1024);
                        let before = z.total_in();
                        z.decompress_vec(&piece, &mut out, flate2::FlushDecompress::Sync)
                            .unwrap();
                        assert_eq!(z.total_in() - before, piece.len() as u64);
                        out
                    }
                };
                self.text.extend_from_slice(&plain);
                self.decoder.handle_bytes(&plain);
                return true;
            }
            self.ended = self.body.is_done();
            if !self.ended {
                match tokio::time::timeout(WAIT, self.socket.read_buf(&mut self.buf)).await {
                    Err(_) => return false,
                    Ok(Ok(1..)) => {}
                    Ok(_) => self.ended = true,
                }
            }
        }
        false
    }

    /// The next event; the body must not end (or stall) first.
    async fn event(&mut self) -> Event {
        loop {
            if let Some(event) = self.decoder.poll_event().unwrap() {
                return event;
            }
            assert!(self.pump().await, "the body ended or stalled");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_serves_headers_replay_and_live_events() {
    bounded(async {
        let broker = Broker::new(BrokerConfig::new());
        let config =
            ServeConfig::new().stream(StreamConfig::new().retry(Some(Duration::from_millis(1234))));
        let addr = axum_server(broker.clone(), config).await;
        let first = publish(&broker, "one".into());
        publish(&broker, "two".into());
        let mut client = Reader::get(addr, "/events?topic=t", &[("Last-Event-ID", &first)]).await;
        assert_eq!(client.head.status(), 200);
        assert_eq!(
            client.head.header_str("content-type"),
            Some("text/event-stream")
        );
        assert_eq!(client.head.header_str("cache-control"), Some(CACHE_CONTROL));
        assert_eq!(client.head.header_str("x-accel-buffering"), Some("no"));
        assert_eq!(client.event().await.data(), "two");
        assert_eq!(client.decoder.retry(), Some(Duration::from_millis(1234)));
        publish(&broker, "three".into());
        assert_eq!(client.event().await.data(), "three");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_keep_alive_and_shutdown() {
    bounded(async {
        let broker = Broker::new(BrokerConfig::new());
        let config = ServeConfig::new()
            .stream(StreamConfig::new().heartbeat(Some(Duration::from_millis(150))));
        let addr = axum_server(broker.clone(), config).await;
        let mut client = Reader::get(addr, "/events", &[]).await;
        assert!(client.pump().await);
        assert_eq!(client.text, b":\n");
        broker.shutdown(Some((Duration::from_secs(2), Duration::ZERO)), 1);
        while client.pump().await {}
        assert!(client.body.is_done(), "no last chunk");
        while client.decoder.poll_event().unwrap().is_some() {}
        assert_eq!(client.decoder.retry(), Some(Duration::from_secs(2)));
    })
    .await;
}

#[cfg(feature = "gzip")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_gzip_is_flushed_per_event() {
    bounded(async {
        let broker = Broker::new(BrokerConfig::new());
        let addr = axum_server(broker.clone(), ServeConfig::new()).await;
        let mut client = Reader::get(addr, "/events", &[("Accept-Encoding", "gzip")]).await;
        assert_eq!(client.head.header_str("content-encoding"), Some("gzip"));
        for i in 0..10 {
            // Each event is readable from what has arrived, before the
            // next one is published.
            publish(&broker, format!("gz {i}"));
            assert_eq!(client.event().await.data(), format!("gz {i}"));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_clients_that_go_away_are_unsubscribed() {
    bounded(async {
        let broker = Broker::new(BrokerConfig::new());
        let addr = axum_server(broker.clone(), ServeConfig::new()).await;
        let mut clients = Vec::new();
        for _ in 0..20 {
            clients.push(Reader::get(addr, "/events", &[]).await);
        }
        assert_eq!(broker.stats().subscribers, 20);
        clients.clear();
        let deadline = Instant::now() + WAIT;
        // hyper notices a closed connection when it next writes.
        let mut i = 0;
        while broker.stats().subscribers > 0 {
            assert!(Instant::now() < deadline, "{:?}", broker.stats());
            publish(&broker, format!("{i}"));
            i += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A handler's own stream: `count` messages (ids from one past the
/// client's `Last-Event-ID`), each after `gap`, then the end.
struct Counted {
    next: u32,
    count: u32,
    gap: Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl futures_core::Stream for Counted {
    type Item = Message;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Message>> {
        if self.next > self.count {
            return std::task::Poll::Ready(None);
        }
        let gap = self.gap;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(gap)));
        std::task::ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        let n = self.next;
        self.next += 1;
        let id = sse_proto::EventId::new(n.to_string()).unwrap();
        std::task::Poll::Ready(Some(Message::new(format!("event {n}")).id(id)))
    }
}

/// Five events per client, 50 ms apart, resuming after `Last-Event-ID`.
async fn counted(headers: HeaderMap, LastEventId(last): LastEventId) -> EventStream {
    let after: u32 = last.and_then(|id| id.parse().ok()).unwrap_or(0);
    let messages = Counted {
        next: after + 1,
        count: 5,
        gap: Duration::from_millis(50),
        sleep: None,
    };
    let config = ServeConfig::new().stream(
        StreamConfig::new()
            .retry(Some(Duration::from_millis(1500)))
            .heartbeat(Some(Duration::from_millis(20))),
    );
    EventStream::from_stream(&headers, messages, &config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_streams_its_own_events_then_the_body_ends() {
    bounded(async {
        let app = axum::Router::new().route("/count", get(counted));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let mut reader = Reader::get(addr, "/count", &[]).await;
        assert_eq!(reader.head.status(), 200);
        assert!(reader.head.is_event_stream());
        let mut ids = Vec::new();
        for _ in 0..5 {
            let event = reader.event().await;
            assert_eq!(event.data(), format!("event {}", event.id()));
            ids.push(event.id().to_owned());
        }
        assert_eq!(ids, ["1", "2", "3", "4", "5"]);
        // The body ends after the last message.
        while reader.pump().await {}
        assert!(reader.ended, "the body ended");
        assert_eq!(reader.decoder.poll_event().unwrap(), None);
        let text = String::from_utf8_lossy(&reader.text).into_owned();
        assert!(text.starts_with("retry: 1500\n"), "{text}");
        // Keep-alives filled the 50 ms gaps (20 ms heartbeat).
        assert!(text.contains(":\n"), "{text}");

        // Resuming after 3 gives 4 and 5, gzip-compressed when asked.
        let headers = [("Last-Event-ID", "3"), ("Accept-Encoding", "gzip")];
        let mut reader = Reader::get(addr, "/count", &headers).await;
        assert_eq!(reader.head.header_str("content-encoding"), Some("gzip"));
        assert_eq!(reader.event().await.id(), "4");
        assert_eq!(reader.event().await.id(), "5");
        while reader.pump().await {}
        assert!(reader.ended);
    })
    .await;
}

/// Events queued while the server was busy go out as one body chunk: the
/// server frames each chunk (an HTTP/2 `DATA` frame, an HTTP/1.1 chunk),
/// and a frame per event would cost more than the events.
#[tokio::test]
async fn queued_events_are_one_chunk() {
    use http_body::Body as _;

    bounded(async {
        let broker = Broker::new(BrokerConfig::new());
        let subscriber = broker.subscribe(
            Subscription::new(["t"]),
            Cursor::from_last_event_id(None),
            Instant::now(),
        );
        let mut body = EventStream::new(&HeaderMap::new(), subscriber, &ServeConfig::new());
        let ids: Vec<String> = (0..50)
            .map(|i| publish(&broker, format!("queued {i}")))
            .collect();
        let chunk = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx))
            .await
            .expect("a chunk")
            .expect("no error")
            .into_data()
            .expect("data");
        let mut decoder = Decoder::new();
        decoder.handle_bytes(&chunk);
        let mut seen = Vec::new();
        while let Some(event) = decoder.poll_event().unwrap() {
            seen.push(event.id().to_owned());
        }
        assert_eq!(seen, ids, "every queued event, in order, in one chunk");
    })
    .await;
}
