//! The simulated network: the transport's own deterministic [`SimNet`] (a preallocated
//! delay queue behind the seeded [`FaultLayer`]: loss, duplication, reordering, delay
//! and jitter, one-way partitions), plus the bookkeeping the simulator needs (which
//! links were set, arrivals at crashed nodes).
//!
//! Every decision depends only on the seed and the order of calls; ties in the queue
//! are broken by send order.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use sgmp_membership::Time;
use sgmp_transport::fault::FaultLayer;
use sgmp_transport::SimNet;

pub use sgmp_transport::LinkFaults;

/// Datagrams the network holds in flight at most (more are counted as overflow).
pub const IN_FLIGHT: usize = 4096;

/// Counters of the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams offered.
    pub offered: u64,
    /// Dropped by random loss.
    pub lost: u64,
    /// Dropped by a partition.
    pub blocked: u64,
    /// Duplicated.
    pub duplicated: u64,
    /// Held back (reordered).
    pub reordered: u64,
    /// Copies dropped because the in-flight queue was full.
    pub overflow: u64,
    /// Delivered to a live node.
    pub delivered: u64,
    /// Arrived at a crashed node (dropped).
    pub to_dead: u64,
}

/// The simulated network. See the [module docs](self).
#[derive(Debug)]
pub struct Net {
    inner: SimNet,
    default: LinkFaults,
    links: BTreeSet<(SocketAddr, SocketAddr)>,
    buf: Vec<u8>,
    delivered: u64,
    to_dead: u64,
}

impl Net {
    /// A perfect network whose random choices derive from `seed`, carrying datagrams
    /// of up to `max_datagram` bytes.
    pub fn new(seed: u64, max_datagram: usize) -> Net {
        Net {
            inner: SimNet::new(FaultLayer::new(seed), IN_FLIGHT, max_datagram),
            default: LinkFaults::PERFECT,
            links: BTreeSet::new(),
            buf: vec![0u8; max_datagram],
            delivered: 0,
            to_dead: 0,
        }
    }

    /// Faults of every link without its own setting.
    pub fn set_default(&mut self, f: LinkFaults) {
        self.default = f;
        self.inner.faults_mut().set_default(f);
    }

    /// The default link faults.
    pub fn default_faults(&self) -> LinkFaults {
        self.default
    }

    /// Faults of the one-way link `from → to`.
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, f: LinkFaults) {
        self.links.insert((from, to));
        self.inner.faults_mut().set_link(from, to, f);
    }

    /// The one-way link `from → to` back to the default faults.
    pub fn unset_link(&mut self, from: SocketAddr, to: SocketAddr) {
        if self.links.remove(&(from, to)) {
            self.inner.faults_mut().clear_link(from, to);
        }
    }

    /// Every link back to the default faults.
    pub fn clear_links(&mut self) {
        for (a, b) in std::mem::take(&mut self.links) {
            self.inner.faults_mut().clear_link(a, b);
        }
    }

    /// Blocks `from → to` (a one-way partition).
    pub fn block(&mut self, from: SocketAddr, to: SocketAddr) {
        self.inner.faults_mut().partition(from, to);
    }

    /// Removes every partition.
    pub fn heal_all(&mut self) {
        self.inner.faults_mut().heal_all();
    }

    /// True if `from → to` is blocked.
    pub fn is_blocked(&self, from: SocketAddr, to: SocketAddr) -> bool {
        self.inner.faults().is_blocked(from, to)
    }

    /// Counters so far.
    pub fn stats(&self) -> NetStats {
        let f = self.inner.faults().stats();
        let s = self.inner.stats();
        NetStats {
            offered: f.offered,
            lost: f.lost,
            blocked: f.blocked,
            duplicated: f.duplicated,
            reordered: f.reordered,
            overflow: s.overflow,
            delivered: self.delivered,
            to_dead: self.to_dead,
        }
    }

    /// Sends one datagram at `now`; the fault layer decides its fate.
    pub fn send(&mut self, now: Time, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.inner.send(now, from, to, bytes);
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<Time> {
        self.inner.next_delivery()
    }

    /// The next datagram due at or before `now`: `(from, to, bytes)`.
    pub fn pop_due(&mut self, now: Time) -> Option<(SocketAddr, SocketAddr, &[u8])> {
        let d = self.inner.pop_due(now, &mut self.buf)?;
        Some((d.from, d.to, &self.buf[..d.len]))
    }

    /// Counts a datagram delivered to a live node, or one lost at a crashed node.
    pub fn note_arrival(&mut self, live: bool) {
        if live {
            self.delivered += 1;
        } else {
            self.to_dead += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn ordered_by_time_then_send_order_and_blocks_one_way() {
        let mut n = Net::new(1, 64);
        n.set_link(a(1), a(2), LinkFaults::PERFECT.with_delay(10, 0));
        n.send(Time(0), a(1), a(2), b"x");
        n.send(Time(0), a(2), a(1), b"y");
        n.send(Time(0), a(2), a(1), b"z");
        assert_eq!(n.next_arrival(), Some(Time(0)));
        assert_eq!(n.pop_due(Time(0)).unwrap().2, b"y");
        assert_eq!(n.pop_due(Time(0)).unwrap().2, b"z");
        assert!(n.pop_due(Time(9)).is_none());
        assert_eq!(n.pop_due(Time(10)).unwrap().2, b"x");
        n.block(a(1), a(2));
        n.send(Time(0), a(1), a(2), b"x");
        n.send(Time(0), a(2), a(1), b"x");
        assert_eq!(n.stats().blocked, 1);
        n.clear_links();
        n.heal_all();
        assert_eq!(n.pop_due(Time(0)).unwrap().2, b"x");
        n.send(Time(0), a(1), a(2), b"w");
        assert_eq!(n.pop_due(Time(0)).unwrap().2, b"w");
    }
}
