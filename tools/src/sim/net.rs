//! The simulated network: a seeded per-link fault model (loss, duplication, reordering,
//! delay and jitter, one-way partitions) and a time-ordered queue of datagrams in flight.
//!
//! The fault model has the same shape as the transport's `FaultLayer` (a decision per
//! datagram at send time: drop, deliver at `t`, or deliver twice), so the simulator can
//! switch to it once it is exported. Every decision depends only on the seed and the
//! order of calls; ties in the queue are broken by a sequence number.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::SocketAddr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sgmp_membership::Time;

/// Faults of one direction of one link. Probabilities are in `[0, 1]`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a delivered datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back by up to `reorder_delay_us` extra.
    pub reorder: f64,
    /// Largest extra delay of a reordered (or duplicated) datagram, µs.
    pub reorder_delay_us: u64,
    /// Fixed one-way delay, µs.
    pub delay_us: u64,
    /// Uniform random extra delay in `[0, jitter_us]`, µs.
    pub jitter_us: u64,
}

impl LinkFaults {
    /// A link with only a fixed delay.
    pub fn delay(delay_us: u64) -> LinkFaults {
        LinkFaults {
            delay_us,
            ..LinkFaults::default()
        }
    }

    /// This link without loss (what the liveness phase uses).
    pub fn without_loss(self) -> LinkFaults {
        LinkFaults { loss: 0.0, ..self }
    }
}

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
    /// Delivered to a live node.
    pub delivered: u64,
    /// Arrived at a crashed node (dropped).
    pub to_dead: u64,
}

/// One datagram in flight.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Time,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// The simulated network. See the [module docs](self).
#[derive(Debug)]
pub struct Net {
    rng: ChaCha8Rng,
    default: LinkFaults,
    links: BTreeMap<(SocketAddr, SocketAddr), LinkFaults>,
    blocked: BTreeSet<(SocketAddr, SocketAddr)>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    stats: NetStats,
}

impl Net {
    /// A perfect network whose random choices derive from `seed`.
    pub fn new(seed: u64) -> Net {
        Net {
            rng: ChaCha8Rng::seed_from_u64(seed),
            default: LinkFaults::default(),
            links: BTreeMap::new(),
            blocked: BTreeSet::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            stats: NetStats::default(),
        }
    }

    /// Faults of every link without its own setting.
    pub fn set_default(&mut self, f: LinkFaults) {
        self.default = f;
    }

    /// The default link faults.
    pub fn default_faults(&self) -> LinkFaults {
        self.default
    }

    /// Faults of the one-way link `from → to`.
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, f: LinkFaults) {
        self.links.insert((from, to), f);
    }

    /// Every link back to the default faults.
    pub fn clear_links(&mut self) {
        self.links.clear();
    }

    /// Blocks `from → to` (a one-way partition).
    pub fn block(&mut self, from: SocketAddr, to: SocketAddr) {
        self.blocked.insert((from, to));
    }

    /// Removes every partition.
    pub fn heal_all(&mut self) {
        self.blocked.clear();
    }

    /// True if `from → to` is blocked.
    pub fn is_blocked(&self, from: SocketAddr, to: SocketAddr) -> bool {
        self.blocked.contains(&(from, to))
    }

    /// Counters so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen::<f64>() < p
    }

    fn upto(&mut self, max: u64) -> u64 {
        if max == 0 {
            0
        } else {
            self.rng.gen_range(0..=max)
        }
    }

    fn push(&mut self, at: Time, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.seq += 1;
        self.queue.push(Reverse(InFlight {
            at,
            seq: self.seq,
            from,
            to,
            bytes,
        }));
    }

    /// Sends one datagram at `now`; the fault model decides its fate.
    pub fn send(&mut self, now: Time, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.stats.offered += 1;
        if self.is_blocked(from, to) {
            self.stats.blocked += 1;
            return;
        }
        let f = self.links.get(&(from, to)).copied().unwrap_or(self.default);
        if self.chance(f.loss) {
            self.stats.lost += 1;
            return;
        }
        let mut at = now + f.delay_us + self.upto(f.jitter_us);
        if self.chance(f.reorder) {
            self.stats.reordered += 1;
            at = at + self.upto(f.reorder_delay_us);
        }
        if self.chance(f.duplicate) {
            self.stats.duplicated += 1;
            let again = at + self.upto(f.reorder_delay_us.max(f.jitter_us));
            self.push(again, from, to, bytes.to_vec());
        }
        self.push(at, from, to, bytes.to_vec());
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_arrival(&self) -> Option<Time> {
        self.queue.peek().map(|Reverse(d)| d.at)
    }

    /// The next datagram due at or before `now`: `(from, to, bytes)`.
    pub fn pop_due(&mut self, now: Time) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        if self.next_arrival()? > now {
            return None;
        }
        let Reverse(d) = self.queue.pop()?;
        Some((d.from, d.to, d.bytes))
    }

    /// Counts a datagram delivered to a live node, or one lost at a crashed node.
    pub fn note_arrival(&mut self, live: bool) {
        if live {
            self.stats.delivered += 1;
        } else {
            self.stats.to_dead += 1;
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
        let mut n = Net::new(1);
        n.set_link(a(1), a(2), LinkFaults::delay(10));
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
    }
}
