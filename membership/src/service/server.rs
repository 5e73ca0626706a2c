//! The core member's side of the membership service, sans-IO: it keeps the system view
//! replica (applying each committed update), turns client hellos into registrations
//! and heartbeats, watches the clients assigned to it (reporting silent ones for
//! removal), sends deltas and snapshots, and (at the mgr) promotes core-eligible
//! clients when the core is below its target size.
//!
//! Inputs: [`CoreService::on_view_installed`], [`CoreService::on_datagram`],
//! [`CoreService::on_timeout`]; outputs: [`CoreService::poll_datagram`] (probes to
//! send), [`CoreService::take_ops`] (client changes for `Engine::request_client_ops`),
//! [`CoreService::poll_change`] (system views for the application).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use super::sysview::{watcher_of, SystemChange, SystemView};
use super::wire::{self, Chunk, HelloEntry, ServiceMsg};
use crate::engine::Engine;
use crate::view::{ClientOp, Member, Update};
use crate::{ProcessId, Time};

/// System view changes kept for the application to read (it polls every step).
pub const CHANGE_RING: usize = 16;
/// Room for process ids in each kept change's lists, allocated at start.
const CHANGE_ROOM: usize = 8;

/// Settings of the service on a core member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Most clients in the system view (the table is preallocated).
    pub max_clients: usize,
    /// How often clients send hellos (their heartbeat), µs; also this side's check period.
    pub client_heartbeat_us: u64,
    /// Silence after which a watched client is reported for removal, µs.
    pub client_timeout_us: u64,
    /// Versions of deltas kept for catch-up; a client further behind gets a snapshot.
    pub delta_ring: usize,
    /// Core size the mgr keeps by promoting core-eligible clients (0: no promotion).
    pub target_core: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            max_clients: 16_384,
            client_heartbeat_us: 200_000,
            client_timeout_us: 1_000_000,
            delta_ring: 256,
            target_core: 0,
        }
    }
}

/// Counters of the service on a core member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Hellos received.
    pub hellos: u64,
    /// Registrations forwarded for commit.
    pub registrations: u64,
    /// Registrations refused because the client table held `max_clients`.
    pub registrations_refused: u64,
    /// Silent clients reported for removal.
    pub removals_reported: u64,
    /// Delta datagrams sent (pushes and catch-ups).
    pub delta_datagrams: u64,
    /// Snapshot datagrams sent.
    pub snapshot_datagrams: u64,
    /// Datagrams that failed to decode.
    pub malformed: u64,
    /// Times this member (re)synchronized its replica from a snapshot.
    pub syncs: u64,
    /// Snapshot chunks ignored while joining because a newer snapshot was being
    /// assembled.
    pub sync_chunks_stale: u64,
    /// Promotions sent (mgr).
    pub promotions: u64,
}

/// A delta or snapshot being reassembled from its parts.
#[derive(Debug)]
pub(crate) struct Assembly {
    pub(crate) snapshot: bool,
    pub(crate) version: u64,
    /// The parts received so far, by index (ascending): room grows with the parts that
    /// arrive, not with the count a chunk claims (a forged `parts = 65535` would
    /// otherwise reserve megabytes per datagram).
    parts: Vec<(u16, Update)>,
    /// How many parts make the whole.
    total: u16,
}

impl Assembly {
    pub(crate) fn new(snapshot: bool, version: u64, parts: u16) -> Assembly {
        Assembly {
            snapshot,
            version,
            parts: Vec::new(),
            total: parts,
        }
    }

    /// Adds part `k` (a duplicate or one out of range is ignored); returns the whole
    /// update once every part is in.
    pub(crate) fn add(&mut self, k: u16, u: Update) -> Option<Update> {
        if k >= self.total {
            return None;
        }
        // In order, as they are usually sent: the search ends at the back.
        if let Err(at) = self.parts.binary_search_by_key(&k, |(i, _)| *i) {
            self.parts.insert(at, (k, u));
        }
        if self.parts.len() < usize::from(self.total) {
            return None;
        }
        let mut whole = Update::default();
        for (_, p) in &self.parts {
            wire::append_part(&mut whole, p);
        }
        Some(whole)
    }
}

impl std::fmt::Debug for CoreService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreService")
            .field("me", &self.me)
            .field("version", &self.view.version)
            .field("size", &self.view.size())
            .field("synced", &self.synced)
            .finish_non_exhaustive()
    }
}

