//! `POST /.well-known/mercure`: validate a form, authorize it, publish it.

use std::time::Duration;

use sse_tokio::server::PublishError;
use tokio::time::Instant;

use super::auth;
use super::backend::{Publication, PublishFailure};
use super::http::{Response, WholeRequest};
use super::origin;
use super::query;
use crate::{HUB_PATH, Shared};

/// The most topics one update may have.
pub const MAX_TOPICS: usize = 1000;

/// Handles a publish request.
pub async fn publish(hub: &Shared, request: &WholeRequest) -> Response {
    if let Some(auth) = &hub.auth {
        // A token naming a key the key sets do not hold yet: read them
        // again first (rate-limited).
        let url_query = query::pairs(request.head.query().unwrap_or("").as_bytes());
        auth.fetch_keys_for(&request.head, &url_query, auth::Role::Publisher)
            .await;
    }
    let response = match prepare(hub.auth.as_ref(), &hub.publish_origins, request) {
        Ok(publication) => {
            hold_while_backlogged(hub).await;
            match hub.backend.publish(&publication).await {
                Ok(id) => Response::text(200, id),
                Err(PublishFailure::Unavailable(why)) => {
                    Response::text(503, format!("not published: {why}")).header("Retry-After", "1")
                }
                Err(PublishFailure::Invalid(why)) => Response::text(400, why),
                Err(PublishFailure::Rejected(e)) => Response::text(
                    match e {
                        PublishError::ShutDown => 503,
                        _ => 400,
                    },
                    e.to_string(),
                ),
            }
        }
        Err(response) => response,
    };
    if response.status() != 200 {
        hub.metrics.publish_rejected();
    }
    response
}

/// The longest a publish is held back.
const MAX_HOLD: Duration = Duration::from_millis(100);

/// Holds a publish back (100 ms at most) while subscribers are on average
/// `--publish-backlog` events behind (the broker counts at most 256 per
/// subscriber):
/// when the hub cannot deliver as fast as it is given events, taking more
/// only lengthens every queue (memory, and latency for every subscriber),
/// so the publisher waits instead, outside. A few stalled subscribers do
/// not trigger it (each counts for 256 events at most, and is disconnected
/// when its queue is full).
async fn hold_while_backlogged(hub: &Shared) {
    let per_subscriber = hub.config.publish_backlog;
    if per_subscriber == 0 {
        return;
    }
    let broker = hub.backend.broker();
    let deadline = Instant::now() + MAX_HOLD;
    loop {
        // The common case (no backlog) costs one atomic load: the
        // subscriber count (a lock) is only read when it matters.
        let queued = broker.queued();
        if queued <= per_subscriber * 64 {
            return;
        }
        let limit = per_subscriber * (broker.subscribers() as u64).max(64);
        if queued <= limit || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Checks the form and the publisher's rights (with `auth`, when the hub
/// has a key; `publish_origins` for a publish authorized by cookie), and
/// builds the update.
pub fn prepare(
    auth: Option<&auth::Auth>,
    publish_origins: &[String],
    request: &WholeRequest,
) -> Result<Publication, Response> {
    if let Some(kind) = request.head.header_str("content-type") {
        let essence = kind.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(bad(format!(
                "the body must be a form (Content-Type: application/x-www-form-urlencoded), not {essence:?}"
            )));
        }
    }
    let form = query::pairs(&request.body);
    let topics: Vec<String> = query::all(&form, "topic").map(str::to_owned).collect();
    if topics.is_empty() {
        return Err(bad("missing `topic`: an update needs at least one topic"));
    }
    if topics.len() > MAX_TOPICS {
        return Err(bad(format!("too many topics: at most {MAX_TOPICS}")));
    }
    // The hub's own topics (subscription events): no publisher may forge
    // them. Mercure 0.x answers 403; draft-08 makes it a bad request (400)
    // for a publisher with an access token.
    let reserved = topics.iter().find(|t| is_reserved(t));
    let refuse_reserved = |topic: &String, status: u16| {
        Response::text(
            status,
            format!("the topic {topic:?} is reserved: topics under `{HUB_PATH}` are the hub's own"),
        )
    };
    if let (Some(topic), None) = (reserved, auth) {
        return Err(refuse_reserved(topic, 403));
    }
    if let Some(auth) = auth {
        let url_query = query::pairs(request.head.query().unwrap_or("").as_bytes());
        let (claims, source) = auth
            .authorize(&request.head, &url_query, auth::Role::Publisher)
            .map_err(|e| e.response())?;
        if source.is_cookie() {
            // A browser sends the cookie by itself, also for another
            // site's page (CSRF).
            origin::check_publish(publish_origins, &request.head, auth.cookie_of(source))
                .map_err(|why| Response::text(403, why))?;
        }
        if let Some(topic) = reserved {
            let status = match claims.kind {
                auth::TokenKind::AccessToken => 400,
                auth::TokenKind::Legacy => 403,
            };
            return Err(refuse_reserved(topic, status));
        }
        if !auth::covers(&claims.publish, &topics) {
            return Err(not_covered(claims.kind));
        }
    }
    let data = query::first(&form, "data").unwrap_or("").to_owned();
    let mut publication = Publication {
        topics,
        data,
        event_type: None,
        id: None,
        retry_ms: None,
        private: query::first(&form, "private").is_some(),
        hub: None,
        record: None,
    };
    if let Some(kind) = query::first(&form, "type").filter(|t| !t.is_empty()) {
        if kind.chars().any(char::is_control) {
            return Err(bad(
                "`type` may not hold control characters (CR, LF, NUL, tabs and the like)",
            ));
        }
        if kind == "mercure" {
            return Err(bad(
                "`type` may not be `mercure` (reserved for the hub's own events)",
            ));
        }
        publication.event_type = Some(kind.to_owned());
    }
    if let Some(id) = query::first(&form, "id").filter(|i| !i.is_empty()) {
        if id.chars().any(char::is_control) {
            return Err(bad(
                "`id` may not hold control characters (CR, LF, NUL, tabs and the like)",
            ));
        }
        if id.starts_with('#') {
            return Err(bad("`id` may not start with `#` (reserved)"));
        }
        if id == "earliest" {
            return Err(bad(
                "`id` may not be `earliest` (reserved for resuming from the start)",
            ));
        }
        publication.id = Some(id.to_owned());
    }
    if let Some(retry) = query::first(&form, "retry") {
        if retry.is_empty() || !retry.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("`retry` must be a whole number of milliseconds"));
        }
        publication.retry_ms = Some(retry.parse().map_err(|_| bad("`retry` is too large"))?);
    }
    // These checks are all the broker's (topics, and CR, LF and NUL in the
    // type and the id): a publication that passes them is accepted.
    Ok(publication)
}

