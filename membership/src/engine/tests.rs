//! Scenario tests of the engine on the in-memory [`Cluster`](crate::testkit::Cluster).

use crate::engine::Event;
use crate::engine::{ExcludeReason, Status};
use crate::testkit::Cluster;
use crate::EngineConfig;
use crate::{ProcessId, Time};

fn cfg() -> EngineConfig {
    EngineConfig {
        max_members: 16,
        max_snapshot: 1024,
        ..EngineConfig::default()
    }
}

#[test]
fn bootstrap_gives_everyone_version_one() {
    let c = Cluster::new(5, 0, cfg());
    assert!(c.agreed());
    assert_eq!(c.engines[3].view().version, 1);
    assert!(c.engines[0].is_mgr());
    assert!(!c.engines[1].is_mgr());
}

#[test]
fn mgr_removes_a_suspected_member() {
    let mut c = Cluster::new(5, 0, cfg());
    c.crash(4);
    c.suspect(0, 4);
    c.run_until_quiet(10_000);
    for i in 0..4 {
        assert_eq!(c.engines[i].view().version, 2, "n{i}");
        assert_eq!(c.view_names(i), ["n0", "n1", "n2", "n3"]);
    }
    c.check_safety().unwrap();
}

#[test]
fn a_removal_by_the_mgr_costs_exactly_m_sub_ack_and_m_com_per_member() {
    // The M-sub gossips the suspicion to the members; they do not send it back to the
    // mgr (its own message told them), so the removal is 3 × (M-sub, ack, M-com).
    let mut c = Cluster::new(5, 0, cfg());
    c.crash(4);
    c.suspect(0, 4);
    let before = c.delivered;
    c.run_until_quiet(10_000);
    assert_eq!(c.delivered - before, 9);
    assert!(c.agreed());
    assert_eq!(c.view_names(1), ["n0", "n1", "n2", "n3"]);
}

#[test]
fn outer_suspicion_reaches_the_mgr_by_gossip() {
    let mut c = Cluster::new(5, 0, cfg());
    c.crash(3);
    c.suspect(2, 3);
    c.run_until_quiet(10_000);
    assert!(c.agreed());
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n4"]);
}

#[test]
fn a_process_joins_with_state_transfer() {
    let mut c = Cluster::new(3, 1, cfg());
    c.engines[0].set_snapshot(b"app-state").unwrap();
    c.join(3, 2);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[3].status(), Status::Member);
    assert_eq!(c.engines[3].received_snapshot(), b"app-state");
    assert!(c.agreed());
    assert_eq!(c.view_names(1), ["n0", "n1", "n2", "n3"]);
    c.check_safety().unwrap();
}

#[test]
fn mgr_crash_leads_to_reconfiguration_by_the_next_in_rank() {
    let mut c = Cluster::new(5, 0, cfg());
    c.crash(0);
    c.advance(3_000_000, 10_000);
    let live: Vec<_> = c.live_members().collect();
    assert_eq!(live, [1, 2, 3, 4]);
    assert!(c.agreed());
    assert_eq!(c.view_names(1), ["n1", "n2", "n3", "n4"]);
    assert!(c.engines[1].is_mgr());
    c.check_safety().unwrap();
}

#[test]
fn mgr_and_next_in_rank_crash_together() {
    let mut c = Cluster::new(5, 0, cfg());
    c.crash(0);
    c.crash(1);
    c.advance(6_000_000, 10_000);
    let live: Vec<_> = c.live_members().collect();
    assert_eq!(live, [2, 3, 4]);
    assert!(c.agreed());
    assert_eq!(c.view_names(2), ["n2", "n3", "n4"]);
    c.check_safety().unwrap();
}

#[test]
fn minority_partition_never_moves_on() {
    let mut c = Cluster::new(5, 0, cfg());
    c.set_cut(&[0, 1], &[2, 3, 4], true);
    // An initiator short of a majority keeps its suspicions to itself while D16 waits
    // (D18), so the minority side takes a few protocol timeouts to stop.
    c.advance(15_000_000, 10_000);
    // The majority side reconfigured around the old mgr and n1.
    for i in [2, 3, 4] {
        assert_eq!(c.engines[i].status(), Status::Member, "n{i}");
        assert_eq!(c.view_names(i), ["n2", "n3", "n4"]);
    }
    // The minority side (old mgr included) is excluded, having installed nothing new.
    for i in [0, 1] {
        assert!(matches!(c.engines[i].status(), Status::Excluded(_)), "n{i}");
        assert_eq!(c.engines[i].view().version, 1);
    }
    c.check_safety().unwrap();
}

#[test]
fn graceful_leave_of_an_outer_member_and_of_the_mgr() {
    let mut c = Cluster::new(4, 0, cfg());
    c.leave(3);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[3].status(), Status::Excluded(ExcludeReason::Left));
    assert_eq!(c.view_names(0), ["n0", "n1", "n2"]);
    c.leave(0);
    c.advance(1_000_000, 10_000);
    assert_eq!(c.view_names(1), ["n1", "n2"]);
    assert!(c.agreed());
    assert!(c.engines[1].is_mgr());
    c.check_safety().unwrap();
}

#[test]
fn a_falsely_suspected_member_learns_it_is_excluded() {
    let mut c = Cluster::new(5, 0, cfg());
    // n0 wrongly suspects n4, which is alive.
    c.suspect(0, 4);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3"]);
    // n4 never received anything more; its own detector makes it try to reconfigure
    // and fail, or gossip tells it; either way it ends excluded.
    c.advance(10_000_000, 10_000);
    assert!(matches!(c.engines[4].status(), Status::Excluded(_)));
    assert_eq!(c.engines[4].view().version, 1);
    c.check_safety().unwrap();
}

