//! Members, views, update sets (the paper's ±v) and proposals (NextUpdate).
//!
//! All containers here are `Vec`s preallocated to `max_members` and only ever
//! cleared and refilled, so they never reallocate on the hot path.

use std::net::SocketAddr;

use crate::tags::{TagTable, Tags};
use crate::ProcessId;

/// A core member: its process id and the address its transport listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    /// The process (node name + incarnation).
    pub id: ProcessId,
    /// Where its datagrams go.
    pub addr: SocketAddr,
}

/// The largest view version a message may carry (2^62): more than a group changing a
/// million times a second reaches in 140,000 years. A larger one on the wire is
/// malformed (`MsgError::BadVersion`), so a forged version can never make the
/// protocol's `version + 1` overflow.
pub const MAX_VERSION: u64 = 1 << 62;

/// Whether a process appears twice in `members` (a view names each process once).
/// Quadratic, without allocating: lists are at most `max_members` long.
pub(crate) fn names_a_process_twice(members: &[Member]) -> bool {
    (1..members.len()).any(|i| members[..i].iter().any(|o| o.id == members[i].id))
}

/// A local view: a version and the members in rank order, most senior first.
///
/// The paper's `rank(p)` is highest for the most senior member (the mgr); here the
/// *index* is used: index 0 is the most senior, and "lower rank" means a larger index.
#[derive(Debug, PartialEq, Eq)]
pub struct View {
    /// The view's version x (the paper's LocalView^x).
    pub version: u64,
    /// Members, most senior first.
    pub members: Vec<Member>,
    /// The members' tags (`crate::tags`): an entry per member that has tags, agreed
    /// like the members (a tag change is an update). Read with [`View::tags_of`].
    pub tags: TagTable,
}

impl Clone for View {
    fn clone(&self) -> View {
        View {
            version: self.version,
            members: self.members.clone(),
            tags: self.tags.clone(),
        }
    }

    /// Reuses `self`'s buffers (the derived `clone_from` would allocate new ones):
    /// copying a view into a preallocated one allocates nothing.
    fn clone_from(&mut self, source: &View) {
        self.version = source.version;
        self.members.clone_from(&source.members);
        self.tags.copy_from(&source.tags);
    }
}

impl View {
    /// An empty view of version 0 with room for `cap` members (and no tags: see
    /// [`View::with_tags`]).
    pub fn with_capacity(cap: usize) -> View {
        View::with_tags(cap, 0)
    }

    /// An empty view of version 0 with room for `cap` members and `max_tag_bytes`
    /// bytes of encoded tags per member.
    pub fn with_tags(cap: usize, max_tag_bytes: usize) -> View {
        View {
            version: 0,
            members: Vec::with_capacity(cap),
            tags: TagTable::with_capacity(cap, max_tag_bytes),
        }
    }

    /// The tags of member `id` (empty when it has none or is not a member).
    pub fn tags_of(&self, id: ProcessId) -> Tags<'_> {
        self.tags.get(id).unwrap_or(Tags::EMPTY)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when the view has no members (before bootstrap or join).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Index (seniority position) of `id`, if a member.
    pub fn index_of(&self, id: ProcessId) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    /// True if `id` is a member.
    pub fn contains(&self, id: ProcessId) -> bool {
        self.index_of(id).is_some()
    }

