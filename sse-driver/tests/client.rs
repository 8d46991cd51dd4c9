//! The client against scripted servers on 127.0.0.1: every test runs a tiny
//! hand-written HTTP server in a task and checks what the stream yields,
//! on tokio, smol and async-std.

mod common;

use std::convert::identity;
use std::time::{Duration, Instant};

use common::source::{OK, config, message, next, ok, open, reconnecting};
use common::{Listener, Rt, Task, WAIT, drain, ms, on_every_runtime, serve_once, write_all};
use futures_lite::StreamExt;
use sse_driver::client::{
    ClientConfig, CloseReason, Error, Event, EventSource, Jitter, Limits, ReconnectPolicy,
    ReconnectReason,
};
use sse_driver::rt::Runtime;
use sse_proto::client::ConnectionError;
use sse_proto::http1::HeadError;

on_every_runtime!(
    events_arrive,
    a_drop_mid_event_reconnects_with_last_event_id,
    no_content_ends_the_stream_cleanly,
    a_server_error_is_fatal_by_default,
    a_wrong_content_type_is_fatal,
    retry_changes_the_reconnect_delay,
    connection_refused_then_accepted,
    a_307_redirect_is_followed,
    a_response_dripped_byte_by_byte,
    a_chunked_body_split_inside_crlf,
    an_idle_connection_is_dropped_and_reopened,
    an_oversized_line_reconnects_without_panicking,
    an_unsupported_scheme_is_refused_up_front,
    close_ends_the_stream,
    reconnecting_disabled_reports_the_cause,
    a_one_shot_stream_that_ends_cleanly_is_the_end_not_an_error,
    works_with_stream_combinators,
    a_server_in_the_same_task,
    a_flood_of_comments_does_not_stall,
    a_redirect_loop_ends_in_too_many_redirects,
    a_redirect_loop_without_reconnect_is_terminal,
    heartbeats_keep_an_idle_connection_alive,
    an_oversized_response_head_reconnects_without_panicking,
    an_oversized_response_head_without_reconnect_is_terminal,
    a_server_error_is_retried_when_opted_in,
    a_server_error_honours_retry_after,
);

/// A response head of 64 KiB, four times the client's limit.
fn oversized_head() -> String {
    let big = "a".repeat(64 * 1024);
    format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\n{}", &OK[17..])
}

/// A listener on 127.0.0.1 and a client of its `/events`, with the
/// settings of [`config`] as `tweak` changes them.
fn source<R: Rt>(
    rt: &R,
    tweak: impl FnOnce(ClientConfig) -> ClientConfig,
) -> (EventSource<R::Driver>, Listener<R>) {
    let listener = Listener::<R>::bind();
    let es = rt.event_source(tweak(config(&listener.url("/events"))));
    (es.unwrap(), listener)
}

/// A client of a server that answers its one request with `response`, and
/// the server's task (its output: the request head).
fn answered<R: Rt>(rt: &R, response: impl Into<String>) -> (EventSource<R::Driver>, Task<String>) {
    let (es, listener) = source(rt, identity);
    (es, serve_once(rt, listener, response))
}

/// A server that answers its first request with `first` and closes that
/// connection (the write may fail: the client can hang up before it has
/// read everything), then answers the next one with `second`: the task's
/// output is both request heads.
fn first_then<R: Rt>(
    rt: &R,
    listener: Listener<R>,
    first: impl Into<String>,
    second: impl Into<String>,
) -> Task<(String, String)> {
    let (first, second) = (first.into(), second.into());
    rt.spawn(async move {
        let (mut s, first_head) = listener.accept_request().await;
        let _ = write_all(&mut s, first.as_bytes()).await;
        drop(s);
        (first_head, listener.answer(&second).await)
    })
}

/// The stream has ended: `None`, and `None` again.
async fn ended<D: Runtime>(es: &mut EventSource<D>) {
    assert!(es.next().await.is_none());
    assert!(es.next().await.is_none());
}

