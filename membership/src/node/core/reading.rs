//! What a driver reads from [`NodeCore`]: its identity, phase, view, counters and
//! status.

use super::*;

impl NodeCore {
    // ---- reading ----

    /// The current process id (changes on rejoin).
    pub fn me(&self) -> ProcessId {
        self.me
    }

    /// This process's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The settings.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Where the node stands.
    pub fn phase(&self) -> NodePhase {
        if self.recovery.is_some() && !self.durable.ended && self.engine.status() == Status::Idle {
            return NodePhase::Recovering;
        }
        match (self.phase, self.engine.status()) {
            (NodePhase::Leaving | NodePhase::Left | NodePhase::Stopped, _) => self.phase,
            (_, Status::Member) => NodePhase::Member,
            (_, Status::Joining) => NodePhase::Joining,
            _ => self.phase,
        }
    }

    /// The engine (current incarnation).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The transport endpoint (current incarnation).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The membership service, if on.
    pub fn service(&self) -> Option<&CoreService> {
        self.service.as_ref()
    }

    /// System view change number `change` of a [`CoreEvent::SystemView`], while the
    /// service keeps it (the last [`CHANGE_RING`](crate::service::server::CHANGE_RING)).
    pub fn system_change(&self, change: u64) -> Option<&crate::service::SystemChange> {
        self.service.as_ref()?.change(change)
    }

    /// The node core's counters.
    pub fn stats(&self) -> &CoreStats {
        &self.stats
    }

    /// The engine's counters (current incarnation).
    pub fn engine_stats(&self) -> &EngineStats {
        self.engine.stats()
    }

    /// The endpoint's counters (current incarnation).
    pub fn transport_stats(&self) -> TransportStats {
        self.endpoint.stats()
    }

    /// The service's counters (current incarnation), if on.
    pub fn service_stats(&self) -> Option<ServiceStats> {
        self.service.as_ref().map(|s| *s.stats())
    }

    /// Messages waiting in the backlog now.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// The members of installed view `version`, if it is among the last
    /// [`RECENT_VIEWS`] this process installed.
    ///
    /// Updated by an install's bookkeeping, which waits for the step's event poll: a
    /// driver polls [`poll_event`](Self::poll_event) after a step before it reads this.
    pub fn installed_view(&self, version: u64) -> Option<&View> {
        self.recent.iter().rev().find(|v| v.version == version)
    }

    /// The membership service's system view, when the service is on, synchronized,
    /// and this process a member.
    ///
    /// Updated by an install's bookkeeping, which waits for the step's event poll: a
    /// driver polls [`poll_event`](Self::poll_event) after a step before it reads this.
    pub fn system_view(&self) -> Option<&crate::service::SystemView> {
        self.service
            .as_ref()
            .filter(|s| s.synced() && self.engine.status() == Status::Member)
            .map(|s| s.view())
    }

    /// Addresses of `peer`: an address, `NAME#INC`, or a node name (every incarnation
    /// known), as the fault commands name peers.
    ///
    /// Updated by an install's bookkeeping, which waits for the step's event poll: a
    /// driver polls [`poll_event`](Self::poll_event) after a step before it reads this.
    pub fn resolve(&self, peer: &str) -> Vec<SocketAddr> {
        if let Ok(a) = peer.parse::<SocketAddr>() {
            return vec![a];
        }
        if let Some(p) = ProcessId::parse(peer) {
            return self.known.get(&p).copied().into_iter().collect();
        }
        let mut v: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(p, _)| p.node.as_str() == peer)
            .map(|(_, a)| *a)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Whether [`poll_event`](Self::poll_event) has something (the deferred bookkeeping
    /// of an install or a suspicion included), without doing that bookkeeping.
    pub fn has_pending_events(&self) -> bool {
        !self.events.is_empty() || self.deferred.is_some()
    }

    /// The next event, with the process that produced it.
    pub fn poll_event(&mut self) -> Option<(ProcessId, CoreEvent)> {
        self.finish_deferred();
        self.copy_in_memory();
        self.events.pop_front()
    }

    /// Records what the engine sends and receives (for the simulator's trace and its
    /// crash triggers); `bytes`: keep the encoded messages too. `None` turns it off.
    pub fn set_tap(&mut self, tap: Option<bool>) {
        self.tap = tap.map(|bytes| (bytes, Vec::new()));
    }

    /// Takes what the tap recorded since the last call.
    pub fn take_tap(&mut self, into: &mut Vec<TapRecord>) {
        if let Some((_, t)) = &mut self.tap {
            into.append(t);
        }
    }
}
