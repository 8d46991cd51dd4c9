//! CORS for `--cors-origin`: the listed origins get credentials (cookies)
//! and the request headers an `EventSource` polyfill or a publisher sends.
//! `*` lets any other origin read the hub's answers without credentials:
//! `Access-Control-Allow-Origin: *` and no `Access-Control-Allow-Credentials`,
//! so a browser never sends a visitor's cookie to the hub on behalf of an
//! arbitrary site (and never shows that site what the cookie gives).

use sse_proto::http1::RequestHead;

use super::http::Response;
use super::origin;

/// The CORS fields for a request from `origin` (none when not allowed).
/// `allowed` holds `*` or origins as configured.
pub fn headers(allowed: &[String], origin: Option<&str>) -> Vec<(&'static str, String)> {
    let Some(origin) = origin else {
        return Vec::new();
    };
    let listed = allowed
        .iter()
        .filter(|a| *a != "*")
        .filter_map(|a| origin::normalize(a))
        .collect::<Vec<_>>();
    if origin::is_listed(&listed, origin) {
        return vec![
            // With credentials the origin must be named, never `*`.
            ("Access-Control-Allow-Origin", origin.to_owned()),
            ("Access-Control-Allow-Credentials", "true".to_owned()),
            ("Vary", "Origin".to_owned()),
        ];
    }
    if allowed.iter().any(|a| a == "*") {
        // Any origin, never with credentials.
        return vec![
            ("Access-Control-Allow-Origin", "*".to_owned()),
            ("Vary", "Origin".to_owned()),
        ];
    }
    Vec::new()
}

/// Answers a preflight (`OPTIONS`) request.
pub fn preflight(allowed: &[String], head: &RequestHead) -> Response {
    let origin = head.header_str("origin");
    let cors = headers(allowed, origin);
    if cors.is_empty() {
        return Response::new(204).header("Allow", "GET, HEAD, QUERY, POST, OPTIONS");
    }
    Response::new(204)
        .header("Access-Control-Allow-Methods", "GET, QUERY, POST, OPTIONS")
        .header(
            "Access-Control-Allow-Headers",
            "authorization, cache-control, last-event-id, content-type",
        )
        .header("Access-Control-Max-Age", "600")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn only_listed_origins() {
        let allowed = vec!["https://a.example".to_owned()];
        assert!(headers(&allowed, Some("https://b.example")).is_empty());
        assert!(headers(&allowed, Some("https://a.example.b")).is_empty());
        assert!(headers(&allowed, None).is_empty());
        let h = headers(&allowed, Some("https://a.example"));
        assert_eq!(
            value(&h, "Access-Control-Allow-Origin"),
            Some("https://a.example")
        );
        assert_eq!(value(&h, "Access-Control-Allow-Credentials"), Some("true"));
    }

    #[test]
    fn a_star_never_comes_with_credentials() {
        let any = vec!["*".to_owned()];
        let h = headers(&any, Some("https://evil.example"));
        assert_eq!(value(&h, "Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(value(&h, "Access-Control-Allow-Credentials"), None);
        // Listed origins keep their credentials next to `*`.
        let both = vec!["*".to_owned(), "https://a.example".to_owned()];
        let h = headers(&both, Some("https://a.example"));
        assert_eq!(
            value(&h, "Access-Control-Allow-Origin"),
            Some("https://a.example")
        );
        assert_eq!(value(&h, "Access-Control-Allow-Credentials"), Some("true"));
        let h = headers(&both, Some("https://b.example"));
        assert_eq!(value(&h, "Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(value(&h, "Access-Control-Allow-Credentials"), None);
    }
}
