//! Where updates go: the in-memory broker (one process), or Redis (many
//! processes acting as one hub).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sse_tokio::server::{Broker, BrokerConfig, PublishError, ReplayConfig, Update};

use super::metrics::Metrics;
use super::presence::Registry;
use super::redis::RedisBackend;
use crate::config::Config;

/// Why a publish failed.
#[derive(Debug)]
pub enum PublishFailure {
    /// The update itself was refused.
    Rejected(PublishError),
    /// The backend cannot take updates now (503): nothing was published.
    Unavailable(String),
    /// The update is invalid (400).
    Invalid(String),
}

/// A validated update, as the publisher sent it.
#[derive(Clone, Debug)]
pub struct Publication {
    pub topics: Vec<String>,
    pub data: String,
    pub event_type: Option<String>,
    pub id: Option<String>,
    pub retry_ms: Option<u64>,
    pub private: bool,
    /// The hub process that publishes it (its own announcements, on
    /// Redis), for the others' lists of active subscriptions.
    pub hub: Option<String>,
    /// For a subscription announcement on Redis: the change to the table
    /// of active subscriptions, made with the update, atomically.
    pub record: Option<Record>,
}

/// A change to Redis's table of active subscriptions.
#[derive(Clone, Debug)]
pub struct Record {
    /// The subscription's key (its draft-08 event topic).
    pub field: String,
    /// `Some`: it starts (with this value, `"{hub} {event data}"`);
    /// `None`: it ends.
    pub value: Option<String>,
}

impl Publication {
    /// The broker's update (with `id` when the id is already decided).
    pub fn to_update(&self, id: Option<&str>) -> Result<Update, String> {
        let mut topics = self.topics.iter();
        let first = topics.next().ok_or("an update needs a topic")?;
        let mut update = Update::new(first.as_str(), self.data.as_str());
        for topic in topics {
            update = update.topic(topic.as_str());
        }
        if let Some(t) = &self.event_type {
            update = update.event_type(t.as_str()).map_err(|e| e.to_string())?;
        }
        if let Some(id) = id.or(self.id.as_deref()) {
            update = update.id(id).map_err(|e| e.to_string())?;
        }
        if let Some(ms) = self.retry_ms {
            update = update.retry(Duration::from_millis(ms));
        }
        Ok(update.private(self.private))
    }
}

/// The hub's backend.
pub enum Backend {
    /// History and fan-out in this process.
    Memory(Broker),
    /// History in Redis, shared by every process; fan-out by each process's
    /// broker.
    Redis(Broker, Arc<RedisBackend>),
}

impl Backend {
    /// Starts the backend the configuration asks for.
    /// With `registry` (`--subscriptions`), the subscription events read
    /// from Redis are applied to it as they enter the broker.
    pub async fn start(
        config: &Config,
        _metrics: Metrics,
        registry: Option<Arc<Registry>>,
    ) -> Result<Backend, String> {
        let broker = Broker::new(broker_config(config));
        match &config.redis {
            Some(url) => {
                let redis =
                    RedisBackend::start(url, redis_history(config), broker.clone(), registry)?;
                Ok(Backend::Redis(broker, Arc::new(redis)))
            }
            None => Ok(Backend::Memory(broker)),
        }
    }

    /// The local broker, which serves this process's subscribers.
    pub fn broker(&self) -> &Broker {
        match self {
            Backend::Memory(broker) | Backend::Redis(broker, _) => broker,
        }
    }

    /// For the first log line.
    pub fn describe(&self) -> String {
        match self {
            Backend::Memory(_) => "in-memory".to_owned(),
            Backend::Redis(_, redis) => redis.describe(),
        }
    }

    /// Whether updates can be published now.
    pub fn is_up(&self) -> bool {
        match self {
            Backend::Memory(broker) => !broker.is_shut_down(),
            Backend::Redis(broker, redis) => !broker.is_shut_down() && redis.is_up(),
        }
    }

    /// Publishes an update; the id it got once it is in the history.
    pub async fn publish(&self, publication: &Publication) -> Result<String, PublishFailure> {
        match self {
            Backend::Memory(broker) => {
                let update = publication
                    .to_update(None)
                    .map_err(PublishFailure::Invalid)?;
                broker
                    .publish(update, Instant::now())
                    .map(|p| p.id.to_string())
                    .map_err(|e| match e {
                        PublishError::ShutDown => {
                            PublishFailure::Unavailable("the hub is shutting down".into())
                        }
                        e => PublishFailure::Rejected(e),
                    })
            }
            Backend::Redis(broker, redis) => {
                if broker.is_shut_down() {
                    return Err(PublishFailure::Unavailable(
                        "the hub is shutting down".into(),
                    ));
                }
                redis.publish(publication).await
            }
        }
    }

    /// Starts following the shared stream (Redis), once the hub has said
    /// how it runs: until then the backend logs nothing.
    pub fn follow(&self) {
        if let Backend::Redis(_, redis) = self {
            redis.follow();
        }
    }

    /// Stops background work (at shutdown).
    pub fn stop(&self) {
        if let Backend::Redis(_, redis) = self {
            redis.stop();
        }
    }
}

/// The broker's limits from the hub's flags. Ids are `{start ms}-{n}`, so
/// an id from an earlier run of the hub is recognised as unknown.
pub fn broker_config(config: &Config) -> BrokerConfig {
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    BrokerConfig::new()
        .replay(
            ReplayConfig::new()
                .max_events(config.history)
                .max_bytes(config.history_bytes),
        )
        .queue(config.queue, 16 << 20)
        .max_patterns(config.max_patterns)
        .id_prefix(format!("{start}-"))
}

/// The Redis stream's bounds from the hub's flags.
fn redis_history(config: &Config) -> super::redis::History {
    super::redis::History {
        entries: config.history,
        bytes: config.history_bytes,
        entry_bytes: super::redis::entry_limit(config.max_body),
    }
}
