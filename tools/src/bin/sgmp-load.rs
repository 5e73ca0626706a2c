//! `sgmp-load`: load generators and measurements for sgmp.
//!
//! ```text
//! sgmp-load transport   [--seconds N] [--size B] [--spin-us U] [--json]
//! sgmp-load view-change [--nodes N] [--rounds R] [--backend in-process|process] [--json]
//! sgmp-load join        [--nodes N] [--rounds R] [--json]
//! sgmp-load churn       [--nodes N] [--seconds S] [--rate R] [--json]
//! sgmp-load clients     [--clients N] [--core C] [--seconds S] [--churn R] [--json]
//! sgmp-load counts      [--json]
//! sgmp-load pattern     [--nodes N] [--rounds R] [--passes P] [--step-ns NS,...] [--json]
//! sgmp-load plots       --from FILE... --out DIR
//! ```
//!
//! Every mode prints a table, or exactly one JSON object with `--json` (see
//! `BENCHMARKS.md`). Ctrl-C stops a long run and prints the partial summary. Exit code 1
//! on an I/O error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sgmp_tools::load::churn::{self, ChurnArgs};
use sgmp_tools::load::clients::{self, ClientsArgs};
use sgmp_tools::load::cluster::install_ctrlc;
use sgmp_tools::load::counts::{self, CountsArgs};
use sgmp_tools::load::join::{self, JoinArgs};
use sgmp_tools::load::pattern::{self, PatternArgs};
use sgmp_tools::load::plots::{self, PlotsArgs};
use sgmp_tools::load::transport::{self, TransportArgs};
use sgmp_tools::load::view_change::{self, ViewChangeArgs};
use sgmp_tools::load::Figures;

/// Load generators and measurements for sgmp.
#[derive(Parser, Debug)]
#[command(
    name = "sgmp-load",
    version,
    about = "Load generators and measurements for sgmp (transport, view changes, joins, churn, clients)"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

/// One subcommand per mode.
#[derive(Subcommand, Debug)]
enum Mode {
    /// Round trip and throughput of the reliable channel against raw UDP and TCP on
    /// 127.0.0.1, blocking and spinning.
    Transport(TransportArgs),
    /// Crash and re-add members of N real nodes; commit latency, crash to view.
    ViewChange(ViewChangeArgs),
    /// Time from a join request to the joiner's first view.
    Join(JoinArgs),
    /// Updates committed per second when requests arrive faster than one update takes.
    Churn(ChurnArgs),
    /// The membership service: many clients against a core; bootstrap, hold,
    /// correlated failures, churn, agreement.
    Clients(ClientsArgs),
    /// Protocol messages and datagrams against the §5.2 closed forms.
    Counts(CountsArgs),
    /// The removal's message pattern over raw UDP alone: the floor `view-change` divides
    /// by, then with a node's event loop and CPU per step (how far the floor rises).
    Pattern(PatternArgs),
    /// SVG plots from the JSON reports of the other modes.
    Plots(PlotsArgs),
}

fn emit(name: &str, json: bool, r: Result<(Figures, String), std::io::Error>) -> ExitCode {
    match r {
        Ok((f, table)) => {
            if json {
                println!("{}", f.to_json());
            } else {
                print!("{table}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sgmp-load {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let mode = Cli::parse().mode;
    // The nodes' logs (in-process modes), only when asked for with RUST_LOG.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    install_ctrlc();
    match mode {
        Mode::Transport(a) => emit(
            "transport",
            a.output.json,
            transport::run(&a).map(|r| (r.figures(), r.table())),
        ),
        Mode::ViewChange(a) => emit(
            "view-change",
            a.output.json,
            view_change::run(&a).map(|r| (r.figures(), r.table())),
        ),
        Mode::Join(a) => emit(
            "join",
            a.output.json,
            join::run(&a).map(|r| (r.figures(), r.table())),
        ),
        Mode::Churn(a) => emit(
            "churn",
            a.output.json,
            churn::run(&a).map(|r| (r.figures(), r.table())),
        ),
        Mode::Clients(a) => emit(
            "clients",
            a.output.json,
            clients::run(&a).map(|r| (r.figures(), r.table())),
        ),
        Mode::Counts(a) => emit(
            "counts",
            a.output.json,
            counts::run(&a).map(|r| (r.figures(), r.table())),
        ),
        Mode::Pattern(a) => emit(
            "pattern",
            a.output.json,
            pattern::run(&a).map(|r| (r.figures(), r.table())),
        ),
        Mode::Plots(a) => match plots::run(&a) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sgmp-load plots: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