#[test]
fn batched_updates_while_one_is_in_flight() {
    let mut c = Cluster::new(7, 0, cfg());
    c.crash(6);
    c.crash(5);
    c.suspect(0, 6);
    // The M-sub(-n6) is in flight; n5's suspicion arrives now and is batched next.
    c.suspect(0, 5);
    c.run_until_quiet(10_000);
    assert!(c.agreed());
    assert_eq!(c.engines[0].view().version, 3);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3", "n4"]);
}

#[test]
fn a_restarted_joiner_replaces_its_older_incarnation() {
    let mut c = Cluster::new(3, 1, cfg());
    c.join(3, 0);
    // Deliver until the mgr has submitted the add of n3#1, then n3 restarts as n3#2
    // and asks again while the first join is in flight.
    while !c.events[0]
        .iter()
        .any(|e| matches!(e, crate::engine::Event::Submitted { .. }))
    {
        assert!(c.deliver_one());
    }
    c.restart(3, 2);
    c.join(3, 1);
    c.advance(5_000_000, 10_000);
    let names: Vec<_> = c.engines[0].view().members.iter().map(|m| m.id).collect();
    let n3: Vec<_> = names.iter().filter(|p| p.node.as_str() == "n3").collect();
    assert_eq!(n3.len(), 1, "one incarnation of n3 in {names:?}");
    assert_eq!(n3[0].incarnation, 2);
    assert_eq!(c.engines[3].status(), Status::Member);
    assert!(c.agreed());
    c.check_safety().unwrap();
    // No view ever held both incarnations: the update adding n3#2 removed n3#1 (D8's
    // re-check of the queue against the view it modifies), without waiting for a
    // suspicion of n3#1.
    let mut view: Vec<crate::ProcessId> = (0..3).map(|i| c.engines[i].me().id).collect();
    for v in 2..=c.engines[0].view().version {
        let u = c.engines[0].committed_update(v).expect("logged");
        view.retain(|p| !u.removes.contains(p));
        view.extend(u.adds.iter().map(|m| m.id));
        let n3 = view.iter().filter(|p| p.node.as_str() == "n3").count();
        assert!(
            n3 <= 1,
            "version {v} holds two incarnations of n3: {view:?}"
        );
    }
}

#[test]
fn a_member_that_hears_nobody_stops_and_the_rest_keep_a_view() {
    // D18: n{x} can send but hears nobody (one-way cut), for each rank x. Its detector
    // would walk the ring suspecting everyone; instead it keeps its suspicions from
    // spreading and stops (IsolatedMinority, or NoMajority as an initiator), and the
    // other four keep a view of at least three.
    for x in 0..5 {
        let mut c = Cluster::new(5, 0, cfg());
        let others: Vec<usize> = (0..5).filter(|&i| i != x).collect();
        c.set_cut_one_way(&others, &[x], true);
        c.advance(15_000_000, 10_000);
        assert!(
            matches!(
                c.engines[x].status(),
                Status::Excluded(ExcludeReason::IsolatedMinority | ExcludeReason::NoMajority)
            ),
            "n{x}: {:?}",
            c.engines[x].status()
        );
        let live: Vec<_> = c.live_members().collect();
        assert!(live.len() >= 3, "isolated n{x}: a majority stays: {live:?}");
        assert!(c.agreed(), "isolated n{x}");
        assert!(!c.view_names(live[0]).contains(&format!("n{x}")));
        c.check_safety().unwrap();
    }
}

/// The test config with D21 on (the testkit then delivers transport acknowledgements).
fn local_health_cfg() -> EngineConfig {
    EngineConfig {
        local_health: true,
        ..cfg()
    }
}

#[test]
fn an_isolated_member_withholds_until_told_it_was_excluded() {
    // D21 and D24: with transport signs of life (acknowledgements), a healthy member
    // hears its watcher as well as the member it watches. n{x} hears nobody at all
    // (one-way cut): it suspects nobody and withholds for as long as the cut lasts
    // (no stop after three timeouts any more). The others' transports report it
    // unreachable (by hand here): they remove it alone. A member's "you were excluded"
    // notice, and only one that proves it, then stops it.
    for x in 0..5 {
        let mut c = Cluster::new(5, 0, local_health_cfg());
        let others: Vec<usize> = (0..5).filter(|&i| i != x).collect();
        c.set_cut_one_way(&others, &[x], true);
        c.advance(15_000_000, 10_000);
        assert_eq!(c.engines[x].status(), Status::Member, "deaf n{x}");
        assert!(
            c.engines[x].withheld_suspicions() > crate::engine::MAX_POSTPONE,
            "deaf n{x} withheld {}",
            c.engines[x].withheld_suspicions()
        );
        assert!(c.engines[x].withholding(c.now), "deaf n{x}");
        for i in 0..5 {
            let suspected = c.events[i]
                .iter()
                .any(|e| matches!(e, crate::engine::Event::Suspected { .. }));
            assert!(!suspected, "deaf n{x}: n{i} suspected someone");
        }
        let deaf = c.engines[x].me().id;
        for &i in &others {
            c.suspect(i, x);
        }
        c.advance(10_000_000, 10_000);
        let v = c.engines[others[0]].view().clone();
        for &i in &others {
            assert_eq!(c.engines[i].status(), Status::Member, "deaf n{x}: n{i}");
            assert_eq!(c.engines[i].view(), &v, "deaf n{x}: n{i}");
        }
        assert!(
            !v.contains(deaf) && v.members.len() == 4,
            "deaf n{x}: {v:?}"
        );
        // Nobody told it yet: still withholding, still at its old view.
        assert_eq!(c.engines[x].status(), Status::Member);
        assert_eq!(c.engines[x].view().version, 1);
        // A notice that proves nothing (its own version) is ignored.
        let by = v.members[0].id;
        let now = c.now;
        assert!(!c.engines[x].told_excluded(now, by, 1));
        assert_eq!(c.engines[x].status(), Status::Member);
        // A later view without it: it is out.
        assert!(c.engines[x].told_excluded(now, by, v.version));
        assert_eq!(
            c.engines[x].status(),
            Status::Excluded(ExcludeReason::Removed)
        );
        assert!(!c.engines[x].withholding(now));
        c.check_safety().unwrap();
    }
}

