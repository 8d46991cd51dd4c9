//! `https` through rustls (feature `rustls`): a local tokio-rustls server on
//! 127.0.0.1 with a freshly generated self-signed certificate for
//! `localhost`, trusted (or not) through `EventSource::tls_config`.
#![cfg(feature = "rustls")]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sse_tokio::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sse_tokio::rustls::{self, RootCertStore};
use sse_tokio::{
    ClientConfig, CloseReason, Error, Event, EventSource, Jitter, ReconnectPolicy, ReconnectReason,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

const OK: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Every test is bounded: a hang fails instead of blocking CI.
async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), test)
        .await
        .expect("test timed out")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost` and its key.
fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    (certified.cert.der().clone(), key.into())
}

/// A TLS server on 127.0.0.1 serving `cert`, and its `https://localhost`
/// URL.
async fn listen(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> (TcpListener, TlsAcceptor, String) {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("https://localhost:{port}/events");
    (listener, TlsAcceptor::from(Arc::new(config)), url)
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

/// Accepts one connection, completes the handshake and reads the request
/// head.
async fn accept(
    listener: &TcpListener,
    acceptor: &TlsAcceptor,
) -> (TlsStream<tokio::net::TcpStream>, String) {
    let (socket, _) = listener.accept().await.unwrap();
    let mut socket = acceptor.accept(socket).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.unwrap() == 0 {
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

#[tokio::test]
async fn events_arrive_over_tls_and_reconnect_with_last_event_id() {
    bounded(async {
        let (cert, key) = certificate();
        let (listener, acceptor, url) = listen(cert.clone(), key).await;
        let server = tokio::spawn(async move {
            let (mut s, first) = accept(&listener, &acceptor).await;
            s.write_all(format!("{OK}id: 7\ndata: one\n\ndata: two\n\n").as_bytes())
                .await
                .unwrap();
            s.flush().await.unwrap();
            s.shutdown().await.unwrap();
            drop(s);
            let (mut s, second) = accept(&listener, &acceptor).await;
            s.write_all(format!("{OK}data: three\n\n").as_bytes())
                .await
                .unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(ms(300)).await;
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
        let (first, second) = server.await.unwrap();
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
    })
    .await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    bounded(async {
        let (cert, key) = certificate();
        let (listener, acceptor, url) = listen(cert, key).await;
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                // The client aborts the handshake.
                let _ = acceptor.accept(socket).await;
            }
        });
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
    })
    .await;
}

#[tokio::test]
async fn the_default_roots_do_not_trust_a_self_signed_certificate() {
    bounded(async {
        let (cert, key) = certificate();
        let (listener, acceptor, url) = listen(cert, key).await;
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let _ = acceptor.accept(socket).await;
        });
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
    })
    .await;
}

#[tokio::test]
async fn https_urls_and_redirects_to_https_are_accepted() {
    bounded(async {
        let (cert, key) = certificate();
        let (tls_listener, acceptor, tls_url) = listen(cert.clone(), key).await;
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain_url = format!("http://{}/start", plain.local_addr().unwrap());
        let location = tls_url.clone();
        tokio::spawn(async move {
            let (mut s, _) = plain.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let redirect = format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\n\r\n");
            s.write_all(redirect.as_bytes()).await.unwrap();
            tokio::time::sleep(ms(500)).await;
        });
        tokio::spawn(async move {
            let (mut s, _) = accept(&tls_listener, &acceptor).await;
            s.write_all(format!("{OK}data: secure\n\n").as_bytes())
                .await
                .unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(ms(500)).await;
        });
        let mut es = EventSource::new(config(&plain_url))
            .unwrap()
            .tls_config(trusting(cert));
        assert!(matches!(next(&mut es).await, Event::Open));
        assert_eq!(message(&mut es).await, "secure");
        assert!(EventSource::new(ClientConfig::new("https://example.com/events")).is_ok());
    })
    .await;
}
