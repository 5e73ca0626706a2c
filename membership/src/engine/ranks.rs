//! Where a process stands in the current view, found through 8-byte keys.
//!
//! The engine looks a process up in its view several times per message (is the sender
//! a member, its rank, is a suspect in the view). A member is 72 bytes (process id and
//! address), so a scan of the view reads about one cache line per member it passes:
//! at 63 members a lookup could read ~70 lines, on a step whose caches the other
//! nodes' steps emptied (docs/bench/view_change_perf.md §11). [`ViewIndex`] keeps a
//! 64-bit key per member, in rank order, beside the view: a lookup reads eight keys per
//! cache line and compares a whole process id only where a key matches. The index is
//! derived state: refreshed wherever the engine's view changes, checked against the
//! view on every lookup in debug builds, and not part of the engine's fingerprint.

use crate::view::View;
use crate::ProcessId;

/// A key per member of a view, in the view's order (allocated once).
#[derive(Debug)]
pub(super) struct ViewIndex {
    keys: Vec<u64>,
}

impl ViewIndex {
    /// An index for views of up to `n` members.
    pub(super) fn with_capacity(n: usize) -> ViewIndex {
        ViewIndex {
            keys: Vec::with_capacity(n),
        }
    }

    /// Indexes `view` (after any change of its members).
    pub(super) fn refresh(&mut self, view: &View) {
        self.keys.clear();
        self.keys.extend(view.members.iter().map(|m| key_of(&m.id)));
    }

    /// The index of `p` in `view` (which this index was refreshed from), as
    /// [`View::index_of`].
    #[inline]
    pub(super) fn rank(&self, view: &View, p: ProcessId) -> Option<usize> {
        debug_assert!(self.indexes(view), "the view index is stale");
        position(&self.keys, p, |i| view.members[i].id)
    }

    /// Whether this index holds exactly the keys of `view`'s members.
    fn indexes(&self, view: &View) -> bool {
        self.keys.len() == view.members.len()
            && self
                .keys
                .iter()
                .zip(&view.members)
                .all(|(&k, m)| k == key_of(&m.id))
    }
}

/// The position of `p` among processes whose keys are `keys` (the process at `i`
/// being `id_at(i)`): the keys are read, a whole id is compared only where its key
/// matches `p`'s.
#[inline]
pub(super) fn position(
    keys: &[u64],
    p: ProcessId,
    id_at: impl Fn(usize) -> ProcessId,
) -> Option<usize> {
    let k = key_of(&p);
    keys.iter()
        .enumerate()
        .find(|&(i, &q)| q == k && id_at(i) == p)
        .map(|(i, _)| i)
}

/// A 64-bit key of a process id (FNV-1a over the name, mixed with the incarnation):
/// equal ids have equal keys; unequal ids rarely do, and are told apart by the full
/// comparison that follows a matching key.
#[inline]
pub(super) fn key_of(p: &ProcessId) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ p.incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in p.node.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::member_of;
    use crate::view::Member;

    /// Lookups through the index answer as the view's own scan does, for members,
    /// other incarnations and strangers, after every refresh.
    #[test]
    fn ranks_match_the_views_own_lookup() {
        let members: Vec<Member> = (0..9).map(|i| member_of(i, 1 + i as u64 % 2)).collect();
        let mut view = View::with_tags(9, 0);
        let mut index = ViewIndex::with_capacity(9);
        for n in [0usize, 1, 5, 9] {
            view.members.clear();
            view.members.extend_from_slice(&members[..n]);
            index.refresh(&view);
            for m in &members {
                assert_eq!(index.rank(&view, m.id), view.index_of(m.id));
                let other = ProcessId::new(m.id.node, m.id.incarnation + 1);
                assert_eq!(index.rank(&view, other), view.index_of(other));
            }
        }
        assert_ne!(key_of(&members[0].id), key_of(&members[1].id));
    }

    /// A view changed without a refresh is caught in debug builds.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "stale")]
    fn a_stale_index_is_caught() {
        let mut view = View::with_tags(4, 0);
        let mut index = ViewIndex::with_capacity(4);
        view.members.push(member_of(0, 1));
        index.refresh(&view);
        view.members.push(member_of(1, 1));
        let _ = index.rank(&view, member_of(1, 1).id);
    }
}
