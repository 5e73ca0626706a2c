//! What the endpoint's polls look for, kept as the peers change: each peer's deadline
//! in a min-heap, and two bit sets (the peers with something to send at once, the
//! peers with a message to deliver). `poll_timeout` reads the heap's top,
//! `poll_transmit` and `poll_delivery` visit the set bits and the peers whose deadline
//! has passed, and `handle_timeout` the latter only, where each used to pass every
//! entry of the peer table: at 63 members a step read a line or two of each of 63
//! entries per poll, with its data out of the caches (issue 19,
//! docs/bench/view_change_perf.md §17).
//!
//! The endpoint calls [`Endpoint::touch`](crate::endpoint::Endpoint) after every change
//! to an entry; in debug builds each poll first checks that the schedule says what a
//! pass over the table would (`Endpoint::check_schedule`).

use crate::Time;

/// A fixed set of peer indices (sized once; no allocation after).
#[derive(Debug)]
pub(crate) struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// Room for indices `0..n`.
    pub fn new(n: usize) -> Bits {
        Bits {
            words: vec![0; n.div_ceil(64).max(1)],
        }
    }

    /// Puts `i` in the set or takes it out.
    #[inline]
    pub fn set(&mut self, i: usize, on: bool) {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if on {
            self.words[w] |= b;
        } else {
            self.words[w] &= !b;
        }
    }

    /// Whether `i` is in the set.
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.words[i / 64] & (1u64 << (i % 64)) != 0
    }

    /// Empties the set.
    #[inline]
    pub fn clear(&mut self) {
        self.words.fill(0);
    }

    /// Makes this set a copy of `other` (same size).
    #[inline]
    pub fn copy_from(&mut self, other: &Bits) {
        self.words.copy_from_slice(&other.words);
    }

    /// The first index in the set at or after `from`, wrapping around past `n` (the
    /// indices in use) to 0; `None` if the set holds no index below `n`.
    pub fn next_from(&self, from: usize, n: usize) -> Option<usize> {
        let from = if from >= n { 0 } else { from };
        self.first_in(from, n).or_else(|| self.first_in(0, from))
    }

    /// The first index in the set in `lo..hi`.
    fn first_in(&self, lo: usize, hi: usize) -> Option<usize> {
        let mut w = lo / 64;
        let mut bits = self.words.get(w)? & (!0u64 << (lo % 64));
        loop {
            if bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                return (i < hi).then_some(i);
            }
            w += 1;
            if w * 64 >= hi {
                return None;
            }
            bits = *self.words.get(w)?;
        }
    }
}

const NONE: u32 = u32::MAX;

/// The peers' deadlines, a binary min-heap of peer indices with each peer's position
/// (so that a deadline moves in O(log n)), and the two sets.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// The heap: `heap[..len]` (sized for every peer once).
    heap: Vec<u32>,
    len: usize,
    /// Where each peer is in `heap` (`NONE`: it has no deadline).
    pos: Vec<u32>,
    /// Each peer's deadline (meaningful while it is in the heap).
    key: Vec<Time>,
    /// Peers with something to send whatever the time (`Peer::sends_at_once`).
    pub ready: Bits,
    /// Peers with a message to deliver.
    pub rx: Bits,
    /// The candidates of one poll (the ready peers and those past their deadline).
    pub scratch: Bits,
}

impl Schedule {
    /// A schedule for `n` peers, none of them with a deadline or work.
    pub fn new(n: usize) -> Schedule {
        Schedule {
            heap: vec![NONE; n],
            len: 0,
            pos: vec![NONE; n],
            key: vec![Time::ZERO; n],
            ready: Bits::new(n),
            rx: Bits::new(n),
            scratch: Bits::new(n),
        }
    }

    /// The earliest deadline of any peer.
    #[inline]
    pub fn earliest(&self) -> Option<Time> {
        (self.len > 0).then(|| self.key[self.heap[0] as usize])
    }

    /// Peer `i`'s deadline, as the heap holds it.
    pub fn deadline(&self, i: usize) -> Option<Time> {
        (self.pos[i] != NONE).then(|| self.key[i])
    }

    /// Sets peer `i`'s deadline (`None`: it has none). The common case, a deadline
    /// that stays or moves, is inline and small; a peer entering or leaving the heap
    /// is out of line ([`place`](Self::place)).
    #[inline]
    pub fn set_deadline(&mut self, i: usize, d: Option<Time>) {
        let at = self.pos[i];
        match d {
            Some(t) if at != NONE => {
                let old = self.key[i];
                if t != old {
                    self.key[i] = t;
                    self.moved(at as usize, t < old);
                }
            }
            None if at == NONE => {}
            _ => self.place(i, d),
        }
    }

    /// The entry at `at` got an earlier (`earlier`) or later deadline: restores the
    /// heap order.
    #[inline(never)]
    fn moved(&mut self, at: usize, earlier: bool) {
        if earlier {
            self.up(at);
        } else {
            self.down(at);
        }
    }

