//! A seeded, per-link fault model: loss, duplication, reordering, fixed and jittered
//! delay, one-way partitions.
//!
//! Pure and sans-IO: [`FaultLayer::on_send`] only decides what happens to a datagram
//! (dropped, or delivered at one or two times); the caller (the in-memory
//! [`SimNet`](crate::simnet::SimNet) or the UDP [`Driver`](crate::driver::Driver))
//! carries the decision out. Decisions depend only on the seed and the sequence of calls,
//! so runs replay exactly.
//!
//! Configuration methods may allocate (link tables); `on_send` never does.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Time;

/// Faults of one direction of one link. Probabilities are in `[0, 1]`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a delivered datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back by up to `reorder_delay_us` extra, so
    /// later ones overtake it.
    pub reorder: f64,
    /// Largest extra delay of a reordered datagram (and of a duplicate), µs.
    pub reorder_delay_us: u64,
    /// Fixed one-way delay, µs.
    pub delay_us: u64,
    /// Uniform random extra delay in `[0, jitter_us]`, µs.
    pub jitter_us: u64,
}

impl LinkFaults {
    /// A perfect link: no loss, no delay.
    pub const PERFECT: LinkFaults = LinkFaults {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_delay_us: 0,
        delay_us: 0,
        jitter_us: 0,
    };

    /// A link that only loses datagrams with probability `loss`.
    pub fn lossy(loss: f64) -> Self {
        LinkFaults {
            loss,
            ..Self::PERFECT
        }
    }

    /// This link with a fixed delay and jitter.
    pub fn with_delay(mut self, delay_us: u64, jitter_us: u64) -> Self {
        self.delay_us = delay_us;
        self.jitter_us = jitter_us;
        self
    }

    /// This link with duplication probability `p`.
    pub fn with_duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// This link reordering a fraction `p` of datagrams by up to `max_delay_us`.
    pub fn with_reorder(mut self, p: f64, max_delay_us: u64) -> Self {
        self.reorder = p;
        self.reorder_delay_us = max_delay_us;
        self
    }
}

/// What happens to one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultDecision {
    /// Lost (by chance or by a partition).
    Drop,
    /// Delivered once, at this time.
    Deliver(Time),
    /// Delivered twice, at these times.
    Duplicate(Time, Time),
}

impl FaultDecision {
    /// The delivery times, in order of the decision (at most two).
    pub fn deliveries(&self) -> [Option<Time>; 2] {
        match *self {
            FaultDecision::Drop => [None, None],
            FaultDecision::Deliver(t) => [Some(t), None],
            FaultDecision::Duplicate(a, b) => [Some(a), Some(b)],
        }
    }
}

/// Counters of a [`FaultLayer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Datagrams offered.
    pub offered: u64,
    /// Dropped by random loss.
    pub lost: u64,
    /// Dropped by a partition.
    pub blocked: u64,
    /// Duplicated.
    pub duplicated: u64,
    /// Held back for reordering.
    pub reordered: u64,
}

/// The seeded fault model of a whole network. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct FaultLayer {
    rng: ChaCha8Rng,
    default: LinkFaults,
    links: HashMap<(SocketAddr, SocketAddr), LinkFaults>,
    blocked: HashSet<(SocketAddr, SocketAddr)>,
    isolated: HashSet<SocketAddr>,
    stats: FaultStats,
}

impl FaultLayer {
    /// A fault-free network whose random choices derive from `seed`.
    pub fn new(seed: u64) -> Self {
        FaultLayer {
            rng: ChaCha8Rng::seed_from_u64(seed),
            default: LinkFaults::PERFECT,
            links: HashMap::new(),
            blocked: HashSet::new(),
            isolated: HashSet::new(),
            stats: FaultStats::default(),
        }
    }

    /// Faults of every link without its own setting.
    pub fn set_default(&mut self, faults: LinkFaults) {
        self.default = faults;
    }

