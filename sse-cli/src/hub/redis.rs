//! The Redis backend: every hub process started with the same Redis acts
//! as one hub.
//!
//! Design: one Redis Stream holds the updates, trimmed to about `--history`
//! entries (`XADD ... MAXLEN ~ N`). A publish is acknowledged once `XADD`
//! returns, with the entry's id as the event id (or the publisher's own
//! id). Each process runs one reader that follows the stream (`XREAD
//! BLOCK`) and publishes every entry, in stream order, into its local
//! broker, which fans it out to the process's subscribers and keeps the
//! history for replay. So every process holds the same events under the
//! same ids in the same order: a client can resume on any process with an
//! id it got from another. At start the reader loads the newest `--history`
//! entries (`XREVRANGE`), so a process that joins late has the same
//! history.
//!
//! When Redis goes away, subscribers stay connected to their process,
//! publishes answer 503 (nothing is half-published: an update exists once
//! `XADD` succeeded, and only then), `/healthz` answers 503, and the reader
//! reconnects with backoff; it resumes `XREAD` after the last entry it
//! delivered, so what other processes published meanwhile is delivered
//! (as far as the stream still holds it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};
use sse_tokio::server::{Broker, Update};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::backend::{Publication, PublishFailure};
use super::redact::{self, Secrets};

/// The stream's key.
const KEY: &str = "sse-hub:updates";
/// How long one `XREAD` blocks (the reader also notices a dead connection
/// by its error).
const BLOCK_MS: u64 = 2000;
/// The most entries one `XREAD` returns.
const BATCH: usize = 512;

/// The Redis side of the hub.
pub struct RedisBackend {
    client: Client,
    history: usize,
    publisher: Mutex<Option<MultiplexedConnection>>,
    up: Arc<AtomicBool>,
    reader: JoinHandle<()>,
    /// Lets the reader go once the hub has logged its first line (so the
    /// reader's own log lines come after it).
    go: Mutex<Option<oneshot::Sender<()>>>,
    /// The URL without its password.
    url: String,
    /// The password, to scrub from Redis's error messages.
    secrets: Secrets,
}

impl RedisBackend {
    /// Checks the URL and starts the reader, which waits for
    /// [`RedisBackend::follow`]; Redis need not be up yet.
    pub fn start(url: &str, history: usize, broker: Broker) -> Result<RedisBackend, String> {
        let client = Client::open(url).map_err(|e| {
            let secrets = Secrets::of_url(url, None);
            format!(
                "--redis {}: {} (write it like redis://127.0.0.1:6379 or redis://host:port/db)",
                redact::url(url),
                secrets.scrub(&e.to_string())
            )
        })?;
        let secrets = Secrets::of_url(
            url,
            client.get_connection_info().redis_settings().password(),
        );
        let up = Arc::new(AtomicBool::new(false));
        let (client_for_reader, reader_up) = (client.clone(), up.clone());
        let reader_secrets = secrets.clone();
        let (go, wait) = oneshot::channel();
        let reader = tokio::spawn(async move {
            // A dropped sender (the hub stopping at once) lets it go too.
            let _ = wait.await;
            read_loop(
                client_for_reader,
                history,
                broker,
                reader_up,
                reader_secrets,
            )
            .await;
        });
        Ok(RedisBackend {
            client,
            history,
            publisher: Mutex::new(None),
            up,
            reader,
            go: Mutex::new(Some(go)),
            url: redact::url(url),
            secrets,
        })
    }

    /// Lets the reader connect and follow the stream.
    pub fn follow(&self) {
        if let Some(go) = self.go.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = go.send(());
        }
    }

    /// For the first log line.
    pub fn describe(&self) -> String {
        format!("redis ({}, stream {KEY})", self.url)
    }

    /// Whether Redis is reachable (the reader is connected).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Appends the update to the stream; its id once Redis has it.
    pub async fn publish(&self, publication: &Publication) -> Result<String, PublishFailure> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(KEY)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.history.max(1))
            .arg("*");
        add_fields(&mut cmd, publication);
        // A connection that Redis dropped (a restart, say) is replaced once:
        // the command never reached Redis on it.
        let mut attempts = 0;
        let entry = loop {
            attempts += 1;
            let mut connection = self.connection().await.map_err(|e| self.failed(e))?;
            match cmd.query_async::<Value>(&mut connection).await {
                Ok(Value::BulkString(id)) => break String::from_utf8_lossy(&id).into_owned(),
                Ok(Value::SimpleString(id)) => break id,
                Ok(other) => {
                    return Err(PublishFailure::Unavailable(
                        self.secrets
                            .scrub(&format!("unexpected reply from Redis to XADD: {other:?}")),
                    ));
                }
                Err(e) => {
                    *self.publisher.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    if attempts == 1 && e.is_connection_dropped() {
                        continue;
                    }
                    return Err(self.failed(e.to_string()));
                }
            }
        };
        Ok(publication.id.clone().unwrap_or(entry))
    }

    fn failed(&self, why: String) -> PublishFailure {
        PublishFailure::Unavailable(format!(
            "Redis is unreachable ({})",
            self.secrets.scrub(&why)
        ))
    }

    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        if let Some(c) = self
            .publisher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(c);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        *self.publisher.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Stops the reader.
    pub fn stop(&self) {
        self.reader.abort();
    }
}

