//! `https` on tokio, smol and async-std: TLS servers on 127.0.0.1 (each
//! runtime's own rustls wrapper, `tokio-rustls` or `futures-rustls`) with
//! a freshly generated self-signed certificate for `localhost`, and the
//! crate's client trusting it (or not) through `EventSource::tls_config`.
//! The servers are scripted, or `serve_stream` itself.

mod common;

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::proxy::{Behaviour, Proxy};
use common::source::{OK, config, message, next};
use common::{Listener, Rt, WAIT, close, drain, ms, on_every_runtime, read_head, write_all};
use sse_driver::client::{
    ClientConfig, CloseReason, Error, Event, Proxies, Proxy as ProxySetting, ReconnectReason,
};
use sse_driver::rt::{BoxTransport, Runtime, TlsConfig, Transport};
use sse_driver::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sse_driver::rustls::{self, RootCertStore, ServerConfig};
use sse_driver::server::{
    Broker, BrokerConfig, Cursor, HeadLimits, ServeConfig, StreamConfig, StreamEnd, Subscription,
    Update, read_request, serve_stream,
};

on_every_runtime!(
    events_arrive_over_tls_and_reconnect_with_last_event_id,
    an_untrusted_certificate_is_a_tls_error,
    the_default_roots_do_not_trust_a_self_signed_certificate,
    https_urls_and_redirects_to_https_are_accepted,
    a_stream_served_over_tls_is_flushed_per_batch_and_ends_cleanly,
    https_goes_through_a_connect_tunnel_end_to_end,
    a_refusing_or_unreachable_proxy_is_named,
    http_goes_to_the_proxy_with_the_absolute_url,
);

/// The crypto provider of both sides.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost` and its key.
fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    (certified.cert.der().clone(), key.into())
}

/// A listener on 127.0.0.1 for a TLS server with a fresh certificate: the
/// listener, the server configuration, its `https://localhost` URL and the
/// certificate.
struct TlsServer<R: Rt> {
    listener: Listener<R>,
    config: Arc<ServerConfig>,
    url: String,
    cert: CertificateDer<'static>,
}

impl<R: Rt> TlsServer<R> {
    /// Binds a port and makes a certificate for it.
    fn bind() -> TlsServer<R> {
        let (cert, key) = certificate();
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let listener = Listener::<R>::bind();
        let url = format!("https://localhost:{}/events", listener.addr().port());
        TlsServer {
            listener,
            config: Arc::new(config),
            url,
            cert,
        }
    }

    /// The next connection after a successful handshake.
    async fn accept(&self) -> R::TlsStream {
        self.listener.accept_tls(&self.config).await.unwrap()
    }

    /// Accepts connections until the test ends, letting every handshake
    /// fail (the client aborts it).
    fn refuse_handshakes(self, rt: &R) {
        drop(rt.spawn(async move {
            loop {
                let _ = self.listener.accept_tls(&self.config).await;
            }
        }));
    }
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

/// The `rustls::Error` behind an `Error::Io`, if that is what `error` is.
fn tls_error(error: &Error) -> Option<&rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = match error {
        Error::Io(e) => e.get_ref().map(|e| e as _),
        _ => None,
    };
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        source = e.source();
    }
    None
}

/// Whether `error` is a failed handshake for an untrusted certificate,
/// said in one sentence that names the server.
fn is_untrusted(error: &Error) -> bool {
    let said = error.to_string();
    assert!(
        said.contains("TLS with localhost failed: invalid peer certificate"),
        "{said}"
    );
    assert!(said.contains("SSL_CERT_FILE"), "{said}");
    matches!(tls_error(error), Some(rustls::Error::InvalidCertificate(_)))
}

