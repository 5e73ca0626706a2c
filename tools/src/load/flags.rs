//! Flags shared by the modes of `sgmp-load`: `#[derive(clap::Args)]` blocks that each
//! mode flattens into its own flags (`#[command(flatten)]`), so that a flag reads and
//! behaves the same wherever it appears.
//!
//! * [`Output`] (`--json`): every mode but `plots`;
//! * [`Timing`] (`--heartbeat-ms`, `--suspect-ms`, `--protocol-timeout-ms`, `--idle`):
//!   the modes that run nodes on the network (`view-change`, `join`, `churn`);
//! * [`ClusterFlags`] (`--backend` and [`Timing`]): `view-change` and `join`;
//! * [`RoundTimeout`] (`--round-timeout-ms`): `view-change` and `join`.
//!
//! Flags whose default or help differs between modes (`--seconds`, `--seed`, `--nodes`,
//! `--rounds`, `clients`' `--heartbeat-ms` and `--backend`) stay in the modes.

use std::time::Duration;

/// `--json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct Output {
    /// Print exactly one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Failure detector and protocol timing of every node (flags shared by the modes).
#[derive(Clone, Debug, clap::Args)]
pub struct Timing {
    /// Heartbeat interval of the ring detector, ms.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub heartbeat_ms: u64,
    /// Silence after which a watched member is suspected, ms.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub suspect_ms: u64,
    /// How long an initiator waits for answers before suspecting the silent, ms.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub protocol_timeout_ms: u64,
    /// How the nodes' loops wait: adaptive (epoll, polling while a view change is
    /// open; the nodes' default), block (epoll), recv (blocking read) or `spin[:US]`
    /// (poll the socket, yielding the core, for up to US µs before parking; default
    /// 200). `view-change` runs its raw-UDP pattern both blocking and with the same
    /// poll when `spin` is given.
    #[arg(long, default_value = "adaptive", value_parser = parse_idle)]
    pub idle: Idle,
    /// Keep-warm pings of every node, µs (0: off, the nodes' default): after this long
    /// without a datagram a node sends an empty datagram to the next other member
    /// (`NodeConfig::warm_us`).
    #[arg(long, default_value_t = 0)]
    pub warm_us: u64,
    /// Warm-up before a suspicion of every node, µs (0: off; the nodes' default
    /// 2000): calls to the view's other members over the last this long before a
    /// suspicion (`NodeConfig::warm_up_us`).
    #[arg(long, default_value_t = sgmp_membership::node::DEFAULT_WARM_UP_US)]
    pub warm_up_us: u64,
    /// Pin every node's loop thread to a CPU (`NodeConfig::cpu`, `sgmpd --cpu`): node
    /// `n{slot}` to the slot-th CPU this process may run on, round-robin. Off by
    /// default (the nodes' default); the raw UDP pattern's threads are never pinned.
    #[arg(long)]
    pub pin: bool,
}

impl Timing {
    /// The CPU node `n{slot}` is pinned to with `--pin` (`None` without it): the
    /// slot-th of the CPUs this process may run on, round-robin.
    pub fn cpu_of(&self, slot: usize) -> Option<usize> {
        if !self.pin {
            return None;
        }
        let cpus = allowed_cpus();
        cpus.get(slot % cpus.len().max(1)).copied()
    }
}

/// The CPUs the calling (main) thread may run on: the process's; `0 ..
/// available_parallelism` if they cannot be read.
fn allowed_cpus() -> Vec<usize> {
    sgmp_membership::node::current_thread_cpus()
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n).collect()
        })
}

/// The nodes' idle strategy (`NodeConfig::idle`, the same words as `sgmpd --idle`).
pub type Idle = sgmp_membership::node::NodeIdle;

fn parse_idle(s: &str) -> Result<Idle, String> {
    s.parse()
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_ms: 10,
            suspect_ms: 60,
            protocol_timeout_ms: 200,
            idle: Idle::Adaptive,
            warm_us: 0,
            warm_up_us: sgmp_membership::node::DEFAULT_WARM_UP_US,
            pin: false,
        }
    }
}

/// How the nodes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Threads of this process.
    InProcess,
    /// `sgmpd` child processes.
    Process,
}

impl BackendKind {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::InProcess => "in-process",
            BackendKind::Process => "process",
        }
    }
}

/// Where the nodes of `view-change` and `join` run, and their timing.
#[derive(Clone, Debug, clap::Args)]
pub struct ClusterFlags {
    /// How the nodes run.
    #[arg(long, value_enum, default_value_t = BackendKind::InProcess)]
    pub backend: BackendKind,
    /// Failure detector and protocol timing.
    #[command(flatten)]
    pub timing: Timing,
}

/// `--round-timeout-ms`: the longest wait for one view change.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct RoundTimeout {
    /// Longest wait for one view change, ms.
    #[arg(long, default_value_t = 10_000)]
    pub round_timeout_ms: u64,
}

impl RoundTimeout {
    /// Shortest wait used, whatever the flag says.
    pub const MIN: Duration = Duration::from_millis(100);

    /// The wait, at least [`RoundTimeout::MIN`].
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.round_timeout_ms).max(Self::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--pin`: node `n{slot}` on the slot-th CPU this process may use, round-robin;
    /// nothing without it.
    #[test]
    fn pinned_nodes_take_the_allowed_cpus_in_turn() {
        assert!(!allowed_cpus().is_empty());
        let t = Timing {
            pin: true,
            ..Timing::default()
        };
        let cpus = allowed_cpus();
        assert_eq!(t.cpu_of(0), Some(cpus[0]));
        assert_eq!(t.cpu_of(cpus.len()), Some(cpus[0]));
        assert_eq!(Timing::default().cpu_of(0), None);
    }
}
