//! Unit tests of `recovery.rs` written for mutation testing (`make mutants-recovery`):
//! each pins one rule of D23's recovery — the acceptor's promise and acceptance, the
//! learning rule, the round timer, the leader's phases and the decision — that the
//! node's tests over real sockets would not notice the loss of (docs/VERIFICATION.md,
//! "Mutation testing").

use super::tests::{addr, pid, view};
use super::*;

/// The round of every recovery here: 10 ms.
const ROUND: u64 = 10_000;

/// View `version` of the first incarnations of n1..nk.
fn first(version: u64, k: usize) -> View {
    let ids: Vec<ProcessId> = (1..=k).map(|i| pid(i, 1)).collect();
    view(version, &ids)
}

/// The durable state of node `i` that installed `x`.
fn disk(i: usize, x: &View) -> Durable {
    let mut d = Durable::fresh(&format!("n{i}"), 2);
    d.view = x.clone();
    d
}

fn t0() -> Time {
    Time::from_millis(1_000)
}

/// Everything queued, in order.
fn drain(r: &mut Recovery) -> Vec<(ProcessId, SocketAddr, RecoveryMsg)> {
    std::iter::from_fn(|| r.poll_out()).collect()
}

/// Everything queued but the round's `State`s.
fn drain_phases(r: &mut Recovery) -> Vec<(ProcessId, SocketAddr, RecoveryMsg)> {
    drain(r)
        .into_iter()
        .filter(|(_, _, m)| !matches!(m, RecoveryMsg::State { .. }))
        .collect()
}

/// The ballot rounds of the `Prepare`s queued.
fn prepare_rounds(r: &mut Recovery) -> Vec<u64> {
    drain(r)
        .into_iter()
        .filter_map(|(_, _, m)| match m {
            RecoveryMsg::Prepare { ballot, .. } => Some(ballot.round),
            _ => None,
        })
        .collect()
}

/// Phase 1b: an acceptor promises a ballot for the version after its installed one
/// when it promised nothing higher, saves a higher promise before answering, and
/// answers with its acceptance for that version; anything else is refused with its
/// promise and installed version.
#[test]
fn an_acceptor_promises_the_next_version_at_a_ballot_not_below_its_promise() {
    let x = first(4, 3);
    let mut d = disk(2, &x);
    let now = t0();
    let mut r = Recovery::new(pid(2, 2), addr(2), ROUND, now, &d);
    assert!(!r.take_dirty(), "nothing changed yet");
    let leader = pid(1, 2);
    let ask = |r: &mut Recovery, d: &mut Durable, version: u64, ballot: Ballot| {
        r.on_message(
            now,
            leader,
            addr(1),
            RecoveryMsg::Prepare { version, ballot },
            d,
        );
        let mut out = drain(r);
        assert_eq!(out.len(), 1, "one answer to the leader");
        let (to, at, m) = out.pop().unwrap();
        assert_eq!((to, at), (leader, addr(1)));
        m
    };
    let b2 = Ballot::recovery(2, 0);
    let promise = |ballot, accepted| RecoveryMsg::Promise {
        version: 5,
        ballot,
        accepted,
    };
    assert_eq!(ask(&mut r, &mut d, 5, b2), promise(b2, None));
    assert_eq!(d.promised, b2);
    assert!(r.take_dirty(), "the promise is saved before it leaves");
    assert!(!r.take_dirty(), "and only once");
    // The same ballot again: promised again, nothing new to save.
    assert_eq!(ask(&mut r, &mut d, 5, b2), promise(b2, None));
    assert!(!r.take_dirty());
    // A lower ballot, or another version even at a higher ballot: refused.
    let nack = |version| RecoveryMsg::Nack {
        version,
        promised: b2,
        installed: 4,
    };
    assert_eq!(ask(&mut r, &mut d, 5, Ballot::recovery(1, 2)), nack(5));
    assert_eq!(ask(&mut r, &mut d, 6, Ballot::recovery(3, 0)), nack(6));
    assert_eq!(ask(&mut r, &mut d, 4, Ballot::recovery(3, 0)), nack(4));
    assert_eq!(d.promised, b2);
    assert!(!r.take_dirty());
    // A higher ballot: promised and saved, with the acceptance for version 5.
    let acc = Accepted {
        ballot: Ballot::sgmp(1),
        view: view(5, &[pid(2, 1), pid(3, 1)]),
    };
    d.accepted = Some(acc.clone());
    let b3 = Ballot::recovery(3, 0);
    assert_eq!(ask(&mut r, &mut d, 5, b3), promise(b3, Some(acc)));
    assert_eq!(d.promised, b3);
    assert!(r.take_dirty());
}