    /// The member with process id `id`.
    pub fn member(&self, id: ProcessId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Smallest number of members that is a majority of this view.
    pub fn majority(&self) -> usize {
        if crate::sabotage::active(crate::sabotage::Sabotage::QuorumOfOne) {
            return 1;
        }
        self.members.len() / 2 + 1
    }

    /// Copies `other` into `self` without reallocating (capacity permitting).
    pub fn copy_from(&mut self, other: &View) {
        self.version = other.version;
        self.members.clear();
        self.members.extend_from_slice(&other.members);
        self.tags.copy_from(&other.tags);
    }

    /// Applies an update (DoCommit): removes `u.removes`, appends `u.adds` (joiners are
    /// the most junior, in the order given), sets the tags of `u.tags` (empty tags
    /// remove a member's entry; entries for non-members are ignored), and sets the
    /// version.
    pub fn apply(&mut self, u: &Update, version: u64) {
        self.members.retain(|m| !u.removes.contains(&m.id));
        for a in &u.adds {
            if !self.contains(a.id) {
                self.members.push(*a);
            }
        }
        let members = &self.members;
        self.tags.retain(|p| members.iter().any(|m| m.id == p));
        for (id, t) in u.tags.iter() {
            if t.is_empty() {
                self.tags.remove(id);
            } else if self.contains(id) {
                self.tags.set(id, t.as_bytes());
            }
        }
        self.version = version;
    }

    /// How many members the view would have after [`apply`](Self::apply)ing `u`
    /// (removes first, then the adds not in the view yet, each once), without applying
    /// it: a process's views hold at most its `max_members`.
    pub fn len_after(&self, u: &Update) -> usize {
        let stays = |id: ProcessId| self.contains(id) && !u.removes.contains(&id);
        let kept = self
            .members
            .iter()
            .filter(|m| !u.removes.contains(&m.id))
            .count();
        let added = u
            .adds
            .iter()
            .enumerate()
            .filter(|&(i, a)| !stays(a.id) && !u.adds[..i].iter().any(|b| b.id == a.id))
            .count();
        kept + added
    }

    /// The index (rank order) of the member running on node `node`, any incarnation.
    pub fn index_of_node(&self, node: crate::NodeId) -> Option<usize> {
        self.members.iter().position(|m| m.id.node == node)
    }

    /// A 64-bit digest of version and members (FNV-1a), for cheap equality checks.
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= *b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(&self.version.to_le_bytes());
        for m in &self.members {
            eat(m.id.node.as_bytes());
            eat(&m.id.incarnation.to_le_bytes());
            // Tags count only when present, so tagless views keep their digests.
            let t = self.tags_of(m.id);
            if !t.is_empty() {
                eat(t.as_bytes());
            }
        }
        h
    }
}

/// The members of `a` that `b` does not hold (same process id), in `a`'s order: who
/// left between two views (`a` the older), or who arrived (`a` the newer).
///
/// One pass when `b` keeps the order of the members the two share, as successive views
/// do (a removal drops members, a join appends them, [`View::apply`]): each shared
/// member is found ahead of the previous one. A member found nowhere ahead is looked
/// for behind too, so the answer is exact for any order. Searching all of `b` for
/// every member cost 2,000 comparisons per install at 63 members (issue 19).
pub fn members_missing_from<'a>(
    a: &'a [Member],
    b: &'a [Member],
) -> impl Iterator<Item = &'a Member> + 'a {
    let mut next = 0;
    a.iter().filter(move |m| {
        if let Some(k) = b[next..].iter().position(|n| n.id == m.id) {
            next += k + 1;
            return false;
        }
        !b[..next].iter().any(|n| n.id == m.id)
    })
}

/// What a client change does to the system view (docs/SERVICE.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientOpKind {
    /// Register the client (it becomes part of the system view).
    Add,
    /// Remove the client (it deregistered or its watcher found it silent).
    Remove,
}

/// One client change carried by an update: clients are not voters, but their joins
/// and removals are committed by the core exactly like core changes (they are part of
/// the value v), so every core member and client sees one sequence of system views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientOp {
    /// Add or remove.
    pub kind: ClientOpKind,
    /// The client (node name + incarnation).
    pub id: ProcessId,
    /// Where its datagrams go (meaningful for `Add`).
    pub addr: SocketAddr,
    /// The client may be promoted into the core (meaningful for `Add`).
    pub core_eligible: bool,
}

impl ClientOp {
    /// Registration of client `id` at `addr`.
    pub fn add(id: ProcessId, addr: SocketAddr, core_eligible: bool) -> ClientOp {
        ClientOp {
            kind: ClientOpKind::Add,
            id,
            addr,
            core_eligible,
        }
    }

