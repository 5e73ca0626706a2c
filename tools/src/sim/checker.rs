//! The run's history and the Strong GMP checks run over it.
//!
//! Every install, suspicion, exclusion and partition is recorded with the *step* (a
//! global counter of simulator inputs) and the simulated time at which it happened.
//! [`check_safety`] then checks:
//! - **uniqueness** (GMP-2/3): all installs of a version have the same member list;
//! - **sequence**: each process installs contiguous versions;
//! - **self-inclusion**: a process is a member of every view it installs;
//! - **finality**: once a process is removed (it is in view v-1 and not in view v),
//!   it never installs version v or later, and no later view contains it again;
//! - **GMP-1**: a process removed in version v was believed faulty by someone (a
//!   `Suspected` event), or asked to leave, in a step *before* the first install of v;
//! - **GMP-1a** (per installer): a process p that installs version v removing q (q is
//!   in the view p installed before, not in v) had itself recorded `Suspected{q}`, or q
//!   had asked to leave, no later than the step of that install;
//! - **GMP-1b** (as far as the events allow): a process added in version v (in v, not
//!   in v-1) had asked to join in a step before the first install of v;
//! - **exclusion**: a process that was excluded (any [`ExcludeReason`], leave included)
//!   installs no view afterwards;
//! - **minority** (from connectivity, every kind of cut): the simulator records the set
//!   of blocked one-way links every time it changes ([`History::connectivity`]). Within
//!   one such epoch, let X be the highest version installed anywhere when it began. A
//!   process may install a version w > X+1 during the epoch only if a majority of the
//!   members of view w-1 can *reach* it: a directed path of unblocked links from each
//!   of their nodes to its node. (View w-1 did not exist when the epoch began, so every
//!   acknowledgement that decided w was sent during the epoch, under its blocks, and
//!   travelled from a member of w-1 to the initiator and then, as a commit, to the
//!   installer. X+1 may still be decided by acknowledgements that crossed before the
//!   cut.) This covers partitions, one-way blocks, one-way nodes, majorities rings and
//!   the liveness phase's isolation alike. Clogs, loss and pauses are not cuts: what
//!   they delay still arrives. The older per-partition form of the rule is kept.
//!
//! Liveness (GMP-4) is checked by the simulator itself at the end of the run.

use std::collections::BTreeMap;
use std::fmt;

use sgmp_membership::{ExcludeReason, ProcessId, Time};

/// One view installed by one process.
#[derive(Clone, Debug)]
pub struct Install {
    /// Step of the simulator.
    pub step: u64,
    /// The input (one node's step on one datagram, timer or command:
    /// [`History::inputs`] then) that caused it.
    pub input: u64,
    /// Simulated time.
    pub time: Time,
    /// The node it runs on.
    pub node: usize,
    /// The process.
    pub pid: ProcessId,
    /// The view's version.
    pub version: u64,
    /// The view's members, in rank order.
    pub members: Vec<ProcessId>,
}

/// A suspicion (an engine `Suspected` event), or a leave request.
#[derive(Clone, Copy, Debug)]
pub struct Suspicion {
    /// Step of the simulator.
    pub step: u64,
    /// The input that caused it (see [`Install::input`]; a leave request: the last
    /// input before the leave's).
    pub input: u64,
    /// Who believes.
    pub by: ProcessId,
    /// Whom.
    pub peer: ProcessId,
    /// The belief starts here: observed, a replacement or a leave request
    /// ([`sgmp_membership::SuspicionCause::is_root`]), not handed on from another
    /// process or marked by the believer's own commit.
    pub root: bool,
}

/// A partition of the network into sides (node indices).
#[derive(Clone, Debug)]
pub struct PartitionRecord {
    /// Step at which it began.
    pub start_step: u64,
    /// Step at which it healed (`u64::MAX` if never).
    pub end_step: u64,
    /// Node index to side number.
    pub side_of: Vec<usize>,
    /// Highest version installed anywhere when it began.
    pub base_version: u64,
}

/// The blocked one-way links from `step` on (until the next record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connectivity {
    /// Step at which this set of blocks took effect.
    pub step: u64,
    /// Highest version installed anywhere at that step.
    pub base_version: u64,
    /// Number of nodes (`blocked` is `nodes * nodes`).
    pub nodes: usize,
    /// `blocked[from * nodes + to]`: datagrams sent `from → to` are dropped.
    pub blocked: Vec<bool>,
}