/// Phase 2b: an acceptor accepts (and saves) a view of the version after its installed
/// one at a ballot not below its promise; a lower ballot, another version, or a view
/// whose own version is not the one asked about is refused, and nothing is saved.
#[test]
fn an_acceptor_accepts_only_a_view_of_the_next_version_at_a_ballot_not_below_its_promise() {
    let x = first(4, 3);
    let mut d = disk(2, &x);
    let b2 = Ballot::recovery(2, 0);
    d.promised = b2;
    let now = t0();
    let mut r = Recovery::new(pid(2, 2), addr(2), ROUND, now, &d);
    let leader = pid(1, 2);
    let send = |r: &mut Recovery, d: &mut Durable, version, ballot, view: &View| {
        let view = view.clone();
        let m = RecoveryMsg::Accept {
            version,
            ballot,
            view,
        };
        r.on_message(now, leader, addr(1), m, d);
        let mut out = drain(r);
        assert_eq!(out.len(), 1, "one answer to the leader");
        let (to, at, m) = out.pop().unwrap();
        assert_eq!((to, at), (leader, addr(1)));
        m
    };
    let v5 = view(5, &[pid(1, 2), pid(2, 2)]);
    let v6 = view(6, &[pid(1, 2), pid(2, 2)]);
    let nack = |version| RecoveryMsg::Nack {
        version,
        promised: b2,
        installed: 4,
    };
    let b3 = Ballot::recovery(3, 0);
    assert_eq!(
        send(&mut r, &mut d, 5, Ballot::recovery(1, 1), &v5),
        nack(5)
    );
    assert_eq!(
        send(&mut r, &mut d, 6, b3, &v6),
        nack(6),
        "not the next version"
    );
    assert_eq!(
        send(&mut r, &mut d, 5, b3, &v6),
        nack(5),
        "a view of version 6"
    );
    assert_eq!(d.accepted, None);
    assert_eq!(d.promised, b2);
    assert!(!r.take_dirty());
    // At the promised ballot.
    let accepted = |ballot| RecoveryMsg::Accepted { version: 5, ballot };
    assert_eq!(send(&mut r, &mut d, 5, b2, &v5), accepted(b2));
    assert_eq!(
        d.accepted,
        Some(Accepted {
            ballot: b2,
            view: v5.clone()
        })
    );
    assert!(r.take_dirty(), "the acceptance is saved before it leaves");
    // At a higher one: the promise follows.
    let v5b = view(5, &[pid(2, 2), pid(3, 2)]);
    assert_eq!(send(&mut r, &mut d, 5, b3, &v5b), accepted(b3));
    assert_eq!(d.promised, b3);
    assert_eq!(
        d.accepted,
        Some(Accepted {
            ballot: b3,
            view: v5b
        })
    );
    assert!(r.take_dirty());
}

/// Step 1: a `State` with a newer installed view is adopted (it is decided), saved, and
/// becomes the view the recovery works from; an older one changes nothing.
#[test]
fn a_state_with_a_newer_view_is_adopted_saved_and_recovered_from() {
    let x = first(4, 3);
    let mut d = disk(1, &x);
    let now = t0();
    let mut r = Recovery::new(pid(1, 2), addr(1), ROUND, now, &d);
    let state = |view| RecoveryMsg::State {
        view,
        accepted: None,
    };
    r.on_message(now, pid(2, 2), addr(2), state(first(3, 3)), &mut d);
    assert_eq!(d.view, x);
    assert!(!r.take_dirty());
    assert_eq!(r.status(now, &d).target, 4);
    let x6 = first(6, 4);
    r.on_message(now, pid(2, 2), addr(2), state(x6.clone()), &mut d);
    assert_eq!(d.view, x6);
    assert!(r.take_dirty(), "the adopted view is saved");
    let s = r.status(now, &d);
    assert_eq!((s.installed, s.target, s.need), (6, 6, 3));
    assert_eq!(s.recovering, vec!["n1".to_string(), "n2".to_string()]);
}

