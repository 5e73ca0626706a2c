//! The gap D26 closes (docs/PROTOCOL.md): a reconfigurer that commits view x
//! proposed x+1 at once (commit-submit compression) having interrogated view x−1, not
//! view x, while view x's old mgr, cut off from it, committed x itself and proposed x+1
//! to a majority of x made of itself and the joiners x added. Before D26 both
//! proposals for x+1 were accepted (the old mgr's by a majority of x), and a recovery
//! (D23) preferred the reconfigurer's, at the higher ballot.

use crate::engine::{ExcludeReason, Status};
use crate::testkit::Cluster;
use crate::{EngineConfig, ProcessId};

fn cfg() -> EngineConfig {
    EngineConfig {
        max_members: 16,
        max_snapshot: 1024,
        max_client_ops: 4,
        max_pending_client_ops: 16,
        ..EngineConfig::default()
    }
}

use crate::testkit::client_op as client;

fn names(ids: impl IntoIterator<Item = ProcessId>) -> Vec<String> {
    ids.into_iter().map(|p| p.node.to_string()).collect()
}

/// What each engine accepted for version `v` (NextUpdate): initiator index, removes,
/// adds.
fn accepted(c: &Cluster, i: usize, v: u64) -> Option<(u32, Vec<String>, Vec<String>)> {
    c.engines[i]
        .next_update()
        .filter(|p| p.version == v)
        .map(|p| {
            (
                p.initiator_index,
                names(p.update.removes.iter().copied()),
                names(p.update.adds.iter().map(|m| m.id)),
            )
        })
}

/// Founders n0 (mgr), n1, n2 (v1). n0 commits a client change (v2) while n3 and n4 ask
/// to join: GetUpdate batches them, x = v3 = v2 + n3 + n4, piggy-backed on the M-com
/// of v2. Once n1 and n2 acknowledged sub(v3) (n0 installs v3 and sends State-Xfer),
/// the network splits {n0, n3, n4, n5} | {n1, n2}, and n5 asks n0 to join; n1 then
/// suspects n0.
///
/// * {n1, n2} is a majority of v2: n1 interrogates v2, re-proposes n0's v3 (the
///   only proposal reported), commits it, times out on the State-Xfer to n3 and n4,
///   suspects them and proposes w = v3 − {n0, n3, n4} for v4 at once (compression,
///   no R-int of v3), which n2 accepts: w at ballot sgmp(1), accepted by n1, n2.
/// * {n0, n3, n4} is a majority of v3: n0 commits v3 with the joiners and proposes
///   v = v3 + n5 for v4, which n3 and n4 acknowledge: v at ballot sgmp(0), accepted
///   by n0, n3, n4, a majority of v3 — chosen. n0 installs v4 = v before the M-com
///   reaches n3 and n4 (its State-Xfer to n5 is cut); then n0 and n5 crash for good.
///
/// Before D26 both happened: n1's R-int goes to v2 only, so n3 and n4 never promise
/// anything to n1; its State-Xfer cannot reach them, so its Figure-4 rule (a joiner
/// reports its NextUpdate, which becomes v2) cannot pick up v; its Xfer timeout made
/// it suspect them and its compressed proposal w removed them, accepted by n2 at
/// ballot sgmp(1), above the chosen v at sgmp(0); a recovery of v3's names n1..n4
/// then decided w (`tools/tests/sim_figures.rs`,
/// `a_reconfigurer_cut_off_from_its_joiners_leaves_the_old_mgrs_chosen_value_alone`,
/// turned this into two installed versions 5). With D26, n1 trusts only n1 and n2 of
/// v3's five members after the Xfer timeout: it commits v3 with nothing piggy-backed
/// and stops, so nobody accepts anything for v4 but v.
#[test]
fn a_reconfigurer_cut_off_from_its_joiners_proposes_nothing_beside_the_chosen_value() {
    let mut c = Cluster::new(3, 3, cfg());
    let now = c.now;
    c.engines[0].request_client_ops(now, &[client(1)]);
    c.flush(0);
    c.join(3, 0);
    c.join(4, 0);
    // Until n0 has the acks of sub(v3) from n1 and n2: it installs v3 and sends
    // State-Xfer to n3, n4.
    while c.engines[0].view().version < 3 {
        assert!(c.deliver_one(), "n0 never committed v3");
    }
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3", "n4"]);
    assert_eq!(c.engines[1].view().version, 2);
    assert_eq!(c.engines[2].view().version, 2);
    assert_eq!(accepted(&c, 1, 3).unwrap().0, 0, "n1 acked n0's sub(v3)");
    assert_eq!(accepted(&c, 2, 3).unwrap().0, 0, "n2 acked n0's sub(v3)");
    c.set_cut(&[0, 3, 4, 5], &[1, 2], true);
    c.join(5, 0);
    c.run_until_quiet(10_000);
    // n0 proposed v4 = v3 + n5 to a majority of v3: itself, n3, n4.
    assert_eq!(c.engines[3].view().version, 3);
    assert_eq!(c.engines[4].view().version, 3);
    let v = (0, vec![], vec!["n5".to_string()]);
    assert_eq!(accepted(&c, 0, 4), Some(v.clone()), "n0's own proposal");
    assert_eq!(accepted(&c, 3, 4), Some(v.clone()), "n3 acked n0's sub(v4)");
    assert_eq!(accepted(&c, 4, 4), Some(v.clone()), "n4 acked n0's sub(v4)");
    // n5 is cut off from now on: n0's State-Xfer to it (after its commit of v4) is
    // lost, so n0 holds its M-com of v4 back for a protocol timeout.
    c.set_cut(&[5], &[0, 1, 2, 3, 4], true);
    c.suspect(1, 0);
    let mut n0_installed_v4 = false;
    for _ in 0..1_000 {
        c.advance(10_000, 10_000);
        if c.up[0] && c.engines[0].view().version == 4 {
            assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3", "n4", "n5"]);
            n0_installed_v4 = true;
            c.crash(0);
            c.crash(5);
        }
    }
    assert!(n0_installed_v4, "n0 committed v4 = v3 + n5");
    // n1 committed v3 (the same value) and, trusting two of its five members, stopped
    // without proposing anything for v4 (D26).
    assert_eq!(c.engines[1].view().version, 3);
    assert_eq!(c.engines[2].view().version, 3);
    assert_eq!(c.view_names(1), ["n0", "n1", "n2", "n3", "n4"]);
    assert_eq!(
        c.engines[1].status(),
        Status::Excluded(ExcludeReason::NoMajority)
    );
    assert_eq!(accepted(&c, 1, 4), None, "n1 proposed nothing for v4");
    assert_eq!(accepted(&c, 2, 4), None, "n2 accepted nothing for v4");
    // n3 and n4 never got the M-com of v4: they still hold v.
    assert_eq!(c.engines[3].view().version, 3);
    assert_eq!(c.engines[4].view().version, 3);
    assert_eq!(accepted(&c, 3, 4), Some(v.clone()));
    assert_eq!(accepted(&c, 4, 4), Some(v));
    // n2, n3 and n4 stop (each an isolated minority): a total outage, from which only
    // a recovery (D23) brings the group back, and it finds only v for v4.
    for i in 2..5 {
        assert!(
            matches!(c.engines[i].status(), Status::Excluded(_)),
            "n{i}: {:?}",
            c.engines[i].status()
        );
    }
    c.check_safety().unwrap();
}
