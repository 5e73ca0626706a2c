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
        let Some(leader) = self.leader.and_then(|l| self.member_in_view(l)) else {
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
    ///
    /// The check for a change to the same client already in the batch goes through
    /// [`BatchIndex`] (constant time): a linear scan of the batch made a batch of `b`
    /// changes cost `b²/2` comparisons (33 million at `b` = 8192).
    pub(super) fn take_client_ops(&mut self, u: &mut Update) {
        let cap = self.cfg.max_client_ops;
        let mut left = self.pending_clients.len();
        self.batch_index.begin(&u.clients);
        while left > 0 && u.clients.len() < cap {
            left -= 1;
            let Some(op) = self.pending_clients.pop_front() else {
                break;
            };
            match self.batch_index.find_or_insert(&u.clients, op.id) {
                None => u.clients.push(op),
                Some(i) if u.clients[i] == op => {}
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

/// An index of the clients in the batch being built (process id -> position in the
/// update's client list): open addressing with linear probing over a table allocated
/// once (twice `max_client_ops` slots, a power of two), emptied in constant time by a
/// generation stamp. No allocation after [`BatchIndex::new`]; deterministic (the hash
/// is FNV-1a, no random keys).
#[derive(Debug)]
pub(super) struct BatchIndex {
    /// (generation, position + 1); a slot is empty unless its generation is current.
    slots: Vec<(u32, u32)>,
    generation: u32,
}

impl BatchIndex {
    /// Room for a batch of `max_client_ops` changes.
    pub(super) fn new(max_client_ops: usize) -> BatchIndex {
        let n = (2 * max_client_ops.max(1)).next_power_of_two();
        BatchIndex {
            slots: vec![(0, 0); n],
            generation: 0,
        }
    }

    /// Starts a batch that already holds `ops` (indexed here).
    pub(super) fn begin(&mut self, ops: &[ClientOp]) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.fill((0, 0));
            self.generation = 1;
        }
        for i in 0..ops.len() {
            // A repeat inside `ops` is found, not inserted: the first stays indexed.
            let _ = self.find_or_insert(&ops[..i], ops[i].id);
        }
    }

    /// The position in `ops` of a change to `id`, if the batch has one; otherwise
    /// records `id` at position `ops.len()` (the caller pushes it there) and returns
    /// None. Past the table's room (a batch larger than announced), it scans.
    pub(super) fn find_or_insert(&mut self, ops: &[ClientOp], id: ProcessId) -> Option<usize> {
        let mask = self.slots.len() - 1;
        if ops.len() >= self.slots.len() / 2 {
            return ops.iter().position(|c| c.id == id);
        }
        let mut h = crate::service::sysview::fnv(0xcbf2_9ce4_8422_2325, id.node.as_bytes());
        h = crate::service::sysview::fnv(h, &id.incarnation.to_le_bytes());
        let mut k = (h as usize) & mask;
        loop {
            let (g, pos) = self.slots[k];
            if g != self.generation {
                self.slots[k] = (self.generation, ops.len() as u32 + 1);
                return None;
            }
            let i = pos as usize - 1;
            if ops.get(i).is_some_and(|c| c.id == id) {
                return Some(i);
            }
            k = (k + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::EngineConfig;
    use crate::testkit::Cluster;
    use crate::view::ClientOp;

    fn cfg() -> EngineConfig {
        EngineConfig {
            max_client_ops: 4,
            max_pending_client_ops: 64,
            ..EngineConfig::default()
        }
    }

    use crate::testkit::client_op as client;

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
    fn batch_index_finds_what_a_scan_finds() {
        use super::BatchIndex;
        let mut idx = BatchIndex::new(64);
        // Several batches through one table (generations), each with repeats.
        for round in 0..5u64 {
            let mut batch: Vec<ClientOp> = vec![client(1000 + round)];
            idx.begin(&batch);
            for k in 0..200u64 {
                let op = client((k * 7 + round) % 50);
                let scan = batch.iter().position(|c| c.id == op.id);
                let found = idx.find_or_insert(&batch, op.id);
                assert_eq!(found, scan, "round {round}, op {k}");
                if found.is_none() {
                    batch.push(op);
                }
            }
            assert_eq!(batch.len(), 51);
        }
    }

    /// Catches `slots.len() / 2` -> `% 2` in `BatchIndex::find_or_insert` (mutated,
    /// every lookup scans the batch: the same answers, at `b²/2` comparisons a
    /// batch): within its room the index records each new change in its table.
    #[test]
    fn batch_index_within_its_room_records_changes_in_its_table() {
        use super::BatchIndex;
        let mut idx = BatchIndex::new(4);
        let mut batch: Vec<ClientOp> = Vec::new();
        idx.begin(&batch);
        for k in 0..4u64 {
            assert_eq!(idx.find_or_insert(&batch, client(k).id), None);
            batch.push(client(k));
        }
        let g = idx.generation;
        let mut recorded: Vec<u32> = idx.slots.iter().filter(|s| s.0 == g).map(|s| s.1).collect();
        recorded.sort_unstable();
        assert_eq!(recorded, [1, 2, 3, 4], "positions + 1, one slot each");
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
