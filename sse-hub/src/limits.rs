//! Connection limits: in all and per IP address. A connection holds a
//! [`Slot`] while it is open.

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

/// One open connection; dropping it frees its place.
pub struct Slot {
    shared: Arc<Shared>,
    ip: Option<IpAddr>,
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
        let shared = &self.shared;
        if shared.open.fetch_add(1, Ordering::SeqCst) >= shared.max {
            shared.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let mut slot = Slot {
            shared: shared.clone(),
            ip: None,
        };
        if let Some(max) = shared.max_per_ip {
            let mut per_ip = shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= max {
                return None;
            }
            *count += 1;
            slot.ip = Some(ip);
        }
        Some(slot)
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
        self.shared.open.fetch_sub(1, Ordering::SeqCst);
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
}
