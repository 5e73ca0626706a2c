//! `sgmp-load transport`: the reliable channel against raw UDP and TCP on loopback.
//!
//! One run measures, on 127.0.0.1 with ports chosen by the kernel:
//!
//! * **ping-pong round trip** (one message out, the echo back; p50/p99/max from an HDR
//!   histogram) of the sgmp reliable channel ([`Driver`]), of raw UDP (std sockets with the
//!   driver's buffer sizes, same message size, `send_to`/`recv_from` like the driver) and
//!   of TCP with `TCP_NODELAY`;
//! * **one-way throughput** (64 B and 1 KiB messages, messages per second) of the reliable
//!   channel and of raw UDP. Raw UDP counts what the *receiver* got: loopback drops
//!   datagrams when the receiver's buffer is full, and the sender's rate is reported
//!   separately.
//!
//! Each is measured in two modes: **blocking** (threads park: [`IdleStrategy::Recv`], or
//! [`IdleStrategy::Block`] with `--park poll`; blocking reads) and **spinning** ([`IdleStrategy::Spin`], nonblocking sockets
//! busy-polled).
//!
//! Every measurement uses exactly two threads, the calling thread (client or sender) and
//! one spawned thread (echo server or receiver), so that on a 2-core machine each side
//! has a core and a blocking round trip pays two real thread wake-ups, as it would
//! between two hosts. Nothing else runs meanwhile: the measurements are sequential.
//!
//! `--seconds` is the whole budget: it is cut into rounds of about a second (see
//! [`run`]), each running every measurement once in a short slot (what is left divided
//! by the slots still to run); the first tenth of each slot is a warm-up whose samples
//! are discarded. Every wait is bounded, so the run ends
//! within the budget plus thread start-up and tear-down (a few tens of milliseconds).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sgmp_transport::{Driver, DriverConfig, IdleStrategy, ProcessId, SendError, TransportConfig};
use socket2::{Domain, Protocol, Socket, Type};

use super::report::{cell, rate_cell, ratio, Figures, Latency};

/// Largest `--size`: the largest UDP payload over IPv4.
pub const MAX_SIZE: u32 = 65_507;
/// Smallest `--size`: room for the sequence number that matches echoes to pings.
pub const MIN_SIZE: u32 = 8;
/// Measurements in one round (3 round trips and 4 throughputs, in each of 2 modes).
pub const MEASUREMENTS: u32 = 14;
/// Most rounds in one run.
pub const MAX_ROUNDS: u32 = 20;
/// Target length of one round, s.
const ROUND_SECONDS: f64 = 1.0;
/// Round-trip p50 of the reliable channel over raw UDP's, at most (target, not asserted).
pub const TARGET_RTT_VS_UDP: f64 = 1.2;
/// Round-trip p50 of the reliable channel over TCP's, at most (target, not asserted).
pub const TARGET_RTT_VS_TCP: f64 = 1.1;
/// Throughput of the reliable channel over raw UDP's, at least (target, not asserted).
pub const TARGET_THROUGHPUT_VS_UDP: f64 = 0.7;

/// How long a blocked thread waits before looking at its stop flag.
const POLL_STOP: Duration = Duration::from_millis(20);
/// A ping without an echo after this long counts as lost (raw UDP only, in practice).
const LOSS_TIMEOUT: Duration = Duration::from_millis(100);
/// Senders keep going this long past the end so that receivers see the end mark.
const TAIL: Duration = Duration::from_millis(5);
/// Shortest slot of one measurement.
const MIN_SLOT: Duration = Duration::from_millis(10);
/// Socket buffers of every socket, as the driver's default ([`DriverConfig::new`]).
const SOCKET_BUFFER: usize = 4 << 20;
/// Largest datagram a receive buffer must hold.
const MAX_DATAGRAM: usize = 65_536;
/// Small throughput message size.
const SMALL: usize = 64;
/// Large throughput message size.
const LARGE: usize = 1024;
/// Cluster id of the load endpoints.
const CLUSTER: u64 = 0x5347_4c4f_4144;

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
    /// Print exactly one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
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
    fn runs(&self, m: Measurement) -> bool {
        self.only.is_empty() || self.only.contains(&m)
    }

    /// The idle strategy of the sgmp drivers in `mode`.
    fn idle(&self, mode: Mode) -> IdleStrategy {
        match (mode, self.park) {
            (Mode::Block, Park::Recv) => IdleStrategy::Recv,
            (Mode::Block, Park::Poll) => IdleStrategy::Block,
            (Mode::Spin, _) => IdleStrategy::Spin {
                spin_us: self.spin_us,
            },
        }
    }

    fn modes(&self) -> Vec<Mode> {
        match self.mode {
            Some(m) => vec![m],
            None => vec![Mode::Block, Mode::Spin],
        }
    }

    /// Slots in one round.
    fn slots(&self) -> u32 {
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
            json: false,
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

    fn spinning(self) -> bool {
        self == Mode::Spin
    }
}

