//! The hub's routes inside an ordinary axum application.
//!
//! The application serves its own routes (`GET /` and `GET /api/status`)
//! and mounts the hub's: subscribe with
//! `GET /.well-known/mercure?topic=...`, publish with
//! `POST /.well-known/mercure`.
//!
//! ```text
//! cargo run -p sse-hub --features axum --example axum_app [127.0.0.1:3000]
//! curl -N 'localhost:3000/.well-known/mercure?topic=news'
//! curl -d topic=news -d data=hello localhost:3000/.well-known/mercure
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use sse_hub::{Config, Hub};

/// The application's own state: here only the hub, for its status.
#[derive(Clone)]
struct App {
    hub: Hub,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned())
        .parse()?;
    let mut config = Config::default();
    // The `Host` values the hub answers follow the address it is served on.
    config.listen = addr;
    config.heartbeat = Some(std::time::Duration::from_secs(10));
    let hub = Hub::start(config).await?;

    let app = Router::new()
        .route("/", get(|| async { "an application with a hub inside\n" }))
        .route("/api/status", get(status))
        .with_state(App { hub: hub.clone() })
        .merge(hub.router());

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            // Ends every stream with a `retry:` so that subscribers come
            // back when the application does.
            hub.shutdown().await;
        })
        .await?;
    Ok(())
}

/// The application's own route, next to the hub's.
async fn status(State(app): State<App>) -> String {
    format!(
        "backend: {}, subscribers: {}\n",
        app.hub.backend(),
        app.hub.subscribers()
    )
}