#[test]
fn a_withholding_member_that_a_majority_reaches_by_other_paths_stops() {
    // D24 rule 7: after the split heals, beliefs that are for good (its own, or the
    // others' about it) may leave a process a minority although a majority of its
    // view runs and reaches it (refused datagrams, discovery probes). Withholding
    // then waits for nothing: after MAX_POSTPONE withheld suspicions it stops.
    let mut c = Cluster::new(5, 0, local_health_cfg());
    let ids: Vec<ProcessId> = (0..5).map(|i| c.engines[i].me().id).collect();
    // A member that hears its group: other paths change nothing.
    let now = c.now;
    for &p in &ids[1..] {
        assert!(!c.engines[0].member_alive(now, p));
    }
    assert_eq!(c.engines[0].status(), Status::Member);
    let x = 0;
    c.set_cut_one_way(&[1, 2, 3, 4], &[x], true);
    c.advance(15_000_000, 10_000);
    assert!(c.engines[x].withholding(c.now));
    let now = c.now;
    // The cut made it believe nobody faulty; say it believes n1 and n2 faulty, as
    // after a split where each side suspected the other.
    c.engines[x].add_faulty_for_test(ids[1]);
    c.engines[x].add_faulty_for_test(ids[2]);
    // Itself, a process outside the view, one member: no majority yet.
    assert!(!c.engines[x].member_alive(now, ids[x]));
    assert!(!c.engines[x].member_alive(now, ProcessId::named("n9", 1)));
    let old = Time(now.0 - 2 * local_health_cfg().suspect_timeout_us);
    assert!(!c.engines[x].member_alive(old, ids[1]));
    assert!(!c.engines[x].member_alive(now, ids[2]));
    // n1's sign is older than a suspicion timeout: self and n2 only.
    assert_eq!(c.engines[x].status(), Status::Member);
    // A third, recent: a majority runs and reaches it, and only its beliefs keep it
    // from hearing one.
    assert!(c.engines[x].member_alive(now, ids[1]));
    assert_eq!(
        c.engines[x].status(),
        Status::Excluded(ExcludeReason::IsolatedMinority)
    );
    assert!(!c.engines[x].member_alive(now, ids[3]));
}

#[test]
fn a_notice_about_another_process_or_an_old_version_changes_nothing() {
    // D24: only a later version proves the exclusion; once out, nothing changes.
    let mut c = Cluster::new(3, 0, local_health_cfg());
    let n0 = c.engines[0].me().id;
    let now = c.now;
    assert!(!c.engines[2].stop_withholding(now), "not withholding");
    assert!(!c.engines[2].told_excluded(now, n0, 0));
    let me = c.engines[2].me().id;
    assert!(!c.engines[2].told_excluded(now, me, 9));
    assert_eq!(c.engines[2].status(), Status::Member);
    assert!(c.engines[2].told_excluded(now, n0, 2));
    assert_eq!(
        c.engines[2].status(),
        Status::Excluded(ExcludeReason::Removed)
    );
    assert!(!c.engines[2].told_excluded(now, n0, 5));
}

#[test]
fn a_member_that_hears_only_its_watcher_still_suspects_a_crash() {
    // D21 must not stop a healthy member whose watched member crashed: it still hears
    // its watcher (acknowledgements of its heartbeats), so it suspects as before.
    for x in 0..5 {
        let mut c = Cluster::new(5, 0, local_health_cfg());
        c.crash(x);
        c.advance(15_000_000, 10_000);
        let live: Vec<_> = c.live_members().collect();
        let others: Vec<usize> = (0..5).filter(|&i| i != x).collect();
        assert_eq!(live, others, "crashed n{x}");
        assert!(c.agreed(), "crashed n{x}");
        c.check_safety().unwrap();
    }
}

#[test]
fn outside_suspicions_that_would_leave_a_minority_are_ignored() {
    let mut c = Cluster::new(5, 0, cfg());
    c.crash(3);
    c.crash(4);
    c.suspect(2, 3);
    c.suspect(2, 4);
    // A third suspicion (as the transport's PeerUnreachable) would leave n2 believing a
    // majority faulty: ignored, the ring detector decides after waiting (D18).
    c.suspect(2, 1);
    assert_eq!(c.engines[2].stats().suspicions_ignored, 1);
    assert_eq!(c.engines[2].status(), Status::Member);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2"]);
    assert!(c.agreed());
    c.check_safety().unwrap();
}