/// See the [module docs](self).
pub struct CoreService {
    cfg: ServiceConfig,
    me: ProcessId,
    view: SystemView,
    /// The replica is at the version of the engine's view (else it waits for a snapshot).
    synced: bool,
    /// Lowest snapshot version usable to synchronize (the version before our first view).
    sync_floor: u64,
    sync_asked_at: Option<Time>,
    sync_target: usize,
    assembly: Option<Assembly>,
    change: SystemChange,
    /// The last system changes, oldest first: a ring of [`CHANGE_RING`] entries whose
    /// lists are reused (so that a core view change allocates nothing), numbered by
    /// `next_change` (the number of the next change recorded); the newest `unpolled`
    /// are not polled yet.
    changes: VecDeque<SystemChange>,
    next_change: u64,
    unpolled: usize,
    /// Encoded delta chunks of the last versions.
    ring: VecDeque<(u64, Vec<Vec<u8>>)>,
    /// Chunk buffers not in the ring (with it, `delta_ring` of them: one entry leaves
    /// the ring for each that enters), allocated and touched at start, so that keeping
    /// a version's delta allocates nothing (and faults in no new page).
    spare_chunks: Vec<Vec<Vec<u8>>>,
    snap_cache: Option<(u64, Vec<Vec<u8>>)>,
    /// The clients this member watches, with their last hello: the watcher's
    /// per-client timer. Kept up to date as deltas apply (rebuilt only when the core
    /// changes), so the periodic check visits the watched clients only, not the whole
    /// table at every member.
    last_heard: HashMap<ProcessId, Time>,
    /// Client changes asked for recently (not repeated before a client timeout).
    requested: HashMap<ProcessId, Time>,
    /// Per client address: version sent up to, and when.
    sent: HashMap<SocketAddr, (u64, Time)>,
    /// Per client address: when a snapshot was last sent.
    snap_sent: HashMap<SocketAddr, Time>,
    /// Whether this member watches an address (cache of [`watcher_of`]; emptied when
    /// the core changes).
    watches: HashMap<SocketAddr, bool>,
    ops: Vec<ClientOp>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    check_at: Time,
    promoted: Option<(ProcessId, Time)>,
    stats: ServiceStats,
    scratch: Update,
}

impl CoreService {
    /// A service for core member `me`.
    pub fn new(cfg: ServiceConfig, me: ProcessId) -> CoreService {
        CoreService {
            view: SystemView::with_capacity(cfg.max_clients),
            me,
            synced: false,
            sync_floor: 0,
            sync_asked_at: None,
            sync_target: 0,
            assembly: None,
            change: SystemChange::default(),
            changes: (0..CHANGE_RING)
                .map(|_| SystemChange {
                    added: Vec::with_capacity(CHANGE_ROOM),
                    removed: Vec::with_capacity(CHANGE_ROOM),
                    ..SystemChange::default()
                })
                .collect(),
            next_change: 0,
            unpolled: 0,
            ring: VecDeque::with_capacity(cfg.delta_ring.max(1)),
            spare_chunks: (0..cfg.delta_ring.max(1))
                .map(|_| {
                    // Zeroed, so the pages are touched now rather than on the path.
                    let mut b = vec![0u8; wire::MAX_PAYLOAD];
                    b.clear();
                    vec![b]
                })
                .collect(),
            snap_cache: None,
            last_heard: HashMap::with_capacity(cfg.max_clients),
            requested: HashMap::new(),
            sent: HashMap::new(),
            snap_sent: HashMap::new(),
            watches: HashMap::new(),
            ops: Vec::new(),
            out: VecDeque::new(),
            check_at: Time::ZERO,
            promoted: None,
            stats: ServiceStats::default(),
            scratch: Update::default(),
            cfg,
        }
    }

    /// The replica of the system view (meaningful when [`CoreService::synced`]).
    pub fn view(&self) -> &SystemView {
        &self.view
    }
    /// True when the replica is at the engine's version.
    pub fn synced(&self) -> bool {
        self.synced
    }
    /// Counters.
    pub fn stats(&self) -> &ServiceStats {
        &self.stats
    }
    /// The settings.
    pub fn config(&self) -> &ServiceConfig {
        &self.cfg
    }

