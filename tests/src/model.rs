//! A [stateright] model of a cluster of **real** S-GMP engines.
//!
//! Every process of the model is an [`Engine`] of `sgmp-membership`; nothing of the
//! protocol is re-implemented here. The model only plays the environment:
//!
//! - **Network.** One FIFO queue per ordered pair of processes, holding the encoded
//!   messages exactly as [`Engine::poll_transmit`] produced them. Only the head of a
//!   queue can be delivered ([`Action::Deliver`]), which is what the transport gives
//!   (reliable FIFO channels, paper §2). Messages on *different* links interleave
//!   arbitrarily, so any cross-link reordering is explored.
//! - **Loss** happens only where the transport can lose: when a process crashes, what it
//!   had queued may be lost (any suffix of each of its outgoing links:
//!   [`Action::DropTail`]) and what was queued for it is gone; when a process comes to
//!   believe a peer faulty (`Event::Suspected`, Disconnect), its transport discards
//!   everything still to come from that peer, and refuses to send it more; what it had
//!   queued for the peer may or may not still arrive (again [`Action::DropTail`]).
//! - **Crashes** ([`Action::Crash`]): a process stops for good (at most
//!   [`ModelConfig::max_crashes`]).
//! - **Failure detection** is the nondeterministic [`Action::Suspect`]
//!   (`Engine::suspect`): a live process may suspect any peer of its view. Suspecting a
//!   process that will never again send it anything is always allowed (it crashed, is
//!   excluded, or disconnected the suspecting process: a heartbeat detector eventually
//!   suspects it); suspecting any other is a *false suspicion*, at most
//!   [`ModelConfig::max_false_suspicions`] of them. The engine's own ring detector is
//!   configured with intervals far beyond the model's time horizon, so it only sends
//!   the first heartbeat after each ring change (those messages do carry Gossip).
//! - **Time** is abstract: each process has its own clock, and [`Action::Timeout`]
//!   advances it to the engine's own next deadline ([`Engine::poll_timeout`]) and calls
//!   [`Engine::handle_timeout`]. Protocol timeouts (an initiator's wait for answers, a
//!   member's wait for a reconfigurer) therefore fire nondeterministically, before or
//!   after any delivery. Deadlines beyond [`HORIZON_US`] are never reached. A joiner's
//!   retries are bounded by [`ModelConfig::max_join_retries`].
//! - **Join**: with [`ModelConfig::joiner`], one extra process starts idle and
//!   [`Action::StartJoin`] makes it call [`Engine::join`] with the founders as contacts.
//!
//! Engines are not `Clone` (their buffers are preallocated and must keep their
//! capacity), so a process's state in the model is the log of its inputs: an engine is
//! rebuilt by replaying the log, and states are identified by
//! [`Engine::model_fingerprint`] (exact: it hashes all protocol state, no counters).
//!
//! Properties (see [`SgmpModel`]'s `properties`): one view per version (GMP-2/3),
//! contiguous versions at every process, a process removed from version v never installs
//! a view of version ≥ v, an excluded process never installs another view, and, in every
//! *quiescent* state (no action left), the live members agree on one view that holds
//! no crashed or excluded process.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use sgmp_membership::engine::Status;
use sgmp_membership::msg::MsgKind;
use sgmp_membership::testkit::member_of;
use sgmp_membership::{Engine, EngineConfig, Event, Member, ProcessId, Time};
use stateright::{Model, Property};

/// Deadlines further than this from a process's clock are never reached (µs). The
/// longest protocol wait is 2 × the protocol timeout; the ring detector is set far
/// beyond.
pub const HORIZON_US: u64 = 10_000_000;

/// Protocol timeout and join retry interval of the engines in the model (µs).
pub const PROTOCOL_TIMEOUT_US: u64 = 1_000_000;

/// Where every clock starts (µs): far from zero, so no time arithmetic saturates.
pub const START: Time = Time(1_000_000_000);

