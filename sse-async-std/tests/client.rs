//! The client against scripted servers on 127.0.0.1: every scenario runs a
//! tiny hand-written, blocking HTTP server on a thread (so it depends on no
//! executor) and checks what the stream yields. Every scenario runs twice:
//! once under `smol::block_on` and once under `async_std::task::block_on`.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use sse_async_std::{
    ClientConfig, CloseReason, Error, Event, EventSource, Jitter, ReconnectPolicy, ReconnectReason,
};
use sse_proto::client::ConnectionError;
use sse_proto::http1::HeadError;

const OK: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Every scenario is bounded: a hang fails instead of blocking CI.
async fn bounded<F: Future>(test: F) -> F::Output {
    smol::future::or(test, async {
        smol::Timer::after(Duration::from_secs(10)).await;
        panic!("test timed out")
    })
    .await
}

/// Runs each scenario once per executor.
macro_rules! on_both_executors {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod smol_executor {
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    smol::block_on(super::bounded(super::$name()));
                }
            )*
        }
        mod async_std_executor {
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    async_std::task::block_on(super::bounded(super::$name()));
                }
            )*
        }
    };
}

on_both_executors!(
    events_arrive,
    a_drop_mid_event_reconnects_with_last_event_id,
    no_content_ends_the_stream_cleanly,
    a_server_error_is_fatal_by_default,
    a_wrong_content_type_is_fatal,
    retry_changes_the_reconnect_delay,
    connection_refused_then_accepted,
    a_307_redirect_is_followed,
    #[cfg(not(feature = "rustls"))]
    a_redirect_to_https_is_a_clear_error,
    a_response_dripped_byte_by_byte,
    a_chunked_body_split_inside_crlf,
    an_idle_connection_is_dropped_and_reopened,
    an_oversized_line_reconnects_without_panicking,
    #[cfg(not(feature = "rustls"))]
    https_is_refused_up_front,
    close_ends_the_stream,
    reconnecting_disabled_reports_the_cause,
    works_with_stream_combinators,
    an_async_server_in_the_same_task,
    a_flood_of_comments_does_not_stall,
    a_redirect_loop_ends_in_too_many_redirects,
    a_redirect_loop_without_reconnect_is_terminal,
    heartbeats_keep_an_idle_connection_alive,
    an_oversized_response_head_reconnects_without_panicking,
    an_oversized_response_head_without_reconnect_is_terminal,
    a_server_error_is_retried_when_opted_in,
    a_server_error_honours_retry_after,
);

fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, format!("http://{addr}/events"))
}

/// Runs a scripted server on its own thread.
fn serve<T: Send + 'static>(script: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::spawn(script)
}

/// Fast reconnects without jitter, so timings are predictable.
fn config(url: &str) -> ClientConfig {
    ClientConfig::new(url.to_owned()).reconnect(
        ReconnectPolicy::default()
            .initial_delay(ms(20))
            .backoff_cap(ms(80))
            .jitter(Jitter::None),
    )
}

/// Accepts one connection and reads its request head.
fn accept(listener: &TcpListener) -> (TcpStream, String) {
    let (mut socket, _) = listener.accept().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (socket, String::from_utf8(head).unwrap())
}

