//! A fixed-capacity queue of datagrams waiting for their delivery time.
//!
//! Used by [`SimNet`](crate::simnet::SimNet) for datagrams in flight and by the
//! [`Driver`](crate::driver::Driver) for datagrams the fault layer delays. Buffers are
//! preallocated (`capacity × slot_size` bytes); ties on the delivery time are broken by
//! insertion order, so the queue is deterministic. Never allocates after `new`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;

use crate::Time;

/// A datagram taken out of a [`DelayQueue`]; its bytes were copied to the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Sender address.
    pub from: SocketAddr,
    /// Destination address.
    pub to: SocketAddr,
    /// Length copied into the caller's buffer.
    pub len: usize,
    /// When it was due.
    pub at: Time,
}

#[derive(Clone, Copy, Debug)]
struct Meta {
    from: SocketAddr,
    to: SocketAddr,
    len: usize,
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct DelayQueue {
    heap: BinaryHeap<Reverse<(Time, u64, u32)>>,
    meta: Vec<Meta>,
    data: Vec<u8>,
    free: Vec<u32>,
    slot_size: usize,
    capacity: usize,
    next_seq: u64,
}

impl DelayQueue {
    /// Room for `capacity` datagrams of up to `slot_size` bytes each.
    pub fn new(capacity: usize, slot_size: usize) -> Self {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        DelayQueue {
            heap: BinaryHeap::with_capacity(capacity),
            meta: vec![
                Meta {
                    from: unspecified,
                    to: unspecified,
                    len: 0
                };
                capacity
            ],
            data: vec![0u8; capacity * slot_size],
            free: (0..capacity as u32).rev().collect(),
            slot_size,
            capacity,
            next_seq: 0,
        }
    }

    /// Queues a copy of `bytes` for delivery at `at`. `false` (not queued) if the queue is
    /// full or `bytes` is longer than a slot.
    pub fn push(&mut self, at: Time, from: SocketAddr, to: SocketAddr, bytes: &[u8]) -> bool {
        if bytes.len() > self.slot_size {
            return false;
        }
        let Some(slot) = self.free.pop() else {
            return false;
        };
        let k = slot as usize;
        let start = k * self.slot_size;
        self.data[start..start + bytes.len()].copy_from_slice(bytes);
        self.meta[k] = Meta {
            from,
            to,
            len: bytes.len(),
        };
        debug_assert!(self.heap.len() < self.capacity);
        self.heap.push(Reverse((at, self.next_seq, slot)));
        self.next_seq += 1;
        true
    }

    /// When the earliest datagram is due.
    pub fn next_due(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Takes the earliest datagram due at or before `now`, copying it into `buf` (cut
    /// to `buf.len()`).
    pub fn pop_due(&mut self, now: Time, buf: &mut [u8]) -> Option<Delivery> {
        if self.next_due()? > now {
            return None;
        }
        let Reverse((at, _, slot)) = self.heap.pop()?;
        let k = slot as usize;
        let m = self.meta[k];
        let len = m.len.min(buf.len());
        let start = k * self.slot_size;
        buf[..len].copy_from_slice(&self.data[start..start + len]);
        self.free.push(slot);
        Some(Delivery {
            from: m.from,
            to: m.to,
            len,
            at,
        })
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Most datagrams that can wait at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops everything waiting.
    pub fn clear(&mut self) {
        while let Some(Reverse((_, _, slot))) = self.heap.pop() {
            self.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_time_then_insertion() {
        let a = SocketAddr::from(([127, 0, 0, 1], 1));
        let mut q = DelayQueue::new(3, 8);
        assert!(q.push(Time(5), a, a, b"late"));
        assert!(q.push(Time(1), a, a, b"first"));
        assert!(q.push(Time(1), a, a, b"second"));
        assert!(!q.push(Time(0), a, a, b"full"));
        let mut big = DelayQueue::new(1, 2);
        assert!(!big.push(Time(0), a, a, b"xyz"));
        let mut buf = [0u8; 8];
        assert_eq!(q.pop_due(Time(0), &mut buf), None);
        let d = q.pop_due(Time(1), &mut buf).unwrap();
        assert_eq!(&buf[..d.len], b"first");
        let d = q.pop_due(Time(1), &mut buf).unwrap();
        assert_eq!(&buf[..d.len], b"second");
        assert_eq!(q.next_due(), Some(Time(5)));
        assert!(q.push(Time(2), a, a, b"x"));
        assert_eq!(q.len(), 2);
        q.clear();
        assert!(q.is_empty());
    }
}
