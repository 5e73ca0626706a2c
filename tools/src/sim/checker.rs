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
//! - **minority**: during a partition, a process on a side that holds less than a
//!   majority of view v-1 never installs a version v > X+1, where X is the highest
//!   version installed anywhere when the partition began (X+1 may still be decided by
//!   acknowledgements that crossed before the cut).
//!
//! Liveness (GMP-4) is checked by the simulator itself at the end of the run.

use std::collections::BTreeMap;
use std::fmt;

use sgmp_membership::{ProcessId, Time};

/// One view installed by one process.
#[derive(Clone, Debug)]
pub struct Install {
    /// Step of the simulator.
    pub step: u64,
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
    /// Who believes.
    pub by: ProcessId,
    /// Whom.
    pub peer: ProcessId,
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
}

impl History {
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
            let first_step = h
                .installs
                .iter()
                .filter(|i| i.version == ver)
                .map(|i| i.step)
                .min()
                .unwrap_or(inst.step);
            let believed = h
                .suspicions
                .iter()
                .any(|s| s.peer == *p && s.step < first_step);
            if !believed {
                out.push(v(
                    "gmp1",
                    format!(
                        "{p} removed in version {ver} (first installed at step {first_step}) \
                         but nobody believed it faulty before"
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
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: &str) -> ProcessId {
        ProcessId::named(n, 1)
    }

    fn inst(step: u64, pid: &str, node: usize, version: u64, m: &[&str]) -> Install {
        Install {
            step,
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

    #[test]
    fn removed_process_must_not_move_on() {
        let mut h = History::default();
        h.installs.push(inst(1, "a", 0, 1, &["a", "b", "c"]));
        h.installs.push(inst(1, "c", 2, 1, &["a", "b", "c"]));
        h.suspicions.push(Suspicion {
            step: 1,
            by: p("a"),
            peer: p("c"),
        });
        h.installs.push(inst(2, "a", 0, 2, &["a", "b"]));
        h.installs.push(inst(3, "c", 2, 2, &["a", "b"]));
        let props: Vec<_> = check_safety(&h).into_iter().map(|v| v.property).collect();
        assert_eq!(props, ["self-inclusion", "finality"]);
    }
}
