//! `sgmp-load churn`: updates committed per second when requests arrive faster than one
//! update takes.
//!
//! `--nodes` permanent members form a group in this process (n0 founds it and stays the
//! mgr); up to `--churners` more nodes come and go (fewer than half the permanent ones:
//! if a majority of a view left at once, its update could not gather a majority of acks
//! and the mgr would stop, D14). For `--seconds`, a request is issued
//! every `1 / --rate` s: a new churner starts and asks to join (a new incarnation of a
//! churn slot), or, when every churn slot is taken (or at random half the time), a
//! running churner leaves gracefully (its `LeaveReq` reaches the mgr at once). Requests
//! that arrive while an update is in flight are batched into the next update (D14), and
//! the next submit rides on the commit of the current one (compression, §5.2).
//!
//! Figures, from the mgr's view installs during the window: updates (views) committed
//! per second, membership changes (adds + removes) per second and per update (the
//! batching), the share of submits that were piggy-backed on a commit (the mgr's
//! standalone M-sub multicasts against its submits), and a time series in 100 ms buckets
//! for the plot.

use std::collections::BTreeSet;
use std::io;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sgmp_membership::msg::MsgKind;
use sgmp_membership::node::NodePhase;

use super::cluster::{self, stopped, Backend, Ev, InProcess, Timing, Tracker};
use super::flags::Output;
use super::report::{cell, rate_cell, Figures};
use super::view_change::progress;

/// Width of one bucket of the time series, ms.
const BUCKET_MS: u64 = 100;