impl Connectivity {
    /// True if no link is blocked.
    pub fn is_full(&self) -> bool {
        !self.blocked.iter().any(|b| *b)
    }

    /// The nodes with a directed path of unblocked links to `to` (`to` included).
    pub fn reaching(&self, to: usize) -> Vec<bool> {
        let n = self.nodes;
        let mut seen = vec![false; n.max(to + 1)];
        seen[to] = true;
        let mut stack = vec![to];
        while let Some(b) = stack.pop() {
            if b >= n {
                continue;
            }
            for (a, s) in seen.iter_mut().enumerate().take(n) {
                if !*s && !self.blocked[a * n + b] {
                    *s = true;
                    stack.push(a);
                }
            }
        }
        seen
    }
}

/// A process stopped being a member (an engine `Excluded` event).
#[derive(Clone, Copy, Debug)]
pub struct Exclusion {
    /// Step of the simulator.
    pub step: u64,
    /// The process.
    pub pid: ProcessId,
    /// Why.
    pub reason: ExcludeReason,
}

/// A process asked to join (the driver called `Engine::join`).
#[derive(Clone, Copy, Debug)]
pub struct JoinRequest {
    /// Step of the simulator.
    pub step: u64,
    /// The joining process.
    pub pid: ProcessId,
}

/// Everything the checks look at.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Views installed, in step order.
    pub installs: Vec<Install>,
    /// Suspicions and leave requests, in step order.
    pub suspicions: Vec<Suspicion>,
    /// Partitions, in order.
    pub partitions: Vec<PartitionRecord>,
    /// The node each process ran on.
    pub nodes: BTreeMap<ProcessId, usize>,
    /// Every change of the set of blocked links, in step order (see
    /// [`History::note_connectivity`]); before the first record nothing is blocked.
    pub connectivity: Vec<Connectivity>,
    /// Exclusions (leaves included), in step order.
    pub exclusions: Vec<Exclusion>,
    /// Join requests, in step order.
    pub joins: Vec<JoinRequest>,
    /// Inputs pumped into nodes so far: each datagram, timer or command a node takes
    /// is one, and every event its step records carries its number.
    pub inputs: u64,
    /// Versions a recovery from total failure decided (D23).
    pub recovered: std::collections::BTreeSet<u64>,
}

impl History {
    /// Records the blocked links of `nodes` nodes at `step` if they differ from the
    /// last record (`is_blocked(from, to)`). The simulator calls it after every action.
    pub fn note_connectivity(
        &mut self,
        step: u64,
        nodes: usize,
        is_blocked: impl Fn(usize, usize) -> bool,
    ) {
        let mut blocked = vec![false; nodes * nodes];
        for a in 0..nodes {
            for b in (0..nodes).filter(|&b| b != a) {
                blocked[a * nodes + b] = is_blocked(a, b);
            }
        }
        let same = match self.connectivity.last() {
            Some(c) => c.nodes == nodes && c.blocked == blocked,
            None => !blocked.iter().any(|b| *b),
        };
        if !same {
            let base_version = self.max_version();
            self.connectivity.push(Connectivity {
                step,
                base_version,
                nodes,
                blocked,
            });
        }
    }

    /// Highest version installed so far.
    pub fn max_version(&self) -> u64 {
        self.installs.iter().map(|i| i.version).max().unwrap_or(0)
    }

    /// The member list of version `v`, from its first install.
    pub fn view(&self, v: u64) -> Option<&[ProcessId]> {
        self.installs
            .iter()
            .find(|i| i.version == v)
            .map(|i| i.members.as_slice())
    }

    /// Versions installed by `pid`, in order.
    pub fn versions_of(&self, pid: ProcessId) -> Vec<u64> {
        self.installs
            .iter()
            .filter(|i| i.pid == pid)
            .map(|i| i.version)
            .collect()
    }
}

/// A violated property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which property (`uniqueness`, `sequence`, `self-inclusion`, `finality`, `gmp1`,
    /// `minority`, `liveness`, `engine`).
    pub property: &'static str,
    /// What happened.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property, self.detail)
    }
}

fn v(property: &'static str, detail: String) -> Violation {
    Violation { property, detail }
}

fn names(m: &[ProcessId]) -> String {
    let s: Vec<String> = m.iter().map(|p| p.to_string()).collect();
    format!("[{}]", s.join(" "))
}

