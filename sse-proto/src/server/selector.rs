//! Topic selectors: `*`, exact topics, RFC 6570 URI templates and (feature
//! `urlpattern`) WHATWG URL Patterns.
//!
//! ```
//! use sse_proto::server::Selector;
//!
//! let books = Selector::topic("https://example.com/books/{id}")?;
//! assert!(books.matches("https://example.com/books/1"));
//! assert!(!books.matches("https://example.com/books/1/reviews"));
//! assert!(!books.matches("https://example.com/authors/1"));
//!
//! // No `{`: an exact topic; `*`: every topic.
//! assert_eq!(Selector::topic("https://example.com/books")?, Selector::exact("https://example.com/books"));
//! assert_eq!(Selector::topic("*")?, Selector::Any);
//!
//! // A malformed template says what is wrong.
//! let error = Selector::topic("https://example.com/books/{id").unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "the `{` at byte 26 is never closed: end the expression with `}` \
//!      (to select a topic holding `{` as it is, use `match_exact`)"
//! );
//! # Ok::<(), sse_proto::server::SelectorError>(())
//! ```

use alloc::string::String;
use alloc::sync::Arc;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};

use super::template::Template;
#[cfg(feature = "urlpattern")]
use super::url_pattern::{Parsed, UrlPatternMatcher};
use crate::Str;

/// The longest template or URL pattern a selector may be, in bytes.
pub const MAX_PATTERN_LEN: usize = 2048;

/// Why a selector could not be compiled. Its message (`Display`) says
/// what is wrong and how to fix it; byte positions count from 0.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectorError {
    /// The template or URL pattern is longer than [`MAX_PATTERN_LEN`].
    TooLong {
        /// Its length, in bytes.
        len: usize,
    },
    /// A `{` has no `}` after it.
    UnclosedBrace {
        /// The position of the `{`.
        at: usize,
    },
    /// A `}` outside any expression.
    UnopenedBrace {
        /// The position of the `}`.
        at: usize,
    },
    /// A `{` inside an expression.
    NestedBrace {
        /// The position of the inner `{`.
        at: usize,
    },
    /// `{}`, or an operator with no variable after it.
    EmptyExpression {
        /// The position of the expression's `{`.
        at: usize,
    },
    /// An operator RFC 6570 reserves for later use (`=`, `,`, `!`, `@`,
    /// `|`).
    ReservedOperator {
        /// Its position.
        at: usize,
        /// The operator.
        operator: char,
    },
    /// An empty variable name (`{a,,b}`, `{a,}`).
    EmptyVariable {
        /// Where the name should be.
        at: usize,
    },
    /// A character that may not be in a variable name.
    BadVariable {
        /// Its position.
        at: usize,
        /// The character.
        found: char,
    },
    /// A prefix modifier that is not `:` and a number from 1 to 9999.
    BadPrefix {
        /// The position of the `:`.
        at: usize,
    },
    /// Something after a variable name that is no modifier (`:N` or
    /// `*`).
    BadModifier {
        /// Its position.
        at: usize,
    },
    /// The URL pattern is invalid; the text says why.
    UrlPattern(String),
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectorError::TooLong { len } => write!(
                f,
                "the selector is {len} bytes long: a URI template or URL pattern may have at most \
                 {MAX_PATTERN_LEN} bytes"
            ),
            SelectorError::UnclosedBrace { at } => write!(
                f,
                "the `{{` at byte {at} is never closed: end the expression with `}}` (to select a \
                 topic holding `{{` as it is, use `match_exact`)"
            ),
            SelectorError::UnopenedBrace { at } => write!(
                f,
                "the `}}` at byte {at} closes no expression: a URI template's text may hold `}}` \
                 only at the end of a `{{...}}` expression"
            ),
            SelectorError::NestedBrace { at } => write!(
                f,
                "the `{{` at byte {at} is inside another expression: close the first one with `}}` \
                 before opening the next (expressions do not nest)"
            ),
            SelectorError::EmptyExpression { at } => write!(
                f,
                "the expression at byte {at} names no variable: write one between the braces, such \
                 as `{{id}}`"
            ),
            SelectorError::ReservedOperator { at, operator } => write!(
                f,
                "the operator `{operator}` at byte {at} is reserved by RFC 6570: use one of `+ # . / \
                 ; ? &` or none"
            ),
            SelectorError::EmptyVariable { at } => write!(
                f,
                "the variable name at byte {at} is empty: remove the extra comma or write a name"
            ),
            SelectorError::BadVariable { at, found } => write!(
                f,
                "a variable name may not hold {found:?} (byte {at}): use letters, digits, `_`, `%XX` \
                 escapes and single dots between them"
            ),
            SelectorError::BadPrefix { at } => write!(
                f,
                "the prefix modifier at byte {at} must be `:` followed by a number from 1 to 9999"
            ),
            SelectorError::BadModifier { at } => write!(
                f,
                "unexpected text after a variable name at byte {at}: a variable may end with `*` or \
                 `:N` only, and variables are separated by commas"
            ),
            SelectorError::UrlPattern(why) => write!(f, "invalid URL pattern: {why}"),
        }
    }
}