/// Flags of `sgmp-load churn`.
#[derive(Clone, Debug, clap::Args)]
pub struct ChurnArgs {
    /// Permanent members (more than twice `--churners`).
    #[arg(long, default_value_t = 13, value_parser = clap::value_parser!(u64).range(3..=50))]
    pub nodes: u64,
    /// Churn slots (members that come and go).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=24))]
    pub churners: u64,
    /// Length of the measured window, s.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Requests (joins and leaves) per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Failure detector and protocol timing.
    #[command(flatten)]
    pub timing: Timing,
    /// Seed of the choice between join and leave.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `--json`.
    #[command(flatten)]
    pub output: Output,
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct ChurnReport {
    /// Flags.
    pub args: ChurnArgs,
    /// Length of the window, s.
    pub window_s: f64,
    /// Joins requested.
    pub joins: u64,
    /// Leaves requested.
    pub leaves: u64,
    /// Request slots skipped: every churner was joining (none free, none a member).
    pub deferred: u64,
    /// Views the mgr installed in the window.
    pub updates: u64,
    /// Members added plus removed by those views.
    pub changes: u64,
    /// Most changes in one update.
    pub max_batch: u64,
    /// Submits at the mgr in the window.
    pub submits: u64,
    /// Standalone M-sub multicasts of the mgr in the window (the rest rode on M-com).
    pub standalone_msubs: u64,
    /// Protocol messages the mgr sent in the window.
    pub mgr_sent: u64,
    /// Per bucket: (requests, updates, changes).
    pub series: Vec<(u64, u64, u64)>,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
}

/// Runs the mode (in-process nodes).
pub fn run(args: &ChurnArgs) -> io::Result<ChurnReport> {
    let n = args.nodes as usize;
    let k = args.churners as usize;
    if 2 * k >= n || n + k > 63 {
        // Every churner may leave at once: an update removing a majority of the view
        // cannot gather a majority of acks, and the mgr stops (D14). Keep them a minority.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--nodes must be more than twice --churners, and --nodes + --churners at most 63",
        ));
    }
    let mut b = InProcess::new(args.timing.clone());
    let mut t = Tracker::default();
    let live: BTreeSet<usize> = cluster::form_group(&mut b, &mut t, n, Duration::from_secs(60))?;
    let seed = b.addr(0).expect("n0 runs");
    let mgr_pid = t.latest[&0].0.clone();
    // The node publishes its counters every 20 ms.
    std::thread::sleep(Duration::from_millis(30));
    let stats0 = b.handle(0).expect("n0").metrics().engine;
    let window = Duration::from_secs_f64(args.seconds.clamp(0.1, 3600.0));
    let interval = Duration::from_secs_f64(1.0 / args.rate.clamp(1.0, 100_000.0));
    let buckets = (window.as_millis() as u64).div_ceil(BUCKET_MS) as usize;
    let mut rep = ChurnReport {
        args: args.clone(),
        window_s: 0.0,
        joins: 0,
        leaves: 0,
        deferred: 0,
        updates: 0,
        changes: 0,
        max_batch: 0,
        submits: 0,
        standalone_msubs: 0,
        mgr_sent: 0,
        series: vec![(0, 0, 0); buckets],
        interrupted: false,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut running: Vec<bool> = vec![false; n + k];
    let mut prev: Vec<String> = t.members[&t.stable(&live).unwrap_or(1)].to_vec();
    let t0 = b.now_ns();
    let start = Instant::now();
    let mut next = start;
    let pb = progress(window.as_millis() as u64 / BUCKET_MS, "churn");
    while start.elapsed() < window && !stopped() {
        let now = Instant::now();
        if now >= next {
            next += interval;
            // Joins go to free slots; only members leave (a joiner told to leave before
            // it answers State-Xfer would stall the mgr for a protocol timeout).
            let free: Vec<usize> = (n..n + k).filter(|&s| !running[s]).collect();
            let busy: Vec<usize> = (n..n + k)
                .filter(|&s| {
                    running[s]
                        && b.handle(s)
                            .is_some_and(|h| h.status().phase == NodePhase::Member)
                })
                .collect();
            let join = !free.is_empty() && (busy.is_empty() || rng.gen_bool(0.5));
            let bucket = (start.elapsed().as_millis() as u64 / BUCKET_MS) as usize;
            if free.is_empty() && busy.is_empty() {
                rep.deferred += 1;
            } else if join {
                let s = free[rng.gen_range(0..free.len())];
                b.start(s, Some(seed))?;
                running[s] = true;
                rep.joins += 1;
            } else {
                let s = busy[rng.gen_range(0..busy.len())];
                b.leave_async(s);
                running[s] = false;
                rep.leaves += 1;
            }
            if !free.is_empty() || !busy.is_empty() {
                if let Some(x) = rep.series.get_mut(bucket) {
                    x.0 += 1;
                }
            }
        }
        let wait = next.saturating_duration_since(Instant::now());
        while let Some(r) = b.recv(wait.min(Duration::from_millis(5))) {
            let mgr = r.pid == mgr_pid;
            match &r.ev {
                Ev::View { members, .. } if mgr && r.t_ns >= t0 => {
                    let added = members.iter().filter(|m| !prev.contains(m)).count() as u64;
                    let removed = prev.iter().filter(|m| !members.contains(m)).count() as u64;
                    rep.updates += 1;
                    rep.changes += added + removed;
                    rep.max_batch = rep.max_batch.max(added + removed);
                    let bucket = ((r.t_ns - t0) / 1_000_000 / BUCKET_MS) as usize;
                    if let Some(x) = rep.series.get_mut(bucket) {
                        x.1 += 1;
                        x.2 += added + removed;
                    }
                    prev.clear();
                    prev.extend_from_slice(members);
                }
                Ev::Submitted { .. } if mgr && r.t_ns >= t0 => rep.submits += 1,
                _ => {}
            }
            t.add(r);
            if Instant::now() >= next {
                break;
            }
        }
        pb.set_position(start.elapsed().as_millis() as u64 / BUCKET_MS);
    }
    rep.window_s = start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    // The mgr's counters are published every 20 ms.
    std::thread::sleep(Duration::from_millis(30));
    let stats1 = b.handle(0).expect("n0").metrics().engine;
    let msub = MsgKind::MSub as usize;
    rep.standalone_msubs = stats1.self_addressed[msub].saturating_sub(stats0.self_addressed[msub]);
    rep.mgr_sent = stats1
        .protocol_sent()
        .saturating_sub(stats0.protocol_sent());
    rep.interrupted = stopped();
    Ok(rep)
}

