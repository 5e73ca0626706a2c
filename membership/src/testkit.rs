//! An in-memory cluster of engines with instant, per-link FIFO delivery and a manual
//! clock, for engine tests and benchmarks (no transport, no randomness).
//!
//! Messages are copied into a pool of preallocated buffers, so a warmed-up cluster
//! allocates nothing while it runs: the zero-allocation test drives whole view changes
//! through it. The full simulator with the real transport, loss and reordering is
//! `sgmp-sim` in `sgmp-tools`.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::engine::{Engine, Event, Status};
use crate::view::Member;
use crate::{EngineConfig, ProcessId, Time};

/// One message in flight.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    from: usize,
    to: usize,
    slot: usize,
    len: usize,
}

/// What [`Cluster::check_safety`] reads, in the order it happened (recorded with the
/// events).
#[derive(Clone, Debug)]
enum Rec {
    /// `pid` installed `version`; `members` unless the engine had already moved past
    /// it when its events were collected.
    View {
        pid: ProcessId,
        version: u64,
        digest: u64,
        members: Option<Vec<ProcessId>>,
    },
    /// `pid` believes `peer` faulty; `root`: from its own observation, a replacement
    /// or a leave request ([`crate::SuspicionCause::is_root`]), not handed on.
    Suspect {
        pid: ProcessId,
        peer: ProcessId,
        root: bool,
    },
    /// `pid` asked to leave (GMP-1 allows its removal by anyone from then on, D9).
    Leave { pid: ProcessId },
    /// An engine step ended (its events are above): a root belief counts for GMP-1
    /// only in a step before the first install it excuses.
    Step,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("now", &self.now)
            .field("up", &self.up)
            .field("in_flight", &self.queue.len())
            .finish_non_exhaustive()
    }
}

/// A cluster of engines on an ideal network.
pub struct Cluster {
    cfg: EngineConfig,
    /// The engines, by index; `engines[i]` is process `n{i}#1` unless rejoined.
    pub engines: Vec<Engine>,
    /// The simulated clock.
    pub now: Time,
    /// `up[i]` is false once engine i crashed.
    pub up: Vec<bool>,
    /// `cut[i * cap + j]`: messages from i to j are dropped.
    cut: Vec<bool>,
    cap: usize,
    queue: VecDeque<InFlight>,
    pool: Vec<Vec<u8>>,
    free: Vec<usize>,
    /// Every event, per engine, when recording is on.
    pub events: Vec<Vec<Event>>,
    /// Whether events are recorded (off for allocation-free runs).
    pub record_events: bool,
    /// Messages delivered so far.
    pub delivered: u64,
    /// Messages dropped by crashes and cuts.
    pub dropped: u64,
    /// Views installed and suspicions, in order, when recording is on.
    history: Vec<Rec>,
}

/// The address of engine `i` (unique, never used for real I/O).
pub fn addr_of(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 20_000 + i as u16)
}

/// A membership-service client op adding client `c{i}#1` (address 127.0.0.1:9, not
/// watched), for tests of client changes.
pub fn client_op(i: u64) -> crate::view::ClientOp {
    crate::view::ClientOp::add(
        ProcessId::named(&format!("c{i}"), 1),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9),
        false,
    )
}

/// The member record of engine `i` with incarnation `inc`.
pub fn member_of(i: usize, inc: u64) -> Member {
    Member {
        id: ProcessId::named(&format!("n{i}"), inc),
        addr: addr_of(i),
    }
}

