//! Protocol message counts against the closed forms of §5.2 of the paper.
//!
//! Y successive compressed updates starting from a view of n_x members, update k
//! removing r_k and adding a_k members (δ_k = a_k − r_k), cost (paper's convention:
//! self-addressed messages and copies to members being removed count):
//!
//!   (2Y+1)·n_x + Σ_{k=x}^{x+Y−1} a_k + 2·Σ_{k=x}^{x+Y−1} (x+Y−k)·δ_k
//!
//! and without compression add (Y−1)·n_x + Σ_{k=x}^{x+Y−2} (x+Y−1−k)·δ_k. The paper
//! writes its sums up to x+Y (Y+1 updates); docs/PROTOCOL.md (decision D7) derives
//! the corrected limits. On the wire, sgmp sends neither the 2Y+1 self-addressed
//! messages nor the copies to members already believed faulty (Disconnect).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sgmp_membership::counts::{compressed_formula, plan, uncompressed_extra, Op};
use sgmp_membership::engine::Event;
use sgmp_membership::msg::MsgKind;
use sgmp_membership::testkit::Cluster;
use sgmp_membership::{EngineConfig, EngineStats};

fn protocol(a: &[u64]) -> u64 {
    MsgKind::ALL
        .iter()
        .filter(|k| k.is_protocol())
        .map(|k| a[*k as usize])
        .sum()
}

struct Counts {
    logical: u64,
    sent: u64,
    /// Protocol messages that went onto the cluster's network, counted by the network
    /// (every transmit is delivered or dropped once), not by the engines.
    on_wire: u64,
    self_addressed: u64,
    suppressed: u64,
}

fn run(n: usize, ops: &[Op], compression: bool) -> Counts {
    let total_adds: usize = ops.iter().map(|o| o.a).sum();
    let cfg = EngineConfig {
        max_members: 64,
        max_snapshot: 16,
        compression,
        ..EngineConfig::default()
    };
    let mut c = Cluster::new(n, total_adds, cfg);
    let x = 1u64;
    let mut next_joiner = n;
    let mut removed = vec![false; n + total_adds];
    for (k, op) in ops.iter().enumerate() {
        if k >= 1 {
            // Wait until the mgr has submitted update k-1 (piggy-backed on commit k-2),
            // so that update k's requests are batched into update k.
            let want = x + k as u64;
            let mut guard = 0;
            while !c.events[0].contains(&Event::Submitted { version: want }) {
                assert!(
                    c.deliver_one(),
                    "network went quiet before version {want} was submitted"
                );
                guard += 1;
                assert!(guard < 1_000_000);
            }
        }
        // Removals: falsely suspect live, most junior members of the mgr's view that
        // are neither the mgr nor already on their way out.
        let victims: Vec<_> = c.engines[0]
            .view()
            .members
            .iter()
            .rev()
            .filter_map(|m| c.engine_at(m.addr))
            .filter(|&i| i != 0 && !removed[i])
            .take(op.r)
            .collect();
        assert_eq!(victims.len(), op.r);
        let ids: Vec<_> = victims.iter().map(|&i| c.engines[i].me().id).collect();
        for &v in &victims {
            removed[v] = true;
        }
        let now = c.now;
        c.engines[0].suspect_all(now, &ids);
        c.flush(0);
        for _ in 0..op.a {
            c.join(next_joiner, 0);
            next_joiner += 1;
        }
    }
    c.run_until_quiet(10_000_000);
    let want_version = x + ops.len() as u64;
    let mut total = EngineStats::default();
    for (i, e) in c.engines.iter().enumerate() {
        if !removed[i] {
            assert_eq!(
                e.view().version,
                want_version,
                "n{i} ended at the wrong version"
            );
        }
        for k in 0..total.sent.len() {
            total.sent[k] += e.stats().sent[k];
            total.self_addressed[k] += e.stats().self_addressed[k];
            total.suppressed[k] += e.stats().suppressed[k];
        }
    }
    c.check_safety().unwrap();
    assert!(!c.deliver_one(), "messages still in flight");
    let non_protocol: u64 = MsgKind::ALL
        .iter()
        .filter(|k| !k.is_protocol())
        .map(|k| total.sent[*k as usize])
        .sum();
    let on_wire = c.delivered + c.dropped - non_protocol;
    let sent = protocol(&total.sent);
    let self_addressed = protocol(&total.self_addressed);
    let suppressed = protocol(&total.suppressed);
    Counts {
        logical: sent + self_addressed + suppressed,
        sent,
        on_wire,
        self_addressed,
        suppressed,
    }
}

fn check(n: usize, y: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ops = plan(n, y, 64, &mut rng);
    let sum_r: u64 = ops.iter().map(|o| o.r as u64).sum();
    let on = run(n, &ops, true);
    let expect = compressed_formula(n, &ops);
    assert_eq!(
        on.logical as i64, expect,
        "n={n} Y={y} ops={ops:?} compressed"
    );
    assert_eq!(on.self_addressed, 2 * y as u64 + 1, "n={n} Y={y}");
    assert_eq!(on.suppressed, sum_r, "n={n} Y={y} ops={ops:?}");
    // What the engines say they sent is what the network carried (an independent
    // count: the cluster counts every transmit it delivered or dropped), and it is the
    // closed form less the self-addressed copies (2Y+1) and the copies to members
    // already believed faulty (one per removal).
    assert_eq!(on.sent, on.on_wire, "n={n} Y={y} ops={ops:?}");
    assert_eq!(
        on.on_wire as i64,
        expect - (2 * y as i64 + 1) - sum_r as i64,
        "n={n} Y={y} ops={ops:?}"
    );

    let off = run(n, &ops, false);
    let extra = uncompressed_extra(n, &ops);
    assert_eq!(
        off.logical as i64 - on.logical as i64,
        extra,
        "n={n} Y={y} ops={ops:?} uncompressed"
    );
}

