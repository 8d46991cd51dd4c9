//! `application/x-www-form-urlencoded` pairs, from a query string or a
//! publish body.

use std::borrow::Cow;

/// The decoded `name=value` pairs of a query or form, in order.
pub fn pairs(input: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(input)
        .map(|(k, v): (Cow<'_, str>, Cow<'_, str>)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Every value of `name`.
pub fn all<'a>(pairs: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    pairs
        .iter()
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The first value of `name`.
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The value of a cookie in a `Cookie` field.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        let p = pairs(b"topic=a%2Fb&topic=c+d&data=x%0Ay&private");
        assert_eq!(all(&p, "topic").collect::<Vec<_>>(), ["a/b", "c d"]);
        assert_eq!(first(&p, "data"), Some("x\ny"));
        assert_eq!(first(&p, "private"), Some(""));
        assert_eq!(first(&p, "id"), None);
        assert_eq!(
            cookie("a=1; mercureAuthorization=tok; b=2", "mercureAuthorization"),
            Some("tok")
        );
        assert_eq!(cookie("a=1", "mercureAuthorization"), None);
    }
}