#[test]
fn gossip_of_a_crashed_mgr_and_its_successors_is_still_adopted() {
    // The reconfigurer's R-int carries the three crashed seniors: 3 of 7, which leaves
    // exactly a majority; every survivor adopts it and the group reconfigures.
    let mut c = Cluster::new(7, 0, cfg());
    for i in 0..3 {
        c.crash(i);
    }
    c.advance(12_000_000, 10_000);
    let live: Vec<_> = c.live_members().collect();
    assert_eq!(live, [3, 4, 5, 6]);
    assert!(c.agreed());
    assert_eq!(c.view_names(3), ["n3", "n4", "n5", "n6"]);
    assert!(c.engines[3].is_mgr());
    c.check_safety().unwrap();
}

#[test]
fn a_crashed_mgr_is_removed_while_a_member_is_one_way_isolated() {
    // n0 (mgr) crashes and n4 hears nobody: the majority n1, n2, n3 reconfigures around
    // both, and n4 excludes itself rather than spread its suspicions.
    let mut c = Cluster::new(5, 0, cfg());
    c.crash(0);
    c.set_cut_one_way(&[1, 2, 3], &[4], true);
    c.advance(15_000_000, 10_000);
    assert_eq!(
        c.engines[4].status(),
        Status::Excluded(ExcludeReason::IsolatedMinority)
    );
    let live: Vec<_> = c.live_members().collect();
    assert_eq!(live, [1, 2, 3]);
    assert!(c.agreed());
    assert_eq!(c.view_names(1), ["n1", "n2", "n3"]);
    c.check_safety().unwrap();
}

#[test]
fn transport_signs_of_life_defer_the_ring_detector() {
    // n2 cannot get a message through (its heartbeats to n3, its watcher, are lost),
    // but the transport below n3 still hears datagrams from it (D20): no suspicion.
    let mut c = Cluster::new(5, 0, cfg());
    let n2 = c.engines[2].me().id;
    c.set_cut_one_way(&[2], &[0, 1, 3, 4], true);
    let timeout = cfg().suspect_timeout_us;
    for _ in 0..(3 * timeout / 50_000) {
        c.advance(50_000, 10_000);
        let now = c.now;
        c.engines[3].peer_alive(now, n2);
    }
    assert_eq!(c.engines[3].view().version, 1);
    assert!(
        c.engines[3].faulty().is_empty(),
        "{:?}",
        c.engines[3].faulty()
    );
    // A sign of life from a process outside the view is ignored: nothing of n3's
    // observable state moves (its next deadline, counters, events, output).
    let stranger = crate::testkit::member_of(9, 1).id;
    let before = (
        c.engines[3].poll_timeout(),
        *c.engines[3].stats(),
        c.events[3].len(),
        c.delivered + c.dropped,
    );
    c.engines[3].peer_alive(c.now, stranger);
    c.flush(3);
    c.run_until_quiet(1_000);
    let after = (
        c.engines[3].poll_timeout(),
        *c.engines[3].stats(),
        c.events[3].len(),
        c.delivered + c.dropped,
    );
    assert_eq!(before, after);
    // Without them, n3 itself suspects n2 within a few timeouts (D18 may hold it back
    // for up to MAX_POSTPONE more), and the group removes it.
    // Its own observation (the ring detector), not a report of another's.
    let suspected = |c: &Cluster| {
        c.events[3].contains(&crate::engine::Event::Suspected {
            peer: n2,
            cause: crate::SuspicionCause::Observed,
        })
    };
    let mut waited = 0;
    while !suspected(&c) {
        c.advance(10_000, 10_000);
        waited += 10_000;
        assert!(
            waited <= (crate::engine::MAX_POSTPONE as u64 + 2) * timeout,
            "n3 never suspected n2"
        );
    }
    c.advance(10 * timeout, 10_000);
    for i in [0, 1, 3, 4] {
        assert_eq!(c.view_names(i), ["n0", "n1", "n3", "n4"], "n{i}");
    }
    c.check_safety().unwrap();
}

#[test]
fn a_reconfigurer_is_not_the_mgr_until_it_has_committed() {
    // Mutation testing (issue 17): `Initiator::is_mgr` must be false while the
    // initiator is still reconfiguring, and honest answers are no anomaly.
    let mut c = Cluster::new(5, 0, cfg());
    c.run_until_quiet(10_000);
    c.crash(0);
    let reconfiguring = |c: &Cluster| {
        c.events[1]
            .iter()
            .any(|e| matches!(e, crate::engine::Event::Reconfiguring { .. }))
    };
    // Timers by hand (as `advance`), stopping as soon as n1 has sent its R-int.
    let mut steps = 0;
    while !reconfiguring(&c) {
        c.now = c.now + 10_000;
        for i in 1..5 {
            if c.engines[i].poll_timeout().is_some_and(|t| t <= c.now) {
                c.engines[i].handle_timeout(c.now);
                c.flush(i);
            }
        }
        if !reconfiguring(&c) {
            c.run_until_quiet(1_000_000);
        }
        steps += 1;
        assert!(steps < 10_000, "n1 never reconfigured");
    }
    assert!(!c.engines[1].is_mgr(), "mgr before its R-int was answered");
    assert_eq!(c.engines[1].view().version, 1);
    c.run_until_quiet(1_000_000);
    c.advance(2_000_000, 10_000);
    assert!(c.engines[1].is_mgr());
    assert_eq!(c.view_names(1), ["n1", "n2", "n3", "n4"]);
    assert!(c.agreed());
    for i in 1..5 {
        assert_eq!(c.engines[i].stats().anomalies, 0, "n{i}");
    }
    c.check_safety().unwrap();
}

