//! Checks `sgmpd` event logs (JSON lines, `membership::node::eventlog`) for the Strong
//! GMP properties:
//!
//! - **one view per version**: every process that installed version x installed the
//!   same members (GMP-2/3);
//! - **contiguous versions**: each process installs versions x, x+1, x+2, ... with no
//!   gap and no repeat (GMP-3);
//! - **self-inclusion**: a process installs only views that contain it;
//! - **no return**: a process removed from view x (a member of an earlier view, absent
//!   from x) installs no view of version x or later, and a process that logged
//!   `excluded` or `left` installs no view afterwards (an excluded process may only
//!   come back as a new incarnation, i.e. a different PID);
//! - **GMP-1**: a member that version x removes was believed faulty at the root
//!   before the first install of x anywhere (by the records' times, see below): a
//!   `suspect` record of it whose `cause` is `observed`, `replaced` or
//!   `leaving` (one without a `cause`, from before it was logged, counts), or its own
//!   `leaving`/`left`. A belief handed on (`reported`) or marked by a commit
//!   (`removed`) does not count: those follow whatever the initiator proposed. For a
//!   view a recovery decided (`recovered`), a root belief at the same time counts
//!   (the leader forms it as it decides);
//! - **GMP-1a** (per installer): a process that installs a view without a member of
//!   the view it installed before had logged `suspect` of that member earlier in its
//!   own log (each log is in the process's own order, so this needs no clock), or the
//!   removed member logged `left` no later (by the records' times) than the install.
//!
//! Times across logs: the logs must come from the processes of one host, written
//! since its last boot (`CLOCK_MONOTONIC` restarts at a boot). When every
//! record of every log checked has `mono_us` (the host's `CLOCK_MONOTONIC`, which every
//! process shares and which never steps), the check compares `mono_us`; otherwise
//! (logs written before it was recorded) it compares `ts_us` (the wall clock) for the
//! whole check, never a mix of the two, and a step of the wall clock during the run
//! (NTP) could then raise a false alarm or hide a real one. [`Report::monotonic`] says
//! which clock was used.
//!
//! Not checked here, because the event logs do not carry what they need: GMP-1b
//! (a process added had asked to join: the logs have `start` but not the join request
//! of a process whose log is lost) and the minority rule (the logs record no
//! connectivity; `sgmp-chaos` knows its partitions only as schedule entries). The
//! simulator checks both ([`crate::sim::checker`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

/// One event log line.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Microseconds since the Unix epoch.
    pub ts_us: u64,
    /// The host's `CLOCK_MONOTONIC` at the same moment, microseconds; absent in logs
    /// written before it was recorded.
    #[serde(default)]
    pub mono_us: Option<u64>,
    /// The logging process, `NAME#INC`.
    pub node: String,
    /// `view`, `excluded`, `suspect`, `start`, `joined`, `reconfiguring`, `left`, ...
    pub kind: String,
    /// View version (`view`, `joined`, `reconfiguring`).
    #[serde(default)]
    pub version: Option<u64>,
    /// View members in rank order (`view`).
    #[serde(default)]
    pub members: Option<Vec<String>>,
    /// Suspected process (`suspect`).
    #[serde(default)]
    pub peer: Option<String>,
    /// How the suspicion came about (`suspect`: `observed`, `replaced`, `leaving`,
    /// `reported`, `removed`); absent in logs written before it was recorded.
    #[serde(default)]
    pub cause: Option<String>,
}

impl Record {
    /// A `suspect` record of a belief that starts at its process (or of unknown cause).
    fn is_root_suspicion(&self) -> bool {
        self.kind == "suspect"
            && self
                .cause
                .as_deref()
                .is_none_or(|c| matches!(c, "observed" | "replaced" | "leaving"))
    }
}

/// Why logs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a valid record.
    #[error("{path}:{line}: bad event record: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Parses one log's text (`path` only names it in errors). A last line cut short by a
