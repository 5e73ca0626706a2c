//! The deterministic simulator behind `sgmp-sim`: N real S-GMP engines, each over its
//! own real transport [`Endpoint`](sgmp_transport::Endpoint), on a simulated network
//! with seeded faults, driven by event-driven simulated time.
//!
//! One seed gives one exact run: the network's random choices and the random schedule
//! both derive from it, every container that affects the run is ordered (`Vec`,
//! `BTreeMap`), and there is no clock and no thread. A run is:
//!
//! 1. the founders bootstrap version 1 at t = 0;
//! 2. the *fault phase*: the schedule crashes nodes (the mgr too, and mid-multicast),
//!    injects false suspicions, partitions and heals the network, sets loss,
//!    duplication, reordering and delay, starts joins and rejoins;
//! 3. at [`SimConfig::fault_phase_us`] every fault stops ([`Action::EndFaults`]) and the
//!    run must converge within [`SimConfig::liveness_bound_us`] (GMP-4);
//! 4. the history is checked ([`checker::check_safety`]).
//!
//! The figure tests use the same [`Sim`] with hand-written schedules.

mod actions;
pub mod checker;
pub mod net;
pub mod node;
pub mod report;
pub mod schedule;
pub mod trace;

use std::collections::BTreeMap;

use sgmp_membership::node::{CoreConfig, MemStorage};
use sgmp_membership::{EngineConfig, Member, ProcessId, Status, Time};
use sgmp_transport::TransportConfig;

pub use checker::{History, Violation};
pub use net::{LinkFaults, Net};
pub use node::{addr_of, member_of, Node};
pub use report::{BatchReport, RunReport};
pub use schedule::{Action, RandomShape, Schedule, Target};

use node::{Ctx, GlueStats};

impl SimConfig {
    /// The node core's settings: the engine's and the transport's, every node's
    /// address as a seed (no simulated node founds by discovery: the founders found
    /// together at t = 0), auto-rejoin and the join watchdog as `sgmpd` has them.
    pub fn core_config(&self) -> CoreConfig {
        CoreConfig {
            engine: self.engine.clone(),
            transport: self.transport,
            max_joins_per_sec: 0,
            seeds: (0..self.nodes + self.spare).map(addr_of).collect(),
            may_found: false,
            coldstart_rounds: 3,
            coldstart_round_us: 50_000,
            join_timeout_us: self.join_watchdog_us,
            auto_rejoin: self.auto_rejoin,
            leave_linger_us: 200_000,
            warm_up_us: 0,
            service: None,
        }
    }
}
use trace::Trace;

/// Settings of a simulation.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Founding members (n0 is the first mgr).
    pub nodes: usize,
    /// Extra nodes that may join later (`n{nodes}`...).
    pub spare: usize,
    /// Engine settings (small timeouts keep runs short).
    pub engine: EngineConfig,
    /// Transport settings.
    pub transport: TransportConfig,
    /// End of the fault phase of random runs, µs.
    pub fault_phase_us: u64,
    /// How long after the fault phase the live members have to agree (GMP-4), µs.
    pub liveness_bound_us: u64,
    /// Collect a readable trace.
    pub trace: bool,
    /// The driver's join watchdog, µs: a node still joining after this long restarts
    /// as a new incarnation. The engine gives a joiner no signal when it was added and
    /// removed again before its State-Xfer reached it (every member has disconnected
    /// it), so a real driver needs the same watchdog. See `docs/VERIFICATION.md`.
    pub join_watchdog_us: u64,
    /// Random runs use swarm schedules ([`schedule::swarm`]: each seed its own fault
    /// mix, the nastier partitions, pauses, and a liveness phase with a majority core);
    /// otherwise the classic ones ([`schedule::random`]).
    pub swarm: bool,
    /// Excluded processes come back as new incarnations by themselves (the node core's
    /// auto-rejoin, on in `sgmpd` by default). The paper's figures turn it off to
    /// look at the excluded process.
    pub auto_rejoin: bool,
}

impl SimConfig {
    /// Small timeouts: heartbeat 20 ms, suspicion 100 ms, protocol 200 ms; transport
    /// RTO 2..100 ms, unreachable after 400 ms. A fault phase of 1.5 s and a liveness
    /// bound of 4 s.
    pub fn fast(nodes: usize) -> SimConfig {
        SimConfig::with_spare(nodes, 1)
    }