/// Crashes n0 and runs timers until n1 has sent its R-int; the answers of `silent` to
/// n1 are cut, the others are delivered (n1 is then still collecting).
fn reconfigurer_collecting(silent: &[usize]) -> Cluster {
    let mut c = Cluster::new(5, 0, cfg());
    c.run_until_quiet(10_000);
    c.crash(0);
    c.set_cut_one_way(silent, &[1], true);
    let reconfiguring = |c: &Cluster| {
        c.events[1]
            .iter()
            .any(|e| matches!(e, crate::engine::Event::Reconfiguring { .. }))
    };
    let mut steps = 0;
    while !reconfiguring(&c) {
        c.now = c.now + 10_000;
        for i in 1..5 {
            if c.engines[i].poll_timeout().is_some_and(|t| t <= c.now) {
                c.engines[i].handle_timeout(c.now);
                c.flush(i);
            }
        }
        c.run_until_quiet(1_000_000);
        steps += 1;
        assert!(steps < 10_000, "n1 never reconfigured");
    }
    c.run_until_quiet(1_000_000);
    assert_eq!(c.engines[1].status(), Status::Member);
    assert_eq!(c.engines[1].view().version, 1, "still collecting");
    c
}

#[test]
fn a_collecting_initiator_counts_the_members_that_answered() {
    // Mutation testing (issue 17), `Initiator::answered`. n1 collects R-int answers;
    // n2 and n3 answered, n4's answer is cut. Suspecting both answerers leaves n1 with
    // a majority of the view (their answers count, D18): neither suspicion is ignored.
    let mut c = reconfigurer_collecting(&[4]);
    c.suspect(1, 2);
    c.suspect(1, 3);
    assert_eq!(c.engines[1].stats().suspicions_ignored, 0);
    assert_eq!(c.engines[1].status(), Status::Member);
    // Only n2 answered: suspecting n3 still leaves n1, n2 (answered) and n4; then
    // suspecting n4 too would leave a minority: that suspicion is ignored (D18), and n1
    // keeps waiting instead of giving up.
    let mut c = reconfigurer_collecting(&[3, 4]);
    c.suspect(1, 3);
    assert_eq!(c.engines[1].stats().suspicions_ignored, 0);
    c.suspect(1, 4);
    assert_eq!(c.engines[1].stats().suspicions_ignored, 1);
    assert_eq!(c.engines[1].status(), Status::Member);
}

/// A forged R-int answer from `from` to n1 (version `ver`, proposal `next`).
fn forged_answer(c: &mut Cluster, from: usize, ver: u64, next: &crate::view::Proposal) {
    let mut last = crate::view::Update::with_capacity(4);
    if ver == 2 {
        // What version 2 would have been, the same in every forged answer.
        last.removes.push(c.engines[0].me().id);
    }
    let gossip = [c.engines[0].me().id];
    let mut buf = Vec::new();
    crate::msg::Writer::start(&mut buf, crate::msg::MsgKind::RIntResp, ver, &gossip).state(
        ver,
        Some(next),
        &last,
    );
    let id = c.engines[from].me().id;
    let now = c.now;
    let _ = c.engines[1].handle_message(now, id, &buf);
    c.flush(1);
}

fn proposal_by_n0(c: &Cluster, version: u64, remove: usize) -> crate::view::Proposal {
    let mut p = crate::view::Proposal::with_capacity(4);
    p.update.removes.push(c.engines[remove].me().id);
    p.version = version;
    p.initiator = c.engines[0].me().id;
    p.initiator_index = 0;
    p
}

#[test]
fn two_proposals_from_one_initiator_are_an_anomaly_two_initiators_are_not() {
    // Mutation testing (issue 17), `record_state`'s `honest &= ...`: an initiator makes
    // one proposal per version, so two different ones from the same initiator can only
    // be forged; the reconfigurer counts the answer as an anomaly. For the current
    // version (SubCurrent) ...
    let mut c = reconfigurer_collecting(&[3, 4]);
    let (a, b) = (proposal_by_n0(&c, 2, 4), proposal_by_n0(&c, 2, 3));
    forged_answer(&mut c, 3, 1, &a);
    assert_eq!(c.engines[1].stats().anomalies, 0);
    forged_answer(&mut c, 4, 1, &b);
    assert_eq!(c.engines[1].stats().anomalies, 1);
    // ... and for the version after an Ahead one (SubAhead).
    let mut c = reconfigurer_collecting(&[3, 4]);
    let (a, b) = (proposal_by_n0(&c, 3, 4), proposal_by_n0(&c, 3, 3));
    forged_answer(&mut c, 3, 2, &a);
    assert_eq!(c.engines[1].stats().anomalies, 0);
    forged_answer(&mut c, 4, 2, &b);
    assert_eq!(c.engines[1].stats().anomalies, 1);
    // Two different proposals of two initiators are honest (figure 5), in either
    // order: the junior initiator's first, then the senior's.
    let mut c = reconfigurer_collecting(&[3, 4]);
    let mut junior = proposal_by_n0(&c, 2, 4);
    junior.initiator = c.engines[2].me().id;
    junior.initiator_index = 2;
    let senior = proposal_by_n0(&c, 2, 3);
    forged_answer(&mut c, 3, 1, &junior);
    forged_answer(&mut c, 4, 1, &senior);
    assert_eq!(c.engines[1].stats().anomalies, 0);
}

