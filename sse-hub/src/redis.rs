//! The Redis backend: every hub process started with the same Redis acts
//! as one hub.
//!
//! Design: one Redis Stream holds the updates, bounded by `--history`
//! entries and `--history-bytes` bytes. A publish runs one Lua script
//! ([`APPEND`], atomic): `XADD`, then trimming of the oldest entries while
//! the stream is over either bound. The script keeps each entry's size in
//! a companion list and the running total in a companion key, so trimming
//! never reads the entries themselves; it never removes the entry just
//! added (an update larger than the byte cap is kept alone until the next
//! one). Each entry also records the id of the entry before it (`prev`).
//! A publish is acknowledged once the script returns, with the entry's id
//! as the event id (or the publisher's own id). Each process runs one reader that follows the stream (`XREAD
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
//!
//! A reader that finds entries trimmed before it could read them (after
//! an outage, or because a burst outran it) sees it exactly: the first
//! entry it then reads names a `prev` other than the last entry it
//! delivered. It then ends its streams and forgets its history
//! ([`Broker::discontinue`]), so that clients resume and get `sse-lost`.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};
use sse_tokio::server::{Broker, Update};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::backend::{Publication, PublishFailure, Record};
use super::presence::{Entry, Event, Registry};
use super::redact::{self, Secrets};

/// The stream's key.
const KEY: &str = "sse-hub:updates";
/// The list of the stream's entries, oldest first, as `"{id} {size}"`.
const SIZES_KEY: &str = "sse-hub:updates:sizes";
/// The sum of the sizes in [`SIZES_KEY`].
const BYTES_KEY: &str = "sse-hub:updates:bytes";
/// The active subscriptions (`--subscriptions`): a hash from each one's
/// draft-08 event topic to `"{hub} {its event's data}"`, changed by
/// [`APPEND`] with the announcement itself, so that it always agrees with
/// the stream; a process reads it with the history when it starts.
const SUBSCRIPTIONS_KEY: &str = "sse-hub:subscriptions";
/// The bytes counted for an entry on top of its fields' names and values
/// (the id, the `prev` field, Redis's bookkeeping).
const ENTRY_OVERHEAD: usize = 64;
/// How much more than the publish body limit an entry may take: field
/// names, the topics' JSON brackets, [`ENTRY_OVERHEAD`].
const ENTRY_SLACK: usize = 256;

/// Appends an update and keeps the stream within its bounds, atomically.
/// KEYS: the stream, [`SIZES_KEY`], [`BYTES_KEY`], [`SUBSCRIPTIONS_KEY`].
/// ARGV: the most entries, the most bytes, this entry's size, a change to
/// the subscriptions (`set` with a field and a value, `del` with a field,
/// or an empty string and two more), then the entry's fields and values.
/// Returns the new entry's id.
const APPEND: &str = r#"
local stream, sizes, total = KEYS[1], KEYS[2], KEYS[3]
local max_entries = tonumber(ARGV[1])
local max_bytes = tonumber(ARGV[2])
local size = tonumber(ARGV[3])
local fields = {}
if redis.call('EXISTS', stream) == 1 then
  local newest = redis.call('LINDEX', sizes, -1)
  if newest then
    fields[1] = 'prev'
    fields[2] = string.match(newest, '^(%S+)')
  end
else
  -- A new stream (or one deleted by hand): the accounts start afresh.
  redis.call('DEL', sizes, total)
end
for i = 7, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local id = redis.call('XADD', stream, '*', unpack(fields))
if ARGV[4] == 'set' then
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
elseif ARGV[4] == 'del' then
  redis.call('HDEL', KEYS[4], ARGV[5])
end
local count = redis.call('RPUSH', sizes, id .. ' ' .. size)
local bytes = redis.call('INCRBY', total, size)
local trimmed = false
while (count > max_entries or bytes > max_bytes) and count > 1 do
  local oldest = redis.call('LPOP', sizes)
  bytes = bytes - (tonumber(string.match(oldest, ' (%d+)$')) or 0)
  count = count - 1
  trimmed = true