async fn next(es: &mut EventSource) -> Event {
    match es.next().await {
        Some(Ok(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn message(es: &mut EventSource) -> sse_proto::Event {
    match next(es).await {
        Event::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn open(es: &mut EventSource) {
    match next(es).await {
        Event::Open => {}
        other => panic!("expected open, got {other:?}"),
    }
}

async fn reconnecting(es: &mut EventSource) -> (Duration, ReconnectReason, Option<Error>) {
    match next(es).await {
        Event::Reconnecting {
            delay,
            reason,
            error,
        } => (delay, reason, error),
        other => panic!("expected reconnecting, got {other:?}"),
    }
}

async fn events_arrive() {
    let (listener, url) = listen();
    let server = serve(move || {
        let (mut s, head) = accept(&listener);
        s.write_all(format!("{OK}event: greet\ndata: hello\n\ndata: a\ndata: b\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(150));
        head
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    open(&mut es).await;
    let m = message(&mut es).await;
    assert_eq!((m.event_type(), m.data()), ("greet", "hello"));
    assert_eq!(message(&mut es).await.data(), "a\nb");
    let head = server.join().unwrap();
    assert!(head.starts_with("GET /events HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nAccept: text/event-stream\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("last-event-id"),
        "{head}"
    );
}

async fn a_drop_mid_event_reconnects_with_last_event_id() {
    let (listener, url) = listen();
    let server = serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}id: 7\ndata: one\n\ndata: unfinish").as_bytes())
            .unwrap();
        drop(s);
        let (mut s, head) = accept(&listener);
        s.write_all(format!("{OK}data: two\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(150));
        head
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "one");
    let (delay, reason, _) = reconnecting(&mut es).await;
    assert_eq!((delay, reason), (ms(20), ReconnectReason::EndOfStream));
    open(&mut es).await;
    let m = message(&mut es).await;
    assert_eq!((m.data(), m.id()), ("two", "7"));
    let head = server.join().unwrap();
    assert!(head.contains("\r\nLast-Event-ID: 7\r\n"), "{head}");
}

async fn no_content_ends_the_stream_cleanly() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        thread::sleep(ms(150));
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    assert!(es.next().await.is_none());
    assert!(es.next().await.is_none());
}

async fn a_server_error_is_fatal_by_default() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops")
            .unwrap();
        thread::sleep(ms(150));
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    match es.next().await {
        Some(Err(Error::Closed {
            reason: CloseReason::BadStatus(500),
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert!(es.next().await.is_none());
}

async fn a_wrong_content_type_is_fatal() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
        thread::sleep(ms(150));
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    let err = es.next().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("text/html"), "{err}");
    assert!(es.next().await.is_none());
}

async fn retry_changes_the_reconnect_delay() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}retry: 40\n\n").as_bytes())
            .unwrap();
        drop(s);
        let (mut s, _) = accept(&listener);
        s.write_all(OK.as_bytes()).unwrap();
        thread::sleep(ms(150));
    });
    // The initial reconnection time (5 s) would outlast the test.
    let config = ClientConfig::new(url).reconnect(
        ReconnectPolicy::default()
            .initial_delay(Duration::from_secs(5))
            .jitter(Jitter::None),
    );
    let mut es = EventSource::new(config).unwrap();
    open(&mut es).await;
    let (delay, reason, _) = reconnecting(&mut es).await;
    assert_eq!((delay, reason), (ms(40), ReconnectReason::EndOfStream));
    let start = Instant::now();
    open(&mut es).await;
    let waited = start.elapsed();
    assert!(waited >= ms(35) && waited < ms(2000), "{waited:?}");
}

async fn connection_refused_then_accepted() {
    let (listener, url) = listen();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut es = EventSource::new(config(&url)).unwrap();
    let (_, reason, error) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::NetworkError);
    match error {
        Some(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
    let listener = TcpListener::bind(addr).unwrap();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}data: at last\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(150));
    });
    // Attempts made before the listener was back fail too.
    loop {
        match next(&mut es).await {
            Event::Reconnecting { .. } => continue,
            Event::Open => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(message(&mut es).await.data(), "at last");
}

async fn a_307_redirect_is_followed() {
    let (listener, url) = listen();
    let server = serve(move || {
        let (mut s, first) = accept(&listener);
        s.write_all(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /moved?x=1\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let (mut s, second) = accept(&listener);
        s.write_all(format!("{OK}data: moved\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(150));
        (first, second)
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "moved");
    let (first, second) = server.join().unwrap();
    assert!(first.starts_with("GET /events "), "{first}");
    assert!(
        second.starts_with("GET /moved?x=1 HTTP/1.1\r\n"),
        "{second}"
    );
}

/// Without the `rustls` feature; with it, see `tests/tls.rs`.
#[cfg(not(feature = "rustls"))]
async fn a_redirect_to_https_is_a_clear_error() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(b"HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1:1/x\r\n\r\n")
            .unwrap();
        thread::sleep(ms(150));
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    match es.next().await {
        Some(Err(err @ Error::TlsNotSupported { port: 1, .. })) => {
            assert!(err.to_string().contains("`rustls` feature"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert!(es.next().await.is_none());
}

async fn a_response_dripped_byte_by_byte() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.set_nodelay(true).unwrap();
        let response = format!("{OK}id: 1\r\ndata: drip\r\n\r\ndata: drop\n\n");
        for byte in response.as_bytes() {
            s.write_all(&[*byte]).unwrap();
            thread::sleep(ms(1));
        }
        thread::sleep(ms(150));
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "drip");
    assert_eq!(message(&mut es).await.data(), "drop");
}

async fn a_chunked_body_split_inside_crlf() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.set_nodelay(true).unwrap();
        let response = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
            Transfer-Encoding: chunked\r\n\r\n\
            A\r\ndata: one\n\r\n7;x=y\r\n\ndata: \r\n9\r\ntwo\n\ndata\r\n\
            5\r\n: x\n\n\r\n0\r\n\r\n";
        // Every write ends between a CR and its LF.
        for piece in response.split_inclusive('\r') {
            s.write_all(piece.as_bytes()).unwrap();
            thread::sleep(ms(5));
        }
        thread::sleep(ms(150));
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "one");
    assert_eq!(message(&mut es).await.data(), "two");
    assert_eq!(message(&mut es).await.data(), "x");
    // The last chunk ends the body: a clean end of stream.
    let (_, reason, error) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::EndOfStream);
    assert!(error.is_none(), "{error:?}");
}

async fn an_idle_connection_is_dropped_and_reopened() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}data: then silence\n\n").as_bytes())
            .unwrap();
        // Stay silent (and open) until the client gives up on us.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}data: back\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(150));
    });
    let config = config(&url).idle_timeout(Some(ms(100)));
    let mut es = EventSource::new(config).unwrap();
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "then silence");
    let start = Instant::now();
    let (_, reason, _) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::IdleTimeout);
    assert!(start.elapsed() >= ms(60), "{:?}", start.elapsed());
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "back");
}

async fn an_oversized_line_reconnects_without_panicking() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        let long = "x".repeat(10_000);
        // The client may hang up before it has read everything.
        let _ = s.write_all(format!("{OK}data: ok\n\ndata: {long}\n\n").as_bytes());
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}data: fine again\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(150));
    });
    let config = config(&url).limits(sse_proto::Limits::default().max_line_len(1024));
    let mut es = EventSource::new(config).unwrap();
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "ok");
    let (_, reason, _) = reconnecting(&mut es).await;
    assert!(matches!(reason, ReconnectReason::Decode(_)), "{reason:?}");
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "fine again");
}