    /// Removal of client `id`.
    pub fn remove(id: ProcessId) -> ClientOp {
        ClientOp {
            kind: ClientOpKind::Remove,
            id,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            core_eligible: false,
        }
    }
}

/// An update set, the paper's ±v: processes to remove and processes to add, plus the
/// client changes committed with it (the membership service, docs/SERVICE.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// Processes removed (each believed faulty by whoever proposes it: GMP-1).
    pub removes: Vec<ProcessId>,
    /// Processes added, appended to the view in this order.
    pub adds: Vec<Member>,
    /// Client changes, applied to the system view in this order (at most one per
    /// client per update).
    pub clients: Vec<ClientOp>,
    /// Tag changes: the new tags of members (added by this update or already in the
    /// view), in order; empty tags clear a member's (docs/PROTOCOL.md, D25).
    pub tags: TagTable,
}

impl Update {
    /// An empty update with room for `cap` removes and `cap` adds, and no client changes.
    pub fn with_capacity(cap: usize) -> Update {
        Update::with_limits(cap, 0)
    }

    /// An empty update with room for `cap` removes and adds and `client_ops` client
    /// changes.
    pub fn with_limits(cap: usize, client_ops: usize) -> Update {
        Update::with_tag_limits(cap, client_ops, 0)
    }

    /// An empty update with room for `cap` removes and adds, `client_ops` client
    /// changes and `cap` tag changes of up to `max_tag_bytes` bytes each.
    pub fn with_tag_limits(cap: usize, client_ops: usize, max_tag_bytes: usize) -> Update {
        Update {
            removes: Vec::with_capacity(cap),
            adds: Vec::with_capacity(cap),
            clients: Vec::with_capacity(client_ops),
            tags: TagTable::with_capacity(cap, max_tag_bytes),
        }
    }

    /// True when it changes nothing (the paper's nil-id).
    pub fn is_empty(&self) -> bool {
        self.removes.is_empty()
            && self.adds.is_empty()
            && self.clients.is_empty()
            && self.tags.is_empty()
    }

    /// True when it changes the core (adds or removes core members).
    pub fn changes_core(&self) -> bool {
        !self.removes.is_empty() || !self.adds.is_empty()
    }

    /// Empties it, keeping the capacity.
    pub fn clear(&mut self) {
        self.removes.clear();
        self.adds.clear();
        self.clients.clear();
        self.tags.clear();
    }

    /// Copies `other` into `self` without reallocating (capacity permitting).
    pub fn copy_from(&mut self, other: &Update) {
        self.removes.clear();
        self.removes.extend_from_slice(&other.removes);
        self.adds.clear();
        self.adds.extend_from_slice(&other.adds);
        self.clients.clear();
        self.clients.extend_from_slice(&other.clients);
        self.tags.copy_from(&other.tags);
    }

    /// True if both hold the same removes and adds, in any order, and the same client
    /// changes and tag changes in the same order (their order is part of the value).
    pub fn same_as(&self, other: &Update) -> bool {
        self.removes.len() == other.removes.len()
            && self.adds.len() == other.adds.len()
            && self.removes.iter().all(|r| other.removes.contains(r))
            && self.adds.iter().all(|a| other.adds.contains(a))
            && self.clients == other.clients
            && self.tags.same_order(&other.tags)
    }
}

/// A proposal seen by a process: the paper's NextUpdate_p = [<v, x>, rank(i)]_p.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The proposed value v.
    pub update: Update,
    /// The version x it would form.
    pub version: u64,
    /// The initiator i that submitted it.
    pub initiator: ProcessId,
    /// The initiator's index in LocalView^{x-1} (larger = lower rank = more junior).
    pub initiator_index: u32,
}

impl Proposal {
    /// An empty proposal with room for `cap` members in its update.
    pub fn with_capacity(cap: usize) -> Proposal {
        Proposal::with_limits(cap, 0)
    }

    /// An empty proposal with room for `cap` members and `client_ops` client changes.
    pub fn with_limits(cap: usize, client_ops: usize) -> Proposal {
        Proposal::with_tag_limits(cap, client_ops, 0)
    }