/// D23 *Learning*: an S-GMP view x+1 accepted at one ballot by half the names of x
/// (two of three) is decided and adopted — from two peers' `State`s, or from this
/// process's own durable acceptance and one peer's (counted under the sender's name,
/// not another recovering process's). A recovery's acceptances are not learned: a
/// recovery decides its own values with a majority.
#[test]
fn a_chosen_sgmp_view_is_learned_from_the_acceptances_of_half_the_names() {
    let x = first(4, 3);
    let v5 = view(5, &[pid(2, 1), pid(3, 1)]);
    let now = t0();
    let state = |accepted: &Accepted| RecoveryMsg::State {
        view: x.clone(),
        accepted: Some(accepted.clone()),
    };
    let sgmp = Accepted {
        ballot: Ballot::sgmp(1),
        view: v5.clone(),
    };
    // Two peers.
    let mut d = disk(1, &x);
    let mut r = Recovery::new(pid(1, 2), addr(1), ROUND, now, &d);
    r.on_message(now, pid(2, 2), addr(2), state(&sgmp), &mut d);
    assert_eq!(d.view, x, "one name of three is not enough");
    r.on_message(now, pid(3, 2), addr(3), state(&sgmp), &mut d);
    assert_eq!(d.view, v5);
    assert!(r.take_dirty());
    assert_eq!(r.status(now, &d).target, 5);
    // Its own acceptance and one peer's; n4 (not a name of x) heard first.
    let mut d = disk(1, &x);
    d.accepted = Some(sgmp.clone());
    let mut r = Recovery::new(pid(1, 2), addr(1), ROUND, now, &d);
    r.on_peer(now, pid(4, 1), addr(4));
    r.on_message(now, pid(2, 2), addr(2), state(&sgmp), &mut d);
    assert_eq!(d.view, v5);
    // A recovery's acceptances by two names, on a message and on the round timer.
    let rec = Accepted {
        ballot: Ballot::recovery(1, 1),
        view: v5.clone(),
    };
    let mut d = disk(1, &x);
    let mut r = Recovery::new(pid(1, 2), addr(1), ROUND, now, &d);
    for j in 2..=3 {
        r.on_message(now, pid(j, 2), addr(j), state(&rec), &mut d);
    }
    r.on_timeout(now, &mut d);
    assert_eq!(d.view, x);
}

/// `status`: the names of the target view heard in the last three rounds (this
/// process's own always), the others as waited for, and a majority of the view's names
/// as the need (3 of 4).
#[test]
fn status_counts_the_names_heard_in_the_last_three_rounds_against_a_majority() {
    let x = first(4, 4);
    let d = disk(2, &x);
    let start = t0();
    let mut r = Recovery::new(pid(2, 2), addr(2), ROUND, start, &d);
    let now = start + 3 * ROUND;
    r.on_peer(start, pid(1, 2), addr(1)); // exactly three rounds ago
    r.on_peer(Time(start.0 - 1), pid(3, 2), addr(3)); // a microsecond more
    r.on_peer(now, pid(4, 2), addr(4));
    r.on_peer(now, pid(5, 1), addr(5)); // not a name of x
    let s = r.status(now, &d);
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        s,
        RecoveryStatus {
            installed: 4,
            target: 4,
            recovering: names(&["n1", "n2", "n4"]),
            waiting_for: names(&["n3"]),
            need: 3,
            leading: false,
        }
    );
    let d3 = disk(2, &first(4, 3));
    let r3 = Recovery::new(pid(2, 2), addr(2), ROUND, start, &d3);
    assert_eq!(r3.status(start, &d3).need, 2);
}

