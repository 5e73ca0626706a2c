//! The scheduled actions: [`Sim::apply`] hands each [`Action`] to a method of its own.
//!
//! Every method returns whether the action took effect; [`Sim::apply`] counts the
//! action's fault kind ([`Action::kind_name`]) only then. An action whose target does
//! not exist, is down or is paused does nothing.

use sgmp_membership::msg::MsgKind;
use sgmp_membership::Status;

use super::checker::{self, PartitionRecord};
use super::net::LinkFaults;
use super::node::{addr_of, CrashTrigger};
use super::schedule::{Action, Target};
use super::Sim;

impl Sim {
    /// Runs one scheduled action (traced), and counts its kind if it took effect.
    pub(super) fn apply(&mut self, a: Action) {
        let kind = a.kind_name();
        self.trace.line(self.now, || format!("ACTION {a:?}"));
        let done = match a {
            Action::Crash(t) => self.act_crash(t),
            Action::CrashDuring {
                target,
                kind,
                after,
            } => self.act_crash_during(target, kind, after),
            Action::Suspect { by, peer } => self.act_suspect(by, peer),
            Action::ConcurrentReconfig { k } => self.act_concurrent_reconfig(k),
            Action::Partition(sides) => self.act_partition(&sides),
            Action::Block { from, to } => self.act_block(from, to),
            Action::Heal => self.act_heal(),
            Action::MajoritiesRing { seed } => self.act_majorities_ring(seed),
            Action::Clog { node, delay_us } => self.act_clog(node, delay_us),
            Action::Unclog(node) => self.act_unclog(node),
            Action::Pause { target, us } => self.act_pause(target, us),
            Action::LivenessCore { seed, isolate } => self.liveness_core(seed, isolate),
            Action::SetLinks(f) => self.act_set_links(f),
            Action::SetLink { from, to, faults } => self.act_set_link(from, to, faults),
            Action::Rejoin(i) => self.rejoin(i),
            Action::RejoinAny => self.act_rejoin_any(),
            Action::Join(i) => self.act_join(i),
            Action::Leave(t) => self.act_leave(t),
            Action::TotalOutage => self.act_total_outage(),
            Action::CrashAll => self.act_crash_all(),
            Action::RestartAll => self.act_restart_all(),
            Action::DiskLoss(i) => self.act_disk_loss(i),
            Action::EndFaults => self.act_end_faults(),
        };
        if done {
            self.count(kind);
        }
        // Checker hook (issue 17): the blocked links after every action, for the
        // minority rule decided from connectivity.
        let net = &self.net;
        self.history
            .note_connectivity(self.step, self.nodes.len(), |a, b| {
                net.is_blocked(addr_of(a), addr_of(b))
            });
    }

    /// [`Action::Crash`]: the target, if up, crashes now.
    fn act_crash(&mut self, t: Target) -> bool {
        match self.resolve(t).filter(|&i| self.nodes[i].up) {
            Some(i) => {
                self.crash(i);
                true
            }
            None => false,
        }
    }

    /// [`Action::CrashDuring`]: arms the target's crash trigger.
    fn act_crash_during(&mut self, target: Target, kind: Option<MsgKind>, after: u32) -> bool {
        match self.resolve(target).filter(|&i| self.nodes[i].up) {
            Some(i) => {
                self.nodes[i].crash = Some(CrashTrigger {
                    kind,
                    after,
                    armed: false,
                });
                true
            }
            None => false,
        }
    }

    /// [`Action::Suspect`]: `by` (up, not paused) suspects `peer` (another node).
    fn act_suspect(&mut self, by: Target, peer: Target) -> bool {
        match (self.resolve(by), self.resolve(peer)) {
            (Some(b), Some(p)) if b != p && self.nodes[b].up && !self.is_paused(b) => {
                let pid = self.nodes[p].pid();
                self.ctx_pump(b, |n, c| n.suspect(c, pid));
                true
            }
            _ => false,
        }
    }

    /// [`Action::ConcurrentReconfig`]: the mgr crashes; its `k` most senior live members
    /// each suspect it and the seniors before them.
    fn act_concurrent_reconfig(&mut self, k: usize) -> bool {
        let Some(m) = self.current_mgr() else {
            return false;
        };
        let mgr = self.nodes[m].pid();
        let seniors: Vec<usize> = self.nodes[m]
            .engine()
            .view()
            .members
            .iter()
            .filter_map(|x| self.node_running(x.id))
            .filter(|&j| j != m && self.nodes[j].is_live_member() && !self.is_paused(j))
            .take(k)
            .collect();
        self.crash(m);
        for (j, &s) in seniors.iter().enumerate() {
            let mut peers = vec![mgr];
            peers.extend(seniors[..j].iter().map(|&o| self.nodes[o].pid()));
            self.ctx_pump(s, |n, c| {
                for p in peers {
                    n.suspect(c, p);
                }
            });
        }
        true
    }

