//! A deterministic in-memory datagram network for tests and the simulator.
//!
//! Datagrams handed to [`SimNet::send`] go through the [`FaultLayer`] and wait in a
//! preallocated [`DelayQueue`] until their delivery time (ties broken by send order).
//! Nothing reads a clock or allocates after [`SimNet::new`]; the same seed and the same
//! calls replay the same run.

use std::net::SocketAddr;

use crate::fault::{FaultDecision, FaultLayer};
use crate::queue::{DelayQueue, Delivery};
use crate::{earliest, Endpoint, Time};

/// Counters of a [`SimNet`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimNetStats {
    /// Datagrams offered to the network.
    pub sent: u64,
    /// Datagrams (copies) handed to receivers.
    pub delivered: u64,
    /// Datagrams dropped by the fault layer.
    pub dropped: u64,
    /// Copies dropped because the in-flight queue was full.
    pub overflow: u64,
    /// Datagrams delivered to an address with no endpoint.
    pub unroutable: u64,
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct SimNet {
    faults: FaultLayer,
    queue: DelayQueue,
    scratch: Vec<u8>,
    stats: SimNetStats,
}

impl SimNet {
    /// A network holding up to `capacity` datagrams in flight, each up to
    /// `max_datagram` bytes, with faults from `faults`.
    pub fn new(faults: FaultLayer, capacity: usize, max_datagram: usize) -> Self {
        SimNet {
            faults,
            queue: DelayQueue::new(capacity, max_datagram),
            scratch: vec![0u8; max_datagram],
            stats: SimNetStats::default(),
        }
    }

    /// The fault model.
    pub fn faults(&self) -> &FaultLayer {
        &self.faults
    }

    /// The fault model, to change links and partitions during a run.
    pub fn faults_mut(&mut self) -> &mut FaultLayer {
        &mut self.faults
    }

    /// Counters so far.
    pub fn stats(&self) -> SimNetStats {
        self.stats
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Puts a datagram on the network at `now`.
    pub fn send(&mut self, now: Time, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.stats.sent += 1;
        let decision = self.faults.on_send(now, from, to, bytes.len());
        if decision == FaultDecision::Drop {
            self.stats.dropped += 1;
        }
        for at in decision.deliveries().into_iter().flatten() {
            if !self.queue.push(at, from, to, bytes) {
                self.stats.overflow += 1;
            }
        }
    }

    /// When the next datagram arrives.
    pub fn next_delivery(&self) -> Option<Time> {
        self.queue.next_due()
    }

    /// Takes the next datagram due at or before `now`, copying it into `buf`.
    pub fn pop_due(&mut self, now: Time, buf: &mut [u8]) -> Option<Delivery> {
        let d = self.queue.pop_due(now, buf)?;
        self.stats.delivered += 1;
        Some(d)
    }

    /// Hands every datagram due at or before `now` to `deliver`, in delivery order.
    /// Returns how many.
    pub fn deliver_due(&mut self, now: Time, mut deliver: impl FnMut(&Delivery, &[u8])) -> usize {
        let mut n = 0;
        while let Some(d) = self.queue.pop_due(now, &mut self.scratch) {
            self.stats.delivered += 1;
            deliver(&d, &self.scratch[..d.len]);
            n += 1;
        }
        n
    }

    /// Drains `ep.poll_transmit` onto the network, as sent from `from`. Returns the
    /// number of datagrams.
    pub fn flush(&mut self, now: Time, from: SocketAddr, ep: &mut Endpoint) -> usize {
        let mut n = 0;
        let mut buf = std::mem::take(&mut self.scratch);
        while let Some(t) = ep.poll_transmit(now, &mut buf) {
            self.send(now, from, t.dst, &buf[..t.len]);
            n += 1;
        }
        self.scratch = buf;
        n
    }

    /// One step of a simulation of the endpoints `eps`, where `eps[i]` listens on
    /// `addrs[i]`: delivers the datagrams due at `now`, runs the endpoints' timers, then
    /// flushes their transmissions.
    pub fn step(&mut self, now: Time, eps: &mut [&mut Endpoint], addrs: &[SocketAddr]) {
        debug_assert_eq!(eps.len(), addrs.len());
        let mut unroutable = 0;
        self.deliver_due(now, |d, bytes| {
            match addrs.iter().position(|a| *a == d.to) {
                Some(i) => eps[i].handle_datagram(now, d.from, bytes),
                None => unroutable += 1,
            };
        });
        self.stats.unroutable += unroutable;
        for (ep, addr) in eps.iter_mut().zip(addrs) {
            ep.handle_timeout(now);
            self.flush(now, *addr, ep);
        }
    }

    /// The earliest time anything happens: a delivery or an endpoint deadline.
    pub fn next_event(&self, eps: &[&mut Endpoint]) -> Option<Time> {
        eps.iter()
            .fold(self.next_delivery(), |t, ep| earliest(t, ep.poll_timeout()))
    }
}
