//! JSON Web Key Sets (`--jwks URL-or-FILE`): read from a file or fetched
//! over http(s), kept, and read again when a token names a key they do not
//! hold (key rotation) or when they are older than [`MAX_AGE`].
//!
//! Verifying a token never waits for the network: it reads the keys held
//! (a snapshot taken under a lock held for a pointer copy). Fetching is a
//! separate step, taken before verifying when the token's `kid` is
//! unknown, and bounded three ways: at most one fetch at a time per key
//! set (others wait for it rather than start their own), at most one per
//! `--jwks-refresh` interval (a flood of tokens with unknown `kid`s costs
//! one fetch per interval, whatever their number), and each within
//! [`FETCH_TIMEOUT`] and [`MAX_DOCUMENT`] bytes. A failed fetch keeps the
//! keys held. Redirects are not followed.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde_json::Value;
use sse_driver::rt::{BoxTransport, Runtime as _};
use sse_proto::http1::{BodyDecoder, Request, ResponseParser, Scheme, Url};
use sse_tokio::rt::Tokio;
use tracing::{info, warn};

use super::keys::{self, VerifyKey};

/// The longest a fetch may take (connecting, TLS, the whole answer).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set read, in bytes.
pub const MAX_DOCUMENT: usize = 256 << 10;
/// The most keys a set may hold.
pub const MAX_KEYS: usize = 100;
/// Keys older than this are fetched again (in the background, the next
/// time they are used), so that a key removed from the set stops being
/// trusted.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// Where a key set comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An `http://` or `https://` URL.
    Url(Url),
    /// A file.
    File(PathBuf),
}

impl Location {
    /// `value` as an `http(s)://` URL, else as a file path.
    pub fn parse(value: &str) -> Result<Location, String> {
        let lower = value.trim().to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Url::parse(value.trim())
                .map(Location::Url)
                .map_err(|e| format!("is not a usable URL: {e}"))
        } else if lower.contains("://") {
            Err("is neither an http(s) URL nor a file".to_owned())
        } else {
            Ok(Location::File(PathBuf::from(value)))
        }
    }
}

/// A key set: the keys it held when last read, and how to read it again.
pub struct Jwks {
    location: Location,
    /// The flag and the location, for messages (a URL without its
    /// password).
    shown: String,
    keys: RwLock<Arc<[VerifyKey]>>,
    /// When the keys held were read.
    loaded: Mutex<Instant>,
    /// When it was last read, or tried to be: held while reading, so that
    /// reads are one at a time.
    attempt: tokio::sync::Mutex<Instant>,
    /// A background read is under way (for [`MAX_AGE`]).
    refreshing: AtomicBool,
    /// The least time between two reads.
    min_interval: Duration,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("shown", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Jwks {
    /// Reads the key set `value` (a URL or a file) given by `flag`: the
    /// set and the keys it skipped (each with the reason), or one sentence
    /// saying why it cannot be used.
    pub async fn open(
        flag: &str,
        value: &str,
        min_interval: Duration,
    ) -> Result<(Jwks, Vec<String>), String> {
        let location =
            Location::parse(value).map_err(|e| format!("{flag} {}: {e}", shown(value)))?;
        let shown = format!("{flag} {}", shown(value));
        let (keys, skipped) = read(&location).await.map_err(|e| format!("{shown}: {e}"))?;
        let now = Instant::now();
        let jwks = Jwks {
            location,
            keys: RwLock::new(keys.into()),
            loaded: Mutex::new(now),
            attempt: tokio::sync::Mutex::new(now),
            refreshing: AtomicBool::new(false),
            min_interval,
            shown: shown.clone(),
        };
        let skipped = skipped
            .into_iter()
            .map(|why| format!("{shown}: {why}"))
            .collect();
        Ok((jwks, skipped))
    }

    /// The keys held now.
    pub fn keys(&self) -> Arc<[VerifyKey]> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// What the first log line says of it.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Reads the set again, unless it was read (or tried) less than the
    /// minimum interval ago; waits for a read already under way instead of
    /// starting another. A failure is logged, and the keys held stay.
    pub async fn refresh(&self) {
        let mut attempt = self.attempt.lock().await;
        if attempt.elapsed() < self.min_interval {
            return;
        }
        *attempt = Instant::now();
        match read(&self.location).await {
            Ok((keys, skipped)) => {
                for why in skipped {
                    warn!("{}: {why}", self.shown);
                }
                info!("{}: read again, {} keys", self.shown, keys.len());
                *self
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = keys.into();
                *self
                    .loaded
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
            }
            Err(e) => warn!(
                "{}: cannot be read again ({e}); the keys read before stay in use",
                self.shown
            ),
        }
        drop(attempt);
    }

    /// Reads the set again in the background when the keys held are older
    /// than [`MAX_AGE`] (one such read at a time).
    pub fn refresh_if_old(self: &Arc<Self>) {
        let loaded = *self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if loaded.elapsed() < MAX_AGE
            || self
                .refreshing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        let jwks = Arc::clone(self);
        tokio::spawn(async move {
            jwks.refresh().await;
            jwks.refreshing.store(false, Ordering::Release);
        });
    }
}

/// `value` for messages: a URL without its password.
fn shown(value: &str) -> String {
    crate::redact::url(value.trim())
}

/// Reads a key set file now (for the check before the hub starts): its
/// keys and the ones it skipped, or why it cannot be used. URLs are only
/// parsed.
pub fn check(value: &str) -> Result<(), String> {
    match Location::parse(value)? {
        Location::Url(_) => Ok(()),
        Location::File(path) => read_file(&path).map(drop),
    }
}

/// Reads a key set from where it is.
async fn read(location: &Location) -> Result<(Vec<VerifyKey>, Vec<String>), String> {
    match location {
        Location::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_file(&path))
                .await
                .map_err(|_| "reading it failed".to_owned())?
        }
        Location::Url(url) => {
            let body = tokio::time::timeout(FETCH_TIMEOUT, fetch(url))
                .await
                .map_err(|_| {
                    format!(
                        "no answer within {} s (is the URL right, and the server up?)",
                        FETCH_TIMEOUT.as_secs()
                    )
                })??;
            parse(&body)
        }
    }
}