    /// [`Action::Partition`]: cuts every link between different sides (nodes not listed
    /// form one more side) and records the partition.
    fn act_partition(&mut self, sides: &[Vec<usize>]) -> bool {
        self.close_partition();
        let n = self.nodes.len();
        let mut side_of = vec![sides.len(); n];
        for (k, s) in sides.iter().enumerate() {
            for &i in s.iter().filter(|&&i| i < n) {
                side_of[i] = k;
            }
        }
        for i in 0..n {
            for j in 0..n {
                if side_of[i] != side_of[j] {
                    self.net.block(addr_of(i), addr_of(j));
                }
            }
        }
        self.open_partition_record(side_of);
        true
    }

    /// Records a partition that starts now, with node `i` on side `side_of[i]`; it stays
    /// open until [`Sim::close_partition`].
    fn open_partition_record(&mut self, side_of: Vec<usize>) {
        self.history.partitions.push(PartitionRecord {
            start_step: self.step,
            end_step: u64::MAX,
            side_of,
            base_version: self.history.max_version(),
        });
        self.open_partition = Some(self.history.partitions.len() - 1);
    }

    /// [`Action::Block`]: one one-way block.
    fn act_block(&mut self, from: usize, to: usize) -> bool {
        self.net.block(addr_of(from), addr_of(to));
        true
    }

    /// [`Action::Heal`]: every partition and block ends.
    fn act_heal(&mut self) -> bool {
        self.close_partition();
        self.net.heal_all();
        true
    }