/// The round timer runs at its deadline, not before, and then once a round: each round
/// it sends this process's installed view and its acceptance for the next version to
/// every peer heard in the last ten rounds.
#[test]
fn the_round_timer_sends_the_state_each_round_to_the_peers_heard_in_the_last_ten_rounds() {
    let x = first(4, 3);
    let mut d = disk(3, &x);
    let acc = Accepted {
        ballot: Ballot::sgmp(0),
        view: view(5, &[pid(2, 1), pid(3, 1)]),
    };
    d.accepted = Some(acc.clone());
    let start = t0();
    let mut r = Recovery::new(pid(3, 2), addr(3), ROUND, start, &d);
    assert_eq!(r.deadline(), start);
    r.on_peer(Time(start.0 - 10 * ROUND - 1), pid(1, 2), addr(1));
    r.on_peer(Time(start.0 - 10 * ROUND), pid(2, 2), addr(2));
    r.on_timeout(Time(start.0 - 1), &mut d);
    assert!(drain(&mut r).is_empty(), "before the deadline");
    r.on_timeout(start, &mut d);
    let state = RecoveryMsg::State {
        view: x.clone(),
        accepted: Some(acc),
    };
    assert_eq!(drain(&mut r), vec![(pid(2, 2), addr(2), state)]);
    assert_eq!(r.deadline(), start + ROUND);
    r.on_timeout(Time(start.0 + ROUND - 1), &mut d);
    assert!(drain(&mut r).is_empty(), "one round at a time");
    r.on_timeout(start + ROUND, &mut d);
    assert!(drain(&mut r).is_empty(), "n2 was heard eleven rounds ago");
    assert_eq!(r.deadline(), start + 2 * ROUND);
}

/// A peer is known by the newest incarnation of its name heard (with its address); an
/// older incarnation's message changes nothing, the same incarnation's refreshes it,
/// and this process is never its own peer.
#[test]
fn a_peer_is_the_newest_incarnation_of_its_name_heard() {
    let x = first(4, 3);
    let mut d = disk(3, &x);
    let start = t0();
    let mut r = Recovery::new(pid(3, 2), addr(3), ROUND, start, &d);
    r.on_peer(start, pid(3, 2), addr(3));
    r.on_peer(start, pid(2, 3), addr(2));
    r.on_peer(start, pid(2, 2), addr(9));
    r.on_timeout(start, &mut d);
    let to: Vec<_> = drain(&mut r).into_iter().map(|(p, a, _)| (p, a)).collect();
    assert_eq!(to, vec![(pid(2, 3), addr(2))]);
    // Heard again five rounds later: still a peer seven rounds after that.
    r.on_peer(start + 5 * ROUND, pid(2, 3), addr(2));
    r.on_timeout(start + 12 * ROUND, &mut d);
    let to: Vec<_> = drain(&mut r).into_iter().map(|(p, a, _)| (p, a)).collect();
    assert_eq!(to, vec![(pid(2, 3), addr(2))]);
    // A newer incarnation replaces it, at its own address.
    r.on_peer(start + 13 * ROUND, pid(2, 4), addr(8));
    r.on_timeout(start + 13 * ROUND, &mut d);
    let to: Vec<_> = drain(&mut r).into_iter().map(|(p, a, _)| (p, a)).collect();
    assert_eq!(to, vec![(pid(2, 4), addr(8))]);
}

