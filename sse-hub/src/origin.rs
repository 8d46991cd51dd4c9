//! Web origins (`scheme://host[:port]`): comparing them, and the check
//! against cross-site request forgery for publishes authorized by cookie
//! (`--publish-origin`).
//!
//! A browser attaches the hub's cookie to any request for the hub, also
//! one a page of another site makes (a form it submits, a `fetch`). A
//! publish that the cookie alone authorizes must therefore come from a
//! page the hub trusts: its `Origin` header (or, when a browser sent none,
//! the origin of its `Referer`) must be listed with `--publish-origin`.
//! Publishes authorized by `Authorization: Bearer` or the `authorization`
//! query parameter carry their token explicitly, which another site's page
//! cannot do, and are not checked.

use sse_proto::http1::RequestHead;

/// `origin` as compared: scheme and host in lowercase, without a trailing
/// `/` or the scheme's default port. `None` when it is not an origin
/// (`null`, a path, no scheme).
pub fn normalize(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/');
    let (scheme, authority) = origin.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        || authority.is_empty()
        || authority.contains(['/', '?', '#', '@', ' '])
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(":80"),
        "https" => Some(":443"),
        _ => None,
    };
    if let Some(stripped) = default_port.and_then(|port| authority.strip_suffix(port)) {
        authority = stripped.to_owned();
    }
    Some(format!("{scheme}://{authority}"))
}

/// The origin of a URL (a `Referer`): its scheme and authority, without
/// userinfo.
pub fn of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    normalize(&format!("{scheme}://{authority}"))
}

/// Whether `origin` (as a browser sent it) is one of `allowed` (already
/// normalized).
pub fn is_listed(allowed: &[String], origin: &str) -> bool {
    normalize(origin).is_some_and(|o| allowed.contains(&o))
}

/// Accepts a publish authorized by the cookie named `cookie` when its
/// page's origin is in `allowed` (normalized), or says why not (answer
/// 403).
pub fn check_publish(allowed: &[String], head: &RequestHead, cookie: &str) -> Result<(), String> {
    let (origin, from) = match head.header_str("origin") {
        Some(origin) => (Some(origin.trim().to_owned()), "Origin"),
        None => (head.header_str("referer").and_then(of_url), "Referer"),
    };
    let Some(origin) = origin else {
        return Err(format!(
            "refused: this publish is authorized by the {cookie} cookie but says neither where \
             it comes from (no Origin or Referer header), so it could be a forgery by another \
             site's page; send the token as `Authorization: Bearer` instead, or publish from a \
             browser page whose origin is listed with --publish-origin"
        ));
    };
    if is_listed(allowed, &origin) {
        return Ok(());
    }
    let Some(normalized) = normalize(&origin) else {
        return Err(format!(
            "refused: this publish is authorized by the {cookie} cookie, and its \
             {from} ({origin}) names no web origin that could be trusted (protection against \
             cross-site request forgery); publish from a page whose origin is listed with \
             --publish-origin, or send the token as `Authorization: Bearer`"
        ));
    };
    let listed = if allowed.is_empty() {
        "this hub trusts no page with its cookie (no --publish-origin)".to_owned()
    } else {
        "that origin is not listed with --publish-origin".to_owned()
    };
    Err(format!(
        "refused: this publish is authorized by the {cookie} cookie, from a page of \
         {normalized} ({from} header), and {listed} (protection against cross-site request \
         forgery); start the hub with --publish-origin {normalized} if that page may publish, \
         or send the token as `Authorization: Bearer`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sse_proto::http1::RequestParser;

    fn post(headers: &str) -> RequestHead {
        let raw = format!("POST /.well-known/mercure HTTP/1.1\r\nHost: h\r\n{headers}\r\n");
        let mut buf = bytes::BytesMut::from(raw.as_bytes());
        RequestParser::new().parse_buf(&mut buf).unwrap().unwrap()
    }

    #[test]
    fn origins_compare_as_browsers_serialize_them() {
        let given = [
            "HTTPS://App.Example:443/",
            "http://app.example:80",
            "http://app.example:8080",
            "https://[::1]:443",
        ];
        let normalized: Vec<Option<String>> = given.iter().map(|o| normalize(o)).collect();
        let expected = [
            "https://app.example",
            "http://app.example",
            "http://app.example:8080",
            "https://[::1]",
        ];
        assert_eq!(normalized, expected.map(|o| Some(o.to_owned())));
        for not_origin in [
            "null",
            "*",
            "app.example",
            "https://",
            "https://a/b",
            "https://u@a",
        ] {
            assert_eq!(normalize(not_origin), None, "{not_origin}");
        }
        assert_eq!(
            of_url("https://user@app.example:443/chat?x=1#y").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(of_url("/relative"), None);
    }

    const C: &str = "mercureAuthorization";

    #[test]
    fn cookie_publishes_need_a_listed_origin() {
        let allowed = vec![normalize("https://app.example").unwrap()];
        assert_eq!(
            check_publish(&allowed, &post("Origin: https://app.example\r\n"), C),
            Ok(())
        );
        // The Referer's origin counts when there is no Origin.
        assert_eq!(
            check_publish(
                &allowed,
                &post("Referer: https://app.example/chat?room=1\r\n"),
                C
            ),
            Ok(())
        );
        // Origin wins over Referer.
        let why = check_publish(
            &allowed,
            &post("Origin: https://evil.example\r\nReferer: https://app.example/\r\n"),
            C,
        )
        .unwrap_err();
        assert!(
            why.contains("--publish-origin https://evil.example"),
            "{why}"
        );
        // A prefix or an extension of a listed origin is another origin.
        for other in [
            "https://app.example.evil",
            "http://app.example",
            "https://app.example:8443",
            "null",
        ] {
            let head = post(&format!("Origin: {other}\r\n"));
            assert!(check_publish(&allowed, &head, C).is_err(), "{other}");
        }
        // No Origin and no Referer.
        let why = check_publish(&allowed, &post(""), C).unwrap_err();
        assert!(why.contains("no Origin or Referer"), "{why}");
        assert!(why.contains("by the mercureAuthorization cookie"), "{why}");
        // No list: refused, saying which flag to set.
        let why =
            check_publish(&[], &post("Origin: https://app.example\r\n"), "hubToken").unwrap_err();
        assert!(
            why.contains("--publish-origin https://app.example")
                && why.contains("by the hubToken cookie"),
            "{why}"
        );
    }
}
