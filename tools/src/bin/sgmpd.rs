//! `sgmpd`: one S-GMP group member as a daemon.
//!
//! ```text
//! sgmpd --id NAME --listen HOST:PORT [--seeds HOST:PORT,...] [--event-log PATH]
//!       [--control PATH] [--heartbeat-ms N] [--suspect-ms N] [--key-file PATH]
//!       [--metrics-listen HOST:PORT] [--fault-injection] [--config FILE] ...
//! ```
//!
//! `sgmpd --help` lists every flag with its default; each is also a key of the
//! `--config` TOML file (underscores for dashes). `--key-file` (or `key_file` in the
//! config) names the file holding the cluster key; the key itself is never taken from
//! the command line (`docs/SECURITY.md`).
//!
//! Logs through `tracing` (`RUST_LOG`, default `info`) to stderr. SIGTERM or SIGINT:
//! graceful leave, then exit 0. SIGHUP: the event log's path is opened again (after a
//! log rotation renamed the file). A bad flag, a taken port or control socket, an unusable
//! event log or state file, or an unreadable config: a message and a non-zero exit,
//! before the node has contacted anyone.

use sgmp_tools::daemon::{run, DaemonArgs};

fn main() {
    let args = DaemonArgs::parse_with_defaults();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A test-only build may be told to run a known-bad protocol (the chaos run's
    // sabotage test); any other build refuses the variable.
    match sgmp_membership::sabotage::from_env() {
        Ok(None) => {}
        Ok(Some(s)) => {
            tracing::warn!(sabotage = ?s, "SABOTAGED: a known-bad protocol change is on (tests only)")
        }
        Err(e) => {
            eprintln!("sgmpd: error: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = run(args) {
        eprintln!("sgmpd: error: {e}");
        std::process::exit(1);
    }
}
