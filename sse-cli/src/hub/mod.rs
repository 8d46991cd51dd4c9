//! `sse hub`: the Mercure-compatible publish/subscribe hub of the
//! `sse-hub` library, run as a command: flags and environment variables,
//! the runtimes, signals, logging and the chat page. Everything the hub
//! does with requests is the library's.

mod config;
mod page;

use std::io;

use sse_hub::{FdLimit, Hub};
use tracing::{info, warn};

pub use config::{HubArgs, LONG_ABOUT};
pub use sse_hub::Error;

/// Runs the hub until SIGINT or SIGTERM.
pub fn run(args: &HubArgs) -> Result<(), Error> {
    let config = args.to_config();
    config.validate()?;
    init_logging();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let derived = Threads::for_cores(cores);
    let threads = Threads {
        streams: args.stream_threads.map_or(derived.streams, usize::from),
        requests: args.request_threads.map_or(derived.requests, usize::from),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.streams)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    // Event streams run on `runtime`; every other request on a second
    // one, with its own threads and event loop, so that a publish is taken
    // as soon as it arrives, however many streams are busy writing: what
    // is published while a stream waits for its turn then goes out in its
    // next write (larger writes under load). Built (and dropped) outside
    // the first one's async context.
    let requests = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.requests)
        .thread_name("sse-requests")
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let result = runtime.block_on(serve(config, requests.handle().clone(), threads, cores));
    requests.shutdown_background();
    result
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SSE_HUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&io::stderr()))
        .with_target(false)
        .try_init();
}

/// How many threads each of the hub's two runtimes has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Threads {
    /// The event streams' runtime.
    streams: usize,
    /// Every other request's runtime.
    requests: usize,
}

impl Threads {
    /// The defaults for `cores` available cores: a stream thread per core,
    /// and half as many request threads, at least 2 (a publish must not
    /// wait for another one's work) and at most 8 (publishes are short;
    /// more threads only contend for the broker).
    fn for_cores(cores: usize) -> Threads {
        Threads {
            streams: cores.max(1),
            requests: (cores / 2).clamp(2, 8),
        }
    }
}

async fn serve(
    config: sse_hub::Config,
    requests: tokio::runtime::Handle,
    threads: Threads,
    cores: usize,
) -> Result<(), Error> {
    // First, before the hub opens anything else.
    let fd_limit = sse_hub::raise_descriptor_limit();
    let given = config.max_connections.is_some();
    let mut config = config;
    let max_connections = *config
        .max_connections
        .get_or_insert_with(|| sse_hub::derived_max_connections(fd_limit));
    let listener = sse_hub::listen(config.listen).map_err(|e| Error::Bind(config.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Bind(config.listen, e))?;
    let (history, heartbeat) = (config.history, config.heartbeat);
    let subscriptions = config
        .subscriptions
        .then_some((config.max_subscriptions, config.max_subscriptions_bytes));
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let hub = Hub::start_on(config, requests).await?;
    info!(
        "sse hub listening on {scheme}://{addr} (backend: {}, history: {history} events, auth: {}, heartbeat: {})",
        hub.backend(),
        hub.auth_summary(),
        heartbeat
            .filter(|d| !d.is_zero())
            .map_or("off".to_owned(), |d| format!("{d:?}")),
    );
    log_descriptors(fd_limit, max_connections, given);
    info!(
        "threads: {} for event streams, {} for other requests ({cores} cores available)",
        threads.streams, threads.requests
    );
    if let Some((entries, bytes)) = subscriptions {
        info!(
            "subscriptions announced on {}/{{topic}}/{{subscriber}} and listed at GET {} \
             (at most {entries} entries, {bytes} bytes)",
            sse_hub::SUBSCRIPTIONS_PATH,
            sse_hub::SUBSCRIPTIONS_PATH
        );
    }
    // After the first line, which says where the hub listens.
    for warning in hub.warnings() {
        warn!("{warning}");
    }
    hub.serve(listener, shutdown_signal()).await;
    Ok(())
}

/// Logs the descriptor limit and the connection limit (after the first
/// line).
fn log_descriptors(limit: Option<FdLimit>, max_connections: usize, given: bool) {
    let how = if given {
        "--max-connections"
    } else {
        "derived from the descriptor limit"
    };
    let Some(limit) = limit else {
        info!("at most {max_connections} connections ({how})");
        return;
    };
    let raised = if limit.now > limit.before {
        format!("raised from {}", limit.before)
    } else {
        "the hard limit, or as high as it could be raised".to_owned()
    };
    info!(
        "file descriptors: limit {} ({raised}); at most {max_connections} connections ({how}; \
         {} descriptors kept for the rest)",
        limit.now,
        limit.reserve()
    );
    let derived = limit.max_connections();
    if given && max_connections > derived {
        warn!(
            "--max-connections {max_connections} is above what {} file descriptors allow \
             ({derived}): when they run out, new connections get 503 until some close",
            limit.now
        );
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::Threads;

    #[test]
    fn threads_follow_the_cores() {
        let t = |cores| {
            let Threads { streams, requests } = Threads::for_cores(cores);
            (streams, requests)
        };
        assert_eq!(t(0), (1, 2));
        assert_eq!(t(1), (1, 2));
        // The machine the defaults were tuned on: as before.
        assert_eq!(t(2), (2, 2));
        assert_eq!(t(4), (4, 2));
        assert_eq!(t(8), (8, 4));
        assert_eq!(t(64), (64, 8));
    }
}