async fn events_arrive<R: Rt>(rt: R) {
    let events = ok("event: greet\ndata: hello\n\ndata: a\ndata: b\n\n");
    let (mut es, server) = answered(&rt, events);
    open(&mut es).await;
    let m = message(&mut es).await;
    assert_eq!((m.event_type(), m.data()), ("greet", "hello"));
    assert_eq!(message(&mut es).await.data(), "a\nb");
    drop(es);
    let head = server.await;
    assert!(head.starts_with("GET /events HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nAccept: text/event-stream\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("last-event-id"),
        "{head}"
    );
}

async fn a_drop_mid_event_reconnects_with_last_event_id<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, identity);
    let first = ok("id: 7\ndata: one\n\ndata: unfinish");
    let server = first_then(&rt, listener, first, ok("data: two\n\n"));
    assert_eq!(es.last_event_id(), "");
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "one");
    assert_eq!(es.last_event_id(), "7");
    let (delay, reason, _) = reconnecting(&mut es).await;
    assert_eq!((delay, reason), (ms(20), ReconnectReason::EndOfStream));
    open(&mut es).await;
    let m = message(&mut es).await;
    assert_eq!((m.data(), m.id()), ("two", "7"));
    drop(es);
    let (_, head) = server.await;
    assert!(head.contains("\r\nLast-Event-ID: 7\r\n"), "{head}");
}

async fn no_content_ends_the_stream_cleanly<R: Rt>(rt: R) {
    let (mut es, _server) = answered(&rt, "HTTP/1.1 204 No Content\r\n\r\n");
    ended(&mut es).await;
}

async fn a_server_error_is_fatal_by_default<R: Rt>(rt: R) {
    let response = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops";
    let (mut es, _server) = answered(&rt, response);
    match es.next().await {
        Some(Err(Error::Rejected(response))) => {
            assert_eq!(response.reason(), &CloseReason::BadStatus(500));
            assert_eq!(response.status(), 500);
            assert_eq!(response.body(), b"oops");
            let err = Error::Rejected(response);
            assert_eq!(
                err.to_string(),
                "the server answered 500 Internal Server Error: oops"
            );
        }
        other => panic!("{other:?}"),
    }
    ended(&mut es).await;
}

async fn a_wrong_content_type_is_fatal<R: Rt>(rt: R) {
    let response = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi";
    let (mut es, _server) = answered(&rt, response);
    let err = es.next().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("text/html"), "{err}");
    ended(&mut es).await;
}

async fn retry_changes_the_reconnect_delay<R: Rt>(rt: R) {
    // The initial reconnection time (5 s) would outlast the test.
    let policy = ReconnectPolicy::default()
        .initial_delay(Duration::from_secs(5))
        .jitter(Jitter::None);
    let (mut es, listener) = source(&rt, |c| c.reconnect(policy));
    let _server = first_then(&rt, listener, ok("retry: 40\n\n"), OK);
    open(&mut es).await;
    let (delay, reason, _) = reconnecting(&mut es).await;
    assert_eq!((delay, reason), (ms(40), ReconnectReason::EndOfStream));
    let start = Instant::now();
    open(&mut es).await;
    let waited = start.elapsed();
    assert!(waited >= ms(35) && waited < ms(2000), "{waited:?}");
}

async fn connection_refused_then_accepted<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, identity);
    let addr = listener.addr();
    drop(listener);
    let (_, reason, error) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::NetworkError);
    match error {
        Some(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
    let _server = serve_once(&rt, Listener::bind_to(addr), ok("data: at last\n\n"));
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

async fn a_307_redirect_is_followed<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, identity);
    let redirect =
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: /moved?x=1\r\nContent-Length: 0\r\n\r\n";
    let server = first_then(&rt, listener, redirect, ok("data: moved\n\n"));
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "moved");
    drop(es);
    let (first, second) = server.await;
    assert!(first.starts_with("GET /events "), "{first}");
    assert!(
        second.starts_with("GET /moved?x=1 HTTP/1.1\r\n"),
        "{second}"
    );
}