/// What to explore.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelConfig {
    /// Founders of the group (version 1 holds them all; process 0 is the mgr).
    pub founders: usize,
    /// One more process that may ask to join (through the founders).
    pub joiner: bool,
    /// Most processes that crash.
    pub max_crashes: u8,
    /// Most suspicions of processes that are alive.
    pub max_false_suspicions: u8,
    /// Most join-request retries of the joiner.
    pub max_join_retries: u8,
    /// The engine's local health rules (D18, D21: outside suspicions are verified
    /// against what the process heard). Only the model's messages count as signs of
    /// life (there is no transport below).
    pub local_health: bool,
    /// Process 0 (the first mgr) has crashed in the initial state, right after the
    /// bootstrap (one of the `max_crashes`), and process 1 suspects it: every run starts
    /// with process 1's reconfiguration under way,
    /// so a bounded search reaches successive and concurrent reconfigurers (issue 17)
    /// instead of spending its budget on the mgr's own view changes.
    pub mgr_crashed: bool,
}

impl ModelConfig {
    /// `founders` founders, a joiner, one crash, one false suspicion, one join retry.
    pub fn new(founders: usize) -> ModelConfig {
        ModelConfig {
            founders,
            joiner: true,
            max_crashes: 1,
            max_false_suspicions: 1,
            max_join_retries: 1,
            local_health: false,
            mgr_crashed: false,
        }
    }

    /// Processes in the model (founders and joiner).
    pub fn processes(&self) -> usize {
        self.founders + usize::from(self.joiner)
    }

    /// The engine configuration of every process.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            max_members: self.processes().max(2),
            max_snapshot: 8,
            // The ring detector: far beyond the horizon (suspicions are model actions).
            heartbeat_interval_us: 1 << 40,
            suspect_timeout_us: 1 << 41,
            protocol_timeout_us: PROTOCOL_TIMEOUT_US,
            join_retry_us: PROTOCOL_TIMEOUT_US,
            compression: true,
            max_pending_joins: 4,
            local_health: self.local_health,
            ..EngineConfig::default()
        }
    }
}

/// One input to one engine, as recorded in its log.
#[derive(Clone, Debug)]
enum Input {
    Bootstrap(Time),
    Join(Time),
    Message {
        now: Time,
        from: usize,
        bytes: Arc<[u8]>,
    },
    Timeout(Time),
    Suspect {
        now: Time,
        peer: usize,
    },
    Alive {
        now: Time,
        peer: usize,
    },
}

/// A step of the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Deliver the oldest message of the link `from → to`.
    Deliver {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
    },
    /// Process `0` advances its clock to its next deadline and handles its timers.
    Timeout(usize),
    /// Process `by` comes to believe `of` faulty (`Engine::suspect`).
    Suspect {
        /// The suspecting process.
        by: usize,
        /// The suspected process.
        of: usize,
    },
    /// The process stops for good.
    Crash(usize),
    /// The joiner calls `Engine::join`.
    StartJoin,
    /// With local health: process `by`'s transport reports a sign of life of `of`
    /// (`Engine::peer_alive`), as its acknowledgements and keepalives would, while `of`
    /// runs and has not disconnected `by`.
    Alive {
        /// The process that hears.
        by: usize,
        /// The process heard.
        of: usize,
    },
    /// The rest of the link `from → to` is lost (the sender crashed, or disconnected
    /// the receiver).
    DropTail {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
    },
}

/// What the model keeps of one process.
#[derive(Clone, Debug)]
pub struct Proc {
    log: Arc<Vec<Input>>,
    fp: u64,
    /// Its clock.
    pub now: Time,
    /// Its status after its last input.
    pub status: Status,
    /// Its view version.
    pub version: u64,
    /// Digest of its view.
    pub digest: u64,
    /// Its view's members, as model indices, in rank order.
    pub members: Vec<usize>,
    /// Members it believes faulty, as model indices.
    pub faulty: Vec<usize>,
    /// Its next deadline.
    pub deadline: Option<Time>,
    /// The last version it installed.
    pub last_installed: Option<u64>,
}