    /// [`Action::MajoritiesRing`]: each started node stays connected to its `k` nearest
    /// neighbours on both sides of a ring drawn from `seed` (nothing with fewer than 4).
    fn act_majorities_ring(&mut self, seed: u64) -> bool {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        self.close_partition();
        let mut ring: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].started)
            .collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        ring.shuffle(&mut rng);
        let n = ring.len();
        // Each sees itself and k neighbours on each side: 2k + 1 > n / 2.
        let k = (n / 2).div_ceil(2);
        if n < 4 || 2 * k + 1 >= n {
            return false;
        }
        for a in 0..n {
            for b in 0..n {
                let d = a.abs_diff(b);
                if a != b && d.min(n - d) > k {
                    self.net.block(addr_of(ring[a]), addr_of(ring[b]));
                }
            }
        }
        let names: Vec<String> = ring.iter().map(|i| format!("n{i}")).collect();
        self.trace
            .line(self.now, || format!("RING {} (k = {k})", names.join(" ")));
        true
    }

    /// [`Action::Clog`]: every link to and from `node` gets `delay_us` more delay.
    fn act_clog(&mut self, node: usize, delay_us: u64) -> bool {
        let f = LinkFaults {
            delay_us: self.net.default_faults().delay_us + delay_us,
            ..self.net.default_faults()
        };
        for j in (0..self.nodes.len()).filter(|&j| j != node) {
            self.net.set_link(addr_of(node), addr_of(j), f);
            self.net.set_link(addr_of(j), addr_of(node), f);
        }
        true
    }

    /// [`Action::Unclog`]: `node`'s links back to the default faults (not counted).
    fn act_unclog(&mut self, node: usize) -> bool {
        for j in (0..self.nodes.len()).filter(|&j| j != node) {
            self.net.unset_link(addr_of(node), addr_of(j));
            self.net.unset_link(addr_of(j), addr_of(node));
        }
        false
    }

    /// [`Action::Pause`]: the target (up, not paused yet) stops for `us`.
    fn act_pause(&mut self, target: Target, us: u64) -> bool {
        let now = self.now;
        match self
            .resolve(target)
            .filter(|&i| self.nodes[i].up && !self.is_paused(i))
        {
            Some(i) => {
                let pid = self.nodes[i].pid();
                self.trace.line(now, || format!("PAUSE {pid} for {us}us"));
                self.nodes[i].paused_until = Some(now + us);
                true
            }
            None => false,
        }
    }

    /// [`Action::SetLinks`]: the default faults of every link; counts each kind of fault
    /// turned on (the action itself is not counted).
    fn act_set_links(&mut self, f: LinkFaults) -> bool {
        self.net.set_default(f);
        for (name, on) in [
            ("loss", f.loss > 0.0),
            ("duplication", f.duplicate > 0.0),
            ("reordering", f.reorder > 0.0 && f.reorder_delay_us > 0),
            ("delay", f.delay_us > 0 || f.jitter_us > 0),
        ] {
            if on {
                self.count(name);
            }
        }
        false
    }

    /// [`Action::SetLink`]: the faults of one one-way link.
    fn act_set_link(&mut self, from: usize, to: usize, faults: LinkFaults) -> bool {
        self.net.set_link(addr_of(from), addr_of(to), faults);
        true
    }

    /// [`Action::Rejoin`]: node `i` (started, not joining) restarts as incarnation + 1 and
    /// joins; a live member is crashed first.
    pub(super) fn rejoin(&mut self, i: usize) -> bool {
        if i >= self.nodes.len() || !self.nodes[i].started {
            return false;
        }
        if self.nodes[i].up && self.nodes[i].engine().status() == Status::Joining {
            return false;
        }
        if self.nodes[i].up {
            self.crash(i);
        }
        let inc = self.nodes[i].pid().incarnation + 1;
        self.start_joiner(i, inc)
    }

    /// [`Action::RejoinAny`]: [`Sim::rejoin`] of the first started node that is down or
    /// excluded.
    fn act_rejoin_any(&mut self) -> bool {
        let pick = (0..self.nodes.len()).find(|&i| {
            let n = &self.nodes[i];
            n.started && (!n.up || matches!(n.engine().status(), Status::Excluded(_)))
        });
        match pick {
            Some(i) => self.rejoin(i),
            None => false,
        }
    }

    /// [`Action::Join`]: node `i`, which never ran, starts and joins.
    fn act_join(&mut self, i: usize) -> bool {
        i < self.nodes.len() && !self.nodes[i].started && self.start_joiner(i, 1)
    }

    /// [`Action::Leave`]: the target (a live member, not paused) leaves gracefully.
    fn act_leave(&mut self, t: Target) -> bool {
        match self
            .resolve(t)
            .filter(|&i| self.nodes[i].is_live_member() && !self.is_paused(i))
        {
            Some(i) => {
                let pid = self.nodes[i].pid();
                self.asked_to_leave[i] = true;
                // A leave request is the process's own statement that it goes.
                self.history.suspicions.push(checker::Suspicion {
                    step: self.step,
                    input: self.history.inputs,
                    by: pid,
                    peer: pid,
                    root: true,
                });
                self.ctx_pump(i, |n, c| n.leave(c));
                true
            }
            None => false,
        }
    }

    /// [`Action::TotalOutage`]: every link down; every node is a side of its own.
    fn act_total_outage(&mut self) -> bool {
        self.close_partition();
        let n = self.nodes.len();
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    self.net.block(addr_of(i), addr_of(j));
                }
            }
        }
        // Everyone is a minority of one.
        self.open_partition_record((0..n).collect());
        true
    }

    /// [`Action::CrashAll`]: every node that is up crashes (counted if there was one).
    fn act_crash_all(&mut self) -> bool {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up)
            .collect();
        for &i in &up {
            self.crash(i);
        }
        !up.is_empty()
    }

    /// [`Action::RestartAll`]: every started node that is down restarts from its disk as
    /// incarnation + 1 (counted if there was one).
    fn act_restart_all(&mut self) -> bool {
        let down: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].started && !self.nodes[i].up)
            .collect();
        for &i in &down {
            let inc = self.nodes[i].pid().incarnation + 1;
            self.start_joiner(i, inc);
        }
        !down.is_empty()
    }

    /// [`Action::DiskLoss`]: started node `i` crashes (if up), loses its disk and restarts
    /// with none.
    fn act_disk_loss(&mut self, i: usize) -> bool {
        if i >= self.nodes.len() || !self.nodes[i].started {
            return false;
        }
        if self.nodes[i].up {
            self.crash(i);
        }
        self.disks[i].wipe();
        self.disk_ok[i] = false;
        let inc = self.nodes[i].pid().incarnation + 1;
        self.start_joiner(i, inc)
    }

    /// [`Action::EndFaults`]: heals everything, turns loss off, disarms crash triggers,
    /// resumes paused nodes and marks the end of the fault phase (not counted).
    fn act_end_faults(&mut self) -> bool {
        self.close_partition();
        self.net.heal_all();
        self.net.clear_links();
        let d = LinkFaults {
            loss: 0.0,
            ..self.net.default_faults()
        };
        self.net.set_default(d);
        for n in &mut self.nodes {
            n.crash = None;
        }
        for i in 0..self.nodes.len() {
            self.resume(i);
        }
        self.faults_end = Some(self.now);
        false
    }

    /// [`Action::LivenessCore`]: chooses the majority core of the liveness phase: a
    /// random majority of the most advanced view among its live members. With `isolate`, the live nodes
    /// outside the core are cut off for good (each with probability 1/2); they are then
    /// left out of the liveness check, and the core must remove them.
    fn liveness_core(&mut self, seed: u64, isolate: bool) -> bool {
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // The names of the highest view installed, whatever the engines did since: a
        // process running under the name with its durable state counts (D23).
        let view = self.last_view();
        if view.is_empty() {
            return false;
        }
        let mut live = self.nodes_with_state(&view);
        let need = view.len() / 2 + 1;
        if live.len() < need {
            return false;
        }
        live.shuffle(&mut rng);
        let core_len = rng.gen_range(need..=live.len());
        let core: Vec<usize> = live[..core_len].to_vec();
        if isolate {
            let others: Vec<usize> = (0..self.nodes.len())
                .filter(|&j| self.nodes[j].up && !core.contains(&j))
                .collect();
            for j in others {
                if rng.gen_bool(0.5) {
                    self.isolated.insert(j);
                    for o in (0..self.nodes.len()).filter(|&o| o != j) {
                        self.net.block(addr_of(j), addr_of(o));
                        self.net.block(addr_of(o), addr_of(j));
                    }
                    let pid = self.nodes[j].pid();
                    self.trace
                        .line(self.now, || format!("ISOLATE {pid} for good"));
                    self.count("liveness_isolated");
                }
            }
        }
        true
    }
}