    /// This process founded the group: the system view starts as the founders' view.
    pub fn on_founded(&mut self, version: u64, core: &[Member]) {
        self.view.clear();
        self.scratch.clear();
        self.scratch.adds.extend_from_slice(core);
        let u = std::mem::take(&mut self.scratch);
        self.view.apply(&u, version, &mut self.change);
        self.scratch = u;
        self.synced = true;
        self.assembly = None;
        self.rewatch(Time::ZERO);
        self.record_change();
    }

    /// This process joined the core with first view `version`: its replica must come
    /// from a snapshot of version `version - 1` or later.
    pub fn on_joined(&mut self, version: u64) {
        self.view.clear();
        self.synced = false;
        self.sync_floor = version.saturating_sub(1);
        self.sync_asked_at = None;
        self.assembly = None;
        self.clear_ring();
        self.snap_cache = None;
    }

    /// The engine installed view `version`: apply the update that formed it.
    pub fn on_view_installed(&mut self, now: Time, version: u64, engine: &Engine) {
        if !self.synced {
            return;
        }
        if version <= self.view.version {
            return;
        }
        let Some(u) = engine.committed_update(version) else {
            self.synced = false;
            return;
        };
        if version != self.view.version + 1 {
            self.synced = false;
            return;
        }
        self.apply_delta(now, u, version, &engine.view().members);
    }

    fn apply_delta(&mut self, now: Time, u: &Update, version: u64, core: &[Member]) {
        self.view.apply(u, version, &mut self.change);
        debug_assert_eq!(
            self.view.core.len(),
            core.len(),
            "the system view's core is the core view"
        );
        if u.removes.is_empty() && u.adds.is_empty() {
            // Same core, same watchers: only the changed clients move.
            for p in &self.change.removed {
                self.last_heard.remove(p);
            }
            for i in 0..self.change.added.len() {
                let p = self.change.added[i];
                let addr = match self.view.clients.get(&p.node) {
                    Some(c) if c.incarnation == p.incarnation => c.addr,
                    _ => continue,
                };
                if self.watches(addr) {
                    // A newly assigned client gets a full timeout of grace.
                    self.last_heard.insert(p, now);
                }
            }
        } else {
            self.rewatch(now);
        }
        self.record_change();
        self.keep_delta(u, version);
        // Push the delta to every client address this member watches.
        let addrs: Vec<SocketAddr> = self.view.addrs.keys().copied().collect();
        let mine: Vec<SocketAddr> = addrs.into_iter().filter(|a| self.watches(*a)).collect();
        for a in mine {
            self.send_delta_chunks(a, version);
            self.sent.insert(a, (version, now));
        }
    }

    /// True if this member watches the clients at `addr` (by the current core).
    fn watches(&mut self, addr: SocketAddr) -> bool {
        if let Some(w) = self.watches.get(&addr) {
            return *w;
        }
        let w = is_watcher(self.me, addr, &self.view.core);
        self.watches.insert(addr, w);
        w
    }

    /// Rebuilds the watched set after a core change (or a snapshot): clients still
    /// watched keep their last hello, newly assigned ones get a full timeout of grace
    /// from `now`, the others are dropped.
    ///
    /// In place: the tables keep their capacity (`last_heard` holds room for every
    /// client), so a core view change allocates nothing here (it used to build a new
    /// table of `max_clients` entries each time: ~0.4 MB allocated and zeroed on the
    /// install's path at every member).
    fn rewatch(&mut self, now: Time) {
        let (view, watches, me) = (&self.view, &mut self.watches, self.me);
        watches.clear();
        for a in view.addrs.keys() {
            watches.insert(*a, is_watcher(me, *a, &view.core));
        }
        let watched = |id: &ProcessId| {
            view.clients.get(&id.node).is_some_and(|c| {
                c.incarnation == id.incarnation && watches.get(&c.addr) == Some(&true)
            })
        };
        if !self.last_heard.is_empty() {
            self.last_heard.retain(|id, _| watched(id));
        }
        for (n, c) in &view.clients {
            if watches.get(&c.addr) == Some(&true) {
                self.last_heard
                    .entry(ProcessId::new(*n, c.incarnation))
                    .or_insert(now);
            }
        }
    }