/// A one-way throughput measurement (totals over every round).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Throughput {
    /// Messages the receiver got per second.
    pub msgs_per_s: f64,
    /// Messages the sender handed over per second (to `send_to`, or accepted by
    /// [`Driver::send`]).
    pub sent_per_s: f64,
    /// Datagrams the sender wrote per second (sgmp coalesces small messages).
    pub datagrams_per_s: f64,
    /// Retransmitted frames (sgmp only).
    pub retransmissions: u64,
    /// Length of the counted intervals, s.
    pub secs: f64,
}

/// Round trip of one transport (totals over every round).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoundTrip {
    /// Latency percentiles.
    pub latency: Latency,
    /// Pings without an echo within 100 ms.
    pub lost: u64,
    /// Datagrams written by both sides per round trip, warm-up included (sgmp only: 2.0
    /// means every ack rode on a message).
    pub datagrams_per_round: f64,
    /// Retransmitted frames (sgmp only).
    pub retransmissions: u64,
}

/// Everything measured in one [`Mode`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ModeFigures {
    /// Reliable channel round trip.
    pub sgmp_rtt: RoundTrip,
    /// Raw UDP round trip.
    pub udp_rtt: RoundTrip,
    /// TCP (`TCP_NODELAY`) round trip.
    pub tcp_rtt: RoundTrip,
    /// Reliable channel, 64 B messages.
    pub sgmp: Throughput,
    /// Raw UDP, 64 B messages.
    pub udp: Throughput,
    /// Reliable channel, 1 KiB messages.
    pub sgmp_1k: Throughput,
    /// Raw UDP, 1 KiB messages.
    pub udp_1k: Throughput,
}

impl ModeFigures {
    /// sgmp p50 round trip over raw UDP's.
    pub fn ratio_rtt_udp(&self) -> f64 {
        ratio(self.sgmp_rtt.latency.p50_us, self.udp_rtt.latency.p50_us)
    }

    /// sgmp p50 round trip over TCP's.
    pub fn ratio_rtt_tcp(&self) -> f64 {
        ratio(self.sgmp_rtt.latency.p50_us, self.tcp_rtt.latency.p50_us)
    }

    /// sgmp 64 B throughput over raw UDP's (received).
    pub fn ratio_throughput(&self) -> f64 {
        ratio(self.sgmp.msgs_per_s, self.udp.msgs_per_s)
    }

    /// sgmp 1 KiB throughput over raw UDP's (received).
    pub fn ratio_throughput_1k(&self) -> f64 {
        ratio(self.sgmp_1k.msgs_per_s, self.udp_1k.msgs_per_s)
    }
}

/// One of the ratios of [`ModeFigures`].
type Ratio = fn(&ModeFigures) -> f64;

/// The result of one `sgmp-load transport` run.
#[derive(Clone, Debug)]
pub struct TransportReport {
    /// The flags it ran with.
    pub args: TransportArgs,
    /// CPUs available to the process.
    pub cores: usize,
    /// Rounds: every measurement ran once per round, in short interleaved slots.
    pub rounds: u32,
    /// Wall-clock length of the run, s.
    pub elapsed_s: f64,
    /// Blocking mode.
    pub block: ModeFigures,
    /// Spinning mode.
    pub spin: ModeFigures,
}

/// Splits what is left of the budget evenly between the slots still to run.
struct Budget {
    deadline: Instant,
    left: u32,
}

impl Budget {
    fn next(&mut self) -> Duration {
        let rest = self.deadline.saturating_duration_since(Instant::now());
        let slot = rest / self.left.max(1);
        self.left = self.left.saturating_sub(1);
        slot.max(MIN_SLOT)
    }
}

/// Round-trip samples accumulated over rounds.
struct RttAcc {
    hist: Histogram<u64>,
    lost: u64,
    rounds: u64,
    datagrams: u64,
    retransmissions: u64,
}

impl RttAcc {
    fn new() -> io::Result<RttAcc> {
        Ok(RttAcc {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(io::Error::other)?,
            lost: 0,
            rounds: 0,
            datagrams: 0,
            retransmissions: 0,
        })
    }

    fn summary(&self) -> RoundTrip {
        RoundTrip {
            latency: Latency::from_histogram(&self.hist),
            lost: self.lost,
            datagrams_per_round: ratio(self.datagrams as f64, self.rounds as f64),
            retransmissions: self.retransmissions,
        }
    }
}

