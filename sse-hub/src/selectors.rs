//! Selectors as subscribers and tokens give them (`topic`, `match`,
//! `match_exact`, `match_urlpattern`, `mercure.subscribe`,
//! `mercure.publish`), with the compiled patterns cached.
//!
//! Compiling a URI template or a URL pattern costs far more than matching
//! it, and a thousand subscribers often send the same one: the
//! [`SelectorCache`] keeps the compiled selectors by their text, bounded in
//! entries and in bytes, so that a client cannot grow it without limit.
//! It holds two generations: lookups go to both (a hit in the older one
//! moves the entry to the newer one); when the newer one is full, the
//! older one is dropped and the newer one takes its place. So a selector
//! in use stays, one unused for a generation goes, and the cache never
//! holds more than twice a generation's bound. Its lock is held only to
//! look up and insert, never while compiling (nor while dropping a
//! generation).

use std::collections::HashMap;
use std::sync::Mutex;

use sse_proto::server::{Selector, SelectorError};

/// How a selector's text is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `topic=` and the `mercure.*` claims: `*`, a URI template when the
    /// text holds `{`, else an exact topic.
    Topic,
    /// `match=`, `match_exact=`: exactly the text.
    Exact,
    /// `match_urlpattern=`: a WHATWG URL Pattern.
    UrlPattern,
}

impl Kind {
    /// The kind a subscription parameter's name asks for: `None` for a
    /// parameter that selects nothing, `Err` for an unknown `match*` one.
    pub fn of_parameter(name: &str) -> Result<Option<Kind>, String> {
        Ok(Some(match name {
            "topic" => Kind::Topic,
            "match" | "match_exact" => Kind::Exact,
            "match_urlpattern" => Kind::UrlPattern,
            name if name.starts_with("match") => {
                let shown: String = name.chars().take(64).collect();
                return Err(format!(
                    "unknown selector parameter `{shown}`: select topics with `topic`, `match`, \
                     `match_exact` or `match_urlpattern`"
                ));
            }
            _ => return Ok(None),
        }))
    }

    /// Compiles `text` (no cache).
    fn compile(self, text: &str) -> Result<Selector, SelectorError> {
        match self {
            Kind::Topic => Selector::topic(text),
            Kind::Exact => Ok(Selector::exact(text)),
            Kind::UrlPattern => Selector::url_pattern(text),
        }
    }

    /// Whether `text` compiles to a pattern worth caching (exact and `*`
    /// selectors cost nothing to build).
    fn is_pattern(self, text: &str) -> bool {
        match self {
            Kind::Topic => text.contains('{'),
            Kind::Exact => false,
            Kind::UrlPattern => true,
        }
    }
}

/// The default bound on entries (both generations together).
pub const CACHE_ENTRIES: usize = 8192;
/// The default bound on the bytes the entries hold (both generations
/// together; URL patterns are estimated).
pub const CACHE_BYTES: usize = 32 << 20;

/// Compiled selectors by kind and text.
pub struct SelectorCache {
    generations: Mutex<Generations>,
    /// Per generation.
    max_entries: usize,
    /// Per generation.
    max_bytes: usize,
}

#[derive(Default)]
struct Generations {
    current: HashMap<(Kind, Box<str>), Selector>,
    /// The bytes `current` holds.
    current_bytes: usize,
    previous: HashMap<(Kind, Box<str>), Selector>,
    /// Counters, for tests and metrics.
    compiled: u64,
}

impl Default for SelectorCache {
    fn default() -> SelectorCache {
        SelectorCache::new(CACHE_ENTRIES, CACHE_BYTES)
    }
}

