//! Short batches of random seeds (the long one is `make sim`), and replay determinism.

use sgmp_tools::sim::{run_batch, run_seed, SimConfig};

/// Swarm schedules (the default): each seed its own fault mix, the nastier partitions
/// (one-way cuts of a whole node, majorities ring, swizzle-clogging), pauses, and a
/// liveness phase with a majority core.
#[test]
fn three_thousand_swarm_seeds_hold_the_spec() {
    let cfg = SimConfig::fast(5);
    assert!(cfg.swarm);
    let b = run_batch(0, 3_000, &cfg);
    assert_eq!(b.violations, 0, "failures: {:#?}", b.failures);
    assert_eq!(b.seeds, 3_000);
    // The batch exercises what it claims to.
    for kind in [
        "crash",
        "crash_mgr",
        "crash_mid_multicast",
        "false_suspicion",
        "concurrent_reconfigurers",
        "leave",
        "pause",
        "partition",
        "one_way_partition",
        "majorities_ring",
        "swizzle_clog",
        "rejoin_new_incarnation",
        "join",
        "loss",
        "duplication",
        "reordering",
        "delay",
        "liveness_core",
        "liveness_isolated",
    ] {
        assert!(
            b.fault_kinds.get(kind).copied().unwrap_or(0) > 0,
            "{kind} never exercised: {:?}",
            b.fault_kinds
        );
    }
    assert!(b.liveness_checked > 1_500, "{}", b.liveness_checked);
}

/// The classic schedules (one fault mix for every seed).
#[test]
fn classic_seeds_hold_the_spec() {
    let mut cfg = SimConfig::fast(5);
    cfg.swarm = false;
    let b = run_batch(0, 500, &cfg);
    assert_eq!(b.violations, 0, "failures: {:#?}", b.failures);
    for kind in [
        "crash",
        "crash_mgr",
        "crash_mid_multicast",
        "false_suspicion",
        "concurrent_reconfigurers",
        "partition",
        "rejoin_new_incarnation",
        "loss",
        "duplication",
        "reordering",
        "delay",
    ] {
        assert!(
            b.fault_kinds.get(kind).copied().unwrap_or(0) > 0,
            "{kind} never exercised: {:?}",
            b.fault_kinds
        );
    }
    assert!(b.liveness_checked > 300, "{}", b.liveness_checked);
}

#[test]
fn a_seed_replays_exactly() {
    for swarm in [true, false] {
        let mut cfg = SimConfig::fast(5);
        cfg.trace = true;
        cfg.swarm = swarm;
        for seed in [7, 1234] {
            let (a, sa) = run_seed(seed, &cfg);
            let (b, sb) = run_seed(seed, &cfg);
            assert_eq!(sa.trace_lines(), sb.trace_lines());
            assert_eq!(a.sim_time_us, b.sim_time_us);
            assert_eq!(a.messages, b.messages);
            assert_eq!(a.fault_kinds, b.fault_kinds);
            assert!(!sa.trace_lines().is_empty());
        }
    }
}