/// Throughput counts accumulated over rounds.
#[derive(Clone, Copy, Debug, Default)]
struct ThrAcc {
    received: u64,
    received_secs: f64,
    sent: u64,
    sent_secs: f64,
    datagrams: u64,
    retransmissions: u64,
}

impl ThrAcc {
    fn summary(&self) -> Throughput {
        Throughput {
            msgs_per_s: ratio(self.received as f64, self.received_secs),
            sent_per_s: ratio(self.sent as f64, self.sent_secs),
            datagrams_per_s: ratio(self.datagrams as f64, self.sent_secs),
            retransmissions: self.retransmissions,
            secs: self.received_secs,
        }
    }
}

/// The accumulators of one mode.
struct ModeAcc {
    sgmp_rtt: RttAcc,
    udp_rtt: RttAcc,
    tcp_rtt: RttAcc,
    sgmp: ThrAcc,
    udp: ThrAcc,
    sgmp_1k: ThrAcc,
    udp_1k: ThrAcc,
}

impl ModeAcc {
    fn new() -> io::Result<ModeAcc> {
        Ok(ModeAcc {
            sgmp_rtt: RttAcc::new()?,
            udp_rtt: RttAcc::new()?,
            tcp_rtt: RttAcc::new()?,
            sgmp: ThrAcc::default(),
            udp: ThrAcc::default(),
            sgmp_1k: ThrAcc::default(),
            udp_1k: ThrAcc::default(),
        })
    }

    /// One slot of each measurement.
    fn round(&mut self, mode: Mode, args: &TransportArgs, b: &mut Budget) -> io::Result<()> {
        let (size, idle) = (args.size as usize, args.idle(mode));
        if args.runs(Measurement::SgmpRtt) {
            sgmp_rtt(idle, size, b.next(), &mut self.sgmp_rtt)?;
        }
        if args.runs(Measurement::UdpRtt) {
            udp_rtt(mode, size, b.next(), &mut self.udp_rtt)?;
        }
        if args.runs(Measurement::TcpRtt) {
            tcp_rtt(mode, size, b.next(), &mut self.tcp_rtt)?;
        }
        if args.runs(Measurement::SgmpTput) {
            sgmp_throughput(idle, SMALL, b.next(), &mut self.sgmp)?;
        }
        if args.runs(Measurement::UdpTput) {
            udp_throughput(mode, SMALL, b.next(), &mut self.udp)?;
        }
        if args.runs(Measurement::SgmpTput) {
            sgmp_throughput(idle, LARGE, b.next(), &mut self.sgmp_1k)?;
        }
        if args.runs(Measurement::UdpTput) {
            udp_throughput(mode, LARGE, b.next(), &mut self.udp_1k)?;
        }
        Ok(())
    }

    fn summary(&self) -> ModeFigures {
        ModeFigures {
            sgmp_rtt: self.sgmp_rtt.summary(),
            udp_rtt: self.udp_rtt.summary(),
            tcp_rtt: self.tcp_rtt.summary(),
            sgmp: self.sgmp.summary(),
            udp: self.udp.summary(),
            sgmp_1k: self.sgmp_1k.summary(),
            udp_1k: self.udp_1k.summary(),
        }
    }
}

/// Runs every measurement within `args.seconds` (plus thread start-up and tear-down).
///
/// The budget is cut into rounds of about a second (at most [`MAX_ROUNDS`]); each round
/// runs every measurement once, block then spin, in slots of equal length. Interleaving
/// short slots exposes every transport to the same background noise, which matters more
/// for the ratios than long uninterrupted runs would.
pub fn run(args: &TransportArgs) -> io::Result<TransportReport> {
    let start = Instant::now();
    let rounds = (args.seconds / ROUND_SECONDS)
        .ceil()
        .clamp(1.0, MAX_ROUNDS as f64) as u32;
    let mut budget = Budget {
        deadline: start + Duration::from_secs_f64(args.seconds),
        left: args.slots() * rounds,
    };
    let (mut block, mut spin) = (ModeAcc::new()?, ModeAcc::new()?);
    for _ in 0..rounds {
        for mode in args.modes() {
            match mode {
                Mode::Block => block.round(mode, args, &mut budget)?,
                Mode::Spin => spin.round(mode, args, &mut budget)?,
            }
        }
    }
    Ok(TransportReport {
        args: args.clone(),
        cores: thread::available_parallelism().map_or(1, |n| n.get()),
        rounds,
        elapsed_s: start.elapsed().as_secs_f64(),
        block: block.summary(),
        spin: spin.summary(),
    })
}