    /// [`SimConfig::fast`] with `spare` extra nodes that may join.
    pub fn with_spare(nodes: usize, spare: usize) -> SimConfig {
        let nodes = nodes.clamp(1, 60);
        let spare = spare.min(60);
        SimConfig {
            nodes,
            spare,
            engine: EngineConfig {
                max_members: (nodes + spare).max(2),
                max_snapshot: 64,
                heartbeat_interval_us: 20_000,
                suspect_timeout_us: 100_000,
                protocol_timeout_us: 200_000,
                join_retry_us: 100_000,
                compression: true,
                max_pending_joins: 8,
                // The simulated node feeds `peer_alive` from its endpoint, as the runtime.
                local_health: true,
                ..EngineConfig::default()
            },
            transport: TransportConfig {
                cluster_id: 7,
                mtu: 1400,
                max_message: 8 * 1024,
                max_peers: nodes + spare,
                send_window: 32,
                recv_window: 32,
                initial_rto_us: 20_000,
                min_rto_us: 2_000,
                max_rto_us: 100_000,
                max_retries: 6,
                unreachable_after_us: 400_000,
                delayed_ack_us: 1_000,
                keepalive_us: 200_000,
                ..TransportConfig::default()
            },
            fault_phase_us: 1_500_000,
            liveness_bound_us: 4_000_000,
            trace: false,
            join_watchdog_us: 1_000_000,
            swarm: true,
            auto_rejoin: true,
        }
    }
}

/// A simulation: nodes, network, schedule, history. See the [module docs](self).
pub struct Sim {
    cfg: SimConfig,
    now: Time,
    step: u64,
    nodes: Vec<Node>,
    net: Net,
    schedule: Schedule,
    history: History,
    trace: Trace,
    fault_counts: BTreeMap<String, u64>,
    faults_end: Option<Time>,
    open_partition: Option<usize>,
    /// Nodes cut off for good by the liveness phase (outside the majority core).
    isolated: std::collections::BTreeSet<usize>,
    retired: GlueStats,
    extra: Vec<Violation>,
    dgram: Vec<u8>,
    /// Each node's simulated disk: its durable state outlives its processes.
    disks: Vec<MemStorage>,
    /// The node's disk holds everything its processes wrote (false for good after a
    /// disk loss).
    disk_ok: Vec<bool>,
    /// Per node: a scheduled `Leave` reached one of its lives (the simulator's record,
    /// for [`Sim::eligible_by_record`]).
    asked_to_leave: Vec<bool>,
}

