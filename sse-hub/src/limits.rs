//! Connection limits: in all and per IP address. A connection holds a
//! [`Slot`] while it is open; so does each event stream of an HTTP/2
//! connection, under its client's address only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The open connections, counted.
pub struct Limits {
    shared: Arc<Shared>,
}

struct Shared {
    max: usize,
    max_per_ip: Option<usize>,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection (or HTTP/2 event stream); dropping it frees its
/// place.
pub struct Slot {
    shared: Arc<Shared>,
    /// The address it is counted under, if any.
    ip: Option<IpAddr>,
    /// Whether it is counted in all (a connection) or only under its
    /// address (an HTTP/2 event stream, whose connection is counted in
    /// all).
    in_all: bool,
}

impl Limits {
    pub fn new(max: usize, max_per_ip: Option<usize>) -> Limits {
        Limits {
            shared: Arc::new(Shared {
                max,
                max_per_ip,
                open: AtomicUsize::new(0),
                per_ip: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The most connections open at once.
    pub fn max(&self) -> usize {
        self.shared.max
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Takes a place for a connection from `ip`, or `None` when a limit is
    /// reached.
    pub fn enter(&self, ip: IpAddr) -> Option<Slot> {
        let mut slot = self.enter_unbound()?;
        slot.bind(ip).then_some(slot)
    }

    /// Takes a place under `ip` only, for an event stream of an HTTP/2
    /// connection (which holds its place in all): the client then counts
    /// once per stream, as over HTTP/1.1 where each stream is a
    /// connection, and once for the connection itself. `None` when `ip` is
    /// at its limit.
    #[cfg(any(feature = "axum", test))]
    pub fn enter_stream(&self, ip: IpAddr) -> Option<Slot> {
        let mut slot = Slot {
            shared: self.shared.clone(),
            ip: None,
            in_all: false,
        };
        slot.bind(ip).then_some(slot)
    }
}

impl Limits {
    /// Takes a place in all but for no address yet: a connection from a
    /// trusted proxy, whose clients are known only from what it forwards
    /// ([`Slot::bind`]).
    pub fn enter_unbound(&self) -> Option<Slot> {
        let shared = &self.shared;
        if shared.open.fetch_add(1, Ordering::SeqCst) >= shared.max {
            shared.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot {
            shared: shared.clone(),
            ip: None,
            in_all: true,
        })
    }
}

impl Slot {
    /// Counts the connection under `ip` from now on (once: a slot already
    /// counted under an address keeps it). `false` when `ip` is at its
    /// limit.
    pub fn bind(&mut self, ip: IpAddr) -> bool {
        let Some(max) = self.shared.max_per_ip else {
            return true;
        };
        if self.ip.is_some() {
            return true;
        }
        let mut per_ip = self.shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= max {
            if *count == 0 {
                per_ip.remove(&ip);
            }
            return false;
        }
        *count += 1;
        self.ip = Some(ip);
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.in_all {
            self.shared.open.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(ip) = self.ip {
            let mut per_ip = self.shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_all_and_per_ip() {
        let limits = Limits::new(3, Some(2));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = limits.enter(a).unwrap();
        let s2 = limits.enter(a).unwrap();
        assert!(limits.enter(a).is_none());
        let s3 = limits.enter(b).unwrap();
        assert!(limits.enter(b).is_none(), "the total limit");
        assert_eq!(limits.open(), 3);
        drop(s1);
        let _s4 = limits.enter(a).unwrap();
        drop((s2, s3));
        assert_eq!(limits.open(), 1);
        assert_eq!(limits.shared.per_ip.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_unbound_slot_is_counted_under_its_client_once_bound() {
        let limits = Limits::new(10, Some(1));
        let client: IpAddr = "198.51.100.4".parse().unwrap();
        let mut a = limits.enter_unbound().unwrap();
        let mut b = limits.enter_unbound().unwrap();
        assert!(a.bind(client));
        assert!(a.bind(client), "binding again changes nothing");
        assert!(!b.bind(client), "the client's one place is taken");
        assert_eq!(limits.open(), 2);
        drop(a);
        assert!(b.bind(client));
        drop(b);
        assert_eq!(limits.open(), 0);
        assert!(limits.shared.per_ip.lock().unwrap().is_empty());
    }

    #[test]
    fn a_stream_counts_under_its_address_only() {
        let limits = Limits::new(1, Some(3));
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let connection = limits.enter(a).unwrap();
        let first = limits.enter_stream(a).unwrap();
        let second = limits.enter_stream(a).unwrap();
        assert!(limits.enter_stream(a).is_none(), "the address's limit");
        assert_eq!(limits.open(), 1, "streams are not connections");
        assert!(limits.enter("192.0.2.8".parse().unwrap()).is_none());
        drop(first);
        let third = limits.enter_stream(a).unwrap();
        drop((connection, second, third));
        assert_eq!(limits.open(), 0);
        assert!(limits.shared.per_ip.lock().unwrap().is_empty());
        // Without a per-address limit a stream always has its place.
        let unlimited = Limits::new(1, None);
        let streams: Vec<_> = (0..5).map(|_| unlimited.enter_stream(a)).collect();
        assert!(streams.iter().all(Option::is_some));
    }
}
