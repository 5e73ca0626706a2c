//! Scenario tests of the engine on the in-memory [`Cluster`](crate::testkit::Cluster).

use crate::engine::{ExcludeReason, Status};
use crate::testkit::Cluster;
use crate::EngineConfig;

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
    c.engines[0].set_snapshot(b"app-state");
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
    c.advance(8_000_000, 10_000);
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
}