/// On a binding without TLS (a build without the `rustls` feature); with
/// TLS, see `tests/tls.rs`.
async fn a_response_dripped_byte_by_byte<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, identity);
    let clock = rt.clone();
    let _server = rt.spawn(async move {
        let (mut s, _) = listener.accept_request().await;
        for byte in ok("id: 1\r\ndata: drip\r\n\r\ndata: drop\n\n").as_bytes() {
            write_all(&mut s, &[*byte]).await.unwrap();
            clock.sleep(ms(1)).await;
        }
        drain(&mut s).await;
    });
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "drip");
    assert_eq!(message(&mut es).await.data(), "drop");
}

async fn a_chunked_body_split_inside_crlf<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, identity);
    let clock = rt.clone();
    let _server = rt.spawn(async move {
        let (mut s, _) = listener.accept_request().await;
        let response = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
            Transfer-Encoding: chunked\r\n\r\n\
            A\r\ndata: one\n\r\n7;x=y\r\n\ndata: \r\n9\r\ntwo\n\ndata\r\n\
            5\r\n: x\n\n\r\n0\r\n\r\n";
        // Every write ends between a CR and its LF.
        for piece in response.split_inclusive('\r') {
            write_all(&mut s, piece.as_bytes()).await.unwrap();
            clock.sleep(ms(5)).await;
        }
        drain(&mut s).await;
    });
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "one");
    assert_eq!(message(&mut es).await.data(), "two");
    assert_eq!(message(&mut es).await.data(), "x");
    // The last chunk ends the body: a clean end of stream.
    let (_, reason, error) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::EndOfStream);
    assert!(error.is_none(), "{error:?}");
}

/// A server that answers its first request with `first`, stays silent (and
/// open) until the client gives up on that connection, then answers the
/// next one with `data: back`.
fn silent_then_back<R: Rt>(rt: &R, listener: Listener<R>, first: String) {
    drop(rt.spawn(async move {
        let (mut s, _) = listener.accept_request().await;
        write_all(&mut s, first.as_bytes()).await.unwrap();
        drain(&mut s).await;
        listener.answer(&ok("data: back\n\n")).await;
    }));
}

async fn an_idle_connection_is_dropped_and_reopened<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, |c| c.idle_timeout(Some(ms(150))));
    silent_then_back(&rt, listener, ok("data: then silence\n\n"));
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "then silence");
    let start = Instant::now();
    let (_, reason, _) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::IdleTimeout);
    assert!(start.elapsed() >= ms(100), "{:?}", start.elapsed());
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "back");
}

async fn an_oversized_line_reconnects_without_panicking<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, |c| c.limits(Limits::default().max_line_len(1024)));
    // The client hangs up before it has read everything.
    let first = ok(&format!("data: ok\n\ndata: {}\n\n", "x".repeat(10_000)));
    let _server = first_then(&rt, listener, first, ok("data: fine again\n\n"));
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "ok");
    let (_, reason, _) = reconnecting(&mut es).await;
    assert!(matches!(reason, ReconnectReason::Decode(_)), "{reason:?}");
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "fine again");
}

/// On a binding without TLS (a build without the `rustls` feature); with
/// TLS, see `tests/tls.rs`.
async fn an_unsupported_scheme_is_refused_up_front<R: Rt>(rt: R) {
    let err = rt.event_source(ClientConfig::new("ftp://x/")).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}

async fn close_ends_the_stream<R: Rt>(rt: R) {
    // The server holds the connection until the client closes it.
    let (mut es, server) = answered(&rt, ok("data: a\n\n"));
    open(&mut es).await;
    es.close();
    assert!(es.next().await.is_none());
    // The socket really is closed: the server's read ends (while `es` is
    // still alive).
    rt.timeout(WAIT, server)
        .await
        .expect("the socket was not closed");
    drop(es);
}

