//! Client changes (the membership service, docs/SERVICE.md): the engine carries them
//! as part of the update value, so they are committed by the same submit / ack /
//! commit rounds and the same reconfiguration as core changes, and every member applies
//! the same sequence. The engine neither keeps nor checks the client table: the service
//! layer does, applying [`Engine::committed_update`] in version order.
//!
//! Here: the queue of client changes waiting for an update (at the mgr) or for
//! forwarding (at other members), the `ClientOps` message, GetUpdate's share of
//! client changes, and the log of committed updates.

use super::{Engine, Role, Status, COMMIT_LOG};
use crate::msg::{MsgKind, Writer};
use crate::view::{ClientOp, Update};
use crate::{ProcessId, Time};

impl Engine {
    /// Asks for client changes to be committed: the mgr queues them for its next
    /// update (starting one if idle); another member forwards them to the mgr it
    /// follows. Dropped (and counted in `client_ops_dropped`) when this process is not
    /// a member, the service is off (`max_client_ops` 0) or the queue is full: the
    /// caller repeats a change until it sees it committed.
    pub fn request_client_ops(&mut self, now: Time, ops: &[ClientOp]) {
        if self.status != Status::Member || self.cfg.max_client_ops == 0 {
            self.stats.client_ops_dropped += ops.len() as u64;
            return;
        }
        if self.role == Role::Initiator {
            self.queue_client_ops(now, ops);
            return;
        }
        let Some(leader) = self.leader.and_then(|l| self.view.member(l).copied()) else {
            self.stats.client_ops_dropped += ops.len() as u64;
            return;
        };
        for chunk in ops.chunks(self.cfg.max_client_ops) {
            let start = self.begin(MsgKind::ClientOps);
            Writer::continue_at(&mut self.out_buf).client_ops(chunk);
            self.push_out(MsgKind::ClientOps, leader, start);
        }
    }

    /// Client changes queued and not yet in an update.
    pub fn pending_client_ops(&self) -> usize {
        self.pending_clients.len()
    }

    /// The update that formed view `version`, if it is among the last [`COMMIT_LOG`]
    /// committed (the joiner's first view included).
    pub fn committed_update(&self, version: u64) -> Option<&Update> {
        let (v, u) = &self.commit_log[(version % COMMIT_LOG as u64) as usize];
        (*v == version && version != 0).then_some(u)
    }

    /// ClientOps from another member: an initiator queues them; an outer member does
    /// not forward again (no forwarding loops), it drops and counts them.
    pub(super) fn on_client_ops(&mut self, now: Time, _from: ProcessId, ops: &[ClientOp]) {
        if self.role == Role::Initiator {
            self.queue_client_ops(now, ops);
        } else {
            self.stats.client_ops_dropped += ops.len() as u64;
        }
    }

    fn queue_client_ops(&mut self, now: Time, ops: &[ClientOp]) {
        if self.pending_clients.is_empty() {
            self.clients_since = now;
        }
        for op in ops {
            if self.pending_clients.len() < self.cfg.max_pending_client_ops {
                self.pending_clients.push_back(*op);
            } else {
                self.stats.client_ops_dropped += 1;
            }
        }
        self.maybe_start_update(now);
    }

    /// When an idle mgr with only client changes pending may propose them (the first
    /// of them arrived `client_linger_us` ago); None when nothing waits for that.
    pub(super) fn client_linger_due(&self, _now: Time) -> Option<Time> {
        let idle_mgr = self.role == Role::Initiator
            && self.init.is_mgr()
            && self.init.phase == super::initiator::Phase::Idle;
        let only_clients = self.faulty.is_empty() && self.pending_joins.is_empty();
        (idle_mgr
            && only_clients
            && !self.pending_clients.is_empty()
            && self.cfg.client_linger_us > 0)
            .then(|| self.clients_since + self.cfg.client_linger_us)
    }

    /// GetUpdate's client part: moves up to `max_client_ops` queued changes into `u`,
    /// at most one per client (a later change to the same client waits for the next
    /// update, keeping its order; an exact repeat is dropped).
    pub(super) fn take_client_ops(&mut self, u: &mut Update) {
        let cap = self.cfg.max_client_ops;
        let mut left = self.pending_clients.len();
        while left > 0 && u.clients.len() < cap {
            left -= 1;
            let Some(op) = self.pending_clients.pop_front() else {
                break;
            };
            match u.clients.iter().find(|c| c.id == op.id) {
                None => u.clients.push(op),
                Some(c) if *c == op => {}
                Some(_) => self.pending_clients.push_back(op),
            }
        }
    }

    /// Records `last_commit` as the update that formed view `version`.
    pub(super) fn log_commit(&mut self, version: u64) {
        let slot = &mut self.commit_log[(version % COMMIT_LOG as u64) as usize];
        slot.0 = version;
        slot.1.copy_from(&self.last_commit);
        self.stats.client_ops_committed += self.last_commit.clients.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use crate::config::EngineConfig;
    use crate::testkit::Cluster;
    use crate::view::ClientOp;
    use crate::ProcessId;

    fn cfg() -> EngineConfig {
        EngineConfig {
            max_client_ops: 4,
            max_pending_client_ops: 64,
            ..EngineConfig::default()
        }
    }

    fn client(i: u64) -> ClientOp {
        ClientOp::add(
            ProcessId::named(&format!("c{i}"), 1),
            "127.0.0.1:9".parse().unwrap(),
            false,
        )
    }

    #[test]
    fn client_changes_are_committed_in_batches_and_logged_everywhere() {
        let mut c = Cluster::new(3, 0, cfg());
        c.run_until_quiet(10_000);
        let v0 = c.engines[0].view().version;
        let ops: Vec<_> = (0..10).map(client).collect();
        // Asked at a non-mgr member: forwarded to the mgr.
        let now = c.now;
        c.engines[2].request_client_ops(now, &ops);
        c.flush(2);
        c.run_until_quiet(10_000);
        let v = c.engines[0].view().version;
        assert_eq!(v, v0 + 3, "10 changes at 4 per update take 3 updates");
        for e in &c.engines {
            assert_eq!(e.view().version, v);
            let mut seen = Vec::new();
            for x in v0 + 1..=v {
                let u = e.committed_update(x).expect("logged");
                assert!(u.clients.len() <= 4);
                seen.extend(u.clients.iter().copied());
            }
            assert_eq!(seen, ops, "every member saw the same changes in order");
            assert_eq!(e.view().len(), 3, "clients are not core members");
        }
    }

    #[test]
    fn one_change_per_client_per_update() {
        let mut c = Cluster::new(3, 0, cfg());
        c.run_until_quiet(10_000);
        let v0 = c.engines[0].view().version;
        let a = client(1);
        let r = ClientOp::remove(a.id);
        let now = c.now;
        c.engines[0].request_client_ops(now, &[a, a, r]);
        c.flush(0);
        c.run_until_quiet(10_000);
        let e = &c.engines[1];
        assert_eq!(e.view().version, v0 + 2);
        assert_eq!(e.committed_update(v0 + 1).unwrap().clients, [a]);
        assert_eq!(e.committed_update(v0 + 2).unwrap().clients, [r]);
    }

    #[test]
    fn service_off_drops_and_counts() {
        let mut c = Cluster::new(3, 0, EngineConfig::default());
        c.run_until_quiet(10_000);
        let now = c.now;
        c.engines[0].request_client_ops(now, &[client(1)]);
        assert_eq!(c.engines[0].stats().client_ops_dropped, 1);
    }
}
