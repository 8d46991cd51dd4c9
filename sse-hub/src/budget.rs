//! The memory that requests being received may take, all connections
//! together (`--request-memory`).
//!
//! Every connection reads its requests into a buffer of its own: a head
//! may take 128 KiB (1000 topic selectors), a publish body `--max-body`.
//! Clients that send large requests slowly could otherwise hold that much
//! on every connection the hub allows at once. Each connection's buffers
//! are charged against one budget, past a small allowance that any
//! ordinary request fits in; a request that would need more than what is
//! left gets 503 with `Retry-After` instead of more memory, and what it
//! held is given back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a connection's buffers may take without drawing on the budget: an
/// ordinary request (a subscription to a few topics, a small publish).
pub const ALLOWANCE: usize = 16 << 10;

/// The budget shared by every connection.
#[derive(Debug)]
pub struct RequestMemory {
    used: AtomicUsize,
    max: usize,
}

impl RequestMemory {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Arc<RequestMemory> {
        Arc::new(RequestMemory {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// The bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `n` more bytes, if the budget has them.
    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The budget is spent: the request cannot have more memory now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

/// What one request's buffers are charged for; given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<RequestMemory>,
    bytes: usize,
}

impl Charge {
    /// Nothing charged yet.
    pub fn new(budget: &Arc<RequestMemory>) -> Charge {
        Charge {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Charges buffers of `total` bytes (above [`ALLOWANCE`]): takes what
    /// more they need, or gives back what they no longer hold.
    ///
    /// # Errors
    /// [`Exhausted`] when the budget lacks what they need (the charge is
    /// left as it was).
    pub fn set(&mut self, total: usize) -> Result<(), Exhausted> {
        let want = total.saturating_sub(ALLOWANCE);
        if want > self.bytes {
            if !self.budget.take(want - self.bytes) {
                return Err(Exhausted);
            }
        } else {
            self.budget.give_back(self.bytes - want);
        }
        self.bytes = want;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_above_the_allowance_and_gives_back() {
        let budget = RequestMemory::new(100 << 10);
        let mut a = Charge::new(&budget);
        a.set(ALLOWANCE).unwrap();
        assert_eq!(budget.used(), 0, "the allowance is free");
        a.set(ALLOWANCE + (60 << 10)).unwrap();
        assert_eq!(budget.used(), 60 << 10);
        let mut b = Charge::new(&budget);
        assert_eq!(b.set(ALLOWANCE + (50 << 10)), Err(Exhausted));
        assert_eq!(budget.used(), 60 << 10, "a refused charge takes nothing");
        b.set(ALLOWANCE + (40 << 10)).unwrap();
        assert_eq!(budget.used(), 100 << 10);
        a.set(ALLOWANCE + (10 << 10)).unwrap();
        assert_eq!(budget.used(), 50 << 10);
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
