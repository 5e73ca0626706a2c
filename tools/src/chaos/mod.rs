//! `sgmp-chaos`: real `sgmpd` processes on 127.0.0.1 under a seeded schedule of
//! faults, then a heal phase, then the Strong GMP checks over their event logs and a
//! liveness check.
//!
//! A run:
//!
//! 1. starts `nodes` daemons at once (every slot is a seed of every other; they
//!    cold-start one group) and waits (bounded) for one view of all of them;
//! 2. the *fault phase*: every 150..900 ms the seeded schedule draws a fault from the
//!    run's own mix (each kind gets a random weight, swarm style): SIGKILL of a node or
//!    of the mgr (restarted 0.2..3 s later as a new process, hence a new
//!    incarnation), SIGSTOP for 50..1500 ms then SIGCONT (short stops test that no
//!    one is removed for a hiccup, long ones are false suspicions), fault-layer loss
//!    (up to 15 %), duplication, reordering on some nodes for 1..5 s, a
//!    majority/minority partition for 0.5..4 s (`fault partition` on every node of both
//!    sides, by address), a one-way cut for 0.5..4 s (`fault cut`: a minority that
//!    cannot send to the rest but hears it, or the other way round), and joins of
//!    spare nodes. Fault commands go through
//!    `sgmpctl` (or the same control request if the binary is missing). A destructive
//!    fault (kill, stop, cut off) is injected only if the healthy members of the most
//!    advanced view observed (statuses polled just before; a member some process
//!    already suspects is not healthy) stay a majority of it, counting every running
//!    non-member as a possible joiner; link faults are not limited;
//! 3. the *heal phase*: `fault clear` everywhere, SIGCONT every stopped process,
//!    restart most of the dead ones, then wait (bounded) until every live process is a
//!    member of one same view whose members are exactly the live processes;
//! 4. the event logs of every life of every process go through
//!    [`crate::logcheck`] (one view per version, contiguous versions,
//!    self-inclusion, no return after removal or exclusion); a failed liveness wait is
//!    a violation too.
//!
//! Every child is SIGKILLed when the run ends, by [`Cluster`]'s `Drop` (also on panic)
//! and, on Linux, by the kernel if the chaos process itself dies (`PR_SET_PDEATHSIG`).

pub mod cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use cluster::{sibling_binaries, Cluster, Status, Timing};

use crate::logcheck;

/// Settings of a chaos run.
#[derive(Clone, Debug)]
pub struct ChaosConfig {
    /// Seed of the schedule (and of every node's fault layer).
    pub seed: u64,
    /// Whole run, seconds: the fault phase is this minus the heal bound.
    pub seconds: u64,
    /// Founding processes.
    pub nodes: usize,
    /// Extra processes that join during the run.
    pub spares: usize,
    /// The `sgmpd` binary.
    pub sgmpd: PathBuf,
    /// The `sgmpctl` binary (fault commands go through the library without it).
    pub sgmpctl: Option<PathBuf>,
    /// Work directory (logs, configs, sockets); a fresh one under the temp dir if unset.
    pub dir: Option<PathBuf>,
    /// Keep the work directory even when the run passes.
    pub keep: bool,
    /// Print each fault as it is injected.
    pub verbose: bool,
    /// Node timing.
    pub timing: Timing,
    /// Extra environment of every `sgmpd` (the sabotage test sets
    /// `sgmp_membership::sabotage::ENV`).
    pub daemon_env: Vec<(String, String)>,
}

impl ChaosConfig {
    /// Defaults: 300 s, 5 nodes, 2 spares, the fast test timing.
    pub fn new(sgmpd: PathBuf, sgmpctl: Option<PathBuf>) -> ChaosConfig {
        ChaosConfig {
            seed: 1,
            seconds: 300,
            nodes: 5,
            spares: 2,
            sgmpd,
            sgmpctl,
            dir: None,
            keep: false,
            verbose: false,
            timing: Timing::default(),
            daemon_env: Vec::new(),
        }
    }

    /// How long the heal phase may take: a third of the run, between 8 and 30 s.
    pub fn heal_bound(&self) -> Duration {
        Duration::from_secs((self.seconds / 3).clamp(8, 30))
    }
}

