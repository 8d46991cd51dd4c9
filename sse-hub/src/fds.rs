//! File descriptors: the hub raises its limit at start, derives its
//! default connection limit from it, and keeps answering when descriptors
//! run out anyway (other processes' connections, `--max-connections` set
//! above what the limit allows).
//!
//! Every connection is one descriptor. The default `--max-connections` is
//! the raised limit less a reserve (a tenth of it, at least 32 and at most
//! 1024) for what else the hub opens: the listener, the runtimes' event
//! loops, Redis connections, logs, and the accept reserve below. So over
//! the limit a client gets 429 from the connection limits before the
//! descriptors run out.
//!
//! If they run out all the same, `accept` fails with `EMFILE` (or `ENFILE`)
//! and the connection waits in the kernel's queue, where its client would
//! hang. The hub keeps one descriptor in reserve (an open `/dev/null`): on
//! that error it closes it, accepts the waiting connection, answers it
//! `503 Service Unavailable` with `Retry-After`, closes it, and opens the
//! reserve again. While the reserve is in use, the accept loop waits a
//! little between attempts instead of spinning on the error. Connections
//! already open need no new descriptor: they go on being served.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::warn;

use super::http;
use crate::Shared;

/// The default `--max-connections` where the descriptor limit is unknown.
const FALLBACK_MAX_CONNECTIONS: usize = 100_000;

/// The process's descriptor limit, as raised at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit the hub started with.
    pub before: u64,
    /// The soft limit now (the hard limit, when it could be raised to it).
    pub now: u64,
}

impl FdLimit {
    /// How many descriptors are kept for other uses than connections.
    pub fn reserve(&self) -> u64 {
        (self.now / 10).clamp(32, 1024)
    }

    /// The default `--max-connections`: the limit less the reserve (at
    /// least 1).
    pub fn max_connections(&self) -> usize {
        let usable = self.now.saturating_sub(self.reserve()).max(1);
        usize::try_from(usable).unwrap_or(usize::MAX)
    }
}

/// The default `--max-connections` for `limit` (from [`raise_limit`]).
pub fn derived_max_connections(limit: Option<FdLimit>) -> usize {
    limit.map_or(FALLBACK_MAX_CONNECTIONS, |l| l.max_connections())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (or as close to it
/// as the system allows); the limits before and after. `None` where the
/// limit cannot be read (and on systems without it).
#[cfg(unix)]
#[allow(unsafe_code)]
// `rlim_t` is `u64` on Linux and macOS, but signed on some BSDs.
#[allow(clippy::unnecessary_cast)]
pub fn raise_limit() -> Option<FdLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct passed, which
    // lives on this stack frame for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let before = limit.rlim_cur;
    // An unlimited hard limit is refused above the kernel's own cap
    // (`fs.nr_open` on Linux, `OPEN_MAX` on macOS): try lower values then.
    for want in [limit.rlim_max, 1 << 20, 1 << 16, 10_240] {
        let want = want.min(limit.rlim_max);
        if want <= before {
            break;
        }
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one `rlimit` from the struct passed,
        // which lives on this stack frame for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Some(FdLimit {
                before: before as u64,
                now: want as u64,
            });
        }
    }
    Some(FdLimit {
        before: before as u64,
        now: before as u64,
    })
}

/// Raises the descriptor limit: nothing to do on this system.
#[cfg(not(unix))]
pub fn raise_limit() -> Option<FdLimit> {
    None
}

