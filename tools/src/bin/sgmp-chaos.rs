//! `sgmp-chaos`: `sgmpd` processes on 127.0.0.1 under a seeded schedule of SIGKILL,
//! SIGSTOP/SIGCONT, loss, duplication, reordering, partitions, restarts and joins; then
//! a heal phase, the Strong GMP checks over the event logs and a liveness check.
//!
//! ```text
//! sgmp-chaos [--seconds 300] [--seed S] [--nodes 5] [--spares 2] [--json] [--verbose]
//!            [--sgmpd PATH] [--sgmpctl PATH] [--dir DIR] [--keep]
//! ```
//!
//! Exit code 0 when no violation was found, 1 otherwise, 2 on a setup error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use sgmp_membership::node::NodeIdle;
use sgmp_tools::chaos::{run, sibling_binaries, ChaosConfig};

/// Chaos testing of real sgmpd processes on loopback.
#[derive(Parser, Debug)]
#[command(
    name = "sgmp-chaos",
    version,
    about = "Seeded chaos on real sgmpd processes on 127.0.0.1, then the Strong GMP checks over their event logs"
)]
struct Args {
    /// Length of the whole run, seconds (fault phase, then a heal phase of a third of
    /// it, between 8 and 30 s).
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// Seed of the schedule (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Founding processes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Processes that join during the run.
    #[arg(long, default_value_t = 2)]
    spares: usize,
    /// The sgmpd binary (default: next to this executable).
    #[arg(long)]
    sgmpd: Option<PathBuf>,
    /// The sgmpctl binary (default: next to this executable).
    #[arg(long)]
    sgmpctl: Option<PathBuf>,
    /// Work directory (default: a fresh one under the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the work directory (logs) even when the run passes.
    #[arg(long)]
    keep: bool,
    /// Print one JSON report.
    #[arg(long)]
    json: bool,
    /// Print each fault as it is injected.
    #[arg(long)]
    verbose: bool,
    /// How the daemons wait: adaptive, block, recv, spin or spin:US (`sgmpd --idle`).
    #[arg(long, default_value = "adaptive", value_parser = |s: &str| s.parse::<NodeIdle>())]
    idle: NodeIdle,
    /// Keep-warm pings of the daemons, µs (`sgmpd --warm-us`; 0: off).
    #[arg(long, default_value_t = 0)]
    warm_us: u64,
}

fn main() -> ExitCode {
    let a = Args::parse();
    if a.nodes < 3 || a.nodes + a.spares > 32 {
        eprintln!("sgmp-chaos: --nodes must be at least 3 and nodes + spares at most 32");
        return ExitCode::from(2);
    }
    if a.seconds < 10 {
        eprintln!("sgmp-chaos: --seconds must be at least 10");
        return ExitCode::from(2);
    }
    let (d, c) = sibling_binaries();
    let Some(sgmpd) = a.sgmpd.or(d) else {
        eprintln!("sgmp-chaos: no sgmpd next to this executable; pass --sgmpd PATH");
        return ExitCode::from(2);
    };
    let mut cfg = ChaosConfig::new(sgmpd, a.sgmpctl.or(c));
    cfg.seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64 % 1_000_000)
    });
    cfg.seconds = a.seconds;
    cfg.nodes = a.nodes;
    cfg.spares = a.spares;
    cfg.dir = a.dir;
    cfg.keep = a.keep;
    cfg.verbose = a.verbose;
    cfg.timing.idle = a.idle;
    cfg.timing.warm_us = a.warm_us;
    // SIGINT/SIGTERM end the fault phase early; the children are killed on the way out.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    eprintln!(
        "sgmp-chaos: seed {}, {} nodes + {} spares, {} s (replay the schedule: --seed {})",
        cfg.seed, cfg.nodes, cfg.spares, cfg.seconds, cfg.seed
    );
    let r = match run(&cfg, &stop) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sgmp-chaos: {e}");
            return ExitCode::from(2);
        }
    };
    if a.json {
        match serde_json::to_string_pretty(&r) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("sgmp-chaos: cannot encode the report: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        println!(
            "sgmp-chaos seed {}: {} nodes + {} spares, {:.0} s ({:.0} s of faults)",
            r.seed, r.nodes, r.spares, r.wall_secs, r.fault_phase_secs
        );
        let faults: Vec<String> = r.faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "faults injected: {} ({} skipped to keep a majority)",
            faults.join(", "),
            r.skipped_for_majority
        );
        println!(
            "processes started {}, views installed {}, max version {}, log records {}",
            r.processes_started, r.views_installed, r.max_version, r.records
        );
        match (&r.final_view, r.converged_after_ms) {
            (Some((v, m)), Some(ms)) => println!(
                "liveness: {} live processes in view {v} {} ms after the heal",
                m.len(),
                ms
            ),
            _ => println!("liveness: no common view"),
        }
        println!("violations: {}", r.violations.len());
        for v in &r.violations {
            println!("VIOLATION {v}");
        }
        if !r.violations.is_empty() {
            println!("logs kept in {}", r.dir);
        }
    }
    if r.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
