//! The hub's routes mounted in an axum application, driven over real
//! sockets: subscribe with the crate family's own client, publish with a
//! raw HTTP/1.1 request, next to the application's own route.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use sse_hub::{Config, Hub};
use sse_tokio::{ClientConfig, Event, EventSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long any step may take.
const WAIT: Duration = Duration::from_secs(10);

/// An application with a route of its own and the hub's, served on a free
/// loopback port; the hub and the address.
async fn app(config: impl FnOnce(&mut Config)) -> (Hub, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = Config::default();
    settings.listen = addr;
    config(&mut settings);
    let hub = Hub::start(settings).await.unwrap();
    let app = Router::new()
        .route("/own", get(|| async { "the application's own route" }))
        .merge(hub.router());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (hub, addr)
}

/// Sends one request (closing the connection after it) and returns the
/// status line's code and the whole response.
async fn request(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let exchange = async {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{head}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        socket.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8(response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, response)
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("an answer in time")
}

/// A form publish of `data` to `topic`.
async fn publish(addr: SocketAddr, topic: &str, data: &str) -> (u16, String) {
    let body = format!("topic={topic}&data={data}");
    let head = format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n"
    );
    request(addr, &head, &body).await
}

/// The next message of `source`, skipping the other items.
async fn message(source: &mut EventSource) -> sse_proto::Event {
    tokio::time::timeout(WAIT, async {
        loop {
            match source.next().await {
                Some(Ok(Event::Message(m))) => return m,
                Some(Ok(_)) => {}
                other => panic!("the stream ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a message in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_what_is_published_next_to_the_application_routes() {
    let (hub, addr) = app(|_| {}).await;
    let url = format!("http://{addr}/.well-known/mercure?topic=news");
    let mut source = EventSource::new(ClientConfig::new(url)).unwrap();
    // Open, and known to the broker, before the publish.
    match tokio::time::timeout(WAIT, source.next()).await.unwrap() {
        Some(Ok(Event::Open)) => {}
        other => panic!("{other:?}"),
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while hub.subscribers() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, response) = publish(addr, "news", "hello").await;
    assert_eq!(status, 200, "{response}");
    let id = response
        .rsplit("\r\n\r\n")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let event = message(&mut source).await;
    assert_eq!(event.data(), "hello");
    assert_eq!(event.id(), id);
    // Another topic does not reach this subscriber; the next one does.
    assert_eq!(publish(addr, "sports", "goal").await.0, 200);
    assert_eq!(publish(addr, "news", "again").await.0, 200);
    assert_eq!(message(&mut source).await.data(), "again");
    // The application's own route is untouched.
    let (status, response) =
        request(addr, &format!("GET /own HTTP/1.1\r\nHost: {addr}\r\n"), "").await;
    assert_eq!(status, 200);
    assert!(
        response.ends_with("the application's own route"),
        "{response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resuming_subscriber_gets_the_history_after_its_cursor() {
    let (_hub, addr) = app(|_| {}).await;
    let (_, first) = publish(addr, "t", "one").await;
    let first = first.rsplit("\r\n\r\n").next().unwrap().trim().to_owned();
    publish(addr, "t", "two").await;
    let url = format!("http://{addr}/.well-known/mercure?topic=t");
    let mut source = EventSource::new(ClientConfig::new(url).last_event_id(first)).unwrap();
    assert_eq!(message(&mut source).await.data(), "two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_rules_apply_inside_the_application() {
    let (_hub, addr) = app(|c| {
        c.max_body = 64;
        c.jwt_key = Some("a-key-of-at-least-thirty-two-bytes-for-hs256".to_owned());
    })
    .await;
    // No token: refused, with the hub's message.
    let (status, response) = publish(addr, "news", "hello").await;
    assert_eq!(status, 401, "{response}");
    let head = format!("GET /.well-known/mercure?topic=news HTTP/1.1\r\nHost: {addr}\r\n");
    assert_eq!(request(addr, &head, "").await.0, 401);
    // A body over the limit.
    let big = "x".repeat(100);
    assert_eq!(publish(addr, "news", &big).await.0, 413);
    // A method the hub's URL does not take.
    let head = format!("PUT /.well-known/mercure HTTP/1.1\r\nHost: {addr}\r\n");
    let (status, response) = request(addr, &head, "").await;
    assert_eq!(status, 405);
    assert!(
        response
            .to_ascii_lowercase()
            .contains("allow: get, head, query, post, options"),
        "{response}"
    );
    // A Host the hub does not answer (DNS rebinding).
    let head = "GET /.well-known/mercure?topic=news HTTP/1.1\r\nHost: evil.example\r\n";
    assert_eq!(request(addr, head, "").await.0, 421);
}

/// A token signed with `key` holding these `mercure` claims.
fn token(key: &str, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "mercure": claims }),
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriptions_api_is_served_inside_the_application() {
    let key = "a-key-of-at-least-thirty-two-bytes-for-hs256";
    let (_hub, addr) = app(|c| {
        c.jwt_key = Some(key.to_owned());
        c.subscriptions = true;
        c.heartbeat = Some(Duration::from_millis(100));
    })
    .await;
    let admin = token(
        key,
        serde_json::json!({"subscribe": ["/.well-known/mercure/subscriptions{/topic}{/subscriber}"]}),
    );
    let list = |admin: String| async move {
        let head = format!(
            "GET /.well-known/mercure/subscriptions HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {admin}\r\n"
        );
        let (status, response) = request(addr, &head, "").await;
        assert_eq!(status, 200, "{response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-type: application/ld+json"),
            "{response}"
        );
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        let listing: serde_json::Value = serde_json::from_str(&body).unwrap();
        listing["subscriptions"].as_array().unwrap().clone()
    };
    assert!(list(admin.clone()).await.is_empty());

    // A subscriber, its stream held open on a raw socket.
    let mine = token(
        key,
        serde_json::json!({"subscribe": [], "payload": {"name": "ann"}}),
    );
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let request_head = format!(
        "GET /.well-known/mercure?topic=%2Fbooks%2F1 HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {mine}\r\n\r\n"
    );
    socket.write_all(request_head.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stream closed");
            head.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the stream's head in time");
    let listed = list(admin.clone()).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["topic"], "/books/1");
    assert_eq!(listed[0]["payload"]["name"], "ann");

    // The client goes: once the server drops the body, it is no longer
    // listed.
    drop(socket);
    tokio::time::timeout(WAIT, async {
        while !list(admin.clone()).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the subscription's end in time");
}
