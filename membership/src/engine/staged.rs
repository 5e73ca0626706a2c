//! [`Staged`]: a preallocated value that is either set or ⊥ (the paper's nil), in one
//! place, so the engine never reads a stale buffer behind a `has_*` flag that says it
//! is empty.
//!
//! The engine's NextUpdate_p and the initiator's DetermineProposal inputs (Ahead_r,
//! SubAhead_r, SubCurrent_r) and its v2 are updates or proposals whose buffers are sized
//! from the configuration at start and only ever refilled: `Option<Update>` would drop
//! and reallocate them. `Staged` keeps the buffer and the "is it set" bit together and
//! only hands the value out through [`Staged::get`], which is `None` while unset.

use crate::view::{Proposal, Update};

/// A value type that can be refilled in place from another of its kind without
/// allocating (its buffers are preallocated to the same limits).
pub(super) trait Refill {
    /// Makes `self` equal to `other`, reusing `self`'s buffers.
    fn refill_from(&mut self, other: &Self);
    /// Empties `self`, keeping its buffers.
    fn reset(&mut self);
}

impl Refill for Update {
    fn refill_from(&mut self, other: &Self) {
        self.copy_from(other);
    }
    fn reset(&mut self) {
        self.clear();
    }
}

impl Refill for Proposal {
    fn refill_from(&mut self, other: &Self) {
        self.copy_from(other);
    }
    fn reset(&mut self) {
        self.update.clear();
        self.version = 0;
    }
}

/// A preallocated slot holding a value or ⊥. See the module docs.
#[derive(Debug)]
pub(super) struct Staged<T> {
    slot: T,
    set: bool,
}

impl<T: Refill> Staged<T> {
    /// An unset slot around a preallocated buffer.
    pub(super) fn empty(buffer: T) -> Self {
        Staged {
            slot: buffer,
            set: false,
        }
    }

    /// The value, or `None` for ⊥.
    pub(super) fn get(&self) -> Option<&T> {
        self.set.then_some(&self.slot)
    }

    /// True when a value is set.
    pub(super) fn is_set(&self) -> bool {
        self.set
    }

    /// Sets the value to a copy of `v` (no allocation).
    pub(super) fn set_from(&mut self, v: &T) {
        self.slot.refill_from(v);
        self.set = true;
    }

    /// Sets the value to a copy of `v`, or to ⊥ for `None`.
    pub(super) fn set_opt(&mut self, v: Option<&T>) {
        match v {
            Some(v) => self.set_from(v),
            None => self.clear(),
        }
    }

    /// Fills the buffer in place with `fill`; the slot holds a value if `fill` returns
    /// true, ⊥ otherwise (the buffer is then emptied).
    pub(super) fn fill_with(&mut self, fill: impl FnOnce(&mut T) -> bool) {
        self.set = fill(&mut self.slot);
        if !self.set {
            self.slot.reset();
        }
        debug_assert!(self.set || self.get().is_none());
    }

    /// Back to ⊥ (the buffer is kept and emptied).
    pub(super) fn clear(&mut self) {
        self.set = false;
        self.slot.reset();
    }

    /// Moves the value into `dst` by swapping buffers (no copy, no allocation) and
    /// leaves this slot ⊥. Returns false (and leaves `dst` alone) if it was ⊥.
    pub(super) fn take_into(&mut self, dst: &mut T) -> bool {
        if !self.set {
            return false;
        }
        std::mem::swap(&mut self.slot, dst);
        self.clear();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProcessId;

    fn update_removing(p: &str) -> Update {
        let mut u = Update::with_capacity(4);
        u.removes.push(ProcessId::named(p, 1));
        u
    }

    /// Catches `<impl Refill for Proposal>::reset -> ()`: a proposal slot set back to
    /// ⊥ keeps its buffer and is emptied too (no stale update or version behind it).
    #[test]
    fn a_cleared_proposal_slot_is_emptied() {
        let p = Proposal {
            version: 7,
            initiator: ProcessId::named("i", 1),
            initiator_index: 2,
            update: update_removing("a"),
        };
        let mut s = Staged::empty(Proposal::with_capacity(4));
        s.set_from(&p);
        assert_eq!(s.get().map(|p| p.version), Some(7));
        s.clear();
        assert!(s.get().is_none());
        assert_eq!(s.slot.version, 0);
        assert!(s.slot.update.removes.is_empty(), "emptied");
        assert!(s.slot.update.removes.capacity() >= 4, "the buffer is kept");
    }

    #[test]
    fn unset_slots_hand_out_nothing_and_keep_their_buffers() {
        let mut s = Staged::empty(Update::with_capacity(4));
        assert!(s.get().is_none());
        s.set_from(&update_removing("a"));
        assert_eq!(s.get().unwrap().removes, [ProcessId::named("a", 1)]);
        s.clear();
        assert!(s.get().is_none() && !s.is_set());
        assert!(s.slot.removes.capacity() >= 4, "the buffer is kept");
        assert!(s.slot.removes.is_empty(), "and emptied");
    }

    #[test]
    fn fill_with_sets_only_what_the_filler_accepts() {
        let mut s = Staged::empty(Update::with_capacity(4));
        s.fill_with(|u| {
            u.removes.push(ProcessId::named("b", 1));
            true
        });
        assert_eq!(s.get().unwrap().removes.len(), 1);
        s.fill_with(|u| {
            u.removes.push(ProcessId::named("c", 1));
            false
        });
        assert!(s.get().is_none());
        assert!(s.slot.removes.is_empty());
    }

    #[test]
    fn take_into_moves_the_value_and_leaves_bottom() {
        let mut s = Staged::empty(Update::with_capacity(4));
        let mut dst = Update::with_capacity(4);
        assert!(!s.take_into(&mut dst));
        s.set_from(&update_removing("d"));
        assert!(s.take_into(&mut dst));
        assert_eq!(dst.removes, [ProcessId::named("d", 1)]);
        assert!(s.get().is_none());
        s.set_opt(Some(&update_removing("e")));
        assert!(s.is_set());
        s.set_opt(None);
        assert!(!s.is_set());
    }
}