/// A global state: every process, every link, the budgets and what the checks recorded.
#[derive(Clone)]
pub struct State {
    /// The processes, by model index.
    pub procs: Vec<Arc<Proc>>,
    /// `links[from * n + to]`: messages in flight, oldest first.
    links: Vec<Arc<VecDeque<Arc<[u8]>>>>,
    /// `disconnected[i * n + j]`: i's transport disconnected j.
    disconnected: Vec<bool>,
    /// Which processes run.
    pub up: Vec<bool>,
    join_started: bool,
    crashes: u8,
    false_suspicions: u8,
    join_retries: u8,
    /// Every installed view: (version, digest, members), in order of first installation.
    pub installed: Vec<(u64, u64, Vec<usize>)>,
    /// `removed_at[p]`: the first version of a view installed without p, p having been
    /// in the installer's previous view.
    pub removed_at: Vec<Option<u64>>,
    /// The first safety violation seen (checked on every step).
    pub violation: Option<String>,
}

impl State {
    fn n(&self) -> usize {
        self.procs.len()
    }

    /// Messages in flight on `from → to`.
    pub fn link(&self, from: usize, to: usize) -> &VecDeque<Arc<[u8]>> {
        &self.links[from * self.n() + to]
    }

    /// True if process `i` is up and not excluded.
    pub fn stays(&self, i: usize) -> bool {
        self.up[i] && !matches!(self.procs[i].status, Status::Excluded(_))
    }

    /// True if every live member has the same view and no crashed or excluded process
    /// is in it.
    pub fn live_members_agree(&self) -> bool {
        let mut view: Option<u64> = None;
        for (i, p) in self.procs.iter().enumerate() {
            if !self.up[i] || p.status != Status::Member {
                continue;
            }
            if p.members.iter().any(|&m| !self.stays(m)) {
                return false;
            }
            match view {
                None => view = Some(p.digest),
                Some(d) if d != p.digest => return false,
                _ => {}
            }
        }
        true
    }

    fn fingerprint_parts(&self, h: &mut impl Hasher) {
        for p in &self.procs {
            p.fp.hash(h);
            p.now.hash(h);
        }
        for l in &self.links {
            l.hash(h);
        }
        self.disconnected.hash(h);
        self.up.hash(h);
        self.join_started.hash(h);
        self.crashes.hash(h);
        self.false_suspicions.hash(h);
        self.join_retries.hash(h);
        self.installed.hash(h);
        self.removed_at.hash(h);
        self.violation.hash(h);
    }

    fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.fingerprint_parts(&mut h);
        h.finish()
    }
}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.fingerprint_parts(h);
    }
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint() == other.fingerprint()
    }
}

impl Eq for State {}

/// The name of a message kind from its encoded bytes.
pub fn kind_name(bytes: &[u8]) -> &'static str {
    bytes
        .get(1)
        .and_then(|&b| MsgKind::from_u8(b))
        .map_or("?", MsgKind::name)
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.n();
        for (i, p) in self.procs.iter().enumerate() {
            let up = if self.up[i] { "" } else { " CRASHED" };
            writeln!(
                f,
                "  n{i}{up}: {:?} v{} {:?} faulty {:?}",
                p.status, p.version, p.members, p.faulty
            )?;
        }
        for from in 0..n {
            for to in 0..n {
                let l = self.link(from, to);
                if !l.is_empty() {
                    let kinds: Vec<_> = l.iter().map(|m| kind_name(m)).collect();
                    writeln!(f, "  n{from}->n{to}: {kinds:?}")?;
                }
            }
        }
        if let Some(v) = &self.violation {
            writeln!(f, "  VIOLATION: {v}")?;
        }
        Ok(())
    }
}

/// The model: a configuration and the precomputed identities of its processes.
pub struct SgmpModel {
    /// What is explored.
    pub cfg: ModelConfig,
    engine_cfg: EngineConfig,
    ids: Vec<Member>,
}

impl SgmpModel {
    /// A model of `cfg`.
    pub fn new(cfg: ModelConfig) -> SgmpModel {
        let ids = (0..cfg.processes()).map(|i| member_of(i, 1)).collect();
        SgmpModel {
            engine_cfg: cfg.engine_config(),
            cfg,
            ids,
        }
    }

    fn index_of(&self, id: ProcessId) -> Option<usize> {
        self.ids.iter().position(|m| m.id == id)
    }

    fn joiner(&self) -> Option<usize> {
        self.cfg.joiner.then_some(self.cfg.founders)
    }

