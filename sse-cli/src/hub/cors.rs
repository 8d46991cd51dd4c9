//! CORS for `--cors-origin`: the allowed origins get credentials and the
//! request headers an `EventSource` polyfill or a publisher sends.

use sse_proto::http1::RequestHead;

use super::http::Response;

/// The CORS fields for a request from `origin` (none when not allowed).
pub fn headers(allowed: &[String], origin: Option<&str>) -> Vec<(&'static str, String)> {
    let Some(origin) = origin else {
        return Vec::new();
    };
    if !allowed.iter().any(|a| a == "*" || a == origin) {
        return Vec::new();
    }
    vec![
        // With credentials the origin must be named, never `*`.
        ("Access-Control-Allow-Origin", origin.to_owned()),
        ("Access-Control-Allow-Credentials", "true".to_owned()),
        ("Vary", "Origin".to_owned()),
    ]
}

/// Answers a preflight (`OPTIONS`) request.
pub fn preflight(allowed: &[String], head: &RequestHead) -> Response {
    let origin = head.header_str("origin");
    let cors = headers(allowed, origin);
    if cors.is_empty() {
        return Response::new(204).header("Allow", "GET, HEAD, POST, OPTIONS");
    }
    Response::new(204)
        .header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        .header(
            "Access-Control-Allow-Headers",
            "authorization, cache-control, last-event-id, content-type",
        )
        .header("Access-Control-Max-Age", "600")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins() {
        let allowed = vec!["https://a.example".to_owned()];
        assert!(headers(&allowed, Some("https://b.example")).is_empty());
        assert!(headers(&allowed, None).is_empty());
        let h = headers(&allowed, Some("https://a.example"));
        assert_eq!(
            h[0],
            (
                "Access-Control-Allow-Origin",
                "https://a.example".to_owned()
            )
        );
        assert_eq!(h[1].1, "true");
        assert_eq!(headers(&["*".to_owned()], Some("http://x")).len(), 3);
    }
}
