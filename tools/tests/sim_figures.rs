//! One scripted run per figure of the paper that describes a run (Ricciardi & Birman,
//! "Process Membership in Asynchronous Environments"), on the simulator: the real
//! engine over the real transport core. Each asserts the outcome the paper argues for,
//! and every run is also checked against the whole Strong GMP safety spec.

use sgmp_membership::msg::MsgKind;
use sgmp_membership::{ExcludeReason, Status, Time};
use sgmp_tools::sim::{Action, LinkFaults, Sim, SimConfig, Target};

const MS: u64 = 1_000;

fn sim(nodes: usize, spare: usize) -> Sim {
    let mut c = SimConfig::with_spare(nodes, spare);
    c.trace = true;
    // The figures are the paper's: a process cut off with a minority suspects the
    // others and initiates. D21 (local health) would have it stop quietly instead, so
    // it is off here; the swarm batch and the engine tests run with it.
    c.engine.local_health = false;
    // The figures look at the excluded process itself, not at its next incarnation.
    c.auto_rejoin = false;
    let mut s = Sim::new(c, 1);
    s.at(
        Time(0),
        Action::SetLinks(LinkFaults::PERFECT.with_delay(100, 0)),
    );
    s
}

fn ms(t: u64) -> Time {
    Time(t * MS)
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn suspect(s: &mut Sim, t: Time, by: usize, peer: usize) {
    s.at(
        t,
        Action::Suspect {
            by: Target::Node(by),
            peer: Target::Node(peer),
        },
    );
}

fn crash_during(s: &mut Sim, t: Time, node: usize, kind: MsgKind, after: u32) {
    s.at(
        t,
        Action::CrashDuring {
            target: Target::Node(node),
            kind: Some(kind),
            after,
        },
    );
}

fn dump(s: &Sim) {
    for l in s.trace_lines().iter().filter(|l| !l.contains("heartbeat")) {
        eprintln!("{l}");
    }
    eprint!("{}", s.describe());
}

/// Safety holds and the live members agree; dumps the trace otherwise (or always
/// with `SIM_DUMP=1`).
fn check(s: &Sim) {
    if std::env::var_os("SIM_DUMP").is_some() {
        dump(s);
    }
    let v = s.violations();
    let conv = s.converged();
    if !v.is_empty() || conv.is_err() {
        dump(s);
    }
    assert!(v.is_empty(), "{v:?}");
    conv.unwrap();
}

/// No engine saw an answer that only a forged message could produce (two values from
/// one initiator, two committed values for one version): honest runs have none.
fn no_anomalies(s: &Sim) {
    for i in 0..s.node_count() {
        assert_eq!(s.node(i).engine().stats().anomalies, 0, "n{i}");
    }
}

fn traced(s: &Sim, pat: &[&str]) -> bool {
    s.trace_lines()
        .iter()
        .any(|l| pat.iter().all(|p| l.contains(p)))
}

fn reconfigured(s: &Sim, node: &str) -> bool {
    traced(s, &["EVENT", node, "Reconfiguring"])
}

fn view_of_version(s: &Sim, v: u64) -> Vec<String> {
    s.history()
        .view(v)
        .unwrap_or(&[])
        .iter()
        .map(|p| p.node.to_string())
        .collect()
}

/// Figure 2: Simple S-GMP. The mgr suspects q, multicasts M-sub(-q), collects the
/// acknowledgements and multicasts M-com(-q).
#[test]
fn figure_2_two_phase_update() {
    let mut s = sim(5, 0);
    s.at(ms(100), Action::Crash(Target::Node(4)));
    suspect(&mut s, ms(100), 0, 4);
    s.run_until(ms(1_000));
    check(&s);
    for i in 0..4 {
        assert_eq!(s.version(i), 2);
        assert_eq!(s.view_names(i), names(&["n0", "n1", "n2", "n3"]));
    }
    assert!(traced(&s, &["send n0#1 -> n1#1 M-sub", "v=2 (-n4#1)"]));
    assert!(traced(&s, &["send n1#1 -> n0#1 ack(M-sub)", "v=2"]));
    assert!(traced(&s, &["send n0#1 -> n3#1 M-com", "v=2 (-n4#1)"]));
    assert!(!reconfigured(&s, ""));
}

/// Figure 3: the mgr fails in the middle of its M-com multicast, so local views
/// differ; reconfiguration makes them agree again.
#[test]
fn figure_3_mgr_fails_mid_commit() {
    let mut s = sim(5, 0);
    s.at(ms(100), Action::Crash(Target::Node(4)));
    crash_during(&mut s, ms(100), 0, MsgKind::MCom, 1);
    suspect(&mut s, ms(100), 0, 4);
    s.run_until(ms(2_000));
    check(&s);
    // Along some cut the local views differed: one outer member installed version 2
    // from the mgr's M-com, the others did not get it from the mgr.
    let got: Vec<usize> = (1..4)
        .filter(|i| traced(&s, &[&format!("recv n0#1 -> n{i}#1 M-com")]))
        .collect();
    assert_eq!(got.len(), 1, "exactly one M-com copy left before the crash");
    assert!(reconfigured(&s, "n1#1"));
    assert_eq!(view_of_version(&s, 2), names(&["n0", "n1", "n2", "n3"]));
    for i in 1..4 {
        assert_eq!(s.view_names(i), names(&["n1", "n2", "n3"]));
    }
}

/// Figure 3 fails when nobody reconfigures (`Sabotage::NeverReconfigure`): the random
/// batches stay live without reconfiguration (the recovery from total failure brings
/// the group back) and see it only as extra exclusions (`sim_batch`), the figure sees
/// it directly.
#[test]
fn figure_3_fails_when_nobody_reconfigures() {
    use sgmp_membership::sabotage::{self, Sabotage};
    let r = std::panic::catch_unwind(|| {
        sabotage::with(Sabotage::NeverReconfigure, figure_3_mgr_fails_mid_commit)
    });
    assert!(r.is_err(), "figure 3 passed without a reconfiguration");
}

/// Figure 4: the mgr's commit adding Q reaches only Q (State-Xfer), then the mgr
/// fails. The reconfigurer completes the addition; Q, already a member, reports its
/// NextUpdate, and everyone ends in the same view with Q in it.
#[test]
fn figure_4_new_members_report_next_update() {
    let mut s = sim(4, 1);
    crash_during(&mut s, ms(100), 0, MsgKind::MCom, 0);
    s.at(ms(100), Action::Join(4));
    s.run_until(ms(3_000));
    check(&s);
    assert!(traced(&s, &["recv n0#1 -> n4#1 State-Xfer"]));
    assert!(!traced(&s, &["recv n0#1 -> n1#1 M-com"]));
    assert!(reconfigured(&s, "n1#1"));
    // The reconfigurer's State-Xfer reached n4, already a member: it answered with
    // its NextUpdate, the mgr's +n4 for version 2.
    assert!(traced(
        &s,
        &["send n4#1 -> n1#1 ack(State-Xfer)", "ver=2 last=(+n4#1)"]
    ));
    // So the reconfigurer propagated the mgr's (invisible) version 2, +n4, and not an
    // update of its own; version 3 then removed the mgr, and nobody else.
    assert_eq!(
        view_of_version(&s, 2),
        names(&["n0", "n1", "n2", "n3", "n4"])
    );
    assert_eq!(view_of_version(&s, 3), names(&["n1", "n2", "n3", "n4"]));
    assert_eq!(s.history().max_version(), 3);
    for i in 1..=4 {
        assert_eq!(s.version(i), 3, "n{i}");
        assert_eq!(s.view_names(i), names(&["n1", "n2", "n3", "n4"]), "n{i}");
    }
    assert_eq!(s.status(4), Status::Member);
    assert_eq!(
        s.node(4).pid().incarnation,
        1,
        "Q kept its first incarnation"
    );
}

/// Figure 5: reconfigurer r1 (n1) does not learn of the mgr's proposal and proposes
/// the mgr's removal; r2 (n2) learns of both proposals for the same version and
/// propagates the one of the least-ranked initiator (r1's).
#[test]
fn figure_5_least_ranked_initiator_proposal_wins() {
    let mut s = sim(7, 1);
    // Answers from n3..n5 reach n2 late, so that n2 hears n6 before it adopts their
    // gossip (that n6 is faulty).
    for from in 3..=5 {
        s.at(
            Time(0),
            Action::SetLink {
                from,
                to: 2,
                faults: LinkFaults::PERFECT.with_delay(5 * MS, 0),
            },
        );
    }
    // The mgr's M-sub(+n7) can only reach n6; n6's answers cannot reach n1.
    for to in 1..=5 {
        s.at(ms(100), Action::Block { from: 0, to });
    }
    s.at(ms(100), Action::Block { from: 6, to: 1 });
    s.at(ms(100), Action::Join(7));
    s.at(ms(110), Action::Crash(Target::Node(0)));
    // r1's R-sub can only reach n3, then r1 fails. (r1 suspects n6 at its protocol
    // timeout, 200 ms after its R-int: D18 holds its detector back while the group has
    // not acted on its first suspicion, the mgr.)
    for to in [2, 4, 5] {
        s.at(ms(375), Action::Block { from: 1, to });
    }
    crash_during(&mut s, ms(375), 1, MsgKind::RSub, 4);
    s.at(ms(1_500), Action::Heal);
    s.run_until(ms(4_000));
    check(&s);
    no_anomalies(&s);
    assert!(reconfigured(&s, "n1#1") && reconfigured(&s, "n2#1"));
    assert!(traced(
        &s,
        &["recv n6#1 -> n2#1 state", "(+n7#1),2> by n0#1"]
    ));
    assert!(traced(&s, &["recv n3#1 -> n2#1 state", ",2> by n1#1"]));
    // r1's proposal (remove the mgr and n6) formed version 2, not the mgr's (+n7).
    assert_eq!(
        view_of_version(&s, 2),
        names(&["n1", "n2", "n3", "n4", "n5"])
    );
}

/// Figure 5, variant (issue 17; safety regression test for keep_least_ranked): r1's
/// R-sub reaches a majority (n3, n4, n5 and itself), so r1 commits version 2 =
/// -{mgr, n6} and installs it, then crashes during its R-com before any copy leaves
/// (an invisible commit). Only n1 -> n2 is blocked: r2 (n2) hears r1's proposal only
/// as the NextUpdate of n3..n5, and the mgr's +n7 from n6. r2 must propagate r1's
/// proposal (the least-ranked initiator's), the one r1 installed; propagating the
/// mgr's instead would form a second version 2. What fails if the rule is broken is
/// the safety check (uniqueness), not an expected view.
#[test]
fn figure_5_variant_committed_r_sub_survives_its_initiator() {
    let mut s = sim(7, 1);
    for from in 3..=5 {
        s.at(
            Time(0),
            Action::SetLink {
                from,
                to: 2,
                faults: LinkFaults::PERFECT.with_delay(5 * MS, 0),
            },
        );
    }
    for to in 1..=5 {
        s.at(ms(100), Action::Block { from: 0, to });
    }
    s.at(ms(100), Action::Block { from: 6, to: 1 });
    s.at(ms(100), Action::Join(7));
    s.at(ms(110), Action::Crash(Target::Node(0)));
    s.at(ms(375), Action::Block { from: 1, to: 2 });
    crash_during(&mut s, ms(375), 1, MsgKind::RCom, 0);
    s.at(ms(1_500), Action::Heal);
    s.run_until(ms(4_000));
    // The safety check first: a broken rule shows here.
    check(&s);
    no_anomalies(&s);
    // The scenario happened as intended (none of this depends on the rule).
    assert!(reconfigured(&s, "n1#1") && reconfigured(&s, "n2#1"));
    assert!(
        s.history()
            .installs
            .iter()
            .any(|i| i.pid.node.as_str() == "n1" && i.version == 2),
        "r1 did not commit (install) its proposal"
    );
    assert!(traced(&s, &["recv n1#1 -> n3#1 R-sub"]));
    assert!(!traced(&s, &["recv n1#1 -> n2#1 R-sub"]));
    assert!(traced(
        &s,
        &["recv n6#1 -> n2#1 state", "(+n7#1),2> by n0#1"]
    ));
    assert!(traced(&s, &["recv n3#1 -> n2#1 state", ",2> by n1#1"]));
}

fn figure_6(p_up: bool, q_suspects_p: bool) -> Sim {
    let mut s = sim(5, 0);
    s.at(ms(100), Action::Crash(Target::Node(0)));
    if !p_up {
        s.at(ms(100), Action::Crash(Target::Node(1)));
    }
    suspect(&mut s, ms(100), 1, 0);
    suspect(&mut s, ms(100), 2, 0);
    if q_suspects_p {
        suspect(&mut s, ms(100), 2, 1);
    }
    s.run_until(ms(3_000));
    check(&s);
    s
}

/// Figure 6, first scenario: p is up and q does not suspect it: p initiates, q waits.
#[test]
fn figure_6_scenario_1_p_initiates() {
    let s = figure_6(true, false);
    assert!(reconfigured(&s, "n1#1"));
    assert!(!reconfigured(&s, "n2#1"));
    assert_eq!(s.view_names(2), names(&["n1", "n2", "n3", "n4"]));
    assert!(s.node(1).engine().is_mgr());
}

/// Figure 6, second scenario: p crashed and q does not know: q times out waiting for
/// p's R-int, suspects p, and initiates.
#[test]
fn figure_6_scenario_2_q_times_out_on_p() {
    let s = figure_6(false, false);
    assert!(reconfigured(&s, "n2#1"));
    assert!(traced(&s, &["SUSPECT n2#1 believes n1#1 faulty"]));
    assert_eq!(s.view_names(2), names(&["n2", "n3", "n4"]));
    assert!(s.node(2).engine().is_mgr());
}

/// Figure 6, third scenario: p is up but q believes it faulty: both initiate; views
/// stay unique and p ends excluded.
#[test]
fn figure_6_scenario_3_both_initiate() {
    let s = figure_6(true, true);
    assert!(reconfigured(&s, "n1#1") && reconfigured(&s, "n2#1"));
    assert!(matches!(s.status(1), Status::Excluded(_)));
    assert_eq!(s.view_names(2), names(&["n2", "n3", "n4"]));
}

/// Figure 6, fourth scenario: p crashed and q believes it faulty: q initiates at once.
#[test]
fn figure_6_scenario_4_q_initiates_at_once() {
    let s = figure_6(false, true);
    assert!(reconfigured(&s, "n2#1"));
    assert_eq!(s.view_names(3), names(&["n2", "n3", "n4"]));
}

/// Figure 7: two reconfigurers on the two sides of a partition, each believing the
/// other side faulty. Only the side with a majority moves on; there are never two
/// group views.
#[test]
fn figure_7_two_partitions_no_two_group_views() {
    let mut s = sim(5, 0);
    s.at(ms(100), Action::Crash(Target::Node(0)));
    s.at(ms(100), Action::Partition(vec![vec![0, 1], vec![2, 3, 4]]));
    s.at(ms(2_000), Action::Heal);
    s.run_until(ms(4_000));
    check(&s);
    assert!(reconfigured(&s, "n1#1") && reconfigured(&s, "n2#1"));
    assert_eq!(s.status(1), Status::Excluded(ExcludeReason::NoMajority));
    assert_eq!(s.history().versions_of(s.node(1).pid()), [1]);
    assert_eq!(s.view_names(2), names(&["n2", "n3", "n4"]));

    // Without a majority anywhere, nobody moves on.
    let mut s = sim(5, 0);
    s.at(ms(100), Action::Crash(Target::Node(0)));
    s.at(ms(100), Action::Partition(vec![vec![0, 1, 2], vec![3, 4]]));
    s.at(ms(150), Action::Crash(Target::Node(2)));
    s.run_until(ms(3_000));
    assert!(s.violations().is_empty(), "{:?}", s.violations());
    assert_eq!(s.history().max_version(), 1);
}

/// Figure 7 with D21 (local health, as the node runtime runs): n1, cut off with the
/// crashed mgr, hears no majority, so it neither suspects the other side nor
/// initiates; it withholds for as long as the cut lasts (D24: no stop after three
/// timeouts), the majority side reconfigures, and after the heal a member tells n1 it
/// was excluded.
#[test]
fn figure_7_with_local_health_the_minority_withholds_then_is_told() {
    let mut c = SimConfig::with_spare(5, 0);
    c.trace = true;
    c.auto_rejoin = false;
    let mut s = Sim::new(c, 1);
    s.at(
        Time(0),
        Action::SetLinks(LinkFaults::PERFECT.with_delay(100, 0)),
    );
    s.at(ms(100), Action::Crash(Target::Node(0)));
    s.at(ms(100), Action::Partition(vec![vec![0, 1], vec![2, 3, 4]]));
    s.at(ms(2_000), Action::Heal);
    s.run_until(ms(1_950));
    // 18 suspicion timeouts into the cut: still a member, withholding.
    assert_eq!(s.status(1), Status::Member);
    s.run_until(ms(4_000));
    check(&s);
    assert!(!reconfigured(&s, "n1#1"));
    assert!(!traced(&s, &["SUSPECT n1#1 believes n2#1"]));
    assert_eq!(s.status(1), Status::Excluded(ExcludeReason::Removed));
    assert_eq!(s.history().versions_of(s.node(1).pid()), [1]);
    assert_eq!(s.view_names(2), names(&["n2", "n3", "n4"]));
}

/// Figure 8: the mgr commits ⟨v, x⟩ invisibly (it installs it, then fails before any
/// M-com leaves). The outer members know the proposal (their NextUpdate); the
/// reconfigurer propagates it, so version x is the same everywhere.
#[test]
fn figure_8_invisible_commit_propagated() {
    let mut s = sim(5, 0);
    s.at(ms(100), Action::Crash(Target::Node(4)));
    crash_during(&mut s, ms(100), 0, MsgKind::MCom, 0);
    suspect(&mut s, ms(100), 0, 4);
    s.run_until(ms(2_000));
    check(&s);
    let h = s.history();
    let n0 = s.node(0).pid();
    assert_eq!(
        h.versions_of(n0),
        [1, 2],
        "the mgr committed version 2 invisibly"
    );
    assert!(!traced(&s, &["recv n0#1", "M-com"]));
    assert!(traced(&s, &["send n1#1 ->", "R-sub", "v=2 (-n4#1)"]));
    for i in 1..4 {
        assert_eq!(h.versions_of(s.node(i).pid())[..2], [1, 2]);
        assert_eq!(s.view_names(i), names(&["n1", "n2", "n3"]));
    }
}

fn figure_10(partition_p: bool) -> Sim {
    let mut s = sim(7, 0);
    s.at(ms(100), Action::Crash(Target::Node(6)));
    suspect(&mut s, ms(100), 0, 6);
    if partition_p {
        // p's com(x+1) reaches only n4 and n5 (v_{x+1}); then p is cut off, alive,
        // and goes on proposing for x+2.
        for to in 1..=3 {
            s.at(ms(100), Action::Block { from: 0, to });
        }
        s.at(Time(100 * MS + 600), Action::Partition(vec![vec![0]]));
        s.at(ms(2_000), Action::Heal);
    } else {
        s.at(ms(100), Action::Crash(Target::Node(5)));
        // n5's suspicion arrives while M-sub(-n6) is out: it rides on the commit.
        suspect(&mut s, Time(100 * MS + 50), 0, 5);
        crash_during(&mut s, ms(100), 0, MsgKind::MCom, 1);
    }
    s.run_until(ms(4_000));
    check(&s);
    s
}

/// Figure 10 / Proposition 5.5, cases (a) and (b): p (the mgr) committed ⟨v, x+1⟩ to
/// one member, piggy-backing its proposal for x+2, and failed; r finds x+1 in
/// Ahead_r, propagates it and owns version x+2.
#[test]
fn figure_10_r_owns_the_ahead_members() {
    let s = figure_10(false);
    assert!(traced(&s, &["M-com", "v=2 (-n6#1) : sub v=3 (-n5#1)"]));
    assert_eq!(
        view_of_version(&s, 2),
        names(&["n0", "n1", "n2", "n3", "n4", "n5"])
    );
    assert_eq!(s.view_names(1), names(&["n1", "n2", "n3", "n4"]));
}

/// Figure 10, case (c): p stays alive behind a partition after its commit reached
/// only v_{x+1} = {n4, n5}; r (n1) finds x+1 in Ahead_r. p and r cannot both succeed
/// for x+2: r's side has the majority, and p never installs x+2.
#[test]
fn figure_10_p_and_r_not_both_successful() {
    let s = figure_10(true);
    let p = s.node(0).pid();
    assert_eq!(s.history().versions_of(p), [1, 2]);
    assert!(matches!(s.status(0), Status::Excluded(_)));
    assert!(reconfigured(&s, "n1#1"));
    assert_eq!(
        view_of_version(&s, 2),
        names(&["n0", "n1", "n2", "n3", "n4", "n5"])
    );
    assert_eq!(s.view_names(1), names(&["n1", "n2", "n3", "n4", "n5"]));
}

/// Figure 12: q' crashes before answering M-sub(-q); the mgr suspects it and appends
/// M-sub(-q') to M-com(-q) (commit-submit compression): no separate submit.
#[test]
fn figure_12_compressed_commit_submit() {
    let mut s = sim(5, 0);
    s.at(ms(100), Action::Crash(Target::Node(4)));
    s.at(ms(100), Action::Crash(Target::Node(3)));
    suspect(&mut s, ms(100), 0, 4);
    s.run_until(ms(2_000));
    check(&s);
    assert!(traced(
        &s,
        &["send n0#1 -> n1#1 M-com", "v=2 (-n4#1) : sub v=3 (-n3#1)"]
    ));
    assert!(!traced(&s, &["send n0#1 -> n1#1 M-sub", "v=3"]));
    assert_eq!(s.view_names(1), names(&["n0", "n1", "n2"]));
    assert_eq!(s.version(1), 3);
}

/// The figure-5 variant as the swarm schedules reach it (`Buggify::Fig5`): five
/// founders and two joiners (views of seven, a third joining), local health on (D21), as in the
/// swarm runs. The mgr's M-sub(+n7) reaches only n6.
#[test]
fn figure_5_variant_five_founders_two_joiners_local_health() {
    let mut c = SimConfig::with_spare(5, 3);
    c.trace = true;
    let mut s = Sim::new(c, 1);
    s.at(
        Time(0),
        Action::SetLinks(LinkFaults::PERFECT.with_delay(100, 0)),
    );
    s.at(ms(20), Action::Join(5));
    s.at(ms(40), Action::Join(6));
    let t0 = 200;
    for from in 3..=5 {
        s.at(
            ms(t0 - 100),
            Action::SetLink {
                from,
                to: 2,
                faults: LinkFaults::PERFECT.with_delay(5 * MS, 0),
            },
        );
    }
    for to in 1..=5 {
        s.at(ms(t0), Action::Block { from: 0, to });
    }
    s.at(ms(t0), Action::Block { from: 6, to: 1 });
    s.at(ms(t0), Action::Join(7));
    s.at(ms(t0 + 10), Action::Crash(Target::Node(0)));
    s.at(ms(t0 + 90), Action::Block { from: 1, to: 2 });
    crash_during(&mut s, ms(t0 + 90), 1, MsgKind::RCom, 0);
    s.at(ms(1_500), Action::Heal);
    s.run_until(ms(4_000));
    check(&s);
    no_anomalies(&s);
    assert!(reconfigured(&s, "n1#1") && reconfigured(&s, "n2#1"));
    // r1's proposal (-{mgr, n6}) forms version 4, whether r1 commits it before it
    // dies or, removed meanwhile and told so (D24), r2 propagates it.
    assert_eq!(
        view_of_version(&s, 4),
        names(&["n1", "n2", "n3", "n4", "n5"])
    );
}

/// D26 (docs/PROTOCOL.md), the run that showed the gap it closes in D23's safety
/// argument (ii). An S-GMP reconfigurer that commits view x proposed x+1 at once
/// (commit-submit compression) at ballot `sgmp(its index in x)`, having interrogated
/// view x−1, not view x: no Paxos phase 1 over x's names preceded that proposal.
/// Meanwhile view x's old mgr (index 0 in x: the reconfigurer re-proposed its value,
/// which kept it) commits x too and gets a value for x+1 chosen by a majority of x
/// made of itself and the joiners x added, who never heard the reconfigurer. The
/// recovery then saw the reconfigurer's value at ballot 1 above the chosen one at
/// ballot 0 and decided it: two lineages from one version on (uniqueness at version 5
/// before D26).
///
/// The run (seed 1, links 100 µs, joiners' links to n0 5 ms to widen the window):
/// - founders n0..n3; n0 removes n3 (v2 = {n0, n1, n2}); n1's ack is held back
///   (n1 → n0 blocked 50-150 ms) so the join requests of n4 and n5 are batched:
///   x = v3 = v2 + n4 + n5, piggy-backed on the M-com of v2; n1 and n2 ack it.
/// - 192 ms, n0 has committed v3 and waits for the joiners' State-Xfer acks: the
///   network splits {n0, n4, n5} | {n1, n2}; n1 suspects n0, n0 suspects n1 and n2.
/// - n1 interrogates v2 (n2 answers), re-proposes v3, commits it, times out on the
///   State-Xfer to n4 and n5: it trusts two of v3's five members, so (D26) it
///   proposes nothing for v4 and stops. (Before D26: w = v3 − {n0, n4, n5} at once,
///   accepted by n1 and n2 at ballot sgmp(1).)
/// - n0 commits v3 to n4, n5 with sub(v4 = v3 − {n1, n2}); both acknowledge: v is
///   chosen (n0, n4, n5: 3 of v3's 5 names) at ballot sgmp(0). n0 installs v4 =
///   {n0, n4, n5}; its M-com reaches n5 (installs v4) but not n4 (n0 → n4 blocked),
///   which crashes with v3 installed and v accepted on its disk.
/// - n0 and n5 go on as a live group: v5 = {n0, n5} (n4 removed), installed by both.
/// - n1, n2 (stopped) and n4 restart from their disks on the other side of the
///   partition: 3 of v3's 5 names recover, and the only acceptance for v4 they hold
///   is v: the recovery decides v (old incarnations: adopted) and can go no further
///   without v4's names n0 and n5, which are members of the live group.
///
/// Engine-level half: `engine::tests_gap::a_reconfigurer_cut_off_from_its_joiners_proposes_nothing_beside_the_chosen_value`.
#[test]
fn a_reconfigurer_cut_off_from_its_joiners_leaves_the_old_mgrs_chosen_value_alone() {
    let mut c = SimConfig::with_spare(4, 2);
    c.trace = true;
    c.auto_rejoin = false;
    // Explicit suspicions take effect at once (as in the paper's figures).
    c.engine.local_health = false;
    let mut s = Sim::new(c, 1);
    s.at(
        Time(0),
        Action::SetLinks(LinkFaults::PERFECT.with_delay(100, 0)),
    );
    for from in [4, 5] {
        s.at(
            Time(0),
            Action::SetLink {
                from,
                to: 0,
                faults: LinkFaults::PERFECT.with_delay(5 * MS, 0),
            },
        );
    }
    // v2 = -n3, held back until both join requests are queued at n0.
    suspect(&mut s, ms(50), 0, 3);
    s.at(ms(50), Action::Crash(Target::Node(3)));
    s.at(ms(50), Action::Block { from: 1, to: 0 });
    s.at(ms(60), Action::Join(4));
    s.at(ms(60), Action::Join(5));
    s.at(ms(150), Action::Heal);
    // n0 committed v3 at 190.4 ms and waits for the State-Xfer acks (5 ms away).
    s.at(ms(192), Action::Partition(vec![vec![0, 4, 5], vec![1, 2]]));
    suspect(&mut s, ms(192), 1, 0);
    suspect(&mut s, ms(192), 0, 1);
    suspect(&mut s, ms(192), 0, 2);
    // n4's ack of sub(v4) is in flight; n0's M-com of v4 will not reach it.
    s.at(ms(198), Action::Block { from: 0, to: 4 });
    s.at(ms(201), Action::Crash(Target::Node(4)));
    s.at(ms(202), Action::Heal);
    s.at(ms(202), Action::Partition(vec![vec![0, 5], vec![1, 2, 4]]));
    s.run_until(ms(1_300));

    // The scenario happened as intended: v chosen for v4 by n0, n4, n5 and installed
    // by n0 (and n5); n1 and n2 accepted nothing for v4 (D26).
    let v4 = names(&["n0", "n4", "n5"]);
    assert!(
        s.history()
            .installs
            .iter()
            .any(|i| i.pid.node.as_str() == "n0" && i.version == 4),
        "n0 installed v4"
    );
    assert_eq!(view_of_version(&s, 4), v4);
    assert_eq!(view_of_version(&s, 5), names(&["n0", "n5"]));
    let acc = |i: usize| {
        let d = s.node(i).core.durable();
        d.accepted.as_ref().map(|a| {
            let m: Vec<String> = a
                .view
                .members
                .iter()
                .map(|m| m.id.node.to_string())
                .collect();
            (a.ballot.class, a.ballot.rank, a.view.version, m)
        })
    };
    assert_eq!(s.node(4).core.durable().view.version, 3);
    assert_eq!(
        acc(4),
        Some((1, 0, 4, v4)),
        "n4 accepted n0's v, ballot sgmp(0)"
    );
    for i in [1, 2] {
        assert!(
            acc(i).is_none_or(|a| a.2 != 4),
            "n{i} accepted something for v4: {:?}",
            acc(i)
        );
    }
    assert_eq!(s.status(0), Status::Member);
    assert_eq!(s.status(5), Status::Member);

    // 3 of v3's 5 names restart from their disks, away from n0 and n5.
    for i in [1, 2, 4] {
        s.at(ms(1_300), Action::Rejoin(i));
    }
    s.run_until(ms(3_000));
    let v = s.violations();
    if !v.is_empty() {
        dump(&s);
    }
    // Before D26: uniqueness at version 5 ([n0#1 n5#1] and [n1#2 n2#2]).
    assert!(v.is_empty(), "{v:?}");
}
