//! Gives freed memory back to the system after many connections close.
//!
//! glibc's allocator keeps most of what thousands of closed connections
//! freed (for reuse, so nothing grows from one wave of connections to the
//! next), which leaves the hub's resident size near its peak. When the
//! number of open connections has fallen well below the level of the last
//! trim, `malloc_trim` returns the free pages. Only on glibc; elsewhere
//! this does nothing.

use std::time::Duration;

use super::limits::Limits;

/// How often the connection count is looked at.
const EVERY: Duration = Duration::from_secs(1);
/// How many connections must have closed since the last trim (or the peak
/// since then) for another one.
const CLOSED: usize = 256;

/// Watches `limits` and trims after mass disconnects; runs until the hub
/// stops.
pub async fn run(limits: std::sync::Arc<Limits>) {
    let mut high = limits.open();
    let mut ticker = tokio::time::interval(EVERY);
    loop {
        ticker.tick().await;
        let open = limits.open();
        high = high.max(open);
        if high - open >= CLOSED {
            release_free_memory();
            high = open;
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: malloc_trim only releases free memory of the allocator's
    // arenas; it takes no pointer and leaves every live allocation alone.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}