/// killed writer is ignored.
pub fn parse(path: &str, text: &str) -> Result<Vec<Record>, LogError> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(l) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(LogError::Parse {
                    path: path.into(),
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// Reads and parses a log file; a file that does not exist (a process that never got
/// to open its log) is an empty log, any other failure an error: a log that cannot be
/// read or parsed must fail the check, not drop out of it.
pub fn read_if_any(path: &Path) -> Result<Vec<Record>, LogError> {
    match read(path) {
        Err(LogError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Vec::new())
        }
        r => r,
    }
}

/// Reads and parses a log file.
pub fn read(path: &Path) -> Result<Vec<Record>, LogError> {
    let text = std::fs::read_to_string(path).map_err(|source| LogError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&path.display().to_string(), &text)
}

/// What the check found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Property violations, human-readable.
    pub violations: Vec<String>,
    /// Every installed version and its members.
    pub versions: BTreeMap<u64, Vec<String>>,
    /// Views installed, per PID, in log order.
    pub installed: BTreeMap<String, Vec<u64>>,
    /// Records read.
    pub records: usize,
    /// Times across logs were compared by `mono_us` (every record had it), not by
    /// `ts_us`.
    pub monotonic: bool,
}

impl Report {
    /// No violation.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// The highest version installed, with its members.
    pub fn last_view(&self) -> Option<(u64, &Vec<String>)> {
        self.versions.iter().next_back().map(|(v, m)| (*v, m))
    }
}

/// Which of a record's times the check compares (one clock for the whole check).
#[derive(Clone, Copy)]
struct Clock {
    monotonic: bool,
}

impl Clock {
    /// `mono_us` if every record has it, else `ts_us`.
    fn of(logs: &[Vec<Record>]) -> Clock {
        let mut all = logs.iter().flatten().peekable();
        Clock {
            monotonic: all.peek().is_some() && all.all(|x| x.mono_us.is_some()),
        }
    }

    /// `rec`'s time on this clock.
    fn at(self, rec: &Record) -> u64 {
        match (self.monotonic, rec.mono_us) {
            (true, Some(m)) => m,
            _ => rec.ts_us,
        }
    }

    fn name(self) -> &'static str {
        if self.monotonic {
            "mono_us"
        } else {
            "ts_us"
        }
    }
}