/// Reads a key set file.
fn read_file(path: &std::path::Path) -> Result<(Vec<VerifyKey>, Vec<String>), String> {
    let text = keys::read_bounded(path, MAX_DOCUMENT as u64).map_err(|e| e.to_string())?;
    parse(text.as_bytes())
}

/// The usable keys of a JWK Set document, and the reasons the others were
/// skipped; an error when it is not a key set or holds no usable key.
pub fn parse(document: &[u8]) -> Result<(Vec<VerifyKey>, Vec<String>), String> {
    let not_a_set = || "is not a JWK Set (a JSON object with a `keys` array)".to_owned();
    let Ok(Value::Object(set)) = serde_json::from_slice::<Value>(document) else {
        return Err(not_a_set());
    };
    let Some(Value::Array(entries)) = set.get("keys") else {
        return Err(not_a_set());
    };
    if entries.len() > MAX_KEYS {
        return Err(format!(
            "holds {} keys; at most {MAX_KEYS} are read",
            entries.len()
        ));
    }
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match VerifyKey::from_jwk(entry) {
            Ok(key) => usable.push(key),
            Err(e) => {
                let kid = entry
                    .get("kid")
                    .and_then(Value::as_str)
                    .map(|k| format!(" (`kid` {:?})", k.chars().take(64).collect::<String>()))
                    .unwrap_or_default();
                skipped.push(format!("key {i}{kid} skipped: {e}"));
            }
        }
    }
    if usable.is_empty() {
        let first = skipped
            .first()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        return Err(format!("holds no usable signing key{first}"));
    }
    Ok((usable, skipped))
}