async fn events_arrive_over_tls_and_reconnect_with_last_event_id<R: Rt>(rt: R) {
    let tls = TlsServer::<R>::bind();
    let mut es = rt
        .event_source(config(&tls.url))
        .unwrap()
        .tls_config(trusting(tls.cert.clone()));
    let port = tls.listener.addr().port();
    let server = rt.spawn(async move {
        let mut s = tls.accept().await;
        let first = read_head(&mut s).await;
        write_all(
            &mut s,
            format!("{OK}id: 7\ndata: one\n\ndata: two\n\n").as_bytes(),
        )
        .await
        .unwrap();
        // A `close_notify`: a clean end of the stream.
        close(&mut s).await.unwrap();
        drop(s);
        let mut s = tls.accept().await;
        let second = read_head(&mut s).await;
        write_all(&mut s, format!("{OK}data: three\n\n").as_bytes())
            .await
            .unwrap();
        drain(&mut s).await;
        (first, second)
    });
    assert!(matches!(next(&mut es).await, Event::Open));
    assert_eq!(message(&mut es).await.data(), "one");
    assert_eq!(message(&mut es).await.data(), "two");
    match next(&mut es).await {
        Event::Reconnecting { delay, reason, .. } => {
            assert_eq!((delay, reason), (ms(20), ReconnectReason::EndOfStream));
        }
        other => panic!("expected reconnecting, got {other:?}"),
    }
    assert!(matches!(next(&mut es).await, Event::Open));
    assert_eq!(message(&mut es).await.data(), "three");
    drop(es);
    let (first, second) = server.await;
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

async fn an_untrusted_certificate_is_a_tls_error<R: Rt>(rt: R) {
    let tls = TlsServer::<R>::bind();
    let url = tls.url.clone();
    tls.refuse_handshakes(&rt);
    // Another self-signed certificate: the server's is not trusted.
    let (other, _) = certificate();
    let mut es = rt
        .event_source(config(&url))
        .unwrap()
        .tls_config(trusting(other));
    // Reconnect attempts report the TLS error...
    for _ in 0..2 {
        match next(&mut es).await {
            Event::Reconnecting {
                reason: ReconnectReason::NetworkError,
                error: Some(error),
                ..
            } => assert!(is_untrusted(&error), "{error:?}"),
            other => panic!("expected reconnecting, got {other:?}"),
        }
    }
    // ...and without reconnecting it is terminal.
    let mut es = rt
        .event_source(config(&url).no_reconnect())
        .unwrap()
        .tls_config(trusting(certificate().0));
    match es.next().await {
        Some(Err(Error::Closed {
            reason: CloseReason::ReconnectDisabled(_),
            cause: Some(cause),
        })) => assert!(is_untrusted(&cause), "{cause:?}"),
        other => panic!("{other:?}"),
    }
    assert!(es.next().await.is_none());
}

async fn the_default_roots_do_not_trust_a_self_signed_certificate<R: Rt>(rt: R) {
    let tls = TlsServer::<R>::bind();
    let mut es = rt.event_source(config(&tls.url).no_reconnect()).unwrap();
    tls.refuse_handshakes(&rt);
    match es.next().await {
        Some(Err(Error::Closed {
            cause: Some(cause), ..
        })) => assert!(is_untrusted(&cause), "{cause:?}"),
        other => panic!("{other:?}"),
    }
    assert!(es.next().await.is_none());
}

async fn https_urls_and_redirects_to_https_are_accepted<R: Rt>(rt: R) {
    let tls = TlsServer::<R>::bind();
    let plain = Listener::<R>::bind();
    let mut es = rt
        .event_source(config(&plain.url("/start")))
        .unwrap()
        .tls_config(trusting(tls.cert.clone()));
    let redirect = format!("HTTP/1.1 302 Found\r\nLocation: {}\r\n\r\n", tls.url);
    let _redirect = common::serve_once(&rt, plain, redirect);
    let _server = rt.spawn(async move {
        let mut s = tls.accept().await;
        read_head(&mut s).await;
        write_all(&mut s, format!("{OK}data: secure\n\n").as_bytes())
            .await
            .unwrap();
        drain(&mut s).await;
    });
    assert!(matches!(next(&mut es).await, Event::Open));
    assert_eq!(message(&mut es).await.data(), "secure");
    assert!(
        rt.event_source(ClientConfig::new("https://example.com/events"))
            .is_ok()
    );
}

/// A transport that keeps what is written to it until it is flushed, as
/// a TLS layer that buffers its records would: over it, an event arrives
/// only if the serve loop flushes the batch it is in. (`tokio-rustls` and
/// `futures-rustls` send their records as they are written while the
/// socket takes them, which would hide a missing flush.)
struct FlushToSend<T> {
    inner: T,
    pending: Vec<u8>,
}

impl<T: Transport> Transport for FlushToSend<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.inner.poll_read(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let before = self.pending.len();
        for buf in bufs {
            self.pending.extend_from_slice(buf);
        }
        Poll::Ready(Ok(self.pending.len() - before))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let slice = [IoSlice::new(&self.pending)];
            match std::task::ready!(self.inner.poll_write_vectored(cx, &slice))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => drop(self.pending.drain(..n)),
            }
        }
        self.inner.poll_flush(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_flush(cx))?;
        self.inner.poll_close(cx)
    }
}