/// Whether an `accept` error means the process (or the system) is out of
/// file descriptors.
fn out_of_descriptors(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// How long the accept loop waits after an error it cannot do anything
/// about (out of descriptors with the reserve in use, or another error).
const PAUSE: Duration = Duration::from_millis(50);

/// How long a refused connection may take to send its request head (it is
/// read so that the client sees the answer, not a reset) while it holds
/// the reserved descriptor.
const REFUSAL_WAIT: Duration = Duration::from_secs(1);

/// The accept loop's side of descriptor exhaustion: the reserved
/// descriptor, and whether the current episode was logged.
///
/// The rule: a connection is served only while the reserve is held. When
/// `accept` fails for want of descriptors, the reserve's descriptor goes
/// to the waiting connection, which is refused; when a connection was
/// accepted but the reserve cannot be taken back (the refusal of another
/// connection is still using its descriptor, or something else took it),
/// that connection is refused too. Each refusal takes the reserve back
/// once it has closed its connection. So there is always either a held
/// reserve or a refusal under way that frees a descriptor: new clients
/// get an answer, never a hang.
pub struct AcceptGuard {
    reserve: Arc<Reserve>,
    /// Whether a reserve could be opened at all (no `/dev/null`, or not a
    /// Unix system: the hub then only waits between failed accepts).
    enabled: bool,
    warned: bool,
}

/// The reserved descriptor (an open `/dev/null`), shared with refusals.
struct Reserve(std::sync::Mutex<Option<std::fs::File>>);

impl Reserve {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<std::fs::File>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the descriptor again if it is not held (this fails,
    /// harmlessly, while descriptors are still out); whether it is held.
    fn refill(&self) -> bool {
        let mut file = self.lock();
        if file.is_none() {
            *file = open_reserve();
        }
        file.is_some()
    }

    /// Closes the descriptor; whether it was held.
    fn release(&self) -> bool {
        self.lock().take().is_some()
    }
}

impl AcceptGuard {
    /// Takes the reserved descriptor.
    pub fn new() -> AcceptGuard {
        let file = open_reserve();
        AcceptGuard {
            enabled: file.is_some(),
            reserve: Arc::new(Reserve(std::sync::Mutex::new(file))),
            warned: false,
        }
    }

    /// Admits a connection just accepted: `Some` to serve it, `None` when
    /// it is refused (503) because no descriptor is left in reserve.
    pub fn admit(&mut self, socket: TcpStream, hub: &Arc<Shared>) -> Option<TcpStream> {
        if !self.enabled || self.reserve.refill() {
            self.warned = false;
            return Some(socket);
        }
        self.refuse(socket, hub);
        None
    }

    /// Handles a failed `accept`: out of descriptors, answers the waiting
    /// connection 503 on the reserved descriptor when it is held, and
    /// waits a little otherwise. Never returns at once without progress,
    /// so the accept loop does not spin on a persistent error.
    pub async fn failed(&mut self, e: io::Error, listener: &TcpListener, hub: &Arc<Shared>) {
        if !out_of_descriptors(&e) {
            warn!("accept failed: {e}");
            tokio::time::sleep(PAUSE).await;
            return;
        }
        self.warn(&e);
        if !self.enabled || !self.reserve.refill() || !self.reserve.release() {
            // A refusal under way has the reserve's descriptor (or nothing
            // is left at all): the waiting clients wait a little longer.
            tokio::time::sleep(PAUSE).await;
            return;
        }
        // The freed descriptor goes to the waiting connection.
        match tokio::time::timeout(PAUSE, listener.accept()).await {
            Ok(Ok((socket, _))) => self.refuse(socket, hub),
            _ => {
                self.reserve.refill();
                tokio::time::sleep(PAUSE).await;
            }
        }
    }

    /// Answers `socket` 503 on a task of its own, which takes the reserve
    /// back once the socket is closed.
    fn refuse(&mut self, mut socket: TcpStream, hub: &Arc<Shared>) {
        hub.metrics.rejected();
        let reserve = self.reserve.clone();
        tokio::spawn(async move {
            http::reject_unavailable(&mut socket, REFUSAL_WAIT).await;
            drop(socket);
            reserve.refill();
        });
    }

    /// Logs the first failure of an episode.
    fn warn(&mut self, e: &io::Error) {
        if !self.warned {
            self.warned = true;
            warn!(
                "out of file descriptors ({e}): new connections get 503 until some close \
                 (lower --max-connections, or raise the hard descriptor limit)"
            );
        }
    }
}

fn open_reserve() -> Option<std::fs::File> {
    if cfg!(unix) {
        std::fs::File::open("/dev/null").ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_connection_limit_leaves_a_reserve() {
        let limit = |now| FdLimit { before: 0, now };
        assert_eq!(limit(64).max_connections(), 32);
        assert_eq!(limit(1024).max_connections(), 1024 - 102);
        assert_eq!(limit(1 << 20).max_connections(), (1 << 20) - 1024);
        assert_eq!(limit(16).max_connections(), 1);
        assert_eq!(derived_max_connections(None), FALLBACK_MAX_CONNECTIONS);
    }

    #[cfg(unix)]
    #[test]
    fn raising_the_limit_never_lowers_it() {
        let limit = raise_limit().expect("RLIMIT_NOFILE is readable");
        assert!(limit.now >= limit.before);
        // A second call finds it raised already.
        assert_eq!(raise_limit().map(|l| l.before), Some(limit.now));
    }

    #[cfg(unix)]
    #[test]
    fn emfile_and_enfile_mean_out_of_descriptors() {
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(
            libc::ENFILE
        )));
        assert!(!out_of_descriptors(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
