//! `sgmp-load transport`: the reliable channel against raw UDP and TCP on loopback.
//!
//! One run measures, on 127.0.0.1 with ports chosen by the kernel:
//!
//! * **ping-pong round trip** (one message out, the echo back; p50/p99/max from an HDR
//!   histogram) of the sgmp reliable channel ([`Driver`](sgmp_transport::Driver)), of raw
//!   UDP (std sockets with the driver's buffer sizes, same message size,
//!   `send_to`/`recv_from` like the driver) and of TCP with `TCP_NODELAY`;
//! * **one-way throughput** (64 B and 1 KiB messages, messages per second) of the reliable
//!   channel and of raw UDP. Raw UDP counts what the *receiver* got: loopback drops
//!   datagrams when the receiver's buffer is full, and the sender's rate is reported
//!   separately.
//!
//! Each is measured in two modes: **blocking** (threads park: [`IdleStrategy::Recv`], or
//! [`IdleStrategy::Block`] with `--park poll`; blocking reads) and **spinning**
//! ([`IdleStrategy::Spin`], nonblocking sockets busy-polled).
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
//!
//! The code, one job a file: [`args`] (the flags), [`report`] (the figures, the JSON keys
//! and the table), `measure` (accumulators, meters, thread plumbing shared by the
//! measurements), and one file per transport: `sgmp`, `udp`, `tcp`.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

#[cfg(doc)]
use sgmp_transport::IdleStrategy;

pub mod args;
mod measure;
pub mod report;
mod sgmp;
mod tcp;
mod udp;

pub use args::{Measurement, Mode, Park, TransportArgs};
pub use report::{ModeFigures, RoundTrip, Throughput, TransportReport};
pub use udp::udp_round_trip;

use measure::{RttAcc, ThrAcc};
use sgmp::{sgmp_rtt, sgmp_throughput};
use tcp::tcp_rtt;
use udp::{udp_rtt, udp_throughput};

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
/// Socket buffers of every socket, as the driver's default
/// ([`DriverConfig::new`](sgmp_transport::DriverConfig::new)).
const SOCKET_BUFFER: usize = 4 << 20;
/// Largest datagram a receive buffer must hold.
const MAX_DATAGRAM: usize = 65_536;
/// Small throughput message size.
const SMALL: usize = 64;
/// Large throughput message size.
const LARGE: usize = 1024;
/// Cluster id of the load endpoints.
const CLUSTER: u64 = 0x5347_4c4f_4144;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
