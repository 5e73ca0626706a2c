//! The two halves of a reliable FIFO channel: the send window (sequence numbers,
//! retransmission marks, acknowledgement processing, fast retransmit) and the receive
//! window (out-of-order buffering, reassembly, cumulative and selective acks).
//!
//! Both work on fixed rings of slots allocated once; payload bytes live in a region of
//! the endpoint's frame store (`slots × cap` bytes) handed in by the caller.
//!
//! Each half states its invariants in one place (`SendWindow::invariants`,
//! `RecvWindow::invariants`) and checks them after every state transition in debug
//! builds (tests, the simulator's test runs, the fuzz equivalents), as TigerBeetle's
//! TIGER_STYLE asks: the sequence numbers in order, the window bounds, every slot's
//! state agreeing with where its sequence number lies, and the counters agreeing with
//! the slots. Transitions also assert their own pre- and postconditions.

use crate::time::Time;
use crate::wire::{Frame, Writer, SACK_BITS};

/// Selectively acknowledged frames above a hole that trigger its fast retransmit.
pub const FAST_RETRANSMIT_THRESHOLD: u32 = 3;

/// Frames taken by a message of `len` bytes cut into frames of `cap` bytes (an empty
/// message takes one); no division for the common single-frame message.
pub fn frames_for(len: usize, cap: usize) -> usize {
    if len <= cap {
        1
    } else {
        len.div_ceil(cap)
    }
}

/// Maps sequence numbers to the slots of a ring: slot 0 holds `origin`. The window
/// moves `origin` to its next sequence number whenever it holds nothing, so that
/// ping-pong traffic keeps reusing the same slot (and frame-store bytes, which stay in
/// the cache) instead of walking the whole ring.
#[derive(Clone, Copy, Debug)]
struct Ring {
    origin: u64,
    len: u64,
    /// `len - 1` if `len` is a power of two (then no division), else 0.
    mask: u64,
}

impl Ring {
    fn new(len: usize) -> Ring {
        let len = len as u64;
        Ring {
            origin: 0,
            len,
            mask: if len.is_power_of_two() { len - 1 } else { 0 },
        }
    }

    fn idx(&self, seq: u64) -> usize {
        let d = seq.wrapping_sub(self.origin);
        (if self.mask != 0 {
            d & self.mask
        } else {
            d % self.len
        }) as usize
    }

    /// Empties `slots` whose only occupied slots are those of `used` (a window's
    /// invariant), writing those alone, and starts the ring again at sequence 0.
    fn clear<T: Copy + Default + PartialEq>(
        &mut self,
        slots: &mut [T],
        used: std::ops::Range<u64>,
        what: &str,
    ) {
        for seq in used {
            slots[self.idx(seq)] = T::default();
        }
        debug_assert!(
            slots.iter().all(|s| *s == T::default()),
            "a reset {what} holds nothing"
        );
        self.origin = 0;
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct SendSlot {
    len: u16,
    end: bool,
    /// Transmissions so far (0: queued, never sent).
    sends: u32,
    last_sent: Time,
    sacked: bool,
    /// Waiting for retransmission.
    retx: bool,
    /// Already fast-retransmitted since the last timeout.
    fast_done: bool,
}

/// The sending half: frames `[una, next_unsent)` are in flight, `[next_unsent, next_seq)`
/// queued, and `next_seq - una` never exceeds the window.
///
/// `repr(C)`, counters first: [`has_sendable`](Self::has_sendable) and
/// [`in_flight`](Self::in_flight), which the endpoint asks of each entry it schedules
/// (of every entry on every poll while it passes a small table), read the first 32
/// bytes only (they sit in the peer's hot prefix, `peer.rs`).
#[derive(Debug)]
#[repr(C)]
pub struct SendWindow {
    una: u64,
    next_unsent: u64,
    next_seq: u64,
    retx_pending: usize,
    ring: Ring,
    slots: Box<[SendSlot]>,
}

/// What [`SendWindow::fill`] put in a datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filled {
    /// Frames written.
    pub frames: u32,
    /// Of which retransmissions.
    pub retransmitted: u32,
}

/// What an acknowledgement did to the send window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// The cumulative ack moved forward.
    pub advanced: bool,
    /// New frames were acknowledged, cumulatively or selectively.
    pub progress: bool,
    /// A round-trip sample (Karn's rule applied), µs.
    pub sample_us: Option<u64>,
    /// Frames newly marked by fast retransmit.
    pub fast_marked: u32,
}

impl SendWindow {
    /// An empty window of `frames` slots.
    pub fn new(frames: usize) -> Self {
        SendWindow {
            slots: vec![SendSlot::default(); frames.max(1)].into_boxed_slice(),
            ring: Ring::new(frames.max(1)),
            una: 0,
            next_unsent: 0,
            next_seq: 0,
            retx_pending: 0,
        }
    }