    /// Rebuilds process `i`'s engine from its log.
    fn replay(&self, i: usize, log: &[Input]) -> Engine {
        let mut e = Engine::new(self.engine_cfg.clone(), self.ids[i]);
        for input in log {
            self.apply(&mut e, input);
            while e.poll_transmit().is_some() {}
            while e.poll_event().is_some() {}
        }
        e
    }

    fn apply(&self, e: &mut Engine, input: &Input) {
        match input {
            Input::Bootstrap(now) => {
                let founders: Vec<Member> = self.ids[..self.cfg.founders].to_vec();
                e.bootstrap(*now, &founders);
            }
            Input::Join(now) => {
                let contacts: Vec<Member> = self.ids[..self.cfg.founders]
                    .iter()
                    .rev()
                    .copied()
                    .collect();
                e.join(*now, &contacts);
            }
            Input::Message { now, from, bytes } => {
                // Decode errors are counted by the engine; the model never makes any.
                let _ = e.handle_message(*now, self.ids[*from].id, bytes);
            }
            Input::Timeout(now) => e.handle_timeout(*now),
            Input::Suspect { now, peer } => e.suspect(*now, self.ids[*peer].id),
            Input::Alive { now, peer } => e.peer_alive(*now, self.ids[*peer].id),
        }
    }

    fn summarize(&self, e: &Engine, log: Arc<Vec<Input>>, now: Time, last: Option<u64>) -> Proc {
        let mut h = DefaultHasher::new();
        e.model_fingerprint(&mut h);
        let members = e
            .view()
            .members
            .iter()
            .filter_map(|m| self.index_of(m.id))
            .collect();
        let faulty = e
            .faulty()
            .iter()
            .filter_map(|p| self.index_of(*p))
            .collect();
        Proc {
            log,
            fp: h.finish(),
            now,
            status: e.status(),
            version: e.view().version,
            digest: e.view().digest(),
            members,
            faulty,
            deadline: e.poll_timeout(),
            last_installed: last,
        }
    }

    /// Feeds `input` to process `i` in `s`: replays its log, applies the input, moves
    /// its messages onto the links and checks its events.
    fn step(&self, s: &mut State, i: usize, input: Input, now: Time) {
        let old = s.procs[i].clone();
        let mut e = self.replay(i, &old.log);
        self.apply(&mut e, &input);
        let mut log = Vec::with_capacity(old.log.len() + 1);
        log.extend(old.log.iter().cloned());
        log.push(input);
        let n = s.n();
        while let Some(t) = e.poll_transmit() {
            let Some(to) = self.index_of(t.to) else {
                continue;
            };
            if !s.up[i] || !s.up[to] || s.disconnected[i * n + to] {
                continue;
            }
            Arc::make_mut(&mut s.links[i * n + to]).push_back(Arc::from(t.payload));
        }
        let was_excluded = matches!(old.status, Status::Excluded(_));
        let mut last = old.last_installed;
        while let Some(ev) = e.poll_event() {
            match ev {
                Event::Suspected { peer, .. } => {
                    if let Some(j) = self.index_of(peer) {
                        // Disconnect: nothing more from j reaches i.
                        s.disconnected[i * n + j] = true;
                        s.links[j * n + i] = Arc::new(VecDeque::new());
                    }
                }
                Event::ViewInstalled {
                    version, digest, ..
                } => {
                    let members: Vec<usize> = e
                        .view()
                        .members
                        .iter()
                        .filter_map(|m| self.index_of(m.id))
                        .collect();
                    self.check_install(s, i, &old, was_excluded, last, version, digest, members);
                    last = Some(version);
                }
                _ => {}
            }
        }
        s.procs[i] = Arc::new(self.summarize(&e, Arc::new(log), now, last));
    }