impl Sim {
    /// A simulation whose network randomness derives from `seed`; the founders
    /// bootstrap version 1 at t = 0. Nothing is scheduled yet.
    pub fn new(cfg: SimConfig, seed: u64) -> Sim {
        let total = cfg.nodes + cfg.spare;
        let founders: Vec<Member> = (0..cfg.nodes).map(|i| member_of(i, 1)).collect();
        let core = cfg.core_config();
        let disks: Vec<MemStorage> = (0..total).map(|_| MemStorage::new()).collect();
        let nodes = (0..total)
            .map(|i| Node::new(i, member_of(i, 1).id, &core, cfg.trace, &disks[i]))
            .collect();
        let mut sim = Sim {
            trace: Trace::new(cfg.trace, cfg.engine.max_members, cfg.engine.max_snapshot),
            now: Time::ZERO,
            step: 0,
            nodes,
            net: Net::new(seed, cfg.transport.mtu.max(TransportConfig::MIN_MTU)),
            schedule: Schedule::new(),
            history: History::default(),
            fault_counts: BTreeMap::new(),
            faults_end: None,
            open_partition: None,
            isolated: std::collections::BTreeSet::new(),
            retired: GlueStats::default(),
            extra: Vec::new(),
            dgram: Vec::with_capacity(cfg.transport.mtu.max(TransportConfig::MIN_MTU)),
            disk_ok: vec![true; total],
            asked_to_leave: vec![false; total],
            disks,
            cfg,
        };
        for i in 0..sim.cfg.nodes {
            let pid = sim.nodes[i].pid();
            sim.history.nodes.insert(pid, i);
            sim.ctx_pump(i, |n, c| n.found_with(c, &founders));
        }
        sim
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Current simulated time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Schedules `action` at `t`.
    pub fn at(&mut self, t: Time, action: Action) -> &mut Sim {
        self.schedule.at(t, action);
        self
    }

    /// Replaces the schedule.
    pub fn set_schedule(&mut self, s: Schedule) {
        self.schedule = s;
    }

    /// The schedule still to run.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Number of nodes (founders and spares).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The network (for its counters).
    pub fn net(&self) -> &Net {
        &self.net
    }

    /// The history so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The trace lines (empty unless [`SimConfig::trace`]).
    pub fn trace_lines(&self) -> &[String] {
        self.trace.lines()
    }

    /// Node `i`'s view as node names, in rank order.
    pub fn view_names(&self, i: usize) -> Vec<String> {
        self.nodes[i]
            .engine()
            .view()
            .members
            .iter()
            .map(|m| m.id.node.to_string())
            .collect()
    }

    /// Node `i`'s membership status.
    pub fn status(&self, i: usize) -> Status {
        self.nodes[i].engine().status()
    }

    /// Node `i`'s view version.
    pub fn version(&self, i: usize) -> u64 {
        self.nodes[i].engine().view().version
    }

    /// Fault kinds exercised so far.
    pub fn fault_counts(&self) -> &BTreeMap<String, u64> {
        &self.fault_counts
    }

    fn ctx_pump(&mut self, i: usize, f: impl FnOnce(&mut Node, &mut Ctx<'_>)) {
        self.history.inputs += 1;
        let mut ctx = Ctx {
            now: self.now,
            step: self.step,
            net: &mut self.net,
            history: &mut self.history,
            trace: &mut self.trace,
        };
        f(&mut self.nodes[i], &mut ctx);
        // Each recorded event took a step of its own (they are ordered).
        self.step = ctx.step;
    }

    /// Runs until simulated time `end` (event-driven: jumps from event to event).
    pub fn run_until(&mut self, end: Time) {
        let mut spins = 0u32;
        loop {
            let mut next =
                sgmp_membership::earliest(self.net.next_arrival(), self.schedule.next_time());
            for n in &self.nodes {
                next = sgmp_membership::earliest(next, n.deadline());
            }
            let Some(t) = next.filter(|t| *t <= end) else {
                self.now = self.now.max(end);
                return;
            };
            if t <= self.now {
                spins += 1;
                if spins > 100_000 {
                    self.extra.push(Violation {
                        property: "engine",
                        detail: format!("a timer stays due without progress at t={}us", self.now.0),
                    });
                    self.now = end;
                    return;
                }
            } else {
                spins = 0;
                self.now = t;
            }
            while let Some(a) = self.schedule.pop_due(self.now) {
                self.step += 1;
                self.apply(a);
            }
            let mut dgram = std::mem::take(&mut self.dgram);
            while let Some((from, to, bytes)) = self.net.pop_due(self.now) {
                self.step += 1;
                let len = bytes.len();
                dgram.clear();
                dgram.extend_from_slice(bytes);
                let Some(i) = node::index_of(to).filter(|i| *i < self.nodes.len()) else {
                    continue;
                };
                let live = self.nodes[i].up;
                self.net.note_arrival(live);
                if live && self.nodes[i].paused_until.is_some() {
                    // The socket buffer of a stopped process.
                    if self.nodes[i].inbox.len() < schedule::PAUSE_BUFFER {
                        self.nodes[i].inbox.push((from, dgram[..len].to_vec()));
                    }
                } else if live {
                    self.ctx_pump(i, |n, c| n.on_datagram(c, from, &dgram[..len]));
                }
            }
            self.dgram = dgram;
            for i in 0..self.nodes.len() {
                if self.nodes[i].paused_until.is_some_and(|d| d <= self.now) {
                    self.step += 1;
                    self.resume(i);
                    continue;
                }
                if self.nodes[i].deadline().is_some_and(|d| d <= self.now) {
                    self.step += 1;
                    self.ctx_pump(i, |n, c| n.on_timeout(c));
                }
            }
        }
    }

    /// Runs for `us` more microseconds.
    pub fn run_for(&mut self, us: u64) {
        let end = self.now + us;
        self.run_until(end);
    }

    fn count(&mut self, kind: &str) {
        *self.fault_counts.entry(kind.to_string()).or_insert(0) += 1;
    }

    /// The live node that acts as mgr (the most advanced one if several think so),
    /// or else the most senior live member of the most advanced live view.
    pub fn current_mgr(&self) -> Option<usize> {
        let best = |f: &dyn Fn(&Node) -> bool| {
            self.nodes
                .iter()
                .filter(|n| n.is_live_member() && f(n))
                .max_by_key(|n| (n.engine().view().version, std::cmp::Reverse(n.index)))
                .map(|n| n.index)
        };
        best(&|n| n.engine().is_mgr()).or_else(|| {
            let i = best(&|_| true)?;
            let v = self.nodes[i].engine().view();
            v.members
                .iter()
                .filter_map(|m| self.node_running(m.id))
                .find(|&j| self.nodes[j].is_live_member())
        })
    }

    /// The node currently running process `pid`, if any.
    pub fn node_running(&self, pid: ProcessId) -> Option<usize> {
        self.nodes.iter().position(|n| n.pid() == pid && n.started)
    }

    fn resolve(&self, t: Target) -> Option<usize> {
        match t {
            Target::Node(i) => (i < self.nodes.len()).then_some(i),
            Target::Mgr => self.current_mgr(),
        }
    }

    /// A paused node resumes: the datagrams that waited are read, then its timers
    /// (which see the time jump, as a process after SIGCONT does) run.
    fn resume(&mut self, i: usize) {
        if self.nodes[i].paused_until.take().is_none() {
            return;
        }
        let pid = self.nodes[i].pid();
        self.trace.line(self.now, || format!("RESUME {pid}"));
        for (from, bytes) in std::mem::take(&mut self.nodes[i].inbox) {
            if !self.nodes[i].up {
                break;
            }
            self.ctx_pump(i, |n, c| n.on_datagram(c, from, &bytes));
        }
        if self.nodes[i].up {
            self.ctx_pump(i, |n, c| n.on_timeout(c));
        }
    }

    fn is_paused(&self, i: usize) -> bool {
        self.nodes[i].paused_until.is_some()
    }

    fn crash(&mut self, i: usize) {
        self.ctx_pump(i, |n, c| n.crash_now(c));
    }

    /// Starts node `i` as a new process (incarnation `inc`, a fresh core, no state):
    /// it finds the group by discovery through its seeds and joins.
    fn start_joiner(&mut self, i: usize, inc: u64) -> bool {
        let old = self.nodes[i].stats();
        self.retired.messages += old.messages;
        // The replaced life's bugs stay counted: a restart must not erase them.
        if old.errors + old.decode_errors + old.backlog_overflow > 0 {
            self.extra
                .push(life_errors(self.nodes[i].pid().to_string(), &old));
        }
        self.retired.rejoins_after_exclusion += old.rejoins_after_exclusion;
        self.retired.rejoins_after_join_timeout += old.rejoins_after_join_timeout;
        // A restart from a disk that holds a state starts at the first life's
        // incarnation, as `sgmpd` with a fixed `incarnation` in its configuration
        // does: the node core itself must raise it above the stored one
        // (`NodeCore::with_durable`), or the crashed process would come back as itself.
        let inc = if self.disks[i].load().is_some() {
            1
        } else {
            inc
        };
        let id = member_of(i, inc).id;
        self.nodes[i] = Node::new(
            i,
            id,
            &self.cfg.core_config(),
            self.cfg.trace,
            &self.disks[i],
        );
        let id = self.nodes[i].pid();
        self.history.nodes.insert(id, i);
        self.trace
            .line(self.now, || format!("START {id} (discovery)"));
        self.ctx_pump(i, |n, c| n.start(c));
        true
    }

    /// Node `j` runs a process that holds its node's durable state of a view, and is
    /// not cut off.
    pub(crate) fn has_state(&self, j: usize) -> bool {
        let n = &self.nodes[j];
        n.up && !self.isolated.contains(&j)
            && n.core.durable().has_view()
            // A process that left gracefully is gone by its own choice.
            && n.core.phase() != sgmp_membership::node::NodePhase::Left
    }

    fn close_partition(&mut self) {
        if let Some(p) = self.open_partition.take() {
            self.history.partitions[p].end_step = self.step;
        }
    }

    /// `Ok` when every live member holds the same view, that view holds only live
    /// members (no crashed process, no old incarnation, nobody excluded), and no live
    /// node is still joining. Otherwise a description of what is off.
    pub fn converged(&self) -> Result<(), String> {
        if let Some(n) = self.nodes.iter().find(|n| {
            n.up && !self.isolated.contains(&n.index)
                && !n.is_live_member()
                // Gone by choice, or excluded for good (auto-rejoin off).
                && !matches!(
                    n.core.phase(),
                    sgmp_membership::node::NodePhase::Left
                        | sgmp_membership::node::NodePhase::Excluded
                )
        }) {
            return Err(format!(
                "{} is up but {} (not a member)",
                n.pid(),
                n.core.phase().as_str()
            ));
        }
        let live: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|n| n.is_live_member() && !self.isolated.contains(&n.index))
            .collect();
        let Some(first) = live.first() else {
            return Err("no live member".into());
        };
        let v = first.engine().view();
        for n in &live {
            let w = n.engine().view();
            if w.version != v.version || w.members != v.members {
                return Err(format!(
                    "{} has version {} {:?} but {} has version {} {:?}",
                    first.pid(),
                    v.version,
                    first_names(v),
                    n.pid(),
                    w.version,
                    first_names(w)
                ));
            }
        }
        for m in &v.members {
            let ok = self
                .node_running(m.id)
                .is_some_and(|j| self.nodes[j].is_live_member() && !self.isolated.contains(&j));
            if !ok {
                return Err(format!(
                    "version {} still holds {} which is crashed, replaced, excluded or cut off",
                    v.version, m.id
                ));
            }
        }
        if let Some(j) = self.nodes.iter().find(|n| {
            n.up && n.engine().status() == Status::Joining && !self.isolated.contains(&n.index)
        }) {
            return Err(format!("{} is still joining", j.pid()));
        }
        Ok(())
    }

    /// One line per node: process, up or down, status, view.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for n in self.nodes.iter().filter(|n| n.started) {
            let v = n.engine().view();
            out.push_str(&format!(
                "{} {} {:?} v{} {:?}\n",
                n.pid(),
                if n.up { "up" } else { "DOWN" },
                n.engine().status(),
                v.version,
                first_names(v)
            ));
        }
        out
    }

    /// The liveness precondition, decided from what the schedule left running, not
    /// from what the engines did to themselves: a majority of the names of the group's
    /// last view ([`Sim::last_view`]) or of the highest view installed has a process
    /// running under it with its durable state, not cut off. Then every live process
    /// must end in one view (GMP-4 and D23).
    pub fn majority_alive(&self) -> bool {
        let view = self.last_view();
        if !view.is_empty() && self.nodes_with_state(&view).len() > view.len() / 2 {
            return true;
        }
        // The wording: a majority of the names of the highest view installed
        // by anyone, even by a process gone since, if the running states know it or
        // prove it chosen (D23 *Learning*) and no recovery decided a newer one since
        // (docs/VERIFICATION.md: then no protocol can go on).
        let h = self.history.max_version();
        self.majority_of_installed_alive()
            && !self.decided_newer_than_installed()
            && self.provable_version() >= h
    }

    /// Liveness eligibility from the simulator's own record, not from the processes'
    /// durable states: every node that ever installed a view (in any life) runs at the
    /// end, is not cut off, never lost its disk and was never told to leave. Then no fault took a
    /// state away, and a group that does not come back, or whose processes' states say
    /// it cannot ([`Sim::majority_alive`] false), lost a state the code should have
    /// kept or restored.
    ///
    /// Every name of the highest view installed (and of the running states' last view)
    /// must be such a node too: a joiner added to a view that it never installed holds
    /// no state of it, and a group of such names may be lost for good.
    pub fn eligible_by_record(&self) -> bool {
        let mut installers = std::collections::BTreeSet::new();
        for i in &self.history.installs {
            let Some(&j) = self.history.nodes.get(&i.pid) else {
                return false;
            };
            let n = &self.nodes[j];
            if !n.up || self.isolated.contains(&j) || !self.disk_ok[j] || self.asked_to_leave[j] {
                return false;
            }
            installers.insert(j);
        }
        let highest = self
            .history
            .view(self.history.max_version())
            .unwrap_or_default();
        let named_installed = highest.iter().chain(self.last_view().iter()).all(|p| {
            self.history
                .nodes
                .get(p)
                .is_some_and(|j| installers.contains(j))
        });
        !installers.is_empty() && named_installed
    }

    /// The newest version the running processes' durable states hold or prove chosen:
    /// the last view's, then each S-GMP view that half of the previous view's names,
    /// rounded up, accepted at one ballot (D23 *Learning*, `chosen_successor`).
    pub fn provable_version(&self) -> u64 {
        let mut best: Option<&sgmp_membership::View> = None;
        for (j, n) in self.nodes.iter().enumerate() {
            let v = &n.core.durable().view;
            if self.has_state(j) && best.is_none_or(|b| v.version > b.version) {
                best = Some(v);
            }
        }
        let Some(mut best) = best else {
            return 0;
        };
        loop {
            let acceptances = self.nodes.iter().enumerate().filter_map(|(j, n)| {
                let d = n.core.durable();
                let a = d.accepted.as_ref()?;
                (self.has_state(j) && d.view.version == best.version && a.ballot.class == 1)
                    .then_some((n.pid().node, a))
            });
            match sgmp_membership::node::durable::chosen_successor(best, acceptances) {
                Some(v) => best = v,
                None => return best.version,
            }
        }
    }

    /// A running process holds (durably) a view newer than any installed: a recovery
    /// decided it and nobody installed it yet.
    fn decided_newer_than_installed(&self) -> bool {
        let h = self.history.max_version();
        self.nodes
            .iter()
            .enumerate()
            .any(|(j, n)| self.has_state(j) && n.core.durable().view.version > h)
    }

    /// The nodes running a process that holds the durable state of one of `view`'s
    /// names (see [`Sim::has_state`]), each once.
    pub(crate) fn nodes_with_state(&self, view: &[ProcessId]) -> Vec<usize> {
        let mut alive: Vec<usize> = view
            .iter()
            .filter_map(|p| self.history.nodes.get(p).copied())
            .filter(|&j| self.has_state(j))
            .collect();
        alive.sort_unstable();
        alive.dedup();
        alive
    }

    /// The group's last view as the running processes know it: the highest view
    /// held in the durable state of a process that runs, is not cut off and did not
    /// leave (installed, or decided by a recovery). A view whose every holder is gone
    /// cannot be the base of a recovery (its successor's acceptors are the names of
    /// the view before it), so liveness is decided from this one; see
    /// `docs/VERIFICATION.md` for how it differs from "the highest view installed".
    pub fn last_view(&self) -> Vec<ProcessId> {
        let mut best: Option<&sgmp_membership::View> = None;
        for (j, n) in self.nodes.iter().enumerate() {
            if !self.has_state(j) {
                continue;
            }
            let v = &n.core.durable().view;
            if best.is_none_or(|b| v.version > b.version) {
                best = Some(v);
            }
        }
        best.map(|v| v.members.iter().map(|m| m.id).collect())
            .unwrap_or_default()
    }

    /// The stricter precondition: a majority of the names of the highest view
    /// installed by any process (even one gone since) runs with its durable state.
    pub fn majority_of_installed_alive(&self) -> bool {
        let Some(view) = self.history.view(self.history.max_version()) else {
            return false;
        };
        self.nodes_with_state(view).len() > view.len() / 2
    }

    /// What a seed counted `eligible_only_by_a_lost_view` leaves: the highest view
    /// installed and the one before it, and each running node's durable state (its
    /// installed version, its acceptance for the next version), for `--verbose`.
    pub fn describe_lost_view(&self) -> String {
        let h = self.history.max_version();
        let names = |v: Option<&[ProcessId]>| -> Vec<String> {
            v.unwrap_or_default()
                .iter()
                .map(|p| p.to_string())
                .collect()
        };
        let mut out = format!(
            "  highest view installed v{h} {:?}, installed by {:?}\n  v{} {:?}\n",
            names(self.history.view(h)),
            self.history
                .installs
                .iter()
                .filter(|i| i.version == h)
                .map(|i| i.pid.to_string())
                .collect::<Vec<_>>(),
            h.wrapping_sub(1),
            names(self.history.view(h.wrapping_sub(1)))
        );
        for (j, n) in self.nodes.iter().enumerate() {
            let d = n.core.durable();
            out.push_str(&format!(
                "  {} {} state v{} accepted {:?}\n",
                n.pid(),
                if self.has_state(j) {
                    "runs with state"
                } else {
                    "-"
                },
                d.view.version,
                d.accepted
                    .as_ref()
                    .map(|a| (a.ballot.class, a.ballot.rank, a.view.version))
            ));
        }
        out
    }

    /// For a seed counted `eligible_only_by_a_lost_view`, why the group's last view
    /// ([`Sim::last_view`], what the running states know or can prove) is not the
    /// highest view installed: `"lost_view_decided_newer"` when a recovery decided a
    /// newer view than any installed (a majority of whose names is gone), else
    /// `"lost_view_unprovable"` (the highest installed view is held by nobody running,
    /// and no majority of the names of the view before it holds a durable acceptance
    /// of it: the running states cannot tell it from a proposal that was never
    /// chosen). See `docs/VERIFICATION.md`.
    pub fn lost_view_kind(&self) -> &'static str {
        if self.decided_newer_than_installed() {
            "lost_view_decided_newer"
        } else {
            "lost_view_unprovable"
        }
    }

    /// Safety violations of the history so far, plus driver-level ones (decode errors,
    /// refused sends, stalled timers).
    pub fn violations(&self) -> Vec<Violation> {
        let mut v = checker::check_safety(&self.history);
        v.extend(self.extra.iter().cloned());
        for n in &self.nodes {
            let s = n.stats();
            if s.errors + s.decode_errors + s.backlog_overflow > 0 {
                v.push(life_errors(n.pid().to_string(), &s));
            }
        }
        v
    }

    /// Runs the fault phase (until [`Action::EndFaults`] has run), then up to the
    /// liveness bound, stopping early once converged for two consecutive 50 ms probes.
    /// Returns the liveness violation, if any.
    pub fn run_to_convergence(&mut self) -> (Option<Violation>, Option<u64>, bool) {
        while self.faults_end.is_none() {
            let before = self.now;
            self.run_for(50_000);
            if self.schedule.is_empty() && self.faults_end.is_none() && self.now == before {
                break;
            }
        }
        let start = self.faults_end.unwrap_or(self.now);
        let deadline = start + self.cfg.liveness_bound_us;
        let mut stable = 0;
        let mut converged_at = None;
        while self.now < deadline {
            self.run_until((self.now + 50_000).min(deadline));
            if self.converged().is_ok() {
                converged_at.get_or_insert(self.now);
                stable += 1;
                if stable >= 2 {
                    break;
                }
            } else {
                stable = 0;
                converged_at = None;
            }
        }
        let applies = self.majority_alive();
        let after = converged_at.map(|t| t - start);
        if !applies {
            return (None, after, false);
        }
        match self.converged() {
            Ok(()) => (None, after, true),
            Err(e) => (
                Some(Violation {
                    property: "liveness",
                    detail: format!(
                        "{}us after the faults ended (t={}us): {e}",
                        self.cfg.liveness_bound_us, start.0
                    ),
                }),
                after,
                true,
            ),
        }
    }

    /// The report of this run so far.
    pub fn report(&self, seed: u64) -> RunReport {
        let mut fault_kinds = self.fault_counts.clone();
        let ns = self.net.stats();
        for (k, v) in [
            ("datagrams_lost", ns.lost),
            ("datagrams_duplicated", ns.duplicated),
            ("datagrams_reordered", ns.reordered),
            ("datagrams_blocked", ns.blocked),
            ("datagrams_overflow", ns.overflow),
        ] {
            if v > 0 {
                *fault_kinds.entry(k.to_string()).or_insert(0) += v;
            }
        }
        let backlogged: u64 = self.nodes.iter().map(|n| n.stats().backlogged).sum();
        if backlogged > 0 {
            fault_kinds.insert("window_full_backlogged".into(), backlogged);
        }
        for (k, v) in [
            (
                "rejoin_after_exclusion",
                self.retired.rejoins_after_exclusion
                    + self
                        .nodes
                        .iter()
                        .map(|n| n.stats().rejoins_after_exclusion)
                        .sum::<u64>(),
            ),
            (
                "join_watchdog_restart",
                self.retired.rejoins_after_join_timeout
                    + self
                        .nodes
                        .iter()
                        .map(|n| n.stats().rejoins_after_join_timeout)
                        .sum::<u64>(),
            ),
        ] {
            if v > 0 {
                fault_kinds.insert(k.into(), v);
            }
        }
        RunReport {
            seed,
            violations: self.violations(),
            views_installed: self.history.installs.len() as u64,
            max_version: self.history.max_version(),
            messages: self.retired.messages
                + self.nodes.iter().map(|n| n.stats().messages).sum::<u64>(),
            datagrams: ns.offered,
            sim_time_us: self.now.0,
            fault_kinds,
            liveness_checked: false,
            converged_after_us: None,
            max_backlog: self
                .nodes
                .iter()
                .map(|n| n.stats().max_backlog)
                .max()
                .unwrap_or(0),
        }
    }
}