impl core::error::Error for SelectorError {}

/// The kind of a [`Pattern`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternKind {
    /// An RFC 6570 URI template (`https://example.com/books/{id}`).
    Template,
    /// A WHATWG URL Pattern (`https://example.com/books/:id`).
    UrlPattern,
}

/// A compiled selector that matches many topics: a URI template or a URL
/// pattern. Cheap to clone (shared); compared, ordered and hashed by its
/// kind and its text.
#[derive(Clone)]
pub struct Pattern(Arc<Inner>);

struct Inner {
    source: Str,
    matcher: Matcher,
}

enum Matcher {
    Template(Template),
    #[cfg(feature = "urlpattern")]
    UrlPattern(alloc::boxed::Box<UrlPatternMatcher>),
}

impl Pattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.source.as_str()
    }

    /// What kind of pattern it is.
    pub fn kind(&self) -> PatternKind {
        match self.0.matcher {
            Matcher::Template(_) => PatternKind::Template,
            #[cfg(feature = "urlpattern")]
            Matcher::UrlPattern(_) => PatternKind::UrlPattern,
        }
    }

    /// About how many bytes of memory the compiled pattern holds (for a
    /// cache's bound; URL patterns are estimated).
    pub fn heap_bytes(&self) -> usize {
        let source = self.0.source.len();
        core::mem::size_of::<Inner>()
            + source
            + match &self.0.matcher {
                Matcher::Template(t) => t.heap_bytes(),
                #[cfg(feature = "urlpattern")]
                Matcher::UrlPattern(p) => p.heap_bytes(source),
            }
    }

    /// Whether the pattern matches `topic`.
    pub fn matches(&self, topic: &str) -> bool {
        self.matches_topic(&Topic::new(topic))
    }

    /// [`Pattern::matches`] on a topic that may be parsed (as a URL) once
    /// for several patterns.
    pub(crate) fn matches_topic(&self, topic: &Topic<'_>) -> bool {
        match &self.0.matcher {
            Matcher::Template(t) => t.matches(topic.text),
            #[cfg(feature = "urlpattern")]
            Matcher::UrlPattern(p) => topic.url().is_some_and(|input| p.matches(input)),
        }
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pattern {}

impl PartialOrd for Pattern {
    fn partial_cmp(&self, other: &Pattern) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pattern {
    fn cmp(&self, other: &Pattern) -> Ordering {
        (self.kind(), self.as_str()).cmp(&(other.kind(), other.as_str()))
    }
}

impl Hash for Pattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind().hash(state);
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern")
            .field(&self.kind())
            .field(&self.as_str())
            .finish()
    }
}

/// A topic being matched against several patterns: parsed as a URL at
/// most once, when a URL pattern first needs it.
pub(crate) struct Topic<'a> {
    text: &'a str,
    #[cfg(feature = "urlpattern")]
    url: core::cell::OnceCell<Option<Parsed>>,
}

impl<'a> Topic<'a> {
    pub(crate) fn new(text: &'a str) -> Topic<'a> {
        Topic {
            text,
            #[cfg(feature = "urlpattern")]
            url: core::cell::OnceCell::new(),
        }
    }

    #[cfg(feature = "urlpattern")]
    fn url(&self) -> Option<&Parsed> {
        self.url
            .get_or_init(|| UrlPatternMatcher::parse_topic(self.text))
            .as_ref()
    }
}

/// What a subscriber listens to: every topic, one exact topic, or the
/// topics a pattern matches.
///
/// Selectors order with [`Selector::Any`] first, then exact topics by
/// their text, then patterns by kind and text.
///
/// [`Selector::new`] and the `From` conversions never fail and never make
/// a pattern: a string is `*` or an exact topic. Parse what a subscriber
/// sent with [`Selector::topic`] (Mercure's `topic`: `*`, a template when
/// it holds `{`, else exact), [`Selector::template`], [`Selector::exact`]
/// or `Selector::url_pattern` (feature `urlpattern`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selector {
    /// `*`: every topic.
    Any,
    /// Exactly this topic (compared byte for byte).
    Exact(Str),
    /// The topics a URI template or URL pattern matches.
    Pattern(Pattern),
}

impl Selector {
    /// Parses a selector: `*` is [`Selector::Any`], anything else an exact
    /// topic (even when it holds `{`; see [`Selector::topic`]).
    pub fn new(s: &str) -> Selector {
        if s == "*" {
            Selector::Any
        } else {
            Selector::Exact(Str::from(s))
        }
    }