impl SelectorCache {
    /// A cache of at most `max_entries` selectors holding at most about
    /// `max_bytes`.
    pub fn new(max_entries: usize, max_bytes: usize) -> SelectorCache {
        SelectorCache {
            generations: Mutex::new(Generations::default()),
            max_entries: (max_entries / 2).max(1),
            max_bytes: (max_bytes / 2).max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        // A panic elsewhere leaves the maps consistent (each step is one
        // map operation).
        self.generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The selector `text` of `kind`, compiled once and then shared.
    ///
    /// # Errors
    /// A malformed template or URL pattern (not cached: the next request
    /// with it is refused the same way).
    pub fn get(&self, kind: Kind, text: &str) -> Result<Selector, SelectorError> {
        if !kind.is_pattern(text) {
            return kind.compile(text);
        }
        let key = (kind, Box::<str>::from(text));
        {
            let mut g = self.lock();
            if let Some(found) = g.current.get(&key) {
                return Ok(found.clone());
            }
            if let Some(found) = g.previous.remove(&key) {
                let dropped = self.insert(&mut g, key, found.clone());
                drop(g);
                drop(dropped);
                return Ok(found);
            }
        }
        // Compiled without the lock: other requests go on meanwhile.
        let compiled = kind.compile(text)?;
        let mut g = self.lock();
        g.compiled += 1;
        if let Some(raced) = g.current.get(&key) {
            // Another request compiled it meanwhile: share theirs.
            return Ok(raced.clone());
        }
        let dropped = self.insert(&mut g, key, compiled.clone());
        drop(g);
        drop(dropped);
        Ok(compiled)
    }

    /// Inserts into the current generation, first retiring it when it is
    /// full; returns the generation dropped, to drop outside the lock.
    fn insert(
        &self,
        g: &mut Generations,
        key: (Kind, Box<str>),
        selector: Selector,
    ) -> HashMap<(Kind, Box<str>), Selector> {
        let bytes = entry_bytes(&key, &selector);
        let mut dropped = HashMap::new();
        if g.current.len() >= self.max_entries || g.current_bytes + bytes > self.max_bytes {
            let current = std::mem::take(&mut g.current);
            dropped = std::mem::replace(&mut g.previous, current);
            g.current_bytes = 0;
        }
        g.current_bytes += bytes;
        g.current.insert(key, selector);
        dropped
    }

    /// How many selectors it holds, and how many were compiled in all.
    pub fn counts(&self) -> (usize, u64) {
        let g = self.lock();
        (g.current.len() + g.previous.len(), g.compiled)
    }
}

/// What an entry is counted for.
fn entry_bytes(key: &(Kind, Box<str>), selector: &Selector) -> usize {
    let pattern = selector.pattern().map_or(0, |p| p.heap_bytes());
    key.1.len() + pattern + 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_template_is_compiled_once() {
        let cache = SelectorCache::default();
        let first = cache.get(Kind::Topic, "/books/{id}").unwrap();
        for _ in 0..1000 {
            assert_eq!(cache.get(Kind::Topic, "/books/{id}").unwrap(), first);
        }
        assert_eq!(cache.counts(), (1, 1));
        // Exact selectors and `*` are not cached.
        assert_eq!(cache.get(Kind::Topic, "*").unwrap(), Selector::Any);
        assert_eq!(
            cache.get(Kind::Exact, "/books/{id}").unwrap(),
            Selector::exact("/books/{id}")
        );
        assert_eq!(cache.get(Kind::Topic, "/a").unwrap(), Selector::exact("/a"));
        assert_eq!(cache.counts(), (1, 1));
        // The same text as a URL pattern is another entry.
        let url = cache.get(Kind::UrlPattern, "https://e.com/:id").unwrap();
        assert!(url.matches("https://e.com/1"));
        assert_eq!(cache.counts(), (2, 2));
    }

    #[test]
    fn errors_are_not_cached() {
        let cache = SelectorCache::default();
        assert!(cache.get(Kind::Topic, "/{").is_err());
        assert!(cache.get(Kind::UrlPattern, "/relative").is_err());
        assert_eq!(cache.counts(), (0, 0));
    }

    #[test]
    fn entries_are_bounded_and_recent_ones_stay() {
        let cache = SelectorCache::new(100, usize::MAX);
        let hot = cache.get(Kind::Topic, "/hot/{id}").unwrap();
        for i in 0..10_000 {
            cache.get(Kind::Topic, &format!("/t{i}/{{id}}")).unwrap();
            // Used all along: never dropped.
            cache.get(Kind::Topic, "/hot/{id}").unwrap();
            assert!(cache.counts().0 <= 100);
        }
        let compiled = cache.counts().1;
        assert_eq!(cache.get(Kind::Topic, "/hot/{id}").unwrap(), hot);
        assert_eq!(cache.counts().1, compiled, "the hot template stayed");
        assert_eq!(compiled, 10_001);
    }

    #[test]
    fn bytes_are_bounded() {
        let cache = SelectorCache::new(usize::MAX, 64 << 10);
        let long = "x".repeat(1500);
        for i in 0..1000 {
            cache
                .get(Kind::Topic, &format!("/{long}/{i}/{{id}}"))
                .unwrap();
        }
        let g = cache.lock();
        let held: usize = g
            .current
            .iter()
            .chain(g.previous.iter())
            .map(|(k, s)| entry_bytes(k, s))
            .sum();
        assert!(held <= 64 << 10, "{held} bytes held");
        assert!(!g.current.is_empty());
    }
}
