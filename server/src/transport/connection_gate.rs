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
    /// Indexed by [`Transport`]: the caps are shared, the gauges are per transport.
    by_transport: [u32; 2],
    per_ip: HashMap<IpAddr, u32>,
}

/// The transport a slot is held for (the caps count every transport together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A WebSocket connection.
    WebSocket = 0,
    /// An SSE session.
    Sse = 1,
}

/// One admitted connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionPermit {
    gate: Arc<ConnectionGate>,
    ip: Option<IpAddr>,
    transport: Transport,
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

    /// Takes a slot for a `transport` connection from `ip` (unknown when the listener gave no
    /// address).
    pub fn admit(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        transport: Transport,
    ) -> Result<ConnectionPermit, UpgradeRefusal> {
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
        counts.by_transport[transport as usize] += 1;
        Ok(ConnectionPermit {
            gate: Arc::clone(self),
            ip,
            transport,
        })
    }

    /// Connections admitted and not yet released, every transport together.
    pub fn open(&self) -> u32 {
        self.lock().total
    }

    /// Connections of `transport` admitted and not yet released.
    pub fn open_for(&self, transport: Transport) -> u32 {
        self.lock().by_transport[transport as usize]
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
        let of_transport = &mut counts.by_transport[self.transport as usize];
        *of_transport = of_transport.saturating_sub(1);
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

    impl ConnectionGate {
        fn admit_ws(
            self: &Arc<Self>,
            ip: Option<IpAddr>,
        ) -> Result<ConnectionPermit, UpgradeRefusal> {
            self.admit(ip, Transport::WebSocket)
        }
    }

    #[test]
    fn transports_share_the_caps_and_are_counted_apart() {
        let gate = Arc::new(ConnectionGate::new(2, 2));
        let ws = gate.admit(ip(1), Transport::WebSocket).expect("ws");
        let _sse = gate.admit(ip(1), Transport::Sse).expect("sse");
        assert_eq!(
            gate.admit(ip(2), Transport::Sse).map(|_| ()),
            Err(UpgradeRefusal::ServerFull)
        );
        assert_eq!(gate.open_for(Transport::WebSocket), 1);
        assert_eq!(gate.open_for(Transport::Sse), 1);
        drop(ws);
        assert_eq!(gate.open_for(Transport::WebSocket), 0);
        assert_eq!(gate.open(), 1);
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn caps_per_ip_and_in_total_and_frees_on_drop() {
        let gate = Arc::new(ConnectionGate::new(3, 2));
        let a1 = gate.admit_ws(ip(1)).expect("first");
        let _a2 = gate.admit_ws(ip(1)).expect("second");
        assert_eq!(
            gate.admit_ws(ip(1)).map(|_| ()),
            Err(UpgradeRefusal::IpFull)
        );
        let _b1 = gate.admit_ws(ip(2)).expect("other ip");
        assert_eq!(
            gate.admit_ws(ip(3)).map(|_| ()),
            Err(UpgradeRefusal::ServerFull)
        );
        drop(a1);
        assert_eq!(gate.open(), 2);
        let _a3 = gate.admit_ws(ip(1)).expect("freed slot");
        assert_eq!(gate.open(), 3);
    }

    #[test]
    fn per_ip_entries_do_not_accumulate() {
        let gate = Arc::new(ConnectionGate::new(10, 10));
        for last in 0..=255 {
            drop(gate.admit_ws(ip(last)).expect("admitted"));
        }
        assert!(gate.lock().per_ip.is_empty());
    }
}