/// Checks the records of every log (each log in its own order; logs in any order).
pub fn check(logs: &[Vec<Record>]) -> Report {
    let clock = Clock::of(logs);
    let mut r = Report {
        monotonic: clock.monotonic,
        ..Report::default()
    };
    let mut ended: HashMap<String, &str> = HashMap::new();
    // When each process logged `left` (earliest).
    let mut left_at: HashMap<&str, u64> = HashMap::new();
    // A leave request (`leaving`, D9) counts from when it was made.
    for rec in logs
        .iter()
        .flatten()
        .filter(|x| x.kind == "left" || x.kind == "leaving")
    {
        let e = left_at.entry(rec.node.as_str()).or_insert(clock.at(rec));
        *e = (*e).min(clock.at(rec));
    }
    // Per process: the members of the view it installed last, and whom it suspects.
    let mut last_view: HashMap<String, Vec<String>> = HashMap::new();
    let mut suspected: HashMap<String, Vec<String>> = HashMap::new();
    for log in logs {
        for rec in log {
            r.records += 1;
            match rec.kind.as_str() {
                "suspect" => {
                    if let Some(peer) = &rec.peer {
                        suspected
                            .entry(rec.node.clone())
                            .or_default()
                            .push(peer.clone());
                    }
                }
                "view" => {
                    let (Some(v), Some(members)) = (rec.version, &rec.members) else {
                        r.violations.push(format!(
                            "{}: view record without version or members",
                            rec.node
                        ));
                        continue;
                    };
                    if let Some(before) = last_view.get(&rec.node) {
                        let sus = suspected.get(&rec.node);
                        for q in before
                            .iter()
                            .filter(|q| **q != rec.node && !members.contains(q))
                        {
                            let believed = sus.is_some_and(|s| s.contains(q))
                                || left_at.get(q.as_str()).is_some_and(|&t| t <= clock.at(rec));
                            if !believed {
                                r.violations.push(format!(
                                    "gmp1a: {} installed view {v} without {q} but had not \
                                     logged a suspicion of it (and {q} had not left)",
                                    rec.node
                                ));
                            }
                        }
                    }
                    last_view.insert(rec.node.clone(), members.clone());
                    if let Some(how) = ended.get(&rec.node) {
                        r.violations.push(format!(
                            "{} installed view {v} after it was {how}",
                            rec.node
                        ));
                    }
                    if !members.contains(&rec.node) {
                        r.violations.push(format!(
                            "{} installed view {v} that does not contain it: {members:?}",
                            rec.node
                        ));
                    }
                    match r.versions.get(&v) {
                        Some(m) if m != members => r.violations.push(format!(
                            "two views of version {v}: {m:?} and {members:?} (by {})",
                            rec.node
                        )),
                        Some(_) => {}
                        None => {
                            r.versions.insert(v, members.clone());
                        }
                    }
                    let seq = r.installed.entry(rec.node.clone()).or_default();
                    if let Some(&last) = seq.last() {
                        if Some(v) != last.checked_add(1) {
                            r.violations.push(format!(
                                "{} installed view {v} right after view {last}",
                                rec.node
                            ));
                        }
                    }
                    seq.push(v);
                }
                "excluded" => {
                    ended.insert(rec.node.clone(), "excluded");
                }
                "left" => {
                    ended.insert(rec.node.clone(), "left");
                }
                _ => {}
            }
        }
    }
    // No return: removed from version x => no view >= x.
    let mut first_in: HashMap<&str, u64> = HashMap::new();
    for (v, members) in &r.versions {
        for m in members {
            first_in.entry(m.as_str()).or_insert(*v);
        }
    }
    let mut extra = Vec::new();
    for (pid, seq) in &r.installed {
        let Some(&first) = first_in.get(pid.as_str()) else {
            continue;
        };
        let removed_at = r
            .versions
            .range(first.saturating_add(1)..)
            .find(|(_, m)| !m.contains(pid))
            .map(|(v, _)| *v);
        if let Some(x) = removed_at {
            if let Some(bad) = seq.iter().find(|&&v| v >= x) {
                extra.push(format!(
                    "{pid} was removed in view {x} but installed view {bad}"
                ));
            }
        }
    }
    r.violations.extend(extra);
    check_gmp1(logs, clock, &left_at, &mut r);
    r
}

