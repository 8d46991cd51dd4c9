//! `https` through rustls (feature `rustls`): a blocking rustls server on a
//! thread on 127.0.0.1 (so it depends on no executor) with a freshly
//! generated self-signed certificate for `localhost`, trusted (or not)
//! through `EventSource::tls_config`. Every scenario runs twice: once under
//! `smol::block_on` and once under `async_std::task::block_on`.
#![cfg(feature = "rustls")]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use sse_async_std::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sse_async_std::rustls::{self, RootCertStore, ServerConnection, StreamOwned};
use sse_async_std::{
    ClientConfig, CloseReason, Error, Event, EventSource, Jitter, ReconnectPolicy, ReconnectReason,
};

const OK: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";

type TlsStream = StreamOwned<ServerConnection, TcpStream>;

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
    ($($name:ident),* $(,)?) => {
        mod smol_executor {
            $(
                #[test]
                fn $name() {
                    smol::block_on(super::bounded(super::$name()));
                }
            )*
        }
        mod async_std_executor {
            $(
                #[test]
                fn $name() {
                    async_std::task::block_on(super::bounded(super::$name()));
                }
            )*
        }
    };
}

on_both_executors!(
    events_arrive_over_tls_and_reconnect_with_last_event_id,
    an_untrusted_certificate_is_a_tls_error,
    the_default_roots_do_not_trust_a_self_signed_certificate,
    https_urls_and_redirects_to_https_are_accepted,
);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost` and its key.
fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    (certified.cert.der().clone(), key.into())
}

/// A TLS listener on 127.0.0.1 serving `cert`: the socket, the server
/// configuration and its `https://localhost` URL.
fn listen(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> (TcpListener, Arc<rustls::ServerConfig>, String) {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("https://localhost:{port}/events");
    (listener, Arc::new(config), url)
}

/// A client configuration trusting `cert` only.
fn trusting(cert: CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Fast reconnects without jitter.
fn config(url: &str) -> ClientConfig {
    ClientConfig::new(url.to_owned()).reconnect(
        ReconnectPolicy::default()
            .initial_delay(ms(20))
            .backoff_cap(ms(80))
            .jitter(Jitter::None),
    )
}

/// Accepts one connection and starts TLS on it (the handshake runs on the
/// first read or write).
fn accept_tls(listener: &TcpListener, config: &Arc<rustls::ServerConfig>) -> TlsStream {
    let (socket, _) = listener.accept().unwrap();
    let conn = ServerConnection::new(Arc::clone(config)).unwrap();
    StreamOwned::new(conn, socket)
}

/// Accepts one connection, completes the handshake and reads the request
/// head.
fn accept(listener: &TcpListener, config: &Arc<rustls::ServerConfig>) -> (TlsStream, String) {
    let mut socket = accept_tls(listener, config);
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

/// Accepts connections forever, letting each handshake fail.
fn refuse_handshakes(listener: TcpListener, config: Arc<rustls::ServerConfig>) {
    thread::spawn(move || {
        loop {
            let mut socket = accept_tls(&listener, &config);
            // The client aborts the handshake.
            let _ = socket.read(&mut [0u8; 1]);
        }
    });
}

async fn next(es: &mut EventSource) -> Event {
    match es.next().await {
        Some(Ok(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn message(es: &mut EventSource) -> String {
    match next(es).await {
        Event::Message(m) => m.data().to_owned(),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The `rustls::Error` inside an `Error::Io`, if that is what `error` is.
fn tls_error(error: &Error) -> Option<&rustls::Error> {
    match error {
        Error::Io(e) => e.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

async fn events_arrive_over_tls_and_reconnect_with_last_event_id() {
    let (cert, key) = certificate();
    let (listener, server_config, url) = listen(cert.clone(), key);
    let server = thread::spawn(move || {
        let (mut s, first) = accept(&listener, &server_config);
        s.write_all(format!("{OK}id: 7\ndata: one\n\ndata: two\n\n").as_bytes())
            .unwrap();
        s.flush().unwrap();
        s.conn.send_close_notify();
        s.flush().unwrap();
        drop(s);
        let (mut s, second) = accept(&listener, &server_config);
        s.write_all(format!("{OK}data: three\n\n").as_bytes())
            .unwrap();
        s.flush().unwrap();
        thread::sleep(ms(300));
        (first, second)
    });
    let mut es = EventSource::new(config(&url))
        .unwrap()
        .tls_config(trusting(cert));
    assert!(matches!(next(&mut es).await, Event::Open));
    assert_eq!(message(&mut es).await, "one");
    assert_eq!(message(&mut es).await, "two");
    match next(&mut es).await {
        Event::Reconnecting { delay, reason, .. } => {
            assert_eq!((delay, reason), (ms(20), ReconnectReason::EndOfStream));
        }
        other => panic!("expected reconnecting, got {other:?}"),
    }
    assert!(matches!(next(&mut es).await, Event::Open));
    assert_eq!(message(&mut es).await, "three");
    let (first, second) = server.join().unwrap();
    let port = url.trim_start_matches("https://localhost:");
    let port = port.trim_end_matches("/events");
    for head in [&first, &second] {
        assert!(head.starts_with("GET /events HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\nHost: localhost:{port}\r\n")),
            "{head}"
        );
    }
    assert!(
        !first.to_ascii_lowercase().contains("last-event-id"),
        "{first}"
    );
    assert!(second.contains("\r\nLast-Event-ID: 7\r\n"), "{second}");
}

async fn an_untrusted_certificate_is_a_tls_error() {
    let (cert, key) = certificate();
    let (listener, server_config, url) = listen(cert, key);
    refuse_handshakes(listener, server_config);
    // Another self-signed certificate: the server's is not trusted.
    let (other, _) = certificate();
    let mut es = EventSource::new(config(&url))
        .unwrap()
        .tls_config(trusting(other));
    // Reconnect attempts report the TLS error...
    for _ in 0..2 {
        match next(&mut es).await {
            Event::Reconnecting {
                reason: ReconnectReason::NetworkError,
                error: Some(error),
                ..
            } => {
                assert!(
                    matches!(
                        tls_error(&error),
                        Some(rustls::Error::InvalidCertificate(_))
                    ),
                    "{error:?}"
                );
            }
            other => panic!("expected reconnecting, got {other:?}"),
        }
    }
    // ...and without reconnecting it is terminal.
    let mut es = EventSource::new(config(&url).no_reconnect())
        .unwrap()
        .tls_config(trusting(certificate().0));
    match es.next().await {
        Some(Err(Error::Closed {
            reason: CloseReason::ReconnectDisabled(_),
            cause: Some(cause),
        })) => assert!(
            matches!(
                tls_error(&cause),
                Some(rustls::Error::InvalidCertificate(_))
            ),
            "{cause:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(es.next().await.is_none());
}

async fn the_default_roots_do_not_trust_a_self_signed_certificate() {
    let (cert, key) = certificate();
    let (listener, server_config, url) = listen(cert, key);
    refuse_handshakes(listener, server_config);
    let mut es = EventSource::new(config(&url).no_reconnect()).unwrap();
    match es.next().await {
        Some(Err(Error::Closed {
            cause: Some(cause), ..
        })) => assert!(
            matches!(
                tls_error(&cause),
                Some(rustls::Error::InvalidCertificate(_))
            ),
            "{cause:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(es.next().await.is_none());
}

async fn https_urls_and_redirects_to_https_are_accepted() {
    let (cert, key) = certificate();
    let (tls_listener, server_config, tls_url) = listen(cert.clone(), key);
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_url = format!("http://{}/start", plain.local_addr().unwrap());
    let location = tls_url.clone();
    thread::spawn(move || {
        let (mut s, _) = plain.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let redirect = format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\n\r\n");
        s.write_all(redirect.as_bytes()).unwrap();
        thread::sleep(ms(500));
    });
    thread::spawn(move || {
        let (mut s, _) = accept(&tls_listener, &server_config);
        s.write_all(format!("{OK}data: secure\n\n").as_bytes())
            .unwrap();
        s.flush().unwrap();
        thread::sleep(ms(500));
    });
    let mut es = EventSource::new(config(&plain_url))
        .unwrap()
        .tls_config(trusting(cert));
    assert!(matches!(next(&mut es).await, Event::Open));
    assert_eq!(message(&mut es).await, "secure");
    assert!(EventSource::new(ClientConfig::new("https://example.com/events")).is_ok());
}
