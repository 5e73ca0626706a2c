//! Unit tests of `view.rs` written for mutation testing (issue 17, `make mutants`): each
//! asserts what a function's name and doc promise, where the engine's scenario tests
//! would not notice the difference (docs/VERIFICATION.md, "Mutation testing").

use super::*;
use crate::testkit::member_of;

fn view(ids: &[usize], version: u64) -> View {
    let mut v = View::with_capacity(8);
    v.version = version;
    v.members.extend(ids.iter().map(|&i| member_of(i, 1)));
    v
}

fn pid(i: usize) -> ProcessId {
    member_of(i, 1).id
}

/// FNV-1a (64 bits), the reference the digest is specified by.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[test]
fn digest_is_fnv1a_of_version_and_members() {
    // The reference against the published FNV-1a test vectors.
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    let v = view(&[0, 1, 2], 7);
    let mut bytes = 7u64.to_le_bytes().to_vec();
    for m in &v.members {
        bytes.extend_from_slice(m.id.node.as_bytes());
        bytes.extend_from_slice(&m.id.incarnation.to_le_bytes());
    }
    assert_eq!(v.digest(), fnv1a(&bytes));
    // Version, members and order all count.
    assert_ne!(v.digest(), view(&[0, 1, 2], 8).digest());
    assert_ne!(v.digest(), view(&[0, 2, 1], 7).digest());
    assert_ne!(v.digest(), view(&[0, 1], 7).digest());
}

#[test]
fn lookups_find_the_member_at_its_rank() {
    let v = view(&[3, 1, 2], 1);
    assert_eq!(v.len(), 3);
    assert!(!v.is_empty());
    assert!(View::with_capacity(4).is_empty());
    assert_eq!(v.index_of(pid(3)), Some(0));
    assert_eq!(v.index_of(pid(2)), Some(2));
    assert_eq!(v.index_of(pid(9)), None);
    assert!(v.contains(pid(1)));
    assert!(!v.contains(pid(9)));
    assert_eq!(v.member(pid(2)), Some(&member_of(2, 1)));
    assert_eq!(v.member(pid(9)), None);
    let n2 = member_of(2, 5).id.node;
    assert_eq!(v.index_of_node(n2), Some(2), "any incarnation");
    assert_eq!(v.index_of_node(member_of(9, 1).id.node), None);
    assert_eq!(v.index_of_node(member_of(3, 1).id.node), Some(0));
}

#[test]
fn majority_is_more_than_half() {
    for (n, maj) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)] {
        let ids: Vec<usize> = (0..n).collect();
        assert_eq!(view(&ids, 1).majority(), maj, "n = {n}");
    }
}

#[test]
fn copies_and_clones_are_equal_and_reuse_the_buffer() {
    let v = view(&[0, 1, 2], 4);
    let mut w = View::with_capacity(8);
    w.copy_from(&v);
    assert_eq!(w, v);
    let mut x = view(&[5], 9);
    let buf = x.members.as_ptr();
    x.clone_from(&v);
    assert_eq!(x, v);
    assert_eq!(
        x.members.as_ptr(),
        buf,
        "clone_from keeps the preallocated buffer"
    );
    assert_eq!(v.clone(), v);
}

#[test]
fn apply_adds_a_member_once_and_removes_only_the_removed() {
    let mut v = view(&[0, 1, 2], 1);
    let mut u = Update::with_capacity(4);
    u.removes.push(pid(1));
    u.adds.push(member_of(2, 1)); // already a member: not added twice
    u.adds.push(member_of(3, 1));
    v.apply(&u, 2);
    assert_eq!(v, view(&[0, 2, 3], 2));
}

#[test]
fn update_emptiness_and_core_changes() {
    let cl = ClientOp::add(
        ProcessId::named("c", 1),
        "127.0.0.1:9".parse().unwrap(),
        true,
    );
    assert_eq!(cl.kind, ClientOpKind::Add);
    assert_eq!(cl.id, ProcessId::named("c", 1));
    assert!(cl.core_eligible);
    let gone = ClientOp::remove(ProcessId::named("c", 1));
    assert_eq!(gone.kind, ClientOpKind::Remove);
    assert_eq!(gone.id, ProcessId::named("c", 1));
    assert!(!gone.core_eligible);

    let empty = Update::with_limits(2, 2);
    assert!(empty.is_empty());
    assert!(!empty.changes_core());
    let mut removes = Update::with_capacity(2);
    removes.removes.push(pid(1));
    let mut adds = Update::with_capacity(2);
    adds.adds.push(member_of(1, 1));
    let mut clients = Update::with_limits(2, 2);
    clients.clients.push(cl);
    for (u, core) in [(&removes, true), (&adds, true), (&clients, false)] {
        assert!(!u.is_empty(), "{u:?}");
        assert_eq!(u.changes_core(), core, "{u:?}");
    }
    let mut u = removes.clone();
    u.adds.push(member_of(2, 1));
    u.clients.push(cl);
    u.clear();
    assert!(u.is_empty());
}