/// GMP-1 over every log: each member a version removes was believed faulty at the root
/// before that version's first install (see the module docs).
fn check_gmp1(logs: &[Vec<Record>], clock: Clock, left_at: &HashMap<&str, u64>, r: &mut Report) {
    let mut first_ts: BTreeMap<u64, u64> = BTreeMap::new();
    let mut recovered: Vec<u64> = Vec::new();
    // The earliest root belief of each process.
    let mut root_at: HashMap<&str, u64> = HashMap::new();
    for rec in logs.iter().flatten() {
        match (rec.kind.as_str(), rec.version) {
            ("view", Some(v)) => {
                let t = first_ts.entry(v).or_insert(clock.at(rec));
                *t = (*t).min(clock.at(rec));
            }
            ("recovered", Some(v)) => recovered.push(v),
            _ => {}
        }
        if let (true, Some(peer)) = (rec.is_root_suspicion(), &rec.peer) {
            let t = root_at.entry(peer.as_str()).or_insert(clock.at(rec));
            *t = (*t).min(clock.at(rec));
        }
    }
    for (&v, members) in &r.versions {
        let (Some(before), Some(&at)) = (r.versions.get(&v.wrapping_sub(1)), first_ts.get(&v))
        else {
            continue;
        };
        let same_time_counts = recovered.contains(&v);
        for q in before.iter().filter(|q| !members.contains(q)) {
            let root = root_at
                .get(q.as_str())
                .is_some_and(|&t| t < at || (same_time_counts && t == at));
            let left = left_at.get(q.as_str()).is_some_and(|&t| t <= at);
            if !root && !left {
                r.violations.push(format!(
                    "gmp1: view {v} removed {q} (first installed at {} {at}) but nobody \
                     had observed it faulty before (a belief handed on does not count) \
                     and it had not left",
                    clock.name()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(node: &str, v: u64, m: &[&str]) -> Record {
        Record {
            ts_us: v,
            mono_us: None,
            node: node.into(),
            kind: "view".into(),
            version: Some(v),
            members: Some(m.iter().map(|s| s.to_string()).collect()),
            peer: None,
            cause: None,
        }
    }

    #[test]
    fn good_logs_pass() {
        let a = vec![
            view("a#1", 1, &["a#1"]),
            view("a#1", 2, &["a#1", "b#1"]),
            suspect("a#1", 2, "b#1"),
            view("a#1", 3, &["a#1"]),
        ];
        let b = vec![view("b#1", 2, &["a#1", "b#1"])];
        let r = check(&[a, b]);
        assert!(r.is_ok(), "{:?}", r.violations);
        assert_eq!(r.last_view().unwrap().0, 3);
    }

    #[test]
    fn violations_are_found() {
        // Two views of one version.
        let r = check(&[
            vec![view("a#1", 1, &["a#1", "b#1"])],
            vec![view("b#1", 1, &["b#1"])],
        ]);
        assert!(!r.is_ok());
        // A gap.
        let r = check(&[vec![view("a#1", 1, &["a#1"]), view("a#1", 3, &["a#1"])]]);
        assert!(!r.is_ok());
        // A view without oneself.
        let r = check(&[vec![view("a#1", 1, &["b#1"])]]);
        assert!(!r.is_ok());
        // A removed process installing a later view.
        let r = check(&[
            vec![view("a#1", 1, &["a#1", "b#1"]), view("a#1", 2, &["a#1"])],
            vec![view("b#1", 1, &["a#1", "b#1"]), view("b#1", 3, &["b#1"])],
        ]);
        assert!(
            r.violations.iter().any(|v| v.contains("removed")),
            "{:?}",
            r.violations
        );
        // A foreign log at the last version and after it: a violation, no overflow.
        let r = check(&[vec![
            view("a#1", u64::MAX, &["a#1"]),
            view("a#1", 0, &["a#1"]),
        ]]);
        assert!(!r.is_ok());
        // A view after exclusion.
        let mut ex = view("a#1", 2, &["a#1"]);
        ex.kind = "excluded".into();
        let r = check(&[vec![view("a#1", 1, &["a#1"]), ex, view("a#1", 2, &["a#1"])]]);
        assert!(!r.is_ok());
    }

    fn suspect(node: &str, ts: u64, peer: &str) -> Record {
        Record {
            ts_us: ts,
            mono_us: None,
            node: node.into(),
            kind: "suspect".into(),
            version: None,
            members: None,
            peer: Some(peer.into()),
            cause: Some("observed".into()),
        }
    }

    /// a and b remove c: a's commit marked it (`removed`) and b adopted it from a's
    /// submission (`reported`), but nobody observed it: GMP-1 fails. An observation
    /// before the first install passes; one at the install's time passes only for a
    /// recovered view.
    #[test]
    fn gmp1_needs_a_root_belief_before_the_first_install() {
        let abc = ["a#1", "b#1", "c#1"];
        let handed_on = |node: &str, ts: u64, cause: &str| Record {
            cause: Some(cause.into()),
            ..suspect(node, ts, "c#1")
        };
        let logs = |a_first: Vec<Record>| {
            let mut a = vec![view("a#1", 1, &abc)];
            a.extend(a_first);
            a.push(handed_on("a#1", 2, "removed"));
            a.push(view("a#1", 2, &["a#1", "b#1"]));
            let b = vec![
                view("b#1", 1, &abc),
                handed_on("b#1", 1, "reported"),
                view("b#1", 2, &["a#1", "b#1"]),
            ];
            vec![a, b]
        };
        let r = check(&logs(vec![]));
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(
            r.violations[0].starts_with("gmp1: view 2 removed c#1"),
            "{:?}",
            r.violations
        );
        assert!(check(&logs(vec![suspect("a#1", 1, "c#1")])).is_ok());
        // Observed at the install's own time: only a recovered view may.
        let r = check(&logs(vec![suspect("a#1", 2, "c#1")]));
        assert!(!r.is_ok());
        let recovered = Record {
            kind: "recovered".into(),
            ..view("a#1", 2, &["a#1", "b#1"])
        };
        assert!(check(&logs(vec![suspect("a#1", 2, "c#1"), recovered])).is_ok());
        // A suspicion logged before causes were (no `cause`) counts as a root.
        let old = Record {
            cause: None,
            ..suspect("a#1", 1, "c#1")
        };
        assert!(check(&logs(vec![old])).is_ok());
    }

    #[test]
    fn gmp1a_the_installer_must_have_suspected_whom_it_removes() {
        let abc = ["a#1", "b#1", "c#1"];
        // a suspected c and removed it; b removed c without a suspicion of its own.
        let a = vec![
            view("a#1", 1, &abc),
            suspect("a#1", 1, "c#1"),
            view("a#1", 2, &["a#1", "b#1"]),
        ];
        let b = vec![view("b#1", 1, &abc), view("b#1", 2, &["a#1", "b#1"])];
        let r = check(&[a.clone(), b.clone()]);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(
            r.violations[0].starts_with("gmp1a: b#1"),
            "{:?}",
            r.violations
        );
        // With b's suspicion, or with c's own leave before the install, it passes.
        let mut b2 = b.clone();
        b2.insert(1, suspect("b#1", 1, "c#1"));
        assert!(check(&[a.clone(), b2]).is_ok());
        let mut left = view("c#1", 1, &abc);
        left.kind = "left".into();
        let c = vec![view("c#1", 1, &abc), left];
        assert!(check(&[a.clone(), b.clone(), c]).is_ok());
        // The suspicion must come before the install in b's own log.
        let mut b3 = b;
        b3.push(suspect("b#1", 9, "c#1"));
        assert!(!check(&[a, b3]).is_ok());
    }

    /// `rec` at wall-clock time `ts` and monotonic time `mono`.
    fn at(rec: Record, ts: u64, mono: u64) -> Record {
        Record {
            ts_us: ts,
            mono_us: Some(mono),
            ..rec
        }
    }

    /// The logs without `mono_us` (as written before it was recorded).
    fn wall_only(logs: &[Vec<Record>]) -> Vec<Vec<Record>> {
        logs.iter()
            .map(|l| {
                l.iter()
                    .map(|x| Record {
                        mono_us: None,
                        ..x.clone()
                    })
                    .collect()
            })
            .collect()
    }

    /// a observes c faulty, then the wall clock steps back 1 s (NTP), then a and b
    /// install view 2 without c: by `ts_us` the install came first, by `mono_us` the
    /// observation did. `root` is a's observation of c at monotonic time `root_mono`
    /// (wall clock `root_ts`); the installs are at monotonic 30 and 31.
    fn stepped_logs(root_ts: u64, root_mono: u64) -> Vec<Vec<Record>> {
        let abc = ["a#1", "b#1", "c#1"];
        let ab = ["a#1", "b#1"];
        let reported = Record {
            cause: Some("reported".into()),
            ..suspect("b#1", 0, "c#1")
        };
        let a = vec![
            at(view("a#1", 1, &abc), 2_000_010, 10),
            at(suspect("a#1", 0, "c#1"), root_ts, root_mono),
            at(view("a#1", 2, &ab), 1_000_030, 30),
        ];
        let b = vec![
            at(view("b#1", 1, &abc), 2_000_011, 11),
            at(reported, 1_000_025, 25),
            at(view("b#1", 2, &ab), 1_000_031, 31),
        ];
        vec![a, b]
    }

    /// A wall-clock step backwards between a root belief and the install: the check
    /// compares `mono_us` (every record has it) and passes; the same logs without
    /// `mono_us`, or with one record lacking it (no mixing of clocks), are compared by
    /// `ts_us` and raise the false alarm. Likewise for a leave before the install.
    #[test]
    fn gmp1_compares_mono_us_across_a_wall_clock_step() {
        let logs = stepped_logs(2_000_020, 20);
        let r = check(&logs);
        assert!(r.is_ok(), "{:?}", r.violations);
        assert!(r.monotonic);
        let r = check(&wall_only(&logs));
        assert!(!r.monotonic);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(
            r.violations[0].starts_with("gmp1: view 2 removed c#1 (first installed at ts_us"),
            "{:?}",
            r.violations
        );
        let mut mixed = logs.clone();
        mixed[1][0].mono_us = None;
        let r = check(&mixed);
        assert!(!r.monotonic);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);

        // c's own leave request before the install (by `mono_us`; after it by `ts_us`)
        // needs no one's suspicion, for GMP-1 and for each installer's GMP-1a.
        let abc = ["a#1", "b#1", "c#1"];
        let mut logs = stepped_logs(2_000_020, 20);
        logs[0].remove(1);
        logs[1].remove(1);
        let leaving = Record {
            kind: "leaving".into(),
            ..view("c#1", 1, &abc)
        };
        logs.push(vec![
            at(view("c#1", 1, &abc), 2_000_012, 12),
            at(leaving, 2_000_020, 20),
        ]);
        let r = check(&logs);
        assert!(r.is_ok(), "{:?}", r.violations);
        let r = check(&wall_only(&logs));
        assert!(
            r.violations.iter().any(|v| v.starts_with("gmp1: ")),
            "{:?}",
            r.violations
        );
        assert!(
            r.violations.iter().any(|v| v.starts_with("gmp1a: ")),
            "{:?}",
            r.violations
        );
    }

    /// The root belief comes after the first install by `mono_us` but before it by
    /// `ts_us` (a forward step of the wall clock would hide it): a GMP-1 violation,
    /// found by `mono_us`.
    #[test]
    fn gmp1_violations_by_mono_us_are_found_whatever_ts_us_says() {
        let logs = stepped_logs(1_000_020, 40);
        let r = check(&logs);
        assert!(r.monotonic);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(
            r.violations[0].starts_with("gmp1: view 2 removed c#1 (first installed at mono_us 30)"),
            "{:?}",
            r.violations
        );
        // By `ts_us` alone it would pass.
        assert!(check(&wall_only(&logs)).is_ok());
        // At the install's own monotonic time: only for a recovered view.
        let mut logs = stepped_logs(1_000_020, 30);
        assert!(!check(&logs).is_ok());
        let recovered = Record {
            kind: "recovered".into(),
            ..view("a#1", 2, &["a#1", "b#1"])
        };
        logs[0].insert(2, at(recovered, 1_000_030, 30));
        let r = check(&logs);
        assert!(r.is_ok(), "{:?}", r.violations);
    }

    #[test]
    fn parses_lines_and_tolerates_a_torn_tail() {
        let text = "{\"ts_us\":1,\"node\":\"a#1\",\"kind\":\"view\",\"version\":1,\"members\":[\"a#1\"]}\n{\"ts_us\":2,\"node\":\"a#1\",\"kind\":\"suspect\",\"peer\":\"b#1\"}\n{\"ts_us\":3,\"no";
        let recs = parse("x", text).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].peer.as_deref(), Some("b#1"));
        assert_eq!(recs[1].mono_us, None);
        let recs = parse(
            "x",
            "{\"ts_us\":5,\"mono_us\":7,\"node\":\"a#1\",\"kind\":\"excluded\"}\n",
        )
        .unwrap();
        assert_eq!((recs[0].ts_us, recs[0].mono_us), (5, Some(7)));
        assert!(parse("x", "garbage\n").is_err());
    }
}