    /// Encodes the delta forming `version` into the ring (the oldest entry's buffers,
    /// or spare ones, are reused).
    fn keep_delta(&mut self, u: &Update, version: u64) {
        debug_assert!(
            self.ring.back().is_none_or(|r| r.0 + 1 == version),
            "the ring holds consecutive versions"
        );
        let mut chunks = if self.ring.len() >= self.cfg.delta_ring.max(1) {
            self.ring.pop_front().map(|r| r.1).unwrap_or_default()
        } else {
            self.spare_chunks.pop().unwrap_or_default()
        };
        wire::encode_chunks(u, version, false, &mut chunks);
        self.ring.push_back((version, chunks));
    }

    /// Empties the ring, keeping its buffers for later versions.
    fn clear_ring(&mut self) {
        while let Some((_, c)) = self.ring.pop_front() {
            self.spare_chunks.push(c);
        }
    }

    fn send_delta_chunks(&mut self, to: SocketAddr, version: u64) -> bool {
        let Some(first) = self.ring.front().map(|r| r.0) else {
            return false;
        };
        if version < first {
            return false;
        }
        let Some((_, chunks)) = self.ring.get((version - first) as usize) else {
            return false;
        };
        for c in chunks {
            self.out.push_back((to, c.clone()));
        }
        self.stats.delta_datagrams += chunks.len() as u64;
        true
    }

    fn send_snapshot(&mut self, to: SocketAddr) {
        if self.snap_cache.as_ref().map(|s| s.0) != Some(self.view.version) {
            let mut u = Update::default();
            self.view.to_snapshot(&mut u);
            let mut chunks = Vec::new();
            wire::encode_chunks(&u, self.view.version, true, &mut chunks);
            self.snap_cache = Some((self.view.version, chunks));
        }
        if let Some((_, chunks)) = &self.snap_cache {
            for c in chunks {
                self.out.push_back((to, c.clone()));
            }
            self.stats.snapshot_datagrams += chunks.len() as u64;
        }
    }