async fn reconnecting_disabled_reports_the_cause<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, ClientConfig::no_reconnect);
    drop(listener);
    match es.next().await {
        Some(Err(Error::Closed {
            reason: CloseReason::ReconnectDisabled(ReconnectReason::NetworkError),
            cause: Some(cause),
        })) => assert!(matches!(*cause, Error::Io(_)), "{cause:?}"),
        other => panic!("{other:?}"),
    }
    ended(&mut es).await;
}

/// With reconnecting off, a body that ends cleanly (here after its
/// `Content-Length`) ends the stream with `None`: a one-shot stream (a POST
/// to a streaming API, say) has nothing to report.
async fn a_one_shot_stream_that_ends_cleanly_is_the_end_not_an_error<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, ClientConfig::no_reconnect);
    let body = "data: only\n\n";
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let server = serve_once(&rt, listener, response);
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "only");
    assert!(es.next().await.is_none(), "a clean end is no error");
    ended(&mut es).await;
    drop(es);
    let _ = server.await;
}

/// The source is a plain `Stream` (`Send + Unpin`), usable with stream
/// combinators.
async fn works_with_stream_combinators<R: Rt>(rt: R) {
    fn send_unpin<T: Send + Unpin + futures_core::Stream>(_: &T) {}

    let (es, _server) = answered(&rt, ok("data: 1\n\ndata: 2\n\ndata: 3\n\n"));
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

/// The server is polled in the same task as the client (nothing spawned).
async fn a_server_in_the_same_task<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, identity);
    let server = async {
        let (mut s, head) = listener.accept_request().await;
        write_all(&mut s, ok("id: a\ndata: same task\n\n").as_bytes())
            .await
            .unwrap();
        // Keep the socket open until the client is done.
        drain(&mut s).await;
        head
    };
    let client = async move {
        open(&mut es).await;
        let m = message(&mut es).await;
        assert_eq!((m.data(), m.id()), ("same task", "a"));
        // Dropping the source closes the socket and ends the server.
    };
    let (head, ()) = futures_lite::future::zip(server, client).await;
    assert!(head.starts_with("GET /events HTTP/1.1\r\n"), "{head}");
}

/// Megabytes of comments (no items) before an event: the source yields to
/// the executor now and then and still gets there.
async fn a_flood_of_comments_does_not_stall<R: Rt>(rt: R) {
    let comments = ": keep-alive\n".repeat(1 << 18);
    let (mut es, _server) = answered(&rt, ok(&format!("{comments}data: after the flood\n\n")));
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "after the flood");
}

/// Answers one request on `listener` with a redirect to `location`: the
/// connection and the request head.
async fn redirect<R: Rt>(
    listener: &Listener<R>,
    status: &str,
    location: &str,
) -> (R::Stream, String) {
    let (mut s, head) = listener.accept_request().await;
    let response =
        format!("HTTP/1.1 {status}\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
    write_all(&mut s, response.as_bytes()).await.unwrap();
    (s, head)
}

async fn a_redirect_loop_ends_in_too_many_redirects<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, |c| c.max_redirects(2));
    let server = rt.spawn(async move {
        let mut heads = Vec::new();
        let mut sockets = Vec::new();
        // max_redirects(2): the first request and two redirects, each
        // answered with another redirect (A -> B -> A -> B).
        for location in ["/b", "/events", "/b"] {
            let (s, head) = redirect(&listener, "307 Temporary Redirect", location).await;
            heads.push(head);
            sockets.push(s);
        }
        // The reconnect starts over at the original URL.
        heads.push(listener.answer(&ok("data: out of the loop\n\n")).await);
        heads
    });
    let (delay, reason, _) = reconnecting(&mut es).await;
    assert_eq!((delay, reason), (ms(20), ReconnectReason::TooManyRedirects));
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "out of the loop");
    drop(es);
    let heads = server.await;
    let paths: Vec<&str> = heads.iter().map(|h| h.split(' ').nth(1).unwrap()).collect();
    assert_eq!(paths, ["/events", "/b", "/events", "/events"]);
}

