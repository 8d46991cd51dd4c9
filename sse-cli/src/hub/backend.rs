//! Where updates go: the in-memory broker (one process), or Redis (many
//! processes acting as one hub).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sse_tokio::server::{Broker, BrokerConfig, PublishError, ReplayConfig, Update};

use super::config::HubConfig;
use super::metrics::Metrics;

/// Why a publish failed.
#[derive(Debug)]
pub enum PublishFailure {
    /// The update itself was refused.
    Rejected(PublishError),
    /// The backend cannot take updates now (503): nothing was published.
    Unavailable(String),
}

/// The hub's backend.
pub enum Backend {
    /// History and fan-out in this process.
    Memory(Broker),
}

impl Backend {
    /// Starts the backend the configuration asks for.
    pub async fn start(config: &HubConfig, _metrics: Metrics) -> Result<Backend, String> {
        let broker = Broker::new(broker_config(config));
        if let Some(url) = &config.redis {
            return Err(format!(
                "--redis {url}: the Redis backend is not available in this build yet; run without --redis for the in-memory hub"
            ));
        }
        Ok(Backend::Memory(broker))
    }

    /// The local broker, which serves this process's subscribers.
    pub fn broker(&self) -> &Broker {
        match self {
            Backend::Memory(broker) => broker,
        }
    }

    /// For the first log line.
    pub fn describe(&self) -> String {
        match self {
            Backend::Memory(_) => "in-memory".to_owned(),
        }
    }

    /// Whether updates can be published now.
    pub fn is_up(&self) -> bool {
        match self {
            Backend::Memory(broker) => !broker.is_shut_down(),
        }
    }

    /// Publishes an update; the id it got once it is in the history.
    pub async fn publish(&self, update: Update) -> Result<String, PublishFailure> {
        match self {
            Backend::Memory(broker) => {
                broker
                    .publish(update)
                    .map(|p| p.id.to_string())
                    .map_err(|e| match e {
                        PublishError::ShutDown => {
                            PublishFailure::Unavailable("the hub is shutting down".into())
                        }
                        e => PublishFailure::Rejected(e),
                    })
            }
        }
    }

    /// Stops background work (at shutdown).
    pub fn stop(&self) {}
}

/// The broker's limits from the hub's flags. Ids are `{start ms}-{n}`, so
/// an id from an earlier run of the hub is recognised as unknown.
pub fn broker_config(config: &HubConfig) -> BrokerConfig {
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    BrokerConfig::new()
        .replay(ReplayConfig::new().max_events(config.history))
        .queue(config.queue, 16 << 20)
        .id_prefix(format!("{start}-"))
}
