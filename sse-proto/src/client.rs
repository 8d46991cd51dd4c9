//! The reconnecting `EventSource` client, sans-IO: [`EventSource`] is a
//! state machine that decides what to request, when to reconnect and which
//! events to deliver, while an adapter does the networking and the sleeping.
//! Its documentation lists the policy choices made where
//! the client conformance checklist (`tests/vectors/client-vectors.md` in
//! this crate) leaves them to the library.

mod backoff;
mod config;
#[cfg(feature = "http1")]
mod conn;
mod http;
mod machine;
#[cfg(feature = "http1")]
mod proxy;
mod rejection;

pub use crate::http1::value::{is_event_stream, parse_retry_after};
pub use config::{ClientConfig, Jitter, MAX_DELAY, ReconnectPolicy, RedirectTarget};
#[cfg(feature = "http1")]
pub use conn::{Connection, ConnectionError, ConnectionOutput};
pub use http::Fetch;
pub use machine::{
    CloseReason, EventSource, Output, ReadyState, ReconnectReason, ResponseSummary, Warning,
};
#[cfg(feature = "http1")]
pub use proxy::{Proxies, Proxy, ProxyError};
pub use rejection::{ERROR_BODY_LIMIT, ErrorResponse, excerpt};
