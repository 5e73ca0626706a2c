//! The client side of the membership service, sans-IO: one endpoint (one address)
//! hosting one or many clients (process ids), keeping a replica of the system view.
//!
//! It sends hellos (registration for clients not yet in the view, heartbeat for the
//! others) every heartbeat period to its watcher (or to the seeds until it knows the
//! core), applies deltas strictly in version order (so it never skips or repeats a
//! version), asks again on a gap (to whoever sent the datagram that showed the gap: a
//! live core member), and loads a snapshot when it has nothing or is too far behind.
//! A client that sees itself removed stops for good (it may come back only as a new
//! incarnation).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use super::server::Assembly;
use super::sysview::{watcher_of, SystemChange, SystemView};
use super::wire::{self, Chunk, HelloEntry, ServiceMsg};
use crate::view::Member;
use crate::{ProcessId, Time};

/// Slices of the heartbeat period over which an endpoint with more clients than
/// `HELLO_SLICES` full hellos hold spreads its hellos (each client is still listed once
/// per period).
pub const HELLO_SLICES: usize = 8;

/// Where one local client stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Asking to be added.
    Registering,
    /// In the system view.
    Member,
    /// Deregistering: asks to be removed until it sees itself removed.
    Leaving,
    /// Removed (or deregistered): never a member again under this process id.
    Removed,
}

/// What the client endpoint reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A new system view was applied.
    SystemView(SystemChange),
    /// A local client appeared in the system view.
    Registered(ProcessId),
    /// A local client was removed from the system view.
    Removed(ProcessId),
    /// The mgr asks this local client to join the core through `seeds`.
    Promoted {
        /// The client.
        id: ProcessId,
        /// Core members to join through.
        seeds: Vec<Member>,
    },
}

/// Counters of a client endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Hello datagrams sent.
    pub hellos_sent: u64,
    /// Deltas applied.
    pub deltas_applied: u64,
    /// Snapshots loaded.
    pub snapshots_loaded: u64,
    /// Chunks ignored (old, duplicate, or not applicable).
    pub chunks_ignored: u64,
    /// Gaps seen (a delta for a later version than the next).
    pub gaps: u64,
    /// Datagrams that failed to decode.
    pub malformed: u64,
}

impl std::fmt::Debug for ClientCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCore")
            .field("me", &self.me)
            .field("local", &self.local.len())
            .field("version", &self.view.version)
            .finish_non_exhaustive()
    }
}

/// See the [module docs](self).
pub struct ClientCore {
    seeds: Vec<SocketAddr>,
    me: SocketAddr,
    heartbeat_us: u64,
    local: Vec<(ProcessId, ClientState, bool)>,
    index: HashMap<ProcessId, usize>,
    view: SystemView,
    assemblies: Vec<Assembly>,
    hello_at: Time,
    /// The next slice of `local` to list (see [`HELLO_SLICES`]).
    slice: usize,
    /// The next hello lists every client at once ([`ClientCore::hello_now`]).
    full_hello: bool,
    seed_next: usize,
    /// Ask this core member at once (set on a gap).
    urgent: Option<SocketAddr>,
    urgent_at: Time,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<ClientEvent>,
    stats: ClientStats,
}

impl ClientCore {
    /// An endpoint at address `me` that will reach the core through `seeds`, sending
    /// hellos every `heartbeat_us`.
    pub fn new(me: SocketAddr, seeds: Vec<SocketAddr>, heartbeat_us: u64) -> ClientCore {
        ClientCore {
            seeds,
            me,
            heartbeat_us: heartbeat_us.max(1),
            local: Vec::new(),
            index: HashMap::new(),
            view: SystemView::default(),
            assemblies: Vec::new(),
            hello_at: Time::ZERO,
            slice: 0,
            full_hello: false,
            seed_next: 0,
            urgent: None,
            urgent_at: Time::ZERO,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: ClientStats::default(),
        }
    }

    /// Adds a local client; it registers with the next hello. Returns false if this
    /// process id is already hosted here.
    pub fn add_client(&mut self, id: ProcessId, core_eligible: bool) -> bool {
        if self.index.contains_key(&id) {
            return false;
        }
        self.index.insert(id, self.local.len());
        self.local
            .push((id, ClientState::Registering, core_eligible));
        true
    }

    /// Deregisters a local client: its hellos ask for its removal until a system view
    /// removes it (then [`ClientEvent::Removed`]); it never registers again.
    pub fn deregister(&mut self, id: ProcessId) {
        if let Some(&i) = self.index.get(&id) {
            if self.local[i].1 != ClientState::Removed {
                self.local[i].1 = ClientState::Leaving;
            }
        }
    }