#[test]
fn an_idle_mgr_lets_client_changes_linger_then_proposes_them() {
    // Mutation testing (issue 17), `maybe_start_update`'s linger test: with
    // `client_linger_us`, client changes wait that long at an idle mgr (so that
    // changes reported a little apart share one update), and not longer.
    let linger = 50_000;
    let cfg = EngineConfig {
        max_client_ops: 4,
        max_pending_client_ops: 16,
        client_linger_us: linger,
        ..cfg()
    };
    let mut c = Cluster::new(3, 0, cfg);
    c.run_until_quiet(10_000);
    let v0 = c.engines[0].view().version;
    let op = |i: usize| {
        crate::view::ClientOp::add(
            crate::ProcessId::named(&format!("c{i}"), 1),
            "127.0.0.1:9".parse().unwrap(),
            false,
        )
    };
    let now = c.now;
    c.engines[0].request_client_ops(now, &[op(1)]);
    c.flush(0);
    c.run_until_quiet(10_000);
    assert_eq!(
        c.engines[0].pending_client_ops(),
        1,
        "proposed before the linger"
    );
    // A second change 20 ms later joins the first.
    c.advance(20_000, 10_000);
    let now2 = c.now;
    c.engines[0].request_client_ops(now2, &[op(2)]);
    c.flush(0);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[0].pending_client_ops(), 2);
    assert_eq!(c.engines[0].view().version, v0);
    // At the end of the linger (counted from the first), both go in one update.
    c.advance(now.0 + linger - c.now.0, 1_000);
    assert_eq!(c.engines[0].pending_client_ops(), 0);
    assert_eq!(c.engines[0].view().version, v0 + 1);
    assert_eq!(
        c.engines[1].committed_update(v0 + 1).unwrap().clients,
        [op(1), op(2)]
    );
}

#[test]
fn a_rejoining_incarnation_replaces_the_old_one_in_the_same_update() {
    // Mutation testing (issue 17), GetUpdate's incarnation check (D8): n2 crashes and
    // at once asks to join again as n2#2, before anyone suspects n2#1. The mgr
    // believes n2#1 faulty because of its newer incarnation, and one update removes
    // n2#1 and adds n2#2 (no timeout needed).
    let mut c = Cluster::new(3, 0, cfg());
    c.run_until_quiet(10_000);
    let old = c.engines[2].me().id;
    c.crash(2);
    c.restart(2, 2);
    c.join(2, 0);
    c.run_until_quiet(1_000_000);
    let new = c.engines[2].me().id;
    let u = c.engines[0]
        .committed_update(2)
        .expect("version 2 committed");
    assert_eq!(u.removes, [old]);
    assert_eq!(u.adds.iter().map(|m| m.id).collect::<Vec<_>>(), [new]);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2"]);
    assert_eq!(c.engines[2].status(), Status::Member);
    assert!(c.agreed());
    c.check_safety().unwrap();
}

/// D9 at every size: in a pair, either member leaving acknowledges its own removal, so
/// the other keeps a majority and goes on alone (before, it was excluded for lack of
/// one, and the group was gone).
#[test]
fn in_a_pair_the_mgr_or_the_outer_member_can_leave() {
    for leaver in [0, 1] {
        let mut c = Cluster::new(2, 0, cfg());
        c.leave(leaver);
        c.advance(1_000_000, 10_000);
        let stay = 1 - leaver;
        assert_eq!(
            c.engines[leaver].status(),
            Status::Excluded(ExcludeReason::Left),
            "leaver n{leaver}"
        );
        assert!(!c.engines[leaver].group_ended());
        assert_eq!(c.engines[stay].status(), Status::Member, "n{stay} stays");
        assert_eq!(c.view_names(stay), [format!("n{stay}")]);
        assert_eq!(c.engines[stay].view().version, 2);
        assert!(c.engines[stay].is_mgr(), "the one left is the mgr");
        c.check_safety().unwrap();
        // The last member leaves: the group ends.
        c.leave(stay);
        assert_eq!(
            c.engines[stay].status(),
            Status::Excluded(ExcludeReason::Left)
        );
        assert!(c.engines[stay].group_ended());
    }
}

#[test]
fn a_leaver_is_not_suspected_by_the_mgr_that_removes_it() {
    let mut c = Cluster::new(4, 0, cfg());
    c.run_until_quiet(10_000);
    c.events[0].clear();
    c.leave(3);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[3].status(), Status::Excluded(ExcludeReason::Left));
    assert_eq!(c.view_names(0), ["n0", "n1", "n2"]);
    assert!(
        !c.events[0]
            .iter()
            .any(|e| matches!(e, Event::Suspected { .. })),
        "{:?}",
        c.events[0]
    );
}

#[test]
fn an_oversized_snapshot_is_refused_and_the_previous_one_kept() {
    let mut c = Cluster::new(3, 1, cfg());
    c.engines[0].set_snapshot(b"good").unwrap();
    let big = vec![7u8; cfg().max_snapshot + 1];
    let e = c.engines[0].set_snapshot(&big).unwrap_err();
    assert_eq!((e.len, e.max), (1025, 1024));
    assert!(e.to_string().contains("max_snapshot"), "{e}");
    // The snapshot joiners get is still the whole previous one, not a truncated new one.
    c.join(3, 2);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[3].status(), Status::Member);
    assert_eq!(c.engines[3].received_snapshot(), b"good");
}

#[test]
fn an_invalid_configuration_is_a_typed_error() {
    use crate::config::ConfigError;
    let me = crate::view::Member {
        id: crate::ProcessId::named("a", 1),
        addr: "127.0.0.1:1".parse().unwrap(),
    };
    let bad = EngineConfig {
        max_members: 0,
        ..cfg()
    };
    assert_eq!(
        crate::Engine::try_new(bad, me).err(),
        Some(ConfigError::MaxMembers(0))
    );
    assert!(crate::Engine::try_new(cfg(), me).is_ok());
}

