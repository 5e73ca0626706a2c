//! `sgmp-load join`: time from a join request to the joiner's first view.
//!
//! A group of `--nodes` members forms on 127.0.0.1 (see [`super::cluster`]); then, each
//! round, a new process `n{N}` (a new incarnation every round) starts, seeded with the
//! mgr's address, and joins. Its request is the start of the node: discovery (one probe
//! to the seed and its answer), `JoinReq`, the mgr's M-sub / acks, the State-Xfer
//! handshake with the joiner, M-com. Figures:
//!
//! * **join**: start of the joiner → its first view;
//! * **join to last install**: start of the joiner → the last member's install of the
//!   view adding it;
//! * **join commit**: the mgr's submit of the update adding it → the last install.
//!
//! The joiner is then crashed and the round waits for its removal, so every round
//! starts from the same N members.

use std::io;
use std::time::{Duration, Instant};

use super::cluster::{self, name_of, stopped, wait_for, Tracker};
use super::flags::{ClusterFlags, Output, RoundTimeout};
use super::report::{cell, ratio, Figures, Latency};
use super::transport::udp_round_trip;
use super::view_change::{progress, put_latency, Series};

/// Flags of `sgmp-load join`.
#[derive(Clone, Debug, clap::Args)]
pub struct JoinArgs {
    /// Members of the group the joiner joins.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=62))]
    pub nodes: u64,
    /// Joins to time.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub rounds: u64,
    /// Where the nodes run, and their timing.
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Length of the raw UDP round-trip measurement, s.
    #[arg(long, default_value_t = 0.5)]
    pub rtt_seconds: f64,
    /// `--round-timeout-ms`.
    #[command(flatten)]
    pub round_timeout: RoundTimeout,
    /// `--json`.
    #[command(flatten)]
    pub output: Output,
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct JoinReport {
    /// Flags.
    pub args: JoinArgs,
    /// Raw UDP round trip in the same run.
    pub udp_rtt: Latency,
    /// Start → the joiner's first view.
    pub join: Series,
    /// Start → the last install of that view.
    pub join_all: Series,
    /// Submit → the last install.
    pub join_commit: Series,
    /// Joins timed.
    pub rounds_done: u64,
    /// Rounds that timed out.
    pub rounds_failed: u64,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// Whole run, s.
    pub elapsed_s: f64,
}

/// Runs the mode.
pub fn run(args: &JoinArgs) -> io::Result<JoinReport> {
    let started = Instant::now();
    let n = args.nodes as usize;
    let mut b = cluster::backend(args.cluster.backend, args.cluster.timing.clone())?;
    let b = &mut *b;
    let mut t = Tracker::default();
    let mut live = cluster::form_group(b, &mut t, n, Duration::from_secs(30 + n as u64))?;
    let udp_rtt = udp_round_trip(64, Duration::from_secs_f64(args.rtt_seconds.max(0.05)))?;
    let mut rep = JoinReport {
        args: args.clone(),
        udp_rtt,
        join: Series::new(),
        join_all: Series::new(),
        join_commit: Series::new(),
        rounds_done: 0,
        rounds_failed: 0,
        interrupted: false,
        elapsed_s: 0.0,
    };
    let timeout = args.round_timeout.duration();
    let joiner = n;
    let name = format!("n{joiner}");
    let pb = progress(args.rounds, "join");
    for _ in 0..args.rounds {
        if stopped() {
            break;
        }
        let ok = wait_for(b, &mut t, timeout, |t| t.stable(&live).is_some());
        let (Some(v), Some(mgr)) = (t.stable(&live), t.mgr_slot(&live)) else {
            rep.rounds_failed += 1;
            if !ok && !stopped() {
                break;
            }
            continue;
        };
        let t_start = b.now_ns();
        b.start(joiner, b.addr(mgr))?;
        live.insert(joiner);
        let mut added = None;
        let ok = wait_for(b, &mut t, timeout, |t| {
            let Some(x) = t.first_version(v, |m| m.iter().any(|p| name_of(p) == name)) else {
                return false;
            };
            added = t.all_installed(x).map(|last| (x, last));
            added.is_some()
        });
        match added.filter(|_| ok) {
            Some((x, last)) => {
                rep.rounds_done += 1;
                rep.join_all.record(last.saturating_sub(t_start));
                if let Some(&ts) = t.submitted.get(&x) {
                    rep.join_commit.record(last.saturating_sub(ts));
                }
                let first = t.members[&x]
                    .iter()
                    .find(|p| name_of(p) == name)
                    .and_then(|p| t.first_view.get(p));
                if let Some(&(_, tv)) = first {
                    rep.join.record(tv.saturating_sub(t_start));
                }
            }
            None => rep.rounds_failed += 1,
        }
        b.crash(joiner);
        live.remove(&joiner);
        pb.inc(1);
        pb.set_message(format!(
            "join p50 {} ms",
            cell(rep.join.latency().p50_us / 1000.0, 2)
        ));
    }
    pb.finish_and_clear();
    rep.interrupted = stopped();
    rep.elapsed_s = started.elapsed().as_secs_f64();
    Ok(rep)
}

impl JoinReport {
    /// The figures (one flat JSON object).
    pub fn figures(&self) -> Figures {
        let mut f = Figures::new();
        f.text("mode", "join");
        f.text("backend", self.args.cluster.backend.name());
        f.int("nodes", self.args.nodes);
        f.int("rounds", self.args.rounds);
        f.int("rounds_done", self.rounds_done);
        f.int("rounds_failed", self.rounds_failed);
        f.flag("interrupted", self.interrupted);
        put_latency(&mut f, "udp_rtt", &self.udp_rtt, "us", 1.0);
        put_latency(&mut f, "join", &self.join.latency(), "ms", 1000.0);
        put_latency(&mut f, "join_all", &self.join_all.latency(), "ms", 1000.0);
        put_latency(
            &mut f,
            "join_commit",
            &self.join_commit.latency(),
            "us",
            1.0,
        );
        f.float(
            "ratio_join_commit_to_rtt",
            ratio(self.join_commit.latency().p50_us, self.udp_rtt.p50_us),
        );
        f.float("elapsed_s", self.elapsed_s);
        f
    }

    /// A human table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "sgmp-load join: joining a group of {} ({}), {} of {} joins timed, {} failed{}, run {:.1} s\n\n",
            self.args.nodes,
            self.args.cluster.backend.name(),
            self.rounds_done,
            self.args.rounds,
            self.rounds_failed,
            if self.interrupted { " (interrupted)" } else { "" },
            self.elapsed_s
        );
        s.push_str(&format!(
            "{:<44} {:>10} {:>10} {:>10} {:>8}\n",
            "figure", "p50", "p99", "max", "samples"
        ));
        for (name, l, unit, scale) in [
            ("raw UDP round trip", self.udp_rtt, "µs", 1.0),
            (
                "join: start → joiner's first view",
                self.join.latency(),
                "ms",
                1000.0,
            ),
            (
                "join: start → last install",
                self.join_all.latency(),
                "ms",
                1000.0,
            ),
            (
                "join commit: submit → last install",
                self.join_commit.latency(),
                "µs",
                1.0,
            ),
        ] {
            s.push_str(&format!(
                "{:<44} {:>10} {:>10} {:>10} {:>8}\n",
                format!("{name} ({unit})"),
                cell(l.p50_us / scale, 2),
                cell(l.p99_us / scale, 2),
                cell(l.max_us / scale, 2),
                l.samples
            ));
        }
        s
    }
}
