//! The simulator's checkers catch known-bad protocol changes (`sgmp_membership::sabotage`).
//!
//! Each test switches one sabotage on for its own thread, runs swarm seeds until one of
//! them reports the property the sabotage breaks, and fails if none does within its
//! bound: a checker that stopped biting (or a schedule that stopped reaching the case)
//! fails `make test` here, not only in a mutation run. The bounds are about ten times
//! the seeds needed today (printed with `--nocapture`).
//!
//! `Sabotage::NeverReconfigure` breaks no property of a random seed (the recovery from
//! total failure brings the group back): `sim_batch.rs` bounds the exclusions it
//! multiplies and `sim_figures.rs` shows figure 3 failing with it.

use sgmp_membership::sabotage::{self, Sabotage};
use sgmp_tools::sim::{run_seed, SimConfig};

/// Runs seeds `0..limit` of the swarm batch (5 nodes, 3 spares) with `s` active, until
/// one reports a violation of `property`. Returns that seed, or the properties that
/// were reported instead.
fn first_seed_catching(s: Sabotage, property: &str, limit: u64) -> Result<u64, String> {
    let cfg = SimConfig::with_spare(5, 3);
    let mut seen = std::collections::BTreeMap::<String, u64>::new();
    for seed in 0..limit {
        let run = std::panic::catch_unwind(|| sabotage::with(s, || run_seed(seed, &cfg).0));
        match run {
            Ok(r) => {
                if r.violations.iter().any(|v| v.property == property) {
                    println!("{s:?}: seed {seed} reports {property} (others so far: {seen:?})");
                    return Ok(seed);
                }
                for v in &r.violations {
                    *seen.entry(v.property.to_string()).or_default() += 1;
                }
            }
            // An invariant assertion of the engine (debug builds) caught it first.
            Err(_) => *seen.entry("panic".into()).or_default() += 1,
        }
    }
    Err(format!(
        "{s:?}: no {property} violation in {limit} seeds (other reports: {seen:?})"
    ))
}

#[test]
fn a_quorum_of_one_is_caught_as_two_views_of_one_version() {
    first_seed_catching(Sabotage::QuorumOfOne, "uniqueness", 200).unwrap();
}

/// The minority rule (decided from the recorded connectivity) bites as well: a quorum
/// of one lets a partitioned minority move on.
#[test]
fn a_quorum_of_one_is_caught_by_the_minority_rule() {
    first_seed_catching(Sabotage::QuorumOfOne, "minority", 300).unwrap();
}

#[test]
fn a_reconfigurer_ignoring_its_interrogation_is_caught() {
    first_seed_catching(Sabotage::IgnoreInterrogation, "uniqueness", 400).unwrap();
}

#[test]
fn a_removal_nobody_believed_is_caught_as_gmp1() {
    first_seed_catching(Sabotage::RemoveJuniorWithJoin, "gmp1", 200).unwrap();
}

#[test]
fn a_mgr_dropping_joins_is_caught_as_a_liveness_violation() {
    first_seed_catching(Sabotage::DropJoins, "liveness", 200).unwrap();
}

#[test]
fn a_recovery_ignoring_acceptances_is_caught() {
    first_seed_catching(Sabotage::RecoveryIgnoresAcceptances, "uniqueness", 700).unwrap();
}

#[test]
fn a_recovery_by_a_minority_is_caught() {
    first_seed_catching(Sabotage::RecoveryQuorumOfOne, "uniqueness", 200).unwrap();
}

#[test]
fn a_restart_as_the_same_process_is_caught() {
    first_seed_catching(Sabotage::RestartAsTheSameProcess, "finality", 200).unwrap();
}

#[test]
fn a_restart_forgetting_its_view_is_caught_by_the_record() {
    first_seed_catching(Sabotage::ForgetViewOnRestart, "liveness", 200).unwrap();
}

/// D32 undone: the two N = 3 seeds that found it (session 28) fail again.
#[test]
fn two_installs_in_one_step_are_caught() {
    let cfg = SimConfig::with_spare(3, 3);
    for seed in [106_711, 115_419] {
        let r = std::panic::catch_unwind(|| {
            sabotage::with(Sabotage::TwoInstallsPerStep, || run_seed(seed, &cfg).0)
        });
        let caught = match r {
            Ok(r) => !r.violations.is_empty(),
            // The node core's assertion that an install's view is the engine's.
            Err(_) => true,
        };
        assert!(caught, "seed {seed} passes with two installs in one step");
    }
}

#[test]
fn without_a_sabotage_the_same_seeds_pass() {
    let cfg = SimConfig::with_spare(5, 3);
    for seed in 0..50 {
        let (r, _) = run_seed(seed, &cfg);
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
    }
}