/// Adds a publication to `XADD` as stream fields (borrowing the data: a
/// publish may carry a megabyte).
fn add_fields(cmd: &mut redis::Cmd, p: &Publication) {
    let topics = serde_json::to_string(&p.topics).unwrap_or_else(|_| "[]".into());
    cmd.arg("topics")
        .arg(topics)
        .arg("data")
        .arg(p.data.as_bytes());
    if let Some(t) = &p.event_type {
        cmd.arg("type").arg(t.as_bytes());
    }
    if let Some(id) = &p.id {
        cmd.arg("id").arg(id.as_bytes());
    }
    if let Some(ms) = p.retry_ms {
        cmd.arg("retry").arg(ms);
    }
    if p.private {
        cmd.arg("private").arg("1");
    }
}

/// Follows the stream into the local broker, reconnecting forever.
async fn read_loop(
    client: Client,
    history: usize,
    broker: Broker,
    up: Arc<AtomicBool>,
    secrets: Secrets,
) {
    // Redis's errors may quote what they were given: never the password.
    let scrub = |e: &dyn std::fmt::Display| secrets.scrub(&e.to_string());
    let mut last: Option<String> = None;
    let mut backoff = Duration::from_millis(100);
    // Whether the current outage was logged already.
    let mut outage_logged = false;
    loop {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_millis(BLOCK_MS + 3000)));
        let mut connection = match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                if !outage_logged {
                    warn!(
                        "Redis unreachable: {}; retrying (publishes answer 503 meanwhile)",
                        scrub(&e)
                    );
                    outage_logged = true;
                }
                up.store(false, Ordering::SeqCst);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if let Some(from) = &last {
            // Back after an outage: were entries trimmed before this
            // process could read them?
            match trimmed_after(&mut connection, from).await {
                Ok(false) => {}
                Ok(true) => {
                    let ended = broker.discontinue();
                    warn!(
                        "entries after {from} were trimmed from {KEY} (--history) before this \
                         process could read them: its history is forgotten and {ended} streams \
                         end, so that their clients resume and learn that events may be lost"
                    );
                }
                Err(e) => {
                    warn!("cannot read {KEY}'s state from Redis: {}", scrub(&e));
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
        } else {
            match load_history(&mut connection, history, &broker).await {
                Ok(newest) => last = Some(newest.unwrap_or_else(|| "0-0".to_owned())),
                Err(e) => {
                    warn!("cannot read the history from Redis: {}", scrub(&e));
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
        }
        up.store(true, Ordering::SeqCst);
        backoff = Duration::from_millis(100);
        info!("connected to Redis; following {KEY}");
        loop {
            let from = last.clone().unwrap_or_else(|| "0-0".to_owned());
            let reply = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(BATCH)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(KEY)
                .arg(&from)
                .query_async::<Value>(&mut connection)
                .await;
            match reply {
                Ok(value) => {
                    for (id, fields) in xread_entries(value) {
                        deliver(&broker, &id, &fields);
                        last = Some(id);
                    }
                }
                Err(e) => {
                    warn!(
                        "lost Redis: {}; reconnecting (subscribers stay connected)",
                        scrub(&e)
                    );
                    up.store(false, Ordering::SeqCst);
                    outage_logged = true;
                    break;
                }
            }
        }
    }
}

/// Whether entries after `last` may have been trimmed from the stream
/// before this process read them: true when `last` itself is gone (the
/// oldest retained entry is newer) and the stream has lost entries at all
/// (`XINFO STREAM`: fewer entries than were ever added; Redis 7 and later,
/// older servers are taken to have). Trimming (`MAXLEN ~`) drops whole
/// nodes of entries from the oldest, so the entries that followed `last`
/// in its node went with it; only when `last` ended its node is this a
/// false alarm, which costs the clients a reconnection, never an event.
async fn trimmed_after(
    connection: &mut MultiplexedConnection,
    last: &str,
) -> redis::RedisResult<bool> {
    let info = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(KEY)
        .query_async::<Value>(connection)
        .await;
    let info = match info {
        Ok(info) => info,
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
            return Err(e);
        }
        // No stream (`ERR no such key`): nothing to miss.
        Err(_) => return Ok(false),
    };
    let mut length = None;
    let mut added = None;
    let mut oldest = None;
    let pairs: Vec<(Value, Value)> = match info {
        Value::Array(flat) => {
            let mut flat = flat.into_iter();
            core::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    };
    for (name, value) in pairs {
        match text(name).as_deref() {
            Some("length") => length = int(&value),
            Some("entries-added") => added = int(&value),
            Some("first-entry") => {
                oldest = entries(Value::Array(vec![value]))
                    .into_iter()
                    .next()
                    .map(|(id, _)| id);
            }
            _ => {}
        }
    }
    if let (Some(length), Some(added)) = (length, added) {
        if length >= added {
            // Nothing was ever trimmed.
            return Ok(false);
        }
    }
    Ok(
        match (oldest.as_deref().and_then(entry_id), entry_id(last)) {
            (Some(oldest), Some(last)) => oldest > last,
            _ => false,
        },
    )
}

/// A reply's integer.
fn int(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

/// A stream entry id (`ms-seq`) as a pair that orders like Redis does.
fn entry_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Loads the newest `history` entries into the broker, oldest first;
/// returns the newest entry's id.
async fn load_history(
    connection: &mut MultiplexedConnection,
    history: usize,
    broker: &Broker,
) -> redis::RedisResult<Option<String>> {
    if history == 0 {
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(KEY)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(connection)
            .await?;
        return Ok(entries(reply).into_iter().next().map(|(id, _)| id));
    }
    let reply: Value = redis::cmd("XREVRANGE")
        .arg(KEY)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(history)
        .query_async(connection)
        .await?;
    let mut list = entries(reply);
    list.reverse();
    let newest = list.last().map(|(id, _)| id.clone());
    for (id, fields) in &list {
        deliver(broker, id, fields);
    }
    Ok(newest)
}

/// Publishes one stream entry into the local broker.
fn deliver(broker: &Broker, entry_id: &str, fields: &[(String, String)]) {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let topics: Vec<String> = get("topics")
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let mut topics = topics.into_iter();
    let Some(first) = topics.next() else {
        warn!("skipping stream entry {entry_id}: no topics");
        return;
    };
    let mut update = Update::new(first, get("data").unwrap_or(""));
    for topic in topics {
        update = update.topic(topic);
    }
    let id = get("id").unwrap_or(entry_id);
    let built = (|| {
        let mut update = update.id(id).ok()?;
        if let Some(t) = get("type") {
            update = update.event_type(t).ok()?;
        }
        if let Some(ms) = get("retry").and_then(|r| r.parse().ok()) {
            update = update.retry(Duration::from_millis(ms));
        }
        Some(update.private(get("private").is_some()))
    })();
    match built {
        Some(update) => {
            if let Err(e) = broker.publish(update) {
                warn!("stream entry {entry_id} not delivered: {e}");
            }
        }
        None => warn!("skipping stream entry {entry_id}: invalid id or type"),
    }
}

/// The entries of an `XREAD` reply (one stream).
fn xread_entries(value: Value) -> Vec<(String, Vec<(String, String)>)> {
    match value {
        // RESP2: [[key, entries]]; RESP3: {key: entries}.
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut pair) if pair.len() == 2 => pair.pop(),
                _ => None,
            })
            .flat_map(entries)
            .collect(),
        Value::Map(streams) => streams.into_iter().flat_map(|(_, v)| entries(v)).collect(),
        _ => Vec::new(),
    }
}

/// The entries of an `XRANGE`-shaped reply: `[[id, [k, v, ...]], ...]`.
fn entries(value: Value) -> Vec<(String, Vec<(String, String)>)> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut parts) = item else {
                return None;
            };
            if parts.len() != 2 {
                return None;
            }
            let fields = parts.pop()?;
            let id = text(parts.pop()?)?;
            let Value::Array(flat) = fields else {
                return None;
            };
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                pairs.push((text(k)?, text(v)?));
            }
            Some((id, pairs))
        })
        .collect()
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}
