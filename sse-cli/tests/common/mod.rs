//! The harness the integration tests share: a real `sse hub` process
//! ([`hub`]), raw HTTP/1.1 over loopback sockets ([`http`]), event streams
//! read as they arrive ([`stream`], gunzipped by [`gzip`]), JWTs for the
//! hubs that check them ([`token`]), a real `redis-server` ([`redis`]), and
//! other programs run within a time limit ([`run`]). The Node.js client
//! scripts share `harness.mjs` here.
//!
//! Every wait is bounded: by [`WAIT`] unless a test says otherwise.

#![allow(dead_code)] // Each test crate uses its own part of this module.

pub mod gzip;
pub mod h2raw;
pub mod http;
pub mod hub;
pub mod pki;
pub mod redis;
pub mod run;
pub mod stream;
pub mod token;

use std::time::Duration;

/// The bound on any single wait for the hub (a response, an event, a log
/// line, a metric to change).
pub const WAIT: Duration = Duration::from_secs(15);

/// A single-threaded runtime for a test's async client (reqwest).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}