/// Whether `topic` (a path, or a URL's path) is under the hub's URL: the
/// hub's own topics (subscription events), which no publisher may use.
pub fn is_reserved(topic: &str) -> bool {
    // A URL's path starts after its scheme and authority.
    let path = match topic.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => topic,
    };
    path.strip_prefix(HUB_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
}

/// The answer to a valid token that does not cover every topic of the
/// update: for an access token, 403 `insufficient_scope` (RFC 6750); for a
/// 0.x token, 401 as Mercure 0.x hubs answer (with the same challenge).
fn not_covered(kind: auth::TokenKind) -> Response {
    let (status, why) = match kind {
        auth::TokenKind::AccessToken => (
            403,
            "the token's `authorization_details` do not grant `publish` on every topic of the \
             update",
        ),
        auth::TokenKind::Legacy => (
            401,
            "the token's `mercure.publish` claim does not cover every topic of the update",
        ),
    };
    Response::text(status, why).header(
        "WWW-Authenticate",
        auth::challenge("insufficient_scope", why),
    )
}

fn bad(why: impl Into<String>) -> Response {
    Response::text(400, why)
}

#[cfg(test)]
mod tests {
    use super::is_reserved;

    #[test]
    fn topics_under_the_hub_url_are_reserved() {
        for topic in [
            "/.well-known/mercure",
            "/.well-known/mercure/subscriptions/a/b",
            "https://example.com/.well-known/mercure/subscriptions",
            "https://example.com/.well-known/mercure?x",
        ] {
            assert!(is_reserved(topic), "{topic}");
        }
        for topic in [
            "/.well-known/mercurex",
            "https://example.com/books/1",
            "https://example.com",
            "urn:example:.well-known/mercure",
            "books/.well-known/mercure",
        ] {
            assert!(!is_reserved(topic), "{topic}");
        }
    }
}