/// `GET url` on a connection of its own: the body of a 200 answer.
async fn fetch(url: &Url) -> Result<Vec<u8>, String> {
    let cannot = |e: io::Error| format!("cannot be fetched: {e}");
    let tcp = Tokio
        .connect(url.host().to_owned(), url.port())
        .await
        .map_err(cannot)?;
    let mut socket: BoxTransport = Box::new(tcp);
    if url.scheme() == Scheme::Https {
        let config = sse_driver::rt::TlsConfig::platform_default().map_err(cannot)?;
        socket = sse_driver::tls::handshake(socket, url.host().to_owned(), &config)
            .await
            .map_err(cannot)?;
    }
    let mut request = Request::get(url.clone());
    let fields = [
        ("Accept", "application/jwk-set+json, application/json"),
        ("Connection", "close"),
        ("User-Agent", "sse-hub"),
    ];
    for (name, value) in fields {
        request
            .header(name, value)
            .map_err(|e| format!("cannot be requested: {e}"))?;
    }
    let mut head = BytesMut::new();
    request.encode(&mut head);
    sse_driver::rt::write_all(&mut socket, &head)
        .await
        .map_err(cannot)?;

    let mut buf = BytesMut::with_capacity(8192);
    let mut parser = ResponseParser::new();
    let response = loop {
        if let Some(response) = parser
            .parse_buf(&mut buf)
            .map_err(|e| format!("answered something that is not HTTP: {e}"))?
        {
            if response.is_informational() {
                continue;
            }
            break response;
        }
        if sse_driver::rt::read_buf(&mut socket, &mut buf)
            .await
            .map_err(cannot)?
            == 0
        {
            return Err("closed the connection before answering".to_owned());
        }
    };
    if response.status() != 200 {
        let redirect = if response.is_redirect() {
            " (redirects are not followed: give the final URL)"
        } else {
            ""
        };
        return Err(format!(
            "answered {} instead of 200{redirect}",
            response.status()
        ));
    }
    let kind = response
        .body_kind("GET")
        .map_err(|e| format!("answered with a body that cannot be read: {e}"))?;
    let mut decoder = BodyDecoder::new(kind);
    let mut body = Vec::new();
    let too_large = || format!("answered more than {} KiB", MAX_DOCUMENT >> 10);
    loop {
        while let Some(piece) = decoder
            .decode(&mut buf)
            .map_err(|e| format!("answered a malformed body: {e}"))?
        {
            body.extend_from_slice(&piece);
            if body.len() > MAX_DOCUMENT {
                return Err(too_large());
            }
        }
        if decoder.is_done() {
            return Ok(body);
        }
        if buf.len() > MAX_DOCUMENT + (64 << 10) {
            // Bytes the decoder does not take (a chunk size line that
            // never ends, say).
            return Err(too_large());
        }
        if sse_driver::rt::read_buf(&mut socket, &mut buf)
            .await
            .map_err(cannot)?
            == 0
        {
            decoder
                .handle_eof()
                .map_err(|e| format!("answered a truncated body: {e}"))?;
            while let Some(piece) = decoder
                .decode(&mut buf)
                .map_err(|e| format!("answered a malformed body: {e}"))?
            {
                body.extend_from_slice(&piece);
                if body.len() > MAX_DOCUMENT {
                    return Err(too_large());
                }
            }
            return Ok(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn locations() {
        assert!(matches!(
            Location::parse("https://idp.example/jwks.json"),
            Ok(Location::Url(_))
        ));
        assert!(matches!(
            Location::parse("HTTP://127.0.0.1:9/k"),
            Ok(Location::Url(_))
        ));
        assert_eq!(
            Location::parse("keys/jwks.json"),
            Ok(Location::File(PathBuf::from("keys/jwks.json")))
        );
        assert!(Location::parse("ftp://x/y").is_err());
        assert!(Location::parse("https://").is_err());
    }

    #[test]
    fn documents() {
        let x =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [9u8; 32]);
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "a"});
        let doc = json!({"keys": [ed, {"kty": "oct", "k": "c2VjcmV0", "kid": "s"}, {"kty": "EC"}]});
        let (keys, skipped) = parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid(), Some("a"));
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].starts_with("key 1 (`kid` \"s\") skipped: it is a symmetric"));
        assert!(skipped[1].starts_with("key 2 skipped: "), "{}", skipped[1]);

        for (doc, why) in [
            (json!([]), "is not a JWK Set"),
            (json!({"keys": {}}), "is not a JWK Set"),
            (json!({"keys": []}), "holds no usable signing key"),
            (
                json!({"keys": [{"kty": "oct"}]}),
                "holds no usable signing key (key 0 skipped",
            ),
            (
                json!({"keys": vec![json!({}); MAX_KEYS + 1]}),
                "at most 100",
            ),
        ] {
            let e = parse(doc.to_string().as_bytes()).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        assert!(parse(b"\xff not json").is_err());
    }
}