end
if trimmed then
  redis.call('SET', total, bytes)
end
-- Entries older than the oldest one accounted for (trimmed now, or added
-- without this script) go.
if redis.call('XLEN', stream) > count then
  local first = redis.call('LINDEX', sizes, 0)
  redis.call('XTRIM', stream, 'MINID', string.match(first, '^(%S+)'))
end
return id
"#;

/// The bounds of the Redis stream.
#[derive(Clone, Copy, Debug)]
pub struct History {
    /// The most entries (`--history`; at least one is kept).
    pub entries: usize,
    /// The most bytes (`--history-bytes`), entries counted as their fields'
    /// names and values plus a fixed overhead.
    pub bytes: usize,
    /// The most bytes one entry may take ([`entry_limit`]).
    pub entry_bytes: usize,
}

/// The most bytes one entry may take when publish bodies are at most
/// `max_body` bytes (`--max-body`): a form's fields take no more room in
/// the stream than in the body, plus room for field names and bookkeeping.
pub fn entry_limit(max_body: usize) -> usize {
    max_body.saturating_add(ENTRY_SLACK)
}
/// How long one `XREAD` blocks (the reader also notices a dead connection
/// by its error).
const BLOCK_MS: u64 = 2000;
/// The most entries one `XREAD` returns.
const BATCH: usize = 512;