/// Runs every safety check over `h`; returns the violations found (empty if none).
pub fn check_safety(h: &History) -> Vec<Violation> {
    let mut out = Vec::new();
    // Uniqueness: one member list per version.
    let mut by_version: BTreeMap<u64, &Install> = BTreeMap::new();
    for i in &h.installs {
        match by_version.get(&i.version) {
            Some(first) if first.members != i.members => out.push(v(
                "uniqueness",
                format!(
                    "version {}: {} installed {} at t={}us but {} installed {} at t={}us",
                    i.version,
                    first.pid,
                    names(&first.members),
                    first.time.0,
                    i.pid,
                    names(&i.members),
                    i.time.0
                ),
            )),
            Some(_) => {}
            None => {
                by_version.insert(i.version, i);
            }
        }
    }
    // Sequence and self-inclusion.
    let mut last: BTreeMap<ProcessId, u64> = BTreeMap::new();
    for i in &h.installs {
        if let Some(&l) = last.get(&i.pid) {
            if i.version != l + 1 {
                out.push(v(
                    "sequence",
                    format!(
                        "{} went from version {l} to {} at t={}us",
                        i.pid, i.version, i.time.0
                    ),
                ));
            }
        }
        last.insert(i.pid, i.version);
        if !i.members.contains(&i.pid) {
            out.push(v(
                "self-inclusion",
                format!(
                    "{} installed version {} = {} without itself",
                    i.pid,
                    i.version,
                    names(&i.members)
                ),
            ));
        }
    }
    // Finality and GMP-1, over consecutive known views.
    let mut removed_at: BTreeMap<ProcessId, u64> = BTreeMap::new();
    for (&ver, inst) in &by_version {
        let Some(prev) = by_version.get(&(ver.wrapping_sub(1))) else {
            continue;
        };
        for p in prev.members.iter().filter(|p| !inst.members.contains(p)) {
            removed_at.entry(*p).or_insert(ver);
            let first = h
                .installs
                .iter()
                .filter(|i| i.version == ver)
                .min_by_key(|i| i.step)
                .unwrap_or(inst);
            // An S-GMP view: believed at the root (observed, replaced, a leave
            // request) in an input before the one that first installed it. Beliefs
            // handed on do not count: every member adopts the removals of the
            // submission it acknowledges and the initiator those of its own proposal,
            // and the commit marks every member it removes faulty just before the
            // install, so they would pass whatever the initiator proposed. A recovered
            // view: its leader forms the belief as it decides
            // (`take_removed_by_decision`), in the deciding input, before anything is
            // installed.
            let believed = if h.recovered.contains(&ver) {
                h.suspicions
                    .iter()
                    .any(|s| s.peer == *p && s.root && s.step < first.step)
            } else {
                h.suspicions
                    .iter()
                    .any(|s| s.peer == *p && s.root && s.input < first.input)
            };
            if !believed {
                out.push(v(
                    "gmp1",
                    format!(
                        "{p} removed in version {ver} (first installed at step {}, input {}) \
                         but nobody believed it faulty before (observed, replaced or \
                         leaving: a belief handed on does not count)",
                        first.step, first.input
                    ),
                ));
            }
        }
    }
    for i in &h.installs {
        if let Some(&r) = removed_at.get(&i.pid) {
            if i.version >= r {
                out.push(v(
                    "finality",
                    format!(
                        "{} was removed in version {r} but installed version {} at t={}us",
                        i.pid, i.version, i.time.0
                    ),
                ));
            }
        }
        for m in &i.members {
            if removed_at.get(m).is_some_and(|&r| i.version > r) {
                out.push(v(
                    "finality",
                    format!(
                        "{m} was removed in version {} but is a member of version {}",
                        removed_at[m], i.version
                    ),
                ));
            }
        }
    }
    // A minority never moves on.
    for p in &h.partitions {
        for i in h
            .installs
            .iter()
            .filter(|i| i.step >= p.start_step && i.step < p.end_step)
        {
            if i.version <= p.base_version + 1 {
                continue;
            }
            let Some(prev) = by_version.get(&(i.version - 1)) else {
                continue;
            };
            let side = p.side_of.get(i.node).copied().unwrap_or(usize::MAX);
            let on_side = prev
                .members
                .iter()
                .filter(|m| {
                    h.nodes
                        .get(*m)
                        .is_some_and(|&n| p.side_of.get(n).copied() == Some(side))
                })
                .count();
            let majority = prev.members.len() / 2 + 1;
            if on_side < majority {
                out.push(v(
                    "minority",
                    format!(
                        "{} installed version {} during a partition (began at version {}) \
                         on a side holding {on_side} of the {} members of version {}",
                        i.pid,
                        i.version,
                        p.base_version,
                        prev.members.len(),
                        i.version - 1
                    ),
                ));
            }
        }
    }
    check_gmp1a(h, &mut out);
    check_gmp1b(h, &by_version, &mut out);
    check_exclusions(h, &mut out);
    check_minority_connectivity(h, &by_version, &mut out);
    out.dedup();
    out
}

