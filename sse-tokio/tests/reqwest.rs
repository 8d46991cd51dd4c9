//! `sse_tokio::reqwest::EventSource` against loopback servers that write raw
//! HTTP/1.1: what each attempt sends (through the user's client, its proxy
//! and default headers included), reconnects, and how the stream ends.

use std::error::Error as _;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use sse_proto::client::ERROR_BODY_LIMIT;
use sse_tokio::reqwest::EventSource;
use sse_tokio::{CloseReason, Error, Event, Item, ReadyState, ReconnectPolicy, ReconnectReason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Fails `test` when it takes longer than 30 s.
async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test timed out")
}

/// A request as the server read it.
#[derive(Debug)]
struct Recorded {
    /// The request line, e.g. `GET /events HTTP/1.1`.
    line: String,
    /// Header names (lower case) and values, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A server on 127.0.0.1 that answers the n-th connection with the n-th of
/// `responses` (raw bytes, then it closes) and reports every request.
async fn server(responses: Vec<Vec<u8>>) -> (SocketAddr, mpsc::UnboundedReceiver<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for response in responses {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = answer(socket, &response, &tx).await;
            });
        }
    });
    (addr, rx)
}

/// Reads one request, reports it, writes `response` and closes.
async fn answer(
    mut socket: TcpStream,
    response: &[u8],
    tx: &mpsc::UnboundedSender<Recorded>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = socket.read(&mut piece).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf.split_off(head_end + 4);
    while body.len() < length {
        let n = socket.read(&mut piece).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&piece[..n]);
    }
    let _ = tx.send(Recorded {
        line,
        headers,
        body,
    });
    socket.write_all(response).await?;
    socket.shutdown().await?;
    // Drain until the client hangs up, so the close is never a reset.
    while socket.read(&mut piece).await? > 0 {}
    Ok(())
}

/// A `200` event stream whose body is `body`, delimited by the close.
fn stream(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n\r\n{body}"
    )
    .into_bytes()
}

/// A response with this status line, content type and body.
fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn no_content() -> Vec<u8> {
    b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec()
}

/// Every item until the stream ends (at most 100).
async fn items(events: &mut EventSource) -> Vec<Item> {
    let mut items = Vec::new();
    while let Some(item) = events.next().await {
        items.push(item);
        assert!(items.len() <= 100, "the stream does not end: {items:?}");
    }
    items
}

/// The data of every message among `items`.
fn data(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match item {
            Ok(Event::Message(m)) => Some(m.data().to_owned()),
            _ => None,
        })
        .collect()
}