/// The Redis side of the hub.
pub struct RedisBackend {
    client: Client,
    history: History,
    /// The SHA-1 of [`APPEND`] once Redis has it (`SCRIPT LOAD`).
    append_sha: Mutex<Option<String>>,
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
    /// With `registry` (`--subscriptions`), subscription events are applied
    /// to it as they enter the broker.
    pub fn start(
        url: &str,
        history: History,
        broker: Broker,
        registry: Option<Arc<Registry>>,
    ) -> Result<RedisBackend, String> {
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
                history.entries,
                Deliver { broker, registry },
                reader_up,
                reader_secrets,
            )
            .await;
        });
        Ok(RedisBackend {
            client,
            history,
            append_sha: Mutex::new(None),
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

    /// Appends the update to the stream (trimming it to its bounds); its
    /// id once Redis has it.
    pub async fn publish(&self, publication: &Publication) -> Result<String, PublishFailure> {
        let fields = fields(publication);
        let size = entry_size(&fields);
        if size > self.history.entry_bytes {
            return Err(PublishFailure::Invalid(format!(
                "the update would take {size} bytes in the history, more than the {} one entry \
                 may take (--max-body plus {ENTRY_SLACK}): shorten its topics",
                self.history.entry_bytes
            )));
        }
        // A connection that Redis dropped (a restart, say) is replaced once:
        // the command never reached Redis on it. A script Redis forgot
        // (`SCRIPT FLUSH`) is loaded again, once.
        let mut attempts = 0;
        let mut reloaded = false;
        let entry = loop {
            attempts += 1;
            let mut connection = self.connection().await.map_err(|e| self.failed(e))?;
            let sha = match self.append_sha(&mut connection).await {
                Ok(sha) => sha,
                Err(e) => {
                    *self.publisher.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    if attempts == 1 && e.is_connection_dropped() {
                        continue;
                    }
                    return Err(self.failed(e.to_string()));
                }
            };
            let cmd = append_cmd(
                &sha,
                self.history,
                size,
                publication.record.as_ref(),
                &fields,
            );
            match cmd.query_async::<Value>(&mut connection).await {
                Ok(Value::BulkString(id)) => break String::from_utf8_lossy(&id).into_owned(),
                Ok(Value::SimpleString(id)) => break id,
                Ok(other) => {
                    return Err(PublishFailure::Unavailable(
                        self.secrets
                            .scrub(&format!("unexpected reply from Redis to XADD: {other:?}")),
                    ));
                }
                Err(e) if e.code() == Some("NOSCRIPT") && !reloaded => {
                    reloaded = true;
                    *self.append_sha.lock().unwrap_or_else(|e| e.into_inner()) = None;
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

    /// The SHA-1 of [`APPEND`], loading the script into Redis first if need
    /// be.
    async fn append_sha(
        &self,
        connection: &mut MultiplexedConnection,
    ) -> redis::RedisResult<String> {
        if let Some(sha) = self
            .append_sha
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(sha);
        }
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(APPEND)
            .query_async(connection)
            .await?;
        *self.append_sha.lock().unwrap_or_else(|e| e.into_inner()) = Some(sha.clone());
        Ok(sha)
    }

    fn failed(&self, why: String) -> PublishFailure {
        PublishFailure::Unavailable(format!(
            "Redis is unreachable ({})",
            self.secrets.scrub(&why)
        ))
    }

    /// The shared connection for commands (publishes, the presence
    /// heartbeat), made anew after a failure.
    pub(crate) async fn connection(&self) -> Result<MultiplexedConnection, String> {
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

    /// `text` (an error of Redis's) without the password.
    pub(crate) fn scrub(&self, text: &str) -> String {
        self.secrets.scrub(text)
    }

    /// Forgets the shared connection after a failure on it: the next
    /// command makes a new one.
    pub(crate) fn drop_connection(&self) {
        *self.publisher.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Stops the reader.
    pub fn stop(&self) {
        self.reader.abort();
    }
}

/// A publication's stream fields (borrowing the data: a publish may carry
/// a megabyte).
fn fields(p: &Publication) -> Vec<(&'static str, Cow<'_, [u8]>)> {
    let topics = serde_json::to_string(&p.topics).unwrap_or_else(|_| "[]".into());
    let mut fields = vec![
        ("topics", Cow::Owned(topics.into_bytes())),
        ("data", Cow::Borrowed(p.data.as_bytes())),
    ];
    if let Some(t) = &p.event_type {
        fields.push(("type", Cow::Borrowed(t.as_bytes())));
    }
    if let Some(id) = &p.id {
        fields.push(("id", Cow::Borrowed(id.as_bytes())));
    }
    if let Some(ms) = p.retry_ms {
        fields.push(("retry", Cow::Owned(ms.to_string().into_bytes())));
    }
    if p.private {
        fields.push(("private", Cow::Borrowed(b"1")));
    }
    if let Some(hub) = &p.hub {
        fields.push(("hub", Cow::Borrowed(hub.as_bytes())));
    }
    fields
}

/// The bytes an entry counts against the byte cap: its fields' names and
/// values, and [`ENTRY_OVERHEAD`].
fn entry_size(fields: &[(&str, Cow<'_, [u8]>)]) -> usize {
    fields
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum::<usize>()
        + ENTRY_OVERHEAD
}

/// `EVALSHA` of [`APPEND`] for an entry of `size` bytes with `fields`.
fn append_cmd(
    sha: &str,
    history: History,
    size: usize,
    record: Option<&Record>,
    fields: &[(&str, Cow<'_, [u8]>)],
) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(sha)
        .arg(4)
        .arg(KEY)
        .arg(SIZES_KEY)
        .arg(BYTES_KEY)
        .arg(SUBSCRIPTIONS_KEY)
        .arg(history.entries.max(1))
        .arg(history.bytes)
        .arg(size);
    match record {
        Some(Record {
            field,
            value: Some(value),
        }) => cmd.arg("set").arg(field).arg(value),
        Some(Record { field, value: None }) => cmd.arg("del").arg(field).arg(""),
        None => cmd.arg("").arg("").arg(""),
    };
    for (name, value) in fields {
        cmd.arg(*name).arg(value.as_ref());
    }
    cmd
}

/// Follows the stream into the local broker, reconnecting forever.
async fn read_loop(
    client: Client,
    history: usize,
    deliver: Deliver,
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
        // Back after an outage, the reader goes on after the last entry it
        // delivered: whether entries were trimmed before it could read them
        // shows on the first entry it reads (see `missed`).
        if last.is_none() {
            match load_history(&mut connection, history, &deliver).await {
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
                        if missed(last.as_deref(), &fields) {
                            let ended = deliver.broker.discontinue();
                            warn!(
                                "entries after {from} were trimmed from {KEY} (--history, \
                                 --history-bytes) before this process could read them: its \
                                 history is forgotten and {ended} streams end, so that their \
                                 clients resume and learn that events may be lost"
                            );
                            // The subscriptions that started or ended in
                            // the entries missed: read again from the
                            // table (the entries read from here on are
                            // applied over it, which changes nothing once
                            // they reach the table's state).
                            if let Some(registry) = &deliver.registry {
                                match read_subscriptions(&mut connection).await {
                                    Ok(table) => registry.reset(table, || {}),
                                    Err(e) => warn!(
                                        "cannot read the active subscriptions from Redis: {}",
                                        scrub(&e)
                                    ),
                                }
                            }
                        }
                        deliver.entry(&id, &fields);
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

/// Whether entries were trimmed between `last`, the last entry this
/// process delivered, and the entry with `fields`: the entry names another
/// entry as the one before it (`prev`, written by [`APPEND`]). An entry
/// without `prev` (the first of its stream, or added by an older hub)
/// tells nothing.
fn missed(last: Option<&str>, fields: &[(String, String)]) -> bool {
    match fields.iter().find(|(k, _)| k == "prev") {
        Some((_, prev)) => last != Some(prev.as_str()),
        None => false,
    }
}

/// Loads the newest `history` entries into the broker, oldest first;
/// returns the newest entry's id.
async fn load_history(
    connection: &mut MultiplexedConnection,
    history: usize,
    deliver: &Deliver,
) -> redis::RedisResult<Option<String>> {
    // With the active subscriptions, in one transaction: the table then
    // reflects exactly the entries up to the newest one.
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("XREVRANGE")
        .arg(KEY)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(history.max(1));
    if deliver.registry.is_some() {
        pipe.cmd("HGETALL").arg(SUBSCRIPTIONS_KEY);
    }
    let mut replies: Vec<Value> = pipe.query_async(connection).await?;
    let table = deliver
        .registry
        .as_ref()
        .map(|_| subscriptions_of(replies.pop().unwrap_or(Value::Nil)));
    let mut list = entries(replies.pop().unwrap_or(Value::Nil));
    list.reverse();
    let newest = list.last().map(|(id, _)| id.clone());
    if history == 0 {
        list.clear();
    }
    match (&deliver.registry, table) {
        // The history's subscription events are in the table already:
        // the list takes the table, the broker the history, together.
        (Some(registry), Some(table)) => registry.reset(table, || {
            for (id, fields) in &list {
                deliver_entry(&deliver.broker, None, id, fields);
            }
        }),
        _ => {
            for (id, fields) in &list {
                deliver.entry(id, fields);
            }
        }
    }
    Ok(newest)
}

/// The active subscriptions Redis's table holds now.
async fn read_subscriptions(
    connection: &mut MultiplexedConnection,
) -> redis::RedisResult<Vec<Entry>> {
    let reply: Value = redis::cmd("HGETALL")
        .arg(SUBSCRIPTIONS_KEY)
        .query_async(connection)
        .await?;
    Ok(subscriptions_of(reply))
}

/// The entries of an `HGETALL` reply of the subscriptions table: each
/// field is an event's topic, each value `"{hub} {its data}"`. Malformed
/// ones are skipped.
fn subscriptions_of(value: Value) -> Vec<Entry> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Map(pairs) => pairs,
        Value::Array(flat) => {
            let mut flat = flat.into_iter();
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(k, v)| {
            let (field, value) = (text(k)?, text(v)?);
            let (hub, data) = value.split_once(' ')?;
            let event = Event::parse(&[field], data, Some(hub))?;
            event.active.then_some(event.entry)
        })
        .collect()
}

/// Where the reader delivers entries: the local broker, and the list of
/// active subscriptions (`--subscriptions`).
struct Deliver {
    broker: Broker,
    registry: Option<Arc<Registry>>,
}

impl Deliver {
    /// Publishes one stream entry into the local broker (and applies a
    /// subscription event to the list).
    fn entry(&self, entry_id: &str, fields: &[(String, String)]) {
        deliver_entry(&self.broker, self.registry.as_deref(), entry_id, fields);
    }
}

/// Publishes one stream entry into the local broker; with `registry`, a
/// subscription event is applied to it at the same time.
fn deliver_entry(
    broker: &Broker,
    registry: Option<&Registry>,
    entry_id: &str,
    fields: &[(String, String)],
) {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let topics: Vec<String> = get("topics")
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let event = registry.and_then(|_| Event::parse(&topics, get("data").unwrap_or(""), get("hub")));
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
            let published = match registry {
                Some(registry) => registry.publish(broker, update, event),
                None => broker.publish(update, Instant::now()),
            };
            if let Err(e) = published {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_prev(prev: &str) -> Vec<(String, String)> {
        vec![
            ("prev".to_owned(), prev.to_owned()),
            ("data".to_owned(), "x".to_owned()),
        ]
    }

    #[test]
    fn an_entry_that_does_not_follow_the_last_one_read_means_a_loss() {
        assert!(!missed(Some("5-0"), &with_prev("5-0")));
        assert!(missed(Some("5-0"), &with_prev("6-0")));
        // Nothing read from a stream that was empty: any predecessor was
        // missed.
        assert!(missed(Some("0-0"), &with_prev("6-0")));
        // The first entry of a stream, or one from an older hub: no claim.
        let plain = vec![("data".to_owned(), "x".to_owned())];
        assert!(!missed(Some("5-0"), &plain));
    }

    #[test]
    fn an_entry_counts_its_fields_and_an_overhead() {
        let publication = Publication {
            topics: vec!["a".into(), "b".into()],
            data: "hello".into(),
            event_type: Some("t".into()),
            id: None,
            retry_ms: Some(1500),
            private: true,
            hub: None,
            record: None,
        };
        let fields = fields(&publication);
        // topics ["a","b"] (9), data (5), type (1), retry 1500 (4), private 1 (1).
        let names = "topics".len() + "data".len() + "type".len() + "retry".len() + "private".len();
        assert_eq!(
            entry_size(&fields),
            ENTRY_OVERHEAD + names + 9 + 5 + 1 + 4 + 1
        );
        // A publish body at the limit fits in an entry.
        let body = "topic=a&data=".len() + 1000;
        let at_limit = Publication {
            topics: vec!["a".into()],
            data: "d".repeat(1000),
            event_type: None,
            id: None,
            retry_ms: None,
            private: false,
            hub: None,
            record: None,
        };
        assert!(entry_size(&super::fields(&at_limit)) <= entry_limit(body));
    }

    #[test]
    fn the_subscriptions_table_reads_in_both_protocols() {
        let data = r#"{"type":"Subscription","topic":"/a","match_type":"exact","subscriber":"urn:uuid:1","active":true,"payload":{"n":1}}"#;
        let field = "/.well-known/mercure/subscriptions/exact/%2Fa/urn%3Auuid%3A1";
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let value = format!("hub1 {data}");
        let resp2 = Value::Array(vec![
            bulk(field),
            bulk(&value),
            // Malformed: no hub, not JSON, not under the API's path.
            bulk("/.well-known/mercure/subscriptions/x"),
            bulk(data),
            bulk(field),
            bulk("hub1 not-json"),
            bulk("/elsewhere"),
            bulk(&value),
        ]);
        let resp3 = Value::Map(vec![(bulk(field), bulk(&value))]);
        for reply in [resp2, resp3] {
            let table = subscriptions_of(reply);
            assert_eq!(table.len(), 1, "{table:?}");
            assert_eq!(&*table[0].selector, "/a");
            assert_eq!(&*table[0].subscriber, "urn:uuid:1");
            assert_eq!(&*table[0].payload, r#"{"n":1}"#);
            assert_eq!(table[0].hub.as_deref(), Some("hub1"));
        }
    }
}
