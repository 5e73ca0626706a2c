//! The model checker catches a known-bad protocol change (`sgmp_membership::sabotage`).
//!
//! A binary of its own: the sabotage is switched on for every thread of the process
//! (stateright explores on its own threads), so nothing else may run beside it. The
//! exhaustive three-process model of `model_check.rs` holds its safety property with
//! the real engine; with every majority made one process it must not. (A reconfigurer
//! ignoring its interrogation, `Sabotage::IgnoreInterrogation`, is safe in this model:
//! with three processes the member holding the crashed mgr's submission also adopted
//! its removal of the reconfigurer and does not answer it; the simulator's five
//! processes catch it, `tools/tests/sim_sabotage.rs`.)

use std::time::Duration;

use sgmp_membership::sabotage::{self, Sabotage};
use sgmp_tests::model::{render_path, ModelConfig, SgmpModel};
use stateright::{Checker, Expectation, HasDiscoveries, Model};

/// Breadth-first over the 3-founder model (1 crash, 1 false suspicion) with `s` active
/// everywhere, until an `always` property fails. Returns the failed properties.
fn violated_with(s: Sabotage) -> Vec<&'static str> {
    let cfg = ModelConfig {
        joiner: false,
        ..ModelConfig::new(3)
    };
    sabotage::with_everywhere(s, || {
        let model = SgmpModel::new(cfg);
        let always: std::collections::BTreeSet<&'static str> = model
            .properties()
            .iter()
            .filter(|p| p.expectation == Expectation::Always)
            .map(|p| p.name)
            .collect();
        let c = model
            .checker()
            .threads(2)
            .timeout(Duration::from_secs(60))
            .finish_when(HasDiscoveries::AnyOf(always.clone()))
            .spawn_bfs()
            .join();
        println!(
            "{s:?}: {} states ({} unique), max depth {}",
            c.state_count(),
            c.unique_state_count(),
            c.max_depth()
        );
        let found: Vec<&'static str> = always
            .iter()
            .copied()
            .filter(|p| c.discoveries().contains_key(p))
            .collect();
        for (p, path) in c.discoveries() {
            if found.contains(&p) {
                println!(
                    "{s:?}: {p} fails after {} states:\n{}",
                    c.state_count(),
                    render_path(&path.into_vec())
                );
            }
        }
        found
    })
}

#[test]
fn the_model_catches_a_quorum_of_one() {
    let found = violated_with(Sabotage::QuorumOfOne);
    assert!(
        found.iter().any(|p| p.starts_with("safety")),
        "no safety violation found with a quorum of one: {found:?}"
    );
}
