//! Topic selectors on arbitrary bytes: the input is a selector's text and
//! a topic, split at the first NUL byte (both read as UTF-8, invalid
//! sequences replaced). The text is compiled as a Mercure `topic` selector
//! (exact, `*` or URI template), as a URI template and as a URL pattern,
//! and each one that compiles is matched against the topic and against
//! its own text. No panic (but the `urlpattern` parser's own, which
//! `Selector::url_pattern` catches: see `tolerate`); an exact selector
//! matches only its own text; a text over the length limit is refused.
#![no_main]

mod tolerate;

use libfuzzer_sys::fuzz_target;
use sse_proto::server::{MAX_PATTERN_LEN, Selector, SelectorError};

fuzz_target!(|data: &[u8]| {
    tolerate::urlpattern_panics();
    let (text, topic) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let text = String::from_utf8_lossy(text);
    let topic = String::from_utf8_lossy(topic);
    let compiled = [
        Selector::topic(&text),
        Selector::template(&text),
        Selector::url_pattern(&text),
    ];
    for selector in compiled {
        match selector {
            Ok(Selector::Exact(exact)) => {
                assert_eq!(exact.as_str(), &*text);
                assert_eq!(Selector::Exact(exact).matches(&topic), text == topic);
            }
            Ok(selector) => {
                let _ = selector.matches(&topic);
                let _ = selector.matches(&text);
                assert!(text.len() <= MAX_PATTERN_LEN || selector == Selector::Any);
            }
            Err(SelectorError::TooLong { len }) => {
                assert!(len > MAX_PATTERN_LEN && len == text.len());
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