/// The outcome of a chaos run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChaosReport {
    /// The seed.
    pub seed: u64,
    /// Founding processes.
    pub nodes: usize,
    /// Spare processes.
    pub spares: usize,
    /// Wall time of the whole run, s.
    pub wall_secs: f64,
    /// Length of the fault phase, s.
    pub fault_phase_secs: f64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Faults the schedule drew but skipped (they would have cost the majority).
    pub skipped_for_majority: u64,
    /// Weight of each fault kind in this run's mix.
    pub mix: BTreeMap<String, u32>,
    /// Processes spawned (first lives, restarts and joins).
    pub processes_started: u64,
    /// View installations logged, over every process.
    pub views_installed: u64,
    /// Highest view version logged.
    pub max_version: u64,
    /// Event log records read.
    pub records: u64,
    /// Time from the start of the heal phase to one view of every live process, ms.
    pub converged_after_ms: Option<u64>,
    /// The final view: version and members.
    pub final_view: Option<(u64, Vec<String>)>,
    /// Violations (0 expected): safety from the logs, liveness, errors of the run.
    pub violations: Vec<String>,
    /// The work directory (kept when there are violations).
    pub dir: String,
}

/// Fault kinds of the mix.
const KINDS: [&str; 11] = [
    "full_restart",
    "total_outage",
    "sigkill",
    "sigkill_mgr",
    "sigstop",
    "loss",
    "duplication",
    "reordering",
    "partition",
    "oneway_cut",
    "join",
];

/// Something to undo later.
#[derive(Clone, Debug)]
enum Undo {
    Restart(usize),
    Cont(usize),
    HealPartition(Vec<usize>),
    ClearLink(Vec<usize>, &'static str),
}

struct Run<'a> {
    cfg: &'a ChaosConfig,
    c: Cluster,
    rng: ChaCha8Rng,
    report: ChaosReport,
    undo: Vec<(Instant, Undo)>,
    /// Slots cut off on the minority side of the current partition.
    cut: BTreeSet<usize>,
    /// Slots on which a partition must be healed when they resume.
    heal_on_cont: BTreeSet<usize>,
    /// The last full restart or total outage (at most one every 15 s: the group needs
    /// time to come back between them, D23).
    last_total: Option<Instant>,
    stop: &'a AtomicBool,
}

/// Runs a chaos run. `stop` ends the fault phase early (SIGINT). Errors setting up
/// (no binary, no temp dir) are returned; everything that goes wrong afterwards is a
/// violation in the report.
pub fn run(cfg: &ChaosConfig, stop: &AtomicBool) -> std::io::Result<ChaosReport> {
    let started = Instant::now();
    let dir = cfg.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("sgmp-chaos-{}-{}", cfg.seed, std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    if !cfg.sgmpd.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no sgmpd binary at {}", cfg.sgmpd.display()),
        ));
    }
    let total = cfg.nodes + cfg.spares;
    let mut c = Cluster::new(
        dir.clone(),
        total,
        cfg.sgmpd.clone(),
        cfg.sgmpctl.clone(),
        cfg.timing,
        cfg.seed,
    )?;
    c.env.clone_from(&cfg.daemon_env);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x4348_414f_5321);
    let mix: BTreeMap<String, u32> = KINDS
        .iter()
        .map(|k| (k.to_string(), rng.gen_range(1..=4)))
        .collect();
    let mut r = Run {
        cfg,
        c,
        rng,
        report: ChaosReport {
            seed: cfg.seed,
            nodes: cfg.nodes,
            spares: cfg.spares,
            mix,
            dir: dir.display().to_string(),
            ..ChaosReport::default()
        },
        undo: Vec::new(),
        cut: BTreeSet::new(),
        heal_on_cont: BTreeSet::new(),
        last_total: None,
        stop,
    };
    r.go(started);
    let mut report = r.finish(started);
    report.wall_secs = started.elapsed().as_secs_f64();
    if report.violations.is_empty() && !cfg.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(report)
}

