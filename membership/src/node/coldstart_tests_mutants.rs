//! Unit tests of `coldstart.rs` written for mutation testing (`make mutants-recovery`):
//! the probe framing, the contact-list bound, and discovery's round timer and its
//! two-round memory of rivals and recovering processes, which the node's tests over
//! real sockets would not notice the loss of (docs/VERIFICATION.md, "Mutation
//! testing").

use super::tests::m;
use super::*;

/// A probe with another leading byte, or another format version, is not a discovery
/// probe, whichever of the two is wrong.
#[test]
fn a_probe_of_another_magic_or_format_version_is_refused() {
    let mut b = Vec::new();
    Probe::Query { cold: true }.encode(&mut b);
    assert_eq!(Probe::decode(&b), Some(Probe::Query { cold: true }));
    let mut other_magic = b.clone();
    other_magic[0] ^= 0xFF;
    assert_eq!(Probe::decode(&other_magic), None);
    let mut other_version = b.clone();
    other_version[1] += 1;
    assert_eq!(Probe::decode(&other_version), None);
}

/// A contact list carries at most `MAX_CONTACTS` members: a full list round-trips,
/// a longer one is cut to its first `MAX_CONTACTS`, and a count above the bound is
/// malformed.
#[test]
fn a_contact_list_holds_at_most_max_contacts() {
    let contacts: Vec<Member> = (0..=MAX_CONTACTS)
        .map(|i| m(&format!("c{i}"), 1, 100 + i as u16))
        .collect();
    let member = |n: usize| Probe::Member {
        version: 3,
        contacts: contacts[..n].to_vec(),
    };
    let mut full = Vec::new();
    member(MAX_CONTACTS).encode(&mut full);
    assert_eq!(Probe::decode(&full), Some(member(MAX_CONTACTS)));
    let mut b = Vec::new();
    member(MAX_CONTACTS + 1).encode(&mut b);
    assert_eq!(b, full, "the extra contact is dropped");
    // By hand: a count of MAX_CONTACTS + 1 and as many members.
    let count_at = 3 + 8;
    assert_eq!(full[count_at] as usize, MAX_CONTACTS);
    let mut over = full.clone();
    over[count_at] += 1;
    put_member(&mut over, &contacts[MAX_CONTACTS]);
    assert_eq!(Probe::decode(&over), None);
}

/// The round timer: the first round begins at the start time (not before), each
/// deadline one round after the last round began, a call before it waits, and every
/// quiet round is counted (`round`) until `rounds` of them found the group.
#[test]
fn discovery_runs_one_round_per_deadline_and_counts_the_quiet_ones() {
    let a = ProcessId::named("a", 1);
    let mut d = Discovery::new(a, true, true, 3, 100, Time(50));
    assert!(d.is_cold());
    assert!(!Discovery::new(a, false, true, 3, 100, Time(50)).is_cold());
    assert_eq!(d.deadline(), Time(50));
    assert_eq!(d.on_timeout(Time(49)), Decision::Wait);
    assert_eq!(d.on_timeout(Time(50)), Decision::Query);
    assert_eq!(d.deadline(), Time(150));
    assert_eq!(d.round(), 0);
    assert_eq!(d.on_timeout(Time(100)), Decision::Wait);
    assert_eq!(d.on_timeout(Time(150)), Decision::Query);
    assert_eq!(d.round(), 1);
    assert_eq!(d.on_timeout(Time(250)), Decision::Query);
    assert_eq!(d.round(), 2);
    assert_eq!(d.on_timeout(Time(350)), Decision::Bootstrap);
}

/// A cold-starting seed heard once counts towards the founding quorum (D29) for two
/// rounds after it was heard, and no longer.
#[test]
fn a_cold_starting_seed_counts_for_two_rounds() {
    let a = ProcessId::named("a", 1);
    let b = ProcessId::named("b", 1);
    let mut d = Discovery::new(a, true, true, 10, 100, Time(0)).with_seed_quorum(2);
    assert_eq!(d.on_timeout(Time(0)), Decision::Query);
    assert_eq!(
        d.on_probe(Time(0), b, &Probe::ColdStarting { round: 0 }),
        Decision::Wait
    );
    let mut quiet = Vec::new();
    for t in [100, 200, 300] {
        assert_eq!(d.on_timeout(Time(t)), Decision::Query);
        quiet.push(d.round());
    }
    assert_eq!(quiet, vec![1, 2, 0]);
}

/// A rival that outranks this process, or a recovering process (D23), holds it back
/// for two rounds after it was heard, and no longer; a query that is not cold is no
/// rival.
#[test]
fn an_outranking_rival_or_a_recovering_process_holds_founding_back_for_two_rounds() {
    let a = ProcessId::named("a", 1);
    let b = ProcessId::named("b", 1);
    let z = ProcessId::named("z", 7);
    let heard = [
        (b, a, Probe::ColdStarting { round: 0 }),
        (b, a, Probe::Query { cold: true }),
        (a, z, Probe::Recovering { version: 3 }),
    ];
    for (me, from, probe) in heard {
        let mut d = Discovery::new(me, true, true, 10, 100, Time(0));
        assert_eq!(d.on_timeout(Time(0)), Decision::Query);
        assert_eq!(d.on_probe(Time(0), from, &probe), Decision::Wait);
        let mut quiet = Vec::new();
        for t in [100, 200, 300] {
            assert_eq!(d.on_timeout(Time(t)), Decision::Query);
            quiet.push(d.round());
        }
        assert_eq!(quiet, vec![0, 0, 1], "{probe:?}");
    }
    // A rival that does not outrank (z), and a query from a rejoining process that
    // would (a): no hold.
    let mut d = Discovery::new(b, true, true, 10, 100, Time(0));
    assert_eq!(d.on_timeout(Time(0)), Decision::Query);
    let _ = d.on_probe(Time(0), z, &Probe::ColdStarting { round: 0 });
    let _ = d.on_probe(Time(0), a, &Probe::Query { cold: false });
    assert_eq!(d.on_timeout(Time(100)), Decision::Query);
    assert_eq!(d.round(), 1);
}

/// A member's answer joins through its contacts, never through this process itself;
/// an answer that names only this process is no way in.
#[test]
fn a_member_answer_joins_through_its_contacts_but_this_process() {
    let me = ProcessId::named("a", 2);
    let mut d = Discovery::new(me, true, true, 3, 100, Time(0));
    let answer = |contacts| Probe::Member {
        version: 4,
        contacts,
    };
    let from = ProcessId::named("b", 1);
    let (mine, b) = (m("a", 2, 1), m("b", 1, 2));
    assert_eq!(
        d.on_probe(Time(0), from, &answer(vec![mine, b])),
        Decision::Join(vec![b])
    );
    assert_eq!(
        d.on_probe(Time(0), from, &answer(vec![mine])),
        Decision::Wait
    );
}