    /// Stops a local client silently (as a crash would): its heartbeats stop and the
    /// core removes it after the client timeout.
    pub fn crash_client(&mut self, id: ProcessId) {
        if let Some(&i) = self.index.get(&id) {
            self.local[i].1 = ClientState::Removed;
        }
    }

    /// State of a local client.
    pub fn client_state(&self, id: ProcessId) -> Option<ClientState> {
        self.index.get(&id).map(|&i| self.local[i].1)
    }

    /// The system view replica.
    pub fn view(&self) -> &SystemView {
        &self.view
    }

    /// Counters.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// A datagram from `from` (`now` is taken for the sans-IO convention; the client
    /// acts on datagrams independently of their arrival time).
    pub fn on_datagram(&mut self, _now: Time, from: SocketAddr, payload: &[u8]) {
        let m = match wire::decode(payload) {
            Ok(m) => m,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        match m {
            ServiceMsg::Chunk(c) => self.on_chunk(from, c),
            ServiceMsg::Promote { id, seeds } => {
                // Only a registered client that may be promoted, and with somewhere to
                // join: with no seeds it would found a group of its own.
                let eligible = self
                    .index
                    .get(&id)
                    .is_some_and(|&i| self.local[i].1 == ClientState::Member && self.local[i].2);
                if eligible && !seeds.is_empty() {
                    self.events.push_back(ClientEvent::Promoted { id, seeds });
                } else {
                    self.stats.chunks_ignored += 1;
                }
            }
            ServiceMsg::Hello { .. } => self.stats.chunks_ignored += 1,
        }
    }

    fn on_chunk(&mut self, from: SocketAddr, chunk: Chunk) {
        let Chunk {
            snapshot,
            version,
            part,
            parts,
            update,
        } = chunk;
        let v = self.view.version;
        // `checked_add`: a (forged) snapshot may have put the view at the last version.
        let next = v.checked_add(1);
        let useful = if snapshot {
            version > v
        } else {
            v > 0 && Some(version) == next
        };
        if !useful {
            if !snapshot && next.is_some_and(|n| version > n) {
                // A gap: ask the sender (a live core member) for what is missing.
                self.stats.gaps += 1;
                self.urgent = Some(from);
            } else {
                self.stats.chunks_ignored += 1;
            }
            return;
        }
        let i = match self
            .assemblies
            .iter()
            .position(|a| a.snapshot == snapshot && a.version == version)
        {
            Some(i) => i,
            None => {
                if self.assemblies.len() >= 4 {
                    self.assemblies.remove(0);
                }
                self.assemblies
                    .push(Assembly::new(snapshot, version, parts));
                self.assemblies.len() - 1
            }
        };
        let Some(whole) = self.assemblies[i].add(part, update) else {
            return;
        };
        self.assemblies.remove(i);
        let mut change = SystemChange::default();
        if snapshot {
            let old = std::mem::take(&mut self.view);
            self.view.load_snapshot(&whole, version, &mut change);
            // Report the difference from what this endpoint had.
            change.added.retain(|p| !old.contains(*p));
            change.removed.extend(
                old.core
                    .iter()
                    .map(|m| m.id)
                    .chain(
                        old.clients
                            .iter()
                            .map(|(n, c)| ProcessId::new(*n, c.incarnation)),
                    )
                    .filter(|p| !self.view.contains(*p)),
            );
            self.stats.snapshots_loaded += 1;
        } else {
            self.view.apply(&whole, version, &mut change);
            self.stats.deltas_applied += 1;
        }
        let v = self.view.version;
        self.assemblies.retain(|a| {
            if a.snapshot {
                a.version > v
            } else {
                Some(a.version) == v.checked_add(1)
            }
        });
        self.update_local(&change);
        self.events.push_back(ClientEvent::SystemView(change));
    }

    fn update_local(&mut self, change: &SystemChange) {
        for p in &change.added {
            if let Some(&i) = self.index.get(p) {
                if self.local[i].1 == ClientState::Registering {
                    self.local[i].1 = ClientState::Member;
                    self.events.push_back(ClientEvent::Registered(*p));
                }
            }
        }
        for p in &change.removed {
            if let Some(&i) = self.index.get(p) {
                if self.local[i].1 != ClientState::Removed {
                    self.local[i].1 = ClientState::Removed;
                    self.events.push_back(ClientEvent::Removed(*p));
                }
            }
        }
    }

    /// Timers: the periodic hello (and an early one after a gap).
    pub fn on_timeout(&mut self, now: Time) {
        if let Some(to) = self.urgent {
            if now.micros_since(self.urgent_at) >= self.heartbeat_us / 4 {
                self.urgent = None;
                self.urgent_at = now;
                self.send_hellos(to, 0..0);
            }
        }
        if now < self.hello_at {
            return;
        }
        // An endpoint hosting many clients spreads its hellos over the period in
        // HELLO_SLICES slices (each client still listed once per period): a burst of
        // hundreds of datagrams would overflow the watcher's socket buffer, and the
        // datagrams dropped would be the same clients' every period.
        let sliced = !self.full_hello && self.local.len() > wire::MAX_HELLO_PIDS * HELLO_SLICES;
        let range = if sliced {
            let n = self.local.len();
            let k = self.slice % HELLO_SLICES;
            self.slice = (k + 1) % HELLO_SLICES;
            self.hello_at = now + (self.heartbeat_us / HELLO_SLICES as u64).max(1);
            n * k / HELLO_SLICES..n * (k + 1) / HELLO_SLICES
        } else {
            self.slice = 0;
            self.hello_at = now + self.heartbeat_us;
            0..self.local.len()
        };
        self.full_hello = false;
        let to = match watcher_of(self.me, &self.view.core) {
            Some(w) => w.addr,
            None => {
                if self.seeds.is_empty() {
                    return;
                }
                let s = self.seeds[self.seed_next % self.seeds.len()];
                // The next seed at the next period (the slices of one period go to one
                // seed: each seed asked answers with a snapshot).
                if self.slice == 0 {
                    self.seed_next += 1;
                }
                s
            }
        };
        self.send_hellos(to, range);
    }

    fn send_hellos(&mut self, to: SocketAddr, clients: std::ops::Range<usize>) {
        let entries: Vec<HelloEntry> = if !clients.is_empty() {
            self.local[clients]
                .iter()
                .filter(|(_, s, _)| *s != ClientState::Removed)
                .map(|(id, s, e)| HelloEntry {
                    id: *id,
                    member: *s == ClientState::Member,
                    core_eligible: *e,
                    leaving: *s == ClientState::Leaving,
                })
                .collect()
        } else {
            Vec::new()
        };
        let want = self.view.version == 0;
        let mut at = 0;
        loop {
            let mut b = Vec::with_capacity(wire::MAX_PAYLOAD);
            let n = wire::encode_hello(&mut b, want, self.view.version, &entries[at..]);
            self.out.push_back((to, b));
            self.stats.hellos_sent += 1;
            at += n;
            if at >= entries.len() || n == 0 {
                break;
            }
        }
    }

    /// Makes the next [`ClientCore::on_timeout`] send the hellos at once.
    pub fn hello_now(&mut self) {
        self.hello_at = Time::ZERO;
        self.full_hello = true;
    }

    /// When [`ClientCore::on_timeout`] should next run.
    pub fn poll_timeout(&self) -> Time {
        if self.urgent.is_some() {
            return self.urgent_at + self.heartbeat_us / 4;
        }
        self.hello_at
    }

    /// The next datagram to send (as a probe).
    pub fn poll_datagram(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// Puts a datagram back at the head of the queue (the probe queue was full).
    pub fn unpoll_datagram(&mut self, d: (SocketAddr, Vec<u8>)) {
        self.out.push_front(d);
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{ClientOp, Member, Update};

    /// A (forged) snapshot at the last version a chunk may carry, then deltas: no
    /// overflow, nothing applied past it; a version beyond it is malformed.
    #[test]
    fn a_snapshot_at_the_last_version_is_no_overflow() {
        let me: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let seed: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let mut c = ClientCore::new(me, vec![seed], 200_000);
        let mut out = Vec::new();
        let last = crate::view::MAX_VERSION;
        wire::encode_chunks(&Update::default(), last, true, &mut out);
        c.on_datagram(Time(1), seed, &out[0]);
        assert_eq!(c.view().version, last);
        for version in [5, last, last + 1, u64::MAX] {
            wire::encode_chunks(&Update::default(), version, false, &mut out);
            c.on_datagram(Time(2), seed, &out[0]);
        }
        assert_eq!(c.view().version, last);
    }

    /// A promotion reaches only a registered, core-eligible client, with seeds.
    #[test]
    fn only_an_eligible_member_client_is_promoted() {
        let me: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let seed: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let mut c = ClientCore::new(me, vec![seed], 200_000);
        let (plain, eligible) = (ProcessId::named("plain", 1), ProcessId::named("elig", 1));
        assert!(c.add_client(plain, false));
        assert!(c.add_client(eligible, true));
        // Both registered: a snapshot holding them.
        let mut u = Update::default();
        u.clients.push(ClientOp::add(plain, me, false));
        u.clients.push(ClientOp::add(eligible, me, true));
        let mut out = Vec::new();
        wire::encode_chunks(&u, 4, true, &mut out);
        for d in &out {
            c.on_datagram(Time(1), seed, d);
        }
        while c.poll_event().is_some() {}
        assert_eq!(c.client_state(plain), Some(ClientState::Member));
        let core = Member {
            id: ProcessId::named("core", 1),
            addr: seed,
        };
        let promote = |id, seeds: &[Member]| {
            let mut b = Vec::new();
            wire::encode_promote(&mut b, id, seeds);
            b
        };
        c.on_datagram(Time(2), seed, &promote(plain, &[core]));
        c.on_datagram(Time(2), seed, &promote(eligible, &[]));
        assert!(c.poll_event().is_none(), "not eligible, or nowhere to join");
        c.on_datagram(Time(2), seed, &promote(eligible, &[core]));
        assert!(matches!(
            c.poll_event(),
            Some(ClientEvent::Promoted { id, .. }) if id == eligible
        ));
    }

    /// Parts are kept as they arrive (any order, duplicates once), and a chunk that
    /// claims many parts reserves nothing for them.
    #[test]
    fn an_assembly_keeps_what_arrives_in_order() {
        let mut out = Vec::new();
        let mut u = Update::default();
        for i in 0..400 {
            u.removes.push(ProcessId::named(&format!("client-{i}"), 1));
        }
        wire::encode_chunks(&u, 3, false, &mut out);
        assert!(out.len() >= 3, "{} parts", out.len());
        let parts: Vec<_> = out
            .iter()
            .map(|b| match wire::decode(b).expect("a chunk") {
                ServiceMsg::Chunk(c) => c,
                m => panic!("not a chunk: {m:?}"),
            })
            .collect();
        let mut a = Assembly::new(false, 3, parts[0].parts);
        let mut whole = None;
        for k in (0..parts.len()).rev().chain([0, 1]) {
            if let Some(w) = a.add(parts[k].part, parts[k].update.clone()) {
                whole = Some(w);
            }
        }
        assert_eq!(whole.expect("complete").removes, u.removes);
        let mut big = Assembly::new(true, 9, u16::MAX);
        assert!(
            big.add(u16::MAX, Update::default()).is_none(),
            "out of range"
        );
        assert!(big.add(7, Update::default()).is_none());
    }

    #[test]
    fn many_clients_are_listed_once_per_period_in_slices() {
        let me: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let seed: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let period = 200_000;
        let mut c = ClientCore::new(me, vec![seed], period);
        let n = 2000;
        for i in 0..n {
            assert!(c.add_client(ProcessId::named(&format!("c{i}"), 1), false));
        }
        let mut listed = HashMap::new();
        let mut most = 0;
        let mut now = Time(1);
        while now.0 < 1 + period {
            c.on_timeout(now);
            let mut burst = 0;
            while let Some((to, b)) = c.poll_datagram() {
                assert_eq!(to, seed);
                burst += 1;
                match wire::decode(&b).expect("a hello") {
                    ServiceMsg::Hello { entries, .. } => {
                        for e in entries {
                            *listed.entry(e.id).or_insert(0) += 1;
                        }
                    }
                    m => panic!("not a hello: {m:?}"),
                }
            }
            most = most.max(burst);
            now = c.poll_timeout().max(Time(now.0 + 1));
        }
        assert_eq!(listed.len(), n, "every client listed within one period");
        assert!(listed.values().all(|k| *k == 1), "and only once");
        let per_slice = (n / HELLO_SLICES).div_ceil(wire::MAX_HELLO_PIDS);
        assert!(most <= per_slice + 1, "a slice at a time: {most} datagrams");

        // A deregistration is said at once, for every client.
        c.deregister(ProcessId::named("c7", 1));
        c.hello_now();
        c.on_timeout(Time(now.0 + 1));
        let mut all = 0;
        while let Some((_, b)) = c.poll_datagram() {
            if let Ok(ServiceMsg::Hello { entries, .. }) = wire::decode(&b) {
                all += entries.len();
            }
        }
        assert_eq!(all, n);
    }
}