    #[allow(clippy::too_many_arguments)]
    fn check_install(
        &self,
        s: &mut State,
        i: usize,
        old: &Proc,
        was_excluded: bool,
        last: Option<u64>,
        version: u64,
        digest: u64,
        members: Vec<usize>,
    ) {
        let mut bad = None;
        if was_excluded {
            bad = Some(format!("n{i} installed v{version} after being excluded"));
        }
        if let Some(l) = last {
            if version != l + 1 {
                bad = Some(format!("n{i} jumped from v{l} to v{version}"));
            }
        }
        if let Some(r) = s.removed_at[i] {
            if version >= r {
                bad = Some(format!("n{i} installed v{version}, removed at v{r}"));
            }
        }
        match s.installed.iter().find(|(v, _, _)| *v == version) {
            Some((_, d, m)) if *d != digest => {
                bad = Some(format!(
                    "two views of version {version}: {m:?} and {members:?} (at n{i})"
                ));
            }
            Some(_) => {}
            None => s.installed.push((version, digest, members.clone())),
        }
        // Processes of i's previous view missing from the new one are removed at `version`.
        if last.is_some() {
            for &p in &old.members {
                if !members.contains(&p) {
                    let r = &mut s.removed_at[p];
                    *r = Some(r.map_or(version, |x| x.min(version)));
                    if s.procs[p].last_installed.is_some_and(|l| l >= version) {
                        bad = Some(format!(
                            "n{p} installed v{} but was removed at v{version}",
                            s.procs[p].last_installed.unwrap_or(0)
                        ));
                    }
                }
            }
        }
        if s.violation.is_none() {
            s.violation = bad;
        }
    }

    /// True if `j` will never again send anything `i` accepts: it crashed, it is
    /// excluded, or it disconnected `i`. A heartbeat detector at `i` suspects such a
    /// process sooner or later, so suspecting it is not a *false* suspicion.
    fn silent_to(&self, s: &State, j: usize, i: usize) -> bool {
        !s.stays(j) || s.disconnected[j * s.n() + i]
    }

    /// Every live, non-excluded process that can still act.
    fn active(&self, s: &State, i: usize) -> bool {
        s.stays(i)
    }
}