/// Steps 2-4 with five names: the most senior leads at recovery ballot (1, its index)
/// for version x+1, sends `Prepare` to the other recovering names and, each round, again
/// to those that did not promise. A promise counts once per name and only for its
/// version and ballot. With three promises (its own included) and no acceptance among
/// them it proposes the view of the current processes of the names that promised, in
/// x's order, asks only those, accepts it itself, resends `Accept` to those that did
/// not accept; an acceptance counts once per name and only for its version and ballot;
/// a late promise changes nothing. With three acceptances the view is decided:
/// `Decide` to every peer, and the leader (in it) is a member of it, removing nobody
/// itself.
#[test]
fn a_leader_proposes_the_view_of_the_names_that_promised_and_decides_it_with_a_majority() {
    let x = first(4, 5);
    let mut d = disk(1, &x);
    let start = t0();
    let mut r = Recovery::new(pid(1, 2), addr(1), ROUND, start, &d);
    for j in 2..=5 {
        r.on_peer(start, pid(j, 2), addr(j));
    }
    r.on_timeout(start, &mut d);
    let b = Ballot::recovery(1, 0);
    let prepare = RecoveryMsg::Prepare {
        version: 5,
        ballot: b,
    };
    let to = |js: &[usize], m: &RecoveryMsg| -> Vec<(ProcessId, SocketAddr, RecoveryMsg)> {
        js.iter()
            .map(|&j| (pid(j, 2), addr(j), m.clone()))
            .collect()
    };
    assert_eq!(drain_phases(&mut r), to(&[2, 3, 4, 5], &prepare));
    assert_eq!(d.promised, b, "the leader promised its own ballot");
    assert!(r.take_dirty());
    assert!(r.status(start, &d).leading);
    let promise = |version, ballot| RecoveryMsg::Promise {
        version,
        ballot,
        accepted: None,
    };
    let reply = |r: &mut Recovery, d: &mut Durable, j: usize, m: RecoveryMsg| {
        r.on_message(start, pid(j, 2), addr(j), m, d);
    };
    reply(&mut r, &mut d, 2, promise(5, b));
    reply(&mut r, &mut d, 2, promise(5, b));
    reply(&mut r, &mut d, 3, promise(5, Ballot::recovery(1, 1)));
    reply(&mut r, &mut d, 4, promise(6, b));
    assert!(drain(&mut r).is_empty(), "two names promised");
    r.on_timeout(start + ROUND, &mut d);
    assert_eq!(drain_phases(&mut r), to(&[3, 4, 5], &prepare));
    reply(&mut r, &mut d, 4, promise(5, b));
    let v5 = view(5, &[pid(1, 2), pid(2, 2), pid(4, 2)]);
    let accept = RecoveryMsg::Accept {
        version: 5,
        ballot: b,
        view: v5.clone(),
    };
    assert_eq!(drain(&mut r), to(&[2, 4], &accept));
    assert_eq!(
        d.accepted,
        Some(Accepted {
            ballot: b,
            view: v5.clone()
        })
    );
    reply(&mut r, &mut d, 3, promise(5, b));
    let accepted = |version, ballot| RecoveryMsg::Accepted { version, ballot };
    reply(&mut r, &mut d, 2, accepted(5, Ballot::recovery(1, 1)));
    reply(&mut r, &mut d, 4, accepted(6, b));
    reply(&mut r, &mut d, 2, accepted(5, b));
    reply(&mut r, &mut d, 2, accepted(5, b));
    assert!(drain(&mut r).is_empty(), "two names accepted");
    assert!(r.take_decided().is_none());
    r.on_timeout(start + 2 * ROUND, &mut d);
    assert_eq!(drain_phases(&mut r), to(&[4], &accept));
    reply(&mut r, &mut d, 4, accepted(5, b));
    let decide = RecoveryMsg::Decide { view: v5.clone() };
    assert_eq!(drain(&mut r), to(&[2, 3, 4, 5], &decide));
    assert_eq!(d.view, v5);
    assert_eq!(r.take_decided(), Some((x, v5)));
    assert_eq!(r.take_decided(), None);
    assert!(r.take_removed_by_decision().is_empty());
    assert!(!r.status(start, &d).leading);
}

/// Step 2's conditions: a recovering process leads only once a majority of the names
/// of its view is recovering (itself included), and only if it is the most senior of
/// them.
#[test]
fn only_the_most_senior_of_a_majority_of_names_leads() {
    let x = first(4, 3);
    let start = t0();
    let mut d = disk(1, &x);
    let mut r = Recovery::new(pid(1, 2), addr(1), ROUND, start, &d);
    r.on_timeout(start, &mut d);
    assert!(drain(&mut r).is_empty());
    assert!(!r.status(start, &d).leading, "one name of three");
    r.on_peer(start, pid(2, 2), addr(2));
    r.on_timeout(start + ROUND, &mut d);
    let prepare = RecoveryMsg::Prepare {
        version: 5,
        ballot: Ballot::recovery(1, 0),
    };
    assert_eq!(drain_phases(&mut r), vec![(pid(2, 2), addr(2), prepare)]);
    assert!(r.status(start + ROUND, &d).leading, "two names of three");
    // n2, with n1 recovering, does not lead.
    let mut d2 = disk(2, &x);
    let mut r2 = Recovery::new(pid(2, 2), addr(2), ROUND, start, &d2);
    r2.on_peer(start, pid(1, 2), addr(1));
    r2.on_peer(start, pid(3, 2), addr(3));
    r2.on_timeout(start, &mut d2);
    assert!(drain_phases(&mut r2).is_empty());
    assert!(!r2.status(start, &d2).leading);
}