async fn a_redirect_loop_without_reconnect_is_terminal<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, |c| c.max_redirects(1).no_reconnect());
    let _server = rt.spawn(async move {
        let mut sockets = Vec::new();
        for location in ["/b", "/events"] {
            sockets.push(redirect(&listener, "302 Found", location).await);
        }
        for (s, _) in &mut sockets {
            drain(s).await;
        }
    });
    match es.next().await {
        Some(Err(Error::Closed {
            reason: CloseReason::ReconnectDisabled(ReconnectReason::TooManyRedirects),
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    ended(&mut es).await;
}

async fn heartbeats_keep_an_idle_connection_alive<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, |c| c.idle_timeout(Some(ms(150))));
    let clock = rt.clone();
    let _server = rt.spawn(async move {
        let (mut s, _) = listener.accept_request().await;
        write_all(&mut s, OK.as_bytes()).await.unwrap();
        // Comments only, every 20 ms, for 600 ms: never an event.
        for _ in 0..30 {
            clock.sleep(ms(20)).await;
            write_all(&mut s, b":\n").await.unwrap();
        }
        // Then silence (the socket stays open) until the client gives up.
        drain(&mut s).await;
        listener.answer(&ok("data: back\n\n")).await
    });
    open(&mut es).await;
    let start = Instant::now();
    // Heartbeats keep coming: no reconnect (and no item at all).
    if let Some(item) = rt.timeout(ms(400), es.next()).await {
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

async fn an_oversized_response_head_reconnects_without_panicking<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, identity);
    // The client stops reading at its 16 KiB head limit.
    let _server = first_then(&rt, listener, oversized_head(), ok("data: small head\n\n"));
    let (_, reason, error) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::NetworkError);
    match error {
        Some(Error::Protocol(ConnectionError::Head(HeadError::TooLarge))) => {}
        other => panic!("{other:?}"),
    }
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "small head");
}

async fn an_oversized_response_head_without_reconnect_is_terminal<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, ClientConfig::no_reconnect);
    let _server = rt.spawn(async move {
        let (mut s, _) = listener.accept_request().await;
        let _ = write_all(&mut s, oversized_head().as_bytes()).await;
        drain(&mut s).await;
    });
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
    ended(&mut es).await;
}

async fn a_server_error_is_retried_when_opted_in<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, |c| c.retry_on_server_error(true));
    let error = "HTTP/1.1 500 Internal Server Error\r\nRetry-After: 0\r\n\
                 Content-Length: 4\r\n\r\noops";
    let server = first_then(&rt, listener, error, ok("data: recovered\n\n"));
    let (delay, reason, _) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::ServerError { status: 500 });
    // `Retry-After: 0` asks for no more than the policy's own delay.
    assert_eq!(delay, ms(20));
    open(&mut es).await;
    assert_eq!(message(&mut es).await.data(), "recovered");
    drop(es);
    let (first, second) = server.await;
    assert!(first.starts_with("GET /events "), "{first}");
    assert!(second.starts_with("GET /events "), "{second}");
}

async fn a_server_error_honours_retry_after<R: Rt>(rt: R) {
    let (mut es, listener) = source(&rt, |c| c.retry_on_server_error(true));
    let error = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
                 Content-Length: 0\r\n\r\n";
    let _server = first_then(&rt, listener, error, ok("data: after a second\n\n"));
    let (delay, reason, _) = reconnecting(&mut es).await;
    assert_eq!(reason, ReconnectReason::ServerError { status: 503 });
    assert_eq!(delay, Duration::from_secs(1));
    let start = Instant::now();
    open(&mut es).await;
    let waited = start.elapsed();
    assert!(waited >= ms(950) && waited < ms(5000), "{waited:?}");
    assert_eq!(message(&mut es).await.data(), "after a second");
}