    /// Exactly `topic`, whatever it holds (`*` included): Mercure's
    /// `match` and `match_exact`.
    pub fn exact(topic: impl Into<Str>) -> Selector {
        Selector::Exact(topic.into())
    }

    /// A selector as Mercure's `topic` parameter and `mercure.subscribe`
    /// / `mercure.publish` claims give it: `*` for every topic, an RFC
    /// 6570 URI template when it holds `{`, else an exact topic.
    ///
    /// # Errors
    /// A malformed or overlong template (see [`Selector::template`]).
    pub fn topic(s: &str) -> Result<Selector, SelectorError> {
        if s == "*" {
            Ok(Selector::Any)
        } else if s.contains('{') {
            Selector::template(s)
        } else {
            Ok(Selector::Exact(Str::from(s)))
        }
    }

    /// An RFC 6570 URI template (`{var}`, `{+var}`, `{#var}`, `{.var}`,
    /// `{/var}`, `{;var}`, `{?a,b}`, `{&a}`, with `*` and `:N` modifiers)
    /// that matches every topic some expansion of it equals. A template
    /// without any expression is an exact topic.
    ///
    /// # Errors
    /// Unbalanced braces, an empty expression, a reserved operator, an
    /// invalid variable name or modifier, or more than
    /// [`MAX_PATTERN_LEN`] bytes.
    pub fn template(s: &str) -> Result<Selector, SelectorError> {
        check_len(s)?;
        Ok(match Template::parse(s)? {
            Some(template) => Selector::Pattern(Pattern(Arc::new(Inner {
                source: Str::from(s),
                matcher: Matcher::Template(template),
            }))),
            None => Selector::Exact(Str::from(s)),
        })
    }

    /// A WHATWG URL Pattern (`https://example.com/books/:id`), as
    /// Mercure's `match_urlpattern` gives it: it matches the topics that
    /// parse as URLs the pattern matches. Regular expression groups use
    /// the `regex` crate's syntax.
    ///
    /// # Errors
    /// An invalid pattern, a relative one, or more than
    /// [`MAX_PATTERN_LEN`] bytes.
    #[cfg(feature = "urlpattern")]
    #[cfg_attr(docsrs, doc(cfg(feature = "urlpattern")))]
    pub fn url_pattern(s: &str) -> Result<Selector, SelectorError> {
        check_len(s)?;
        let matcher = UrlPatternMatcher::parse(s)?;
        Ok(Selector::Pattern(Pattern(Arc::new(Inner {
            source: Str::from(s),
            matcher: Matcher::UrlPattern(alloc::boxed::Box::new(matcher)),
        }))))
    }

    /// Whether the selector matches `topic`.
    #[inline]
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Selector::Any => true,
            Selector::Exact(exact) => exact.as_str() == topic,
            Selector::Pattern(p) => p.matches(topic),
        }
    }

    /// [`Selector::matches`] on a topic prepared for several selectors.
    #[inline]
    pub(crate) fn matches_topic(&self, topic: &Topic<'_>) -> bool {
        match self {
            Selector::Any => true,
            Selector::Exact(exact) => exact.as_str() == topic.text,
            Selector::Pattern(p) => p.matches_topic(topic),
        }
    }

    /// The selector as written: `*`, the topic or the pattern.
    pub fn as_str(&self) -> &str {
        match self {
            Selector::Any => "*",
            Selector::Exact(exact) => exact.as_str(),
            Selector::Pattern(p) => p.as_str(),
        }
    }

    /// The pattern, for a template or URL pattern.
    pub fn pattern(&self) -> Option<&Pattern> {
        match self {
            Selector::Pattern(p) => Some(p),
            _ => None,
        }
    }
}

/// Refuses overlong patterns.
fn check_len(s: &str) -> Result<(), SelectorError> {
    if s.len() > MAX_PATTERN_LEN {
        Err(SelectorError::TooLong { len: s.len() })
    } else {
        Ok(())
    }
}

impl From<&str> for Selector {
    /// As [`Selector::new`]: `*` or an exact topic.
    fn from(s: &str) -> Selector {
        Selector::new(s)
    }
}

impl From<String> for Selector {
    /// As [`Selector::new`]: `*` or an exact topic.
    fn from(s: String) -> Selector {
        Selector::from(Str::from(s))
    }
}