impl Model for SgmpModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let n = self.cfg.processes();
        let mut s = State {
            procs: Vec::with_capacity(n),
            links: (0..n * n).map(|_| Arc::new(VecDeque::new())).collect(),
            disconnected: vec![false; n * n],
            up: vec![true; n],
            join_started: false,
            crashes: 0,
            false_suspicions: 0,
            join_retries: 0,
            installed: Vec::new(),
            removed_at: vec![None; n],
            violation: None,
        };
        for i in 0..n {
            let e = self.replay(i, &[]);
            s.procs.push(Arc::new(self.summarize(
                &e,
                Arc::new(Vec::new()),
                START,
                None,
            )));
        }
        for i in 0..self.cfg.founders {
            self.step(&mut s, i, Input::Bootstrap(START), START);
        }
        if self.cfg.mgr_crashed {
            // As `Action::Crash(0)`; what it queued is lost or not (`DropTail`).
            s.up[0] = false;
            s.crashes += 1;
            for from in 0..n {
                s.links[from * n] = Arc::new(VecDeque::new());
            }
            // Its successor has noticed (a suspicion of a crashed process is free): the
            // reconfiguration is under way from the first step.
            self.step(
                &mut s,
                1,
                Input::Suspect {
                    now: START,
                    peer: 0,
                },
                START,
            );
        }
        vec![s]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if s.violation.is_some() {
            return;
        }
        let n = s.n();
        for from in 0..n {
            for to in 0..n {
                if s.link(from, to).is_empty() {
                    continue;
                }
                if s.up[to] {
                    actions.push(Action::Deliver { from, to });
                }
                if !s.up[from] || s.disconnected[from * n + to] {
                    actions.push(Action::DropTail { from, to });
                }
            }
        }
        for i in 0..n {
            if !self.active(s, i) {
                continue;
            }
            let p = &s.procs[i];
            if let Some(d) = p.deadline {
                let joining = p.status == Status::Joining;
                if d.micros_since(p.now) <= HORIZON_US
                    && (!joining || s.join_retries < self.cfg.max_join_retries)
                {
                    actions.push(Action::Timeout(i));
                }
            }
            if p.status == Status::Member {
                for &j in &p.members {
                    if j == i || p.faulty.contains(&j) {
                        continue;
                    }
                    if self.silent_to(s, j, i) || s.false_suspicions < self.cfg.max_false_suspicions
                    {
                        actions.push(Action::Suspect { by: i, of: j });
                    }
                    if self.cfg.local_health && !self.silent_to(s, j, i) {
                        actions.push(Action::Alive { by: i, of: j });
                    }
                }
            }
        }
        if s.crashes < self.cfg.max_crashes {
            for i in 0..n {
                if s.up[i] {
                    actions.push(Action::Crash(i));
                }
            }
        }
        if let Some(j) = self.joiner() {
            if !s.join_started && s.up[j] {
                actions.push(Action::StartJoin);
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        let n = s.n();
        match action {
            Action::Deliver { from, to } => {
                let bytes = Arc::make_mut(&mut s.links[from * n + to]).pop_front()?;
                let now = s.procs[to].now;
                if !s.disconnected[to * n + from] {
                    self.step(&mut s, to, Input::Message { now, from, bytes }, now);
                }
            }
            Action::DropTail { from, to } => {
                s.links[from * n + to] = Arc::new(VecDeque::new());
            }
            Action::Timeout(i) => {
                let p = &s.procs[i];
                let now = p.deadline?.max(p.now);
                if p.status == Status::Joining {
                    s.join_retries += 1;
                }
                self.step(&mut s, i, Input::Timeout(now), now);
            }
            Action::Suspect { by, of } => {
                if !self.silent_to(&s, of, by) {
                    s.false_suspicions += 1;
                }
                let now = s.procs[by].now;
                self.step(&mut s, by, Input::Suspect { now, peer: of }, now);
            }
            Action::Crash(i) => {
                s.up[i] = false;
                s.crashes += 1;
                for from in 0..n {
                    s.links[from * n + i] = Arc::new(VecDeque::new());
                }
            }
            Action::Alive { by, of } => {
                let now = s.procs[by].now;
                self.step(&mut s, by, Input::Alive { now, peer: of }, now);
            }
            Action::StartJoin => {
                let j = self.joiner()?;
                s.join_started = true;
                let now = s.procs[j].now;
                self.step(&mut s, j, Input::Join(now), now);
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                "safety (GMP-2/3, contiguous, removed stay out)",
                |_: &SgmpModel, s: &State| s.violation.is_none(),
            ),
            Property::always(
                "quiescent states: live members agree",
                |m: &SgmpModel, s: &State| {
                    let mut a = Vec::new();
                    m.actions(s, &mut a);
                    !a.is_empty() || s.live_members_agree()
                },
            ),
            Property::sometimes("a view change commits", |_: &SgmpModel, s: &State| {
                s.installed.iter().any(|(v, _, _)| *v >= 2)
            }),
            Property::sometimes("the joiner becomes a member", |m: &SgmpModel, s: &State| {
                m.joiner()
                    .is_some_and(|j| s.procs[j].status == Status::Member)
            }),
            Property::sometimes("a reconfiguration commits", |_: &SgmpModel, s: &State| {
                // Version 2 without process 0 (the first mgr) was formed by a reconfigurer.
                s.installed
                    .iter()
                    .any(|(_, _, m)| m.first().is_some_and(|&x| x != 0))
            }),
            Property::sometimes(
                "a reconfiguration commits after a reconfigurer crashed",
                |_: &SgmpModel, s: &State| {
                    // A view led by process 2 or later: processes 0 and 1 both gone, so
                    // a second initiator took over (after 1 crashed or was removed).
                    s.installed
                        .iter()
                        .any(|(_, _, m)| m.first().is_some_and(|&x| x >= 2))
                },
            ),
        ]
    }

    fn format_action(&self, a: &Action) -> String {
        format!("{a:?}")
    }
}

/// Renders a path (a counterexample or an example) as lines: each action, with the
/// message kind for deliveries, and the state after it.
pub fn render_path(states_actions: &[(State, Option<Action>)]) -> String {
    let mut out = String::new();
    for (k, (s, a)) in states_actions.iter().enumerate() {
        if let Some(a) = a {
            let detail = match *a {
                Action::Deliver { from, to } => s
                    .link(from, to)
                    .front()
                    .map(|m| format!(" [{}]", kind_name(m)))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            out.push_str(&format!("step {k}: {a:?}{detail}\n"));
        } else {
            out.push_str(&format!("final state:\n{s:?}"));
        }
    }
    out
}