    /// Forgets everything (a new peer incarnation or a disconnect). No allocation.
    ///
    /// Only the slots of `[una, next_seq)` can hold a frame (every other slot is empty,
    /// the invariants): clearing those empties the ring without writing all of it (a
    /// disconnect is on a removal's path, and the whole ring is kilobytes of cold
    /// cache lines).
    pub fn reset(&mut self) {
        self.ring
            .clear(&mut self.slots, self.una..self.next_seq, "send window");
        self.una = 0;
        self.next_unsent = 0;
        self.next_seq = 0;
        self.retx_pending = 0;
        self.invariants();
    }

    fn idx(&self, seq: u64) -> usize {
        self.ring.idx(seq)
    }

    /// The invariants of the send window, checked after every transition in debug
    /// builds (a no-op otherwise):
    /// - `una <= next_unsent <= next_seq` and `next_seq - una <= slots` (the window);
    /// - frames `[una, next_unsent)` were sent (`sends >= 1`), none both selectively
    ///   acknowledged and waiting for retransmission, and `retx_pending` is the number
    ///   of them waiting;
    /// - frames `[next_unsent, next_seq)` are queued only (never sent, no marks);
    /// - every other slot is empty (acknowledged frames are cleared).
    fn invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let len = self.slots.len() as u64;
        debug_assert!(
            self.una <= self.next_unsent,
            "una beyond the first unsent frame"
        );
        debug_assert!(
            self.next_unsent <= self.next_seq,
            "sent a frame never queued"
        );
        debug_assert!(self.next_seq - self.una <= len, "more frames than slots");
        debug_assert_eq!(self.ring.len, len, "ring and slots disagree");
        let mut retx = 0usize;
        for seq in self.una..self.next_unsent {
            let s = &self.slots[self.idx(seq)];
            debug_assert!(s.sends >= 1, "frame {seq} in flight but never sent");
            debug_assert!(
                !(s.sacked && s.retx),
                "frame {seq} acked and marked for resend"
            );
            retx += usize::from(s.retx);
        }
        debug_assert_eq!(retx, self.retx_pending, "retransmission count out of sync");
        for seq in self.next_unsent..self.next_seq {
            let s = &self.slots[self.idx(seq)];
            debug_assert!(
                s.sends == 0 && !s.sacked && !s.retx && !s.fast_done,
                "queued frame {seq} carries send state"
            );
        }
        for seq in self.next_seq..self.una + len {
            let s = &self.slots[self.idx(seq)];
            debug_assert!(
                s.sends == 0 && !s.sacked && !s.retx && !s.fast_done && s.len == 0 && !s.end,
                "free slot of frame {seq} not cleared"
            );
        }
    }

    /// Slots not holding a queued or unacknowledged frame.
    pub fn free_frames(&self) -> usize {
        self.slots.len() - (self.next_seq - self.una) as usize
    }

    /// Frames queued or unacknowledged.
    pub fn used_frames(&self) -> u64 {
        self.next_seq - self.una
    }

    /// Some frame was sent and is not acknowledged yet.
    pub fn in_flight(&self) -> bool {
        self.una < self.next_unsent
    }

    /// Something waits for (re)transmission.
    pub fn has_sendable(&self) -> bool {
        self.retx_pending > 0 || self.next_unsent < self.next_seq
    }

    /// The highest cumulative ack that is possible: one past the last frame ever sent.
    pub fn max_ack(&self) -> u64 {
        self.next_unsent
    }

    /// Queues `msg` cut into frames of `cap` bytes, copying it into `store`. `false` (and
    /// nothing queued) if the window lacks room.
    pub fn push(&mut self, store: &mut [u8], cap: usize, msg: &[u8]) -> bool {
        debug_assert!(cap >= 1 && cap <= u16::MAX as usize, "frame capacity {cap}");
        debug_assert!(
            store.len() >= self.slots.len() * cap,
            "frame store too small"
        );
        let frames = frames_for(msg.len(), cap);
        if frames > self.free_frames() {
            return false;
        }
        let next_seq_before = self.next_seq;
        if self.una == self.next_seq {
            // Empty: no slot is in use, so the ring may start anywhere.
            self.ring.origin = self.next_seq;
        }
        if frames == 1 {
            let k = self.idx(self.next_seq);
            store[k * cap..k * cap + msg.len()].copy_from_slice(msg);
            self.slots[k] = SendSlot {
                len: msg.len() as u16,
                end: true,
                ..SendSlot::default()
            };
            self.next_seq += 1;
            self.invariants();
            return true;
        }
        let mut chunks = msg.chunks(cap);
        for i in 0..frames {
            let chunk = chunks.next().unwrap_or(&[]);
            let seq = self.next_seq;
            let k = self.idx(seq);
            store[k * cap..k * cap + chunk.len()].copy_from_slice(chunk);
            self.slots[k] = SendSlot {
                len: chunk.len() as u16,
                end: i + 1 == frames,
                ..SendSlot::default()
            };
            self.next_seq += 1;
        }
        debug_assert_eq!(self.next_seq - next_seq_before, frames as u64);
        self.invariants();
        true
    }

    /// Writes frames into `w`: pending retransmissions first (oldest first), then new
    /// frames in order, while they fit.
    pub fn fill(&mut self, now: Time, store: &[u8], cap: usize, w: &mut Writer<'_>) -> Filled {
        let mut out = Filled::default();
        let mut seq = self.una;
        while self.retx_pending > 0 && seq < self.next_unsent {
            let k = self.idx(seq);
            if self.slots[k].retx {
                let s = &mut self.slots[k];
                debug_assert!(s.sends >= 1 && !s.sacked, "resending frame {seq}");
                let data = &store[k * cap..k * cap + s.len as usize];
                if !w.push_frame(seq, s.end, data) {
                    self.invariants();
                    return out;
                }
                s.retx = false;
                s.sends += 1;
                s.last_sent = now;
                self.retx_pending -= 1;
                out.frames += 1;
                out.retransmitted += 1;
            }
            seq += 1;
        }
        debug_assert_eq!(self.retx_pending, 0, "retransmission marks out of sync");
        while self.next_unsent < self.next_seq {
            let seq = self.next_unsent;
            let k = self.idx(seq);
            let s = &mut self.slots[k];
            debug_assert_eq!(s.sends, 0, "first send of frame {seq}");
            let data = &store[k * cap..k * cap + s.len as usize];
            if !w.push_frame(seq, s.end, data) {
                break;
            }
            s.sends = 1;
            s.last_sent = now;
            self.next_unsent += 1;
            out.frames += 1;
        }
        debug_assert!(out.retransmitted <= out.frames);
        self.invariants();
        out
    }

    /// Processes a cumulative ack (`ack` = next frame the peer expects) and a selective
    /// ack bitmap (bit `i`: frame `ack + 1 + offset + i` received). `ack` must be at most
    /// [`max_ack`](Self::max_ack); older acks are harmless.
    #[inline]
    pub fn on_ack(&mut self, now: Time, ack: u64, offset: u32, sack: u64) -> AckOutcome {
        debug_assert!(ack <= self.next_unsent);
        let una_before = self.una;
        let mut out = AckOutcome::default();
        let mut newest: Option<Time> = None;
        let mut sample = |s: &SendSlot| {
            if s.sends == 1 {
                newest = Some(newest.map_or(s.last_sent, |t| t.max(s.last_sent)));
            }
        };
        while self.una < ack.min(self.next_unsent) {
            let k = self.idx(self.una);
            let s = self.slots[k];
            if !s.sacked {
                sample(&s);
            }
            if s.retx {
                self.retx_pending -= 1;
            }
            self.slots[k] = SendSlot::default();
            self.una += 1;
            out.advanced = true;
            out.progress = true;
        }
        if sack != 0 {
            let mut highest = None;
            for i in 0..SACK_BITS {
                if sack >> i & 1 == 0 {
                    continue;
                }
                let Some(seq) = ack.checked_add(1 + offset as u64 + i) else {
                    break;
                };
                if seq < self.una || seq >= self.next_unsent {
                    continue;
                }
                highest = Some(seq);
                let k = self.idx(seq);
                let s = &mut self.slots[k];
                if !s.sacked {
                    s.sacked = true;
                    out.progress = true;
                    if s.retx {
                        s.retx = false;
                        self.retx_pending -= 1;
                    }
                    let s = *s;
                    sample(&s);
                }
            }
            if let Some(hi) = highest {
                out.fast_marked = self.fast_retransmit(hi);
            }
        }
        out.sample_us = newest.map(|t| now.micros_since(t));
        debug_assert!(self.una >= una_before, "the cumulative ack went back");
        debug_assert_eq!(out.advanced, self.una > una_before);
        debug_assert!(!out.advanced || out.progress);
        self.invariants();
        out
    }

    /// Marks holes with at least [`FAST_RETRANSMIT_THRESHOLD`] selectively acked frames
    /// above them, once per hole until the next timeout.
    fn fast_retransmit(&mut self, highest: u64) -> u32 {
        debug_assert!(self.una <= highest && highest < self.next_unsent);
        let mut above = 0u32;
        let mut marked = 0;
        let mut seq = highest;
        while seq >= self.una {
            let k = self.idx(seq);
            let s = &mut self.slots[k];
            if s.sacked {
                above += 1;
            } else if above >= FAST_RETRANSMIT_THRESHOLD && s.sends > 0 && !s.retx && !s.fast_done {
                debug_assert!(seq < highest, "a hole lies below the highest sacked frame");
                s.retx = true;
                s.fast_done = true;
                self.retx_pending += 1;
                marked += 1;
            }
            if seq == 0 {
                break;
            }
            seq -= 1;
        }
        self.invariants();
        marked
    }

    /// The retransmission timer expired: marks every unacknowledged frame in flight for
    /// retransmission and re-arms fast retransmit. Returns the frames marked.
    pub fn on_timeout(&mut self) -> u32 {
        let mut marked = 0;
        for seq in self.una..self.next_unsent {
            let k = self.idx(seq);
            let s = &mut self.slots[k];
            s.fast_done = false;
            if !s.sacked && !s.retx {
                s.retx = true;
                self.retx_pending += 1;
                marked += 1;
            }
        }
        debug_assert!(u64::from(marked) <= self.next_unsent - self.una);
        self.invariants();
        marked
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct RecvSlot {
    present: bool,
    end: bool,
    len: u16,
}

/// The receiving half: frames below `expected` were all received; those below
/// `deliver_seq` were handed to the application; frames are accepted while
/// `seq < deliver_seq + window`.
#[derive(Debug)]
pub struct RecvWindow {
    slots: Box<[RecvSlot]>,
    ring: Ring,
    deliver_seq: u64,
    expected: u64,
    /// One past the last frame that ends a message among the in-order frames.
    complete_upto: u64,
    /// One past the highest frame stored.
    highest: u64,
}

/// Fate of one received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Stored.
    New,
    /// Received before.
    Duplicate,
    /// Beyond the receive window; not stored.
    OutOfWindow,
}