impl TransportReport {
    /// The figures, with the key names of the JSON output (see `BENCHMARKS.md`).
    pub fn figures(&self) -> Figures {
        let mut f = Figures::new();
        f.text("mode", "transport");
        f.float("seconds", self.args.seconds);
        f.float("elapsed_s", self.elapsed_s);
        f.int("rounds", self.rounds as u64);
        f.int("size", self.args.size as u64);
        f.int("spin_us", self.args.spin_us);
        f.text("park", self.args.park.name());
        f.int("cores", self.cores as u64);
        for (mode, m) in [(Mode::Block, &self.block), (Mode::Spin, &self.spin)] {
            let p = mode.prefix();
            for (name, rt) in [
                ("sgmp", &m.sgmp_rtt),
                ("raw_udp", &m.udp_rtt),
                ("tcp", &m.tcp_rtt),
            ] {
                let l = &rt.latency;
                f.float(format!("{p}{name}_rtt_p50_us"), l.p50_us);
                f.float(format!("{p}{name}_rtt_p99_us"), l.p99_us);
                f.float(format!("{p}{name}_rtt_max_us"), l.max_us);
                f.float(format!("{p}{name}_rtt_mean_us"), l.mean_us);
                f.int(format!("{p}{name}_rtt_samples"), l.samples);
                f.int(format!("{p}{name}_rtt_lost"), rt.lost);
            }
            let srt = &m.sgmp_rtt;
            f.float(
                format!("{p}sgmp_rtt_datagrams_per_round"),
                srt.datagrams_per_round,
            );
            f.int(format!("{p}sgmp_rtt_retransmissions"), srt.retransmissions);
            for (name, s, t) in [
                ("sgmp", "", &m.sgmp),
                ("raw_udp", "", &m.udp),
                ("sgmp", "_1k", &m.sgmp_1k),
                ("raw_udp", "_1k", &m.udp_1k),
            ] {
                f.float(format!("{p}{name}_msgs_per_s{s}"), t.msgs_per_s);
                f.float(format!("{p}{name}_sent_per_s{s}"), t.sent_per_s);
                f.float(format!("{p}{name}_datagrams_per_s{s}"), t.datagrams_per_s);
                if name == "sgmp" {
                    f.int(format!("{p}{name}_retransmissions{s}"), t.retransmissions);
                } else {
                    let loss = 100.0 * (1.0 - ratio(t.msgs_per_s, t.sent_per_s));
                    f.float(format!("{p}{name}_loss_pct{s}"), loss.max(0.0));
                }
            }
            let (ru, rt, th, th1) = (
                m.ratio_rtt_udp(),
                m.ratio_rtt_tcp(),
                m.ratio_throughput(),
                m.ratio_throughput_1k(),
            );
            f.float(format!("{p}ratio_sgmp_to_udp_rtt"), ru);
            f.float(format!("{p}ratio_sgmp_to_tcp_rtt"), rt);
            f.float(format!("{p}ratio_sgmp_to_udp_throughput"), th);
            f.float(format!("{p}ratio_sgmp_to_udp_throughput_1k"), th1);
            f.flag(format!("{p}target_rtt_vs_udp_met"), ru <= TARGET_RTT_VS_UDP);
            f.flag(format!("{p}target_rtt_vs_tcp_met"), rt <= TARGET_RTT_VS_TCP);
            f.flag(
                format!("{p}target_throughput_met"),
                th >= TARGET_THROUGHPUT_VS_UDP,
            );
            f.flag(
                format!("{p}target_throughput_1k_met"),
                th1 >= TARGET_THROUGHPUT_VS_UDP,
            );
        }
        f
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!(
            "sgmp-load transport: 127.0.0.1, {} B ping-pong, {:.1} s budget ({:.1} s used, \
             {} rounds), {} cores, blocking sgmp parks in {}, spin {} µs",
            self.args.size,
            self.args.seconds,
            self.elapsed_s,
            self.rounds,
            self.cores,
            self.args.park.name(),
            self.args.spin_us
        ));
        line(String::new());
        line(format!(
            "{:<22} {:>9} {:>9} {:>9} {:>9} {:>5}",
            "round trip (µs)", "p50", "p99", "max", "samples", "lost"
        ));
        for (mode, m) in [(Mode::Block, &self.block), (Mode::Spin, &self.spin)] {
            for (name, rt) in [
                ("sgmp", &m.sgmp_rtt),
                ("raw udp", &m.udp_rtt),
                ("tcp nodelay", &m.tcp_rtt),
            ] {
                let l = &rt.latency;
                line(format!(
                    "  {:<6}{:<14} {:>9} {:>9} {:>9} {:>9} {:>5}",
                    mode.name(),
                    name,
                    cell(l.p50_us, 1),
                    cell(l.p99_us, 1),
                    cell(l.max_us, 1),
                    l.samples,
                    rt.lost
                ));
            }
        }
        line(format!(
            "  sgmp datagrams per round trip: block {}, spin {}; retransmissions: block {}, \
             spin {}",
            cell(self.block.sgmp_rtt.datagrams_per_round, 2),
            cell(self.spin.sgmp_rtt.datagrams_per_round, 2),
            self.block.sgmp_rtt.retransmissions,
            self.spin.sgmp_rtt.retransmissions
        ));
        line(String::new());
        line(format!(
            "{:<22} {:>12} {:>12} {:>12} {:>12}",
            "throughput (msg/s)", "64 B", "64 B sent", "1 KiB", "1 KiB sent"
        ));
        for (mode, m) in [(Mode::Block, &self.block), (Mode::Spin, &self.spin)] {
            for (name, a, b) in [
                ("sgmp", &m.sgmp, &m.sgmp_1k),
                ("raw udp recv", &m.udp, &m.udp_1k),
            ] {
                line(format!(
                    "  {:<6}{:<14} {:>12} {:>12} {:>12} {:>12}",
                    mode.name(),
                    name,
                    rate_cell(a.msgs_per_s),
                    rate_cell(a.sent_per_s),
                    rate_cell(b.msgs_per_s),
                    rate_cell(b.sent_per_s)
                ));
            }
        }
        line(format!(
            "  sgmp datagrams/s 64 B: block {}, spin {}; retransmitted frames: block {}/{}, \
             spin {}/{} (64 B/1 KiB)",
            rate_cell(self.block.sgmp.datagrams_per_s),
            rate_cell(self.spin.sgmp.datagrams_per_s),
            self.block.sgmp.retransmissions,
            self.block.sgmp_1k.retransmissions,
            self.spin.sgmp.retransmissions,
            self.spin.sgmp_1k.retransmissions
        ));
        line(String::new());
        line(format!(
            "{:<30} {:>7} {:>7} {:>8}",
            "ratios (sgmp / other)", "block", "spin", "target"
        ));
        let rows: [(&str, Ratio, String); 4] = [
            (
                "rtt p50 / raw udp",
                ModeFigures::ratio_rtt_udp,
                format!("<= {TARGET_RTT_VS_UDP}"),
            ),
            (
                "rtt p50 / tcp",
                ModeFigures::ratio_rtt_tcp,
                format!("<= {TARGET_RTT_VS_TCP}"),
            ),
            (
                "throughput 64 B / raw udp",
                ModeFigures::ratio_throughput,
                format!(">= {TARGET_THROUGHPUT_VS_UDP}"),
            ),
            (
                "throughput 1 KiB / raw udp",
                ModeFigures::ratio_throughput_1k,
                format!(">= {TARGET_THROUGHPUT_VS_UDP}"),
            ),
        ];
        for (name, f, target) in rows {
            line(format!(
                "  {:<28} {:>7} {:>7} {:>8}",
                name,
                cell(f(&self.block), 2),
                cell(f(&self.spin), 2),
                target
            ));
        }
        s
    }
}