/// A leader whose attempt got nowhere for more than four rounds starts a new one at a
/// higher ballot; a `Nack` for its version with a promise above its ballot ends the
/// attempt at once, and the next one outbids that promise; a `Nack` for another version
/// or with a promise not above its ballot changes nothing.
#[test]
fn a_leader_starts_over_after_four_rounds_or_a_higher_promise() {
    let x = first(4, 3);
    let start = t0();
    let mut d = disk(1, &x);
    let mut r = Recovery::new(pid(1, 2), addr(1), ROUND, start, &d);
    let mut rounds = Vec::new();
    for k in 0..=5 {
        let now = start + k * ROUND;
        r.on_peer(now, pid(2, 2), addr(2));
        r.on_peer(now, pid(3, 2), addr(3));
        r.on_timeout(now, &mut d);
        rounds.push(prepare_rounds(&mut r));
    }
    let twice = |n| vec![n, n];
    assert_eq!(
        rounds,
        vec![twice(1), twice(1), twice(1), twice(1), twice(1), twice(2)]
    );
    let now = start + 5 * ROUND;
    let nack = |version, promised| RecoveryMsg::Nack {
        version,
        promised,
        installed: 4,
    };
    for m in [
        nack(5, Ballot::recovery(2, 0)),
        nack(6, Ballot::recovery(7, 1)),
        nack(5, Ballot::recovery(1, 2)),
    ] {
        r.on_message(now, pid(2, 2), addr(2), m, &mut d);
        assert!(r.status(now, &d).leading);
    }
    r.on_timeout(start + 6 * ROUND, &mut d);
    assert_eq!(prepare_rounds(&mut r), twice(2), "the same attempt");
    r.on_message(
        now,
        pid(2, 2),
        addr(2),
        nack(5, Ballot::recovery(7, 1)),
        &mut d,
    );
    assert!(!r.status(now, &d).leading);
    r.on_peer(start + 7 * ROUND, pid(2, 2), addr(2));
    r.on_peer(start + 7 * ROUND, pid(3, 2), addr(3));
    r.on_timeout(start + 7 * ROUND, &mut d);
    assert_eq!(prepare_rounds(&mut r), twice(8));
}

/// A `Decide` is adopted; it makes this process a member (`take_decided`, with the view
/// it follows) only if the decided view holds it and is the one now installed — not a
/// view without it, nor an older view that holds it.
#[test]
fn a_decide_makes_a_member_only_of_the_installed_view_that_holds_it() {
    let x = first(4, 3);
    let now = t0();
    let mut d = disk(2, &x);
    let mut r = Recovery::new(pid(2, 2), addr(2), ROUND, now, &d);
    let decide = |view| RecoveryMsg::Decide { view };
    let v5 = view(5, &[pid(1, 2), pid(3, 2)]);
    r.on_message(now, pid(1, 2), addr(1), decide(v5.clone()), &mut d);
    assert_eq!(d.view, v5);
    assert!(r.take_dirty());
    assert_eq!(r.take_decided(), None, "n2 is not in view 5");
    let old = view(4, &[pid(1, 2), pid(2, 2)]);
    r.on_message(now, pid(1, 2), addr(1), decide(old), &mut d);
    assert_eq!(d.view, v5);
    assert_eq!(r.take_decided(), None, "an older view");
    let v6 = view(6, &[pid(1, 2), pid(2, 2), pid(3, 2)]);
    r.on_message(now, pid(1, 2), addr(1), decide(v6.clone()), &mut d);
    assert_eq!(d.view, v6);
    assert_eq!(r.take_decided(), Some((v5, v6)));
}

/// A `Decide` of the view already installed (a late duplicate: this process adopted
/// that view from a `State` first) changes nothing: the attempt the leader is making
/// for the next version goes on, and its next round resends the same ballot rather
/// than starting over at a higher one.
#[test]
fn a_decide_of_the_installed_view_does_not_end_the_current_attempt() {
    let x = first(4, 3);
    let start = t0();
    let mut d = disk(1, &x);
    let mut r = Recovery::new(pid(1, 2), addr(1), ROUND, start, &d);
    r.on_peer(start, pid(2, 2), addr(2));
    r.on_peer(start, pid(3, 2), addr(3));
    r.on_timeout(start, &mut d);
    assert_eq!(prepare_rounds(&mut r), vec![1, 1]);
    let decide = RecoveryMsg::Decide { view: x.clone() };
    r.on_message(start, pid(2, 2), addr(2), decide, &mut d);
    assert_eq!(d.view, x);
    assert!(r.status(start, &d).leading);
    assert_eq!(r.take_decided(), None);
    r.on_peer(start + ROUND, pid(3, 2), addr(3));
    r.on_timeout(start + ROUND, &mut d);
    assert_eq!(prepare_rounds(&mut r), vec![1, 1]);
}