/// GMP-1a: the installer itself believed each process it removes faulty (or that
/// process asked to leave) no later than the install.
fn check_gmp1a(h: &History, out: &mut Vec<Violation>) {
    let mut prev: BTreeMap<ProcessId, &Install> = BTreeMap::new();
    for i in &h.installs {
        if let Some(before) = prev.get(&i.pid) {
            for q in before
                .members
                .iter()
                .filter(|q| **q != i.pid && !i.members.contains(q))
            {
                let believed = h
                    .suspicions
                    .iter()
                    .any(|s| s.step <= i.step && s.peer == *q && (s.by == i.pid || s.by == *q));
                if !believed {
                    out.push(v(
                        "gmp1a",
                        format!(
                            "{} installed version {} without {q} at step {} but had not \
                             believed it faulty (and {q} had not asked to leave)",
                            i.pid, i.version, i.step
                        ),
                    ));
                }
            }
        }
        prev.insert(i.pid, i);
    }
}

/// GMP-1b, as far as the events allow: a process added in version v asked to join
/// before v was first installed.
fn check_gmp1b(h: &History, by_version: &BTreeMap<u64, &Install>, out: &mut Vec<Violation>) {
    for (&ver, inst) in by_version {
        let Some(prev) = by_version.get(&(ver.wrapping_sub(1))) else {
            continue;
        };
        let first_step = h
            .installs
            .iter()
            .filter(|i| i.version == ver)
            .map(|i| i.step)
            .min()
            .unwrap_or(inst.step);
        for q in inst.members.iter().filter(|q| !prev.members.contains(q)) {
            if !h.joins.iter().any(|j| j.pid == *q && j.step < first_step) {
                out.push(v(
                    "gmp1b",
                    format!(
                        "{q} added in version {ver} (first installed at step {first_step}) \
                         but it had not asked to join before"
                    ),
                ));
            }
        }
    }
}

/// An excluded process (leave included) installs no view afterwards.
fn check_exclusions(h: &History, out: &mut Vec<Violation>) {
    for e in &h.exclusions {
        if let Some(i) = h
            .installs
            .iter()
            .find(|i| i.pid == e.pid && i.step > e.step)
        {
            out.push(v(
                "exclusion",
                format!(
                    "{} was excluded ({:?}) at step {} but installed version {} at step {}",
                    e.pid, e.reason, e.step, i.version, i.step
                ),
            ));
        }
    }
}