#[test]
fn invariants_hold_through_a_reconfiguration() {
    let mut c = Cluster::new(5, 0, cfg());
    c.crash(0);
    c.suspect(1, 0);
    c.run_until_quiet(10_000);
    for i in 1..5 {
        assert_eq!(c.engines[i].check_invariants(), Ok(()), "n{i}");
        assert_eq!(c.engines[i].view().version, 2, "n{i}");
    }
    c.check_safety().unwrap();
}

#[test]
fn a_reconfigurer_without_a_trusted_majority_of_its_new_view_proposes_nothing() {
    // D26 (docs/PROTOCOL.md). v1 = n0..n4; the mgr n0 submits v2 = v1 + n5 and every
    // member accepts it, but no acknowledgement reaches n0, which crashes. n1
    // reconfigures: n4's and n5's messages never reach it, so it believes both faulty
    // and commits n0's stable proposal v2 (six members) with n2 and n3. It trusts only
    // n1, n2, n3 of v2, three of six: its own next proposal (removing n0, n4, n5) could
    // never be committed, so it commits v2 with nothing piggy-backed and stops.
    let mut c = Cluster::new(5, 1, cfg());
    c.run_until_quiet(10_000);
    c.set_cut_one_way(&[1, 2, 3, 4], &[0], true);
    c.set_cut_one_way(&[4, 5], &[1], true);
    c.join(5, 0);
    c.run_until_quiet(100_000);
    for i in 1..5 {
        let next = c.engines[i]
            .next_update()
            .map(|p| (p.version, p.initiator_index));
        assert_eq!(next, Some((2, 0)), "n{i} accepted n0's M-sub");
    }
    c.crash(0);
    let mut steps = 0;
    while c.engines[1].status() == Status::Member {
        c.advance(10_000, 10_000);
        steps += 1;
        assert!(steps < 2_000, "n1 never finished its reconfiguration");
    }
    c.run_until_quiet(100_000);
    for i in [2, 3] {
        assert_eq!(c.engines[i].view().version, 2, "n{i} installed n1's R-com");
        assert_eq!(c.view_names(i), ["n0", "n1", "n2", "n3", "n4", "n5"]);
        assert!(
            c.engines[i].next_update().is_none_or(|p| p.version != 3),
            "n{i} accepted a proposal for v3 that could never be committed"
        );
    }
    assert_eq!(c.engines[1].view().version, 2, "n1 committed v2 first");
    assert_eq!(
        c.engines[1].status(),
        Status::Excluded(ExcludeReason::NoMajority)
    );
    c.check_safety().unwrap();
}

#[test]
fn a_member_that_missed_the_leaving_mgrs_commit_catches_up_from_the_others() {
    // D27 (docs/PROTOCOL.md). The mgr n0 leaves: every member acknowledges its own
    // removal, but its M-com never reaches n2 (cut), and n0 is gone once the others
    // installed v2. Nothing else would ever bring v2 to n2: no update follows, and the
    // mgr it follows is gone. A member at v2 that hears n2 still at v1 after a protocol
    // timeout sends it the commit of v2, which n2 accepts: it is the proposal it
    // acknowledged.
    let mut c = Cluster::new(5, 0, cfg());
    c.run_until_quiet(10_000);
    c.leave(0);
    c.set_cut_one_way(&[0], &[2], false);
    let mut steps = 0;
    while c.engines[1].view().version < 2 {
        // n0's M-sub reaches everyone; cut n0 -> n2 once n2 has acknowledged it.
        if c.engines[2].next_update().is_some_and(|p| p.version == 2) {
            c.set_cut_one_way(&[0], &[2], true);
        }
        assert!(c.deliver_one() || steps > 0, "nothing to deliver");
        steps += 1;
        assert!(steps < 100_000, "n1 never installed v2");
    }
    c.run_until_quiet(100_000);
    assert_eq!(c.engines[2].view().version, 1, "n2 missed the commit");
    c.crash(0);
    c.advance(3_000_000, 10_000);
    for i in 1..5 {
        assert_eq!(c.engines[i].status(), Status::Member, "n{i}");
        assert_eq!(c.view_names(i), ["n1", "n2", "n3", "n4"], "n{i}");
    }
    assert_eq!(c.engines[2].stats().catch_ups, 1);
    assert!(c.agreed());
    c.check_safety().unwrap();
}

#[test]
fn after_the_mgr_left_a_new_mgr_already_believed_faulty_is_reconfigured_around() {
    // The leaving mgr n0 times out on n1's acknowledgement (cut), believes n1 faulty
    // and commits its own removal with the others: v2 = n1..n6, whose most senior
    // member n1 every receiver believes faulty (the commit's Gossip), and n2 crashes
    // right after it acknowledged (its M-com lost). The others must wait for n2's
    // reconfiguration, suspect n2 when it does not come and reconfigure themselves
    // (D9); before, the commit left them following n1 for good.
    let mut c = Cluster::new(7, 0, cfg());
    c.run_until_quiet(10_000);
    c.set_cut_one_way(&[1], &[0], true);
    c.leave(0);
    let mut steps = 0;
    'left: loop {
        c.now = c.now + 10_000;
        for i in 0..7 {
            if c.up[i] && c.engines[i].poll_timeout().is_some_and(|t| t <= c.now) {
                c.engines[i].handle_timeout(c.now);
                c.flush(i);
            }
        }
        while c.deliver_one() {
            if c.engines[0].status() != Status::Member {
                break 'left;
            }
        }
        steps += 1;
        assert!(steps < 1_000, "n0 never committed its removal");
    }
    c.crash(2);
    c.advance(6_000_000, 10_000);
    for i in 3..7 {
        assert_eq!(c.engines[i].status(), Status::Member, "n{i}");
        assert_eq!(c.view_names(i), ["n3", "n4", "n5", "n6"], "n{i}");
    }
    c.check_safety().unwrap();
}

