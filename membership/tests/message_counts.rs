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
