//! Keeping secrets out of logs, error messages and metrics: tokens in
//! request targets (`?authorization=...`) and passwords in Redis URLs.

use std::borrow::Cow;

/// What a secret is replaced with.
pub const MARK: &str = "REDACTED";

/// Query parameters whose value is a secret (compared after decoding,
/// ignoring ASCII case): Mercure's token parameters (`authorization`, and
/// RFC 6750's `access_token`), and the password of a Redis URL over a Unix
/// socket (`redis+unix:///path?pass=...`).
const SECRET_PARAMS: [&str; 4] = ["authorization", "access_token", "pass", "password"];

/// `target` (a request target such as `/.well-known/mercure?topic=a&authorization=T`,
/// or a whole URL) with the value of every secret query parameter replaced
/// by [`MARK`]. Borrowed when there is nothing to hide.
pub fn target(target: &str) -> Cow<'_, str> {
    let Some((before, query)) = target.split_once('?') else {
        return Cow::Borrowed(target);
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    if !query.split('&').any(is_secret_pair) {
        return Cow::Borrowed(target);
    }
    let mut out = String::with_capacity(target.len());
    out.push_str(before);
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        if is_secret_pair(pair) {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            out.push_str(name);
            out.push('=');
            out.push_str(MARK);
        } else {
            out.push_str(pair);
        }
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    Cow::Owned(out)
}

/// Whether a `name=value` pair of a query carries a secret value.
fn is_secret_pair(pair: &str) -> bool {
    let Some((name, value)) = pair.split_once('=') else {
        return false;
    };
    if value.is_empty() {
        return false;
    }
    // Decoded as the hub's own query parsing decodes it: `authoriz%61tion`
    // is `authorization` too.
    let decoded: String = form_urlencoded::parse(format!("{name}=").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default();
    SECRET_PARAMS
        .iter()
        .any(|secret| decoded.eq_ignore_ascii_case(secret))
}

/// `url` with the password of its userinfo (`redis://user:PASSWORD@host`)
/// and any secret query parameter replaced by [`MARK`]. A userinfo with no
/// `:` (`redis://TOKEN@host`) is hidden whole: some clients read it as a
/// password.
pub fn url(url: &str) -> String {
    let url = target(url);
    let Some(scheme_end) = url.find("://") else {
        return url.into_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else {
        return url.into_owned();
    };
    let userinfo = &authority[..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{MARK}"),
        None => MARK.to_owned(),
    };
    format!(
        "{}{shown}{}",
        &url[..authority_start],
        &url[authority_start + at..]
    )
}

/// Secret strings to scrub from any text (an error message from a library,
/// say, which may quote what it was given).
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// The secrets of a Redis URL: its password as written and decoded, and
    /// the value of its `pass` parameter; `decoded` is the password as the
    /// client understood it, if known.
    pub fn of_url(url: &str, decoded: Option<&str>) -> Secrets {
        let mut secrets = Secrets::default();
        if let Some(scheme_end) = url.find("://") {
            let rest = &url[scheme_end + 3..];
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            if let Some(at) = authority.rfind('@') {
                let userinfo = &authority[..at];
                let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
                secrets.add(password);
                secrets.add(&percent_decode(password));
            }
        }
        if let Some((_, query)) = url.split_once('?') {
            let query = query.split('#').next().unwrap_or("");
            for pair in query.split('&').filter(|p| is_secret_pair(p)) {
                if let Some((_, value)) = pair.split_once('=') {
                    secrets.add(value);
                    secrets.add(&percent_decode(value));
                }
            }
        }
        if let Some(decoded) = decoded {
            secrets.add(decoded);
        }
        secrets
    }

    fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.values.iter().any(|v| v == secret) {
            self.values.push(secret.to_owned());
            // Longest first: a secret that contains another is replaced whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// `text` with every secret replaced by [`MARK`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MARK);
            }
        }
        out
    }
}

/// Percent-decodes `text` (invalid escapes and UTF-8 are kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_lose_their_token() {
        assert_eq!(
            target("/.well-known/mercure?topic=a&authorization=eyJ.x.y&lastEventID=3"),
            "/.well-known/mercure?topic=a&authorization=REDACTED&lastEventID=3"
        );
        // Encoded or capitalised names are the same parameter.
        assert_eq!(
            target("/?authoriz%61tion=t1&Authorization=t2&AUTHORIZATION=t3"),
            "/?authoriz%61tion=REDACTED&Authorization=REDACTED&AUTHORIZATION=REDACTED"
        );
        // Every occurrence, first or last.
        assert_eq!(
            target("/x?authorization=a&authorization=b"),
            "/x?authorization=REDACTED&authorization=REDACTED"
        );
        // Nothing to hide: the same text, borrowed.
        for plain in [
            "/",
            "/.well-known/mercure?topic=a",
            "/?authorization=",
            "/?authorization",
            "/?not_authorization=x&authorizationx=y",
        ] {
            assert!(matches!(target(plain), Cow::Borrowed(t) if t == plain));
        }
        assert_eq!(
            target("https://hub.example/.well-known/mercure?authorization=t#frag"),
            "https://hub.example/.well-known/mercure?authorization=REDACTED#frag"
        );
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            url("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://:REDACTED@10.0.0.1:6379/0"
        );
        assert_eq!(
            url("rediss://user:p%40ss@cache.example"),
            "rediss://user:REDACTED@cache.example"
        );
        // An `@` in the password, unencoded: everything before the last `@`
        // of the authority is userinfo.
        assert_eq!(url("redis://u:a@b@host:1"), "redis://u:REDACTED@host:1");
        assert_eq!(url("redis://token@host"), "redis://REDACTED@host");
        assert_eq!(
            url("redis+unix:///run/redis.sock?db=1&pass=hunter2"),
            "redis+unix:///run/redis.sock?db=1&pass=REDACTED"
        );
        // No userinfo: unchanged, even with an `@` after the authority.
        assert_eq!(url("redis://host:6379/0"), "redis://host:6379/0");
        assert_eq!(url("redis://host/0?x=a@b"), "redis://host/0?x=a@b");
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn secrets_are_scrubbed_from_any_text() {
        let secrets = Secrets::of_url("redis://user:p%40ss@host:6379", Some("p@ss"));
        assert_eq!(
            secrets.scrub("auth failed for p@ss (p%40ss) at host"),
            "auth failed for REDACTED (REDACTED) at host"
        );
        let unix = Secrets::of_url("unix:///tmp/r.sock?pass=s3cret", None);
        assert_eq!(unix.scrub("bad: s3cret"), "bad: REDACTED");
        // No password: nothing changes.
        let none = Secrets::of_url("redis://host:6379", None);
        assert_eq!(
            none.scrub("redis://host:6379 down"),
            "redis://host:6379 down"
        );
        assert_eq!(percent_decode("a%41%zz%4"), "aA%zz%4");
    }
}