/// Without the `rustls` feature; with it, see `tests/tls.rs`.
#[cfg(not(feature = "rustls"))]
async fn https_is_refused_up_front() {
    match EventSource::new(ClientConfig::new("https://example.com/events")) {
        Err(Error::TlsNotSupported { host, port: 443 }) => assert_eq!(host, "example.com"),
        other => panic!("{other:?}"),
    }
    let err = EventSource::new(ClientConfig::new("ftp://x/")).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}

async fn close_ends_the_stream() {
    let (listener, url) = listen();
    let server = serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}data: a\n\n").as_bytes()).unwrap();
        let mut rest = Vec::new();
        // The client closing its socket ends this read.
        let _ = s.read_to_end(&mut rest);
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    open(&mut es).await;
    es.close();
    assert!(es.next().await.is_none());
    // The socket really is closed: the server's read ends.
    server.join().unwrap();
}

async fn reconnecting_disabled_reports_the_cause() {
    let (listener, url) = listen();
    drop(listener);
    let mut es = EventSource::new(ClientConfig::new(url).no_reconnect()).unwrap();
    match es.next().await {
        Some(Err(Error::Closed {
            reason: CloseReason::ReconnectDisabled(ReconnectReason::NetworkError),
            cause: Some(cause),
        })) => assert!(matches!(*cause, Error::Io(_)), "{cause:?}"),
        other => panic!("{other:?}"),
    }
    assert!(es.next().await.is_none());
}

