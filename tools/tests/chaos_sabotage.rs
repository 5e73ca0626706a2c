//! The chaos run's checks catch a known-bad protocol in real processes: five debug
//! `sgmpd` (built for the tests, so with the test-only `sabotage` feature) told by
//! `SGMP_SABOTAGE` to make every majority one process. Under the run's partitions a
//! minority moves on, and `logcheck` must find it in the event logs (two views of one
//! version, a removed process installing, or a removal nobody observed). A binary of its own, so that it never runs beside `chaos_short`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use sgmp_membership::sabotage;
use sgmp_tools::chaos::{run, ChaosConfig};

const SGMPD: &str = env!("CARGO_BIN_EXE_sgmpd");
const SGMPCTL: &str = env!("CARGO_BIN_EXE_sgmpctl");

#[test]
fn a_quorum_of_one_in_real_daemons_is_caught_by_the_event_logs() {
    let mut cfg = ChaosConfig::new(PathBuf::from(SGMPD), Some(PathBuf::from(SGMPCTL)));
    cfg.seed = 29_001;
    cfg.seconds = 20;
    cfg.daemon_env = vec![(sabotage::ENV.to_string(), "QuorumOfOne".to_string())];
    let stop = AtomicBool::new(false);
    let r = run(&cfg, &stop).expect("chaos run set up");
    eprintln!("faults {:?}", r.faults);
    eprintln!("violations: {:#?}", r.violations);
    // Seed 29001 showed all three; any one of them is the minority moving on.
    assert!(
        r.violations
            .iter()
            .any(|v| v.contains("two views of version")
                || v.contains("but installed view")
                || v.contains("gmp1:")),
        "no safety violation found with a quorum of one: {:?}",
        r.violations
    );
}

/// A name that is no sabotage is refused at start (a build without the feature refuses
/// any name: `sabotage::from_env`, checked by hand in session 29 with a plain
/// `cargo build`; this binary has the feature, as the test above needs).
#[test]
fn an_unknown_sabotage_is_refused_at_start() {
    let out = std::process::Command::new(SGMPD)
        .env(sabotage::ENV, "NoSuchThing")
        .args(["--id", "a", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such sabotage"), "{err}");
}