/// A process whose sends were refused for a reason that is a bug, whose messages could
/// not be decoded, or whose backlog lost a message.
fn life_errors(pid: String, s: &GlueStats) -> Violation {
    Violation {
        property: "engine",
        detail: format!(
            "{pid}: {} sends refused (too large / table full), {} decode errors, {} messages lost to a full backlog",
            s.errors, s.decode_errors, s.backlog_overflow
        ),
    }
}

fn first_names(v: &sgmp_membership::View) -> Vec<String> {
    v.members.iter().map(|m| m.id.to_string()).collect()
}

/// Runs one random seed: schedule from [`schedule::random`], fault phase, liveness
/// phase, checks. Returns the report and the simulation (for its trace).
pub fn run_seed(seed: u64, cfg: &SimConfig) -> (RunReport, Sim) {
    let mut cfg = cfg.clone();
    // One run in eight sends submits as messages of their own (no compression).
    cfg.engine.compression = seed % 8 != 7;
    // One run in four uses the smallest send window the transport allows, so that
    // WindowFull and the driver's backlog are exercised.
    if seed % 4 == 1 {
        cfg.transport.send_window = 1;
        cfg.transport.recv_window = 1;
    }
    let shape = RandomShape {
        nodes: cfg.nodes,
        spare: cfg.spare,
        fault_phase_us: cfg.fault_phase_us,
    };
    let swarm = cfg.swarm;
    let mut sim = Sim::new(cfg, seed);
    sim.set_schedule(schedule::for_seed(seed, shape, swarm));
    let (live, after, checked) = sim.run_to_convergence();
    let mut r = sim.report(seed);
    if sim.eligible_by_record() {
        r.fault_kinds.insert("eligible_by_record".into(), 1);
        if !checked {
            // Nothing in the schedule took a state away, yet the processes' states say
            // the group cannot come back: a state was lost or not restored.
            r.violations.push(Violation {
                property: "liveness",
                detail: "every node that installed a view runs with its disk, yet no majority of the last view's names holds its state".into(),
            });
        }
    }
    if !checked {
        // No majority of the last view's names runs with its state: only safety is
        // checked.
        r.fault_kinds.insert("not_liveness_eligible".into(), 1);
    }
    if sim.majority_of_installed_alive() && !checked {
        // Eligible by the highest view installed anywhere, but that view died with
        // its holders (see `Sim::last_view`).
        r.fault_kinds
            .insert("eligible_only_by_a_lost_view".into(), 1);
        r.fault_kinds.insert(sim.lost_view_kind().into(), 1);
    }
    r.violations.extend(live);
    r.liveness_checked = checked;
    r.converged_after_us = after;
    if !sim.config().engine.compression {
        r.fault_kinds.insert("no_compression".into(), 1);
    }
    (r, sim)
}

/// Runs seeds `start..start + count` and sums them up.
pub fn run_batch(start: u64, count: u64, cfg: &SimConfig) -> BatchReport {
    let mut b = BatchReport {
        start,
        nodes: cfg.nodes,
        ..BatchReport::default()
    };
    for seed in start..start + count {
        // A failed assertion (the invariants, with debug assertions on) fails its seed,
        // not the batch: the other seeds still run and the seed is named.
        match std::panic::catch_unwind(|| run_seed(seed, cfg)) {
            Ok((r, _)) => b.add(&r),
            Err(p) => {
                let what = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic".into());
                b.seeds += 1;
                b.violations += 1;
                b.failures.push(report::Failure {
                    seed,
                    reason: format!("panic: {what}"),
                });
            }
        }
    }
    b
}