    /// Faults of the one-way link `from → to`.
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, faults: LinkFaults) {
        self.links.insert((from, to), faults);
    }

    /// Returns the link `from → to` to the default faults.
    pub fn clear_link(&mut self, from: SocketAddr, to: SocketAddr) {
        self.links.remove(&(from, to));
    }

    /// The faults applying to `from → to`.
    pub fn link(&self, from: SocketAddr, to: SocketAddr) -> LinkFaults {
        self.links.get(&(from, to)).copied().unwrap_or(self.default)
    }

    /// Blocks `from → to` only (a one-way partition).
    pub fn partition(&mut self, from: SocketAddr, to: SocketAddr) {
        self.blocked.insert((from, to));
    }

    /// Blocks both directions between `a` and `b`.
    pub fn partition_both(&mut self, a: SocketAddr, b: SocketAddr) {
        self.partition(a, b);
        self.partition(b, a);
    }

    /// Blocks everything to and from `addr`.
    pub fn isolate(&mut self, addr: SocketAddr) {
        self.isolated.insert(addr);
    }

    /// Unblocks `from → to` (a partition set with [`partition`](Self::partition)).
    pub fn heal(&mut self, from: SocketAddr, to: SocketAddr) {
        self.blocked.remove(&(from, to));
    }

    /// Removes every partition and isolation (link faults stay).
    pub fn heal_all(&mut self) {
        self.blocked.clear();
        self.isolated.clear();
    }

    /// `from → to` is blocked by a partition or an isolation.
    pub fn is_blocked(&self, from: SocketAddr, to: SocketAddr) -> bool {
        self.isolated.contains(&from)
            || self.isolated.contains(&to)
            || self.blocked.contains(&(from, to))
    }

    /// Counters so far.
    pub fn stats(&self) -> FaultStats {
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

    /// Decides the fate of a datagram of `len` bytes sent at `now` from `from` to `to`.
    pub fn on_send(
        &mut self,
        now: Time,
        from: SocketAddr,
        to: SocketAddr,
        len: usize,
    ) -> FaultDecision {
        let _ = len;
        self.stats.offered += 1;
        if self.is_blocked(from, to) {
            self.stats.blocked += 1;
            return FaultDecision::Drop;
        }
        let f = self.link(from, to);
        if self.chance(f.loss) {
            self.stats.lost += 1;
            return FaultDecision::Drop;
        }
        let mut at = now + f.delay_us + self.upto(f.jitter_us);
        if self.chance(f.reorder) {
            self.stats.reordered += 1;
            at = at + self.upto(f.reorder_delay_us);
        }
        if self.chance(f.duplicate) {
            self.stats.duplicated += 1;
            let again = at + self.upto(f.reorder_delay_us.max(f.jitter_us));
            return FaultDecision::Duplicate(at, again);
        }
        FaultDecision::Deliver(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn perfect_by_default_and_partitions_are_one_way() {
        let mut f = FaultLayer::new(1);
        assert_eq!(
            f.on_send(Time(5), a(1), a(2), 10),
            FaultDecision::Deliver(Time(5))
        );
        f.partition(a(1), a(2));
        assert_eq!(f.on_send(Time(5), a(1), a(2), 10), FaultDecision::Drop);
        assert_ne!(f.on_send(Time(5), a(2), a(1), 10), FaultDecision::Drop);
        f.isolate(a(3));
        assert!(f.is_blocked(a(3), a(1)) && f.is_blocked(a(2), a(3)));
        f.heal_all();
        assert!(!f.is_blocked(a(1), a(2)));
        assert_eq!(f.stats().blocked, 1);
    }

    #[test]
    fn rates_and_determinism() {
        let run = |seed| {
            let mut f = FaultLayer::new(seed);
            f.set_default(
                LinkFaults::lossy(0.3)
                    .with_duplicate(0.1)
                    .with_reorder(0.2, 500)
                    .with_delay(100, 50),
            );
            let d: Vec<_> = (0..10_000)
                .map(|i| f.on_send(Time(i), a(1), a(2), 100))
                .collect();
            (d, f.stats())
        };
        let (d1, s) = run(7);
        assert_eq!(d1, run(7).0);
        assert_ne!(d1, run(8).0);
        assert!((2_700..3_300).contains(&s.lost), "{s:?}");
        assert!((500..900).contains(&s.duplicated), "{s:?}");
        for (i, d) in d1.iter().enumerate() {
            for t in d.deliveries().into_iter().flatten() {
                assert!(t.0 >= i as u64 + 100 && t.0 <= i as u64 + 100 + 50 + 500 + 500);
            }
        }
    }

    #[test]
    fn per_link_settings_override_default() {
        let mut f = FaultLayer::new(3);
        f.set_default(LinkFaults::lossy(1.0));
        f.set_link(a(1), a(2), LinkFaults::PERFECT.with_delay(10, 0));
        assert_eq!(
            f.on_send(Time(0), a(1), a(2), 1),
            FaultDecision::Deliver(Time(10))
        );
        assert_eq!(f.on_send(Time(0), a(2), a(1), 1), FaultDecision::Drop);
        f.clear_link(a(1), a(2));
        assert_eq!(f.on_send(Time(0), a(1), a(2), 1), FaultDecision::Drop);
    }
}