// ---------------------------------------------------------------------------------------
// Plumbing shared by the measurements.

/// Sets the flag when dropped, so that a helper thread stops even if the caller bails out
/// with an error. The helper must also be woken (see each measurement).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn stop_flag() -> (Arc<AtomicBool>, StopOnDrop) {
    let flag = Arc::new(AtomicBool::new(false));
    (Arc::clone(&flag), StopOnDrop(flag))
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<JoinHandle<io::Result<T>>> {
    thread::Builder::new().name(name.to_string()).spawn(f)
}

fn join<T>(h: JoinHandle<io::Result<T>>) -> io::Result<T> {
    h.join()
        .map_err(|_| io::Error::other("a measurement thread panicked"))?
}

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Timeouts and "would block" (the same kind on Unix), and interruptions.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn send_error(e: SendError) -> io::Error {
    io::Error::other(e.to_string())
}

/// A UDP socket on 127.0.0.1 set up like the driver's (buffer sizes, no address reuse).
fn udp_socket(mode: Mode, read_timeout: Duration) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(false)?;
    s.set_recv_buffer_size(SOCKET_BUFFER)?;
    s.set_send_buffer_size(SOCKET_BUFFER)?;
    s.bind(&localhost().into())?;
    let s: UdpSocket = s.into();
    if mode.spinning() {
        s.set_nonblocking(true)?;
    } else {
        s.set_read_timeout(Some(read_timeout))?;
    }
    Ok(s)
}

/// `send_to`, retried while the socket would block (bounded).
fn udp_send(s: &UdpSocket, buf: &[u8], to: SocketAddr) -> io::Result<()> {
    for _ in 0..10_000_000u32 {
        match s.send_to(buf, to) {
            Ok(_) => return Ok(()),
            Err(e) if transient(&e) => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "udp send blocked for too long",
    ))
}