#[test]
fn y_compressed_updates_match_the_closed_form() {
    for n in 3..=63 {
        for y in 1..=10 {
            check(n, y, (n * 100 + y) as u64);
        }
    }
}

#[test]
fn the_simplest_removal_costs_seven_messages_among_three() {
    // M-sub to 3 (one to itself, one to the member being removed), 2 acks (one its
    // own), commit to the 2 that remain: (2·1+1)·3 + 0 + 2·1·(−1) = 7.
    let c = run(3, &[Op { r: 1, a: 0 }], true);
    assert_eq!(c.logical, 7);
    assert_eq!(c.sent, 3);
    assert_eq!(c.on_wire, 3);
}

// ----- Reconfiguration (docs/PROTOCOL.md, "Message counts of a reconfiguration") -----

fn totals(c: &Cluster) -> (u64, u64) {
    let mut logical = 0;
    let mut wire = 0;
    for e in &c.engines {
        let s = e.stats();
        logical += protocol(&s.sent) + protocol(&s.self_addressed) + protocol(&s.suppressed);
        wire += protocol(&s.sent);
    }
    (logical, wire)
}

fn reconf_cfg() -> EngineConfig {
    EngineConfig {
        max_members: 64,
        max_snapshot: 16,
        ..EngineConfig::default()
    }
}

/// The mgr and `f - 1` more members crash; the reconfigurer hears of no proposal and
/// proposes (D3) the removal of the f processes it believes faulty. Phase I costs
/// n R-int + (n − f) answers, then one update removing f: 3n − 2f. In all 5n − 3f
/// (paper's convention: copies to oneself and to members believed faulty count).
fn reconfigure_after_crashes(n: usize, f: usize) -> (u64, u64) {
    let mut c = Cluster::new(n, 0, reconf_cfg());
    c.run_until_quiet(1_000_000);
    let before = totals(&c);
    for i in 0..f {
        // The mgr and the most junior members: n1 stays the most senior survivor.
        c.crash(if i == 0 { 0 } else { n - i });
    }
    c.advance(20_000_000, 10_000);
    c.check_safety().unwrap();
    let live: Vec<_> = c.live_members().collect();
    assert_eq!(live.len(), n - f, "n={n} f={f}");
    assert!(c.agreed(), "n={n} f={f}");
    assert_eq!(
        c.engines[1].view().version,
        2,
        "one reconfiguration, n={n} f={f}"
    );
    assert!(c.engines[1].is_mgr());
    assert_eq!(c.engines[1].stats().reconfigurations, 1);
    let after = totals(&c);
    (after.0 - before.0, after.1 - before.1)
}

#[test]
fn a_reconfiguration_removing_the_crashed_mgr_costs_5n_minus_3() {
    for n in 3..=40 {
        let (logical, wire) = reconfigure_after_crashes(n, 1);
        let n = n as u64;
        assert_eq!(logical, 5 * n - 3, "n={n}");
        // On the wire: no copy to oneself (5: R-int, answer, R-sub, ack, R-com) and
        // none to the crashed mgr (R-int, R-sub).
        assert_eq!(wire, 5 * n - 3 - 5 - 2, "n={n}");
    }
}

#[test]
fn a_reconfiguration_removing_f_crashed_processes_costs_5n_minus_3f() {
    for n in 5..=30 {
        for f in 2..=(n - 1) / 2 {
            let (logical, _) = reconfigure_after_crashes(n, f);
            assert_eq!(logical, (5 * n - 3 * f) as u64, "n={n} f={f}");
        }
    }
}

/// The mgr's M-sub(+j) reached every member, then the mgr crashed before committing:
/// the reconfigurer learns the proposal in Phase I and propagates it (x+1 = +j, with
/// the State-Xfer handshake), then removes the mgr (x+2) as a compressed update:
/// Phase I (2n − 1) plus the closed form of D7 for Y = 2, a = (1, 0), r = (0, 1):
/// 5n + 1 + 2·(2·1 + 1·(−1)) = 5n + 3, less one acknowledgement of x+1 that the
/// crashed mgr (still a member of x+1) never sends. In all 7n + 1.
#[test]
fn a_reconfiguration_propagating_the_mgrs_proposal_costs_7n_plus_1() {
    for n in 3..=30 {
        let mut c = Cluster::new(n, 1, reconf_cfg());
        c.run_until_quiet(1_000_000);
        c.join(n, 0);
        while !c.events[0].contains(&Event::Submitted { version: 2 }) {
            assert!(c.deliver_one());
        }
        c.crash(0);
        c.run_until_quiet(1_000_000);
        let before = totals(&c);
        c.advance(20_000_000, 10_000);
        c.check_safety().unwrap();
        assert!(c.agreed(), "n={n}");
        assert_eq!(c.engines[1].view().version, 3, "n={n}");
        assert_eq!(c.engines[n].view().version, 3, "the joiner, n={n}");
        assert_eq!(c.engines[1].stats().reconfigurations, 1);
        // Several members reported the same proposal of the same initiator: honest.
        for e in &c.engines {
            assert_eq!(e.stats().anomalies, 0);
        }
        let (logical, _) = totals(&c);
        assert_eq!(logical - before.0, 7 * n as u64 + 1, "n={n}");
    }
}