impl Cluster {
    /// `n` founders that bootstrap one group (n0 is the mgr), with room for `extra`
    /// more engines to join later. Holds at most `cfg.max_members` engines in all.
    pub fn new(n: usize, extra: usize, cfg: EngineConfig) -> Cluster {
        let cap = n + extra;
        let founders: Vec<Member> = (0..n).map(|i| member_of(i, 1)).collect();
        let mut engines = Vec::with_capacity(cap);
        for i in 0..cap {
            engines.push(Engine::new(cfg.clone(), member_of(i, 1)));
        }
        // Every buffer can hold any message, so a running cluster allocates nothing
        // (unless more messages are in flight at once than there are buffers).
        let slots = 32 * cap + 64;
        let msg_len = crate::msg::max_encoded_len_with_clients(
            cfg.max_members,
            cfg.max_client_ops,
            cfg.max_snapshot,
        );
        let mut c = Cluster {
            cfg: cfg.clone(),
            engines,
            now: Time(1_000),
            up: vec![true; cap],
            cut: vec![false; cap * cap],
            cap,
            queue: VecDeque::with_capacity(slots),
            pool: (0..slots).map(|_| Vec::with_capacity(msg_len)).collect(),
            free: (0..slots).rev().collect(),
            events: (0..cap).map(|_| Vec::with_capacity(1024)).collect(),
            record_events: true,
            delivered: 0,
            dropped: 0,
            history: Vec::new(),
        };
        for i in 0..n {
            c.engines[i].bootstrap(c.now, &founders);
            c.flush(i);
        }
        c
    }

    fn index_of_addr(&self, addr: SocketAddr) -> Option<usize> {
        let i = addr.port().checked_sub(20_000)? as usize;
        (i < self.cap).then_some(i)
    }

    /// Moves engine `i`'s outputs into the network and its events into the log.
    pub fn flush(&mut self, i: usize) {
        while let Some(t) = self.engines[i].poll_transmit() {
            let Some(to) = addr_port(t.addr, self.cap) else {
                continue;
            };
            if !self.up[i] || self.cut[i * self.cap + to] {
                self.dropped += 1;
                continue;
            }
            let slot = match self.free.pop() {
                Some(s) => s,
                None => {
                    self.pool.push(Vec::new());
                    self.pool.len() - 1
                }
            };
            let buf = &mut self.pool[slot];
            buf.clear();
            buf.extend_from_slice(t.payload);
            let len = buf.len();
            self.queue.push_back(InFlight {
                from: i,
                to,
                slot,
                len,
            });
        }
        if self.record_events && !matches!(self.history.last(), None | Some(Rec::Step)) {
            self.history.push(Rec::Step);
        }
        let mut installs = 0;
        while let Some(e) = self.engines[i].poll_event() {
            if matches!(e, Event::ViewInstalled { .. }) {
                // D32: the driver reads each install's view after the step.
                installs += 1;
                assert!(installs == 1, "n{i} installed two views in one step (D32)");
            }
            if self.record_events {
                self.events[i].push(e);
                let pid = self.engines[i].me().id;
                match e {
                    Event::ViewInstalled {
                        version, digest, ..
                    } => {
                        let v = self.engines[i].view();
                        let members = (v.version == version)
                            .then(|| v.members.iter().map(|m| m.id).collect());
                        self.history.push(Rec::View {
                            pid,
                            version,
                            digest,
                            members,
                        });
                    }
                    Event::Suspected { peer, cause } => self.history.push(Rec::Suspect {
                        pid,
                        peer,
                        root: cause.is_root(),
                    }),
                    _ => {}
                }
            }
        }
    }

    /// Delivers the oldest message in flight. Returns false when none is left.
    pub fn deliver_one(&mut self) -> bool {
        let Some(m) = self.queue.pop_front() else {
            return false;
        };
        if self.up[m.to] && !self.cut[m.from * self.cap + m.to] {
            let from = self.engines[m.from].me().id;
            let buf = std::mem::take(&mut self.pool[m.slot]);
            let _ = self.engines[m.to].handle_message(self.now, from, &buf[..m.len]);
            self.pool[m.slot] = buf;
            self.delivered += 1;
            self.flush(m.to);
            if self.cfg.local_health && self.up[m.from] && !self.cut[m.to * self.cap + m.from] {
                // As the transport would: the receiver's acknowledgement reaches the
                // sender, a sign of life (D20, D21).
                let to = self.engines[m.to].me().id;
                self.engines[m.from].peer_alive(self.now, to);
            }
        } else {
            self.dropped += 1;
        }
        self.free.push(m.slot);
        true
    }

