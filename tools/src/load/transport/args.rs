//! The flags of `sgmp-load transport` and what they select: measurements, modes, idle
//! strategies.

use sgmp_transport::IdleStrategy;

use crate::load::flags::Output;

use super::{MAX_SIZE, MIN_SIZE};

/// Flags of `sgmp-load transport`.
#[derive(Clone, Debug, clap::Args)]
pub struct TransportArgs {
    /// Whole time budget in seconds, split between the measurements.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub seconds: f64,
    /// Ping-pong message size in bytes (throughput always uses 64 B and 1 KiB).
    #[arg(long, default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(MIN_SIZE as i64..=MAX_SIZE as i64))]
    pub size: u32,
    /// How the blocking sgmp runs park: in a blocking socket read
    /// ([`IdleStrategy::Recv`], the default) or in `epoll` ([`IdleStrategy::Block`]).
    #[arg(long, value_enum, default_value_t = Park::Recv)]
    pub park: Park,
    /// Longest busy-poll of one `drive` call of the spinning sgmp runs, µs.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub spin_us: u64,
    /// `--json`.
    #[command(flatten)]
    pub output: Output,
    /// Run only these measurements (comma-separated), for profiling; the others report
    /// `null`.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Measurement>,
    /// Run only this mode, for profiling; the other reports `null`.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
}

/// Where the blocking sgmp runs park (`--park`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Park {
    /// [`IdleStrategy::Recv`]: a blocking `recv_from` with a receive timeout.
    Recv,
    /// [`IdleStrategy::Block`]: `epoll_wait`, then nonblocking reads.
    Poll,
}

impl Park {
    /// The name printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Park::Recv => "recv",
            Park::Poll => "poll",
        }
    }
}

/// One measurement of a round (`--only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Measurement {
    /// Reliable channel round trip.
    SgmpRtt,
    /// Raw UDP round trip.
    UdpRtt,
    /// TCP round trip.
    TcpRtt,
    /// Reliable channel throughput (64 B and 1 KiB).
    SgmpTput,
    /// Raw UDP throughput (64 B and 1 KiB).
    UdpTput,
}

impl Measurement {
    /// Slots it takes in a round of one mode.
    fn slots(self) -> u32 {
        match self {
            Measurement::SgmpTput | Measurement::UdpTput => 2,
            _ => 1,
        }
    }
}

impl TransportArgs {
    pub(super) fn runs(&self, m: Measurement) -> bool {
        self.only.is_empty() || self.only.contains(&m)
    }

    /// The idle strategy of the sgmp drivers in `mode`.
    pub(super) fn idle(&self, mode: Mode) -> IdleStrategy {
        match (mode, self.park) {
            (Mode::Block, Park::Recv) => IdleStrategy::Recv,
            (Mode::Block, Park::Poll) => IdleStrategy::Block,
            (Mode::Spin, _) => IdleStrategy::Spin {
                spin_us: self.spin_us,
            },
        }
    }

    pub(super) fn modes(&self) -> Vec<Mode> {
        match self.mode {
            Some(m) => vec![m],
            None => vec![Mode::Block, Mode::Spin],
        }
    }

    /// Slots in one round.
    pub(super) fn slots(&self) -> u32 {
        let per_mode: u32 = [
            Measurement::SgmpRtt,
            Measurement::UdpRtt,
            Measurement::TcpRtt,
            Measurement::SgmpTput,
            Measurement::UdpTput,
        ]
        .into_iter()
        .filter(|&m| self.runs(m))
        .map(Measurement::slots)
        .sum();
        per_mode * self.modes().len() as u32
    }
}

impl Default for TransportArgs {
    fn default() -> Self {
        TransportArgs {
            seconds: 10.0,
            size: 64,
            park: Park::Recv,
            spin_us: 1000,
            output: Output::default(),
            only: Vec::new(),
            mode: None,
        }
    }
}

/// Parses `--seconds`: a finite number in (0, 86400].
fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("not a number: {e}"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err("must be more than 0 and at most 86400".to_string())
    }
}

/// How threads wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Threads park: [`IdleStrategy::Recv`] (or `Block`, `--park poll`), blocking socket
    /// reads.
    Block,
    /// Threads busy-poll: [`IdleStrategy::Spin`], nonblocking sockets polled in a loop.
    Spin,
}

impl Mode {
    /// Prefix of this mode's JSON keys (`""` or `"spin_"`).
    pub fn prefix(self) -> &'static str {
        match self {
            Mode::Block => "",
            Mode::Spin => "spin_",
        }
    }

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Block => "block",
            Mode::Spin => "spin",
        }
    }

    pub(super) fn spinning(self) -> bool {
        self == Mode::Spin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_validated() {
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("x").is_err());
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
    }
}