/// `serve_stream` over the runtime's server-side TLS stream (behind
/// [`FlushToSend`]), read by the crate's own client: the head and every
/// batch of events arrive at once, with no keep-alive or later write to
/// push them, so the serve loop flushes each batch through TLS; and
/// `Broker::shutdown` ends the stream cleanly: the client sees the end of
/// the body after the shutdown's `retry:`, and a second, raw TLS
/// connection sees the `close_notify` (a clean end of the TLS stream, not
/// a truncation) after the last chunk.
async fn a_stream_served_over_tls_is_flushed_per_batch_and_ends_cleanly<R: Rt>(rt: R) {
    let tls = TlsServer::<R>::bind();
    let (port, cert) = (tls.listener.addr().port(), tls.cert.clone());
    let broker = Broker::new(BrokerConfig::new());
    let mut es = rt
        .event_source(config(&tls.url))
        .unwrap()
        .tls_config(trusting(cert.clone()));
    // Serves two connections: the client's, then the raw one's.
    let server = {
        let (broker, driver, spawner) = (broker.clone(), rt.driver(), rt.clone());
        let config = ServeConfig::new().stream(StreamConfig::new().heartbeat(None));
        rt.spawn(async move {
            let mut streams = Vec::new();
            for _ in 0..2 {
                let mut s = FlushToSend {
                    inner: tls.accept().await,
                    pending: Vec::new(),
                };
                let (broker, driver, config) = (broker.clone(), driver.clone(), config.clone());
                streams.push(spawner.spawn(async move {
                    let (request, _) = read_request(&mut s, HeadLimits::default()).await?;
                    let cursor = Cursor::from_last_event_id(request.last_event_id());
                    let topic = Subscription::new(["t"]);
                    let subscriber = broker.subscribe(topic, cursor, Instant::now());
                    serve_stream(&driver, &mut s, &request, subscriber, &config).await
                }));
            }
            let mut ends = Vec::new();
            for stream in streams {
                ends.push(stream.await.map_err(|e| e.to_string()));
            }
            ends
        })
    };
    let prompt = ms(1000);
    rt.timeout(prompt, async {
        assert!(matches!(next(&mut es).await, Event::Open));
    })
    .await
    .expect("the response head was not flushed");
    let mut id = 0;
    for batch in 1..=5 {
        let sent = Instant::now();
        for _ in 0..batch {
            id += 1;
            let update = Update::new("t", format!("event {id}"));
            broker.publish(update, Instant::now()).unwrap();
        }
        for n in id - batch + 1..=id {
            let data = rt
                .timeout(prompt, message(&mut es))
                .await
                .unwrap_or_else(|| panic!("event {n} was not flushed through TLS"));
            assert_eq!(data.data(), format!("event {n}"));
        }
        assert!(
            sent.elapsed() < prompt,
            "batch {batch}: {:?}",
            sent.elapsed()
        );
    }

    let tls_config = TlsConfig::new(trusting(cert));
    let tcp = rt.driver().connect("localhost".into(), port);
    let tcp: BoxTransport = Box::new(rt.timeout(WAIT, tcp).await.unwrap().unwrap());
    let connecting = sse_driver::tls::handshake(tcp, "localhost".into(), &tls_config);
    let mut raw = rt.timeout(WAIT, connecting).await.unwrap().unwrap();
    write_all(&mut raw, b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    rt.wait_until("both subscribers", WAIT, || broker.stats().subscribers == 2)
        .await;

    broker.shutdown(Some((ms(1500), Duration::ZERO)), 1);
    match rt.timeout(WAIT, next(&mut es)).await {
        Some(Event::Reconnecting {
            delay,
            reason,
            error,
        }) => {
            assert_eq!(delay, ms(1500), "the shutdown's retry");
            assert_eq!(reason, ReconnectReason::EndOfStream);
            assert!(error.is_none(), "not a clean end: {error:?}");
        }
        other => panic!("expected reconnecting, got {other:?}"),
    }
    es.close();
    // The raw connection reads up to a clean end of the TLS stream.
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = rt.timeout(WAIT, common::read(&mut raw, &mut buf)).await;
        match read.expect("the TLS stream did not end") {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the TLS stream did not end cleanly: {e}"),
        }
    }
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.ends_with("\r\nretry: 1500\n\r\n0\r\n\r\n"),
        "{response}"
    );
    let ends = rt
        .timeout(WAIT, server)
        .await
        .expect("serve_stream did not return");
    assert_eq!(ends, vec![Ok(StreamEnd::Shutdown); 2]);
}