/// The source is a plain `Stream` (`Send + Unpin`), usable with the
/// executor's own combinators.
async fn works_with_stream_combinators() {
    fn send_unpin<T: Send + Unpin + futures_core::Stream>(_: &T) {}
    use smol::stream::StreamExt;

    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}data: 1\n\ndata: 2\n\ndata: 3\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(150));
    });
    let es = EventSource::new(config(&url)).unwrap();
    send_unpin(&es);
    let data: Vec<String> = es
        .filter_map(|item| match item {
            Ok(Event::Message(m)) => Some(m.data().to_owned()),
            _ => None,
        })
        .take(3)
        .collect()
        .await;
    assert_eq!(data, ["1", "2", "3"]);
}

/// The server is an `async-net` listener polled in the same task as the
/// client (no spawning, so it works the same on every executor).
async fn an_async_server_in_the_same_task() {
    use smol::io::{AsyncReadExt, AsyncWriteExt};

    let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let server = async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        s.write_all(format!("{OK}id: a\ndata: same task\n\n").as_bytes())
            .await
            .unwrap();
        s.flush().await.unwrap();
        // Keep the socket open until the client is done.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        String::from_utf8(head).unwrap()
    };
    let client = async {
        let mut es = EventSource::new(config(&url)).unwrap();
        open(&mut es).await;
        let m = message(&mut es).await;
        assert_eq!((m.data(), m.id()), ("same task", "a"));
        // Dropping the source closes the socket and ends the server.
    };
    let (head, ()) = smol::future::zip(server, client).await;
    assert!(head.starts_with("GET /events HTTP/1.1\r\n"), "{head}");
}

/// Megabytes of comments (no items) before an event: the source yields
/// to the executor now and then and still gets there.
async fn a_flood_of_comments_does_not_stall() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(OK.as_bytes()).unwrap();
        let comments = ": keep-alive\n".repeat(1 << 16);
        for _ in 0..4 {
            s.write_all(comments.as_bytes()).unwrap();
        }
        s.write_all(b"data: after the flood\n\n").unwrap();
        thread::sleep(ms(150));
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "after the flood");
}

async fn a_redirect_loop_ends_in_too_many_redirects() {
    let (listener, url) = listen();
    let server = serve(move || {
        let mut heads = Vec::new();
        let mut sockets = Vec::new();
        // max_redirects(2): the first request and two redirects, each
        // answered with another redirect (A -> B -> A -> B).
        for location in ["/b", "/events", "/b"] {
            let (mut s, head) = accept(&listener);
            s.write_all(
                format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n\
                     Content-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
            heads.push(head);
            sockets.push(s);
        }
        // The reconnect starts over at the original URL.
        let (mut s, head) = accept(&listener);
        s.write_all(format!("{OK}data: out of the loop\n\n").as_bytes())
            .unwrap();
        heads.push(head);
        thread::sleep(ms(200));
        heads
    });
    let config = config(&url).max_redirects(2);
    let mut es = EventSource::new(config).unwrap();
    let (delay, reason, _) = reconnecting(&mut es).await;
    assert_eq!((delay, reason), (ms(20), ReconnectReason::TooManyRedirects));
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "out of the loop");
    let heads = server.join().unwrap();
    let paths: Vec<&str> = heads.iter().map(|h| h.split(' ').nth(1).unwrap()).collect();
    assert_eq!(paths, ["/events", "/b", "/events", "/events"]);
}