    /// Peer `i` gets its first deadline (`Some`), or loses the one it had (`None`).
    #[cold]
    #[inline(never)]
    fn place(&mut self, i: usize, d: Option<Time>) {
        match d {
            Some(t) => {
                debug_assert_eq!(self.pos[i], NONE);
                self.key[i] = t;
                let at = self.len;
                self.heap[at] = i as u32;
                self.pos[i] = at as u32;
                self.len += 1;
                self.up(at);
            }
            None => self.remove_at(self.pos[i] as usize),
        }
    }

    /// Adds to `scratch` every peer whose deadline is at or before `now`: the subtrees
    /// of the heap whose root is later are skipped.
    pub fn mark_due(&mut self, now: Time) {
        if self.earliest().is_some_and(|t| t <= now) {
            self.mark_from(0, now);
        }
    }

    fn mark_from(&mut self, at: usize, now: Time) {
        if at >= self.len {
            return;
        }
        let i = self.heap[at];
        if self.key[i as usize] > now {
            return;
        }
        self.scratch.set(i as usize, true);
        self.mark_from(2 * at + 1, now);
        self.mark_from(2 * at + 2, now);
    }

    fn remove_at(&mut self, at: usize) {
        debug_assert!(at < self.len, "removing an entry not in the heap");
        let i = self.heap[at] as usize;
        self.len -= 1;
        let last = self.heap[self.len];
        self.pos[i] = NONE;
        if at < self.len {
            self.heap[at] = last;
            self.pos[last as usize] = at as u32;
            self.down(at);
            self.up(at);
        }
    }

    fn less(&self, a: usize, b: usize) -> bool {
        self.key[self.heap[a] as usize] < self.key[self.heap[b] as usize]
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a] as usize] = a as u32;
        self.pos[self.heap[b] as usize] = b as u32;
    }

    fn up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if !self.less(at, parent) {
                break;
            }
            self.swap(at, parent);
            at = parent;
        }
    }

    fn down(&mut self, mut at: usize) {
        loop {
            let (l, r) = (2 * at + 1, 2 * at + 2);
            let mut least = at;
            if l < self.len && self.less(l, least) {
                least = l;
            }
            if r < self.len && self.less(r, least) {
                least = r;
            }
            if least == at {
                break;
            }
            self.swap(at, least);
            at = least;
        }
    }

    /// The heap's own invariants (debug builds): every entry is below none of its
    /// children, the positions point back at the entries, and only peers below `used`
    /// are in it.
    pub fn check(&self, used: usize) {
        if !cfg!(debug_assertions) {
            return;
        }
        for (at, &i) in self.heap[..self.len].iter().enumerate() {
            debug_assert!((i as usize) < used, "an unused entry {i} in the heap");
            debug_assert_eq!(self.pos[i as usize], at as u32, "heap position of peer {i}");
            if at > 0 {
                debug_assert!(!self.less(at, (at - 1) / 2), "heap order at {at}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_found_round_robin_below_the_count() {
        let mut b = Bits::new(130);
        assert_eq!(b.next_from(0, 130), None);
        for i in [3, 64, 100, 129] {
            b.set(i, true);
        }
        assert_eq!(b.next_from(0, 130), Some(3));
        assert_eq!(b.next_from(4, 130), Some(64));
        assert_eq!(b.next_from(65, 130), Some(100));
        assert_eq!(b.next_from(101, 130), Some(129));
        // Past the last, around to the first; a start at or past the count is 0.
        assert_eq!(b.next_from(130, 130), Some(3));
        assert_eq!(b.next_from(500, 130), Some(3));
        // Indices at or past the count are not in use.
        assert_eq!(b.next_from(101, 101), Some(3));
        assert_eq!(b.next_from(0, 3), None);
        b.set(3, false);
        assert!(!b.get(3) && b.get(64));
        assert_eq!(b.next_from(0, 64), None);
        assert_eq!(b.next_from(0, 65), Some(64));
    }

    /// The heap against a plain table of deadlines, through a seeded sequence of
    /// changes: the earliest and the set of due peers agree after each.
    #[test]
    fn the_heap_agrees_with_a_scan() {
        let n = 70;
        let mut s = Schedule::new(n);
        let mut plain: Vec<Option<Time>> = vec![None; n];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % n as u64) as usize;
            let d = !(x >> 8).is_multiple_of(5);
            let t = d.then_some(Time((x >> 16) % 1_000));
            s.set_deadline(i, t);
            plain[i] = t;
            s.check(n);
            assert_eq!(
                s.earliest(),
                plain.iter().flatten().min().copied(),
                "step {step}"
            );
            assert_eq!(s.deadline(i), t);
            let now = Time((x >> 32) % 1_000);
            s.scratch = Bits::new(n);
            s.mark_due(now);
            for (j, pj) in plain.iter().enumerate() {
                assert_eq!(
                    s.scratch.get(j),
                    pj.is_some_and(|t| t <= now),
                    "step {step} peer {j}"
                );
            }
        }
    }
}
