//! `sgmp-load`: load generators and measurements for sgmp.
//!
//! `sgmp-load transport [--seconds N] [--size B] [--spin-us U] [--json]` compares the
//! reliable channel with raw UDP and TCP on loopback (see `BENCHMARKS.md`). Every mode
//! prints a table, or exactly one JSON object with `--json`. Exit code 1 on an I/O error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sgmp_tools::load::transport::{self, TransportArgs};

/// Load generators and measurements for sgmp.
#[derive(Parser, Debug)]
#[command(name = "sgmp-load", version, about)]
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
}

fn main() -> ExitCode {
    match Cli::parse().mode {
        Mode::Transport(args) => match transport::run(&args) {
            Ok(report) => {
                if args.json {
                    println!("{}", report.figures().to_json());
                } else {
                    print!("{}", report.table());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sgmp-load transport: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