#[test]
fn constructors_preallocate_what_they_promise() {
    let u = Update::with_capacity(5);
    assert!(u.removes.capacity() >= 5 && u.adds.capacity() >= 5);
    let u = Update::with_limits(3, 7);
    assert!(u.removes.capacity() >= 3 && u.adds.capacity() >= 3);
    assert!(u.clients.capacity() >= 7);
    let p = Proposal::with_limits(3, 7);
    assert!(p.update.adds.capacity() >= 3 && p.update.clients.capacity() >= 7);
    assert!(View::with_capacity(6).members.capacity() >= 6);
}

#[test]
fn copy_from_copies_every_field() {
    let cl = ClientOp::remove(ProcessId::named("c", 1));
    let mut u = Update::with_limits(4, 4);
    u.removes.push(pid(1));
    u.adds.push(member_of(2, 1));
    u.clients.push(cl);
    let mut w = Update::with_limits(4, 4);
    w.removes.push(pid(7));
    w.copy_from(&u);
    assert_eq!(w, u);
    let p = Proposal {
        update: u.clone(),
        version: 9,
        initiator: pid(3),
        initiator_index: 2,
    };
    let mut q = Proposal::with_limits(4, 4);
    q.copy_from(&p);
    assert_eq!(q, p);
}

#[test]
fn same_as_compares_each_part() {
    let mut a = Update::with_limits(4, 4);
    a.removes.extend([pid(1), pid(2)]);
    a.adds.extend([member_of(3, 1), member_of(4, 1)]);
    let mut b = a.clone();
    assert!(a.same_as(&b));
    b.adds.reverse();
    b.removes.reverse();
    assert!(a.same_as(&b), "order of removes and adds does not matter");
    // Same lengths, other removes.
    let mut c = a.clone();
    c.removes[0] = pid(5);
    assert!(!a.same_as(&c) && !c.same_as(&a));
    // Same lengths, other adds.
    let mut c = a.clone();
    c.adds[0] = member_of(5, 1);
    assert!(!a.same_as(&c) && !c.same_as(&a));
    // One more remove, or one more add.
    let mut c = a.clone();
    c.removes.push(pid(6));
    assert!(!a.same_as(&c) && !c.same_as(&a));
    let mut c = a.clone();
    c.adds.push(member_of(6, 1));
    assert!(!a.same_as(&c) && !c.same_as(&a));
    // Client changes: same ones in another order differ.
    let (x, y) = (
        ClientOp::remove(ProcessId::named("x", 1)),
        ClientOp::remove(ProcessId::named("y", 1)),
    );
    let mut c = a.clone();
    let mut d = a.clone();
    c.clients.extend([x, y]);
    d.clients.extend([y, x]);
    assert!(!c.same_as(&d));
    d.clients.reverse();
    assert!(c.same_as(&d));
}

/// Catches `m.id == p` -> `!=` in `View::apply`'s retain of the tag table (`view.rs`):
/// a removed member's tags leave the view with it, and the tags of the members that
/// stay are kept, in a view of one too.
#[test]
fn apply_drops_the_tags_of_removed_members_only() {
    let tags = |v: &str| {
        let mut s = crate::tags::TagSet::new();
        s.insert("k", v).unwrap();
        s.encode()
    };
    let mut v = View::with_tags(8, 64);
    v.version = 1;
    v.members.extend([0, 1, 2].map(|i| member_of(i, 1)));
    v.tags.set(pid(0), &tags("a"));
    v.tags.set(pid(1), &tags("b"));
    let mut u = Update::with_tag_limits(8, 0, 64);
    u.removes.push(pid(1));
    v.apply(&u, 2);
    assert!(v.tags.get(pid(1)).is_none(), "n1's tags left with it");
    assert_eq!(v.tags.len(), 1);
    u.removes[0] = pid(2);
    v.apply(&u, 3);
    assert_eq!(v.members, [member_of(0, 1)]);
    assert_eq!(
        v.tags_of(pid(0)).get("k"),
        Some("a"),
        "the last member keeps its tags"
    );
}

/// Catches `delete !` in `View::digest` (`view.rs`): the tags of a member that has
/// some count in the digest (their bytes follow its incarnation), so views that differ
/// only in tags differ in digest; a member without tags adds nothing.
#[test]
fn digest_covers_the_tags_of_tagged_members() {
    let mut v = View::with_tags(8, 64);
    v.version = 7;
    v.members.extend([0, 1].map(|i| member_of(i, 1)));
    let tagless = v.digest();
    assert_eq!(tagless, view(&[0, 1], 7).digest());
    let mut s = crate::tags::TagSet::new();
    s.insert("k", "a").unwrap();
    let t = s.encode();
    v.tags.set(pid(1), &t);
    let mut bytes = 7u64.to_le_bytes().to_vec();
    for m in &v.members {
        bytes.extend_from_slice(m.id.node.as_bytes());
        bytes.extend_from_slice(&m.id.incarnation.to_le_bytes());
    }
    bytes.extend_from_slice(&t);
    assert_eq!(v.digest(), fnv1a(&bytes));
    assert_ne!(v.digest(), tagless);
}