impl RecvWindow {
    /// An empty window of `frames` slots.
    pub fn new(frames: usize) -> Self {
        RecvWindow {
            slots: vec![RecvSlot::default(); frames.max(1)].into_boxed_slice(),
            ring: Ring::new(frames.max(1)),
            deliver_seq: 0,
            expected: 0,
            complete_upto: 0,
            highest: 0,
        }
    }

    /// Forgets everything. No allocation.
    ///
    /// Only the slots of `[deliver_seq, highest)` can hold a frame (a delivered frame's
    /// slot is cleared, the invariants): clearing those empties the ring without
    /// writing all of it, as [`SendWindow::reset`] does.
    pub fn reset(&mut self) {
        self.ring.clear(
            &mut self.slots,
            self.deliver_seq..self.highest,
            "receive window",
        );
        self.deliver_seq = 0;
        self.expected = 0;
        self.complete_upto = 0;
        self.highest = 0;
        self.invariants();
    }

    fn idx(&self, seq: u64) -> usize {
        self.ring.idx(seq)
    }

    /// The invariants of the receive window, checked after every transition in debug
    /// builds (a no-op otherwise):
    /// - `deliver_seq <= complete_upto <= expected <= highest <= deliver_seq + slots`;
    /// - frames `[deliver_seq, expected)` are all stored (the in-order run), and the
    ///   one at `expected`, if below `highest`, is missing;
    /// - `complete_upto` is one past the last message end of the in-order run: its
    ///   frame ends a message, and no frame of `[complete_upto, expected)` does;
    /// - `highest - 1` is stored, and no slot outside `[deliver_seq, highest)` holds a
    ///   frame.
    fn invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let len = self.slots.len() as u64;
        debug_assert!(
            self.deliver_seq <= self.complete_upto,
            "delivered past a message end"
        );
        debug_assert!(
            self.complete_upto <= self.expected,
            "message end beyond the in-order run"
        );
        debug_assert!(
            self.expected <= self.highest,
            "in-order run beyond the highest frame"
        );
        debug_assert!(
            self.highest - self.deliver_seq <= len,
            "more frames than slots"
        );
        debug_assert_eq!(self.ring.len, len, "ring and slots disagree");
        for seq in self.deliver_seq..self.deliver_seq + len {
            let s = &self.slots[self.idx(seq)];
            if seq < self.expected {
                debug_assert!(s.present, "in-order frame {seq} missing");
                debug_assert!(
                    !s.end || seq < self.complete_upto,
                    "frame {seq} ends a message past complete_upto"
                );
            } else if seq == self.expected && seq < self.highest {
                debug_assert!(!s.present, "frame {seq} stored but not taken in order");
            } else if seq >= self.highest {
                debug_assert!(
                    !s.present,
                    "slot of frame {seq} beyond the highest not free"
                );
            }
        }
        if self.complete_upto > self.deliver_seq {
            debug_assert!(self.slots[self.idx(self.complete_upto - 1)].end);
        }
        if self.highest > self.deliver_seq {
            debug_assert!(self.slots[self.idx(self.highest - 1)].present);
        }
    }

    /// The cumulative ack: next frame expected in order.
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// Stores `frame` (its payload at most `cap` bytes) in `store` if new and in the window.
    #[inline]
    pub fn accept(&mut self, store: &mut [u8], cap: usize, frame: &Frame<'_>) -> Accept {
        debug_assert!(frame.payload.len() <= cap);
        debug_assert!(
            store.len() >= self.slots.len() * cap,
            "frame store too small"
        );
        if frame.seq < self.expected {
            return Accept::Duplicate;
        }
        debug_assert!(frame.seq >= self.deliver_seq);
        if frame.seq - self.deliver_seq >= self.slots.len() as u64 || frame.payload.len() > cap {
            return Accept::OutOfWindow;
        }
        if self.deliver_seq == self.highest {
            // Nothing stored (every frame below `highest` was delivered): no slot is in
            // use, so the ring may start anywhere.
            self.ring.origin = self.deliver_seq;
        }
        let k = self.idx(frame.seq);
        if self.slots[k].present {
            return Accept::Duplicate;
        }
        store[k * cap..k * cap + frame.payload.len()].copy_from_slice(frame.payload);
        self.slots[k] = RecvSlot {
            present: true,
            end: frame.end,
            len: frame.payload.len() as u16,
        };
        if frame.seq == self.expected && self.highest == self.expected {
            // The next frame in order, nothing buffered above it (the common case): it
            // alone advances `expected`, as the scan below would find.
            self.expected += 1;
            self.highest = self.expected;
            if frame.end {
                self.complete_upto = self.expected;
            }
            self.invariants();
            return Accept::New;
        }
        self.highest = self.highest.max(frame.seq + 1);
        while self.expected - self.deliver_seq < self.slots.len() as u64 {
            let s = self.slots[self.idx(self.expected)];
            if !s.present {
                break;
            }
            self.expected += 1;
            if s.end {
                self.complete_upto = self.expected;
            }
        }
        debug_assert!(frame.seq < self.highest);
        self.invariants();
        Accept::New
    }

    /// Frames above a missing one are buffered (loss or reordering).
    pub fn has_gap(&self) -> bool {
        self.highest > self.expected
    }

    fn present(&self, seq: u64) -> bool {
        seq >= self.deliver_seq
            && seq - self.deliver_seq < self.slots.len() as u64
            && self.slots[self.idx(seq)].present
    }

    /// The selective ack `(offset, bitmap)`: bit `i` set if frame
    /// `expected + 1 + offset + i` is buffered. The offset is 0 unless the first buffered
    /// frame lies beyond the bitmap's reach; then the bitmap is centred on it, so the
    /// sender learns that everything below it is missing.
    pub fn sack(&self) -> (u32, u64) {
        let base0 = self.expected + 1;
        if self.highest <= base0 {
            return (0, 0);
        }
        let Some(first) = (base0..self.highest).find(|&s| self.present(s)) else {
            return (0, 0);
        };
        let base = if first - base0 < SACK_BITS {
            base0
        } else {
            first - SACK_BITS / 2
        };
        let mut bits = 0u64;
        for i in 0..SACK_BITS {
            if self.present(base + i) {
                bits |= 1 << i;
            }
        }
        ((base - base0) as u32, bits)
    }

    /// A whole message is ready for delivery.
    pub fn has_message(&self) -> bool {
        self.deliver_seq < self.complete_upto
    }

    /// Copies the next complete message into `buf` (as much as fits) and frees its
    /// frames. Returns `(copied, full_length)`.
    pub fn deliver(&mut self, store: &[u8], cap: usize, buf: &mut [u8]) -> Option<(usize, usize)> {
        if !self.has_message() {
            return None;
        }
        let (mut copied, mut total) = (0, 0);
        let deliver_before = self.deliver_seq;
        while self.deliver_seq < self.complete_upto {
            let k = self.idx(self.deliver_seq);
            let s = self.slots[k];
            debug_assert!(s.present);
            let n = (s.len as usize).min(buf.len() - copied);
            buf[copied..copied + n].copy_from_slice(&store[k * cap..k * cap + n]);
            copied += n;
            total += s.len as usize;
            self.slots[k] = RecvSlot::default();
            self.deliver_seq += 1;
            if s.end {
                break;
            }
        }
        debug_assert!(
            self.deliver_seq > deliver_before,
            "a delivery frees a frame"
        );
        debug_assert!(copied <= total && copied <= buf.len());
        debug_assert!(
            self.slots[self.idx(self.deliver_seq - 1)].len == 0,
            "delivered frames are freed"
        );
        self.invariants();
        Some((copied, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Body, Frame, Header, Kind};
    use crate::ProcessId;

    pub(super) const CAP: usize = 100;

    /// A data frame's header from "a" (shared with `channel_tests_mutants.rs`).
    pub(super) fn header() -> Header {
        Header {
            kind: Kind::Data,
            cluster_id: 1,
            sender: ProcessId::named("a", 1),
            receiver_incarnation: 1,
            ack: 0,
            sack_offset: 0,
            sack: 0,
        }
    }

    /// A received frame (shared with `channel_tests_mutants.rs`).
    pub(super) fn frame(seq: u64, end: bool, payload: &[u8]) -> Frame<'_> {
        Frame { seq, end, payload }
    }

    /// Sends whatever `tx` has in one datagram; returns its frames' (seq, payload).
    fn transmit(tx: &mut SendWindow, store: &[u8], now: Time) -> Vec<(u64, bool, Vec<u8>)> {
        let mut buf = [0u8; 1400];
        let mut w = Writer::new(&mut buf, &header()).unwrap();
        tx.fill(now, store, CAP, &mut w);
        if w.frames() == 0 {
            return vec![];
        }
        let len = w.finish(0);
        let d = crate::wire::decode(&buf[..len], CAP).unwrap();
        let Body::Data(frames) = d.body else {
            unreachable!()
        };
        frames.map(|f| (f.seq, f.end, f.payload.to_vec())).collect()
    }

    #[test]
    fn window_bounds_and_fragmentation() {
        let mut tx = SendWindow::new(4);
        let mut store = vec![0u8; 4 * CAP];
        assert!(tx.push(&mut store, CAP, &[1; 250])); // 3 frames
        assert_eq!(tx.free_frames(), 1);
        assert!(!tx.push(&mut store, CAP, &[2; 101]));
        assert!(tx.push(&mut store, CAP, b""));
        assert_eq!(tx.free_frames(), 0);
        let sent = transmit(&mut tx, &store, Time(10));
        let lens: Vec<_> = sent.iter().map(|f| (f.0, f.1, f.2.len())).collect();
        assert_eq!(
            lens,
            vec![
                (0, false, 100),
                (1, false, 100),
                (2, true, 50),
                (3, true, 0)
            ]
        );
        assert!(tx.in_flight() && !tx.has_sendable());
        let out = tx.on_ack(Time(30), 2, 0, 0);
        assert!(out.advanced && out.progress);
        assert_eq!(out.sample_us, Some(20));
        assert_eq!(tx.free_frames(), 2);
    }

    #[test]
    fn sack_marks_and_fast_retransmit() {
        let mut tx = SendWindow::new(16);
        let mut store = vec![0u8; 16 * CAP];
        for i in 0..8u8 {
            assert!(tx.push(&mut store, CAP, &[i]));
        }
        transmit(&mut tx, &store, Time(0));
        // Receiver got 0, 2, 3, 4 (1 lost): ack = 1, sack bits for 2, 3, 4 → bits 0, 1, 2.
        let out = tx.on_ack(Time(100), 1, 0, 0b111);
        assert_eq!(out.fast_marked, 1);
        assert!(tx.has_sendable());
        let again = transmit(&mut tx, &store, Time(110));
        assert_eq!(again, vec![(1, true, vec![1])]);
        // The same information again does not fast-retransmit twice.
        assert_eq!(tx.on_ack(Time(120), 1, 0, 0b111).fast_marked, 0);
        // Karn: ack of the retransmitted frame gives no sample from it; 5 was sent once.
        let out = tx.on_ack(Time(200), 6, 0, 0);
        assert_eq!(out.sample_us, Some(200));
        let out = tx.on_ack(Time(200), 6, 0, 0);
        assert!(!out.progress);
        // Timeout marks the rest (6, 7).
        assert_eq!(tx.on_timeout(), 2);
        assert_eq!(transmit(&mut tx, &store, Time(300)).len(), 2);
        let out = tx.on_ack(Time(400), 8, 0, 0);
        assert_eq!(out.sample_us, None, "only retransmitted frames acked");
        assert!(!tx.in_flight());
    }

    #[test]
    fn below_threshold_no_fast_retransmit() {
        let mut tx = SendWindow::new(16);
        let mut store = vec![0u8; 16 * CAP];
        for i in 0..4u8 {
            tx.push(&mut store, CAP, &[i]);
        }
        transmit(&mut tx, &store, Time(0));
        assert_eq!(tx.on_ack(Time(1), 0, 0, 0b11).fast_marked, 0);
        assert_eq!(tx.on_ack(Time(1), 0, 0, 0b111).fast_marked, 1);
    }

    /// A reset clears only the slots that can hold a frame (`[una, next_seq)`,
    /// `[deliver_seq, highest)`), not the whole ring: with frames in flight, marked,
    /// queued, buffered out of order and occupying slots across the ring's end (the
    /// ring's origin only moves while a window is empty), every slot is empty
    /// afterwards and the windows start again from sequence 0.
    #[test]
    fn a_reset_empties_windows_holding_frames_anywhere_in_the_ring() {
        let mut tx = SendWindow::new(8);
        let mut store = vec![0u8; 8 * CAP];
        // Frames 0..3 (one message), 3..7 (four): sent, acknowledged up to 5.
        assert!(tx.push(&mut store, CAP, &[0; 250]));
        transmit(&mut tx, &store, Time(1));
        tx.on_ack(Time(2), 1, 0, 0);
        for i in 0..4u8 {
            assert!(tx.push(&mut store, CAP, &[i]));
        }
        transmit(&mut tx, &store, Time(3));
        tx.on_ack(Time(4), 5, 0, 0);
        assert!(
            tx.in_flight(),
            "5 and 6 still in flight: the origin stays at 0"
        );
        // Frames 7, 8, 9 take slots 7, 0, 1: across the ring's end.
        for i in 0..3u8 {
            assert!(tx.push(&mut store, CAP, &[i]));
        }
        transmit(&mut tx, &store, Time(5));
        // 7 selectively acknowledged (bit 0 is frame ack + 1 = 7), one more queued.
        tx.on_ack(Time(6), 6, 0, 0b1);
        assert!(tx.push(&mut store, CAP, b"queued"));
        assert_eq!((tx.una, tx.next_seq), (6, 11));
        assert!(tx.in_flight() && tx.has_sendable());
        assert_ne!(tx.slots[0], SendSlot::default(), "frame 8 in slot 0");
        tx.reset();
        assert!(tx.slots.iter().all(|s| *s == SendSlot::default()));
        assert!(!tx.in_flight() && !tx.has_sendable());
        assert_eq!(tx.free_frames(), 8);
        assert!(tx.push(&mut store, CAP, b"again"));
        assert_eq!(
            transmit(&mut tx, &store, Time(70)),
            vec![(0, true, b"again".to_vec())]
        );

        let mut rx = RecvWindow::new(8);
        let mut rstore = vec![0u8; 8 * CAP];
        let f = frame;
        let mut buf = [0u8; 10];
        // 0..6 in order, 0..4 delivered: 4 and 5 stay, so the origin stays at 0.
        for seq in 0..6 {
            assert_eq!(
                rx.accept(&mut rstore, CAP, &f(seq, true, b"x")),
                Accept::New
            );
        }
        for _ in 0..4 {
            assert!(rx.deliver(&rstore, CAP, &mut buf).is_some());
        }
        // Above a hole at 6: 7 (slot 7), 9 and 11 (slots 1 and 3, across the end).
        for seq in [7, 9, 11] {
            assert_eq!(
                rx.accept(&mut rstore, CAP, &f(seq, true, b"y")),
                Accept::New
            );
        }
        assert!(rx.has_gap() && rx.has_message());
        assert!(rx.slots[1].present && rx.slots[3].present);
        rx.reset();
        assert!(rx.slots.iter().all(|s| *s == RecvSlot::default()));
        assert!(!rx.has_gap() && !rx.has_message());
        assert_eq!(rx.expected(), 0);
        assert_eq!(rx.accept(&mut rstore, CAP, &f(0, true, b"z")), Accept::New);
        assert_eq!(rx.deliver(&rstore, CAP, &mut buf), Some((1, 1)));
    }

    #[test]
    fn receive_reorders_and_reassembles() {
        let mut rx = RecvWindow::new(8);
        let mut store = vec![0u8; 8 * CAP];
        let f = frame;
        assert_eq!(rx.accept(&mut store, CAP, &f(2, true, b"c")), Accept::New);
        assert_eq!(rx.sack(), (0, 0b10));
        assert_eq!(rx.accept(&mut store, CAP, &f(1, false, b"b")), Accept::New);
        assert_eq!(rx.sack(), (0, 0b11));
        assert!(!rx.has_message());
        assert_eq!(
            rx.accept(&mut store, CAP, &f(2, true, b"c")),
            Accept::Duplicate
        );
        assert_eq!(rx.accept(&mut store, CAP, &f(0, true, b"a")), Accept::New);
        assert_eq!(rx.expected(), 3);
        assert_eq!(rx.sack(), (0, 0));
        assert_eq!(
            rx.accept(&mut store, CAP, &f(0, true, b"a")),
            Accept::Duplicate
        );
        assert_eq!(
            rx.accept(&mut store, CAP, &f(8, true, b"z")),
            Accept::OutOfWindow
        );
        let mut buf = [0u8; 10];
        assert_eq!(rx.deliver(&store, CAP, &mut buf), Some((1, 1)));
        assert_eq!(&buf[..1], b"a");
        assert_eq!(rx.deliver(&store, CAP, &mut buf), Some((2, 2)));
        assert_eq!(&buf[..2], b"bc");
        assert_eq!(rx.deliver(&store, CAP, &mut buf), None);
        // Window slides with delivery.
        assert_eq!(rx.accept(&mut store, CAP, &f(8, true, b"z")), Accept::New);
        assert_eq!(rx.sack(), (0, 1 << 4));
    }

    #[test]
    fn sack_moves_past_a_long_hole() {
        let mut rx = RecvWindow::new(256);
        let mut store = vec![0u8; 256 * CAP];
        for seq in 100..120 {
            let f = Frame {
                seq,
                end: true,
                payload: b"x",
            };
            rx.accept(&mut store, CAP, &f);
        }
        assert!(rx.has_gap());
        // Frames 0..100 missing: the bitmap starts 32 frames below frame 100.
        let (offset, bits) = rx.sack();
        assert_eq!(offset, 100 - 32 - 1);
        assert_eq!(bits, ((1u64 << 20) - 1) << 32);
        // The sender marks the whole hole for fast retransmit.
        let mut tx = SendWindow::new(256);
        let mut txs = vec![0u8; 256 * CAP];
        for _ in 0..120 {
            tx.push(&mut txs, CAP, b"x");
        }
        for _ in 0..5 {
            transmit(&mut tx, &txs, Time(0));
        }
        let out = tx.on_ack(Time(10), rx.expected(), offset, bits);
        assert_eq!(out.fast_marked, 100);
    }

    #[test]
    fn empty_windows_restart_at_slot_zero() {
        // Ping-pong: every frame lands in slot 0, whatever its sequence number, for a
        // power-of-two ring and for another size alike.
        for size in [8usize, 5] {
            let mut tx = SendWindow::new(size);
            let mut rx = RecvWindow::new(size);
            let mut txs = vec![0u8; size * CAP];
            let mut rxs = vec![0u8; size * CAP];
            let mut buf = [0u8; 4];
            for i in 0..3 * size as u32 {
                assert!(tx.push(&mut txs, CAP, &i.to_be_bytes()));
                assert_eq!(tx.idx(i as u64), 0);
                for (seq, end, payload) in transmit(&mut tx, &txs, Time(0)) {
                    let f = Frame {
                        seq,
                        end,
                        payload: &payload,
                    };
                    assert_eq!(rx.accept(&mut rxs, CAP, &f), Accept::New);
                    assert_eq!(rx.idx(seq), 0);
                }
                assert_eq!(rx.deliver(&rxs, CAP, &mut buf), Some((4, 4)));
                assert_eq!(buf, i.to_be_bytes());
                tx.on_ack(Time(1), rx.expected(), 0, 0);
            }
            // Several in flight: consecutive slots from where the ring restarted; frames
            // arriving out of order land where they belong.
            for i in 0..3u8 {
                assert!(tx.push(&mut txs, CAP, &[i]));
            }
            let sent = transmit(&mut tx, &txs, Time(0));
            let base = sent[0].0;
            assert_eq!(tx.idx(base + 2), 2);
            for (seq, end, payload) in sent.iter().rev() {
                let f = Frame {
                    seq: *seq,
                    end: *end,
                    payload,
                };
                assert_eq!(rx.accept(&mut rxs, CAP, &f), Accept::New);
            }
            // The receive ring restarted at the next frame to deliver, not the first to arrive.
            assert_eq!((rx.idx(base), rx.idx(base + 2)), (0, 2));
            for i in 0..3u8 {
                assert_eq!(rx.deliver(&rxs, CAP, &mut buf), Some((1, 1)));
                assert_eq!(buf[0], i);
            }
        }
    }

    #[test]
    fn in_order_frames_take_the_short_path_and_keep_the_window_consistent() {
        let mut rx = RecvWindow::new(4);
        let mut store = vec![0u8; 4 * CAP];
        // In order, fragments then the end: the message completes with its last frame.
        assert_eq!(
            rx.accept(&mut store, CAP, &frame(0, false, b"ab")),
            Accept::New
        );
        assert!(!rx.has_message() && !rx.has_gap());
        assert_eq!(
            rx.accept(&mut store, CAP, &frame(1, true, b"c")),
            Accept::New
        );
        assert_eq!((rx.expected(), rx.sack()), (2, (0, 0)));
        // A hole at 2: 3 is buffered, then 2 fills it and the scan takes both.
        assert_eq!(
            rx.accept(&mut store, CAP, &frame(3, true, b"e")),
            Accept::New
        );
        assert!(rx.has_gap());
        assert_eq!(
            rx.accept(&mut store, CAP, &frame(2, true, b"d")),
            Accept::New
        );
        assert_eq!(rx.expected(), 4);
        assert!(!rx.has_gap());
        assert_eq!(
            rx.accept(&mut store, CAP, &frame(3, true, b"e")),
            Accept::Duplicate
        );
        // The window is full until delivery frees it.
        assert_eq!(
            rx.accept(&mut store, CAP, &frame(4, true, b"f")),
            Accept::OutOfWindow
        );
        let mut buf = [0u8; 8];
        for want in [&b"abc"[..], b"d", b"e"] {
            let (n, total) = rx.deliver(&store, CAP, &mut buf).unwrap();
            assert_eq!((&buf[..n], total), (want, want.len()));
        }
        assert!(!rx.has_message());
        // Empty again: the next in-order frame restarts the ring and completes at once.
        assert_eq!(
            rx.accept(&mut store, CAP, &frame(4, true, b"f")),
            Accept::New
        );
        assert_eq!(rx.deliver(&store, CAP, &mut buf), Some((1, 1)));
    }

    #[test]
    fn short_buffer_truncates() {
        let mut rx = RecvWindow::new(4);
        let mut store = vec![0u8; 4 * CAP];
        let p = [7u8; 50];
        rx.accept(
            &mut store,
            CAP,
            &Frame {
                seq: 0,
                end: true,
                payload: &p,
            },
        );
        let mut buf = [0u8; 10];
        assert_eq!(rx.deliver(&store, CAP, &mut buf), Some((10, 50)));
    }
}

#[cfg(test)]
#[path = "channel_tests_mutants.rs"]
mod tests_mutants;
