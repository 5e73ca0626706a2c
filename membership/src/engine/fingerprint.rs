//! A canonical fingerprint of an engine's protocol state, for model checkers.
//!
//! The model checker in `sgmp-tests` (`tests/src/model.rs`) explores the states of a
//! cluster of real engines and must recognise two engines that will behave the same
//! way from now on. [`Engine::model_fingerprint`] hashes exactly the state that
//! decides the engine's future behaviour (view, proposals, suspicions, task phases,
//! timers, queued outputs) and nothing else: counters ([`EngineStats`](super::EngineStats)),
//! scratch buffers and the configuration (fixed for a model) are left out.

use std::fmt::Debug;
use std::hash::{Hash, Hasher};

use super::Engine;

/// Feeds the `Debug` rendering of `v` to `h` (for the engine's private types, which
/// implement `Debug` but not `Hash`). Allocates: meant for model checking only.
fn debug_hash<H: Hasher>(h: &mut H, v: &impl Debug) {
    format!("{v:?}").hash(h);
}

impl Engine {
    /// Hashes the protocol state of this engine into `h`: two engines with the same
    /// configuration and equal fingerprints react identically to every future input.
    ///
    /// Times are hashed as they are (absolute), so the fingerprint is exact. Counters
    /// and scratch buffers are not hashed. Messages and events not yet polled are.
    /// Meant for model checking (it allocates); not part of the stable API.
    #[doc(hidden)]
    pub fn model_fingerprint<H: Hasher>(&self, h: &mut H) {
        self.me.hash(h);
        debug_hash(h, &self.status);
        self.view.version.hash(h);
        self.view.members.hash(h);
        debug_hash(h, &self.last_commit);
        debug_hash(h, &self.next_update.get());
        self.faulty.hash(h);
        self.removed.hash(h);
        self.removed_next.hash(h);
        self.leader.hash(h);
        debug_hash(h, &self.role);
        debug_hash(h, &self.init);
        self.pending_joins.hash(h);
        self.contacts.hash(h);
        self.next_contact.hash(h);
        self.join_retry_at.hash(h);
        if self.cfg.local_health {
            // Signs of life decide whether suspicions stand (D21).
            debug_hash(h, &self.heard);
            self.last_local_suspicion.hash(h);
        }
        self.leaving.hash(h);
        self.leavers.hash(h);
        self.snapshot.hash(h);
        self.received_snapshot.hash(h);
        debug_hash(h, &self.detector);
        self.out_q.len().hash(h);
        for e in &self.out_q {
            e.to.hash(h);
            e.addr.hash(h);
            let (s, l) = (e.start as usize, e.len as usize);
            self.out_buf.get(s..s + l).hash(h);
        }
        debug_hash(h, &self.events);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::Hasher;

    use crate::testkit::Cluster;
    use crate::EngineConfig;

    fn fp(c: &Cluster, i: usize) -> u64 {
        let mut h = DefaultHasher::new();
        c.engines[i].model_fingerprint(&mut h);
        h.finish()
    }

    #[test]
    fn same_history_same_fingerprint_and_a_view_change_changes_it() {
        let cfg = EngineConfig {
            max_members: 8,
            max_snapshot: 64,
            ..EngineConfig::default()
        };
        let mut a = Cluster::new(3, 0, cfg.clone());
        let b = Cluster::new(3, 0, cfg);
        assert_eq!(fp(&a, 1), fp(&b, 1));
        assert_ne!(fp(&a, 1), fp(&a, 2), "the process id is part of the state");
        a.crash(2);
        a.suspect(0, 2);
        a.run_until_quiet(1000);
        assert_ne!(fp(&a, 1), fp(&b, 1));
    }
}