    /// Delivers messages until none is in flight (at most `max` deliveries).
    pub fn run_until_quiet(&mut self, max: usize) {
        for _ in 0..max {
            if !self.deliver_one() {
                return;
            }
        }
    }

    /// Advances the clock by `us` in steps of `step_us`, firing due timers and
    /// delivering everything in flight after each step.
    pub fn advance(&mut self, us: u64, step_us: u64) {
        let end = self.now + us;
        while self.now < end {
            self.now = (self.now + step_us).min(end);
            for i in 0..self.cap {
                if !self.up[i] {
                    continue;
                }
                if self.engines[i]
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    self.engines[i].handle_timeout(self.now);
                    self.flush(i);
                }
            }
            self.run_until_quiet(1_000_000);
        }
    }

    /// Restarts slot `i` as a fresh, idle engine with a new incarnation (the old one is
    /// gone); it can then [`Cluster::join`].
    pub fn restart(&mut self, i: usize, incarnation: u64) {
        self.engines[i] = Engine::new(self.cfg.clone(), member_of(i, incarnation));
        self.up[i] = true;
    }

    /// Crashes engine `i`: it stops and its messages in flight are lost.
    pub fn crash(&mut self, i: usize) {
        self.up[i] = false;
    }

    /// Cuts (or restores) both directions between every engine of `a` and every engine of `b`.
    pub fn set_cut(&mut self, a: &[usize], b: &[usize], cut: bool) {
        for &i in a {
            for &j in b {
                self.cut[i * self.cap + j] = cut;
                self.cut[j * self.cap + i] = cut;
            }
        }
    }

    /// Cuts (or restores) one direction only: messages from every engine of `from` to
    /// every engine of `to`.
    pub fn set_cut_one_way(&mut self, from: &[usize], to: &[usize], cut: bool) {
        for &i in from {
            for &j in to {
                self.cut[i * self.cap + j] = cut;
            }
        }
    }

    /// Tells engine `i` that it suspects engine `j` (as its failure detector would).
    pub fn suspect(&mut self, i: usize, j: usize) {
        let id = self.engines[j].me().id;
        self.engines[i].suspect(self.now, id);
        self.flush(i);
    }

    /// Engine `i` asks to join through engine `contact`.
    pub fn join(&mut self, i: usize, contact: usize) {
        let c = *self.engines[contact].me();
        self.engines[i].join(self.now, &[c]);
        self.flush(i);
    }

    /// Engine `i` leaves gracefully.
    pub fn leave(&mut self, i: usize) {
        let pid = self.engines[i].me().id;
        self.history.push(Rec::Leave { pid });
        self.engines[i].leave(self.now);
        self.flush(i);
    }

    /// Indices of the engines that are up and members.
    pub fn live_members(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.cap).filter(|&i| self.up[i] && self.engines[i].status() == Status::Member)
    }

    /// The member names of engine `i`'s view, in rank order (for assertions).
    pub fn view_names(&self, i: usize) -> Vec<String> {
        self.engines[i]
            .view()
            .members
            .iter()
            .map(|m| m.id.node.to_string())
            .collect()
    }

    /// True if there is at least one live member and every live member holds the same
    /// view (version and member list).
    pub fn agreed(&self) -> bool {
        let mut it = self.live_members().map(|i| {
            let v = self.engines[i].view();
            (v.version, &v.members)
        });
        match it.next() {
            Some(first) => it.all(|x| x == first),
            None => false,
        }
    }

    /// Checks the Strong GMP safety properties over the views installed and the
    /// suspicions recorded (recording on), across every engine and incarnation:
    /// - uniqueness: every install of a version has the same member list (and digest);
    /// - sequence: each process installs contiguous versions;
    /// - self-inclusion: each process is a member of every view it installs;
    /// - GMP-1: a member the first install of a version removes was believed faulty
    ///   in an earlier step by someone, at the root ([`crate::SuspicionCause::is_root`]: observed,
    ///   replaced or leaving, not handed on or marked by the commit itself), or asked
    ///   to leave;
    /// - GMP-1a: a process that installs a view without a member of its previous view
    ///   believed that member faulty (`Suspected`) before.
    ///
    /// Returns a description of the first violation.
    pub fn check_safety(&self) -> Result<(), String> {
        use std::collections::HashMap;
        let mut seen: HashMap<u64, (u64, Option<&Vec<ProcessId>>, ProcessId)> = HashMap::new();
        let mut last: HashMap<ProcessId, (u64, Option<&Vec<ProcessId>>)> = HashMap::new();
        let mut faulty: HashMap<ProcessId, Vec<ProcessId>> = HashMap::new();
        let mut left: Vec<ProcessId> = Vec::new();
        let mut roots: Vec<ProcessId> = Vec::new();
        // Root beliefs of the step being read: they excuse installs of later steps.
        let mut step_roots: Vec<ProcessId> = Vec::new();
        for r in &self.history {
            let (pid, version, digest, members) = match r {
                Rec::Step => {
                    roots.append(&mut step_roots);
                    continue;
                }
                Rec::Suspect { pid, peer, root } => {
                    faulty.entry(*pid).or_default().push(*peer);
                    if *root {
                        step_roots.push(*peer);
                    }
                    continue;
                }
                Rec::Leave { pid } => {
                    left.push(*pid);
                    continue;
                }
                Rec::View {
                    pid,
                    version,
                    digest,
                    members,
                } => (*pid, *version, *digest, members.as_ref()),
            };
            match seen.get_mut(&version) {
                Some((d, m, by)) => {
                    let differ =
                        *d != digest || matches!((&*m, members), (Some(a), Some(b)) if *a != b);
                    if differ {
                        return Err(format!(
                            "version {version}: {by} installed {m:?} but {pid} installed \
                             {members:?}"
                        ));
                    }
                    if m.is_none() {
                        *m = members;
                    }
                }
                None => {
                    if let (Some(Some(before)), Some(now)) =
                        (seen.get(&(version - 1)).map(|s| s.1), members)
                    {
                        if let Some(q) = before
                            .iter()
                            .find(|q| !now.contains(q) && !roots.contains(q) && !left.contains(q))
                        {
                            return Err(format!(
                                "gmp1: version {version} removes {q}, whom nobody believed \
                                 faulty at the root before"
                            ));
                        }
                    }
                    seen.insert(version, (digest, members, pid));
                }
            }
            if let Some(m) = members {
                if !m.contains(&pid) {
                    return Err(format!(
                        "{pid} installed version {version} {m:?} without itself"
                    ));
                }
            }
            if let Some((l, before)) = last.get(&pid) {
                if version != l + 1 {
                    return Err(format!("{pid} jumped from version {l} to {version}"));
                }
                if let (Some(before), Some(now)) = (before, members) {
                    let f = faulty.get(&pid);
                    if let Some(q) = before.iter().find(|q| {
                        **q != pid
                            && !now.contains(q)
                            && !f.is_some_and(|f| f.contains(q))
                            && !left.contains(q)
                    }) {
                        return Err(format!(
                            "gmp1a: {pid} installed version {version} without {q} but did not \
                             believe it faulty"
                        ));
                    }
                }
            }
            last.insert(pid, (version, members));
        }
        Ok(())
    }
}