/// A configuration for `url` through the proxy at `proxy` (and not the
/// environment's).
fn via(url: &str, proxy: &str) -> ClientConfig {
    let proxy = ProxySetting::parse(proxy).unwrap();
    config(url).proxies(Proxies::all(proxy))
}

async fn https_goes_through_a_connect_tunnel_end_to_end<R: Rt>(rt: R) {
    let tls = TlsServer::<R>::bind();
    let proxy = Proxy::start(Behaviour::Tunnel);
    let port = tls.listener.addr().port();
    let mut es = rt
        .event_source(via(&tls.url, &proxy.url()))
        .unwrap()
        .tls_config(trusting(tls.cert.clone()));
    let _server = rt.spawn(async move {
        let mut s = tls.accept().await;
        let head = read_head(&mut s).await;
        write_all(&mut s, format!("{OK}data: tunnelled\n\n").as_bytes())
            .await
            .unwrap();
        drain(&mut s).await;
        head
    });
    assert!(matches!(next(&mut es).await, Event::Open));
    assert_eq!(message(&mut es).await.data(), "tunnelled");
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert_eq!(
        heads[0],
        format!("CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n")
    );
}

async fn a_refusing_or_unreachable_proxy_is_named<R: Rt>(rt: R) {
    let proxy = Proxy::start(Behaviour::Refuse(403));
    let mut es = rt
        .event_source(via("https://localhost:9/events", &proxy.url()).no_reconnect())
        .unwrap();
    match es.next().await {
        Some(Err(Error::Closed {
            cause: Some(cause), ..
        })) => {
            let proxy = proxy.url().replace("http://", "");
            assert_eq!(
                cause.to_string(),
                format!("the proxy {proxy} refused a tunnel to localhost:9: 403 Forbidden")
            );
        }
        other => panic!("{other:?}"),
    }
    // Nothing listens at the proxy's address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = closed.local_addr().unwrap();
    drop(closed);
    let mut es = rt
        .event_source(via("https://localhost:9/events", &format!("http://{gone}")).no_reconnect())
        .unwrap();
    match es.next().await {
        Some(Err(Error::Closed {
            cause: Some(cause), ..
        })) => {
            let said = cause.to_string();
            assert!(
                said.starts_with(&format!(
                    "connection error: cannot connect to the proxy {gone}: "
                )),
                "{said}"
            );
        }
        other => panic!("{other:?}"),
    }
}

async fn http_goes_to_the_proxy_with_the_absolute_url<R: Rt>(rt: R) {
    // The listener plays the proxy: it answers the request itself.
    let proxy = Listener::<R>::bind();
    let proxy_url = proxy.url("");
    let mut es = rt
        .event_source(via("http://example.invalid:8080/events?x=1", &proxy_url))
        .unwrap();
    let server = rt.spawn(async move { proxy.answer(&format!("{OK}data: proxied\n\n")).await });
    assert!(matches!(next(&mut es).await, Event::Open));
    assert_eq!(message(&mut es).await.data(), "proxied");
    drop(es);
    let head = server.await;
    assert!(
        head.starts_with(
            "GET http://example.invalid:8080/events?x=1 HTTP/1.1\r\nHost: example.invalid:8080\r\n"
        ),
        "{head}"
    );
}