async fn a_redirect_loop_without_reconnect_is_terminal() {
    let (listener, url) = listen();
    serve(move || {
        let mut sockets = Vec::new();
        for location in ["/b", "/events"] {
            let (mut s, _) = accept(&listener);
            s.write_all(
                format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
            sockets.push(s);
        }
        thread::sleep(ms(500));
    });
    let config = ClientConfig::new(url).max_redirects(1).no_reconnect();
    let mut es = EventSource::new(config).unwrap();
    match es.next().await {
        Some(Err(Error::Closed {
            reason: CloseReason::ReconnectDisabled(ReconnectReason::TooManyRedirects),
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert!(es.next().await.is_none());
}

async fn heartbeats_keep_an_idle_connection_alive() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.set_nodelay(true).unwrap();
        s.write_all(OK.as_bytes()).unwrap();
        // Comments only, every 20 ms, for 600 ms: never an event.
        for _ in 0..30 {
            thread::sleep(ms(20));
            s.write_all(b":\n").unwrap();
        }
        // Then silence (the socket stays open) until the client gives up.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}data: back\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(500));
    });
    let config = config(&url).idle_timeout(Some(ms(150)));
    let mut es = EventSource::new(config).unwrap();
    open(&mut es).await;
    let start = Instant::now();
    // Heartbeats keep coming: no reconnect (and no item at all).
    let early = smol::future::or(async { Some(es.next().await) }, async {
        smol::Timer::after(ms(400)).await;
        None
    })
    .await;
    if let Some(item) = early {
        panic!("expected nothing while heartbeats flow, got {item:?}");
    }
    // The heartbeats stop at about 600 ms; 150 ms later the client gives
    // up on the connection.
    let (_, reason, _) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::IdleTimeout);
    let waited = start.elapsed();
    assert!(waited >= ms(550), "{waited:?}");
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "back");
}

async fn an_oversized_response_head_reconnects_without_panicking() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        let big = "a".repeat(64 * 1024);
        // The client stops reading at its 16 KiB head limit, so the write
        // may fail: that is fine.
        let _ = s.write_all(format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\n{}", &OK[17..]).as_bytes());
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}data: small head\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(500));
    });
    let mut es = EventSource::new(config(&url)).unwrap();
    let (_, reason, error) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::NetworkError);
    match error {
        Some(Error::Protocol(ConnectionError::Head(HeadError::TooLarge))) => {}
        other => panic!("{other:?}"),
    }
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "small head");
}

async fn an_oversized_response_head_without_reconnect_is_terminal() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        let big = "a".repeat(64 * 1024);
        let _ = s.write_all(format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\n{}", &OK[17..]).as_bytes());
        thread::sleep(ms(500));
    });
    let mut es = EventSource::new(ClientConfig::new(url).no_reconnect()).unwrap();
    match es.next().await {
        Some(Err(Error::Closed {
            reason: CloseReason::ReconnectDisabled(ReconnectReason::NetworkError),
            cause: Some(cause),
        })) => assert!(
            matches!(
                *cause,
                Error::Protocol(ConnectionError::Head(HeadError::TooLarge))
            ),
            "{cause:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(es.next().await.is_none());
}

async fn a_server_error_is_retried_when_opted_in() {
    let (listener, url) = listen();
    let server = serve(move || {
        let (mut s, first) = accept(&listener);
        s.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nRetry-After: 0\r\n\
              Content-Length: 4\r\n\r\noops",
        )
        .unwrap();
        let (mut s, second) = accept(&listener);
        s.write_all(format!("{OK}data: recovered\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(200));
        (first, second)
    });
    let config = config(&url).retry_on_server_error(true);
    let mut es = EventSource::new(config).unwrap();
    let (delay, reason, _) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::ServerError { status: 500 });
    // `Retry-After: 0` asks for no more than the policy's own delay.
    assert_eq!(delay, ms(20));
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "recovered");
    let (first, second) = server.join().unwrap();
    assert!(first.starts_with("GET /events "), "{first}");
    assert!(second.starts_with("GET /events "), "{second}");
}

async fn a_server_error_honours_retry_after() {
    let (listener, url) = listen();
    serve(move || {
        let (mut s, _) = accept(&listener);
        s.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
              Content-Length: 0\r\n\r\n",
        )
        .unwrap();
        let (mut s, _) = accept(&listener);
        s.write_all(format!("{OK}data: after a second\n\n").as_bytes())
            .unwrap();
        thread::sleep(ms(200));
    });
    let config = config(&url).retry_on_server_error(true);
    let mut es = EventSource::new(config).unwrap();
    let (delay, reason, _) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::ServerError { status: 503 });
    assert_eq!(delay, Duration::from_secs(1));
    let start = Instant::now();
    open(&mut es).await;
    let waited = start.elapsed();
    assert!(waited >= ms(950) && waited < ms(5000), "{waited:?}");
    assert_eq!(message(&mut es).await.data(), "after a second");
}