impl ChurnReport {
    fn per_s(&self, x: u64) -> f64 {
        if self.window_s > 0.0 {
            x as f64 / self.window_s
        } else {
            f64::NAN
        }
    }

    /// Share of submits piggy-backed on a commit.
    pub fn piggybacked(&self) -> f64 {
        if self.submits == 0 {
            return f64::NAN;
        }
        1.0 - self.standalone_msubs.min(self.submits) as f64 / self.submits as f64
    }

    /// The figures (one flat JSON object).
    pub fn figures(&self) -> Figures {
        let mut f = Figures::new();
        f.text("mode", "churn");
        f.int("nodes", self.args.nodes);
        f.int("churners", self.args.churners);
        f.float("rate", self.args.rate);
        f.float("window_s", self.window_s);
        f.int("heartbeat_ms", self.args.timing.heartbeat_ms);
        f.int("suspect_ms", self.args.timing.suspect_ms);
        f.int("protocol_timeout_ms", self.args.timing.protocol_timeout_ms);
        f.int("joins", self.joins);
        f.int("leaves", self.leaves);
        f.float("requests_per_s", self.per_s(self.joins + self.leaves));
        f.int("deferred", self.deferred);
        f.int("updates", self.updates);
        f.float("updates_per_s", self.per_s(self.updates));
        f.float("changes_per_s", self.per_s(self.changes));
        f.float(
            "changes_per_update",
            self.changes as f64 / self.updates.max(1) as f64,
        );
        f.int("max_changes_per_update", self.max_batch);
        f.int("submits", self.submits);
        f.int("standalone_msubs", self.standalone_msubs);
        f.float("piggybacked_submit_share", self.piggybacked());
        f.float(
            "mgr_messages_per_update",
            self.mgr_sent as f64 / self.updates.max(1) as f64,
        );
        f.flag("interrupted", self.interrupted);
        f.int("bucket_ms", BUCKET_MS);
        let col = |i: usize| -> serde_json::Value {
            self.series
                .iter()
                .map(|x| match i {
                    0 => x.0,
                    1 => x.1,
                    _ => x.2,
                })
                .collect()
        };
        f.set("series_requests", col(0));
        f.set("series_updates", col(1));
        f.set("series_changes", col(2));
        f
    }

    /// A human table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "sgmp-load churn: {} permanent members + {} churn slots, {} requests/s offered, {:.1} s{}\n\n",
            self.args.nodes,
            self.args.churners,
            cell(self.args.rate, 0),
            self.window_s,
            if self.interrupted { " (interrupted)" } else { "" }
        );
        let rows = [
            (
                "requests issued (joins + leaves)",
                format!("{} + {}", self.joins, self.leaves),
            ),
            (
                "requests per second",
                rate_cell(self.per_s(self.joins + self.leaves)),
            ),
            (
                "request slots skipped (all churners joining)",
                self.deferred.to_string(),
            ),
            ("updates committed (mgr's views)", self.updates.to_string()),
            ("updates per second", rate_cell(self.per_s(self.updates))),
            (
                "membership changes per second",
                rate_cell(self.per_s(self.changes)),
            ),
            (
                "changes per update (mean / max)",
                format!(
                    "{} / {}",
                    cell(self.changes as f64 / self.updates.max(1) as f64, 2),
                    self.max_batch
                ),
            ),
            (
                "submits piggy-backed on a commit",
                format!(
                    "{} of {} ({} %)",
                    self.submits.saturating_sub(self.standalone_msubs),
                    self.submits,
                    cell(100.0 * self.piggybacked(), 1)
                ),
            ),
            (
                "mgr's protocol messages per update",
                cell(self.mgr_sent as f64 / self.updates.max(1) as f64, 1),
            ),
        ];
        for (k, v) in rows {
            s.push_str(&format!("{k:<40} {v:>16}\n"));
        }
        s
    }
}
