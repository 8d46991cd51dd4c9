//! `/metrics`: Prometheus text format.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Shared;

/// The hub's own counters (the broker keeps the rest).
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    rejected: AtomicU64,
    publish_rejected: AtomicU64,
}

impl Metrics {
    /// A connection was refused by the connection limits.
    pub fn rejected(&self) {
        self.inner.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// A publish was refused (400, 401, 413, 503).
    pub fn publish_rejected(&self) {
        self.inner.publish_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics page.
    pub fn render(&self, hub: &Shared) -> String {
        let stats = hub.backend.broker().stats();
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP sse_hub_{name} {help}");
            let _ = writeln!(out, "# TYPE sse_hub_{name} {kind}");
            let _ = writeln!(out, "sse_hub_{name} {value}");
        };
        metric(
            "open_streams",
            "gauge",
            "Event streams open now.",
            stats.subscribers as u64,
        );
        metric(
            "connections",
            "gauge",
            "TCP connections open now.",
            hub.limits.open() as u64,
        );
        metric(
            "updates_published_total",
            "counter",
            "Updates published.",
            stats.published,
        );
        metric(
            "events_delivered_total",
            "counter",
            "Events handed to subscribers' connections (replayed and live).",
            stats.delivered,
        );
        metric(
            "subscribers_lagged_total",
            "counter",
            "Subscribers disconnected because they could not keep up.",
            stats.lagged,
        );
        metric(
            "replay_requests_total",
            "counter",
            "Subscriptions that resumed from an id or asked for the earliest event.",
            stats.replays,
        );
        metric(
            "replay_misses_total",
            "counter",
            "Resumptions from an id no longer (or never) in the history.",
            stats.replay_misses,
        );
        metric(
            "history_events",
            "gauge",
            "Events kept for replay.",
            stats.history as u64,
        );
        metric(
            "history_bytes",
            "gauge",
            "Bytes of the events kept for replay.",
            stats.history_bytes as u64,
        );
        metric(
            "request_memory_bytes",
            "gauge",
            "Bytes of requests being received, charged to --request-memory.",
            hub.request_memory.used() as u64,
        );
        metric(
            "connections_rejected_total",
            "counter",
            "Connections refused by the connection limits (429).",
            self.inner.rejected.load(Ordering::Relaxed),
        );
        metric(
            "publish_rejected_total",
            "counter",
            "Publish requests refused (400, 401, 413, 503).",
            self.inner.publish_rejected.load(Ordering::Relaxed),
        );
        let (cached, compiled) = hub.selectors.counts();
        metric(
            "selector_cache_entries",
            "gauge",
            "Compiled selectors (URI templates, URL patterns) kept for reuse.",
            cached as u64,
        );
        metric(
            "selectors_compiled_total",
            "counter",
            "URI templates and URL patterns compiled (a cached one is compiled once).",
            compiled,
        );
        if let Some(presence) = &hub.presence {
            let list = presence.registry().stats();
            metric(
                "subscriptions_active",
                "gauge",
                "Active subscriptions listed by the subscriptions API (one per selector of each subscriber).",
                list.entries as u64,
            );
            metric(
                "subscriptions_bytes",
                "gauge",
                "Bytes the list of active subscriptions is counted for (--max-subscriptions-bytes).",
                list.bytes as u64,
            );
            metric(
                "subscriptions_refused_total",
                "counter",
                "Subscribers refused (503) because the list of active subscriptions was full.",
                list.refused,
            );
            metric(
                "subscriptions_unrecorded_total",
                "counter",
                "Subscription events not listed or not announced: the list, or the queue to Redis, was full.",
                list.unrecorded,
            );
            metric(
                "subscriptions_reaped_total",
                "counter",
                "Subscriptions no longer listed because the hub process that announced them stopped.",
                list.reaped,
            );
        }
        metric(
            "backend_up",
            "gauge",
            "1 when the backend is reachable.",
            u64::from(hub.backend.is_up()),
        );
        out
    }
}
