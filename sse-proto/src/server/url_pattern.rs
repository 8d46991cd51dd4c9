//! WHATWG URL Patterns as topic selectors (feature `urlpattern`), through
//! the `urlpattern` crate, with regular expressions of the `regex` crate
//! (linear-time, size-limited).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use urlpattern::quirks::MatchInput;
use urlpattern::regexp::RegExp;
use urlpattern::{
    RegexSyntax, UrlPattern, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions,
};

use super::selector::SelectorError;

/// The most memory one compiled regular expression of a pattern may take
/// (each of a pattern's eight components has one).
const REGEX_SIZE_LIMIT: usize = 64 << 10;

/// A component's regular expression: the `regex` crate's, built with a
/// size limit. It says only whether it matched (the selector needs no
/// groups).
#[derive(Debug)]
struct Limited(regex::Regex);

impl RegExp for Limited {
    fn syntax() -> RegexSyntax {
        RegexSyntax::Rust
    }

    fn parse(pattern: &str, _flags: &str, _force_eval: bool) -> Result<Self, ()> {
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(Limited)
            .map_err(|_| ())
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        self.0.is_match(text).then(Vec::new)
    }

    fn pattern_string(&self) -> &str {
        self.0.as_str()
    }
}

/// A compiled URL pattern.
#[derive(Debug)]
pub(crate) struct UrlPatternMatcher {
    pattern: UrlPattern<Limited>,
}

/// A topic parsed as a URL, split into the components a pattern matches.
pub(crate) type Parsed = MatchInput;

impl UrlPatternMatcher {
    /// Compiles an absolute URL pattern (`https://example.com/books/:id`).
    ///
    /// The `urlpattern` crate's parser panics on some malformed patterns
    /// in builds with overflow checks (a `]` with no `[` in the hostname
    /// underflows a counter; without the checks the counter wraps and
    /// the parse goes on): such a panic is caught and the pattern refused
    /// like any invalid one, so that no subscriber can take a request
    /// down with it.
    pub(crate) fn parse(source: &str) -> Result<UrlPatternMatcher, SelectorError> {
        let parse = || {
            let init = UrlPatternInit::parse_constructor_string::<Limited>(source, None)
                .map_err(|e| url_pattern_error(&e))?;
            let pattern = UrlPattern::<Limited>::parse(init, UrlPatternOptions::default())
                .map_err(|e| url_pattern_error(&e))?;
            Ok(UrlPatternMatcher { pattern })
        };
        // Nothing outlives the closure but its result.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).unwrap_or_else(|_| {
            Err(SelectorError::UrlPattern(String::from(
                "its text could not be parsed (check its brackets: a `]` closes a `[` of an \
                 IPv6 hostname)",
            )))
        })
    }

    /// Parses a topic as an absolute URL; `None` when it is not one (no
    /// pattern matches it then).
    pub(crate) fn parse_topic(topic: &str) -> Option<Parsed> {
        let url = url::Url::parse(topic).ok()?;
        urlpattern::quirks::parse_match_input(UrlPatternMatchInput::Url(url))
    }

    /// Whether the parsed topic matches every component of the pattern.
    pub(crate) fn matches(&self, input: &Parsed) -> bool {
        let p = &self.pattern;
        // The components most likely to differ first.
        p.pathname.matcher.matches(&input.pathname).is_some()
            && p.hostname.matcher.matches(&input.hostname).is_some()
            && p.protocol.matcher.matches(&input.protocol).is_some()
            && p.port.matcher.matches(&input.port).is_some()
            && p.search.matcher.matches(&input.search).is_some()
            && p.hash.matcher.matches(&input.hash).is_some()
            && p.username.matcher.matches(&input.username).is_some()
            && p.password.matcher.matches(&input.password).is_some()
    }

    /// About how many bytes of memory it holds (an estimate: the regular
    /// expressions' own memory is not visible).
    pub(crate) fn heap_bytes(&self, source_len: usize) -> usize {
        // Eight components, each with a pattern string, a regular
        // expression and a matcher.
        8 * 1024 + 16 * source_len
    }
}

/// The error for a pattern the `urlpattern` crate refuses.
fn url_pattern_error(e: &urlpattern::Error) -> SelectorError {
    let why: String = match e {
        urlpattern::Error::BaseUrlRequired => String::from(
            "it must be absolute, with a scheme such as `https://` (a relative pattern has no base URL to resolve against)",
        ),
        urlpattern::Error::RegExp(()) => String::from(
            "one of its regular expressions is invalid or too large (the `regex` crate's syntax is used, without look-around or back-references)",
        ),
        e => format!("{e}"),
    };
    SelectorError::UrlPattern(why)
}