/// Wakes a UDP thread blocked in `recv_from` (it then sees its stop flag).
fn poke(from: &UdpSocket, to: SocketAddr) {
    // Best effort: a blocked reader also gives up after its read timeout.
    let _ = from.send_to(&[], to);
}

fn sgmp_driver(name: &str, idle: IdleStrategy) -> io::Result<Driver> {
    let mut c = DriverConfig::new(localhost(), ProcessId::named(name, 1));
    c.transport = TransportConfig {
        cluster_id: CLUSTER,
        max_peers: 4,
        ..TransportConfig::default()
    };
    c.idle = idle;
    Driver::bind(c)
}

/// Runs `round(seq, give_up)` back to back for `dur` and records the time of each one
/// that returns `true` (after the first tenth, a warm-up); returns the rounds run.
fn rtt_loop(
    dur: Duration,
    acc: &mut RttAcc,
    mut round: impl FnMut(u64, Instant) -> io::Result<bool>,
) -> io::Result<u64> {
    let start = Instant::now();
    let (warm, end) = (start + dur / 10, start + dur);
    let mut seq = 0u64;
    loop {
        let t = Instant::now();
        if t >= end {
            break;
        }
        seq += 1;
        if round(seq, t + LOSS_TIMEOUT)? {
            let ns = t.elapsed().as_nanos() as u64;
            if t >= warm {
                acc.hist.saturating_record(ns.max(1));
            }
        } else {
            acc.lost += 1;
        }
    }
    acc.rounds += seq;
    Ok(seq)
}