/// A client that never uses a proxy from the environment.
fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn events_arrive_and_a_one_shot_stream_ends_cleanly() {
    bounded(async {
        let (addr, mut requests) = server(vec![stream(
            "id: 1\ndata: one\n\n: a comment\nevent: x\ndata: two\n\n",
        )])
        .await;
        let request = client().get(format!("http://{addr}/events"));
        let mut events = EventSource::new(request)
            .unwrap()
            .configure(|c| c.no_reconnect());
        assert_eq!(events.ready_state(), ReadyState::Connecting);
        let first = events.next().await;
        assert!(matches!(first, Some(Ok(Event::Open))), "{first:?}");
        assert_eq!(events.ready_state(), ReadyState::Open);
        let rest = items(&mut events).await;
        assert_eq!(data(&rest), ["one", "two"]);
        assert_eq!(rest.len(), 2, "{rest:?}");
        match &rest[1] {
            Ok(Event::Message(m)) => {
                assert_eq!(m.event_type(), "x");
                assert_eq!(m.id(), "1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(events.last_event_id(), "1");
        assert_eq!(events.ready_state(), ReadyState::Closed);
        assert!(events.next().await.is_none());

        let request = requests.recv().await.unwrap();
        assert_eq!(request.line, "GET /events HTTP/1.1");
        assert_eq!(request.header("accept"), Some("text/event-stream"));
        assert_eq!(request.header("cache-control"), Some("no-cache"));
        assert_eq!(request.header("last-event-id"), None);
    })
    .await;
}

#[tokio::test]
async fn a_reconnect_sends_last_event_id_after_the_retry_time_and_204_ends_it() {
    bounded(async {
        let (addr, mut requests) = server(vec![
            stream("retry: 25\nid: 7\ndata: first\n\n"),
            no_content(),
        ])
        .await;
        let mut events = EventSource::new(client().get(format!("http://{addr}/s"))).unwrap();
        let all = items(&mut events).await;
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(matches!(all[0], Ok(Event::Open)));
        assert_eq!(data(&all), ["first"]);
        // After a connection that delivered an event the wait is exactly
        // the reconnection time, which the server set to 25 ms.
        match &all[2] {
            Ok(Event::Reconnecting {
                delay,
                reason: ReconnectReason::EndOfStream,
                error: None,
            }) => assert_eq!(*delay, Duration::from_millis(25)),
            other => panic!("{other:?}"),
        }
        assert_eq!(events.ready_state(), ReadyState::Closed);

        let first = requests.recv().await.unwrap();
        assert_eq!(first.header("last-event-id"), None);
        let second = requests.recv().await.unwrap();
        assert_eq!(second.line, "GET /s HTTP/1.1");
        assert_eq!(second.header("last-event-id"), Some("7"));
    })
    .await;
}

#[tokio::test]
async fn a_one_shot_post_sends_its_json_body() {
    bounded(async {
        let (addr, mut requests) = server(vec![stream(
            "data: {\"delta\":\"Hel\"}\n\ndata: {\"delta\":\"lo\"}\n\ndata: [DONE]\n\n",
        )])
        .await;
        let body = r#"{"model":"m","stream":true}"#;
        let request = client()
            .post(format!("http://{addr}/v1/chat/completions"))
            .header(CONTENT_TYPE, "application/json")
            .bearer_auth("token")
            .body(body);
        let mut events = EventSource::new(request)
            .unwrap()
            .configure(|c| c.no_reconnect());
        let all = items(&mut events).await;
        assert_eq!(
            data(&all),
            [r#"{"delta":"Hel"}"#, r#"{"delta":"lo"}"#, "[DONE]"]
        );
        assert!(all.iter().all(Result::is_ok), "{all:?}");

        let request = requests.recv().await.unwrap();
        assert_eq!(request.line, "POST /v1/chat/completions HTTP/1.1");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("authorization"), Some("Bearer token"));
        assert_eq!(request.header("accept"), Some("text/event-stream"));
        assert_eq!(request.body, body.as_bytes());
    })
    .await;
}

#[tokio::test]
async fn the_body_is_sent_again_on_every_reconnect() {
    bounded(async {
        let (addr, mut requests) = server(vec![stream("id: a\ndata: 1\n\n"), no_content()]).await;
        let request = client()
            .post(format!("http://{addr}/s"))
            .body("{\"topic\":\"t\"}");
        let mut events = EventSource::new(request).unwrap().configure(|c| {
            c.reconnect(ReconnectPolicy::default().initial_delay(Duration::from_millis(1)))
        });
        let all = items(&mut events).await;
        assert_eq!(data(&all), ["1"]);
        for _ in 0..2 {
            let request = requests.recv().await.unwrap();
            assert_eq!(request.line, "POST /s HTTP/1.1");
            assert_eq!(request.body, b"{\"topic\":\"t\"}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_401_with_a_json_body_is_rejected_with_its_status_headers_and_body() {
    bounded(async {
        let json =
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
        let (addr, _requests) =
            server(vec![response("401 Unauthorized", "application/json", json)]).await;
        let mut events = EventSource::new(client().get(format!("http://{addr}/s"))).unwrap();
        let all = items(&mut events).await;
        let [Err(Error::Rejected(response))] = &all[..] else {
            panic!("{all:?}")
        };
        assert_eq!(response.status(), 401);
        assert_eq!(response.reason(), &CloseReason::BadStatus(401));
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.body(), json.as_bytes());
        assert!(!response.is_truncated());
        assert!(
            all[0]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("Incorrect API key provided")
        );
        assert_eq!(events.ready_state(), ReadyState::Closed);
    })
    .await;
}

#[tokio::test]
async fn a_200_that_is_not_an_event_stream_is_rejected() {
    bounded(async {
        let (addr, _requests) =
            server(vec![response("200 OK", "text/html", "<html></html>")]).await;
        let mut events = EventSource::new(client().get(format!("http://{addr}/s"))).unwrap();
        let all = items(&mut events).await;
        let [Err(Error::Rejected(response))] = &all[..] else {
            panic!("{all:?}")
        };
        assert!(
            matches!(
                response.reason(),
                CloseReason::BadContentType(Some(ct)) if ct.as_str() == "text/html"
            ),
            "{response:?}"
        );
        assert_eq!(response.status(), 200);
        assert_eq!(response.body_text(), "<html></html>");
    })
    .await;
}

#[tokio::test]
async fn a_long_error_body_is_cut_at_the_limit() {
    bounded(async {
        let body = "x".repeat(3 * ERROR_BODY_LIMIT);
        let (addr, _requests) = server(vec![response(
            "500 Internal Server Error",
            "text/plain",
            &body,
        )])
        .await;
        let mut events = EventSource::new(client().get(format!("http://{addr}/s"))).unwrap();
        let all = items(&mut events).await;
        let [Err(Error::Rejected(response))] = &all[..] else {
            panic!("{all:?}")
        };
        assert_eq!(response.status(), 500);
        assert_eq!(response.body(), &body.as_bytes()[..ERROR_BODY_LIMIT]);
        assert!(response.is_truncated());
    })
    .await;
}

#[tokio::test]
async fn an_error_body_that_stalls_is_told_as_far_as_it_came() {
    bounded(async {
        // Says 100 bytes, sends 15, then holds the connection: the stream
        // ends once the wait for the rest (5 s) runs out.
        let head = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\
                    Content-Length: 100\r\n\r\nnot allowed to ";
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            socket.write_all(head.as_bytes()).await.unwrap();
            while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        });
        let mut events = EventSource::new(client().get(format!("http://{addr}/s"))).unwrap();
        let all = items(&mut events).await;
        let [Err(Error::Rejected(response))] = &all[..] else {
            panic!("{all:?}")
        };
        assert_eq!(response.status(), 403);
        assert_eq!(response.body_text(), "not allowed to ");
        assert!(response.is_truncated());
        drop(events);
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_server_error_with_retry_on_server_error_reconnects_instead() {
    bounded(async {
        let (addr, mut requests) = server(vec![
            response("503 Service Unavailable", "text/plain", "busy"),
            stream("data: back\n\n"),
        ])
        .await;
        let mut events = EventSource::new(client().get(format!("http://{addr}/s")))
            .unwrap()
            .configure(|c| {
                c.retry_on_server_error(true)
                    .reconnect(ReconnectPolicy::default().initial_delay(Duration::from_millis(1)))
            });
        let first = events.next().await;
        assert!(
            matches!(
                first,
                Some(Ok(Event::Reconnecting {
                    reason: ReconnectReason::ServerError { status: 503 },
                    ..
                }))
            ),
            "{first:?}"
        );
        assert!(matches!(events.next().await, Some(Ok(Event::Open))));
        let message = events.next().await;
        assert!(
            matches!(&message, Some(Ok(Event::Message(m))) if m.data() == "back"),
            "{message:?}"
        );
        events.close();
        assert_eq!(requests.recv().await.unwrap().line, "GET /s HTTP/1.1");
        assert_eq!(requests.recv().await.unwrap().line, "GET /s HTTP/1.1");
    })
    .await;
}

#[tokio::test]
async fn the_clients_proxy_is_used() {
    bounded(async {
        // The "proxy" answers itself: what matters is that the request
        // reached it, in absolute form, for a host that does not resolve.
        let (proxy, mut requests) = server(vec![stream("data: via proxy\n\n")]).await;
        let client = reqwest::Client::builder()
            .proxy(reqwest::Proxy::http(format!("http://{proxy}")).unwrap())
            .build()
            .unwrap();
        let request = client.get("http://stream.example.invalid/events?x=1");
        let mut events = EventSource::new(request)
            .unwrap()
            .configure(|c| c.no_reconnect());
        let all = items(&mut events).await;
        assert_eq!(data(&all), ["via proxy"]);
        let request = requests.recv().await.unwrap();
        assert_eq!(
            request.line,
            "GET http://stream.example.invalid/events?x=1 HTTP/1.1"
        );
        assert_eq!(request.header("host"), Some("stream.example.invalid"));
    })
    .await;
}

#[tokio::test]
async fn the_clients_default_headers_are_sent_and_ours_win_over_them() {
    bounded(async {
        let (addr, mut requests) = server(vec![stream("data: x\n\n")]).await;
        let mut defaults = HeaderMap::new();
        defaults.insert("x-api-key", HeaderValue::from_static("k-123"));
        defaults.insert("accept", HeaderValue::from_static("application/json"));
        let client = reqwest::Client::builder()
            .no_proxy()
            .default_headers(defaults)
            .user_agent("sse-test/1")
            .build()
            .unwrap();
        let mut events = EventSource::new(client.get(format!("http://{addr}/s")))
            .unwrap()
            .configure(|c| c.no_reconnect());
        assert_eq!(data(&items(&mut events).await), ["x"]);
        let request = requests.recv().await.unwrap();
        assert_eq!(request.header("x-api-key"), Some("k-123"));
        assert_eq!(request.header("user-agent"), Some("sse-test/1"));
        assert_eq!(request.header("accept"), Some("text/event-stream"));
    })
    .await;
}

#[tokio::test]
async fn a_configured_last_event_id_is_sent_on_the_first_request() {
    bounded(async {
        let (addr, mut requests) = server(vec![no_content(), no_content()]).await;
        let url = format!("http://{addr}/s");
        let mut events = EventSource::new(client().get(&url))
            .unwrap()
            .configure(|c| c.last_event_id("41"));
        assert_eq!(events.last_event_id(), "41");
        assert!(items(&mut events).await.is_empty());
        // A `Last-Event-ID` header on the builder does the same.
        let mut events =
            EventSource::new(client().get(&url).header("Last-Event-ID", "42")).unwrap();
        assert!(items(&mut events).await.is_empty());
        let ids: Vec<Option<String>> = [requests.recv().await, requests.recv().await]
            .into_iter()
            .map(|r| r.unwrap().header("last-event-id").map(str::to_owned))
            .collect();
        assert_eq!(ids, [Some("41".to_owned()), Some("42".to_owned())]);
    })
    .await;
}

#[tokio::test]
async fn a_refused_connection_reconnects_with_the_reqwest_error_then_gives_up() {
    bounded(async {
        // A port nobody listens on any more.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let policy = ReconnectPolicy::default()
            .initial_delay(Duration::from_millis(1))
            .backoff_cap(Duration::from_millis(5))
            .max_attempts(Some(1));
        let mut events = EventSource::with_config(
            client(),
            sse_tokio::ClientConfig::new(format!("http://{addr}/s")).reconnect(policy),
        );
        let all = items(&mut events).await;
        let [Ok(Event::Reconnecting { reason, error, .. }), Err(closed)] = &all[..] else {
            panic!("{all:?}")
        };
        assert_eq!(*reason, ReconnectReason::NetworkError);
        let Some(Error::Io(io)) = error else {
            panic!("{error:?}")
        };
        assert!(
            io.get_ref().is_some_and(|e| e.is::<reqwest::Error>()),
            "{io:?}"
        );
        let Error::Closed {
            reason: CloseReason::GaveUp { attempts: 1, .. },
            cause: Some(cause),
        } = closed
        else {
            panic!("{closed:?}")
        };
        assert!(matches!(**cause, Error::Io(_)), "{cause:?}");
        assert!(closed.source().is_some());
    })
    .await;
}

#[tokio::test]
async fn a_silent_server_hits_the_idle_timeout() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and holds the connection, never answering.
        let held = tokio::spawn(async move { listener.accept().await });
        let mut events = EventSource::new(client().get(format!("http://{addr}/s")))
            .unwrap()
            .configure(|c| {
                c.no_reconnect()
                    .idle_timeout(Some(Duration::from_millis(50)))
            });
        let all = items(&mut events).await;
        assert!(
            matches!(
                &all[..],
                [Err(Error::Closed {
                    reason: CloseReason::ReconnectDisabled(ReconnectReason::IdleTimeout),
                    ..
                })]
            ),
            "{all:?}"
        );
        held.abort();
    })
    .await;
}

#[tokio::test]
async fn close_ends_the_stream() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // An open stream that sends one event and then stays open.
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            socket.write_all(&stream("data: hello\n\n")).await.unwrap();
            // Returns once the client has gone.
            while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        });
        let mut events = EventSource::new(client().get(format!("http://{addr}/s"))).unwrap();
        assert!(matches!(events.next().await, Some(Ok(Event::Open))));
        assert!(matches!(events.next().await, Some(Ok(Event::Message(_)))));
        events.close();
        assert_eq!(events.ready_state(), ReadyState::Closed);
        assert!(events.next().await.is_none());
        drop(events);
        server.await.unwrap();
    })
    .await;
}

#[test]
fn the_source_is_send_and_unpin() {
    fn send_unpin<T: Send + Unpin>() {}
    send_unpin::<EventSource>();
}

#[test]
fn a_header_that_is_not_utf8_is_refused_up_front() {
    let value = HeaderValue::from_bytes(b"caf\xe9").unwrap();
    let request = client().get("http://127.0.0.1:1/s").header("x-name", value);
    match EventSource::new(request) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_streaming_body_is_refused_up_front() {
    bounded(async {
        // A response is a body that can only be read once.
        let (addr, _requests) = server(vec![response("200 OK", "text/plain", "once")]).await;
        let once = client()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap();
        let request = client().post(format!("http://{addr}/s")).body(once);
        match EventSource::new(request) {
            Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn an_invalid_configured_header_is_the_first_item() {
    let config = sse_tokio::ClientConfig::new("http://127.0.0.1:1/s").header("bad name", "v");
    let mut events = EventSource::with_config(client(), config);
    let all = bounded(items(&mut events)).await;
    assert!(matches!(&all[..], [Err(Error::Protocol(_))]), "{all:?}");
}