/// A minority never moves on, decided from the recorded connectivity (module docs).
fn check_minority_connectivity(
    h: &History,
    by_version: &BTreeMap<u64, &Install>,
    out: &mut Vec<Violation>,
) {
    for (k, c) in h.connectivity.iter().enumerate() {
        if c.is_full() {
            continue;
        }
        let end = h.connectivity.get(k + 1).map_or(u64::MAX, |n| n.step);
        let mut reach: BTreeMap<usize, Vec<bool>> = BTreeMap::new();
        for i in h
            .installs
            .iter()
            .filter(|i| i.step >= c.step && i.step < end && i.version > c.base_version + 1)
        {
            let Some(prev) = by_version.get(&(i.version - 1)) else {
                continue;
            };
            let r = reach.entry(i.node).or_insert_with(|| c.reaching(i.node));
            let reaching = prev
                .members
                .iter()
                .filter(|m| {
                    // A process whose node is unknown is counted (no false alarm).
                    h.nodes.get(*m).is_none_or(|&n| n >= r.len() || r[n])
                })
                .count();
            let majority = prev.members.len() / 2 + 1;
            if reaching < majority {
                out.push(v(
                    "minority",
                    format!(
                        "{} installed version {} at step {} while only {reaching} of the {} \
                         members of version {} could reach it (blocks since step {}, at \
                         version {})",
                        i.pid,
                        i.version,
                        i.step,
                        prev.members.len(),
                        i.version - 1,
                        c.step,
                        c.base_version
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: &str) -> ProcessId {
        ProcessId::named(n, 1)
    }

    /// An install at `step`, in an input of its own (numbered as the step).
    fn inst(step: u64, pid: &str, node: usize, version: u64, m: &[&str]) -> Install {
        Install {
            step,
            input: step,
            time: Time(step),
            node,
            pid: p(pid),
            version,
            members: m.iter().map(|x| p(x)).collect(),
        }
    }

    #[test]
    fn detects_two_views_for_one_version_and_gaps() {
        let mut h = History::default();
        h.installs.push(inst(1, "a", 0, 1, &["a", "b", "c"]));
        h.installs.push(inst(1, "b", 1, 1, &["a", "b", "c"]));
        h.installs.push(inst(2, "a", 0, 2, &["a", "b"]));
        h.installs.push(inst(3, "b", 1, 2, &["a", "b", "c"]));
        h.installs.push(inst(4, "b", 1, 4, &["a", "b", "c"]));
        let props: Vec<_> = check_safety(&h).into_iter().map(|v| v.property).collect();
        assert!(props.contains(&"uniqueness"), "{props:?}");
        assert!(props.contains(&"sequence"), "{props:?}");
        assert!(props.contains(&"gmp1"), "{props:?}");
    }

    fn susp(step: u64, by: &str, peer: &str) -> Suspicion {
        Suspicion {
            step,
            input: step,
            by: p(by),
            peer: p(peer),
            root: true,
        }
    }

    fn props(h: &History) -> Vec<&'static str> {
        check_safety(h).into_iter().map(|v| v.property).collect()
    }

    /// Five founders a..e on nodes 0..4, all at version 1.
    fn five() -> History {
        let mut h = History::default();
        let all = ["a", "b", "c", "d", "e"];
        for (n, x) in all.iter().enumerate() {
            h.nodes.insert(p(x), n);
            h.installs.push(inst(1, x, n, 1, &all));
        }
        h
    }

    #[test]
    fn gmp1a_the_installer_itself_must_believe_the_removed_faulty() {
        // a suspects e and commits -e; b installs it without ever suspecting e. GMP-1
        // (someone believed e faulty before) holds; GMP-1a at b does not.
        let mut h = five();
        h.suspicions.push(susp(2, "a", "e"));
        h.installs.push(inst(3, "a", 0, 2, &["a", "b", "c", "d"]));
        h.suspicions.push(susp(4, "c", "e"));
        h.suspicions.push(susp(4, "d", "e"));
        h.installs.push(inst(4, "c", 2, 2, &["a", "b", "c", "d"]));
        h.installs.push(inst(4, "d", 3, 2, &["a", "b", "c", "d"]));
        assert!(props(&h).is_empty(), "{:?}", check_safety(&h));
        h.installs.push(inst(5, "b", 1, 2, &["a", "b", "c", "d"]));
        assert_eq!(props(&h), ["gmp1a"], "{:?}", check_safety(&h));
        // A leave request of e's own excuses b.
        h.suspicions.insert(0, susp(1, "e", "e"));
        assert!(props(&h).is_empty(), "{:?}", check_safety(&h));
    }

    /// The engine marks each member its commit removes faulty just before installing,
    /// and every member adopts the removals it acknowledges: such beliefs are handed
    /// on, not a reason to remove. An initiator that removed e with only those fails
    /// GMP-1; a root belief (observed) in an earlier input passes, not one in the
    /// installing input; a recovered view's leader forms its belief as it decides, in
    /// the deciding input, and passes.
    #[test]
    fn gmp1_needs_a_root_belief_before_the_installing_input() {
        let mut h = five();
        // b adopted -e from a's submission; a's commit marked e (one input with its
        // install).
        h.suspicions.push(Suspicion {
            root: false,
            ..susp(1, "b", "e")
        });
        h.suspicions.push(Suspicion {
            input: 3,
            ..susp(2, "a", "e")
        });
        h.installs.push(inst(3, "a", 0, 2, &["a", "b", "c", "d"]));
        assert_eq!(props(&h), ["gmp1"], "{:?}", check_safety(&h));
        // The same version recovered: the leader's decision input counts.
        h.recovered.insert(2);
        assert!(props(&h).is_empty(), "{:?}", check_safety(&h));
        // Not recovered, but a observed e in an input before.
        h.recovered.clear();
        h.suspicions.insert(0, susp(0, "a", "e"));
        assert!(props(&h).is_empty(), "{:?}", check_safety(&h));
    }

    #[test]
    fn gmp1b_an_added_process_must_have_asked_to_join() {
        let mut h = five();
        h.nodes.insert(p("f"), 5);
        h.installs
            .push(inst(3, "a", 0, 2, &["a", "b", "c", "d", "e", "f"]));
        h.installs
            .push(inst(3, "f", 5, 2, &["a", "b", "c", "d", "e", "f"]));
        assert_eq!(props(&h), ["gmp1b"]);
        h.joins.push(JoinRequest {
            step: 2,
            pid: p("f"),
        });
        assert!(props(&h).is_empty(), "{:?}", check_safety(&h));
    }

    #[test]
    fn an_excluded_process_installs_nothing_more() {
        let mut h = five();
        h.exclusions.push(Exclusion {
            step: 2,
            pid: p("e"),
            reason: ExcludeReason::NoMajority,
        });
        h.suspicions.push(susp(2, "e", "d"));
        h.installs.push(inst(3, "e", 4, 2, &["a", "b", "c", "e"]));
        assert_eq!(props(&h), ["exclusion"], "{:?}", check_safety(&h));
    }

    /// `a` (node 0) cannot hear anyone: every link into node 0 is blocked.
    fn deaf_a(h: &mut History, step: u64) {
        h.note_connectivity(step, 5, |_, to| to == 0);
    }

    /// Versions 2 (-e) and 3 (-d) by the majority, with the suspicions.
    fn two_removals(h: &mut History, by: &str, node: usize, step: u64) {
        h.suspicions.push(susp(step - 1, by, "e"));
        h.suspicions.push(susp(step - 1, by, "d"));
        h.installs
            .push(inst(step, by, node, 2, &["a", "b", "c", "d"]));
        h.installs
            .push(inst(step + 1, by, node, 3, &["a", "b", "c"]));
    }

    #[test]
    fn minority_rule_covers_one_way_cuts() {
        // Node 0 hears nobody from step 2 on; base version 1, so it may still install
        // version 2 but not version 3: only itself reaches it.
        let mut h = five();
        deaf_a(&mut h, 2);
        assert_eq!(h.connectivity.len(), 1);
        two_removals(&mut h, "a", 0, 3);
        assert_eq!(props(&h), ["minority"], "{:?}", check_safety(&h));
        // The same installs at b, whom everyone reaches: fine.
        let mut h = five();
        deaf_a(&mut h, 2);
        two_removals(&mut h, "b", 1, 3);
        assert!(props(&h).is_empty(), "{:?}", check_safety(&h));
        // And fine at a once the cut is healed before.
        let mut h = five();
        deaf_a(&mut h, 2);
        h.note_connectivity(3, 5, |_, _| false);
        assert_eq!(h.connectivity.len(), 2);
        two_removals(&mut h, "a", 0, 4);
        assert!(props(&h).is_empty(), "{:?}", check_safety(&h));
    }

    #[test]
    fn minority_rule_uses_paths_not_sides() {
        // A majorities ring 0-1-2-3-4-0 where each node hears only its neighbours: a
        // majority of {a..e} reaches every node through relays, so moving on is
        // allowed; cutting the ring into a chain 1 -> 0 only (a hears just b) is not.
        let ring = |a: usize, b: usize| {
            let d = a.abs_diff(b);
            d.min(5 - d) > 1
        };
        let mut h = five();
        h.note_connectivity(2, 5, ring);
        two_removals(&mut h, "a", 0, 3);
        assert!(props(&h).is_empty(), "{:?}", check_safety(&h));
        // Node 0 hears only node 1, and node 1 hears nobody but node 0.
        let mut h = five();
        h.note_connectivity(2, 5, |from, to| match to {
            0 => from != 1,
            1 => from != 0,
            _ => false,
        });
        two_removals(&mut h, "a", 0, 3);
        assert_eq!(props(&h), ["minority"], "{:?}", check_safety(&h));
    }

    #[test]
    fn removed_process_must_not_move_on() {
        let mut h = History::default();
        h.installs.push(inst(1, "a", 0, 1, &["a", "b", "c"]));
        h.installs.push(inst(1, "c", 2, 1, &["a", "b", "c"]));
        h.suspicions.push(Suspicion {
            step: 1,
            input: 1,
            by: p("a"),
            peer: p("c"),
            root: true,
        });
        h.installs.push(inst(2, "a", 0, 2, &["a", "b"]));
        h.installs.push(inst(3, "c", 2, 2, &["a", "b"]));
        let props: Vec<_> = check_safety(&h).into_iter().map(|v| v.property).collect();
        assert_eq!(props, ["self-inclusion", "finality"]);
    }
}