fn addr_port(addr: SocketAddr, cap: usize) -> Option<usize> {
    let i = addr.port().checked_sub(20_000)? as usize;
    (i < cap).then_some(i)
}

impl Cluster {
    /// Engine index for an address, if it belongs to this cluster.
    pub fn engine_at(&self, addr: SocketAddr) -> Option<usize> {
        self.index_of_addr(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EngineConfig {
        EngineConfig {
            max_members: 8,
            ..EngineConfig::default()
        }
    }

    fn pid(i: usize) -> ProcessId {
        member_of(i, 1).id
    }

    fn view(i: usize, version: u64, digest: u64, m: &[usize]) -> Rec {
        Rec::View {
            pid: pid(i),
            version,
            digest,
            members: Some(m.iter().map(|&j| pid(j)).collect()),
        }
    }

    #[test]
    fn agreed_needs_a_live_member_and_equal_member_lists() {
        let mut c = Cluster::new(3, 0, cfg());
        c.run_until_quiet(10_000);
        assert!(c.agreed());
        for i in 0..3 {
            c.crash(i);
        }
        assert!(!c.agreed(), "nobody left is not agreement");
    }

    #[test]
    fn check_safety_compares_member_lists_not_digests() {
        let mut c = Cluster::new(3, 0, cfg());
        c.run_until_quiet(10_000);
        c.check_safety().unwrap();
        // Same version, same digest (a collision), different members: a violation.
        let mut h = c.history.clone();
        h.push(Rec::Suspect {
            pid: pid(0),
            peer: pid(2),
            root: true,
        });
        h.push(Rec::Step);
        h.push(view(0, 2, 7, &[0, 1]));
        h.push(Rec::Suspect {
            pid: pid(1),
            peer: pid(0),
            root: true,
        });
        h.push(Rec::Step);
        h.push(view(1, 2, 7, &[1, 2]));
        let mut bad = Cluster::new(3, 0, cfg());
        bad.history = h;
        let e = bad.check_safety().unwrap_err();
        assert!(e.starts_with("version 2"), "{e}");
    }

    #[test]
    fn check_safety_finds_gaps_self_exclusion_and_unbelieved_removals() {
        let mut base = Cluster::new(3, 0, cfg());
        base.run_until_quiet(10_000);
        let with = |extra: Vec<Rec>| {
            let mut c = Cluster::new(3, 0, cfg());
            c.history = base.history.clone();
            c.history.extend(extra);
            c.check_safety()
        };
        let e = with(vec![view(0, 3, 1, &[0, 1, 2])]).unwrap_err();
        assert!(e.contains("jumped"), "{e}");
        let n1_observes_n0 = Rec::Suspect {
            pid: pid(1),
            peer: pid(0),
            root: true,
        };
        let e = with(vec![n1_observes_n0, Rec::Step, view(0, 2, 1, &[1, 2])]).unwrap_err();
        assert!(e.contains("without itself"), "{e}");
        // n0 removes n2 that nobody believed faulty (GMP-1) ...
        let e = with(vec![view(0, 2, 1, &[0, 1])]).unwrap_err();
        assert!(e.starts_with("gmp1:"), "{e}");
        // ... nor does a belief its own commit marked count (GMP-1) ...
        let marked = |by: usize, root: bool| Rec::Suspect {
            pid: pid(by),
            peer: pid(2),
            root,
        };
        let e = with(vec![marked(0, false), view(0, 2, 1, &[0, 1])]).unwrap_err();
        assert!(e.starts_with("gmp1:"), "{e}");
        // ... n1 observed it, but n0 removes it without believing it (GMP-1a) ...
        let e = with(vec![marked(1, true), Rec::Step, view(0, 2, 1, &[0, 1])]).unwrap_err();
        assert!(e.starts_with("gmp1a"), "{e}");
        // ... which is fine once it does.
        with(vec![marked(0, true), Rec::Step, view(0, 2, 1, &[0, 1])]).unwrap();
        with(vec![
            marked(1, true),
            Rec::Step,
            marked(0, false),
            view(0, 2, 1, &[0, 1]),
        ])
        .unwrap();
        // ... but not when the observation is the installing step's own.
        let e = with(vec![marked(0, true), view(0, 2, 1, &[0, 1])]).unwrap_err();
        assert!(e.starts_with("gmp1:"), "{e}");
    }
}