    /// An empty proposal with room for `cap` members, `client_ops` client changes and
    /// `cap` tag changes of up to `max_tag_bytes` bytes.
    pub fn with_tag_limits(cap: usize, client_ops: usize, max_tag_bytes: usize) -> Proposal {
        Proposal {
            update: Update::with_tag_limits(cap, client_ops, max_tag_bytes),
            version: 0,
            initiator: ProcessId::named("-", 0),
            initiator_index: 0,
        }
    }

    /// Copies `other` into `self` without reallocating.
    pub fn copy_from(&mut self, other: &Proposal) {
        self.update.copy_from(&other.update);
        self.version = other.version;
        self.initiator = other.initiator;
        self.initiator_index = other.initiator_index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> Member {
        Member {
            id: ProcessId::named(name, 1),
            addr: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn apply_removes_then_appends_joiners_as_most_junior() {
        let mut v = View::with_capacity(8);
        v.members.extend([m("a"), m("b"), m("c")]);
        let mut u = Update::with_capacity(8);
        u.removes.push(m("a").id);
        u.adds.push(m("d"));
        v.apply(&u, 2);
        assert_eq!(v.version, 2);
        let ids: Vec<_> = v.members.iter().map(|m| m.id.node.to_string()).collect();
        assert_eq!(ids, ["b", "c", "d"]);
        assert_eq!(v.majority(), 2);
    }

    /// `len_after` counts what `apply` makes: removes first, then each add not in the
    /// view once (a removed member added back counts, a duplicate add does not).
    #[test]
    fn len_after_is_the_length_apply_makes() {
        let mut v = View::with_capacity(8);
        v.members.extend([m("a"), m("b"), m("c")]);
        let mut u = Update::with_capacity(8);
        u.removes.extend([m("a").id, m("z").id]);
        u.adds.extend([m("b"), m("d"), m("d"), m("a"), m("e")]);
        let n = v.len_after(&u);
        v.apply(&u, 2);
        assert_eq!(n, 5);
        assert_eq!(v.len(), n, "b and c stay, d once, a back, e");
        assert_eq!(v.len_after(&Update::with_capacity(1)), 5, "an empty update");
    }

    #[test]
    fn members_missing_from_finds_who_left_and_who_arrived_in_any_order() {
        let ids = |it: &mut dyn Iterator<Item = &Member>| -> Vec<String> {
            it.map(|m| m.id.node.to_string()).collect()
        };
        let v = |names: &[&str]| -> Vec<Member> { names.iter().map(|n| m(n)).collect() };
        let (old, new) = (v(&["a", "b", "c", "d", "e"]), v(&["b", "d", "e", "f"]));
        assert_eq!(ids(&mut members_missing_from(&old, &new)), ["a", "c"]);
        assert_eq!(ids(&mut members_missing_from(&new, &old)), ["f"]);
        // Out of order: still exact.
        let shuffled = v(&["e", "b", "f", "d"]);
        assert_eq!(ids(&mut members_missing_from(&old, &shuffled)), ["a", "c"]);
        assert_eq!(ids(&mut members_missing_from(&shuffled, &old)), ["f"]);
        assert_eq!(
            ids(&mut members_missing_from(&old, &old)),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&mut members_missing_from(&old, &[])),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(
            ids(&mut members_missing_from(&[], &old)),
            Vec::<String>::new()
        );
        // Another incarnation of a member is another process.
        let mut reborn = old.clone();
        reborn[1].id = ProcessId::named("b", 2);
        assert_eq!(ids(&mut members_missing_from(&old, &reborn)), ["b"]);
    }

    #[test]
    fn same_as_ignores_order() {
        let mut a = Update::with_capacity(4);
        let mut b = Update::with_capacity(4);
        a.removes.extend([m("a").id, m("b").id]);
        b.removes.extend([m("b").id, m("a").id]);
        assert!(a.same_as(&b));
        b.adds.push(m("c"));
        assert!(!a.same_as(&b));
    }
}

#[cfg(test)]
#[path = "view_tests_mutants.rs"]
mod tests_mutants;