    /// A service datagram from `from`.
    pub fn on_datagram(&mut self, now: Time, from: SocketAddr, payload: &[u8], engine: &Engine) {
        let m = match wire::decode(payload) {
            Ok(m) => m,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        match m {
            ServiceMsg::Hello {
                want_snapshot,
                last_version,
                entries,
            } => self.on_hello(now, from, want_snapshot, last_version, &entries),
            ServiceMsg::Chunk(c) if c.snapshot && !self.synced => {
                self.on_sync_chunk(now, c, engine)
            }
            _ => {}
        }
    }

    fn on_hello(
        &mut self,
        now: Time,
        from: SocketAddr,
        want_snapshot: bool,
        last_version: u64,
        entries: &[HelloEntry],
    ) {
        self.stats.hellos += 1;
        if !self.synced {
            return;
        }
        let retry = self.cfg.client_timeout_us;
        for e in entries {
            if e.leaving {
                // Deregistration: removed by the next update (repeated by the client's
                // hellos until it sees itself removed).
                let due = self
                    .requested
                    .get(&e.id)
                    .is_none_or(|t| now.micros_since(*t) >= self.cfg.client_heartbeat_us);
                if self.view.is_client(e.id) && due {
                    self.requested.insert(e.id, now);
                    self.ops.push(ClientOp::remove(e.id));
                }
            } else if self.view.is_client(e.id) {
                // Recorded by the watcher only (whoever else hears it has no timer).
                if let Some(t) = self.last_heard.get_mut(&e.id) {
                    *t = now;
                }
            } else if !e.member && !self.view.contains(e.id) {
                if self.view.clients.len() >= self.cfg.max_clients {
                    // Full: refused until removals make room (the client repeats).
                    self.stats.registrations_refused += 1;
                    continue;
                }
                let due = self
                    .requested
                    .get(&e.id)
                    .is_none_or(|t| now.micros_since(*t) >= retry);
                if due {
                    self.requested.insert(e.id, now);
                    self.ops.push(ClientOp::add(e.id, from, e.core_eligible));
                    self.stats.registrations += 1;
                }
            }
        }
        // Catch-up: send what the endpoint lacks (at most once per heartbeat period).
        let v = self.view.version;
        if last_version >= v && !want_snapshot {
            return;
        }
        if let Some((upto, at)) = self.sent.get(&from) {
            if *upto >= v && now.micros_since(*at) < self.cfg.client_heartbeat_us {
                return;
            }
        }
        let first = self.ring.front().map(|r| r.0).unwrap_or(u64::MAX);
        if want_snapshot || last_version == 0 || last_version + 1 < first {
            // At most one snapshot per heartbeat period per address, whatever the
            // version: an endpoint sends several hellos a period, and a snapshot of a
            // large view is thousands of datagrams.
            let hb = self.cfg.client_heartbeat_us;
            if self
                .snap_sent
                .get(&from)
                .is_some_and(|at| now.micros_since(*at) < hb)
            {
                return;
            }
            self.snap_sent.insert(from, now);
            self.send_snapshot(from);
        } else {
            for x in last_version + 1..=v {
                self.send_delta_chunks(from, x);
            }
        }
        self.sent.insert(from, (v, now));
    }

    fn on_sync_chunk(&mut self, now: Time, chunk: Chunk, engine: &Engine) {
        let Chunk {
            version,
            part,
            parts,
            update,
            ..
        } = chunk;
        // A newer snapshot replaces the one being assembled; an older one's chunks are
        // ignored (answers of two members asked in turn may interleave: each
        // resetting the other, neither would complete). One of a version this member
        // has not committed yet is of no use (it would be dropped once whole): never
        // started, so it cannot hold back the usable ones.
        let committed = engine.view().version;
        match self.assembly.as_ref().map(|a| a.version) {
            _ if version > committed => {
                self.stats.sync_chunks_stale += 1;
                return;
            }
            Some(v) if v > version => {
                self.stats.sync_chunks_stale += 1;
                return;
            }
            Some(v) if v == version => {}
            _ => self.assembly = Some(Assembly::new(true, version, parts)),
        }
        let Some(whole) = self.assembly.as_mut().and_then(|a| a.add(part, update)) else {
            return;
        };
        self.assembly = None;
        let c = engine.view().version;
        if version < self.sync_floor || version > c {
            return;
        }
        if (version + 1..=c).any(|x| engine.committed_update(x).is_none()) {
            return;
        }
        self.view.load_snapshot(&whole, version, &mut self.change);
        self.clear_ring();
        for x in version + 1..=c {
            if let Some(u) = engine.committed_update(x) {
                let u = u.clone();
                self.view.apply(&u, x, &mut self.change);
                self.keep_delta(&u, x);
            }
        }
        self.synced = true;
        self.rewatch(now);
        self.stats.syncs += 1;
        let mut all = SystemChange {
            version: self.view.version,
            size: self.view.size(),
            ..SystemChange::default()
        };
        all.added.extend(self.view.core.iter().map(|m| m.id));
        all.added.extend(
            self.view
                .clients
                .iter()
                .map(|(n, e)| ProcessId::new(*n, e.incarnation)),
        );
        std::mem::swap(&mut self.change, &mut all);
        self.record_change();
        std::mem::swap(&mut self.change, &mut all);
    }

    /// Timers: ask for a snapshot while not synchronized; report silent watched
    /// clients; (mgr) promote a core-eligible client when the core is short.
    pub fn on_timeout(&mut self, now: Time, engine: &Engine) {
        if now < self.check_at {
            return;
        }
        self.check_at = now + self.cfg.client_heartbeat_us;
        let core = &engine.view().members;
        if !self.synced {
            let others: Vec<&Member> = core.iter().filter(|m| m.id != self.me).collect();
            if !others.is_empty() {
                let to = others[self.sync_target % others.len()].addr;
                self.sync_target += 1;
                let mut b = Vec::new();
                wire::encode_hello(&mut b, true, 0, &[]);
                self.out.push_back((to, b));
                self.sync_asked_at = Some(now);
            }
            return;
        }
        // Silent clients this member watches (only those: the table is not visited).
        let timeout = self.cfg.client_timeout_us;
        for (id, heard) in &self.last_heard {
            let id = *id;
            if now.micros_since(*heard) >= timeout {
                let due = self
                    .requested
                    .get(&id)
                    .is_none_or(|t| now.micros_since(*t) >= timeout);
                if due {
                    self.requested.insert(id, now);
                    self.ops.push(ClientOp::remove(id));
                    self.stats.removals_reported += 1;
                }
            }
        }
        let view = &self.view;
        self.requested
            .retain(|_, t| now.micros_since(*t) < 4 * timeout);
        self.sent
            .retain(|a, (_, t)| view.addrs.contains_key(a) || now.micros_since(*t) < 4 * timeout);
        self.snap_sent
            .retain(|_, t| now.micros_since(*t) < 4 * timeout);
        // The watcher cache keeps addresses whose clients all left; forget them once
        // they are as many as the live ones (amortized: the cache stays within twice
        // the addresses in the view).
        if self.watches.len() > 2 * view.addrs.len() + 64 {
            self.watches.retain(|a, _| view.addrs.contains_key(a));
        }
        self.promote(now, engine);
    }

    fn promote(&mut self, now: Time, engine: &Engine) {
        let target = self.cfg.target_core;
        if target == 0 || !engine.is_mgr() || engine.view().len() >= target {
            return;
        }
        if let Some((_, at)) = self.promoted {
            if now.micros_since(at) < 4 * self.cfg.client_timeout_us {
                return;
            }
        }
        let pick = self
            .view
            .clients
            .iter()
            .filter(|(_, c)| c.core_eligible)
            .min_by_key(|(n, _)| **n)
            .map(|(n, c)| (ProcessId::new(*n, c.incarnation), c.addr));
        if let Some((id, addr)) = pick {
            let mut b = Vec::new();
            wire::encode_promote(&mut b, id, &engine.view().members);
            self.out.push_back((addr, b));
            self.promoted = Some((id, now));
            self.stats.promotions += 1;
        }
    }

    /// When [`CoreService::on_timeout`] should next run.
    pub fn poll_timeout(&self) -> Time {
        self.check_at
    }

    /// Client changes to hand to `Engine::request_client_ops` (drains them).
    pub fn take_ops(&mut self, into: &mut Vec<ClientOp>) {
        into.clear();
        into.append(&mut self.ops);
    }

    /// The next datagram to send as a probe.
    pub fn poll_datagram(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// Puts a datagram back at the head of the queue (the transport's probe queue was full).
    pub fn unpoll_datagram(&mut self, d: (SocketAddr, Vec<u8>)) {
        self.out.push_front(d);
    }

    /// The number of the next system view change for the application, not polled
    /// yet (read it with [`CoreService::change`]).
    pub fn poll_change(&mut self) -> Option<u64> {
        if self.unpolled == 0 {
            return None;
        }
        let n = self.next_change - self.unpolled as u64;
        self.unpolled -= 1;
        Some(n)
    }

    /// System view change number `n` (from [`CoreService::poll_change`]), while it is
    /// among the last [`CHANGE_RING`].
    pub fn change(&self, n: u64) -> Option<&SystemChange> {
        if n >= self.next_change {
            return None;
        }
        let back = usize::try_from(self.next_change - n).ok()?;
        let i = self.changes.len().checked_sub(back)?;
        self.changes.get(i)
    }

    /// Records `self.change` in the ring of changes (the oldest entry's lists reused;
    /// lists grown by a large change are shrunk back when their entry is reused for a
    /// small one, so the ring does not keep the memory of the largest changes).
    fn record_change(&mut self) {
        let mut slot = self.changes.pop_front().unwrap_or_default();
        slot.copy_from(&self.change);
        for list in [&mut slot.added, &mut slot.removed] {
            let keep = CHANGE_ROOM.max(list.len());
            if list.capacity() > 4 * keep {
                list.shrink_to(keep);
            }
        }
        self.changes.push_back(slot);
        self.next_change += 1;
        self.unpolled = (self.unpolled + 1).min(self.changes.len());
    }

    /// The clients this member times (those it watches).
    #[cfg(test)]
    pub(crate) fn watched(&self) -> impl Iterator<Item = &ProcessId> {
        self.last_heard.keys()
    }
}

/// Whether `me` watches the clients at `addr` under the core view `core`.
fn is_watcher(me: ProcessId, addr: SocketAddr, core: &[Member]) -> bool {
    watcher_of(addr, core).is_some_and(|w| w.id == me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;

    #[test]
    fn a_full_table_forwards_no_registration() {
        let me = Member {
            id: ProcessId::named("n1", 1),
            addr: "127.0.0.1:1".parse().unwrap(),
        };
        let engine = Engine::new(EngineConfig::default(), me);
        let entry = |name: &str| HelloEntry {
            id: ProcessId::named(name, 1),
            member: false,
            core_eligible: false,
            leaving: false,
        };
        let mut b = Vec::new();
        wire::encode_hello(&mut b, false, 1, &[entry("c1"), entry("c2")]);
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut ops = Vec::new();
        for (max, forwarded) in [(0, 0), (16, 2)] {
            let cfg = ServiceConfig {
                max_clients: max,
                ..ServiceConfig::default()
            };
            let mut s = CoreService::new(cfg, me.id);
            s.on_founded(1, &[me]);
            s.on_datagram(Time(1), from, &b, &engine);
            s.take_ops(&mut ops);
            assert_eq!(ops.len(), forwarded);
            assert_eq!(s.stats().registrations_refused, 2 - forwarded as u64);
        }
    }

    /// While joining, the snapshot being assembled gives way to a newer one only: an
    /// older one's chunks (another member's answer) are ignored.
    #[test]
    fn a_joining_member_assembles_the_newest_snapshot() {
        let me = Member {
            id: ProcessId::named("n1", 1),
            addr: "127.0.0.1:1".parse().unwrap(),
        };
        let mut engine = Engine::new(EngineConfig::default(), me);
        // The member has committed version 8: snapshots up to it are of use.
        engine.bootstrap_at(Time(1), 8, &[me]);
        let mut s = CoreService::new(ServiceConfig::default(), me.id);
        let mut u = Update::default();
        for i in 0..400 {
            u.removes.push(ProcessId::named(&format!("client-{i}"), 1));
        }
        let first_chunk = |version| {
            let mut out = Vec::new();
            wire::encode_chunks(&u, version, true, &mut out);
            assert!(out.len() >= 2);
            out.swap_remove(0)
        };
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        s.on_datagram(Time(1), from, &first_chunk(5), &engine);
        s.on_datagram(Time(2), from, &first_chunk(3), &engine);
        assert_eq!(s.assembly.as_ref().map(|a| a.version), Some(5));
        assert_eq!(s.stats().sync_chunks_stale, 1);
        s.on_datagram(Time(3), from, &first_chunk(7), &engine);
        assert_eq!(s.assembly.as_ref().map(|a| a.version), Some(7));
        // Beyond what the member committed: never started (of no use once whole).
        s.on_datagram(
            Time(4),
            from,
            &first_chunk(crate::view::MAX_VERSION),
            &engine,
        );
        assert_eq!(s.assembly.as_ref().map(|a| a.version), Some(7));
        assert_eq!(s.stats().sync_chunks_stale, 2);
    }

    #[test]
    fn system_changes_are_numbered_kept_in_order_and_overwritten_oldest_first() {
        let me = ProcessId::named("n1", 1);
        let mut s = CoreService::new(ServiceConfig::default(), me);
        assert_eq!(s.poll_change(), None);
        assert_eq!(s.change(0), None, "nothing recorded yet");
        let record = |s: &mut CoreService, v: u64, big: bool| {
            s.change.clear();
            s.change.version = v;
            s.change.size = v as usize;
            let n = if big { 100 } else { 1 };
            for i in 0..n {
                s.change.added.push(ProcessId::named("c", v * 1000 + i));
            }
        };
        for v in 1..=3 {
            record(&mut s, v, v == 2);
            s.record_change();
        }
        let polled: Vec<u64> = std::iter::from_fn(|| s.poll_change()).collect();
        assert_eq!(polled, vec![0, 1, 2]);
        assert_eq!(s.change(1).unwrap().version, 2);
        assert_eq!(s.change(1).unwrap().added.len(), 100);
        assert_eq!(
            s.change(2).unwrap().added,
            vec![ProcessId::named("c", 3000)]
        );
        assert_eq!(s.change(3), None, "not recorded yet");
        // More than the ring holds without a poll: the oldest are gone, the newest
        // CHANGE_RING wait, in order.
        for v in 4..4 + CHANGE_RING as u64 + 5 {
            record(&mut s, v, false);
            s.record_change();
        }
        assert_eq!(s.change(2), None, "overwritten");
        let polled: Vec<u64> = std::iter::from_fn(|| s.poll_change()).collect();
        assert_eq!(polled.len(), CHANGE_RING);
        assert!(polled.windows(2).all(|w| w[1] == w[0] + 1));
        for n in polled {
            assert_eq!(s.change(n).unwrap().version, n + 1);
        }
        // The large change's lists were shrunk when its slot came round again.
        assert!(s
            .changes
            .iter()
            .all(|c| c.added.capacity() <= 4 * CHANGE_ROOM));
    }
}
