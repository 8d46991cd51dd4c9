//! A small event-stream server on smol.
//!
//! * `GET /events?topic=news` streams the topic's events (resuming after
//!   `Last-Event-ID` when the client sends one);
//! * `POST /publish?topic=news` with the event's data as the body publishes
//!   it and answers `200` with the event's id;
//! * anything else is `404`.
//!
//! ```text
//! cargo run -p sse-async-std --example smol_server [127.0.0.1:8081]
//! curl -N localhost:8081/events?topic=news
//! curl -d 'hello' 'localhost:8081/publish?topic=news'
//! ```

use std::io;
use std::time::{Duration, Instant};

use async_io::Timer;
use async_net::{TcpListener, TcpStream};
use bytes::BytesMut;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use sse_async_std::server::{
    AsyncIo, Broker, BrokerConfig, Cursor, FuturesIo, HeadError, HeadLimits, RequestHead, Response,
    ServeConfig, ServeError, StreamConfig, Subscription, Update, read_request, serve_stream,
};
use sse_proto::http1::{BodyDecoder, Framing};

/// The largest body `POST /publish` takes.
const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send its request (head and body).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    smol::block_on(async {
        let listener = TcpListener::bind(addr.as_str()).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let broker = Broker::new(BrokerConfig::new());
        let config =
            ServeConfig::new().stream(StreamConfig::new().retry(Some(Duration::from_secs(2))));
        loop {
            let (socket, peer) = listener.accept().await?;
            let (broker, config) = (broker.clone(), config.clone());
            smol::spawn(async move {
                if let Err(e) = handle(socket, &broker, &config).await {
                    eprintln!("{peer}: {e}");
                }
            })
            .detach();
        }
    })
}

/// Answers one connection (one request).
async fn handle(
    mut socket: TcpStream,
    broker: &Broker,
    config: &ServeConfig,
) -> Result<(), ServeError> {
    let request = smol::future::or(
        read_request(&mut FuturesIo::new(&mut socket), HeadLimits::default()),
        async {
            Timer::after(REQUEST_TIMEOUT).await;
            Err(ServeError::Io(io::ErrorKind::TimedOut.into()))
        },
    )
    .await;
    let (request, rest) = match request {
        Ok(request) => request,
        Err(ServeError::Head(e)) => {
            let status = match e {
                HeadError::TooLarge | HeadError::TooManyHeaders => 431,
                _ => 400,
            };
            return respond(&mut socket, status, "bad request\n").await;
        }
        Err(e) => return Err(e),
    };
    let topic = query_param(request.query(), "topic").unwrap_or("default");
    match (request.method(), request.path()) {
        ("GET", "/events") => {
            let cursor = Cursor::from_last_event_id(request.last_event_id());
            let subscriber = broker.subscribe(Subscription::new([topic]), cursor, Instant::now());
            let end = serve_stream(
                &AsyncIo,
                &mut FuturesIo::new(&mut socket),
                &request,
                subscriber,
                config,
            )
            .await?;
            println!("stream of {topic:?} ended: {end:?}");
            Ok(())
        }
        ("POST", "/publish") => {
            let body = smol::future::or(read_body(&mut socket, &request, rest), async {
                Timer::after(REQUEST_TIMEOUT).await;
                Err(io::ErrorKind::TimedOut.into())
            })
            .await;
            let Ok(data) = body.map(String::from_utf8) else {
                return respond(&mut socket, 400, "unreadable body\n").await;
            };
            let Ok(data) = data else {
                return respond(&mut socket, 400, "the body is not UTF-8\n").await;
            };
            match broker.publish(Update::new(topic, data), Instant::now()) {
                Ok(published) => respond(&mut socket, 200, &format!("{}\n", published.id)).await,
                Err(e) => respond(&mut socket, 503, &format!("{e}\n")).await,
            }
        }
        _ => respond(&mut socket, 404, "not found\n").await,
    }
}

/// Reads the request body (`Content-Length` or chunked, at most
/// [`MAX_BODY`]); `rest` is what was read after the head.
async fn read_body(
    socket: &mut TcpStream,
    request: &RequestHead,
    mut rest: BytesMut,
) -> io::Result<Vec<u8>> {
    let kind = request.body_kind().map_err(io::Error::other)?;
    let mut decoder = BodyDecoder::new(kind);
    let mut body = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(piece) = decoder.decode(&mut rest).map_err(io::Error::other)? {
            body.extend_from_slice(&piece);
            if body.len() > MAX_BODY {
                return Err(io::Error::other("body too large"));
            }
        }
        if decoder.is_done() {
            return Ok(body);
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        rest.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Writes a short `text/plain` response.
async fn respond(socket: &mut TcpStream, status: u16, body: &str) -> Result<(), ServeError> {
    let mut response = Response::new(status).map_err(io::Error::other)?;
    response
        .header("Content-Type", "text/plain; charset=utf-8")
        .map_err(io::Error::other)?
        .framing(Framing::Length(body.len() as u64));
    let mut out = BytesMut::new();
    response.encode(&mut out);
    out.extend_from_slice(body.as_bytes());
    socket.write_all(&out).await?;
    socket.flush().await?;
    Ok(())
}

/// The value of `name` in a query string (as it is: no percent-decoding).
fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}
