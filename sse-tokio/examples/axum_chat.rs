//! A chat room in one file: an axum server whose page subscribes with the
//! browser's `EventSource` and posts messages with `fetch`.
//!
//! ```text
//! cargo run -p sse-tokio --example axum_chat --features axum,gzip
//! # then open http://127.0.0.1:3000/ in two browser windows
//! ```
//!
//! Reloading the page (or a dropped connection) resumes from the last
//! message seen: the browser sends `Last-Event-ID` and the broker replays
//! what was missed.

use std::time::{Duration, Instant};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use axum::routing::{get, post};
use sse_tokio::server::{
    Broker, BrokerConfig, Cursor, EventStream, ServeConfig, StreamConfig, Subscription, Update,
};

const TOPIC: &str = "chat";

#[derive(Clone)]
struct App {
    broker: Broker,
    serve: ServeConfig,
}

#[derive(serde::Deserialize)]
struct Message {
    name: String,
    text: String,
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn events(State(app): State<App>, headers: HeaderMap) -> EventStream {
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let subscriber = app.broker.subscribe(
        Subscription::new([TOPIC]),
        Cursor::from_last_event_id(last_event_id),
        Instant::now(),
    );
    EventStream::new(&headers, subscriber, &app.serve)
}

async fn send(State(app): State<App>, Form(message): Form<Message>) -> (StatusCode, String) {
    let name = message.name.trim();
    let text = message.text.trim();
    if text.is_empty() || text.len() > 2000 || name.len() > 50 {
        return (
            StatusCode::BAD_REQUEST,
            "a message needs 1 to 2000 bytes of text".into(),
        );
    }
    let line = format!("{}: {text}", if name.is_empty() { "someone" } else { name });
    match app.broker.publish(Update::new(TOPIC, line), Instant::now()) {
        Ok(published) => (StatusCode::OK, published.id.to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = App {
        broker: Broker::new(BrokerConfig::new()),
        serve: ServeConfig::new().stream(
            StreamConfig::new()
                .heartbeat(Some(Duration::from_secs(15)))
                .retry(Some(Duration::from_secs(2))),
        ),
    };
    let broker = app.broker.clone();
    let router = axum::Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/send", post(send))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("chat on http://{}/", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            // Every stream gets a `retry:` between 1 and 4 s, then ends.
            broker.shutdown(
                Some((Duration::from_secs(1), Duration::from_secs(3))),
                0x5eed,
            );
        })
        .await
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; }
  #log p { margin: .2em 0; }
  #state { color: #888; }
</style>
<h1>chat <small id="state">connecting</small></h1>
<div id="log"></div>
<form id="form">
  <input id="name" placeholder="name" size="10">
  <input id="text" placeholder="message" size="40" autocomplete="off" autofocus>
  <button>send</button>
</form>
<script>
  const log = document.getElementById("log");
  const state = document.getElementById("state");
  const source = new EventSource("/events");
  source.onopen = () => state.textContent = "live";
  source.onerror = () => state.textContent = "reconnecting";
  source.onmessage = (e) => {
    const p = document.createElement("p");
    p.textContent = e.data;
    log.append(p);
    log.scrollTop = log.scrollHeight;
  };
  document.getElementById("form").onsubmit = async (e) => {
    e.preventDefault();
    const text = document.getElementById("text");
    const body = new URLSearchParams({ name: document.getElementById("name").value, text: text.value });
    const response = await fetch("/send", { method: "POST", body });
    if (response.ok) text.value = "";
  };
</script>
</html>
"#;