/// Writes the sequence number into the first 8 bytes of a ping.
fn stamp(ping: &mut [u8], seq: u64) {
    ping[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Counts of one side of a throughput measurement at the warm-up and end marks.
#[derive(Clone, Copy, Debug)]
struct Meter {
    warm: Instant,
    end: Instant,
    at_warm: Option<(Instant, u64)>,
    at_end: Option<(Instant, u64)>,
}

impl Meter {
    fn new(start: Instant, dur: Duration) -> Meter {
        Meter {
            warm: start + dur / 10,
            end: start + dur,
            at_warm: None,
            at_end: None,
        }
    }

    fn observe(&mut self, now: Instant, count: u64) {
        if self.at_warm.is_none() && now >= self.warm {
            self.at_warm = Some((now, count));
        }
        if self.at_end.is_none() && now >= self.end {
            self.at_end = Some((now, count));
        }
    }

    /// The count between the marks and the seconds between them (the end mark defaults
    /// to `now`, `count`).
    fn delta(&self, now: Instant, count: u64) -> (u64, f64) {
        let Some((t0, c0)) = self.at_warm else {
            return (0, 0.0);
        };
        let (t1, c1) = self.at_end.unwrap_or((now, count));
        (
            c1.saturating_sub(c0),
            t1.saturating_duration_since(t0).as_secs_f64(),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Round trips.

fn sgmp_rtt(idle: IdleStrategy, size: usize, dur: Duration, acc: &mut RttAcc) -> io::Result<()> {
    let mut a = sgmp_driver("load-client", idle)?;
    let mut b = sgmp_driver("load-server", idle)?;
    let (a_addr, b_addr, pb) = (a.local_addr(), b.local_addr(), b.endpoint().local_id());
    let waker = b.waker();
    let (stop, guard) = stop_flag();
    let server = spawn("sgmp-echo", move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !stop.load(Ordering::Relaxed) {
            b.drive(Some(POLL_STOP))?;
            while let Some((from, n)) = b.poll_delivery(&mut buf) {
                b.send(from, a_addr, &buf[..n]).map_err(send_error)?;
            }
        }
        Ok(b.endpoint().stats())
    })?;
    let mut ping = vec![0x5a; size];
    let mut rx = vec![0u8; MAX_DATAGRAM];
    let result = rtt_loop(dur, acc, |seq, give_up| {
        stamp(&mut ping, seq);
        a.send(pb, b_addr, &ping).map_err(send_error)?;
        // The first wait needs no clock reading (the round just started, and POLL_STOP
        // is well within LOSS_TIMEOUT): raw UDP's and TCP's loops read none either.
        let mut wait = POLL_STOP;
        loop {
            a.drive(Some(wait))?;
            while let Some((_, n)) = a.poll_delivery(&mut rx) {
                if n == ping.len() && rx[..8] == ping[..8] {
                    return Ok(true);
                }
            }
            let now = Instant::now();
            if now >= give_up {
                return Ok(false);
            }
            wait = (give_up - now).min(POLL_STOP);
        }
    });
    drop(guard);
    // Best effort: the server also gives up waiting after POLL_STOP.
    let _ = waker.wake();
    let served = join(server)?;
    result?;
    let client = a.endpoint().stats();
    acc.datagrams += client.datagrams_out + served.datagrams_out;
    acc.retransmissions += client.retransmissions + served.retransmissions;
    Ok(())
}

fn udp_rtt(mode: Mode, size: usize, dur: Duration, acc: &mut RttAcc) -> io::Result<()> {
    let client = udp_socket(mode, LOSS_TIMEOUT)?;
    let server = udp_socket(mode, POLL_STOP)?;
    let server_addr = server.local_addr()?;
    let (stop, guard) = stop_flag();
    let echo = spawn("udp-echo", move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !stop.load(Ordering::Relaxed) {
            match server.recv_from(&mut buf) {
                Ok((0, _)) => {} // a poke
                Ok((n, from)) => udp_send(&server, &buf[..n], from)?,
                Err(e) if transient(&e) => std::hint::spin_loop(),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })?;
    let mut ping = vec![0x5a; size];
    let mut rx = vec![0u8; MAX_DATAGRAM];
    let result = rtt_loop(dur, acc, |seq, give_up| {
        stamp(&mut ping, seq);
        udp_send(&client, &ping, server_addr)?;
        loop {
            match client.recv_from(&mut rx) {
                Ok((n, _)) if n == ping.len() && rx[..8] == ping[..8] => return Ok(true),
                Ok(_) => {} // a late echo of a ping counted as lost
                Err(e) if transient(&e) => {
                    if Instant::now() >= give_up {
                        return Ok(false);
                    }
                    std::hint::spin_loop();
                }
                Err(e) => return Err(e),
            }
        }
    });
    drop(guard);
    poke(&client, server_addr);
    join(echo)?;
    result.map(drop)
}

/// Raw UDP round trip on 127.0.0.1 (blocking, `size`-byte pings, one echo thread) for
/// `dur`: the reference the membership modes compare their latencies with, measured in
/// the same run and under the same load.
pub fn udp_round_trip(size: usize, dur: Duration) -> io::Result<Latency> {
    let mut acc = RttAcc::new()?;
    udp_rtt(Mode::Block, size.max(MIN_SIZE as usize), dur, &mut acc)?;
    Ok(acc.summary().latency)
}

/// Reads exactly `buf.len()` bytes; `false` on end of stream, or when `give_up` says so
/// while nothing arrives.
fn read_full(s: &mut TcpStream, buf: &mut [u8], give_up: &dyn Fn() -> bool) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if transient(&e) => {
                if give_up() {
                    return Ok(false);
                }
                std::hint::spin_loop();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Writes all of `buf`, retrying while the socket would block (bounded).
fn write_full(s: &mut TcpStream, buf: &[u8]) -> io::Result<()> {
    let mut put = 0;
    let mut spins = 0u32;
    while put < buf.len() {
        match s.write(&buf[put..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => put += n,
            Err(e) if transient(&e) => {
                spins += 1;
                if spins > 10_000_000 {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "tcp write blocked for too long",
                    ));
                }
                std::hint::spin_loop();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn tcp_setup(s: &TcpStream, mode: Mode, read_timeout: Duration) -> io::Result<()> {
    s.set_nodelay(true)?;
    if mode.spinning() {
        s.set_nonblocking(true)
    } else {
        s.set_read_timeout(Some(read_timeout))
    }
}

fn tcp_rtt(mode: Mode, size: usize, dur: Duration, acc: &mut RttAcc) -> io::Result<()> {
    let listener = TcpListener::bind(localhost())?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    tcp_setup(&client, mode, LOSS_TIMEOUT)?;
    tcp_setup(&server, mode, POLL_STOP)?;
    let (stop, guard) = stop_flag();
    let echo = spawn("tcp-echo", move || {
        let mut buf = vec![0u8; size];
        let stopped = || stop.load(Ordering::Relaxed);
        while read_full(&mut server, &mut buf, &stopped)? {
            write_full(&mut server, &buf)?;
        }
        Ok(())
    })?;
    let mut ping = vec![0x5a; size];
    let mut rx = vec![0u8; size];
    let result = rtt_loop(dur, acc, |seq, give_up| {
        stamp(&mut ping, seq);
        write_full(&mut client, &ping)?;
        if !read_full(&mut client, &mut rx, &|| Instant::now() >= give_up)? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "tcp echo did not come back",
            ));
        }
        Ok(rx[..8] == ping[..8])
    });
    drop(guard);
    drop(client); // end of stream: the echo thread returns at once
    join(echo)?;
    result.map(drop)
}

// ---------------------------------------------------------------------------------------
// Throughput.

fn sgmp_throughput(
    idle: IdleStrategy,
    size: usize,
    dur: Duration,
    acc: &mut ThrAcc,
) -> io::Result<()> {
    let mut a = sgmp_driver("load-sender", idle)?;
    let mut b = sgmp_driver("load-receiver", idle)?;
    let (b_addr, pb) = (b.local_addr(), b.endpoint().local_id());
    let waker = b.waker();
    let (stop, guard) = stop_flag();
    let start = Instant::now();
    let receiver = spawn("sgmp-receiver", move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut meter = Meter::new(start, dur);
        let mut got = 0u64;
        while !stop.load(Ordering::Relaxed) {
            b.drive(Some(POLL_STOP))?;
            while b.poll_delivery(&mut buf).is_some() {
                got += 1;
            }
            meter.observe(Instant::now(), got);
        }
        Ok(meter.delta(Instant::now(), got))
    })?;
    let msg = vec![0xa5u8; size];
    let (mut meter, mut dmeter) = (Meter::new(start, dur), Meter::new(start, dur));
    let mut sent = 0u64;
    let stop_at = start + dur + TAIL;
    let mut result = Ok(());
    loop {
        let now = Instant::now();
        meter.observe(now, sent);
        dmeter.observe(now, a.stats().datagrams_written);
        if now >= stop_at {
            break;
        }
        loop {
            match a.send(pb, b_addr, &msg) {
                Ok(()) => sent += 1,
                Err(SendError::WindowFull) => break,
                Err(e) => {
                    result = Err(send_error(e));
                    break;
                }
            }
        }
        if result.is_ok() {
            result = a.drive(Some((stop_at - now).min(POLL_STOP)));
        }
        if result.is_err() {
            break;
        }
    }
    let now = Instant::now();
    let (sent_n, sent_secs) = meter.delta(now, sent);
    let (datagrams, _) = dmeter.delta(now, a.stats().datagrams_written);
    drop(guard);
    let _ = waker.wake();
    let (got, secs) = join(receiver)?;
    result?;
    acc.received += got;
    acc.received_secs += secs;
    acc.sent += sent_n;
    acc.sent_secs += sent_secs;
    acc.datagrams += datagrams;
    acc.retransmissions += a.endpoint().stats().retransmissions;
    Ok(())
}

fn udp_throughput(mode: Mode, size: usize, dur: Duration, acc: &mut ThrAcc) -> io::Result<()> {
    let sender = udp_socket(mode, POLL_STOP)?;
    let sink = udp_socket(mode, POLL_STOP)?;
    let sink_addr = sink.local_addr()?;
    let (stop, guard) = stop_flag();
    let start = Instant::now();
    let receiver = spawn("udp-receiver", move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut meter = Meter::new(start, dur);
        let mut got = 0u64;
        while !stop.load(Ordering::Relaxed) {
            match sink.recv_from(&mut buf) {
                Ok((0, _)) => {} // a poke
                Ok(_) => got += 1,
                Err(e) if transient(&e) => std::hint::spin_loop(),
                Err(e) => return Err(e),
            }
            meter.observe(Instant::now(), got);
        }
        Ok(meter.delta(Instant::now(), got))
    })?;
    let msg = vec![0xa5u8; size];
    let mut meter = Meter::new(start, dur);
    let mut sent = 0u64;
    let stop_at = start + dur + TAIL;
    let mut result = Ok(());
    loop {
        let now = Instant::now();
        meter.observe(now, sent);
        if now >= stop_at {
            break;
        }
        result = udp_send(&sender, &msg, sink_addr);
        if result.is_err() {
            break;
        }
        sent += 1;
    }
    let (sent_n, sent_secs) = meter.delta(Instant::now(), sent);
    drop(guard);
    poke(&sender, sink_addr);
    let (got, secs) = join(receiver)?;
    result?;
    acc.received += got;
    acc.received_secs += secs;
    acc.sent += sent_n;
    acc.sent_secs += sent_secs;
    acc.datagrams += sent_n;
    Ok(())
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

    #[test]
    fn budget_splits_what_is_left() {
        let mut b = Budget {
            deadline: Instant::now() + Duration::from_secs(14),
            left: 14,
        };
        let first = b.next();
        assert!(first <= Duration::from_secs(1) && first > Duration::from_millis(900));
        assert_eq!(b.left, 13);
        let mut past = Budget {
            deadline: Instant::now(),
            left: 3,
        };
        assert_eq!(past.next(), MIN_SLOT);
    }

    #[test]
    fn meter_counts_between_marks() {
        let t = Instant::now();
        let mut m = Meter::new(t, Duration::from_secs(1));
        m.observe(t, 0);
        m.observe(t + Duration::from_millis(100), 10);
        m.observe(t + Duration::from_millis(600), 60);
        m.observe(t + Duration::from_millis(1100), 110);
        m.observe(t + Duration::from_millis(1200), 500);
        let (n, secs) = m.delta(t + Duration::from_secs(5), 999);
        assert!((secs - 1.0).abs() < 1e-9);
        assert_eq!(n, 100);
    }
}
