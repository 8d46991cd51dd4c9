//! `baseline-hub`: the hub a Rust developer writes in an afternoon, to
//! measure `sse hub` against (see `sse-load` and `benches/load.sh`).
//!
//! axum 0.8 and one `tokio::sync::broadcast` channel (capacity 1024) that
//! carries every update; each subscriber filters it by topic and formats its
//! own `axum::response::sse::Event`s. No history, no keep-alive comments.
//! A receiver that falls more than the channel's capacity behind skips the
//! oldest updates (`RecvError::Lagged`): counted, and served on `/metrics` as
//! `baseline_lagged_events_total`.
//!
//! `GET /.well-known/mercure?topic=T` subscribes, `POST /.well-known/mercure`
//! with the form fields `topic` and `data` publishes (the answer is the
//! assigned id). Like `sse hub`, it says `listening on http://ADDR` on stderr.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use clap::Parser;
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// The channel's capacity: how far a subscriber may fall behind before it
/// skips updates.
const CAPACITY: usize = 1024;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    about = "A minimal axum + tokio::sync::broadcast Mercure-style hub (the load-test baseline)"
)]
struct Args {
    /// The address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// The listen backlog. By default the socket is bound the usual way,
    /// `tokio::net::TcpListener::bind` (std's backlog of 128); with this,
    /// through `TcpSocket` and `listen(N)` (the kernel caps N at
    /// `net.core.somaxconn`).
    #[arg(long)]
    backlog: Option<u32>,
}

/// One published update.
#[derive(Clone, Debug)]
struct Update {
    topic: Arc<str>,
    id: u64,
    data: Arc<str>,
}

/// What every handler shares.
struct Hub {
    tx: broadcast::Sender<Update>,
    next_id: AtomicU64,
    lagged_events: AtomicU64,
    lagged_times: AtomicU64,
}

#[derive(Deserialize)]
struct SubscribeQuery {
    topic: String,
}

#[derive(Deserialize)]
struct PublishForm {
    topic: String,
    #[serde(default)]
    data: String,
}

async fn subscribe(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<SubscribeQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = hub.tx.subscribe();
    let stream =
        futures::stream::unfold((rx, query.topic, hub), |(mut rx, topic, hub)| async move {
            loop {
                match rx.recv().await {
                    Ok(update) if *update.topic == *topic => {
                        let event = Event::default()
                            .id(update.id.to_string())
                            .data(&*update.data);
                        return Some((Ok(event), (rx, topic, hub)));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(skipped)) => {
                        hub.lagged_events.fetch_add(skipped, Ordering::Relaxed);
                        hub.lagged_times.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
    Sse::new(stream)
}

async fn publish(State(hub): State<Arc<Hub>>, Form(form): Form<PublishForm>) -> String {
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    // No subscriber is not an error.
    let _ = hub.tx.send(Update {
        topic: form.topic.into(),
        id,
        data: form.data.into(),
    });
    id.to_string()
}

async fn metrics(State(hub): State<Arc<Hub>>) -> String {
    format!(
        "baseline_subscribers {}\nbaseline_lagged_events_total {}\nbaseline_lagged_total {}\n",
        hub.tx.receiver_count(),
        hub.lagged_events.load(Ordering::Relaxed),
        hub.lagged_times.load(Ordering::Relaxed),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let (tx, _) = broadcast::channel(CAPACITY);
    let hub = Arc::new(Hub {
        tx,
        next_id: AtomicU64::new(0),
        lagged_events: AtomicU64::new(0),
        lagged_times: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/.well-known/mercure", get(subscribe).post(publish))
        .route("/metrics", get(metrics))
        .with_state(hub);
    let listener = match args.backlog {
        None => tokio::net::TcpListener::bind(args.listen).await?,
        Some(backlog) => {
            let socket = if args.listen.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(args.listen)?;
            socket.listen(backlog)?
        }
    };
    eprintln!(
        "baseline hub listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await
}