impl Run<'_> {
    fn count(&mut self, kind: &str) {
        *self.report.faults.entry(kind.to_string()).or_insert(0) += 1;
    }

    /// Records a partition or cut of `side` (fault `kind`, counted only if some node
    /// `applied` it: a fault no node took is no fault) and schedules its heal 0.5-4 s
    /// from `now`.
    fn heal_later(&mut self, now: Instant, kind: &str, side: Vec<usize>, applied: bool) {
        self.cut.extend(side.iter().copied());
        if applied {
            self.count(kind);
        }
        let d = Duration::from_millis(self.rng.gen_range(500..4_000));
        self.undo.push((now + d, Undo::HealPartition(side)));
    }

    fn say(&self, t0: Instant, msg: impl FnOnce() -> String) {
        if self.cfg.verbose {
            eprintln!("[{:8.3}] {}", t0.elapsed().as_secs_f64(), msg());
        }
    }

    fn violation(&mut self, v: String) {
        self.report.violations.push(v);
    }

    fn go(&mut self, t0: Instant) {
        for i in 0..self.cfg.nodes {
            if let Err(e) = self.c.spawn(i) {
                self.violation(format!("cannot start sgmpd: {e}"));
                return;
            }
        }
        // The founders form one group.
        let founders: Vec<usize> = (0..self.cfg.nodes).collect();
        if self
            .wait_converged(&founders, Duration::from_secs(20))
            .is_none()
        {
            let tail = self.c.stderr_tail(5);
            self.violation(format!(
                "liveness: the {} founders formed no common view within 20 s\n{tail}",
                self.cfg.nodes
            ));
            return;
        }
        self.say(t0, || "initial group formed".into());
        let fault_end = t0 + Duration::from_secs(self.cfg.seconds) - self.cfg.heal_bound();
        self.report.fault_phase_secs = fault_end.saturating_duration_since(t0).as_secs_f64();
        let mut next_fault = Instant::now();
        let mut next_poll = Instant::now();
        while Instant::now() < fault_end && !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            for i in self.c.reap() {
                // A daemon that exits by itself (it never should here) is restarted.
                self.violation(format!("{} exited by itself", self.c.slots[i].name));
                self.undo.push((now, Undo::Restart(i)));
            }
            if now >= next_poll {
                for i in 0..self.c.slots.len() {
                    let _ = self.c.poll_status(i);
                }
                next_poll = now + Duration::from_millis(100);
            }
            self.run_undo(now, t0);
            if now >= next_fault {
                self.inject(t0);
                next_fault = Instant::now() + Duration::from_millis(self.rng.gen_range(150..900));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn run_undo(&mut self, now: Instant, t0: Instant) {
        let due: Vec<Undo> = {
            let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.undo)
                .into_iter()
                .partition(|(t, _)| *t <= now);
            self.undo = keep;
            due.into_iter().map(|(_, u)| u).collect()
        };
        for u in due {
            self.say(t0, || format!("undo {u:?}"));
            match u {
                Undo::Restart(i) => {
                    if self.c.slots[i].child.is_none() {
                        match self.c.spawn(i) {
                            Ok(()) => self.count("restart"),
                            Err(e) => self.violation(format!("cannot restart sgmpd: {e}")),
                        }
                    }
                }
                Undo::Cont(i) => {
                    self.c.cont(i);
                    self.count("sigcont");
                    if self.heal_on_cont.remove(&i) {
                        let _ = self.c.fault(i, &["heal".into()]);
                    }
                }
                Undo::HealPartition(side) => {
                    for i in 0..self.c.slots.len() {
                        if self.c.slots[i].stopped {
                            self.heal_on_cont.insert(i);
                        } else {
                            let _ = self.c.fault(i, &["heal".into()]);
                        }
                    }
                    for i in side {
                        self.cut.remove(&i);
                    }
                    self.count("heal");
                }
                Undo::ClearLink(nodes, what) => {
                    for i in nodes {
                        let args: Vec<String> = match what {
                            "reorder" => vec!["reorder".into(), "0".into()],
                            w => vec![w.into(), "0".into()],
                        };
                        let _ = self.c.fault(i, &args);
                    }
                }
            }
        }
    }

    /// The most advanced view reported by a live member.
    fn current_view(&self) -> Option<Status> {
        self.c
            .slots
            .iter()
            .filter(|s| s.is_live())
            .filter_map(|s| s.status.as_ref())
            .filter(|s| s.is_member())
            .max_by_key(|s| s.version)
            .cloned()
    }

    /// Whether the members of the current view that are healthy (running, not
    /// stopped, not cut off, last seen as members of that view) and not in `victims`
    /// are a majority of the view plus every running non-member (a possible joiner).
    fn majority_survives(&self, victims: &[usize]) -> bool {
        let Some(v) = self.current_view() else {
            return false;
        };
        // A member some running process already suspects is on its way out: to the
        // protocol it is faulty (S-GMP's liveness assumes a majority of the view
        // neither faulty nor suspected), so it does not count as healthy.
        let suspected: BTreeSet<&str> = self
            .c
            .slots
            .iter()
            .filter(|s| s.is_live())
            .filter_map(|s| s.status.as_ref())
            .flat_map(|st| st.faulty.iter().map(String::as_str))
            .collect();
        let mut healthy = 0;
        let mut others = 0;
        for (i, s) in self.c.slots.iter().enumerate() {
            if s.child.is_none() {
                continue;
            }
            let member_of_v = s
                .status
                .as_ref()
                .is_some_and(|st| st.is_member() && st.version == v.version);
            if !member_of_v {
                others += 1;
                continue;
            }
            let suspect = s
                .status
                .as_ref()
                .is_some_and(|st| suspected.contains(st.pid.as_str()));
            if s.is_live() && !suspect && !self.cut.contains(&i) && !victims.contains(&i) {
                healthy += 1;
            }
        }
        2 * healthy > v.members.len() + others
    }

    fn slot_of(&self, pid: &str) -> Option<usize> {
        let name = pid.split('#').next()?;
        self.c.slots.iter().position(|s| s.name == name)
    }

    fn pick_kind(&mut self) -> &'static str {
        let total: u32 = self.report.mix.values().sum();
        let mut x = self.rng.gen_range(0..total);
        for k in KINDS {
            let w = self.report.mix[k];
            if x < w {
                return k;
            }
            x -= w;
        }
        KINDS[0]
    }

    fn inject(&mut self, t0: Instant) {
        let kind = self.pick_kind();
        let now = Instant::now();
        let running: Vec<usize> = (0..self.c.slots.len())
            .filter(|&i| self.c.slots[i].is_live())
            .collect();
        if running.is_empty() {
            return;
        }
        if !matches!(kind, "loss" | "duplication" | "reordering" | "join") {
            // The majority guard below decides on fresh statuses, not on the last poll.
            for i in 0..self.c.slots.len() {
                let _ = self.c.poll_status(i);
            }
        }
        let mut skipped = false;
        match kind {
            "full_restart" | "total_outage"
                if self
                    .last_total
                    .is_some_and(|t| now.duration_since(t) < Duration::from_secs(15))
                    || !self.cut.is_empty() =>
            {
                skipped = true;
            }
            "full_restart" => {
                // Every running daemon SIGKILLed at once (a power cut), all restarted
                // from their state directories 0.2-2 s later: the group must come back
                // as the same view sequence (D23).
                self.last_total = Some(now);
                self.say(t0, || format!("full restart of {running:?}"));
                let d = Duration::from_millis(self.rng.gen_range(200..2_000));
                for &i in &running {
                    if self.c.slots[i].stopped {
                        self.c.cont(i);
                    }
                    self.c.kill(i);
                    self.undo.push((now + d, Undo::Restart(i)));
                }
                self.count(kind);
            }
            "total_outage" => {
                // Every datagram of every daemon dropped for 1-3 s (a switch reboot).
                self.last_total = Some(now);
                self.say(t0, || "total outage".into());
                let mut applied = false;
                for &i in &running {
                    applied |= self.c.fault(i, &["loss".into(), "1".into()]).is_ok();
                }
                if applied {
                    self.count(kind);
                }
                let d = Duration::from_millis(self.rng.gen_range(1_000..3_000));
                self.undo
                    .push((now + d, Undo::ClearLink(running.clone(), "loss")));
            }
            "sigkill" | "sigkill_mgr" => {
                let target = if kind == "sigkill_mgr" {
                    self.current_view()
                        .and_then(|v| v.members.first().and_then(|p| self.slot_of(p)))
                        .filter(|&i| self.c.slots[i].is_live())
                } else {
                    running.choose(&mut self.rng).copied()
                };
                if let Some(i) = target {
                    if self.majority_survives(&[i]) {
                        self.say(t0, || format!("{kind} {}", self.c.slots[i].name));
                        self.c.kill(i);
                        self.count(kind);
                        let d = Duration::from_millis(self.rng.gen_range(200..3_000));
                        self.undo.push((now + d, Undo::Restart(i)));
                    } else {
                        skipped = true;
                    }
                }
            }
            "sigstop" => {
                let i = *running.choose(&mut self.rng).unwrap_or(&running[0]);
                let ms = self.rng.gen_range(50..1_500);
                if self.majority_survives(&[i]) {
                    self.say(t0, || {
                        format!("sigstop {} for {ms} ms", self.c.slots[i].name)
                    });
                    self.c.stop(i);
                    self.count("sigstop");
                    self.undo
                        .push((now + Duration::from_millis(ms), Undo::Cont(i)));
                } else {
                    skipped = true;
                }
            }
            "loss" | "duplication" | "reordering" => {
                let mut nodes = running.clone();
                nodes.shuffle(&mut self.rng);
                let k = self.rng.gen_range(1..=nodes.len());
                nodes.truncate(k);
                let (args, what): (Vec<String>, &'static str) = match kind {
                    "loss" => {
                        // Up to 15 %: with 30 % on every node, a SIGKILLed mgr's
                        // successors miss a majority within the protocol timeout and
                        // the whole group excludes itself (seed 7, docs/VERIFICATION.md).
                        let p = self.rng.gen_range(0.01..0.15);
                        (vec!["loss".into(), format!("{p:.3}")], "loss")
                    }
                    "duplication" => {
                        let p = self.rng.gen_range(0.01..0.20);
                        (vec!["dup".into(), format!("{p:.3}")], "dup")
                    }
                    _ => {
                        let p = self.rng.gen_range(0.05..0.40);
                        let ms = self.rng.gen_range(1..=8);
                        (
                            vec!["reorder".into(), format!("{p:.3}"), ms.to_string()],
                            "reorder",
                        )
                    }
                };
                self.say(t0, || format!("{args:?} on {nodes:?}"));
                let mut applied = false;
                for &i in &nodes {
                    match self.c.fault(i, &args) {
                        Ok(_) => applied = true,
                        Err(e) => self.say(t0, || format!("fault refused by {i}: {e}")),
                    }
                }
                // Counted only if some node took it: the report says what was done.
                if applied {
                    self.count(kind);
                }
                let d = Duration::from_millis(self.rng.gen_range(1_000..5_000));
                self.undo.push((now + d, Undo::ClearLink(nodes, what)));
            }
            "partition" => {
                if !self.cut.is_empty() || running.len() < 3 {
                    skipped = true;
                } else {
                    let mut order = running.clone();
                    order.shuffle(&mut self.rng);
                    let small = self.rng.gen_range(1..=(running.len() - 1) / 2);
                    let minority: Vec<usize> = order[..small].to_vec();
                    if self.majority_survives(&minority) {
                        let all = 0..self.c.slots.len();
                        let majority: Vec<usize> = all.filter(|i| !minority.contains(i)).collect();
                        let names = |s: &[usize], c: &Cluster| -> Vec<String> {
                            s.iter().map(|&i| c.slots[i].name.clone()).collect()
                        };
                        self.say(t0, || {
                            format!(
                                "partition {:?} | {:?}",
                                names(&minority, &self.c),
                                names(&majority, &self.c)
                            )
                        });
                        let to_major = self.c.addr_list(&majority);
                        let to_minor = self.c.addr_list(&minority);
                        let mut applied = false;
                        for &i in &minority {
                            applied |= self
                                .c
                                .fault(i, &["partition".into(), to_major.clone()])
                                .is_ok();
                        }
                        for &i in majority.iter().filter(|&&i| self.c.slots[i].is_live()) {
                            applied |= self
                                .c
                                .fault(i, &["partition".into(), to_minor.clone()])
                                .is_ok();
                        }
                        self.heal_later(now, "partition", minority, applied);
                    } else {
                        skipped = true;
                    }
                }
            }
            "oneway_cut" => {
                if !self.cut.is_empty() || running.len() < 3 {
                    skipped = true;
                } else {
                    let mut order = running.clone();
                    order.shuffle(&mut self.rng);
                    let small = self.rng.gen_range(1..=(running.len() - 1) / 2);
                    let side: Vec<usize> = order[..small].to_vec();
                    // Outbound: `side` cannot send to the rest (it still hears them);
                    // inbound: the rest cannot send to `side` (it still talks to them).
                    let outbound = self.rng.gen_bool(0.5);
                    if self.majority_survives(&side) {
                        let rest: Vec<usize> = (0..self.c.slots.len())
                            .filter(|i| !side.contains(i))
                            .collect();
                        let (senders, to) = if outbound {
                            (side.clone(), self.c.addr_list(&rest))
                        } else {
                            (rest.clone(), self.c.addr_list(&side))
                        };
                        self.say(t0, || {
                            let names: Vec<&str> = side
                                .iter()
                                .map(|&i| self.c.slots[i].name.as_str())
                                .collect();
                            let dir = if outbound { "to" } else { "from" };
                            format!("oneway_cut {names:?} cannot send {dir} the rest")
                        });
                        let mut applied = false;
                        for &i in senders.iter().filter(|&&i| self.c.slots[i].is_live()) {
                            applied |= self.c.fault(i, &["cut".into(), to.clone()]).is_ok();
                        }
                        // Stopped senders are skipped (a control request would wait
                        // for them), as for partitions.
                        self.heal_later(now, "oneway_cut", side, applied);
                    } else {
                        skipped = true;
                    }
                }
            }
            _ => {
                // A spare that never ran joins.
                let fresh =
                    (self.cfg.nodes..self.c.slots.len()).find(|&i| self.c.slots[i].lives == 0);
                match fresh {
                    Some(i) => {
                        self.say(t0, || format!("join {}", self.c.slots[i].name));
                        match self.c.spawn(i) {
                            Ok(()) => self.count("join"),
                            Err(e) => self.violation(format!("cannot start sgmpd: {e}")),
                        }
                    }
                    None => skipped = true,
                }
            }
        }
        if skipped && kind != "join" && kind != "partition" && kind != "oneway_cut" {
            self.report.skipped_for_majority += 1;
        }
    }

    /// Polls until every slot in `live` is a member of one same view whose members
    /// are exactly their current processes. Returns that view.
    fn wait_converged(&mut self, live: &[usize], bound: Duration) -> Option<(u64, Vec<String>)> {
        let until = Instant::now() + bound;
        loop {
            if let Some(v) = self.converged(live) {
                return Some(v);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn converged(&mut self, live: &[usize]) -> Option<(u64, Vec<String>)> {
        let mut st = Vec::new();
        for &i in live {
            let s = self.c.poll_status(i)?;
            if !s.is_member() {
                return None;
            }
            st.push(s);
        }
        let first = st.first()?;
        if st
            .iter()
            .any(|s| s.version != first.version || s.members != first.members)
        {
            return None;
        }
        let mut want: Vec<&String> = st.iter().map(|s| &s.pid).collect();
        let mut got: Vec<&String> = first.members.iter().collect();
        want.sort();
        got.sort();
        (want == got).then(|| (first.version, first.members.clone()))
    }

    fn finish(mut self, t0: Instant) -> ChaosReport {
        if self.report.violations.is_empty() {
            // Heal: every fault off, every process resumed, most dead ones restarted.
            let heal_start = Instant::now();
            self.undo.clear();
            self.cut.clear();
            for i in 0..self.c.slots.len() {
                self.c.cont(i);
            }
            for i in 0..self.c.slots.len() {
                if self.c.slots[i].child.is_some() {
                    if let Err(e) = self.c.fault(i, &["clear".into()]) {
                        self.say(t0, || format!("clear refused by {i}: {e}"));
                    }
                } else if self.c.slots[i].lives > 0 && self.rng.gen_bool(0.7) {
                    match self.c.spawn(i) {
                        Ok(()) => self.count("restart"),
                        Err(e) => self.violation(format!("cannot restart sgmpd: {e}")),
                    }
                }
            }
            self.say(t0, || "heal phase".into());
            let live: Vec<usize> = (0..self.c.slots.len())
                .filter(|&i| self.c.slots[i].child.is_some())
                .collect();
            match self.wait_converged(&live, self.cfg.heal_bound()) {
                Some(v) => {
                    self.report.converged_after_ms = Some(heal_start.elapsed().as_millis() as u64);
                    self.report.final_view = Some(v);
                }
                None => {
                    let views: Vec<String> = live
                        .iter()
                        .map(|&i| format!("{}: {:?}", self.c.slots[i].name, self.c.slots[i].status))
                        .collect();
                    let tail = self.c.stderr_tail(5);
                    self.violation(format!(
                        "liveness: the live processes {:?} are not in one view {} s after the \
                         faults ended: {views:?}\n{tail}",
                        live.iter()
                            .map(|&i| self.c.slots[i].name.clone())
                            .collect::<Vec<_>>(),
                        self.cfg.heal_bound().as_secs()
                    ));
                }
            }
        }
        self.c.kill_all();
        // Safety over every log of every life.
        let mut logs = Vec::new();
        for p in self.c.logs() {
            match logcheck::read_if_any(&p) {
                Ok(l) => logs.push(l),
                Err(e) => self.violation(format!("event log: {e}")),
            }
        }
        let r = logcheck::check(&logs);
        self.report.views_installed = r.installed.values().map(|v| v.len() as u64).sum();
        self.report.max_version = r.last_view().map_or(0, |(v, _)| v);
        self.report.records = r.records as u64;
        for v in r.violations {
            self.report.violations.push(format!("safety: {v}"));
        }
        self.report.processes_started = self.c.spawned;
        self.report
    }
}