impl From<Str> for Selector {
    /// `*` is [`Selector::Any`]; any other string is kept (without a copy)
    /// as an exact topic.
    fn from(s: Str) -> Selector {
        if s == "*" {
            Selector::Any
        } else {
            Selector::Exact(s)
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    #[test]
    fn topic_parameters_parse_by_their_text() {
        assert_eq!(Selector::topic("*"), Ok(Selector::Any));
        assert_eq!(Selector::topic("a}b"), Ok(Selector::exact("a}b")));
        assert_eq!(Selector::exact("*").as_str(), "*");
        assert!(!Selector::exact("*").matches("x"));
        let t = Selector::topic("/books/{id}").unwrap();
        assert_eq!(t.pattern().map(Pattern::kind), Some(PatternKind::Template));
        assert_eq!(t.as_str(), "/books/{id}");
        assert_eq!(t.to_string(), "/books/{id}");
        // A template is not the exact topic of the same text.
        assert_ne!(t, Selector::exact("/books/{id}"));
        assert!(!t.matches("/books/{id}"));
        // Patterns sort after exact topics; equal texts make equal
        // patterns.
        assert!(Selector::exact("~") < t);
        assert_eq!(Selector::template("/books/{id}").unwrap(), t);
        // No expression: exact.
        assert_eq!(Selector::template("/books"), Ok(Selector::exact("/books")));
    }

    #[test]
    fn overlong_patterns_are_refused() {
        let long = alloc::format!("/{}/{{id}}", "a".repeat(MAX_PATTERN_LEN));
        let e = Selector::topic(&long).unwrap_err();
        assert_eq!(e, SelectorError::TooLong { len: long.len() });
        assert!(e.to_string().contains("at most 2048 bytes"), "{e}");
        let fits = alloc::format!("/{}{{id}}", "a".repeat(MAX_PATTERN_LEN - 5));
        assert_eq!(fits.len(), MAX_PATTERN_LEN);
        assert!(Selector::topic(&fits).is_ok());
        // Exact topics have no such limit.
        assert!(Selector::topic(&"a".repeat(10 * MAX_PATTERN_LEN)).is_ok());
    }

    #[cfg(feature = "urlpattern")]
    #[test]
    fn url_patterns_match_parsed_topics() {
        let p = Selector::url_pattern("https://example.com/books/:id").unwrap();
        assert_eq!(
            p.pattern().map(Pattern::kind),
            Some(PatternKind::UrlPattern)
        );
        assert!(p.matches("https://example.com/books/1"));
        // The topic is parsed as a URL: the host's case does not matter.
        assert!(p.matches("https://EXAMPLE.com/books/1"));
        assert!(!p.matches("https://example.com/books/1/reviews"));
        assert!(!p.matches("https://example.com/authors/1"));
        assert!(!p.matches("http://example.com/books/1"));
        assert!(!p.matches("not a url"));
        assert!(!p.matches("/books/1"));
        let any_path = Selector::url_pattern("https://example.com/*").unwrap();
        assert!(any_path.matches("https://example.com/a/b?c#d"));
        let grouped = Selector::url_pattern("https://example.com/books/:id(\\d+)").unwrap();
        assert!(grouped.matches("https://example.com/books/12"));
        assert!(!grouped.matches("https://example.com/books/x"));
        // The same text as a template or exact topic is another selector.
        assert_ne!(p, Selector::exact("https://example.com/books/:id"));
    }

    #[cfg(feature = "urlpattern")]
    #[test]
    fn invalid_url_patterns_say_why() {
        let relative = Selector::url_pattern("/books/:id").unwrap_err();
        assert!(relative.to_string().contains("absolute"), "{relative}");
        let bad_group = Selector::url_pattern("https://example.com/:id(").unwrap_err();
        assert!(
            bad_group.to_string().starts_with("invalid URL pattern: "),
            "{bad_group}"
        );
        // Back-references are not in the `regex` crate's syntax.
        let backref = Selector::url_pattern("https://example.com/:id((a)\\1)").unwrap_err();
        assert!(matches!(backref, SelectorError::UrlPattern(_)), "{backref}");
        // A `]` with no `[` in the hostname: the parser's own panic (in
        // builds with overflow checks) is caught, the pattern refused.
        let unopened = Selector::url_pattern("https://exam]ple.com/{[").unwrap_err();
        assert!(
            matches!(unopened, SelectorError::UrlPattern(_)),
            "{unopened}"
        );
        // A huge repetition is refused, not compiled.
        let huge = Selector::url_pattern("https://example.com/:id((a{1000}){1000})").unwrap_err();
        assert!(matches!(huge, SelectorError::UrlPattern(_)), "{huge}");
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        /// An exact selector matches its own text and nothing else.
        #[test]
        fn exact_selectors_match_only_themselves(a in ".{0,12}", b in ".{0,12}") {
            let s = Selector::exact(a.as_str());
            prop_assert!(s.matches(&a));
            prop_assert_eq!(s.matches(&b), a == b);
        }

        /// Parsing never panics, whatever the text.
        #[test]
        fn parsing_never_panics(text in "[{}a-z,:*+#./;?&=%0-9 ]{0,24}", topic in "[a-z/.?=&%0-9]{0,24}") {
            if let Ok(s) = Selector::topic(&text) {
                let _ = s.matches(&topic);
            }
        }
    }
}
