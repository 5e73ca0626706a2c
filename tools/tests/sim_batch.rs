//! A short batch of random seeds (the long one is `make sim`), and replay determinism.

use sgmp_tools::sim::{run_batch, run_seed, SimConfig};

#[test]
fn a_thousand_random_seeds_hold_the_spec() {
    let cfg = SimConfig::fast(5);
    let b = run_batch(0, 1_000, &cfg);
    assert_eq!(b.violations, 0, "failures: {:#?}", b.failures);
    assert_eq!(b.seeds, 1_000);
    // The batch exercises what it claims to.
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
    assert!(b.liveness_checked > 600, "{}", b.liveness_checked);
}

#[test]
fn a_seed_replays_exactly() {
    let mut cfg = SimConfig::fast(5);
    cfg.trace = true;
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
