//! Caps on open realtime connections, in total and per client IP address.
//!
//! A [`ConnectionPermit`] is taken before the upgrade is accepted and released when it is
//! dropped (the connection task ends), so a crash or an early return can never leak a slot.
//! Shared by every realtime transport.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use super::metrics::UpgradeRefusal;

/// The counters behind the caps.
#[derive(Debug)]
pub struct ConnectionGate {
    max_total: u32,
    max_per_ip: u32,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_ip: HashMap<IpAddr, u32>,
}

/// One admitted connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionPermit {
    gate: Arc<ConnectionGate>,
    ip: Option<IpAddr>,
}

impl ConnectionGate {
    /// A gate admitting `max_total` connections, `max_per_ip` from one address.
    pub fn new(max_total: u32, max_per_ip: u32) -> Self {
        Self {
            max_total,
            max_per_ip,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// Takes a slot for a connection from `ip` (unknown when the listener gave no address).
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<ConnectionPermit, UpgradeRefusal> {
        let mut counts = self.lock();
        if counts.total >= self.max_total {
            return Err(UpgradeRefusal::ServerFull);
        }
        if let Some(ip) = ip {
            let from_ip = counts.per_ip.entry(ip).or_insert(0);
            if *from_ip >= self.max_per_ip {
                return Err(UpgradeRefusal::IpFull);
            }
            *from_ip += 1;
        }
        counts.total += 1;
        Ok(ConnectionPermit {
            gate: Arc::clone(self),
            ip,
        })
    }

    /// Connections admitted and not yet released.
    pub fn open(&self) -> u32 {
        self.lock().total
    }

    /// `(addresses with an open connection, connections from the busiest one)` (for gauges).
    pub fn per_ip(&self) -> (usize, u32) {
        let counts = self.lock();
        let busiest = counts.per_ip.values().copied().max().unwrap_or(0);
        (counts.per_ip.len(), busiest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Every critical section leaves the counts consistent.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.gate.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.ip
            && let Some(from_ip) = counts.per_ip.get_mut(&ip)
        {
            *from_ip -= 1;
            if *from_ip == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn caps_per_ip_and_in_total_and_frees_on_drop() {
        let gate = Arc::new(ConnectionGate::new(3, 2));
        let a1 = gate.admit(ip(1)).expect("first");
        let _a2 = gate.admit(ip(1)).expect("second");
        assert_eq!(gate.admit(ip(1)).map(|_| ()), Err(UpgradeRefusal::IpFull));
        let _b1 = gate.admit(ip(2)).expect("other ip");
        assert_eq!(
            gate.admit(ip(3)).map(|_| ()),
            Err(UpgradeRefusal::ServerFull)
        );
        drop(a1);
        assert_eq!(gate.open(), 2);
        let _a3 = gate.admit(ip(1)).expect("freed slot");
        assert_eq!(gate.open(), 3);
    }

    #[test]
    fn per_ip_entries_do_not_accumulate() {
        let gate = Arc::new(ConnectionGate::new(10, 10));
        for last in 0..=255 {
            drop(gate.admit(ip(last)).expect("admitted"));
        }
        assert!(gate.lock().per_ip.is_empty());
    }
}