/// D30: an M-sub or M-com from the mgr whose update would make a view larger than
/// this process's `max_members` (a group configured with more room than it, or a
/// forged message: found by the `engine_sequence` fuzz target, an assertion's panic
/// before) stops the process as a member — no acknowledgement, no install — and the
/// engine stays usable.
#[test]
fn an_update_beyond_max_members_stops_the_process_instead_of_installing_it() {
    use crate::msg::{MsgKind, Writer};
    use crate::testkit::member_of;
    use crate::view::Update;
    let small = EngineConfig {
        max_members: 4,
        ..cfg()
    };
    let mut c = Cluster::new(3, 0, small);
    c.run_until_quiet(10_000);
    let x = c.engines[1].view().version;
    let mgr = c.engines[0].me().id;
    let mut u = Update::with_capacity(4);
    u.adds.extend([member_of(7, 1), member_of(8, 1)]);
    for (to, kind) in [(1, MsgKind::MSub), (2, MsgKind::MCom)] {
        let mut buf = Vec::new();
        let mut w = Writer::start(&mut buf, kind, x, &[]);
        w.u64(x + 1);
        w.update(&u);
        if kind == MsgKind::MCom {
            w.flag(false);
        }
        let now = c.now;
        c.engines[to]
            .handle_message(now, mgr, &buf)
            .expect("a well-formed message");
        assert_eq!(
            c.engines[to].status(),
            Status::Excluded(ExcludeReason::ViewTooLarge),
            "{kind:?}"
        );
        assert_eq!(
            c.engines[to].view().version,
            x,
            "{kind:?}: nothing installed"
        );
        assert!(c.engines[to].view().len() <= 4);
        assert!(
            c.engines[to].poll_transmit().is_none(),
            "{kind:?}: no acknowledgement"
        );
        let excluded = std::iter::from_fn(|| c.engines[to].poll_event()).any(|e| {
            e == Event::Excluded {
                reason: ExcludeReason::ViewTooLarge,
            }
        });
        assert!(excluded, "{kind:?}: the exclusion is reported");
    }
}

/// Each belief says how it came about (what GMP-1's checkers rely on): the member that
/// watches a crashed one observes it; the others learn it from the submission; a
/// leave request is the leaver's own; a newer incarnation replaces the old one.
#[test]
fn suspicions_say_how_they_came_about() {
    use crate::SuspicionCause::{Leaving, Observed, Replaced, Reported};
    let causes = |c: &Cluster, i: usize, peer: ProcessId| -> Vec<crate::SuspicionCause> {
        c.events[i]
            .iter()
            .filter_map(|e| match e {
                Event::Suspected { peer: p, cause } if *p == peer => Some(*cause),
                _ => None,
            })
            .collect()
    };
    // n0 (the mgr) watches n4, the most junior: it observes the crash; n1..n3 adopt
    // the removal from the mgr's submission.
    let mut c = Cluster::new(5, 0, cfg());
    let n4 = c.engines[4].me().id;
    c.crash(4);
    c.advance(3_000_000, 10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3"]);
    assert_eq!(causes(&c, 0, n4), [Observed]);
    for i in 1..4 {
        assert_eq!(causes(&c, i, n4), [Reported], "n{i}");
        assert!(!Reported.is_root());
    }
    assert!(Observed.is_root() && Replaced.is_root() && Leaving.is_root());
    c.check_safety().unwrap();
    // n3 leaves: the mgr removes it without believing it faulty (D9); a member that
    // hears the request from the leaver itself marks it as leaving.
    let n3 = c.engines[3].me().id;
    c.leave(3);
    c.advance(3_000_000, 10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2"]);
    assert!(causes(&c, 0, n3).is_empty(), "{:?}", causes(&c, 0, n3));
    for i in 1..3 {
        assert!(
            causes(&c, i, n3)
                .iter()
                .all(|c| matches!(c, Leaving | Reported)),
            "n{i}: {:?}",
            causes(&c, i, n3)
        );
    }
    c.check_safety().unwrap();
    // n2 restarts as a new incarnation and asks to join: the old one is replaced.
    let n2 = c.engines[2].me().id;
    c.restart(2, 2);
    c.join(2, 0);
    c.advance(3_000_000, 10_000);
    assert!(
        causes(&c, 0, n2).contains(&Replaced),
        "{:?}",
        causes(&c, 0, n2)
    );
    c.check_safety().unwrap();
}

/// D32: a mgr alone in its view after a removal commits the pending join's view in
/// the next step, not in the one that installed the removal (the node core reads each
/// install's view after the step; the testkit asserts one install per step).
#[test]
fn a_lone_mgr_installs_one_view_per_step() {
    let mut c = Cluster::new(2, 1, cfg());
    c.run_until_quiet(1_000);
    c.leave(1);
    assert!(c.deliver_one(), "the leave request reaches the mgr");
    c.join(2, 0);
    c.run_until_quiet(1_000);
    c.advance(2_000_000, 10_000);
    assert_eq!(c.view_names(0), ["n0", "n2"]);
    assert_eq!(c.view_names(2), ["n0", "n2"]);
    c.check_safety().unwrap();
}
